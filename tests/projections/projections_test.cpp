/// The users, projects and audit projections, driven with hand-built envelopes over an
/// in-memory read model that applies the mutations they emit.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "events/job/job_events.hpp"
#include "events/project/project_events.hpp"
#include "events/user/user_events.hpp"
#include "projections/projections.hpp"
#include "ports/read_model.hpp"
#include "projections/views.hpp"
#include "tests/support/read_model.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;

using test::committed;
using test::feed;
using test::memory_rows;

const user_registered alice{"alice-id", "alice", "alice@example.org", "member", "$argon2id$hash-1"};
const project_created apollo{"p-1", "Apollo", "to the moon", "alice-id"};

}  // namespace

// --- users ------------------------------------------------------------------------

TEST_CASE("users: user.registered writes the user row and the username index", "[projections][users]") {
  const auto users = make_users_projection();
  CHECK(users->name() == "users");
  memory_rows rows;
  const auto out = feed(*users, rows, committed(1, "user-alice-id", 1, alice));
  CHECK(out.size() == 2);

  const auto row = rows.get("users", "alice-id");
  REQUIRE(row != nullptr);
  CHECK(*row == json{{"id", "alice-id"},
                     {"username", "alice"},
                     {"email", "alice@example.org"},
                     {"roles", {"member"}},
                     {"disabled", false},
                     {"kind", "person"},
                     {"version", 1},
                     {"password_hash", "$argon2id$hash-1"}});

  const auto view = user_view_of_row(*row);
  CHECK_FALSE(view.contains("password_hash"));
  CHECK(view == json{{"id", "alice-id"},
                     {"username", "alice"},
                     {"email", "alice@example.org"},
                     {"roles", {"member"}},
                     {"disabled", false},
                     {"kind", "person"},
                     {"version", 1}});

  CHECK(rows.row("usernames", "alice") == json{{"user_id", "alice-id"}});
  CHECK(rows.keys("usernames") == std::vector<std::string>{"alice"});
}

TEST_CASE("users: later events update the row and its version", "[projections][users]") {
  const auto users = make_users_projection();
  memory_rows rows;
  feed(*users, rows, committed(1, "user-alice-id", 1, alice));
  feed(*users, rows, committed(5, "user-alice-id", 2, user_role_granted{"auditor"}));

  auto row = rows.get("users", "alice-id");
  REQUIRE(row != nullptr);
  CHECK(row->at("roles") == json{"member", "auditor"});
  CHECK(row->at("version") == 2);
  CHECK(row->at("username") == "alice");  // carried over from the stored row

  feed(*users, rows, committed(6, "user-alice-id", 3, user_role_revoked{"member"}));
  feed(*users, rows, committed(9, "user-alice-id", 4, user_password_changed{"$argon2id$hash-2"}));
  row = rows.get("users", "alice-id");
  REQUIRE(row != nullptr);
  CHECK(row->at("roles") == json{"auditor"});
  CHECK(row->at("password_hash") == "$argon2id$hash-2");
  CHECK(row->at("version") == 4);
  CHECK_FALSE(user_view_of_row(*row).contains("password_hash"));

  const auto out = feed(*users, rows, committed(12, "user-alice-id", 5, user_disabled{"left"}));
  CHECK(out.size() == 1);  // only user.registered touches the username index
  row = rows.get("users", "alice-id");
  REQUIRE(row != nullptr);
  CHECK(row->at("disabled") == true);
  CHECK(row->at("version") == 5);
  CHECK(row->at("email") == "alice@example.org");

  // The row is the row form of the folded state.
  const auto state = user_from_row(*row);
  CHECK(user_row(state) == *row);
  CHECK(user_view_of_row(*row) == user_view(state));
  CHECK(rows.keys("usernames") == std::vector<std::string>{"alice"});
}

TEST_CASE("users: each user has their own row and index entry", "[projections][users]") {
  const auto users = make_users_projection();
  memory_rows rows;
  feed(*users, rows, committed(1, "user-alice-id", 1, alice));
  feed(*users, rows,
       committed(2, "user-bob-id", 1, user_registered{"bob-id", "bob", "bob@example.org", "admin", "$argon2id$b"}));
  feed(*users, rows, committed(3, "user-bob-id", 2, user_disabled{"gone"}));

  CHECK(rows.keys("users") == std::vector<std::string>{"alice-id", "bob-id"});
  CHECK(rows.keys("usernames") == std::vector<std::string>{"alice", "bob"});
  CHECK(rows.get("usernames", "bob")->at("user_id") == "bob-id");
  CHECK(rows.get("users", "alice-id")->at("disabled") == false);
  CHECK(rows.get("users", "bob-id")->at("disabled") == true);
}

TEST_CASE("users: events of other streams and unknown types are ignored", "[projections][users]") {
  const auto users = make_users_projection();
  memory_rows rows;
  CHECK(feed(*users, rows, committed(1, "project-p-1", 1, apollo)).empty());
  CHECK(feed(*users, rows, committed(2, "username-alice", 1, username_claimed{"alice", "alice-id"})).empty());
  // A look-alike prefix is another entity.
  CHECK(feed(*users, rows, committed(3, "users-alice-id", 1, alice)).empty());
  CHECK(feed(*users, rows, committed(4, "user-", 1, alice)).empty());
  // A type this build does not know (a newer schema) is skipped, never a crash.
  auto unknown = committed(5, "user-alice-id", 1, user_disabled{"x"});
  unknown.type = "user.renamed";
  CHECK(feed(*users, rows, unknown).empty());
  // A malformed payload is skipped the same way.
  auto malformed = committed(6, "user-alice-id", 1, user_disabled{"x"});
  malformed.data = json::array();
  CHECK(feed(*users, rows, malformed).empty());
  CHECK(rows.size() == 0);
}

// --- projects ---------------------------------------------------------------------

TEST_CASE("projects: a created project gets a row with its members", "[projections][projects]") {
  const auto projects = make_projects_projection();
  CHECK(projects->name() == "projects");
  memory_rows rows;
  feed(*projects, rows, committed(10, "project-p-1", 1, apollo, "user-alice-id"));
  feed(*projects, rows, committed(11, "project-p-1", 2, project_member_added{"alice-id", "owner"}, "user-alice-id"));

  const auto row = rows.get("projects", "p-1");
  REQUIRE(row != nullptr);
  CHECK(row->at("id") == "p-1");
  CHECK(row->at("name") == "Apollo");
  CHECK(row->at("description") == "to the moon");
  CHECK(row->at("created_by") == "alice-id");
  CHECK(row->at("members") == json::array({{{"user_id", "alice-id"}, {"role", "owner"}}}));
  CHECK(row->at("archived") == false);
  CHECK(row->at("version") == 2);
  CHECK(row->at("created_at") == "2026-01-01T00:00:10.000000Z");
  CHECK(row->at("updated_at") == "2026-01-01T00:00:11.000000Z");

  CHECK(rows.row("user_projects", "alice-id/p-1") == json{{"role", "owner"}});
}

TEST_CASE("projects: members come and go in the row and in user_projects", "[projections][projects]") {
  const auto projects = make_projects_projection();
  memory_rows rows;
  feed(*projects, rows, committed(1, "project-p-1", 1, apollo));
  feed(*projects, rows, committed(2, "project-p-1", 2, project_member_added{"alice-id", "owner"}));
  feed(*projects, rows, committed(3, "project-p-1", 3, project_member_added{"bob-id", "viewer"}));

  CHECK(rows.keys("user_projects") == std::vector<std::string>{"alice-id/p-1", "bob-id/p-1"});
  CHECK(rows.get("user_projects", "bob-id/p-1")->at("role") == "viewer");
  CHECK(rows.get("projects", "p-1")->at("members").size() == 2);

  SECTION("a role change rewrites the member and the user_projects row") {
    feed(*projects, rows, committed(4, "project-p-1", 4, project_member_added{"bob-id", "editor"}));
    CHECK(rows.get("user_projects", "bob-id/p-1")->at("role") == "editor");
    CHECK(rows.get("projects", "p-1")->at("members") ==
          json::array({{{"user_id", "alice-id"}, {"role", "owner"}}, {{"user_id", "bob-id"}, {"role", "editor"}}}));
    CHECK(rows.get("projects", "p-1")->at("version") == 4);
  }
  SECTION("member_removed deletes the user_projects row") {
    const auto out = feed(*projects, rows, committed(4, "project-p-1", 4, project_member_removed{"bob-id"}));
    REQUIRE(out.size() == 2);
    REQUIRE(std::holds_alternative<row_delete>(out[1]));
    CHECK(std::get<row_delete>(out[1]).table == "user_projects");
    CHECK(std::get<row_delete>(out[1]).key == "bob-id/p-1");

    CHECK(rows.get("user_projects", "bob-id/p-1") == nullptr);
    CHECK(rows.keys("user_projects") == std::vector<std::string>{"alice-id/p-1"});
    CHECK(rows.get("projects", "p-1")->at("members") == json::array({{{"user_id", "alice-id"}, {"role", "owner"}}}));
    CHECK(rows.get("projects", "p-1")->at("version") == 4);
  }
}

TEST_CASE("projects: rename and describe and archive update the row", "[projections][projects]") {
  const auto projects = make_projects_projection();
  memory_rows rows;
  feed(*projects, rows, committed(1, "project-p-1", 1, apollo));
  feed(*projects, rows, committed(2, "project-p-1", 2, project_member_added{"alice-id", "owner"}));
  feed(*projects, rows, committed(7, "project-p-1", 3, project_renamed{"Gemini"}));
  feed(*projects, rows, committed(8, "project-p-1", 4, project_described{"to mars"}));
  feed(*projects, rows, committed(9, "project-p-1", 5, project_archived{"done"}));

  const auto row = rows.get("projects", "p-1");
  REQUIRE(row != nullptr);
  CHECK(row->at("name") == "Gemini");
  CHECK(row->at("description") == "to mars");
  CHECK(row->at("archived") == true);
  CHECK(row->at("version") == 5);
  CHECK(row->at("created_by") == "alice-id");
  CHECK(row->at("created_at") == "2026-01-01T00:00:01.000000Z");  // kept from the first event
  CHECK(row->at("updated_at") == "2026-01-01T00:00:09.000000Z");
  CHECK(row->at("members") == json::array({{{"user_id", "alice-id"}, {"role", "owner"}}}));
  // Archiving keeps the members' access to read the project.
  CHECK(rows.keys("user_projects") == std::vector<std::string>{"alice-id/p-1"});
}

TEST_CASE("projects: the row version is the envelope version", "[projections][projects]") {
  const auto projects = make_projects_projection();
  memory_rows rows;
  feed(*projects, rows, committed(100, "project-p-2", 1, project_created{"p-2", "Solo", "", "bob-id"}));
  feed(*projects, rows, committed(140, "project-p-2", 17, project_renamed{"Solo 2"}));
  CHECK(rows.get("projects", "p-2")->at("version") == 17);
  CHECK(rows.keys("projects") == std::vector<std::string>{"p-2"});
}

TEST_CASE("projects: events of other streams are ignored", "[projections][projects]") {
  const auto projects = make_projects_projection();
  memory_rows rows;
  CHECK(feed(*projects, rows, committed(1, "user-alice-id", 1, alice)).empty());
  CHECK(feed(*projects, rows, committed(2, "username-alice", 1, username_claimed{"alice", "alice-id"})).empty());
  CHECK(feed(*projects, rows, committed(3, "projects-p-1", 1, apollo)).empty());
  auto unknown = committed(4, "project-p-1", 1, apollo);
  unknown.type = "project.deleted";
  CHECK(feed(*projects, rows, unknown).empty());
  CHECK(rows.size() == 0);
}

TEST_CASE("projects: cells are in the row in link order with their updated_at", "[projections][projects][cells]") {
  const auto projects = make_projects_projection();
  memory_rows rows;
  feed(*projects, rows, committed(1, "project-p-1", 1, apollo));
  feed(*projects, rows, committed(2, "project-p-1", 2, project_member_added{"alice-id", "owner"}));
  feed(*projects, rows, committed(3, "project-p-1", 3, project_cell_added{"a", "sql", "select 1", ""}));
  feed(*projects, rows, committed(4, "project-p-1", 4, project_cell_added{"b", "python", "print(1)", "a"}));
  feed(*projects, rows, committed(5, "project-p-1", 5, project_cell_added{"c", "chart", "{}", ""}));
  feed(*projects, rows, committed(6, "project-p-1", 6, project_cell_edited{"a", "select 2", 2, "op-1"}));

  auto row = rows.get("projects", "p-1");
  REQUIRE(row != nullptr);
  CHECK(row->at("version") == 6);
  CHECK(row->at("cells") == json::array({{{"cell_id", "c"},
                                          {"kind", "chart"},
                                          {"content", "{}"},
                                          {"version", 1},
                                          {"after", ""},
                                          {"connection_id", ""},
                                          {"last_job_id", ""},
                                          {"updated_at", "2026-01-01T00:00:05.000000Z"}},
                                         {{"cell_id", "a"},
                                          {"kind", "sql"},
                                          {"content", "select 2"},
                                          {"version", 2},
                                          {"after", "c"},
                                          {"connection_id", ""},
                                          {"last_job_id", ""},
                                          {"updated_at", "2026-01-01T00:00:06.000000Z"}},
                                         {{"cell_id", "b"},
                                          {"kind", "python"},
                                          {"content", "print(1)"},
                                          {"version", 1},
                                          {"after", "a"},
                                          {"connection_id", ""},
                                          {"last_job_id", ""},
                                          {"updated_at", "2026-01-01T00:00:04.000000Z"}}}));
  CHECK(row->at("recent_edits") == json::array({{{"op_id", "op-1"}, {"cell_id", "a"}, {"version", 2}}}));

  SECTION("a move keeps every cell's updated_at and a removal drops the cell") {
    feed(*projects, rows, committed(7, "project-p-1", 7, project_cell_moved{"c", "b"}));
    feed(*projects, rows, committed(8, "project-p-1", 8, project_cell_removed{"a"}));
    row = rows.get("projects", "p-1");
    const auto& cells = row->at("cells");
    REQUIRE(cells.size() == 2);
    CHECK(cells[0].at("cell_id") == "b");
    CHECK(cells[0].at("after") == "");
    CHECK(cells[0].at("updated_at") == "2026-01-01T00:00:04.000000Z");
    CHECK(cells[1].at("cell_id") == "c");
    CHECK(cells[1].at("after") == "b");
    CHECK(cells[1].at("updated_at") == "2026-01-01T00:00:05.000000Z");
    CHECK(row->at("removed_cells") == json::array({"a"}));
    CHECK(row->at("recent_edits") == json::array());
    CHECK(row->at("updated_at") == "2026-01-01T00:00:08.000000Z");
  }
  SECTION("the served view drops the bookkeeping and the row folds back to the state") {
    const auto view = project_view_of_row(*row);
    CHECK_FALSE(view.contains("removed_cells"));
    CHECK_FALSE(view.contains("recent_edits"));
    CHECK(view.at("cells").size() == 3);
    const auto state = project_from_row(*row);
    REQUIRE(state.cells.size() == 3);
    CHECK(state.cells[1].cell_id == "a");
    CHECK(state.cells[1].version == 2);
    REQUIRE(state.recent_edits.size() == 1);
    CHECK(state.recent_edits[0].op_id == "op-1");
    CHECK(project_row(state).at("cells").size() == 3);
  }
}

TEST_CASE("projects: rows written before cells existed still fold", "[projections][projects][cells]") {
  const auto projects = make_projects_projection();
  memory_rows rows;
  feed(*projects, rows, committed(1, "project-p-1", 1, apollo));
  auto old = *rows.get("projects", "p-1");
  old.erase("cells");
  old.erase("removed_cells");
  old.erase("recent_edits");
  rows.apply({row_put{"projects", "p-1", old}});
  feed(*projects, rows, committed(2, "project-p-1", 2, project_cell_added{"a", "sql", "", ""}));
  CHECK(rows.get("projects", "p-1")->at("cells").size() == 1);
}

TEST_CASE("projects: a co-editing change updates the cell's content, version, updated_at and history",
          "[projections][projects][cells][collab]") {
  const auto projects = make_projects_projection();
  memory_rows rows;
  feed(*projects, rows, committed(1, "project-p-1", 1, apollo));
  feed(*projects, rows, committed(2, "project-p-1", 2, project_cell_added{"a", "sql", "select 1", ""}));
  feed(*projects, rows, committed(3, "project-p-1", 3, project_cell_added{"b", "sql", "select 9", "a"}));
  feed(*projects, rows,
       committed(4, "project-p-1", 4,
                 project_cell_changed{
                     "a", {json::parse(R"([7, [1, "😀"]])"), json::parse(R"([9, [0, " ü"]])")}, "client-1", 3}));
  const auto row = rows.get("projects", "p-1");
  REQUIRE(row != nullptr);
  const auto& a = row->at("cells")[0];
  CHECK(a.at("content") == "select 😀 ü");
  CHECK(a.at("version") == 3);
  CHECK(a.at("updated_at") == "2026-01-01T00:00:04.000000Z");
  CHECK(row->at("cells")[1].at("updated_at") == "2026-01-01T00:00:03.000000Z");
  CHECK(row->at("cell_updates").at("a") == json::parse(R"([{"version":2,"changes":[7,[1,"😀"]],"client_id":"client-1"},
                        {"version":3,"changes":[9,[0," ü"]],"client_id":"client-1"}])"));
  CHECK(row->at("cell_updates").at("b") == json::array());
  CHECK_FALSE(project_view_of_row(*row).contains("cell_updates"));
}

// --- audit ------------------------------------------------------------------------

TEST_CASE("position_key is 20 zero-padded digits that sort by position", "[projections][audit]") {
  CHECK(position_key(0) == "00000000000000000000");
  CHECK(position_key(42) == "00000000000000000042");
  CHECK(position_key(18446744073709551615ull) == "18446744073709551615");
  CHECK(position_key(9) < position_key(10));
  CHECK(position_key(99999) < position_key(100000));
}

TEST_CASE("audit: one entry per event of every stream keyed by position", "[projections][audit]") {
  const auto audit = make_audit_projection();
  CHECK(audit->name() == "audit");
  memory_rows rows;
  feed(*audit, rows, committed(1, "user-alice-id", 1, alice, "system"));
  feed(*audit, rows, committed(2, "username-alice", 1, username_claimed{"alice", "alice-id"}, "system"));
  feed(*audit, rows, committed(10, "project-p-1", 1, apollo, "user-alice-id"));
  // Even a type this build does not know is audited.
  auto unknown = committed(11, "widget-w-1", 3, project_archived{"x"}, "user-bob-id");
  unknown.type = "widget.spun";
  feed(*audit, rows, unknown);

  CHECK(rows.keys("entries") ==
        std::vector<std::string>{position_key(1), position_key(2), position_key(10), position_key(11)});
  const auto entry = rows.get("entries", position_key(10));
  REQUIRE(entry != nullptr);
  CHECK(entry->at("position") == 10);
  CHECK(entry->at("actor") == "user-alice-id");
  CHECK(entry->at("stream") == "project-p-1");
  CHECK(entry->at("type") == "project.created");
  CHECK(entry->at("version") == 1);
  CHECK(entry->at("time") == "2026-01-01T00:00:10.000000Z");
  CHECK(entry->at("correlation_id") == "req-10");
  CHECK(entry->at("event_id") == "evt-10");
  // The audit log records who did what, never the payload (and so never a secret).
  CHECK_FALSE(entry->contains("data"));
  CHECK(rows.get("entries", position_key(1))->dump().find("$argon2id$") == std::string::npos);

  const auto other = rows.get("entries", position_key(11));
  REQUIRE(other != nullptr);
  CHECK(other->at("type") == "widget.spun");
  CHECK(other->at("stream") == "widget-w-1");
  CHECK(other->at("actor") == "user-bob-id");
  CHECK(other->at("version") == 3);
}

TEST_CASE("all projections are built in runner order", "[projections]") {
  const auto all = make_all_projections();
  std::vector<std::string> names;
  for (const auto& p : all) names.emplace_back(p->name());
  CHECK(names == std::vector<std::string>{"users", "projects", "audit", "groups", "connections", "jobs", "containers",
                                          "schedules"});
}

TEST_CASE("projections write only their own tables", "[projections]") {
  const auto all = make_all_projections();
  const std::map<std::string, std::set<std::string>> own{{"users", {"users", "usernames"}},
                                                         {"projects", {"projects", "user_projects", "group_projects"}},
                                                         {"audit", {"entries"}},
                                                         // position 1: the marker of counts kept from the start
                                                         {"jobs", {"job_counts"}},
                                                         {"containers", {"container_counts"}}};
  const std::vector<envelope> log{
      committed(1, "user-alice-id", 1, alice),
      committed(2, "username-alice", 1, username_claimed{"alice", "alice-id"}),
      committed(3, "project-p-1", 1, apollo),
      committed(4, "project-p-1", 2, project_member_added{"alice-id", "owner"}),
      committed(5, "project-p-1", 3, project_member_removed{"alice-id"}),
  };
  for (const auto& p : all) {
    memory_rows rows;
    for (const auto& e : log) {
      for (const auto& m : feed(*p, rows, e)) {
        const auto& table = std::visit([](const auto& x) -> const std::string& { return x.table; }, m);
        INFO("projection " << p->name() << " wrote table " << table);
        CHECK(own.at(std::string(p->name())).contains(table));
      }
    }
  }
}

TEST_CASE("projects: a cell's connection, and its last job from job.submitted, in the row",
          "[projections][projects][cells]") {
  const auto projects = make_projects_projection();
  auto job = [](std::string id, std::string cell) {
    job_submitted j;
    j.job_id = std::move(id);
    j.project_id = "p-1";
    j.kind = "sql";
    j.connection_id = "conn-1";
    j.sql = "select 1";
    j.submitted_by = "alice-id";
    j.cell_id = std::move(cell);
    return j;
  };
  const std::vector<envelope> log{
      committed(1, "project-p-1", 1, apollo),
      committed(2, "project-p-1", 2, project_member_added{"alice-id", "owner"}),
      committed(3, "project-p-1", 3, project_cell_added{"a", "sql", "select 1", ""}),
      committed(4, "project-p-1", 4, project_cell_connection_set{"a", "conn-1"}),
      committed(5, "project-p-1", 5, project_cell_added{"b", "markdown", "# b", "a"}),
      committed(6, "job-j-1", 1, job("j-1", "a")),
      committed(7, "job-j-2", 1, job("j-2", "")),  // not a cell's job
      committed(8, "job-j-3", 1, job("j-3", "a")),
      committed(9, "project-p-1", 6, project_cell_edited{"a", "select 2", 2, "op-1"}),
      committed(10, "project-p-1", 7, project_cell_moved{"a", "b"}),
      committed(11, "job-j-4", 1, job("j-4", "gone")),  // a cell this project does not have
  };
  memory_rows rows;
  for (const auto& e : log) feed(*projects, rows, e);
  auto row = rows.get("projects", "p-1");
  REQUIRE(row != nullptr);
  CHECK(row->at("version") == 7);
  const auto& cells = row->at("cells");
  REQUIRE(cells.size() == 2);
  CHECK(cells[1].at("cell_id") == "a");
  CHECK(cells[1].at("connection_id") == "conn-1");
  CHECK(cells[1].at("last_job_id") == "j-3");  // kept across the edit and the move
  CHECK(cells[1].at("updated_at") == "2026-01-01T00:00:09.000000Z");
  CHECK(cells[0].at("connection_id") == "");
  CHECK(cells[0].at("last_job_id") == "");
  // The job does not change the project's version or times.
  CHECK(row->at("updated_at") == "2026-01-01T00:00:10.000000Z");
  // The aggregate's state folds back from the row with the connection.
  CHECK(project_from_row(*row).cells[1].connection_id == "conn-1");

  SECTION("a rebuild from position 0 gives the same row") {
    memory_rows again;
    for (const auto& e : log) feed(*projects, again, e);
    CHECK(*again.get("projects", "p-1") == *row);
  }
  SECTION("clearing the connection keeps the last job") {
    feed(*projects, rows, committed(12, "project-p-1", 8, project_cell_connection_set{"a", ""}));
    const auto& a = rows.get("projects", "p-1")->at("cells")[1];
    CHECK(a.at("connection_id") == "");
    CHECK(a.at("last_job_id") == "j-3");
  }
}
