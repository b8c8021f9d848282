// End to end: the real atriumd binary on a free loopback port with a temp data dir,
// driven over HTTP.
#include <catch2/catch.hpp>

#include <regex>

#include <csignal>
#include <fstream>
#include <optional>
#include <sys/wait.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "tests/support/atriumd.hpp"

using atrium::test::child_process;
using atrium::test::http_client;
using atrium::test::http_reply;
using atrium::test::temp_dir;
using nlohmann::json;

namespace {

using server = atrium::test::atriumd_server;
using atrium::test::k_admin_password;

json create_user(const http_client& admin, const std::string& name) {
  auto r = admin.post("/v1/users", {{"username", name},
                                    {"email", name + "@example.org"},
                                    {"password", atrium::test::password_for(name, "-password")},
                                    {"role", "member"}});
  REQUIRE(r.status == 201);
  return r.json;
}

bool contains_type(const json& entries, const std::string& type, const std::string& actor) {
  for (const auto& e : entries) {
    if (e.at("type") == type && e.at("actor") == actor) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a newcomer's session: users, projects, sharing, conflicts, audit, restart", "[e2e]") {
  temp_dir dir;
  server srv(dir.path());

  // Log in as the bootstrap admin.
  auto login = srv.client().post("/v1/auth/login", {{"username", "admin"}, {"password", k_admin_password}});
  REQUIRE(login.status == 200);
  CHECK(login.json.at("user").at("username") == "admin");
  CHECK(login.json.at("token").get<std::string>().size() == 64);
  const auto admin_id = login.json.at("user").at("id").get<std::string>();
  const auto admin = srv.client(login.json.at("token").get<std::string>());
  CHECK(srv.client().post("/v1/auth/login", {{"username", "admin"}, {"password", "w.r.o.n.g-password"}}).status == 401);

  // Members.
  const auto alice = create_user(admin, "alice");
  const auto bob = create_user(admin, "bob");
  const auto carol = create_user(admin, "carol");
  CHECK(alice.at("version") == 1);
  CHECK(alice.at("roles") == json::array({"member"}));
  CHECK_FALSE(alice.contains("password_hash"));
  auto dup = admin.post("/v1/users", {{"username", "Alice"}, {"email", "x@y.z"}, {"password", "whatever-long-1"}});
  CHECK(dup.status == 409);
  CHECK(dup.json.at("error").at("code") == "already_exists");

  const auto alice_token = srv.login("alice", "a.l.i.c.e-password");
  const auto as_alice = srv.client(alice_token);
  const auto as_bob = srv.client(srv.login("bob", "b.o.b-password"));
  const auto as_carol = srv.client(srv.login("carol", "c.a.r.o.l-password"));
  CHECK(as_alice.post("/v1/users", {{"username", "mallory"}, {"email", "m@x.y"}, {"password", "12345678"}}).status ==
        403);

  // A project, shared with bob as editor.
  auto created = as_alice.post("/v1/projects", {{"name", "Assay QC"}, {"description", "plate reader runs"}});
  REQUIRE(created.status == 201);
  const auto pid = created.json.at("id").get<std::string>();
  CHECK(created.json.at("version") == 2);  // created + member_added(owner)
  CHECK(created.json.at("members") == json::array({{{"user_id", alice.at("id")}, {"role", "owner"}}}));
  CHECK(created.json.contains("created_at"));
  CHECK(as_alice.get("/v1/projects/" + pid).json == created.json);

  auto shared = as_alice.post("/v1/projects/" + pid + "/members", {{"user_id", bob.at("id")}, {"role", "editor"}});
  REQUIRE(shared.status == 200);
  CHECK(shared.json.at("version") == 3);

  // Bob edits with the right version; a stale If-Match gets 409 naming the current one.
  auto renamed =
      as_bob.request("PATCH", "/v1/projects/" + pid, json{{"name", "Assay QC v2"}}.dump(), {{"If-Match", "3"}});
  REQUIRE(renamed.status == 200);
  CHECK(renamed.json.at("name") == "Assay QC v2");
  CHECK(renamed.json.at("version") == 4);
  CHECK(renamed.headers.at("etag") == "\"4\"");
  auto stale = as_alice.request("PATCH", "/v1/projects/" + pid, json{{"description", "x"}}.dump(), {{"If-Match", "3"}});
  CHECK(stale.status == 409);
  CHECK(stale.json.at("error").at("code") == "version_conflict");
  CHECK(stale.json.at("error").at("details").at("current_version") == 4);
  CHECK(as_alice.request("PATCH", "/v1/projects/" + pid, json{{"description", "x"}}.dump()).status == 428);

  // Roles: an editor may not share; an outsider cannot even see the project.
  CHECK(as_bob.post("/v1/projects/" + pid + "/members", {{"user_id", carol.at("id")}, {"role", "viewer"}}).status ==
        403);
  CHECK(as_carol.get("/v1/projects/" + pid).status == 404);
  CHECK(as_carol.request("PATCH", "/v1/projects/" + pid, json{{"name", "mine"}}.dump(), {{"If-Match", "4"}}).status ==
        404);
  CHECK(as_carol.get("/v1/projects").json.at("projects").empty());
  CHECK(as_carol.get("/v1/streams/project-" + pid).status == 404);
  auto bobs = as_bob.get("/v1/projects");
  REQUIRE(bobs.status == 200);
  REQUIRE(bobs.json.at("projects").size() == 1);
  CHECK(bobs.json.at("projects")[0].at("id") == pid);
  CHECK(as_bob.get("/v1/streams/project-" + pid).json.at("events").size() == 4);

  // The last owner cannot leave; auditor-only endpoints refuse members.
  auto last_owner = as_alice.request("DELETE", "/v1/projects/" + pid + "/members/" + alice.at("id").get<std::string>());
  CHECK(last_owner.status == 409);
  CHECK(as_alice.get("/v1/audit").status == 403);
  CHECK(as_alice.get("/v1/events").status == 403);

  // A disabled user's token fails at once, and they cannot log in again.
  const auto dave = create_user(admin, "dave");
  const auto dave_token = srv.login("dave", "d.a.v.e-password");
  const auto as_dave = srv.client(dave_token);
  CHECK(as_dave.get("/v1/projects").status == 200);
  auto disabled = admin.post("/v1/users/" + dave.at("id").get<std::string>() + "/disable", json::object());
  REQUIRE(disabled.status == 200);
  CHECK(disabled.json.at("disabled") == true);
  CHECK(as_dave.get("/v1/projects").status == 401);
  CHECK(srv.client().post("/v1/auth/login", {{"username", "dave"}, {"password", "d.a.v.e-password"}}).status == 401);

  // Authentication and input errors.
  CHECK(srv.client().get("/v1/projects").status == 401);
  CHECK(srv.client(std::string(64, 'a')).get("/v1/projects").status == 401);
  CHECK(as_alice.request("POST", "/v1/projects", "{not json").status == 400);
  CHECK(as_alice.post("/v1/projects", {{"name", 42}}).status == 400);
  CHECK(as_alice.get("/v1/projects/01234567-0000-7000-8000-000000000000").status == 404);
  CHECK(admin.get("/v1/nothing-here").status == 404);

  // The audit log lists each change with its actor.
  auto audit = admin.get("/v1/audit?limit=1000");
  REQUIRE(audit.status == 200);
  const auto& entries = audit.json.at("entries");
  const auto u = [](const json& user) { return "user-" + user.at("id").get<std::string>(); };
  CHECK(contains_type(entries, "user.registered", "system"));
  CHECK(contains_type(entries, "user.registered", "user-" + admin_id));
  CHECK(contains_type(entries, "project.created", u(alice)));
  CHECK(contains_type(entries, "project.member_added", u(alice)));
  CHECK(contains_type(entries, "project.renamed", u(bob)));
  for (std::size_t i = 1; i < entries.size(); ++i) {
    CHECK(entries[i].at("position").get<std::uint64_t>() == entries[i - 1].at("position").get<std::uint64_t>() + 1);
  }
  // Logins, failed and successful, are in the security stream.
  CHECK(contains_type(entries, "security.login_failed", "anonymous"));
  CHECK(contains_type(entries, "security.login_succeeded", u(alice)));
  auto security = admin.get("/v1/streams/security");
  REQUIRE(security.status == 200);
  bool saw_failed_admin = false;
  for (const auto& e : security.json.at("events")) {
    CHECK(e.at("stream") == "security");
    if (e.at("type") == "security.login_failed" && e.at("data").at("username") == "admin") {
      saw_failed_admin = true;
      CHECK(e.at("data").at("reason") == "invalid_credentials");
      CHECK(e.at("data").at("client_address").get<std::string>().starts_with("127.0.0.1:"));
    }
  }
  CHECK(saw_failed_admin);
  auto renames = admin.get("/v1/audit?type=project.renamed");
  REQUIRE(renames.json.at("entries").size() == 1);
  CHECK(renames.json.at("entries")[0].at("actor") == u(bob));

  // The global log serves envelopes and never a password hash.
  auto log = admin.get("/v1/events?after=0&limit=1000");
  REQUIRE(log.status == 200);
  CHECK(log.json.at("events").size() == entries.size());
  CHECK(log.body.find("password_hash") == std::string::npos);
  CHECK(log.body.find("argon2id") == std::string::npos);
  const auto& first = log.json.at("events")[0];
  for (const char* f : {"position", "stream", "version", "id", "type", "schema", "time", "actor", "correlation_id",
                        "causation_id", "data"}) {
    CHECK(first.contains(f));
  }
  const auto head = log.json.at("head").get<std::uint64_t>();

  // Restart: everything is still there, tokens included, and nothing is bootstrapped twice.
  CHECK(srv.stop() == 0);
  srv.start();
  const auto admin2 = srv.client(login.json.at("token").get<std::string>());  // sessions survive a restart
  CHECK(admin2.get("/v1/events?after=0&limit=1000").json.at("head") == head);
  CHECK(admin2.get("/v1/audit?limit=1000").json.at("entries").size() == entries.size());
  auto project = srv.client(srv.login("bob", "b.o.b-password")).get("/v1/projects/" + pid);
  REQUIRE(project.status == 200);
  CHECK(project.json.at("name") == "Assay QC v2");
  CHECK(project.json.at("version") == 4);
  CHECK(admin2.get("/v1/users").json.at("users").size() == 5);
  CHECK(srv.client(alice_token).get("/v1/projects").status == 200);  // sessions survive a restart
  CHECK(srv.client(dave_token).get("/v1/projects").status == 401);
}

TEST_CASE("Idempotency-Key: a retry answers the original result and writes nothing", "[e2e]") {
  temp_dir dir;
  server srv(dir.path());
  const auto admin = srv.client(srv.login("admin", k_admin_password));
  auto head = [&] { return admin.get("/v1/events?limit=1").json.at("head").get<std::uint64_t>(); };
  const auto body = json{{"name", "Idempotent"}, {"description", "once"}}.dump();

  auto first = admin.request("POST", "/v1/projects", body, {{"Idempotency-Key", "create-1"}});
  REQUIRE(first.status == 201);
  const auto after_first = head();
  auto retry = admin.request("POST", "/v1/projects", body, {{"Idempotency-Key", "create-1"}});
  CHECK(retry.status == 201);
  CHECK(retry.body == first.body);
  CHECK(retry.headers.at("idempotency-replayed") == "true");
  CHECK(head() == after_first);
  CHECK(admin.get("/v1/projects").json.at("projects").size() == 1);

  // The same key with another body is refused; other keys and other users are independent.
  auto reused =
      admin.request("POST", "/v1/projects", json{{"name", "Other"}}.dump(), {{"Idempotency-Key", "create-1"}});
  CHECK(reused.status == 409);
  CHECK(head() == after_first);
  auto bob = create_user(admin, "bob");
  auto as_bob = srv.client(srv.login("bob", "b.o.b-password"));
  CHECK(as_bob.request("POST", "/v1/projects", body, {{"Idempotency-Key", "create-1"}}).status == 201);

  // A retried PATCH replays its answer instead of failing on its now-stale If-Match.
  const auto pid = first.json.at("id").get<std::string>();
  const auto patch = json{{"name", "Renamed"}}.dump();
  auto renamed = admin.request("PATCH", "/v1/projects/" + pid, patch, {{"If-Match", "2"}, {"Idempotency-Key", "r-1"}});
  REQUIRE(renamed.status == 200);
  auto again = admin.request("PATCH", "/v1/projects/" + pid, patch, {{"If-Match", "2"}, {"Idempotency-Key", "r-1"}});
  CHECK(again.status == 200);
  CHECK(again.body == renamed.body);
  CHECK(admin.get("/v1/projects/" + pid).json.at("version") == 3);

  // Events carry ids derived from the key, and the whole log still verifies.
  auto stream = admin.get("/v1/streams/project-" + pid);
  REQUIRE(stream.status == 200);
  CHECK(stream.json.at("events")[0].at("id").get<std::string>().ends_with(".0"));
  auto verified = admin.get("/v1/audit/verify");
  REQUIRE(verified.status == 200);
  CHECK(verified.json.at("ok") == true);
  CHECK(verified.json.at("count") == head());
  CHECK(srv.stop() == 0);
}

TEST_CASE("bad requests get clear errors and never take the server down", "[e2e]") {
  temp_dir dir;
  server srv(dir.path());
  const auto admin = srv.client(srv.login("admin", k_admin_password));

  CHECK(admin.request("POST", "/v1/projects", std::string(2 << 20, 'x')).status == 413);
  CHECK(admin.request("POST", "/v1/projects", "[1,2,3]").status == 400);
  CHECK(admin.request("POST", "/v1/projects", "").status == 400);
  CHECK(admin.post("/v1/projects", {{"name", ""}}).status == 400);
  CHECK(admin.post("/v1/projects", {{"name", std::string(201, 'n')}}).status == 400);
  CHECK(admin.post("/v1/users", {{"username", "x"}, {"email", "x@y.z"}, {"password", "12345678"}}).status == 400);
  CHECK(admin.post("/v1/users", {{"username", "valid"}, {"email", "nope"}, {"password", "12345678"}}).status == 400);
  CHECK(admin.post("/v1/users", {{"username", "valid"}, {"email", "a@b.c"}, {"password", "short"}}).status == 400);
  CHECK(admin.post("/v1/users", {{"username", "valid"}, {"email", "a@b.c"}, {"password", "12345678"}, {"role", "god"}})
            .status == 400);
  CHECK(admin.get("/v1/events?limit=0").status == 400);
  CHECK(admin.get("/v1/events?after=-1").status == 400);
  CHECK(admin.get("/v1/audit?order=sideways").status == 400);
  // A path segment that is not UTF-8 or holds a control character is refused at the edge.
  CHECK(admin.get("/v1/projects/%00%ff").status == 400);
  CHECK(admin.get("/v1/projects/%ff").json["error"]["message"] == "path segment is not valid UTF-8");
  // A known path with another method is 405 with the methods it allows; an unknown path
  // a 404 in the API's error shape.
  const auto put = admin.request("PUT", "/v1/projects");
  CHECK(put.status == 405);
  CHECK(put.headers.at("allow") == "POST, GET, HEAD, OPTIONS");
  CHECK(put.json["error"]["code"] == "method_not_allowed");
  CHECK(admin.request("DELETE", "/healthz").status == 405);
  const auto nowhere = admin.get("/v1/nowhere");
  CHECK(nowhere.status == 404);
  CHECK(nowhere.json["error"]["code"] == "not_found");
  // RFC 9110 §6.6.1: every answer carries a Date (IMF-fixdate), errors and refusals too.
  const std::regex imf_fixdate(R"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT)");
  for (const auto& r : {put, nowhere, admin.get("/healthz"), admin.get("/v1/projects"),
                        admin.request("POST", "/v1/projects", std::string(2 << 20, 'x'))}) {
    INFO(r.status);
    REQUIRE(r.headers.count("date") == 1);
    CHECK(std::regex_match(r.headers.at("date"), imf_fixdate));
  }
  // An unknown project is 404 before its If-Match is even read; on a real one a bad
  // If-Match is 400.
  CHECK(admin.request("PATCH", "/v1/projects/abc", "{}", {{"If-Match", "soon"}}).status == 404);
  auto real = admin.post("/v1/projects", {{"name", "Real"}});
  REQUIRE(real.status == 201);
  CHECK(admin
            .request("PATCH", "/v1/projects/" + real.json.at("id").get<std::string>(), json{{"name", "x"}}.dump(),
                     {{"If-Match", "soon"}})
            .status == 400);

  // Raw garbage on the socket.
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    const auto colon = srv.address.rfind(':');
    s.connect({boost::asio::ip::make_address(srv.address.substr(0, colon)),
               static_cast<unsigned short>(std::stoi(srv.address.substr(colon + 1)))});
    boost::asio::write(s, boost::asio::buffer(std::string("\x01\x02 NOT HTTP \r\n\r\n")));
    std::string reply(512, '\0');
    boost::system::error_code ec;
    const auto n = s.read_some(boost::asio::buffer(reply), ec);
    CHECK(std::string_view(reply.data(), n).starts_with("HTTP/1.1 400"));
  }

  CHECK(admin.get("/healthz").status == 200);
  CHECK(srv.proc->running());
  CHECK(srv.stop() == 0);
}

TEST_CASE("GET /v1/openapi.json serves docs/openapi.json as built, without a token", "[e2e]") {
  temp_dir dir;
  server srv(dir.path());
  const http_client anonymous(srv.address);
  const auto r = anonymous.get("/v1/openapi.json");
  REQUIRE(r.status == 200);
  CHECK(r.headers.at("content-type") == "application/json");
  std::ifstream file(ATRIUM_OPENAPI_PATH, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  REQUIRE(!text.empty());
  CHECK(r.body == text);  // byte for byte: the build embeds the file as it is
  CHECK(r.json.at("openapi") == "3.1.0");
  CHECK(r.json.at("paths").contains("/v1/openapi.json"));
  // Read-only: another method is 405.
  CHECK(anonymous.request("POST", "/v1/openapi.json", "{}").status == 405);
  CHECK(srv.stop() == 0);
}
