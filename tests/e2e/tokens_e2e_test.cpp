/// Service accounts and API tokens end to end against the real atriumd (issue 16, point
/// 2): a service account granted a project role reads through a scoped token as any
/// member would; a token reaches only what its scopes and its owner allow (403 naming
/// the missing scope); revocation, expiry and disabling make it fail (401) at once;
/// `security.token_created`/`token_revoked` are audited without the secret; tokens
/// survive a restart.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

/// Makes a token through `maker` at `path` and returns the answer (201 required).
json make_token(const http_client& maker, const std::string& path, const std::string& name,
                const std::vector<std::string>& scopes, std::optional<int> expires_in_s = std::nullopt) {
  json body{{"name", name}, {"scopes", scopes}};
  if (expires_in_s) body["expires_in_s"] = *expires_in_s;
  auto r = maker.post(path, body);
  INFO(r.body);
  REQUIRE(r.status == 201);
  REQUIRE(r.json.at("token").get<std::string>().starts_with("atr_"));
  return r.json;
}

/// The `missing_scope` of a 403, or "" when it has none.
std::string missing_scope(const http_reply& r) {
  INFO(r.status << " " << r.body);
  REQUIRE(r.status == 403);
  return r.json.at("error").at("details").value("missing_scope", "");
}

}  // namespace

TEST_CASE("a service account's scoped tokens: allowed and forbidden routes, revocation, disabling, audit",
          "[e2e][tokens]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();

  auto created = admin.post("/v1/service-accounts", {{"name", "ci-bot"}, {"description", "nightly QC"}});
  INFO(created.body);
  REQUIRE(created.status == 201);
  const auto sa = id_of(created);
  CHECK(created.json.at("kind") == "service");
  CHECK(created.json.at("username") == "ci-bot");
  CHECK(created.json.at("description") == "nightly QC");
  CHECK(admin.get("/v1/service-accounts/" + sa).status == 200);
  auto listed = admin.get("/v1/service-accounts");
  REQUIRE(listed.status == 200);
  REQUIRE(listed.json.at("service_accounts").size() == 1);
  CHECK(listed.json.at("service_accounts")[0].at("id") == sa);
  // The name is taken for people too; a service account never logs in.
  CHECK(admin.post("/v1/service-accounts", {{"name", "admin"}}).status == 409);
  CHECK(server.client()
            .post("/v1/auth/login", {{"username", "ci-bot"}, {"password", "w.h.a.t.e.v.e.r-password"}})
            .status == 401);
  // A person is not a service account.
  CHECK(admin.get("/v1/service-accounts/" + admin.get("/v1/users").json.at("users")[0].value("id", "")).status == 404);

  // Granted like a user: viewer of project P.
  const auto p = id_of(admin.post("/v1/projects", {{"name", "Assay QC"}}));
  REQUIRE(admin.post("/v1/projects/" + p + "/members", {{"user_id", sa}, {"role", "viewer"}}).status == 200);
  const auto q = id_of(admin.post("/v1/projects", {{"name", "Not shared"}}));
  // A schedule in each: its stream reads like the schedule (`schedule.read`).
  const auto schedule_in = [&](const std::string& project) {
    return id_of(admin.post(
        "/v1/schedules",
        {{"name", "yearly"}, {"project_id", project}, {"cron", "@yearly"}, {"target", {{"run_cells", true}}}}));
  };
  const auto sp = schedule_in(p);
  const auto sq = schedule_in(q);

  const auto reader = make_token(admin, "/v1/service-accounts/" + sa + "/tokens", "reader", {"events:read"});
  const auto worker = make_token(admin, "/v1/service-accounts/" + sa + "/tokens", "worker", {"jobs:work"});
  CHECK(reader.at("user_id") == sa);
  CHECK(reader.at("expires_at").is_null());
  auto as_reader = server.client(reader.at("token").get<std::string>());
  auto as_worker = server.client(worker.at("token").get<std::string>());

  SECTION("events:read reads what its owner may read, and nothing else") {
    CHECK(as_reader.get("/v1/streams/project-" + p).status == 200);
    CHECK(as_reader.get("/v1/streams/project-" + q).status == 404);  // the owner may not
    CHECK(as_reader.get("/v1/streams/schedule-" + sp).status == 200);
    CHECK(as_reader.get("/v1/streams/schedule-" + sq).status == 404);
    CHECK(missing_scope(as_reader.get("/v1/events")).empty());  // the scope may, the owner (a member) may not
    CHECK(missing_scope(as_reader.get("/v1/projects")) == "admin");
    CHECK(missing_scope(as_reader.get("/v1/projects/" + p)) == "admin");
    CHECK(missing_scope(as_reader.post("/v1/projects", {{"name", "x"}})) == "admin");
    CHECK(missing_scope(as_reader.get("/v1/jobs")) == "jobs:work");
    CHECK(missing_scope(as_reader.get("/v1/tokens")) == "admin");
    auto denied = as_reader.get("/v1/jobs");
    CHECK(denied.json.at("error").at("message").get<std::string>().find("jobs:work") != std::string::npos);
  }

  SECTION("jobs:work reads jobs and not the log") {
    CHECK(as_worker.get("/v1/jobs").status == 200);
    CHECK(missing_scope(as_worker.get("/v1/streams/project-" + p)) == "events:read");
    CHECK(missing_scope(as_worker.get("/v1/streams/schedule-" + sp)) == "events:read");
    CHECK(missing_scope(as_worker.post("/v1/jobs", {{"project_id", p}, {"kind", "sql"}})) == "admin");
  }

  SECTION("listing shows no secret; revoking fails the token at once; both are audited") {
    auto tokens = admin.get("/v1/service-accounts/" + sa + "/tokens");
    INFO(tokens.body);
    REQUIRE(tokens.status == 200);
    REQUIRE(tokens.json.at("tokens").size() == 2);
    for (const auto& t : tokens.json.at("tokens")) {
      CHECK_FALSE(t.contains("token"));
      CHECK(t.at("scopes").size() == 1);
    }
    CHECK(tokens.body.find(reader.at("token").get<std::string>()) == std::string::npos);

    auto revoked = admin.request("DELETE", "/v1/tokens/" + reader.at("id").get<std::string>());
    INFO(revoked.body);
    REQUIRE(revoked.status == 200);
    CHECK(as_reader.get("/v1/streams/project-" + p).status == 401);  // no waiting: at once
    CHECK(as_worker.get("/v1/jobs").status == 200);                  // the other token is untouched
    CHECK(admin.request("DELETE", "/v1/tokens/" + reader.at("id").get<std::string>()).status == 404);

    std::size_t made = 0, ended = 0;
    for (const auto& e : stream_events(admin, "security")) {
      const auto text = e.dump();
      CHECK(text.find(reader.at("token").get<std::string>()) == std::string::npos);
      CHECK(text.find(worker.at("token").get<std::string>()) == std::string::npos);
      if (e.at("type") == "security.token_created") {
        ++made;
        CHECK(e.at("data").at("user_id") == sa);
        CHECK(e.at("data").at("scopes").size() == 1);
      }
      if (e.at("type") == "security.token_revoked") {
        ++ended;
        CHECK(e.at("data").at("token_id") == reader.at("id"));
        CHECK(e.at("data").at("scopes") == json::array({"events:read"}));
      }
    }
    CHECK(made == 2);
    CHECK(ended == 1);
    // The audit log lists them too (by type), without the secret.
    auto audit = admin.get("/v1/audit?type=security.token_revoked");
    REQUIRE(audit.status == 200);
    CHECK(audit.body.find("security.token_revoked") != std::string::npos);
    CHECK(audit.body.find(reader.at("token").get<std::string>()) == std::string::npos);
  }

  SECTION("disabling the service account fails all its tokens at once") {
    auto disabled = admin.request("POST", "/v1/service-accounts/" + sa + "/disable");
    INFO(disabled.body);
    REQUIRE(disabled.status == 200);
    CHECK(disabled.json.at("disabled") == true);
    for (auto* c : {&as_reader, &as_worker}) {
      auto r = c->get("/v1/jobs");
      CHECK(r.status == 401);
    }
    // A disabled account gets no new token.
    auto refused = admin.post("/v1/service-accounts/" + sa + "/tokens", {{"name", "late"}, {"scopes", {"admin"}}});
    CHECK(refused.status == 409);
  }
}

/// A server with members alice and bob, a session of each, and alice's personal
/// `admin`-scoped token `full` (checked to work within alice's rights).
struct personal_world {
  temp_dir dir;
  atriumd_server server{dir.path()};
  http_client admin = server.admin();
  http_client alice{server.address}, bob{server.address}, as_full{server.address};
  json full;

  personal_world() {
    for (const auto* name : {"alice", "bob"}) {
      auto r = admin.post("/v1/users", {{"username", name},
                                        {"email", std::string(name) + "@example.org"},
                                        {"password", atrium::test::password_for(std::string(name), "-password-1")},
                                        {"role", "member"}});
      REQUIRE(r.status == 201);
    }
    alice = server.client(server.login("alice", "a.l.i.c.e-password-1"));
    bob = server.client(server.login("bob", "b.o.b-password-1"));
    full = make_token(alice, "/v1/tokens", "laptop", {"admin"});
    as_full = server.client(full.at("token").get<std::string>());
    CHECK(as_full.get("/v1/projects").status == 200);
    CHECK(as_full.post("/v1/projects", {{"name", "Mine"}}).status == 201);
    // admin scope is what the owner may do, no more: a member makes no users.
    CHECK(missing_scope(as_full.post("/v1/users", json::object())).empty());
  }
};

TEST_CASE("personal tokens: the list is the caller's own, without secrets, others' tokens are not found",
          "[e2e][tokens]") {
  personal_world w;
  auto& [dir, server, admin, alice, bob, as_full, full] = w;
  make_token(bob, "/v1/tokens", "bob's", {"events:read"});
  auto mine = alice.get("/v1/tokens");
  REQUIRE(mine.status == 200);
  REQUIRE(mine.json.at("tokens").size() == 1);
  CHECK(mine.json.at("tokens")[0].at("name") == "laptop");
  CHECK_FALSE(mine.json.at("tokens")[0].contains("token"));
  CHECK(bob.request("DELETE", "/v1/tokens/" + full.at("id").get<std::string>()).status == 404);
  CHECK(as_full.get("/v1/projects").status == 200);
  CHECK(alice.request("DELETE", "/v1/tokens/" + full.at("id").get<std::string>()).status == 200);
  CHECK(as_full.get("/v1/projects").status == 401);
}

TEST_CASE("personal tokens: a token with a short expiry fails with a clear 401 once it expired", "[e2e][tokens]") {
  personal_world w;
  auto& [dir, server, admin, alice, bob, as_full, full] = w;
  const auto brief = make_token(alice, "/v1/tokens", "brief", {"events:read"}, 1);
  CHECK_FALSE(brief.at("expires_at").is_null());
  auto as_brief = server.client(brief.at("token").get<std::string>());
  http_reply last;
  const bool expired = wait_until(
      [&] {
        last = as_brief.get("/v1/streams/user-" + full.at("user_id").get<std::string>());
        return last.status == 401;
      },
      std::chrono::seconds(10));
  INFO(last.body);
  REQUIRE(expired);
  CHECK(last.json.at("error").at("message") == "the API token has expired");
  auto listed = alice.get("/v1/tokens");
  bool shown_expired = false;
  for (const auto& t : listed.json.at("tokens")) {
    if (t.at("id") == brief.at("id")) shown_expired = t.at("expired").get<bool>();
  }
  CHECK(shown_expired);
}

TEST_CASE("personal tokens: logout ends only the session it is made with, a token is not logged out", "[e2e][tokens]") {
  personal_world w;
  auto& [dir, server, admin, alice, bob, as_full, full] = w;
  auto other = server.client(server.login("alice", "a.l.i.c.e-password-1"));
  auto refused = as_full.request("POST", "/v1/auth/logout");
  CHECK(refused.status == 400);
  REQUIRE(alice.request("POST", "/v1/auth/logout").status == 200);
  CHECK(alice.get("/v1/projects").status == 401);
  CHECK(other.get("/v1/projects").status == 200);
  CHECK(as_full.get("/v1/projects").status == 200);
}

TEST_CASE("personal tokens: a password change keeps API tokens, disabling the user fails them", "[e2e][tokens]") {
  personal_world w;
  auto& [dir, server, admin, alice, bob, as_full, full] = w;
  auto changed =
      alice.request("PATCH", "/v1/users/" + full.at("user_id").get<std::string>(),
                    json{{"password", "a.l.i.c.e-password-2"}, {"current_password", "a.l.i.c.e-password-1"}}.dump());
  REQUIRE(changed.status == 200);
  CHECK(as_full.get("/v1/projects").status == 200);
  REQUIRE(admin.request("POST", "/v1/users/" + full.at("user_id").get<std::string>() + "/disable").status == 200);
  CHECK(as_full.get("/v1/projects").status == 401);
}

TEST_CASE("personal tokens: tokens survive a restart", "[e2e][tokens]") {
  personal_world w;
  auto& [dir, server, admin, alice, bob, as_full, full] = w;
  REQUIRE(server.stop() == 0);
  server.start();
  CHECK(server.client(full.at("token").get<std::string>()).get("/v1/projects").status == 200);
  auto listed = server.client(full.at("token").get<std::string>()).get("/v1/tokens");
  REQUIRE(listed.status == 200);
  CHECK(listed.json.at("tokens").size() == 1);
}

TEST_CASE("token bodies are validated", "[e2e][tokens]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  for (const auto& body : std::vector<json>{
           json::object(),
           {{"name", "x"}},
           {{"name", "x"}, {"scopes", json::array()}},
           {{"name", "x"}, {"scopes", {"events:write"}}},
           {{"name", "x"}, {"scopes", {1}}},
           {{"name", ""}, {"scopes", {"admin"}}},
           {{"name", std::string(101, 'n')}, {"scopes", {"admin"}}},
           {{"name", "x"}, {"scopes", {"admin"}}, {"expires_in_s", 0}},
           {{"name", "x"}, {"scopes", {"admin"}}, {"expires_in_s", -5}},
           {{"name", "x"}, {"scopes", {"admin"}}, {"expires_in_s", "soon"}},
           {{"name", "x"}, {"scopes", {"admin"}}, {"expires_in_s", 1e12}},
       }) {
    auto r = admin.post("/v1/tokens", body);
    INFO(body.dump() << " -> " << r.body);
    CHECK(r.status == 400);
  }
  CHECK(admin.post("/v1/service-accounts", {{"name", "No Spaces Allowed"}}).status == 400);
  CHECK(admin.post("/v1/service-accounts", {{"name", "svc"}, {"role", "king"}}).status == 400);
  CHECK(admin.post("/v1/service-accounts", {{"name", "svc"}, {"description", std::string(1001, 'd')}}).status == 400);
  CHECK(admin.post("/v1/service-accounts/nonexistent/tokens", {{"name", "x"}, {"scopes", {"admin"}}}).status == 404);
}
