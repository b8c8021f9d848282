/// The projections' state, end to end: `/readyz` and `GET /v1/admin/projections`.

#include <catch2/catch.hpp>

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
  CHECK(names == std::set<std::string>{"users", "projects", "audit", "groups", "connections", "jobs", "containers"});

  // Members may not read it; the denial is audited like any other.
  REQUIRE(admin.post("/v1/users", {{"username", "mia"}, {"email", "mia@example.org"}, {"password", "mia-pw-123456"}})
              .status == 201);
  CHECK(server.client(server.login("mia", "mia-pw-123456")).get("/v1/admin/projections").status == 403);
}
