/// The projections' state, end to end: `/readyz` and `GET /v1/admin/projections`.

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "tests/support/atriumd.hpp"

namespace {
using namespace atrium::test;
}  // namespace

TEST_CASE("readyz and the projections report show every projection caught up with the log", "[e2e][projections]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  for (int i = 0; i < 5; ++i) REQUIRE(admin.post("/v1/projects", {{"name", "p" + std::to_string(i)}}).status == 201);

  // Restarted over a log it has to catch up with: ready once it has (the fixture waits).
  REQUIRE(server.stop() == 0);
  server.start();
  auto ready = server.client().get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.json.at("status") == "ready");
  CHECK(ready.json.at("max_lag_positions") == 0);

  admin = server.admin();
  auto report = admin.get("/v1/admin/projections");
  INFO(report.body);
  REQUIRE(report.status == 200);
  CHECK(report.json.at("ready") == true);
  const auto head = report.json.at("head").get<std::uint64_t>();
  CHECK(head > 10);
  std::set<std::string> names;
  for (const auto& p : report.json.at("projections")) {
    names.insert(p.at("name").get<std::string>());
    // Every projection has applied the whole log (login events included: the report is
    // read after the login above was projected, since reads follow the login's append).
    CHECK(p.at("checkpoint").get<std::uint64_t>() + p.at("lag_positions").get<std::uint64_t>() == head);
    CHECK(p.at("status") != "stalled");
  }
  CHECK(names == std::set<std::string>{"users", "projects", "audit", "groups", "connections", "jobs", "containers",
                                       "schedules"});

  // Members may not read it; the denial is audited like any other.
  REQUIRE(admin.post("/v1/users", {{"username", "mia"}, {"email", "mia@example.org"}, {"password", "m.i.a-pw-123456"}})
              .status == 201);
  CHECK(server.client(server.login("mia", "m.i.a-pw-123456")).get("/v1/admin/projections").status == 403);
}

TEST_CASE("a projection rebuilds online in a new slot, serving throughout, and swaps in", "[e2e][projections]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  std::map<std::string, std::string> names;  // project id → name
  for (int i = 0; i < 40; ++i) {
    auto r = admin.post("/v1/projects", {{"name", "p" + std::to_string(i)}});
    REQUIRE(r.status == 201);
    names[r.json.at("id").get<std::string>()] = "p" + std::to_string(i);
  }
  auto slot_of = [&](const std::string& name) {
    auto report = admin.get("/v1/admin/projections");
    REQUIRE(report.status == 200);
    for (const auto& p : report.json.at("projections")) {
      if (p.at("name") == name) return p;
    }
    FAIL("no projection " << name);
    return nlohmann::json();
  };
  auto all_served = [&] {
    for (const auto& [id, name] : names) {
      auto r = admin.get("/v1/projects/" + id);
      if (r.status != 200 || r.json.at("name") != name) return false;
    }
    return true;
  };
  REQUIRE(slot_of("projects").at("slot") == 0);

  for (int round = 1; round <= 2; ++round) {
    const int expected_slot = round % 2;
    auto started = admin.request("POST", "/v1/admin/projections/projects/rebuild");
    INFO(started.body);
    REQUIRE(started.status == 202);
    // The serving slot answers while the new one is built; writes go on.
    CHECK(all_served());
    auto created = admin.post("/v1/projects", {{"name", "during-" + std::to_string(round)}});
    REQUIRE(created.status == 201);
    names[created.json.at("id").get<std::string>()] = "during-" + std::to_string(round);
    REQUIRE(wait_until([&] { return slot_of("projects").at("status") == "live"; }, std::chrono::seconds(30)));
    const auto info = slot_of("projects");
    CHECK(info.at("slot") == expected_slot);
    CHECK(info.at("rebuild_checkpoint").is_null());
    CHECK(info.at("lag_positions") == 0);
    CHECK(all_served());
    CHECK(admin.get("/v1/projects?limit=1000").json.at("projects").size() == names.size());
  }

  // The active slot survives a restart.
  REQUIRE(server.stop() == 0);
  server.start();
  admin = server.admin();
  CHECK(slot_of("projects").at("slot") == 0);
  CHECK(all_served());
  // After two rebuilds the users projection was never touched.
  CHECK(slot_of("users").at("slot") == 0);

  CHECK(admin.request("POST", "/v1/admin/projections/nonsense/rebuild").status == 404);
  REQUIRE(admin.post("/v1/users", {{"username", "ned"}, {"email", "ned@example.org"}, {"password", "n.e.d-pw-123456"}})
              .status == 201);
  CHECK(server.client(server.login("ned", "n.e.d-pw-123456"))
            .request("POST", "/v1/admin/projections/projects/rebuild")
            .status == 403);
}
