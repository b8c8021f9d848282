/// Schedules end to end against the real atriumd (issue 16, point 1): create, list,
/// read with `next_fire_times` (IANA zones from the system's tzdata), patch, pause,
/// resume, delete, runs; 400 for a bad cron or an unknown zone; 403/404 for others.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

/// `YYYY-01-01T00:00:00Z` for the next `n` New Year instants in UTC after now, and the
/// same for Asia/Kathmandu (+05:45: 18:15Z on Dec 31), computed here from the clock.
std::vector<std::string> new_years(int n, bool kathmandu) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  int y = static_cast<int>(year_month_day{floor<days>(now)}.year());
  std::vector<std::string> out;
  for (int year = y - 1; static_cast<int>(out.size()) < n; ++year) {
    const sys_seconds t = kathmandu ? sys_days{std::chrono::year{year} / 12 / 31} + hours{18} + minutes{15}
                                    : sys_days{std::chrono::year{year + 1} / 1 / 1} + seconds{0};
    if (t <= now) continue;
    const auto d = year_month_day{floor<days>(t)};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%s", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                  static_cast<unsigned>(d.day()), kathmandu ? "18:15:00Z" : "00:00:00Z");
    out.emplace_back(buf);
  }
  return out;
}

std::vector<std::string> ids_in(const json& page) {
  std::vector<std::string> out;
  for (const auto& s : page.at("schedules")) out.push_back(s.at("id").get<std::string>());
  return out;
}

}  // namespace

TEST_CASE("schedules: create, list, next_fire_times, patch, pause, resume, runs, delete", "[e2e][schedules]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  std::map<std::string, std::string> ids, tokens;
  for (const auto* name : {"alice", "bob", "carol"}) {
    const std::string n = name;
    ids[n] = id_of(admin.post("/v1/users", {{"username", n},
                                            {"email", n + "@example.org"},
                                            {"password", atrium::test::password_for(n, "-pw-123456")},
                                            {"role", "member"}}));
    tokens[n] = server.login(n, atrium::test::password_for(n, "-pw-123456"));
  }
  auto alice = server.client(tokens["alice"]);
  auto bob = server.client(tokens["bob"]);
  auto carol = server.client(tokens["carol"]);
  const auto p = id_of(alice.post("/v1/projects", {{"name", "Assay QC"}}));
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["bob"]}, {"role", "viewer"}}).status == 200);

  const json script{{"kind", "script"}, {"language", "bash"}, {"script", "echo hi"}, {"timeout_s", 60}};
  auto created = alice.post("/v1/schedules", {{"name", "New year"},
                                              {"project_id", p},
                                              {"cron", "0 0 1 1 *"},
                                              {"time_zone", "Asia/Kathmandu"},
                                              {"target", script},
                                              {"catch_up", "last"}});
  INFO(created.body);
  REQUIRE(created.status == 201);
  const auto s = created.json.at("id").get<std::string>();
  CHECK(created.json.at("owner") == ids["alice"]);
  CHECK(created.json.at("status") == "active");
  CHECK(created.json.at("target").at("script") == "echo hi");
  CHECK(created.json.at("version") == 1);
  // The answer is the view GET serves, next_fire_times included.
  CHECK(strings_of(created.json.at("next_fire_times")) == new_years(5, true));

  auto got = alice.get("/v1/schedules/" + s);
  REQUIRE(got.status == 200);
  CHECK(strings_of(got.json.at("next_fire_times")) == new_years(5, true));
  CHECK(got.headers.at("etag") == "\"1\"");

  // A DataDoc schedule in UTC.
  const auto s2 = id_of(alice.post(
      "/v1/schedules", {{"name", "Doc"}, {"project_id", p}, {"cron", "@yearly"}, {"target", {{"run_cells", true}}}}));
  got = bob.get("/v1/schedules/" + s2);
  REQUIRE(got.status == 200);
  CHECK(got.json.at("time_zone") == "UTC");
  CHECK(got.json.at("catch_up") == "none");
  CHECK(got.json.at("target") == json{{"run_cells", true}});
  CHECK(strings_of(got.json.at("next_fire_times")) == new_years(5, false));

  // Lists: the caller's readable schedules; by project.
  auto list = alice.get("/v1/schedules");
  REQUIRE(list.status == 200);
  CHECK(ids_in(list.json).size() == 2);
  CHECK(list.json.at("schedules").at(0).at("next_fire_times").size() == 5);
  CHECK(ids_in(bob.get("/v1/schedules?project_id=" + p).json).size() == 2);
  CHECK(ids_in(carol.get("/v1/schedules").json).empty());
  CHECK(carol.get("/v1/schedules?project_id=" + p).status == 404);
  CHECK(ids_in(admin.get("/v1/schedules").json).size() == 2);

  // Patch: a new cron and zone move next_fire_times.
  auto patched = alice.request("PATCH", "/v1/schedules/" + s,
                               json{{"name", "New year UTC"}, {"cron", "@annually"}, {"time_zone", "UTC"}}.dump());
  INFO(patched.body);
  REQUIRE(patched.status == 200);
  CHECK(patched.json.at("name") == "New year UTC");
  CHECK(patched.json.at("version") == 2);
  CHECK(strings_of(patched.json.at("next_fire_times")) == new_years(5, false));
  CHECK(strings_of(alice.get("/v1/schedules/" + s).json.at("next_fire_times")) == new_years(5, false));

  // If-Match: a change based on the current version applies; a stale one is refused with
  // 409 naming the current version and changes nothing; a malformed one is 400.
  const auto rename = json{{"name", "New year (UTC)"}}.dump();
  auto matched = alice.request("PATCH", "/v1/schedules/" + s, rename, {{"If-Match", "\"2\""}});
  INFO(matched.body);
  REQUIRE(matched.status == 200);
  CHECK(matched.json.at("version") == 3);
  CHECK(matched.headers.at("etag") == "\"3\"");
  CHECK(matched.json.at("next_fire_times").size() == 5);
  auto stale = alice.request("PATCH", "/v1/schedules/" + s, json{{"name", "lost"}}.dump(), {{"If-Match", "2"}});
  INFO(stale.body);
  CHECK(stale.status == 409);
  CHECK(stale.json.at("error").at("code") == "version_conflict");
  CHECK(stale.json.at("error").at("details").at("current_version") == 3);
  CHECK(alice.get("/v1/schedules/" + s).json.at("name") == "New year (UTC)");
  CHECK(alice.request("PATCH", "/v1/schedules/" + s, rename, {{"If-Match", "two"}}).status == 400);
  // The policy comes first: an outsider's stale If-Match is still 404.
  CHECK(carol.request("PATCH", "/v1/schedules/" + s, rename, {{"If-Match", "1"}}).status == 404);

  // Pause and resume.
  auto paused = alice.request("POST", "/v1/schedules/" + s + "/pause", json{{"reason", "holiday"}}.dump());
  REQUIRE(paused.status == 200);
  CHECK(paused.json.at("status") == "paused");
  CHECK(paused.json.at("pause_reason") == "holiday");
  CHECK(paused.json.at("next_fire_times").empty());
  CHECK(alice.get("/v1/schedules/" + s).json.at("next_fire_times").empty());
  auto resumed = alice.request("POST", "/v1/schedules/" + s + "/resume");
  REQUIRE(resumed.status == 200);
  CHECK(resumed.json.at("status") == "active");
  CHECK(strings_of(resumed.json.at("next_fire_times")) == new_years(5, false));
  CHECK(alice.get("/v1/schedules/" + s).json.at("next_fire_times").size() == 5);

  auto runs = bob.get("/v1/schedules/" + s + "/runs");
  REQUIRE(runs.status == 200);
  CHECK(runs.json.at("runs").empty());

  // Bad input: 400 naming the field.
  auto bad_cron =
      alice.post("/v1/schedules", {{"name", "x"}, {"project_id", p}, {"cron", "61 * * * *"}, {"target", script}});
  CHECK(bad_cron.status == 400);
  CHECK(bad_cron.json.at("error").at("details").at("cron_field") == "minute");
  CHECK(bad_cron.json.at("error").at("details").at("token") == "61");
  auto bad_zone = alice.post(
      "/v1/schedules",
      {{"name", "x"}, {"project_id", p}, {"cron", "@daily"}, {"time_zone", "Mars/Olympus"}, {"target", script}});
  CHECK(bad_zone.status == 400);
  CHECK(bad_zone.json.at("error").at("details").at("field") == "time_zone");
  CHECK(alice.request("PATCH", "/v1/schedules/" + s, json{{"time_zone", "Europe/Nowhere"}}.dump()).status == 400);
  CHECK(alice.request("PATCH", "/v1/schedules/" + s, json{{"cron", "* * *"}}.dump()).status == 400);
  CHECK(alice.post("/v1/schedules", {{"name", "x"}, {"project_id", p}, {"cron", "@daily"}, {"target", 7}}).status ==
        400);
  CHECK(alice
            .post("/v1/schedules",
                  {{"name", "x"}, {"project_id", p}, {"cron", "@daily"}, {"target", {{"kind", "spark"}}}})
            .status == 400);

  // Outsiders: 404; readers who may not manage: 403.
  CHECK(carol.get("/v1/schedules/" + s).status == 404);
  CHECK(carol.get("/v1/schedules/" + s + "/runs").status == 404);
  CHECK(carol.request("PATCH", "/v1/schedules/" + s, json{{"name", "mine"}}.dump()).status == 404);
  CHECK(carol.request("DELETE", "/v1/schedules/" + s).status == 404);
  CHECK(
      carol.post("/v1/schedules", {{"name", "x"}, {"project_id", p}, {"cron", "@daily"}, {"target", script}}).status ==
      404);
  CHECK(bob.request("PATCH", "/v1/schedules/" + s, json{{"name", "mine"}}.dump()).status == 403);
  CHECK(bob.request("POST", "/v1/schedules/" + s + "/pause").status == 403);
  CHECK(bob.request("DELETE", "/v1/schedules/" + s).status == 403);
  CHECK(bob.post("/v1/schedules", {{"name", "x"}, {"project_id", p}, {"cron", "@daily"}, {"target", script}}).status ==
        403);
  CHECK(alice.get("/v1/schedules/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70").status == 404);

  // Delete: gone from reads and lists; the stream keeps the history.
  auto deleted = alice.request("DELETE", "/v1/schedules/" + s);
  INFO(deleted.body);
  CHECK(deleted.status == 200);
  CHECK(alice.get("/v1/schedules/" + s).status == 404);
  CHECK(ids_in(alice.get("/v1/schedules").json) == std::vector<std::string>{s2});
  auto history = admin.get("/v1/streams/schedule-" + s);
  REQUIRE(history.status == 200);
  CHECK(types_of(history.json.at("events")) == std::vector<std::string>{"schedule.created", "schedule.updated",
                                                                        "schedule.updated", "schedule.paused",
                                                                        "schedule.resumed", "schedule.deleted"});
}
