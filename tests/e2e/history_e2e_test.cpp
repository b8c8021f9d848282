/// Time travel end to end: `?as_of=<position>` and `?as_of=<RFC 3339 time>` answer an
/// entity exactly as it was then, folded from its events.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {
using namespace atrium::test;
using json = nlohmann::json;
}  // namespace

TEST_CASE("as_of answers entities as they were at a position or a time", "[e2e][history]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();

  auto created = admin.post("/v1/projects", {{"name", "Apollo"}, {"description", "first"}});
  REQUIRE(created.status == 201);
  const auto id = created.json.at("id").get<std::string>();
  const auto stream = "project-" + id;
  const auto at_created = last_position(admin, stream);

  // A moment strictly between the first and the second rename.
  auto renamed = admin.request("PATCH", "/v1/projects/" + id, json{{"name", "Gemini"}}.dump(), {{"If-Match", "2"}});
  REQUIRE(renamed.status == 200);
  const auto at_gemini = last_position(admin, stream);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto between = admin.get("/v1/streams/" + stream).json.at("events").back().at("time").get<std::string>();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(admin.request("PATCH", "/v1/projects/" + id, json{{"name", "Artemis"}}.dump(), {{"If-Match", "3"}}).status ==
          200);

  SECTION("by position") {
    auto then = admin.get("/v1/projects/" + id + "?as_of=" + std::to_string(at_created));
    INFO(then.body);
    REQUIRE(then.status == 200);
    CHECK(then.json.at("name") == "Apollo");
    CHECK(then.json.at("version") == 2);
    CHECK(then.json.at("as_of").at("position") == at_created);
    auto mid = admin.get("/v1/projects/" + id + "?as_of=" + std::to_string(at_gemini));
    CHECK(mid.json.at("name") == "Gemini");
    CHECK(admin.get("/v1/projects/" + id).json.at("name") == "Artemis");  // the live row is untouched
    // Before the project existed.
    CHECK(admin.get("/v1/projects/" + id + "?as_of=1").status == 404);
    // The stream as it was: only the events up to that position.
    auto history = admin.get("/v1/streams/" + stream + "?as_of=" + std::to_string(at_gemini));
    REQUIRE(history.status == 200);
    CHECK(history.json.at("events").size() == 3);  // created, member_added, renamed
    CHECK(history.json.at("events").back().at("position") == at_gemini);
  }

  SECTION("by time") {
    auto then = admin.get("/v1/projects/" + id + "?as_of=" + between);
    INFO(then.body);
    REQUIRE(then.status == 200);
    CHECK(then.json.at("name") == "Gemini");
    CHECK(admin.get("/v1/projects/" + id + "?as_of=2000-01-01T00:00:00Z").status == 404);
    CHECK(admin.get("/v1/projects/" + id + "?as_of=2999-01-01T00:00:00Z").json.at("name") == "Artemis");
  }

  SECTION("bad input and access") {
    CHECK(admin.get("/v1/projects/" + id + "?as_of=yesterday").status == 400);
    REQUIRE(
        admin.post("/v1/users", {{"username", "max"}, {"email", "max@example.org"}, {"password", "m.a.x-pw-123456"}})
            .status == 201);
    auto max = server.client(server.login("max", "m.a.x-pw-123456"));
    // Not a member: the project's past is as private as its present.
    CHECK(max.get("/v1/projects/" + id + "?as_of=" + std::to_string(at_created)).status == 404);
    // A user's past shows a member only the public fields of others.
    const auto admin_id = admin.get("/v1/users").json.at("users").at(0).at("id").get<std::string>();
    auto past = max.get("/v1/users/" + admin_id + "?as_of=" + std::to_string(at_created));
    REQUIRE(past.status == 200);
    CHECK_FALSE(past.json.contains("email"));
    CHECK_FALSE(past.json.contains("password_hash"));
  }
}
