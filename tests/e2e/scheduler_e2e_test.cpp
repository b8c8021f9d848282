/// The scheduler end to end against the real atriumd (issue 16, point 1): an `@every 1s`
/// schedule fires once a second, and never twice for one instant across a SIGKILL and a
/// restart; `catch_up` none and last after downtime; a scheduled DataDoc runs its SQL
/// cells in order and stops at the first failing one; a schedule whose owner loses edit
/// rights or is disabled is paused by the system.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "events/schedule/cron.hpp"
#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;
using std::chrono::seconds;
using std::chrono::sys_seconds;

sys_seconds instant(const json& text) {
  auto t = atrium::parse_utc(text.get<std::string>());
  REQUIRE(t.has_value());
  return *t;
}

/// A SQLite connection on a fresh file under the data dir's `files` (the default
/// `--sqlite-root`), owned by the caller.
std::string sqlite_connection(http_client& as, const atriumd_server& server, const std::string& name) {
  const auto db = server.data / "files" / (name + ".sqlite");
  std::filesystem::create_directories(db.parent_path());
  std::ofstream(db).flush();  // an empty file is an empty SQLite database
  return id_of(as.post(
      "/v1/connections",
      {{"name", name}, {"driver", "sqlite"}, {"params", {{"path", db.string()}}}, {"credentials", json::object()}}));
}

json sql_job(const std::string& conn, const std::string& sql) {
  return {{"kind", "sql"}, {"connection_id", conn}, {"sql", sql}, {"script", ""}, {"language", ""}, {"timeout_s", 60}};
}

json every_second(const std::string& project, const std::string& name, const json& target,
                  const std::string& catch_up = "none") {
  return {{"name", name},       {"project_id", project}, {"cron", "@every 1s"},
          {"time_zone", "UTC"}, {"target", target},      {"catch_up", catch_up}};
}

json runs_of(http_client& as, const std::string& schedule) {
  auto r = as.get("/v1/schedules/" + schedule + "/runs?limit=1000");
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json.at("runs");
}

/// The `schedule.fired` events of a schedule's stream.
std::vector<json> fired_events(http_client& as, const std::string& schedule) {
  std::vector<json> out;
  for (const auto& e : stream_events(as, "schedule-" + schedule)) {
    if (e.at("type") == "schedule.fired") out.push_back(e);
  }
  return out;
}

/// Every instant fired once: the stream's fire times strictly increase, event ids and job
/// ids are unique.
void check_fired_once(http_client& as, const std::string& schedule) {
  std::set<std::string> event_ids, job_ids;
  std::optional<sys_seconds> last;
  for (const auto& e : fired_events(as, schedule)) {
    const auto t = instant(e.at("data").at("fire_time"));
    if (last) CHECK(t > *last);
    last = t;
    CHECK(event_ids.insert(e.at("id").get<std::string>()).second);
    for (const auto& j : e.at("data").at("job_ids")) CHECK(job_ids.insert(j.get<std::string>()).second);
  }
}

sys_seconds now_seconds() { return std::chrono::floor<seconds>(std::chrono::system_clock::now()); }

}  // namespace

TEST_CASE("scheduler: @every 1s fires once a second, and never twice for an instant across SIGKILL",
          "[e2e][scheduler]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto p = id_of(admin.post("/v1/projects", {{"name", "Ticks"}}));
  const auto conn = sqlite_connection(admin, server, "ticks");
  auto made = admin.post("/v1/schedules", every_second(p, "tick", sql_job(conn, "select 1 as one")));
  const auto s = id_of(made);
  const auto anchor = instant(made.json.at("anchor"));
  const auto owner = made.json.at("owner").get<std::string>();

  // N seconds after the anchor, N instants (anchor+1 … anchor+N) have fired, ± 1.
  std::this_thread::sleep_for(seconds(5));
  const auto elapsed = (now_seconds() - anchor).count();
  auto runs = runs_of(admin, s);
  INFO(runs.dump());
  CHECK(static_cast<long>(runs.size()) >= elapsed - 1);
  CHECK(static_cast<long>(runs.size()) <= elapsed + 1);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    CHECK(instant(runs[i].at("fire_time")) == anchor + seconds(i + 1));  // no instant skipped
    CHECK(runs[i].at("catch_up") == false);
    CHECK(runs[i].at("job_ids").size() == 1);
  }
  // Its jobs ran as the schedule's owner.
  REQUIRE(wait_until([&] { return runs_of(admin, s).at(0).at("outcome") == "succeeded"; }, seconds(10)));
  const auto job = admin.get("/v1/jobs/" + runs_of(admin, s).at(0).at("job_ids").at(0).get<std::string>());
  CHECK(job.json.at("submitted_by") == owner);
  CHECK(job.json.at("kind") == "sql");

  // SIGKILL (possibly between a firing and its job), restart at once: no instant twice,
  // and every run's job gets submitted and ends.
  REQUIRE(server.stop(SIGKILL) != 0);
  server.start();
  admin = server.admin();
  const auto before = runs_of(admin, s).size();
  REQUIRE(wait_until([&] { return runs_of(admin, s).size() >= before + 2; }, seconds(10)));
  server.stop(SIGKILL);
  server.start();
  admin = server.admin();
  REQUIRE(wait_until([&] { return runs_of(admin, s).size() >= before + 4; }, seconds(10)));
  REQUIRE(admin.post("/v1/schedules/" + s + "/pause", {{"reason", "test over"}}).status == 200);
  check_fired_once(admin, s);
  json now_runs;
  const bool all_ran = wait_until(
      [&] {
        now_runs = runs_of(admin, s);
        for (const auto& r : now_runs) {
          // A job the SIGKILL interrupted fails ("interrupted by server restart"); none is
          // left unsubmitted.
          if (r.at("outcome") == "running") return false;
          if (r.at("jobs").at(0).at("status") == "pending") return false;
        }
        return true;
      },
      seconds(20));
  INFO(now_runs.dump(1));
  REQUIRE(all_ran);
  server.stop();
}

TEST_CASE("scheduler: catch_up none skips instants missed while down, last fires the newest once", "[e2e][scheduler]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto p = id_of(admin.post("/v1/projects", {{"name", "Catch up"}}));
  const auto conn = sqlite_connection(admin, server, "catch");
  const auto none = id_of(admin.post("/v1/schedules", every_second(p, "none", sql_job(conn, "select 1"), "none")));
  const auto last = id_of(admin.post("/v1/schedules", every_second(p, "last", sql_job(conn, "select 2"), "last")));
  REQUIRE(
      wait_until([&] { return runs_of(admin, none).size() >= 2 && runs_of(admin, last).size() >= 2; }, seconds(10)));
  REQUIRE(server.stop() == 0);
  std::this_thread::sleep_for(seconds(4));  // at least 3 instants missed
  server.start();
  admin = server.admin();
  REQUIRE(
      wait_until([&] { return runs_of(admin, none).size() >= 4 && runs_of(admin, last).size() >= 5; }, seconds(10)));
  REQUIRE(admin.post("/v1/schedules/" + none + "/pause", json::object()).status == 200);
  REQUIRE(admin.post("/v1/schedules/" + last + "/pause", json::object()).status == 200);

  // The gap: consecutive fire times one second apart, except once, by at least 3 s.
  const auto gap_of = [&](const json& runs) {
    std::size_t at = 0;
    for (std::size_t i = 1; i < runs.size(); ++i) {
      const auto step = instant(runs[i].at("fire_time")) - instant(runs[i - 1].at("fire_time"));
      if (step != seconds(1)) {
        CHECK(at == 0);  // one gap only
        at = i;
      }
    }
    return at;
  };
  {
    auto runs = runs_of(admin, none);
    INFO(runs.dump());
    const auto at = gap_of(runs);
    REQUIRE(at > 0);
    CHECK(instant(runs[at].at("fire_time")) - instant(runs[at - 1].at("fire_time")) >= seconds(3));
    for (const auto& r : runs) CHECK(r.at("catch_up") == false);
  }
  {
    // `last`: exactly one catch-up run, for the newest missed instant (the second before
    // the first regular one after the restart), after a gap of missed instants.
    auto runs = runs_of(admin, last);
    INFO(runs.dump());
    std::size_t catch_ups = 0, at = 0;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      if (runs[i].at("catch_up") == true) {
        ++catch_ups;
        at = i;
      }
    }
    REQUIRE(catch_ups == 1);
    REQUIRE(at > 0);
    REQUIRE(at + 1 < runs.size());
    CHECK(instant(runs[at].at("fire_time")) - instant(runs[at - 1].at("fire_time")) >= seconds(3));
    CHECK(instant(runs[at + 1].at("fire_time")) - instant(runs[at].at("fire_time")) == seconds(1));
    check_fired_once(admin, last);
  }
  server.stop();
}

TEST_CASE("scheduler: a scheduled DataDoc runs its SQL cells in order and stops at the failing one",
          "[e2e][scheduler]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto p = id_of(admin.post("/v1/projects", {{"name", "Daily report"}}));
  const auto conn = sqlite_connection(admin, server, "report");
  const auto cells = "/v1/projects/" + p + "/cells";
  std::vector<std::string> ids;
  for (const auto& [kind, content] :
       std::vector<std::pair<std::string, std::string>>{{"sql", "select 1 as first"},
                                                        {"markdown", "# not run"},
                                                        {"sql", "select * from no_such_table"},
                                                        {"sql", "select 3 as never"}}) {
    json body{{"kind", kind}, {"content", content}};
    if (kind == "sql") body["connection_id"] = conn;
    if (!ids.empty()) body["after"] = ids.back();
    auto r = admin.post(cells, body);
    INFO(r.body);
    REQUIRE(r.status == 201);
    ids.push_back(r.json.at("cell_id").get<std::string>());
  }
  auto made = admin.post("/v1/schedules", {{"name", "report"},
                                           {"project_id", p},
                                           {"cron", "@every 2s"},
                                           {"time_zone", "Europe/Berlin"},
                                           {"target", {{"run_cells", true}}},
                                           {"catch_up", "none"}});
  const auto s = id_of(made);
  REQUIRE(wait_until(
      [&] {
        auto runs = runs_of(admin, s);
        return !runs.empty() && runs.at(0).at("outcome") == "failed";
      },
      seconds(20)));
  REQUIRE(admin.post("/v1/schedules/" + s + "/pause", json::object()).status == 200);
  const auto run = runs_of(admin, s).at(0);
  INFO(run.dump());
  REQUIRE(run.at("jobs").size() == 3);  // the three SQL cells, in document order
  CHECK(run.at("jobs")[0].at("status") == "succeeded");
  CHECK(run.at("jobs")[1].at("status") == "failed");
  CHECK(run.at("jobs")[2].at("status") == "skipped");
  const auto first = admin.get("/v1/jobs/" + run.at("job_ids")[0].get<std::string>()).json;
  const auto second = admin.get("/v1/jobs/" + run.at("job_ids")[1].get<std::string>()).json;
  CHECK(first.at("cell_id") == ids[0]);
  CHECK(second.at("cell_id") == ids[2]);
  CHECK(second.at("error").get<std::string>().find("no_such_table") != std::string::npos);
  // One after the other: the second was submitted once the first had finished.
  CHECK(second.at("submitted_at").get<std::string>() >= first.at("finished_at").get<std::string>());
  CHECK(admin.get("/v1/jobs/" + run.at("job_ids")[2].get<std::string>()).status == 404);
  server.stop();
}

TEST_CASE("scheduler: a schedule stops when its owner loses edit rights or is disabled", "[e2e][scheduler]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  std::map<std::string, std::string> ids;
  std::map<std::string, http_client> as;
  for (const auto* name : {"alice", "bob", "carol"}) {
    const std::string n = name;
    ids[n] = id_of(admin.post("/v1/users", {{"username", n},
                                            {"email", n + "@example.org"},
                                            {"password", atrium::test::password_for(n, "-pw-123456")},
                                            {"role", "member"}}));
    as.emplace(n, server.client(server.login(n, atrium::test::password_for(n, "-pw-123456"))));
  }
  auto& alice = as.at("alice");
  const auto p = id_of(alice.post("/v1/projects", {{"name", "Shared"}}));
  for (const auto* who : {"bob", "carol"}) {
    REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids[who]}, {"role", "editor"}}).status == 200);
  }
  const json script{{"kind", "script"}, {"language", "bash"}, {"script", "true"}, {"timeout_s", 60}};
  const json hourly{{"name", "hourly"},   {"project_id", p},  {"cron", "0 * * * *"},
                    {"time_zone", "UTC"}, {"target", script}, {"catch_up", "none"}};
  const auto of_bob = id_of(as.at("bob").post("/v1/schedules", hourly));
  const auto of_carol = id_of(as.at("carol").post("/v1/schedules", hourly));
  CHECK(admin.get("/v1/schedules/" + of_bob).json.at("status") == "active");

  // Bob becomes a viewer; Carol is disabled. Both schedules pause, by the system.
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["bob"]}, {"role", "viewer"}}).status == 200);
  REQUIRE(admin.post("/v1/users/" + ids["carol"] + "/disable", json::object()).status == 200);
  const auto paused = [&](const std::string& s) {
    return admin.get("/v1/schedules/" + s).json.at("status") == "paused";
  };
  REQUIRE(wait_until([&] { return paused(of_bob) && paused(of_carol); }, seconds(20)));
  const auto bob_view = admin.get("/v1/schedules/" + of_bob).json;
  CHECK(bob_view.at("pause_reason").get<std::string>().find("may no longer edit") != std::string::npos);
  const auto carol_view = admin.get("/v1/schedules/" + of_carol).json;
  CHECK(carol_view.at("pause_reason").get<std::string>().find("disabled") != std::string::npos);
  auto events = stream_events(admin, "schedule-" + of_bob);
  REQUIRE(events.back().at("type") == "schedule.paused");
  CHECK(events.back().at("data").at("paused_by") == "system");
  CHECK(events.back().at("actor") == "system");
  server.stop();
}
