/// Authentication keeps token records and principals in memory (issue 19, point 2;
/// adapters/http/auth_cache.hpp). These cases check, through the real atriumd, that
/// nothing it keeps outlives the change that ends it: each credential is used several
/// times first (so it is kept), then changed, and the very next request (a new
/// connection, as every request of the tests' client) sees the change.

#include <catch2/catch.hpp>

#include <string>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

/// Uses `c` `n` times on `target`, each answered `status`.
void warm(const http_client& c, const std::string& target, int status, int n = 3) {
  for (int i = 0; i < n; ++i) {
    auto r = c.get(target);
    INFO(target << " " << r.status << " " << r.body);
    REQUIRE(r.status == status);
  }
}

/// A member `name` (password `<name>-password-1`) and their id.
std::string member(const http_client& admin, const std::string& name) {
  auto r = admin.post("/v1/users", {{"username", name},
                                    {"email", name + "@example.org"},
                                    {"password", atrium::test::password_for(name, "-password-1")},
                                    {"role", "member"}});
  INFO(r.body);
  REQUIRE(r.status == 201);
  return id_of(r);
}

}  // namespace

TEST_CASE("auth cache: a revoked API token, an ended session and a logout fail on the very next request",
          "[e2e][auth_cache]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  member(admin, "alice");
  auto alice = server.client(server.login("alice", "a.l.i.c.e-password-1"));
  auto made = alice.post("/v1/tokens", {{"name", "ci"}, {"scopes", {"admin"}}});
  INFO(made.body);
  REQUIRE(made.status == 201);
  auto as_token = server.client(made.json.at("token").get<std::string>());
  warm(as_token, "/v1/projects", 200);
  REQUIRE(alice.request("DELETE", "/v1/tokens/" + made.json.at("id").get<std::string>()).status == 200);
  auto refused = as_token.get("/v1/projects");
  CHECK(refused.status == 401);
  CHECK(refused.body.find("invalid or expired token") != std::string::npos);
  warm(alice, "/v1/projects", 200);  // the session making the revocation still works

  // Logout: the session that logged out fails next; another session of alice does not.
  auto other = server.client(server.login("alice", "a.l.i.c.e-password-1"));
  warm(other, "/v1/projects", 200);
  REQUIRE(alice.request("POST", "/v1/auth/logout").status == 200);
  CHECK(alice.get("/v1/projects").status == 401);
  CHECK(other.get("/v1/projects").status == 200);
}

TEST_CASE("auth cache: a password reset ends the sessions, disabling fails sessions and API tokens at once",
          "[e2e][auth_cache]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto bob = member(admin, "bob");
  auto session = server.client(server.login("bob", "b.o.b-password-1"));
  auto made = session.post("/v1/tokens", {{"name", "ci"}, {"scopes", {"admin"}}});
  REQUIRE(made.status == 201);
  auto as_token = server.client(made.json.at("token").get<std::string>());
  warm(session, "/v1/projects", 200);
  warm(as_token, "/v1/projects", 200);

  // An admin resets bob's password: his session fails next, his API token is kept.
  REQUIRE(admin.request("PATCH", "/v1/users/" + bob, json{{"password", "b.o.b-password-2"}}.dump()).status == 200);
  CHECK(session.get("/v1/projects").status == 401);
  warm(as_token, "/v1/projects", 200);

  auto again = server.client(server.login("bob", "b.o.b-password-2"));
  warm(again, "/v1/projects", 200);
  REQUIRE(admin.request("POST", "/v1/users/" + bob + "/disable").status == 200);
  auto by_session = again.get("/v1/projects");
  CHECK(by_session.status == 401);
  auto by_token = as_token.get("/v1/projects");
  CHECK(by_token.status == 401);
  CHECK(by_token.body.find("user is disabled") != std::string::npos);
}

TEST_CASE("auth cache: a role granted or revoked applies to the very next request", "[e2e][auth_cache]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto carol = member(admin, "carol");
  auto as_carol = server.client(server.login("carol", "c.a.r.o.l-password-1"));
  warm(as_carol, "/v1/workers", 403);
  REQUIRE(admin.request("PATCH", "/v1/users/" + carol, json{{"grant_role", "admin"}}.dump()).status == 200);
  CHECK(as_carol.get("/v1/workers").status == 200);
  warm(as_carol, "/v1/workers", 200);
  REQUIRE(admin.request("PATCH", "/v1/users/" + carol, json{{"revoke_role", "admin"}}.dump()).status == 200);
  CHECK(as_carol.get("/v1/workers").status == 403);
}

TEST_CASE("auth cache: group membership, direct and nested, applies to the very next request", "[e2e][auth_cache]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto dave = member(admin, "dave");
  auto as_dave = server.client(server.login("dave", "d.a.v.e-password-1"));
  const auto project = id_of(admin.post("/v1/projects", {{"name", "Assay QC"}}));
  const auto g = id_of(admin.post("/v1/groups", {{"name", "analysts"}}));
  const auto h = id_of(admin.post("/v1/groups", {{"name", "interns"}}));
  REQUIRE(admin.post("/v1/projects/" + project + "/members", {{"group_id", g}, {"role", "viewer"}}).status == 200);
  const auto target = "/v1/projects/" + project;
  warm(as_dave, target, 404);

  // Directly in G: the project is readable at once; out of G: hidden at once.
  REQUIRE(admin.post("/v1/groups/" + g + "/members", {{"user_id", dave}}).status == 200);
  CHECK(as_dave.get(target).status == 200);
  warm(as_dave, target, 200);
  REQUIRE(admin.request("DELETE", "/v1/groups/" + g + "/members/" + dave).status == 200);
  CHECK(as_dave.get(target).status == 404);

  // In H, then H nested in G (a change to G's rows only): readable at once; H taken out
  // of G: hidden at once.
  REQUIRE(admin.post("/v1/groups/" + h + "/members", {{"user_id", dave}}).status == 200);
  warm(as_dave, target, 404);
  REQUIRE(admin.post("/v1/groups/" + g + "/members", {{"group_id", h}}).status == 200);
  CHECK(as_dave.get(target).status == 200);
  warm(as_dave, target, 200);
  REQUIRE(admin.request("DELETE", "/v1/groups/" + g + "/members/" + h).status == 200);
  CHECK(as_dave.get(target).status == 404);
}
