/// Connections end to end against the real atriumd: tests that really connect to a
/// PostgreSQL server started here and to SQLite, and a search for a recognizable
/// password through every API response, the whole event log, the server's log output
/// and the raw bytes of its data directory, which must find nothing.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"
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
  // The test PostgreSQL listens on loopback, which the built-in policy denies.
  atriumd_server server(dir.path(), {"--connection-allow", "127.0.0.1/32"});
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
    CHECK(bad.json.at("error") == "auth_failed");
    // An admin also gets the driver's detail.
    CHECK(bad.json.at("detail").get<std::string>().find("authentication") != std::string::npos);

    // A server that is gone: an error within the timeout, never a hang.
    pg.stop();
    auto down = keep(admin.request("POST", "/v1/connections/" + id + "/test"));
    REQUIRE(down.status == 200);
    CHECK(down.json.at("ok") == false);
    CHECK(down.json.at("error") == "refused");

    // The tests are in the connection's history.
    auto history = keep(admin.get("/v1/streams/connection-" + id));
    std::vector<bool> outcomes;
    for (const auto& e : history.json.at("events")) {
      if (e.at("type") == "connection.tested") outcomes.push_back(e.at("data").at("ok").get<bool>());
    }
    CHECK(outcomes == std::vector<bool>{true, false, false});
    // The log records the class only, never the driver's text.
    std::vector<std::string> errors;
    for (const auto& e : history.json.at("events")) {
      if (e.at("type") == "connection.tested") errors.push_back(e.at("data").at("error").get<std::string>());
    }
    CHECK(errors == std::vector<std::string>{"", "auth_failed", "refused"});
  }

  SECTION("SQLite: a database file connects; a missing one is an error and is not created") {
    const auto db = server.data / "files" / "local.sqlite";  // under the SQLite root
    std::ofstream(db).flush();                               // an empty file is an empty SQLite database
    auto lite = keep(
        admin.post("/v1/connections", {{"name", "local"}, {"driver", "sqlite"}, {"params", {{"path", db.string()}}}}));
    REQUIRE(lite.status == 201);
    auto ok = keep(admin.request("POST", "/v1/connections/" + lite.json.at("id").get<std::string>() + "/test"));
    REQUIRE(ok.status == 200);
    CHECK(ok.json.at("ok") == true);

    const auto missing = server.data / "files" / "missing.sqlite";
    auto gone = keep(admin.post("/v1/connections",
                                {{"name", "gone"}, {"driver", "sqlite"}, {"params", {{"path", missing.string()}}}}));
    REQUIRE(gone.status == 201);
    auto fail = keep(admin.request("POST", "/v1/connections/" + gone.json.at("id").get<std::string>() + "/test"));
    REQUIRE(fail.status == 200);
    CHECK(fail.json.at("ok") == false);
    CHECK(fail.json.at("error") == "not_a_database");
    CHECK_FALSE(std::filesystem::exists(missing));

    // A relative path is taken inside the SQLite root; one that leaves it is refused.
    CHECK(keep(admin.post("/v1/connections", {{"name", "rel"}, {"driver", "sqlite"}, {"params", {{"path", "rel.db"}}}}))
              .status == 201);
    // Bad specs are refused before anything is stored.
    CHECK(keep(admin.post("/v1/connections",
                          {{"name", "up"}, {"driver", "sqlite"}, {"params", {{"path", "../escape.db"}}}}))
              .status == 400);
    CHECK(keep(admin.post("/v1/connections", {{"name", "empty"}, {"driver", "sqlite"}, {"params", {{"path", ""}}}}))
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

namespace {

/// Creates a member, returns a client logged in as them and their id.
std::pair<http_client, std::string> member(const atriumd_server& server, const http_client& admin,
                                           const std::string& name) {
  auto r = admin.post("/v1/users", {{"username", name},
                                    {"email", name + "@example.org"},
                                    {"password", atrium::test::password_for(name, "-password-1")},
                                    {"role", "member"}});
  REQUIRE(r.status == 201);
  return {server.client(server.login(name, atrium::test::password_for(name, "-password-1"))),
          r.json.at("id").get<std::string>()};
}

json pg_connection(const std::string& host, unsigned port, const std::string& password) {
  return {{"name", "pg " + host},
          {"driver", "postgres"},
          {"params", {{"host", host}, {"port", port}, {"database", "postgres"}, {"sslmode", "disable"}}},
          {"credentials", {{"user", "atrium"}, {"password", password}}}};
}

}  // namespace

TEST_CASE("connections: loopback, link-local and the metadata address are refused by default", "[e2e][connections]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  auto [alice, alice_id] = member(server, admin, "alice");

  for (const std::string host : {"127.0.0.1", "localhost", "169.254.169.254", "169.254.1.1", "::1", "0.0.0.0"}) {
    INFO(host);
    for (const auto* who : {&admin, &alice}) {
      auto r = who->post("/v1/connections", pg_connection(host, 5432, "policy-secret-1"));
      INFO(r.body);
      CHECK(r.status == 403);
      CHECK(r.json.at("error").at("details").at("class") == "denied_by_policy");
      CHECK(r.json.at("error").at("message").get<std::string>().find("policy") != std::string::npos);
      CHECK(r.body.find("policy-secret-1") == std::string::npos);
    }
  }
  // The attempt is on the security record.
  auto denied = admin.get("/v1/streams/security?limit=1000");
  REQUIRE(denied.status == 200);
  CHECK(denied.body.find("connection destination denied by policy") != std::string::npos);
  CHECK(admin.get("/v1/connections").json.at("connections").empty());

  // A name that does not resolve yet is accepted and checked again when used; moving a
  // connection onto loopback is refused like creating it there.
  auto later = alice.post("/v1/connections", pg_connection("no-such-host.invalid", 5432, "policy-secret-2"));
  INFO(later.body);
  REQUIRE(later.status == 201);
  const auto id = later.json.at("id").get<std::string>();
  auto test = alice.request("POST", "/v1/connections/" + id + "/test");
  REQUIRE(test.status == 200);
  CHECK(test.json.at("ok") == false);
  CHECK(test.json.at("error") == "unreachable");
  auto moved = alice.request("PATCH", "/v1/connections/" + id,
                             json{{"params", {{"host", "127.0.0.1"}, {"port", 5432}, {"database", "postgres"}}},
                                  {"credentials", {{"user", "atrium"}, {"password", "policy-secret-2"}}}}
                                 .dump());
  CHECK(moved.status == 403);
  CHECK(moved.json.at("error").at("details").at("class") == "denied_by_policy");
}

TEST_CASE("connections: --connection-allow and --connection-deny", "[e2e][connections]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--connection-allow", "127.0.0.1/32", "--connection-deny",
                                     "10.0.0.0/8,*.blocked.example", "--connection-allow", "10.20.0.0/16"});
  auto admin = server.admin();
  CHECK(admin.post("/v1/connections", pg_connection("127.0.0.1", 5432, "allow-secret")).status == 201);
  CHECK(admin.post("/v1/connections", pg_connection("127.0.0.2", 5432, "allow-secret")).status == 403);
  CHECK(admin.post("/v1/connections", pg_connection("169.254.169.254", 5432, "allow-secret")).status == 403);
  CHECK(admin.post("/v1/connections", pg_connection("10.1.2.3", 5432, "allow-secret")).status == 403);
  CHECK(admin.post("/v1/connections", pg_connection("10.20.1.2", 5432, "allow-secret")).status == 201);
  CHECK(admin.post("/v1/connections", pg_connection("db.blocked.example", 5432, "allow-secret")).status == 403);

  // A malformed list stops the server at start with a clear message.
  temp_dir bad;
  const auto out = run_process({ATRIUMD_PATH, "--data-dir", (bad.path() / "data").string(), "--listen", "127.0.0.1:0",
                                "--connection-deny", "10.0.0.0/33"});
  CHECK(out.exit_code == 2);
  CHECK(out.err.find("10.0.0.0/33") != std::string::npos);
}

TEST_CASE("connections: members learn an error's class, admins its detail, owners alone test credentials",
          "[e2e][connections]") {
  const std::string secret = "Canary-5e71b0-Member-Secret";
  postgres_server pg({.user = "atrium", .password = secret});
  temp_dir dir;
  atriumd_server server(dir.path(), {"--connection-allow", "127.0.0.1/32"});
  auto admin = server.admin();
  auto [alice, alice_id] = member(server, admin, "alice");
  auto [bob, bob_id] = member(server, admin, "bob");

  auto test_as = [](const http_client& who, const std::string& id) {
    return who.request("POST", "/v1/connections/" + id + "/test");
  };

  SECTION("PostgreSQL") {
    // Wrong password: the member sees `auth_failed` and nothing of the driver's text.
    auto wrong = alice.post("/v1/connections", pg_connection(pg.host(), pg.port(), "Canary-Wrong-" + secret));
    REQUIRE(wrong.status == 201);
    const auto id = wrong.json.at("id").get<std::string>();
    auto seen = test_as(alice, id);
    INFO(seen.body);
    REQUIRE(seen.status == 200);
    CHECK(seen.json.at("ok") == false);
    CHECK(seen.json.at("error") == "auth_failed");
    CHECK_FALSE(seen.json.contains("detail"));
    CHECK(seen.body.find("authentication") == std::string::npos);
    auto detailed = test_as(admin, id);
    INFO(detailed.body);
    CHECK(detailed.json.at("error") == "auth_failed");
    CHECK(detailed.json.at("detail").get<std::string>().find("authentication") != std::string::npos);
    CHECK(detailed.body.find(secret) == std::string::npos);

    // Closed port: `refused`, the same shape.
    auto closed = alice.post("/v1/connections", pg_connection("127.0.0.1", free_loopback_port(), secret));
    REQUIRE(closed.status == 201);
    auto refused = test_as(alice, closed.json.at("id").get<std::string>());
    CHECK(refused.json.at("error") == "refused");
    CHECK_FALSE(refused.json.contains("detail"));

    // Shared with bob as a user: a connection holding credentials is tested by owners only.
    REQUIRE(alice.post("/v1/connections/" + id + "/members", {{"user_id", bob_id}, {"role", "user"}}).status == 200);
    CHECK(test_as(bob, id).status == 403);
    REQUIRE(alice.post("/v1/connections/" + id + "/members", {{"user_id", bob_id}, {"role", "owner"}}).status == 200);
    CHECK(test_as(bob, id).status == 200);

    // Stored credentials never follow the connection to another host or port.
    auto move = bob.request(
        "PATCH", "/v1/connections/" + id,
        json{{"params", {{"host", "127.0.0.1"}, {"port", pg.port() + 1}, {"database", "postgres"}}}}.dump());
    INFO(move.body);
    CHECK(move.status == 400);
    CHECK(move.json.at("error").at("details").at("field") == "credentials");
    auto rename = bob.request("PATCH", "/v1/connections/" + id, json{{"name", "renamed"}}.dump());
    CHECK(rename.status == 200);
    auto same_host = bob.request(
        "PATCH", "/v1/connections/" + id,
        json{{"params", {{"host", pg.host()}, {"port", pg.port()}, {"database", "template1"}, {"sslmode", "disable"}}}}
            .dump());
    CHECK(same_host.status == 200);  // a new database on the same server is fine
    auto with_credentials = bob.request(
        "PATCH", "/v1/connections/" + id,
        json{{"params", {{"host", "127.0.0.1"}, {"port", pg.port()}, {"database", "postgres"}, {"sslmode", "disable"}}},
             {"credentials", {{"user", "atrium"}, {"password", secret}}}}
            .dump());
    CHECK(with_credentials.status == 200);
    auto ok = test_as(bob, id);
    CHECK(ok.json.at("ok") == true);
    CHECK(ok.json.at("error") == "");
  }

  SECTION("SQLite: a missing file and a file that is not a database look the same to a member") {
    const auto missing = server.data / "files" / "missing.sqlite";  // under the SQLite root
    const auto text = server.data / "files" / "notes.txt";
    std::ofstream(text) << "this is not an SQLite database, just some text that is long enough to fill a header.\n";
    std::vector<json> answers;
    std::vector<std::string> ids;
    for (const auto& path : {missing, text}) {
      auto c = alice.post("/v1/connections",
                          {{"name", "lite"}, {"driver", "sqlite"}, {"params", {{"path", path.string()}}}});
      REQUIRE(c.status == 201);
      ids.push_back(c.json.at("id").get<std::string>());
      auto t = test_as(alice, ids.back());
      REQUIRE(t.status == 200);
      CHECK(t.json.at("ok") == false);
      CHECK(t.json.at("error") == "not_a_database");
      CHECK_FALSE(t.json.contains("detail"));
      answers.push_back(t.json);
    }
    CHECK(answers[0].at("message") == answers[1].at("message"));
    // A SQLite connection holds no credentials: users of it may test it.
    REQUIRE(alice.post("/v1/connections/" + ids[0] + "/members", {{"user_id", bob_id}, {"role", "user"}}).status ==
            200);
    CHECK(test_as(bob, ids[0]).json.at("error") == "not_a_database");
    // An admin sees which is which.
    const auto a = test_as(admin, ids[0]).json.at("detail").get<std::string>();
    const auto b = test_as(admin, ids[1]).json.at("detail").get<std::string>();
    CHECK(a != b);
    CHECK(b.find("not a database") != std::string::npos);
  }
}

namespace {

/// Whether this atriumd has `--sqlite-root` (the option comes with the job dispatcher).
bool has_sqlite_root_option() {
  std::string help;
  if (FILE* f = popen((std::string(ATRIUMD_PATH) + " serve --help 2>&1").c_str(), "r")) {
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, f)) help.append(buf, n);
    pclose(f);
  }
  return help.find("--sqlite-root") != std::string::npos;
}

/// The `security.access_denied` events of `operation` in the security stream.
std::size_t denials_of(const http_client& admin, const std::string& operation) {
  std::size_t n = 0;
  for (const auto& e : stream_events(admin, "security")) {
    if (e.at("type") == "security.access_denied" && e.at("data").at("operation") == operation) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("connections: a SQLite path outside --sqlite-root is bad input (400) on create and change",
          "[e2e][connections][sqlite_root]") {
  if (!has_sqlite_root_option()) {
    WARN("this atriumd has no --sqlite-root (the job dispatcher wires it): nothing to check");
    return;
  }
  temp_dir dir;
  const auto root = dir.path() / "sqlite-root";
  std::filesystem::create_directories(root);
  atriumd_server server(dir.path(), {"--sqlite-root", root.string()});
  auto admin = server.admin();
  REQUIRE(admin
              .post("/v1/users", {{"username", "alice"},
                                  {"email", "alice@example.org"},
                                  {"password", "a.l.i.c.e-pw-123456"},
                                  {"role", "member"}})
              .status == 201);
  auto alice = server.client(server.login("alice", "a.l.i.c.e-pw-123456"));
  const auto inside = root / "inside.sqlite";
  const auto outside = dir.path() / "outside.sqlite";
  for (const auto& f : {inside, outside}) std::ofstream(f).flush();
  auto create = [&](const std::string& path) {
    return alice.post(
        "/v1/connections",
        {{"name", "db"}, {"driver", "sqlite"}, {"params", {{"path", path}}}, {"credentials", json::object()}});
  };

  for (const auto& bad :
       {outside.string(), (root / ".." / "outside.sqlite").string(), (server.data / "files" / "x.sqlite").string(),
        std::string("/etc/passwd"), std::string("../outside.sqlite")}) {
    auto r = create(bad);
    INFO(bad << " -> " << r.status << " " << r.body);
    CHECK(r.status == 400);
    CHECK(r.json.at("error").at("code") == "invalid_argument");
    CHECK(r.json.at("error").at("details").at("field") == "params.path");
  }
  // A relative path is taken inside the root.
  CHECK(create("relative.sqlite").status == 201);
  auto ok = create(inside.string());
  INFO(ok.body);
  REQUIRE(ok.status == 201);
  const auto id = ok.json.at("id").get<std::string>();

  auto moved_out =
      alice.request("PATCH", "/v1/connections/" + id, json{{"params", {{"path", outside.string()}}}}.dump());
  INFO(moved_out.body);
  CHECK(moved_out.status == 400);
  CHECK(moved_out.json.at("error").at("details").at("field") == "params.path");
  CHECK(admin.get("/v1/connections/" + id).json.at("params").at("path") == inside.string());
  const auto other = root / "other.sqlite";
  std::ofstream(other).flush();
  auto moved_in = alice.request("PATCH", "/v1/connections/" + id, json{{"params", {{"path", other.string()}}}}.dump());
  INFO(moved_in.body);
  CHECK(moved_in.status == 200);

  // Bad input, not a policy denial: nothing in the security stream.
  CHECK(denials_of(admin, "connection.create") == 0);
  CHECK(denials_of(admin, "connection.update") == 0);
}
