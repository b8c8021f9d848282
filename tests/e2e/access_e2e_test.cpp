/// The access matrix, end to end against the real atriumd: for every endpoint, each kind
/// of caller gets the expected status from the one policy decision point, and every
/// denial is recorded as `security.access_denied`.
///
/// Cast: admin; auditor; owner (creates project P and connection C); editor (direct
/// editor of P, direct user of C); viewer (direct viewer of P); outsider (a member
/// with no grant); groupie (member of group H, nested in group G; G is editor of P and
/// user of C); disabled (a member disabled after logging in); none (no token); bad
/// (a made-up token).
///
/// Requests are chosen so that an allowed call fails validation or a precondition
/// afterwards where it would otherwise change shared state (e.g. a stale If-Match
/// answers 409 once the policy let the call through): the status tells the policy's
/// answer apart from the domain's.

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

const std::vector<std::string> k_callers{"admin",    "auditor", "owner",    "editor", "viewer",
                                         "outsider", "groupie", "disabled", "none",   "bad"};

/// One row of the matrix: a request and the status per caller.
struct row {
  std::string method;
  std::string target;
  json body;
  std::map<std::string, unsigned> expect;  ///< caller → status; callers not listed: `otherwise`
  unsigned otherwise = 0;
};

}  // namespace

TEST_CASE("every endpoint answers each caller as the policy says, and denials are audited", "[e2e][access]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "0"});  // job J stays queued for its cancel row
  auto admin = server.admin();

  // --- the cast ----------------------------------------------------------------------
  std::map<std::string, std::string> ids, tokens;
  for (const auto& [name, role] : std::vector<std::pair<std::string, std::string>>{{"auditor", "auditor"},
                                                                                   {"owner", "member"},
                                                                                   {"editor", "member"},
                                                                                   {"viewer", "member"},
                                                                                   {"outsider", "member"},
                                                                                   {"groupie", "member"},
                                                                                   {"disabled", "member"},
                                                                                   {"victim", "member"}}) {
    auto r = admin.post("/v1/users", {{"username", name},
                                      {"email", name + "@example.org"},
                                      {"password", atrium::test::password_for(name, "-pw-123456")},
                                      {"role", role}});
    ids[name] = id_of(r);
    tokens[name] = server.login(name, atrium::test::password_for(name, "-pw-123456"));
  }
  tokens["admin"] = server.login("admin", k_admin_password);
  tokens["none"] = "";
  tokens["bad"] = "not-a-real-token-0000000000000000";
  auto as = [&](const std::string& who) { return server.client(tokens.at(who)); };

  // Groups: H (groupie) nested in G.
  const auto g = id_of(admin.post("/v1/groups", {{"name", "analysts"}}));
  const auto h = id_of(admin.post("/v1/groups", {{"name", "interns"}}));
  REQUIRE(admin.post("/v1/groups/" + h + "/members", {{"user_id", ids["groupie"]}}).status == 200);
  REQUIRE(admin.post("/v1/groups/" + g + "/members", {{"group_id", h}}).status == 200);
  // A cycle is refused: G already contains H.
  CHECK(admin.post("/v1/groups/" + h + "/members", {{"group_id", g}}).status == 409);

  // Project P: owner; editor, viewer direct; G as editor.
  auto owner = as("owner");
  const auto p = id_of(owner.post("/v1/projects", {{"name", "Apollo"}}));
  const auto project_created_at = last_position(admin, "project-" + p);
  REQUIRE(owner.post("/v1/projects/" + p + "/members", {{"user_id", ids["editor"]}, {"role", "editor"}}).status == 200);
  REQUIRE(owner.post("/v1/projects/" + p + "/members", {{"user_id", ids["viewer"]}, {"role", "viewer"}}).status == 200);
  REQUIRE(owner.post("/v1/projects/" + p + "/members", {{"group_id", g}, {"role", "editor"}}).status == 200);

  // A cell of P, for the cell rows (changed there only by edits that fail after the policy).
  auto cell = owner.post("/v1/projects/" + p + "/cells", {{"kind", "sql"}, {"content", "select 1"}});
  REQUIRE(cell.status == 201);
  const auto cell_id = cell.json.at("cell_id").get<std::string>();
  const std::string no_cell = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a99";

  // Connection C (SQLite): owner; editor and G may use it.
  const auto db = server.data / "files" / "warehouse.sqlite";  // under the SQLite root
  {
    // An empty file is a valid (empty) SQLite database.
    std::ofstream(db).flush();
  }
  auto created = owner.post("/v1/connections", {{"name", "warehouse"},
                                                {"driver", "sqlite"},
                                                {"params", {{"path", db.string()}}},
                                                {"credentials", json::object()}});
  const auto conn = id_of(created);
  REQUIRE(owner.post("/v1/connections/" + conn + "/members", {{"user_id", ids["editor"]}, {"role", "user"}}).status ==
          200);
  REQUIRE(owner.post("/v1/connections/" + conn + "/members", {{"group_id", g}, {"role", "user"}}).status == 200);

  // Job J by the editor; container K by the admin.
  const json job_body{{"project_id", p}, {"kind", "sql"}, {"connection_id", conn}, {"sql", "select 1"}};
  const auto job = id_of(as("editor").post("/v1/jobs", job_body));
  const auto container =
      id_of(admin.post("/v1/containers", {{"name", "notebook"}, {"image", "busybox"}, {"command", {"sleep", "0"}}}));
  // Service account S (its tokens' own scope checks are in tokens_e2e_test.cpp).
  const auto sa = id_of(admin.post("/v1/service-accounts", {{"name", "matrix-bot"}}));

  // Schedules S (kept) and S2 (deleted by its row) of P, by the owner.
  const json schedule_body{{"name", "nightly"},
                           {"project_id", p},
                           {"cron", "0 6 * * 1-5"},
                           {"time_zone", "Europe/Berlin"},
                           {"target", {{"kind", "sql"}, {"connection_id", conn}, {"sql", "select 1"}}}};
  const auto schedule = id_of(owner.post("/v1/schedules", schedule_body));
  const auto schedule2 = id_of(owner.post("/v1/schedules", schedule_body));

  // The disabled user logged in before being disabled: the token must fail at once.
  REQUIRE(admin.request("POST", "/v1/users/" + ids["disabled"] + "/disable").status == 200);

  // --- the matrix --------------------------------------------------------------------
  // Callers not authenticated: 401 on every row, checked for all rows below.
  const std::map<std::string, unsigned> unauth{{"disabled", 401}, {"none", 401}, {"bad", 401}};
  auto with = [&](std::map<std::string, unsigned> m) {
    m.insert(unauth.begin(), unauth.end());
    return m;
  };
  const auto all_members_of_p = [&](unsigned allowed, unsigned outsider) {
    return with({{"admin", allowed},
                 {"auditor", allowed},
                 {"owner", allowed},
                 {"editor", allowed},
                 {"viewer", allowed},
                 {"groupie", allowed},
                 {"outsider", outsider}});
  };

  // Changes of P's content: editors, owners and admins; viewers and auditors 403; outsiders 404.
  const auto editors_of_p = [&](unsigned allowed) {
    return with({{"admin", allowed},
                 {"owner", allowed},
                 {"editor", allowed},
                 {"groupie", allowed},
                 {"viewer", 403},
                 {"auditor", 403},
                 {"outsider", 404}});
  };

  const std::string k_no_lease = "0193a1c2-0000-7000-8000-000000000000";  // a lease no worker holds
  const std::vector<row> matrix{
      // users
      {"GET", "/v1/users", {}, with({}), 200},
      {"GET", "/v1/users/" + ids["viewer"], {}, with({}), 200},
      {"POST", "/v1/users", json::object(), with({{"admin", 400}}), 403},
      {"POST", "/v1/users/" + ids["victim"] + "/disable", {}, with({{"admin", 200}}), 403},
      {"PATCH", "/v1/users/" + ids["viewer"], json::object(), with({{"admin", 400}, {"viewer", 400}}), 403},
      // groups
      {"GET", "/v1/groups", {}, with({}), 200},
      {"POST", "/v1/groups", {{"name", " "}}, with({{"auditor", 403}}), 400},
      {"GET", "/v1/groups/" + g, {}, with({{"admin", 200}, {"auditor", 200}, {"groupie", 200}}), 404},
      {"POST",
       "/v1/groups/" + g + "/members",
       {{"user_id", "x"}, {"group_id", "y"}},
       with({{"admin", 400}, {"auditor", 403}, {"groupie", 403}}),
       404},
      {"DELETE",
       "/v1/groups/" + g + "/members/nobody",
       {},
       with({{"admin", 404}, {"auditor", 403}, {"groupie", 403}}),
       404},
      // projects
      {"GET", "/v1/projects", {}, with({}), 200},
      {"POST", "/v1/projects", {{"name", ""}}, with({{"auditor", 403}}), 400},
      {"GET", "/v1/projects/" + p, {}, all_members_of_p(200, 404), 0},
      {"GET", "/v1/streams/project-" + p, {}, all_members_of_p(200, 404), 0},
      {"PATCH",
       "/v1/projects/" + p,
       {{"name", "Artemis"}},
       with({{"admin", 428},
             {"owner", 428},
             {"editor", 428},
             {"groupie", 428},
             {"viewer", 403},
             {"auditor", 403},
             {"outsider", 404}}),
       0},
      {"POST",
       "/v1/projects/" + p + "/members",
       {{"user_id", ids["outsider"]}, {"role", "boss"}},
       with({{"admin", 400}, {"owner", 400}, {"outsider", 404}}),
       403},
      {"DELETE",
       "/v1/projects/" + p + "/members/nobody",
       {},
       with({{"admin", 404}, {"owner", 404}, {"outsider", 404}}),
       403},
      // project cells: editors edit (a stale base version or a bad kind fails after the policy)
      {"GET", "/v1/projects/" + p + "/cells", {}, all_members_of_p(200, 404), 0},
      {"GET", "/v1/projects/" + p + "/cells/" + cell_id, {}, all_members_of_p(200, 404), 0},
      {"POST", "/v1/projects/" + p + "/cells", {{"kind", "cobol"}}, editors_of_p(400), 0},
      {"PATCH",
       "/v1/projects/" + p + "/cells/" + cell_id,
       {{"content", "select 2"}, {"base_version", 99}, {"op_id", "matrix-1"}},
       editors_of_p(409),
       0},
      {"PATCH", "/v1/projects/" + p + "/cells/" + cell_id, {{"after", no_cell}}, editors_of_p(400), 0},
      {"DELETE", "/v1/projects/" + p + "/cells/" + no_cell, {}, editors_of_p(404), 0},
      // a cell's connection and its runs: editors who may use the connection (the fixture
      // cell has no connection, so an admitted run is refused afterwards with 400)
      {"POST", "/v1/projects/" + p + "/cells", {{"kind", "cobol"}, {"connection_id", conn}}, editors_of_p(400), 0},
      {"PATCH",
       "/v1/projects/" + p + "/cells/" + cell_id,
       {{"connection_id", conn}, {"after", ""}},
       editors_of_p(400),
       0},
      {"POST", "/v1/projects/" + p + "/cells/" + cell_id + "/run", {}, editors_of_p(400), 0},
      {"POST", "/v1/projects/" + p + "/cells/" + no_cell + "/run", {{"timeout_s", 5}}, editors_of_p(404), 0},
      // connections
      {"GET", "/v1/connections", {}, with({}), 200},
      {"POST", "/v1/connections", {{"name", "x"}, {"driver", "oracle"}}, with({{"auditor", 403}}), 400},
      {"GET",
       "/v1/connections/" + conn,
       {},
       with({{"admin", 200}, {"auditor", 200}, {"owner", 200}, {"editor", 200}, {"groupie", 200}}),
       404},
      {"PATCH", "/v1/connections/" + conn, json::object(),
       with({{"admin", 400}, {"owner", 400}, {"auditor", 403}, {"editor", 403}, {"groupie", 403}}), 404},
      {"POST",
       "/v1/connections/" + conn + "/test",
       {},
       with({{"admin", 200}, {"owner", 200}, {"editor", 200}, {"groupie", 200}, {"auditor", 403}}),
       404},
      {"POST",
       "/v1/connections/" + conn + "/members",
       {{"user_id", ids["viewer"]}, {"role", "admiral"}},
       with({{"admin", 400}, {"owner", 400}, {"auditor", 403}, {"editor", 403}, {"groupie", 403}}),
       404},
      // jobs
      {"GET", "/v1/jobs", {}, with({}), 200},
      {"POST", "/v1/jobs", job_body,
       with({{"admin", 201},
             {"owner", 201},
             {"editor", 201},
             {"groupie", 201},
             {"viewer", 403},
             {"auditor", 403},
             {"outsider", 404}}),
       0},
      {"GET", "/v1/jobs/" + job, {}, all_members_of_p(200, 404), 0},
      // a job's output: J has not finished (409 once the policy let the call through)
      {"GET", "/v1/jobs/" + job + "/result?limit=5", {}, all_members_of_p(409, 404), 0},
      {"GET", "/v1/jobs/" + job + "/result.csv", {}, all_members_of_p(409, 404), 0},
      {"GET", "/v1/jobs/" + job + "/log", {}, all_members_of_p(409, 404), 0},
      {"POST", "/v1/jobs/" + job + "/cancel", json::object(),
       with({{"admin", 200},
             {"owner", 200},
             {"editor", 200},
             {"groupie", 200},
             {"viewer", 403},
             {"auditor", 403},
             {"outsider", 404}}),
       0},
      // schedules
      {"GET", "/v1/schedules", {}, with({}), 200},
      {"POST", "/v1/schedules", schedule_body,
       with({{"admin", 201},
             {"owner", 201},
             {"editor", 201},
             {"groupie", 201},
             {"viewer", 403},
             {"auditor", 403},
             {"outsider", 404}}),
       0},
      {"GET", "/v1/schedules/" + schedule, {}, all_members_of_p(200, 404), 0},
      {"GET", "/v1/schedules/" + schedule + "/runs", {}, all_members_of_p(200, 404), 0},
      // a schedule's history reads like the schedule (schedule.read), over the streams route
      {"GET", "/v1/streams/schedule-" + schedule, {}, all_members_of_p(200, 404), 0},
      {"PATCH", "/v1/schedules/" + schedule, {{"name", " "}}, editors_of_p(400), 0},
      {"POST", "/v1/schedules/" + schedule + "/pause", json::object(), editors_of_p(200), 0},
      {"POST", "/v1/schedules/" + schedule + "/resume", {}, editors_of_p(200), 0},
      // the admin deletes S2 first; then it is gone (auditors change nothing: 403)
      {"DELETE", "/v1/schedules/" + schedule2, {}, with({{"admin", 200}, {"auditor", 403}}), 404},
      // a deleted schedule has no project any more: its history is the log readers' only
      {"GET", "/v1/streams/schedule-" + schedule2, {}, with({{"admin", 200}, {"auditor", 200}}), 404},
      // containers
      {"GET", "/v1/containers", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"GET", "/v1/containers/" + container, {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"POST", "/v1/containers", {{"name", "Not A Name"}, {"image", "busybox"}}, with({{"admin", 400}}), 403},
      {"POST", "/v1/containers/" + container + "/stop", {}, with({{"admin", 200}}), 403},
      {"PATCH", "/v1/containers/" + container, {{"env", {{"A", "b"}}}}, with({{"admin", 200}}), 403},
      // it never ran: no logs (but only admins get that far)
      {"GET", "/v1/containers/" + container + "/logs", {}, with({{"admin", 404}}), 403},
      // remote workers (job.work: admins; worker.list: admins and auditors)
      {"GET", "/v1/workers", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"POST", "/v1/workers/claim", {{"worker", "matrix"}, {"slots_free", 0}}, with({{"admin", 204}}), 403},
      {"POST", "/v1/workers/leases/" + k_no_lease + "/heartbeat", {{"worker", "matrix"}}, with({{"admin", 410}}), 403},
      {"POST",
       "/v1/workers/leases/" + k_no_lease + "/result",
       {{"worker", "matrix"}, {"seq", 0}},
       with({{"admin", 410}}),
       403},
      {"POST",
       "/v1/workers/leases/" + k_no_lease + "/complete",
       {{"worker", "matrix"}, {"outcome", "failed"}, {"batches", 0}},
       with({{"admin", 410}}),
       403},
      // the logs
      {"GET", "/v1/audit", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"GET", "/v1/audit/verify", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"GET", "/v1/events", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"GET", "/v1/streams/security", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"GET", "/v1/audit/export?format=csv", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      // projections and time travel
      {"GET", "/v1/admin/projections", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"POST", "/v1/admin/projections/nonsense/rebuild", {}, with({{"admin", 404}}), 403},
      {"GET", "/v1/projects/" + p + "?as_of=" + std::to_string(project_created_at), {}, all_members_of_p(200, 404), 0},
      {"GET", "/v1/jobs/" + job + "?as_of=1", {}, all_members_of_p(404, 404), 0},
      // service accounts and API tokens (bodies that fail validation once admitted)
      {"POST", "/v1/service-accounts", {{"name", "No Spaces"}}, with({{"admin", 400}}), 403},
      {"GET", "/v1/service-accounts", {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"GET", "/v1/service-accounts/" + sa, {}, with({{"admin", 200}, {"auditor", 200}}), 403},
      {"POST", "/v1/service-accounts/" + no_cell + "/disable", {}, with({{"admin", 404}}), 403},
      {"POST", "/v1/service-accounts/" + sa + "/tokens", json::object(), with({{"admin", 400}}), 403},
      {"GET", "/v1/service-accounts/" + sa + "/tokens", {}, with({{"admin", 200}}), 403},
      {"POST", "/v1/tokens", {{"name", "x"}}, with({}), 400},
      {"GET", "/v1/tokens", {}, with({}), 200},
      {"DELETE", "/v1/tokens/" + no_cell, {}, with({}), 404},
  };

  std::size_t denials = 0;
  for (const auto& r : matrix) {
    for (const auto& who : k_callers) {
      const auto it = r.expect.find(who);
      const unsigned want = it == r.expect.end() ? r.otherwise : it->second;
      const auto body = r.body.is_null() ? std::string() : r.body.dump();
      const auto got = as(who).request(r.method, r.target, body);
      INFO(r.method << " " << r.target << " as " << who << " -> " << got.status << " " << got.body);
      CHECK(got.status == want);
      if ((want == 403 || want == 404) && got.json.contains("error") &&
          (got.json["error"].value("code", "") == "forbidden" || who == "outsider")) {
        ++denials;
      }
    }
  }

  // Every policy denial is in the security stream, with who, what and why.
  std::size_t recorded = 0;
  bool outsider_seen = false;
  for (const auto& e : stream_events(admin, "security")) {
    if (e.at("type") != "security.access_denied") continue;
    ++recorded;
    const auto& d = e.at("data");
    CHECK_FALSE(d.at("operation").get<std::string>().empty());
    CHECK_FALSE(d.at("reason").get<std::string>().empty());
    if (d.at("user_id") == ids["outsider"] && d.at("operation") == "project.read" && d.at("status") == 404 &&
        d.at("resource") == "project-" + p) {
      outsider_seen = true;
    }
  }
  CHECK(outsider_seen);
  CHECK(recorded >= denials);
  CHECK(denials > 50);
}
