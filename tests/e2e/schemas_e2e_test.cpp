/// `GET /v1/schemas/events` against the real atriumd (issue 21, point 2): the server
/// answers exactly the repository's docs/schemas/events (embedded at build time):
/// envelope.schema.json as `envelope`, and every entry of catalog.json with its file
/// inlined under `events`; `?type=` narrows to one type (400 naming an unknown one);
/// every session may read it, and tokens that read events, but not other tokens.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

#ifndef ATRIUM_SOURCE_DIR
#error "ATRIUM_SOURCE_DIR must name the source tree (see tests/CMakeLists.txt)"
#endif

namespace {

using namespace atrium::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

const fs::path schema_dir = fs::path(ATRIUM_SOURCE_DIR) / "docs" / "schemas" / "events";

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return json::parse(in);
}

/// What the server must answer, built from the files as a client would: catalog.json's
/// `$ref`s replaced by the files they name.
json expected_document() {
  json events = json::object();
  const auto catalog = read_json(schema_dir / "catalog.json");
  for (const auto& [type, versions] : catalog.items()) {
    for (const auto& [n, entry] : versions.items()) {
      events[type][n] = read_json(schema_dir / entry.at("$ref").get<std::string>());
    }
  }
  return json{{"envelope", read_json(schema_dir / "envelope.schema.json")}, {"events", events}};
}

std::string encode_query(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-') {
      out.push_back(static_cast<char>(ch));
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

}  // namespace

TEST_CASE("GET /v1/schemas/events answers exactly the files of docs/schemas/events", "[e2e][schemas]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto expected = expected_document();
  REQUIRE(expected.at("events").size() >= 60);

  auto all = admin.get("/v1/schemas/events");
  INFO(all.body.substr(0, 400));
  REQUIRE(all.status == 200);
  CHECK(all.json == expected);
  // Every schema is inlined: no $ref to another file is left in the answer.
  for (const auto& [type, versions] : all.json.at("events").items()) {
    for (const auto& [n, schema] : versions.items()) {
      INFO(type << " " << n);
      CHECK(schema.at("$id") == "https://atrium.dev/schemas/events/" + type + ".v" + n + ".schema.json");
    }
  }

  SECTION("?type= narrows to one type, with every schema version of it") {
    auto one = admin.get("/v1/schemas/events?type=job.submitted");
    REQUIRE(one.status == 200);
    CHECK(one.json.at("envelope") == expected.at("envelope"));
    CHECK(one.json.at("events") == json{{"job.submitted", expected.at("events").at("job.submitted")}});
    CHECK(one.json.at("events").at("job.submitted").size() == 2);
  }

  SECTION("an unknown or empty type is 400, naming it") {
    for (const std::string bad : {"job.nope", "", "job.submitted.v2", "JOB.SUBMITTED", "x\xff\xfey"}) {
      INFO("type: " << bad);
      auto r = admin.get("/v1/schemas/events?type=" + encode_query(bad));
      REQUIRE(r.status == 400);
      CHECK(r.json.at("error").at("code") == "invalid_argument");
      CHECK(r.json.at("error").at("details").at("parameter") == "type");
      if (bad.find('\xff') == std::string::npos) {
        CHECK(r.json.at("error").at("details").at("type") == bad);
      }
    }
  }

  SECTION("any signed-in user and tokens that read events may read it; others may not") {
    CHECK(server.client().get("/v1/schemas/events").status == 401);
    CHECK(server.client("not-a-token").get("/v1/schemas/events").status == 401);
    REQUIRE(admin
                .post("/v1/users", {{"username", "alice"},
                                    {"email", "alice@example.org"},
                                    {"password", "a long and unguessable passphrase 7"},
                                    {"role", "member"}})
                .status == 201);
    auto alice = server.client(server.login("alice", "a long and unguessable passphrase 7"));
    auto as_member = alice.get("/v1/schemas/events");
    REQUIRE(as_member.status == 200);
    CHECK(as_member.json == expected);

    const auto token_with = [&](const char* scope) {
      auto r = admin.post("/v1/tokens", {{"name", std::string("schemas ") + scope}, {"scopes", {scope}}});
      INFO(r.body);
      REQUIRE(r.status == 201);
      return server.client(r.json.at("token").get<std::string>());
    };
    CHECK(token_with("events:read").get("/v1/schemas/events").status == 200);
    auto worker = token_with("jobs:work").get("/v1/schemas/events");
    CHECK(worker.status == 403);
    CHECK(worker.json.at("error").at("details").value("missing_scope", "") == "events:read");
  }
}
