/// Sessions and passwords end to end against the real atriumd (issue 13, F7): changing
/// one's own password needs the current one and ends the user's other sessions; an
/// admin's reset and a disable end all of them; `POST /v1/auth/logout` ends the current
/// one. Also the CSV audit export's formula neutralization (F11).

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

/// Creates a member and returns their id.
std::string create_member(const http_client& admin, const std::string& name, const std::string& password) {
  auto r = admin.post(
      "/v1/users", {{"username", name}, {"email", name + "@example.org"}, {"password", password}, {"role", "member"}});
  INFO(r.body);
  REQUIRE(r.status == 201);
  return r.json.at("id").get<std::string>();
}

/// Status of a cheap authenticated read with `token`.
unsigned probe(const atriumd_server& server, const std::string& token) {
  return server.client(token).get("/v1/projects").status;
}

/// The 401 message for `token` ("invalid or expired token" once its session is gone).
std::string refusal(const atriumd_server& server, const std::string& token) {
  auto r = server.client(token).get("/v1/projects");
  REQUIRE(r.status == 401);
  return r.json.at("error").at("message").get<std::string>();
}

unsigned login_status(const atriumd_server& server, const std::string& user, const std::string& password) {
  return server.client().post("/v1/auth/login", {{"username", user}, {"password", password}}).status;
}

}  // namespace

TEST_CASE("changing one's own password needs the current one and ends the other sessions", "[e2e][sessions]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto alice = create_member(admin, "alice", "a.l.i.c.e-old-password");
  const auto here = server.login("alice", "a.l.i.c.e-old-password");   // the session that changes it
  const auto other = server.login("alice", "a.l.i.c.e-old-password");  // another device
  const auto path = "/v1/users/" + alice;

  SECTION("without current_password: 400, nothing changes") {
    auto r = server.client(here).request("PATCH", path, json{{"password", "a.l.i.c.e-new-password"}}.dump());
    INFO(r.body);
    CHECK(r.status == 400);
    CHECK(r.json.at("error").at("details").at("field") == "current_password");
    CHECK(probe(server, other) == 200);
    CHECK(login_status(server, "alice", "a.l.i.c.e-old-password") == 200);
  }

  SECTION("with a wrong current_password: 403 and a security event, nothing changes") {
    auto r = server.client(here).request(
        "PATCH", path, json{{"password", "a.l.i.c.e-new-password"}, {"current_password", "not-the-password"}}.dump());
    INFO(r.body);
    CHECK(r.status == 403);
    CHECK(r.json.at("error").at("details").at("field") == "current_password");
    bool recorded = false;
    for (const auto& e : stream_events(admin, "security")) {
      if (e.at("type") == "security.access_denied" && e.at("data").at("reason") == "wrong current password" &&
          e.at("data").at("status") == 403) {
        recorded = true;
      }
    }
    CHECK(recorded);
    CHECK(probe(server, here) == 200);
    CHECK(probe(server, other) == 200);
    CHECK(login_status(server, "alice", "a.l.i.c.e-old-password") == 200);
    CHECK(login_status(server, "alice", "a.l.i.c.e-new-password") == 401);
  }

  SECTION("with the right current_password: changed; this session continues, the others end") {
    auto r = server.client(here).request(
        "PATCH", path,
        json{{"password", "a.l.i.c.e-new-password"}, {"current_password", "a.l.i.c.e-old-password"}}.dump());
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK_FALSE(r.json.contains("password_hash"));
    CHECK(probe(server, here) == 200);
    CHECK(refusal(server, other) == "invalid or expired token");
    CHECK(login_status(server, "alice", "a.l.i.c.e-old-password") == 401);
    CHECK(login_status(server, "alice", "a.l.i.c.e-new-password") == 200);
    // The admin's own session is untouched by a member's change.
    CHECK(admin.get("/v1/users").status == 200);
  }

  SECTION("an admin resets the password without the current one; every session of the user ends") {
    auto r = admin.request("PATCH", path, json{{"password", "a.l.i.c.e-reset-password"}}.dump());
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(refusal(server, here) == "invalid or expired token");
    CHECK(refusal(server, other) == "invalid or expired token");
    CHECK(admin.get("/v1/users").status == 200);
    CHECK(login_status(server, "alice", "a.l.i.c.e-reset-password") == 200);
  }

  SECTION("disabling a user ends every session of theirs") {
    SECTION("POST /v1/users/{id}/disable") { REQUIRE(admin.request("POST", path + "/disable").status == 200); }
    SECTION("PATCH {\"disabled\": true}") {
      REQUIRE(admin.request("PATCH", path, json{{"disabled", true}}.dump()).status == 200);
    }
    // Gone, not merely refused because the user is disabled.
    CHECK(refusal(server, here) == "invalid or expired token");
    CHECK(refusal(server, other) == "invalid or expired token");
  }
}

TEST_CASE("an admin changing their own password gives the current one too", "[e2e][sessions]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  const auto here = server.login("admin", k_admin_password);
  const auto other = server.login("admin", k_admin_password);
  auto me = server.client(here).get("/v1/users?limit=10");
  REQUIRE(me.status == 200);
  std::string admin_id;
  for (const auto& u : me.json.at("users")) {
    if (u.at("username") == "admin") admin_id = u.at("id").get<std::string>();
  }
  REQUIRE_FALSE(admin_id.empty());
  const auto path = "/v1/users/" + admin_id;
  CHECK(server.client(here).request("PATCH", path, json{{"password", "a.d.m.i.n-new-password"}}.dump()).status == 400);
  CHECK(server.client(here)
            .request("PATCH", path,
                     json{{"password", "a.d.m.i.n-new-password"}, {"current_password", "wrong-one"}}.dump())
            .status == 403);
  auto ok = server.client(here).request(
      "PATCH", path, json{{"password", "a.d.m.i.n-new-password"}, {"current_password", k_admin_password}}.dump());
  INFO(ok.body);
  REQUIRE(ok.status == 200);
  CHECK(probe(server, here) == 200);
  CHECK(probe(server, other) == 401);
  CHECK(login_status(server, "admin", "a.d.m.i.n-new-password") == 200);
}

TEST_CASE("POST /v1/auth/logout ends the current session only", "[e2e][sessions]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  create_member(admin, "bob", "b.o.b-password-1");
  const auto first = server.login("bob", "b.o.b-password-1");
  const auto second = server.login("bob", "b.o.b-password-1");

  auto out = server.client(first).post("/v1/auth/logout", json::object());
  INFO(out.body);
  REQUIRE(out.status == 200);
  CHECK(out.json.at("status") == "logged_out");
  CHECK(refusal(server, first) == "invalid or expired token");
  CHECK(probe(server, second) == 200);
  // The ended token cannot log out again; no token is 401; GET is not the method.
  CHECK(server.client(first).post("/v1/auth/logout", json::object()).status == 401);
  CHECK(server.client().post("/v1/auth/logout", json::object()).status == 401);
  CHECK(server.client(second).get("/v1/auth/logout").status == 405);  // POST only
  CHECK(probe(server, second) == 200);
}

TEST_CASE("the CSV audit export neutralizes spreadsheet formulas (OWASP)", "[e2e][audit][csv]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  // Anonymous failed logins record their User-Agent (and X-Request-Id) in the security stream.
  const std::vector<std::string> agents{"=cmd|' /C calc'!A0", "+SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
                                        "@SUM(1+1)*cmd|' /C calc'!A0",
                                        "\xEF\xBC\x9D"
                                        "1+1"};
  for (std::size_t i = 0; i < agents.size(); ++i) {
    auto r = server.client().request("POST", "/v1/auth/login",
                                     json{{"username", "nobody"}, {"password", "w.r.o.n.g-password"}}.dump(),
                                     {{"User-Agent", agents[i]}, {"X-Request-Id", "-csv-" + std::to_string(i)}});
    REQUIRE(r.status == 401);
  }
  auto csv = admin.get("/v1/audit/export?format=csv&stream=security&type=security.login_failed");
  REQUIRE(csv.status == 200);
  INFO(csv.body);
  for (std::size_t i = 0; i < agents.size(); ++i) {
    // Prefixed with ' and quoted (quotes inside doubled: none here but the payload's ').
    CHECK(csv.body.find("\"'" + agents[i] + "\"") != std::string::npos);
    CHECK(csv.body.find("\"'-csv-" + std::to_string(i) + "\"") != std::string::npos);
  }
  // No field starts with a formula character: after every separator comes a quote or a safe byte.
  for (std::size_t at = 0; at < csv.body.size(); ++at) {
    const bool field_start = at == 0 || csv.body[at - 1] == ',' || csv.body[at - 1] == '\n';
    if (!field_start) continue;
    const char ch = csv.body[at];
    INFO("field at " << at);
    CHECK((ch != '=' && ch != '+' && ch != '-' && ch != '@' && ch != '\t'));
  }
  // Values that need nothing stay as they were.
  CHECK(csv.body.find(",security,") != std::string::npos);
}
