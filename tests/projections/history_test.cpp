/// fold_view: one stream's events folded into the entity's API view, per aggregate,
/// over hand-built envelopes.

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "events/connection/connection_events.hpp"
#include "events/container/container_events.hpp"
#include "events/group/group_events.hpp"
#include "events/job/job_events.hpp"
#include "events/project/project_events.hpp"
#include "events/user/user_events.hpp"
#include "projections/history.hpp"
#include "tests/support/read_model.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::committed;

/// fold_view that must succeed.
std::optional<json> fold_ok(std::string_view stream, const std::vector<envelope>& events) {
  auto r = fold_view(stream, events);
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
  return *r;
}

}  // namespace

TEST_CASE("history: a user folds into its view without the password hash", "[history]") {
  const std::vector<envelope> events{
      committed(1, "user-u1", 1, user_registered{"u1", "alice", "alice@example.org", "member", "$argon2id$h1"}),
      committed(4, "user-u1", 2, user_role_granted{"auditor"}),
      committed(9, "user-u1", 3, user_password_changed{"$argon2id$h2"}),
  };
  const auto view = fold_ok("user-u1", events);
  REQUIRE(view.has_value());
  CHECK(view->at("id") == "u1");
  CHECK(view->at("username") == "alice");
  CHECK(view->at("roles") == json::array({"member", "auditor"}));  // in role order
  CHECK(view->at("version") == 3);
  CHECK_FALSE(view->contains("password_hash"));
  CHECK(view->dump().find("argon2id") == std::string::npos);

  // A prefix of the stream is the user as it was then (time travel folds prefixes).
  const auto earlier = fold_ok("user-u1", {events[0]});
  REQUIRE(earlier.has_value());
  CHECK(earlier->at("roles") == json::array({"member"}));
  CHECK(earlier->at("version") == 1);
}

TEST_CASE("history: a project folds through renames with the version of the envelopes", "[history]") {
  const std::vector<envelope> events{
      committed(2, "project-p1", 1, project_created{"p1", "Apollo", "to the moon", "u1"}),
      committed(3, "project-p1", 2, project_member_added{"u1", "owner"}),
      committed(7, "project-p1", 3, project_renamed{"Artemis"}),
  };
  const auto view = fold_ok("project-p1", events);
  REQUIRE(view.has_value());
  CHECK(*view == json{{"id", "p1"},
                      {"name", "Artemis"},
                      {"description", "to the moon"},
                      {"created_by", "u1"},
                      {"members", json::array({{{"user_id", "u1"}, {"role", "owner"}}})},
                      {"groups", json::array()},
                      {"archived", false},
                      {"cells", json::array()},
                      {"version", 3}});
}

TEST_CASE("history: a project's cells fold as they were at each point", "[history][cells]") {
  const std::vector<envelope> events{
      committed(2, "project-p1", 1, project_created{"p1", "Apollo", "", "u1"}),
      committed(3, "project-p1", 2, project_member_added{"u1", "owner"}),
      committed(4, "project-p1", 3, project_cell_added{"a", "sql", "select 1", ""}),
      committed(5, "project-p1", 4, project_cell_added{"b", "markdown", "# b", "a"}),
      committed(6, "project-p1", 5, project_cell_edited{"a", "select 2", 2, "op-1"}),
      committed(7, "project-p1", 6, project_cell_moved{"a", "b"}),
      committed(8, "project-p1", 7, project_cell_removed{"b"}),
  };
  auto at = [&](std::size_t n) {
    const auto view = fold_ok("project-p1", std::vector<envelope>(events.begin(), events.begin() + n));
    REQUIRE(view.has_value());
    return view->at("cells");
  };
  CHECK(at(2) == json::array());
  CHECK(at(4) == json::array({{{"cell_id", "a"},
                               {"kind", "sql"},
                               {"content", "select 1"},
                               {"version", 1},
                               {"after", ""},
                               {"connection_id", ""}},
                              {{"cell_id", "b"},
                               {"kind", "markdown"},
                               {"content", "# b"},
                               {"version", 1},
                               {"after", "a"},
                               {"connection_id", ""}}}));
  CHECK(at(6) == json::array({{{"cell_id", "b"},
                               {"kind", "markdown"},
                               {"content", "# b"},
                               {"version", 1},
                               {"after", ""},
                               {"connection_id", ""}},
                              {{"cell_id", "a"},
                               {"kind", "sql"},
                               {"content", "select 2"},
                               {"version", 2},
                               {"after", "b"},
                               {"connection_id", ""}}}));
  CHECK(at(7) == json::array({{{"cell_id", "a"},
                               {"kind", "sql"},
                               {"content", "select 2"},
                               {"version", 2},
                               {"after", ""},
                               {"connection_id", ""}}}));
  // The view carries no bookkeeping of the aggregate.
  const auto full = fold_ok("project-p1", events);
  CHECK_FALSE(full->contains("removed_cells"));
  CHECK_FALSE(full->contains("recent_edits"));
}

TEST_CASE("history: groups and connections (no vault_ref) and jobs and containers", "[history]") {
  SECTION("group") {
    const auto view = fold_ok("group-g1", {committed(1, "group-g1", 1, group_created{"g1", "ops", "", "u1"}),
                                           committed(2, "group-g1", 2, group_member_added{"user", "u1"})});
    REQUIRE(view.has_value());
    CHECK(view->at("name") == "ops");
    CHECK(view->at("members") == json::array({{{"user_id", "u1"}}}));
    CHECK(view->at("version") == 2);
  }
  SECTION("connection") {
    connection_created created;
    created.connection_id = "c1";
    created.name = "warehouse";
    created.driver = "sqlite";
    created.params = {{"path", "/data/w.db"}};
    created.vault_ref = "vault:0123456789abcdef0123456789abcdef";
    created.fingerprint = "fp";
    created.created_by = "u1";
    const auto view = fold_ok("connection-c1", {committed(1, "connection-c1", 1, created),
                                                committed(2, "connection-c1", 2, connection_tested{true, "", 12})});
    REQUIRE(view.has_value());
    CHECK(view->at("name") == "warehouse");
    CHECK(view->at("last_test").at("latency_ms") == 12);
    CHECK(view->at("version") == 2);
    CHECK_FALSE(view->contains("vault_ref"));
    CHECK(view->dump().find("vault:") == std::string::npos);
  }
  SECTION("job") {
    job_submitted submitted;
    submitted.job_id = "j1";
    submitted.project_id = "p1";
    submitted.kind = "script";
    submitted.script = "echo hi";
    submitted.language = "bash";
    submitted.timeout_s = 60;
    submitted.submitted_by = "u1";
    const auto view = fold_ok("job-j1", {committed(1, "job-j1", 1, submitted), committed(2, "job-j1", 2, job_queued{}),
                                         committed(3, "job-j1", 3, job_started{"runner-1"})});
    REQUIRE(view.has_value());
    CHECK(view->at("status") == "running");
    CHECK(view->at("version") == 3);
  }
  SECTION("container") {
    container_declared declared;
    declared.container_id = "k1";
    declared.name = "db";
    declared.image = "postgres:16";
    declared.declared_by = "u1";
    const auto view = fold_ok("container-k1", {committed(1, "container-k1", 1, declared),
                                               committed(2, "container-k1", 2, container_start_requested{})});
    REQUIRE(view.has_value());
    CHECK(view->at("image") == "postgres:16");
    CHECK(view->at("desired") == "running");
    CHECK(view->at("version") == 2);
  }
}

TEST_CASE("history: other stream kinds and streams without a creation fold to nullopt", "[history]") {
  const auto claim = committed(1, "username-alice", 1, username_claimed{"alice", "u1"});
  CHECK_FALSE(fold_ok("username-alice", {claim}).has_value());
  CHECK_FALSE(fold_ok("security-u1", {}).has_value());
  CHECK_FALSE(fold_ok("user-u1", {}).has_value());
  CHECK_FALSE(fold_ok("project-p1", {}).has_value());
}

TEST_CASE("history: an event that does not decode is invalid_argument naming position and type", "[history]") {
  SECTION("a type of another aggregate") {
    const auto r = fold_view("project-p1", {committed(1, "project-p1", 1, project_created{"p1", "A", "", "u1"}),
                                            committed(5, "project-p1", 2, user_role_granted{"admin"})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(r.error().details == json{{"position", 5}, {"type", "user.role_granted"}});
    CHECK(r.error().message.find("position 5") != std::string::npos);
    CHECK(r.error().message.find("user.role_granted") != std::string::npos);
  }
  SECTION("a malformed payload") {
    auto bad = committed(3, "project-p1", 1, project_created{"p1", "A", "", "u1"});
    bad.data = json{{"name", 42}};
    const auto r = fold_view("project-p1", {bad});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(r.error().details.at("position") == 3);
    CHECK(r.error().details.at("type") == "project.created");
  }
}
