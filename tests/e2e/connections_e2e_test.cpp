/// Connections end to end against the real atriumd: tests that really connect to a
/// PostgreSQL server started here and to SQLite, and a search for a recognizable
/// password through every API response, the whole event log, the server's log output
/// and the raw bytes of its data directory, which must find nothing.

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/postgres.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

/// Every byte of every file under `dir` contains `needle`? Returns the offending paths.
std::vector<std::string> files_containing(const std::filesystem::path& dir, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    if (bytes.find(needle) != std::string::npos) hits.push_back(entry.path().string());
  }
  return hits;
}

}  // namespace

TEST_CASE("connection tests really connect, and no secret leaks anywhere", "[e2e][connections]") {
  // Recognizable passwords: the real one of the PostgreSQL server, and wrong ones.
  const std::string secret = "Canary-7f3a9c-Pg-Secret";
  const std::string wrong = "Canary-0b44e1-Wrong-Secret";
  const std::string rotated = "Canary-91d2aa-Rotated-Secret";
  postgres_server pg({.user = "atrium", .password = secret});

  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  std::vector<std::string> responses;  // every body the API answered in this test
  auto keep = [&](http_reply r) {
    responses.push_back(r.body);
    return r;
  };

  const json pg_params{{"host", pg.host()}, {"port", pg.port()}, {"database", "postgres"}, {"sslmode", "disable"}};
  auto created = keep(admin.post("/v1/connections", {{"name", "warehouse"},
                                                     {"driver", "postgres"},
                                                     {"params", pg_params},
                                                     {"credentials", {{"user", "atrium"}, {"password", secret}}}}));
  INFO(created.body);
  REQUIRE(created.status == 201);
  const auto id = created.json.at("id").get<std::string>();
  CHECK(created.json.at("fingerprint").get<std::string>().starts_with("b2:"));
  CHECK_FALSE(created.json.contains("credentials"));
  CHECK_FALSE(created.json.contains("vault_ref"));
  CHECK(created.json.at("params").at("port") == pg.port());

  SECTION("PostgreSQL: the right password connects, a wrong one is an error recorded as such") {
    auto ok = keep(admin.request("POST", "/v1/connections/" + id + "/test"));
    INFO(ok.body);
    REQUIRE(ok.status == 200);
    CHECK(ok.json.at("ok") == true);
    CHECK(ok.json.at("server_version").get<std::string>().find("PostgreSQL") != std::string::npos);
    CHECK(ok.json.at("connection").at("last_test").at("ok") == true);

    // Rotate to a wrong password: the test fails with PostgreSQL's error, not a crash.
    auto patched = keep(admin.request("PATCH", "/v1/connections/" + id,
                                      json{{"credentials", {{"user", "atrium"}, {"password", wrong}}}}.dump()));
    REQUIRE(patched.status == 200);
    CHECK(patched.json.at("fingerprint") != created.json.at("fingerprint"));
    auto bad = keep(admin.request("POST", "/v1/connections/" + id + "/test"));
    INFO(bad.body);
    REQUIRE(bad.status == 200);
    CHECK(bad.json.at("ok") == false);
    CHECK(bad.json.at("error").get<std::string>().find("authentication") != std::string::npos);

    // A server that is gone: an error within the timeout, never a hang.
    pg.stop();
    auto down = keep(admin.request("POST", "/v1/connections/" + id + "/test"));
    REQUIRE(down.status == 200);
    CHECK(down.json.at("ok") == false);
    CHECK_FALSE(down.json.at("error").get<std::string>().empty());

    // The tests are in the connection's history.
    auto history = keep(admin.get("/v1/streams/connection-" + id));
    std::vector<bool> outcomes;
    for (const auto& e : history.json.at("events")) {
      if (e.at("type") == "connection.tested") outcomes.push_back(e.at("data").at("ok").get<bool>());
    }
    CHECK(outcomes == std::vector<bool>{true, false, false});
  }

  SECTION("SQLite: a database file connects; a missing one is an error and is not created") {
    const auto db = dir.path() / "local.sqlite";
    std::ofstream(db).flush();  // an empty file is an empty SQLite database
    auto lite = keep(
        admin.post("/v1/connections", {{"name", "local"}, {"driver", "sqlite"}, {"params", {{"path", db.string()}}}}));
    REQUIRE(lite.status == 201);
    auto ok = keep(admin.request("POST", "/v1/connections/" + lite.json.at("id").get<std::string>() + "/test"));
    REQUIRE(ok.status == 200);
    CHECK(ok.json.at("ok") == true);

    const auto missing = dir.path() / "missing.sqlite";
    auto gone = keep(admin.post("/v1/connections",
                                {{"name", "gone"}, {"driver", "sqlite"}, {"params", {{"path", missing.string()}}}}));
    REQUIRE(gone.status == 201);
    auto fail = keep(admin.request("POST", "/v1/connections/" + gone.json.at("id").get<std::string>() + "/test"));
    REQUIRE(fail.status == 200);
    CHECK(fail.json.at("ok") == false);
    CHECK_FALSE(std::filesystem::exists(missing));

    // Bad specs are refused before anything is stored.
    CHECK(keep(admin.post("/v1/connections", {{"name", "rel"}, {"driver", "sqlite"}, {"params", {{"path", "rel.db"}}}}))
              .status == 400);
    CHECK(keep(admin.post("/v1/connections", {{"name", "pg"},
                                              {"driver", "postgres"},
                                              {"params", {{"host", "h"}, {"port", 70000}, {"database", "d"}}},
                                              {"credentials", {{"user", "u"}, {"password", secret}}}}))
              .status == 400);
  }

  // Rotation once more (the old entry is erased), then delete (its entry too).
  keep(admin.request("PATCH", "/v1/connections/" + id,
                     json{{"credentials", {{"user", "atrium"}, {"password", rotated}}}}.dump()));
  keep(admin.get("/v1/connections"));
  keep(admin.get("/v1/connections/" + id));
  keep(admin.get("/v1/audit?limit=1000"));
  keep(admin.get("/v1/streams/connection-" + id));
  for (std::uint64_t after = 0;;) {
    auto page = keep(admin.get("/v1/events?limit=1000&after=" + std::to_string(after)));
    REQUIRE(page.status == 200);
    if (page.json.at("events").empty()) break;
    after = page.json.at("next").get<std::uint64_t>();
  }
  CHECK(keep(admin.request("DELETE", "/v1/connections/" + id)).status == 200);
  CHECK(admin.get("/v1/connections/" + id).status == 404);

  // Stop the server so its log and data files are complete, then search everything.
  REQUIRE(server.stop() == 0);
  // Controls: the search does see what is there (the connection's id in the data files
  // and in the responses, its routes in the log).
  REQUIRE_FALSE(files_containing(server.data, id).empty());
  REQUIRE(atriumd_server::slurp(server.log).find("/v1/connections") != std::string::npos);
  REQUIRE(std::any_of(responses.begin(), responses.end(), [&](const auto& b) { return b.find(id) != b.npos; }));
  for (const auto& needle : {secret, wrong, rotated}) {
    INFO("searching for " << needle);
    for (const auto& body : responses) CHECK(body.find(needle) == std::string::npos);
    CHECK(atriumd_server::slurp(server.log).find(needle) == std::string::npos);
    CHECK(files_containing(server.data, needle).empty());
  }
}
