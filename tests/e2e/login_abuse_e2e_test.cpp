// End to end: authentication abuse (issue 21 point 5, docs/access.md "Login throttling",
// "Password policy"): 429 with Retry-After once an account's or an address's failure
// budget is used, audited once per window, other addresses unaffected, a success
// resetting the account; the password policy on create, change and the bootstrap admin.
// Client addresses are 127.0.0.x (any of 127/8 reaches a loopback server).
#include <catch2/catch.hpp>

#include "tests/support/atriumd.hpp"
#include "tests/support/raw_client.hpp"

using atrium::test::password_for;
using atrium::test::raw_request;
using atrium::test::raw_response;
using atrium::test::raw_socket;
using atrium::test::temp_dir;
using nlohmann::json;

namespace {

using server = atrium::test::atriumd_server;

/// `POST /v1/auth/login` from the local address `source`.
raw_response login_from(const server& s, const std::string& source, const std::string& user,
                        const std::string& password) {
  raw_socket sock(s.address, 0, source);
  const auto body = json{{"username", user}, {"password", password}}.dump();
  REQUIRE(sock.send_all(raw_request("POST", "/v1/auth/login", {{"Content-Type", "application/json"}}, body)));
  auto r = sock.read_responses(1, std::chrono::seconds(10));
  REQUIRE(r.responses.size() == 1);
  return r.responses.front();
}

/// The `security.login_throttled` events of the log (through the filtered feed).
std::vector<json> throttled_events(const atrium::test::http_client& admin) {
  auto r = admin.get("/v1/events?types=security.login_throttled&limit=1000");
  REQUIRE(r.status == 200);
  std::vector<json> out;
  for (const auto& e : r.json.at("events")) out.push_back(e.at("data"));
  return out;
}

}  // namespace

TEST_CASE("login throttling: an account's budget, 429 with Retry-After, one audit, a success resets", "[e2e]") {
  temp_dir dir;
  server srv(dir.path());
  const auto admin = srv.admin();
  for (const auto* name : {"alice", "bob"}) {
    REQUIRE(admin
                .post("/v1/users", {{"username", name},
                                    {"email", std::string(name) + "@example.org"},
                                    {"password", password_for(name)},
                                    {"role", "member"}})
                .status == 201);
  }
  for (int i = 0; i < 5; ++i) CHECK(login_from(srv, "127.0.0.3", "alice", "not-her-password").status == 401);
  // The budget is used: even the right password is refused unchecked, from anywhere.
  for (const auto* from : {"127.0.0.3", "127.0.0.9", "127.0.0.3"}) {
    auto r = login_from(srv, from, "alice", password_for("alice"));
    INFO(r.body);
    CHECK(r.status == 429);
    CHECK(r.headers.at("retry-after") == "1");
    CHECK(r.json.at("error").at("code") == "too_many_requests");
    CHECK(r.json.at("error").at("details").at("scope") == "account");
    CHECK(r.json.at("error").at("details").at("retry_after_s") == 1);
  }
  // The username as sent, in any case: the same account.
  CHECK(login_from(srv, "127.0.0.3", "ALICE", password_for("alice")).status == 429);
  // Another account from the same address is not affected.
  CHECK(login_from(srv, "127.0.0.3", "bob", password_for("bob")).status == 200);
  // Audited once for the account, however many attempts were refused.
  auto audited = throttled_events(admin);
  REQUIRE(audited.size() == 1);
  CHECK(audited[0].at("scope") == "account");
  CHECK(audited[0].at("subject") == "alice");
  CHECK(audited[0].at("retry_after_s") == 1);
  CHECK(audited[0].at("client_address").get<std::string>().starts_with("127.0.0.3:"));
  // Once the delay has passed the right password works, and the budget starts again.
  unsigned status = 0;
  REQUIRE(atrium::test::wait_until(
      [&] {
        status = login_from(srv, "127.0.0.3", "alice", password_for("alice")).status;
        return status != 429;
      },
      std::chrono::seconds(10)));
  CHECK(status == 200);
  for (int i = 0; i < 5; ++i) CHECK(login_from(srv, "127.0.0.3", "alice", "not-her-password").status == 401);
  CHECK(login_from(srv, "127.0.0.3", "alice", "not-her-password").status == 429);
  CHECK(throttled_events(admin).size() == 1);  // still within the window: not audited again
  CHECK(srv.stop() == 0);
}

TEST_CASE("login throttling: an address's budget spans accounts and blocks that address only", "[e2e]") {
  temp_dir dir;
  server srv(dir.path());
  const auto admin = srv.admin();
  REQUIRE(admin
              .post("/v1/users", {{"username", "carol"},
                                  {"email", "carol@example.org"},
                                  {"password", password_for("carol")},
                                  {"role", "member"}})
              .status == 201);
  // Twenty failures over twenty unknown users (under each account's budget).
  for (int i = 0; i < 20; ++i) {
    CHECK(login_from(srv, "127.0.0.5", "ghost" + std::to_string(i), "whatever-it-is").status == 401);
  }
  auto r = login_from(srv, "127.0.0.5", "carol", password_for("carol"));
  CHECK(r.status == 429);
  CHECK(r.json.at("error").at("details").at("scope") == "address");
  CHECK(r.headers.contains("retry-after"));
  CHECK(login_from(srv, "127.0.0.6", "carol", password_for("carol")).status == 200);
  auto audited = throttled_events(admin);
  REQUIRE(audited.size() == 1);
  CHECK(audited[0].at("scope") == "address");
  CHECK(audited[0].at("subject") == "127.0.0.5");
  // A hostile flood of odd usernames: refused 429 without a 5xx or a new event each.
  for (const auto& odd :
       {std::string(2000, 'x'), std::string("\xC3\xA9\xE2\x82\xAC"), std::string("a\nb"), std::string("")}) {
    CHECK(login_from(srv, "127.0.0.5", odd, "whatever-it-is").status / 100 == 4);
  }
  CHECK(throttled_events(admin).size() == 1);
  CHECK(srv.stop() == 0);
}

TEST_CASE("password policy: length, the username and common passwords, on create and change", "[e2e]") {
  temp_dir dir;
  server srv(dir.path());
  const auto admin = srv.admin();
  auto create = [&](const std::string& name, const std::string& password) {
    return admin.post(
        "/v1/users",
        {{"username", name}, {"email", name + "@example.org"}, {"password", password}, {"role", "member"}});
  };
  const std::vector<std::pair<std::string, std::string>> refused{
      {"short-pass1", "too_short"},
      {"dave-the-great-1", "contains_username"},
      {"My-DAVE-password", "contains_username"},
      {"Password2024!", "common"},
      {"qwertyuiop123", "common"},
      {std::string(1025, 'z'), "too_long"},
  };
  for (const auto& [password, reason] : refused) {
    auto r = create("dave", password);
    INFO(password.substr(0, 40));
    CHECK(r.status == 400);
    CHECK(r.json.at("error").at("code") == "invalid_argument");
    CHECK(r.json.at("error").at("details").at("reason") == reason);
    CHECK(r.json.at("error").at("details").at("field") == "password");
  }
  auto made = create("dave", "ten-green-bottles");
  REQUIRE(made.status == 201);
  const auto id = made.json.at("id").get<std::string>();
  // The own change and an admin's reset follow the same policy.
  const auto dave = srv.client(srv.login("dave", "ten-green-bottles"));
  auto own = dave.request("PATCH", "/v1/users/" + id,
                          json{{"password", "letmein123456"}, {"current_password", "ten-green-bottles"}}.dump());
  CHECK(own.status == 400);
  CHECK(own.json.at("error").at("details").at("reason") == "common");
  auto reset = admin.request("PATCH", "/v1/users/" + id, json{{"password", "dave"}}.dump());
  CHECK(reset.status == 400);
  CHECK(reset.json.at("error").at("details").at("reason") == "too_short");
  CHECK(dave.request("PATCH", "/v1/users/" + id,
                     json{{"password", "nine-blue-kettles"}, {"current_password", "ten-green-bottles"}}.dump())
            .status == 200);
  CHECK(srv.client().post("/v1/auth/login", {{"username", "dave"}, {"password", "nine-blue-kettles"}}).status == 200);
  CHECK(srv.stop() == 0);
}

TEST_CASE("password policy: the bootstrap admin's ATRIUM_ADMIN_PASSWORD follows it (else no start)", "[e2e]") {
  temp_dir dir;
  const auto log = dir.path() / "atriumd.log";
  atrium::test::child_process p({ATRIUMD_PATH, "--data-dir", (dir.path() / "data").string(), "--listen", "127.0.0.1:0"},
                                {{"ATRIUM_ADMIN_PASSWORD", "my-admin-password"}}, log);
  REQUIRE(atrium::test::wait_until([&] { return !p.running(); }, std::chrono::seconds(30)));
  CHECK(server::slurp(log).find("contains_username") != std::string::npos);
}
