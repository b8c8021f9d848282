/// The groups and connections projections, and the row and view forms they store,
/// driven with hand-built envelopes over the in-memory read model of
/// tests/support/read_model.hpp.

#include <string>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "events/connection/connection_decider.hpp"
#include "events/group/group_decider.hpp"
#include "projections/access_views.hpp"
#include "projections/projections.hpp"
#include "tests/support/read_model.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::committed;
using test::feed;
using test::memory_rows;

const group_created analysts{"g-1", "Analysts", "the data team", "alice-id"};
const json pg_params{{"host", "db"}, {"port", 5432}, {"database", "sales"}, {"sslmode", "prefer"}};
const connection_created warehouse{"c-1", "Warehouse", "postgres", pg_params, "vault:aaa", "b2:111", "alice-id"};

/// The tables a projection's mutations touch.
std::vector<std::string> tables_of(const std::vector<mutation>& out) {
  std::vector<std::string> tables;
  for (const auto& m : out) tables.push_back(std::visit([](const auto& x) { return x.table; }, m));
  return tables;
}

}  // namespace

// --- groups -------------------------------------------------------------------------

TEST_CASE("groups: group.created writes the group row", "[projections][groups]") {
  const auto groups = make_groups_projection();
  CHECK(groups->name() == "groups");
  memory_rows rows;
  const auto out = feed(*groups, rows, committed(1, "group-g-1", 1, analysts));
  CHECK(tables_of(out) == std::vector<std::string>{"groups"});
  const auto row = rows.get("groups", "g-1");
  REQUIRE(row != nullptr);
  CHECK(*row == json{{"id", "g-1"},
                     {"name", "Analysts"},
                     {"description", "the data team"},
                     {"created_by", "alice-id"},
                     {"members", json::array()},
                     {"version", 1},
                     {"created_at", "2026-01-01T00:00:01.000000Z"},
                     {"updated_at", "2026-01-01T00:00:01.000000Z"}});
}

TEST_CASE("groups: members maintain the group row and both indexes", "[projections][groups]") {
  const auto groups = make_groups_projection();
  memory_rows rows;
  feed(*groups, rows, committed(1, "group-g-1", 1, analysts));
  feed(*groups, rows, committed(2, "group-g-1", 2, group_member_added{"user", "bob-id"}));
  feed(*groups, rows, committed(3, "group-g-1", 3, group_member_added{"group", "g-2"}));
  feed(*groups, rows, committed(4, "group-g-1", 4, group_member_added{"user", "alice-id"}));

  auto row = rows.get("groups", "g-1");
  REQUIRE(row != nullptr);
  CHECK(row->at("members") == json::array({{{"user_id", "alice-id"}}, {{"user_id", "bob-id"}}, {{"group_id", "g-2"}}}));
  CHECK(row->at("version") == 4);
  CHECK(row->at("created_at") == "2026-01-01T00:00:01.000000Z");
  CHECK(row->at("updated_at") == "2026-01-01T00:00:04.000000Z");
  CHECK(rows.keys("user_groups") == std::vector<std::string>{"alice-id/g-1", "bob-id/g-1"});
  CHECK(rows.row("user_groups", "bob-id/g-1") == json::object());
  CHECK(rows.keys("group_parents") == std::vector<std::string>{"g-2/g-1"});

  SECTION("removing a user deletes its user_groups row") {
    const auto out = feed(*groups, rows, committed(5, "group-g-1", 5, group_member_removed{"user", "bob-id"}));
    REQUIRE(out.size() == 2);
    REQUIRE(std::holds_alternative<row_delete>(out[1]));
    CHECK(std::get<row_delete>(out[1]).key == "bob-id/g-1");
    CHECK(rows.keys("user_groups") == std::vector<std::string>{"alice-id/g-1"});
    CHECK(rows.get("groups", "g-1")->at("members") == json::array({{{"user_id", "alice-id"}}, {{"group_id", "g-2"}}}));
  }
  SECTION("removing a group deletes its group_parents row") {
    feed(*groups, rows, committed(5, "group-g-1", 5, group_member_removed{"group", "g-2"}));
    CHECK(rows.keys("group_parents").empty());
    CHECK(rows.keys("user_groups").size() == 2);
    CHECK(rows.get("groups", "g-1")->at("version") == 5);
  }
}

TEST_CASE("groups: nested groups give a walkable parent index", "[projections][groups]") {
  // g-3 ⊂ g-2 ⊂ g-1, and carol is in g-3: her groups are g-3, g-2 and g-1.
  const auto groups = make_groups_projection();
  memory_rows rows;
  feed(*groups, rows, committed(1, "group-g-1", 1, analysts));
  feed(*groups, rows, committed(2, "group-g-2", 1, group_created{"g-2", "Team", "", "alice-id"}));
  feed(*groups, rows, committed(3, "group-g-3", 1, group_created{"g-3", "Squad", "", "alice-id"}));
  feed(*groups, rows, committed(4, "group-g-1", 2, group_member_added{"group", "g-2"}));
  feed(*groups, rows, committed(5, "group-g-2", 2, group_member_added{"group", "g-3"}));
  feed(*groups, rows, committed(6, "group-g-3", 2, group_member_added{"user", "carol-id"}));

  std::set<std::string> found;
  std::vector<std::string> frontier;
  for (const auto& key : rows.keys("user_groups")) {
    if (key.starts_with("carol-id/")) frontier.push_back(key.substr(9));
  }
  while (!frontier.empty()) {
    const auto g = frontier.back();
    frontier.pop_back();
    if (!found.insert(g).second) continue;
    for (const auto& key : rows.keys("group_parents")) {
      if (key.starts_with(g + "/")) frontier.push_back(key.substr(g.size() + 1));
    }
  }
  CHECK(found == std::set<std::string>{"g-1", "g-2", "g-3"});
}

TEST_CASE("groups: other streams, unknown types and orphan events are ignored", "[projections][groups]") {
  const auto groups = make_groups_projection();
  memory_rows rows;
  CHECK(feed(*groups, rows, committed(1, "groups-g-1", 1, analysts)).empty());
  CHECK(feed(*groups, rows, committed(2, "connection-c-1", 1, warehouse)).empty());
  auto unknown = committed(3, "group-g-1", 1, analysts);
  unknown.type = "group.renamed";
  CHECK(feed(*groups, rows, unknown).empty());
  CHECK(feed(*groups, rows, committed(4, "group-g-9", 2, group_member_added{"user", "bob-id"})).empty());
  CHECK(rows.size() == 0);
}

TEST_CASE("group rows round-trip to the state", "[projections][groups][views]") {
  group_state s;
  s = evolve(s, analysts);
  s = evolve(s, group_member_added{"user", "bob-id"});
  s = evolve(s, group_member_added{"group", "g-2"});
  s.version = 3;
  const auto back = group_from_row(group_row(s));
  CHECK(back.exists);
  CHECK(back.group_id == s.group_id);
  CHECK(back.name == s.name);
  CHECK(back.description == s.description);
  CHECK(back.created_by == s.created_by);
  CHECK(back.users == s.users);
  CHECK(back.groups == s.groups);
  CHECK(back.version == 3);
  CHECK(group_view(s) == group_row(s));
}

// --- connections ----------------------------------------------------------------------

TEST_CASE("connections: a created connection writes its row and its owner grant", "[projections][connections]") {
  const auto connections = make_connections_projection();
  CHECK(connections->name() == "connections");
  memory_rows rows;
  feed(*connections, rows, committed(1, "connection-c-1", 1, warehouse));
  feed(*connections, rows, committed(2, "connection-c-1", 2, connection_access_granted{"user", "alice-id", "owner"}));

  const auto row = rows.get("connections", "c-1");
  REQUIRE(row != nullptr);
  CHECK(*row == json{{"id", "c-1"},
                     {"name", "Warehouse"},
                     {"driver", "postgres"},
                     {"params", pg_params},
                     {"fingerprint", "b2:111"},
                     {"vault_ref", "vault:aaa"},
                     {"created_by", "alice-id"},
                     {"grants", json::array({{{"user_id", "alice-id"}, {"role", "owner"}}})},
                     {"last_test", nullptr},
                     {"deleted", false},
                     {"version", 2},
                     {"created_at", "2026-01-01T00:00:01.000000Z"},
                     {"updated_at", "2026-01-01T00:00:02.000000Z"}});
  CHECK(rows.keys("grants") == std::vector<std::string>{"user:alice-id/c-1"});
  CHECK(rows.row("grants", "user:alice-id/c-1") == json{{"role", "owner"}});

  const auto view = connection_view_of_row(*row);
  CHECK_FALSE(view.contains("vault_ref"));
  CHECK(view.at("fingerprint") == "b2:111");
  CHECK(view.at("id") == "c-1");
}

TEST_CASE("connections: updates, rotations, tests and grants rewrite the row", "[projections][connections]") {
  const auto connections = make_connections_projection();
  memory_rows rows;
  feed(*connections, rows, committed(1, "connection-c-1", 1, warehouse));
  feed(*connections, rows, committed(2, "connection-c-1", 2, connection_access_granted{"user", "alice-id", "owner"}));
  feed(*connections, rows, committed(3, "connection-c-1", 3, connection_access_granted{"group", "g-1", "user"}));
  feed(*connections, rows, committed(4, "connection-c-1", 4, connection_updated{"Lake", {{"host", "h2"}}}));
  feed(*connections, rows, committed(5, "connection-c-1", 5, connection_credentials_rotated{"vault:bbb", "b2:222"}));
  feed(*connections, rows, committed(6, "connection-c-1", 6, connection_tested{false, "refused", 30}));

  auto row = rows.get("connections", "c-1");
  REQUIRE(row != nullptr);
  CHECK(row->at("name") == "Lake");
  CHECK(row->at("params") == json{{"host", "h2"}});
  CHECK(row->at("fingerprint") == "b2:222");
  CHECK(row->at("vault_ref") == "vault:bbb");
  CHECK(row->at("grants") ==
        json::array({{{"user_id", "alice-id"}, {"role", "owner"}}, {{"group_id", "g-1"}, {"role", "user"}}}));
  CHECK(row->at("last_test") ==
        json{{"ok", false}, {"error", "refused"}, {"latency_ms", 30}, {"time", "2026-01-01T00:00:06.000000Z"}});
  CHECK(row->at("version") == 6);
  CHECK(rows.keys("grants") == std::vector<std::string>{"group:g-1/c-1", "user:alice-id/c-1"});

  SECTION("a later event keeps the time of the last test") {
    feed(*connections, rows, committed(7, "connection-c-1", 7, connection_access_granted{"group", "g-1", "owner"}));
    row = rows.get("connections", "c-1");
    CHECK(row->at("last_test").at("time") == "2026-01-01T00:00:06.000000Z");
    CHECK(rows.row("grants", "group:g-1/c-1") == json{{"role", "owner"}});
    CHECK(row->at("updated_at") == "2026-01-01T00:00:07.000000Z");
    CHECK(row->at("created_at") == "2026-01-01T00:00:01.000000Z");
  }
  SECTION("a revoke deletes the grant row") {
    feed(*connections, rows, committed(7, "connection-c-1", 7, connection_access_revoked{"group", "g-1"}));
    CHECK(rows.keys("grants") == std::vector<std::string>{"user:alice-id/c-1"});
    CHECK(rows.get("connections", "c-1")->at("grants") == json::array({{{"user_id", "alice-id"}, {"role", "owner"}}}));
  }
  SECTION("a delete deletes the row and every grant") {
    const auto out = feed(*connections, rows, committed(7, "connection-c-1", 7, connection_deleted{}));
    CHECK(tables_of(out) == std::vector<std::string>{"connections", "grants", "grants"});
    CHECK(rows.get("connections", "c-1") == nullptr);
    CHECK(rows.size() == 0);
    // A stray event after the delete does not bring it back.
    CHECK(feed(*connections, rows, committed(8, "connection-c-1", 8, connection_tested{true, "", 1})).empty());
    CHECK(rows.size() == 0);
  }
}

TEST_CASE("connections: no row or view ever holds a credential", "[projections][connections][secrets]") {
  const auto connections = make_connections_projection();
  memory_rows rows;
  feed(*connections, rows, committed(1, "connection-c-1", 1, warehouse));
  const auto row = *rows.get("connections", "c-1");
  CHECK_FALSE(row.contains("credentials"));
  CHECK_FALSE(row.at("params").contains("password"));
  CHECK_FALSE(connection_view_of_row(row).contains("vault_ref"));
}

TEST_CASE("connections: other streams and unknown types are ignored", "[projections][connections]") {
  const auto connections = make_connections_projection();
  memory_rows rows;
  CHECK(feed(*connections, rows, committed(1, "group-g-1", 1, analysts)).empty());
  CHECK(feed(*connections, rows, committed(2, "connections-c-1", 1, warehouse)).empty());
  auto unknown = committed(3, "connection-c-1", 1, warehouse);
  unknown.type = "connection.archived";
  CHECK(feed(*connections, rows, unknown).empty());
  CHECK(rows.size() == 0);
}

TEST_CASE("connection rows round-trip to the state", "[projections][connections][views]") {
  connection_state s;
  s = evolve(s, warehouse);
  s = evolve(s, connection_access_granted{"user", "alice-id", "owner"});
  s = evolve(s, connection_access_granted{"user", "bob-id", "user"});
  s = evolve(s, connection_access_granted{"group", "g-1", "owner"});
  s.version = 4;

  auto check_round_trip = [](const connection_state& s) {
    const auto back = connection_from_row(connection_row(s));
    CHECK(back.exists == s.exists);
    CHECK(back.deleted == s.deleted);
    CHECK(back.connection_id == s.connection_id);
    CHECK(back.name == s.name);
    CHECK(back.driver == s.driver);
    CHECK(back.params == s.params);
    CHECK(back.vault_ref == s.vault_ref);
    CHECK(back.fingerprint == s.fingerprint);
    CHECK(back.created_by == s.created_by);
    CHECK(back.user_grants == s.user_grants);
    CHECK(back.group_grants == s.group_grants);
    CHECK(back.last_test.tested == s.last_test.tested);
    CHECK(back.last_test.ok == s.last_test.ok);
    CHECK(back.last_test.error == s.last_test.error);
    CHECK(back.last_test.latency_ms == s.last_test.latency_ms);
    CHECK(back.version == s.version);
  };
  check_round_trip(s);
  s = evolve(s, connection_tested{true, "", 9});
  check_round_trip(s);
  s = evolve(s, connection_tested{false, "timeout", 5000});
  check_round_trip(s);
  s = evolve(s, connection_deleted{});
  check_round_trip(s);

  const auto view = connection_view(s);
  CHECK_FALSE(view.contains("vault_ref"));
  CHECK(view.at("version") == 4);
  CHECK(view.at("last_test") == json{{"ok", false}, {"error", "timeout"}, {"latency_ms", 5000}});
}
