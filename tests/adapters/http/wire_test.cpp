// adapters/http/wire.hpp: the checks at the edge of the HTTP and WebSocket adapter.
#include <catch2/catch.hpp>

#include "adapters/http/wire.hpp"

using namespace atrium;
using namespace atrium::http_adapter;

namespace {
std::string nested(std::size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}
}  // namespace

TEST_CASE("json_depth counts nesting outside strings", "[wire]") {
  CHECK(json_depth("1", 64) == 0);
  CHECK(json_depth("{\"a\":[1,{\"b\":[]}]}", 64) == 4);
  CHECK(json_depth("\"[[[[\"", 64) == 0);
  CHECK(json_depth("[\"\\\"[[[\"]", 64) == 1);  // an escaped quote does not end the string
  CHECK(json_depth(nested(100000), 64) == 65);  // stops at the limit
}

TEST_CASE("parse_json bounds depth and refuses NUL", "[wire]") {
  CHECK(parse_json(nested(64)));
  const auto deep = parse_json(nested(65));
  REQUIRE_FALSE(deep);
  CHECK(deep.error().code == errc::invalid_argument);
  CHECK(deep.error().details.at("limit") == 64);
  CHECK_FALSE(parse_json(nested(100000, '{', '}')));
  CHECK_FALSE(parse_json(nested(100000)));
  CHECK_FALSE(parse_json("{\"a\":"));
  CHECK_FALSE(parse_json("\"\xFF\""));     // invalid UTF-8
  CHECK_FALSE(parse_json("\"\\ud800\""));  // lone surrogate
  CHECK_FALSE(parse_json("{\"a\":\"x\\u0000\"}"));
  CHECK_FALSE(parse_json("{\"a\\u0000\":1}"));
  CHECK_FALSE(parse_json("[[\"\\u0000\"]]"));
  auto ok = parse_json("{\"name\":\"caf\xC3\xA9\",\"n\":[1,2]}");
  REQUIRE(ok);
  CHECK(ok->at("name") == "caf\xC3\xA9");
}

TEST_CASE("parse_target decodes and checks every segment and query value", "[wire]") {
  auto t = parse_target("/v1/projects/abc/?limit=5&q=a%20b");
  REQUIRE(t);
  CHECK(t->path == std::vector<std::string>{"v1", "projects", "abc"});
  REQUIRE(t->query.size() == 2);
  CHECK(t->query[1].second == "a b");
  CHECK_FALSE(parse_target("/v1/jobs?project=%FF"));
  CHECK_FALSE(parse_target("/v1/projects/%FF%FE"));
  CHECK_FALSE(parse_target("/v1/projects/a%00b"));
  CHECK_FALSE(parse_target("/v1/projects/a%0Ab"));
  CHECK_FALSE(parse_target("/v1/projects?x=%E2%80%AE"));
  CHECK_FALSE(parse_target("/v1/" + std::string(2000, 'a')));
  CHECK_FALSE(parse_target("not a target"));
  const auto e = parse_target("/v1/jobs?project=%FF");
  CHECK(e.error().details.at("parameter") == "project");
  auto decoded = parse_target("/v1/events/%73tream");
  REQUIRE(decoded);
  CHECK(decoded->path.back() == "stream");  // routes see the decoded form
}

TEST_CASE("check_request refuses bad methods and header values", "[wire]") {
  http_request r;
  r.method = "GET";
  r.headers["user-agent"] = "curl/8.0\tx";
  CHECK(check_request(r));
  r.headers["user-agent"] = std::string("a\0b", 3);
  CHECK_FALSE(check_request(r));
  r.headers["user-agent"] = "\xFF";
  CHECK_FALSE(check_request(r));
  r.headers["user-agent"] = "a\r\nX-Injected: 1";
  CHECK_FALSE(check_request(r));
  r.headers["user-agent"] = "ok";
  r.headers["Bad Name"] = "x";
  CHECK_FALSE(check_request(r));
  r.headers.erase("Bad Name");
  r.method = "GET\n";
  CHECK_FALSE(check_request(r));
}
