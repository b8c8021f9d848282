/// The declarative route table (adapters/http/router.hpp): parameters, a known path with
/// another method (405 and its `Allow`), an unknown path, open and push routes.

#include <catch2/catch.hpp>

#include "adapters/http/router.hpp"

namespace {

using namespace atrium::http_adapter;

route_table table() {
  route_table t;
  auto none = [](const call_ptr&, const atrium::principal&, const route_params&) {};
  t.add({"GET", "/v1/projects/{id}", none});
  t.add({"PATCH", "/v1/projects/{id}", none});
  t.add({"DELETE", "/v1/projects/{id}", none});
  t.add({"GET", "/v1/projects/{id}/cells/{cell_id}", none});
  t.add({"GET", "/healthz", none, route_access::open});
  t.add({"GET", "/v1/ws", none, route_access::push});
  return t;
}

}  // namespace

TEST_CASE("router: a route's {…} segments are its parameters, in order", "[http][router]") {
  const auto t = table();
  const auto m = t.find("GET", {"v1", "projects", "p-1", "cells", "c-9"});
  REQUIRE(m.found != nullptr);
  CHECK(m.found->pattern == "/v1/projects/{id}/cells/{cell_id}");
  CHECK(m.params == route_params{"p-1", "c-9"});
}

TEST_CASE("router: a known path with another method lists the allowed ones", "[http][router]") {
  const auto t = table();
  const auto m = t.find("POST", {"v1", "projects", "p-1"});
  CHECK(m.found == nullptr);
  CHECK(m.at_path.size() == 3);
  CHECK(m.allow() == "GET, PATCH, DELETE, HEAD, OPTIONS");
  CHECK_FALSE(m.open());
}

TEST_CASE("router: an unknown path matches nothing", "[http][router]") {
  const auto t = table();
  for (const auto& path : std::vector<std::vector<std::string>>{
           {"v1", "projects"}, {"v1", "projects", "p-1", "cells"}, {"v1", "nothing"}, {}}) {
    const auto m = t.find("GET", path);
    CHECK(m.found == nullptr);
    CHECK(m.at_path.empty());
  }
}

TEST_CASE("router: open and push routes are told apart", "[http][router]") {
  const auto t = table();
  CHECK(t.find("GET", {"healthz"}).open());
  CHECK(t.find("POST", {"healthz"}).open());  // 405 without authentication
  CHECK(t.find("GET", {"v1", "ws"}).push());
  CHECK_FALSE(t.find("GET", {"v1", "projects", "x"}).push());
}

TEST_CASE("router: HEAD finds the GET route, Allow adds HEAD and OPTIONS", "[http][router]") {
  auto t = table();
  const auto m = t.find("HEAD", {"v1", "projects", "p-1"});
  REQUIRE(m.found != nullptr);
  CHECK(m.found->method == "GET");
  CHECK(m.allowed() == std::vector<std::string>{"GET", "PATCH", "DELETE", "HEAD", "OPTIONS"});
  auto none = [](const call_ptr&, const atrium::principal&, const route_params&) {};
  t.add({"POST", "/v1/auth/login", none, route_access::open});
  const auto login = t.find("HEAD", {"v1", "auth", "login"});
  CHECK(login.found == nullptr);
  CHECK(login.allow() == "POST, OPTIONS");
}

TEST_CASE("router: a route names the query parameters it takes, others are unknown", "[http][router]") {
  route_table t;
  auto none = [](const call_ptr&, const atrium::principal&, const route_params&) {};
  t.add({"GET", "/v1/projects", none}).query = {"limit", "after"};
  t.add({"GET", "/v1/ws", none, route_access::push});
  call c;
  c.query = {{"limit", "5"}, {"bogus", "1"}, {"token", "t"}};
  CHECK(unknown_query(c, *t.find("GET", {"v1", "projects"}).found) == std::vector<std::string>{"bogus", "token"});
  CHECK(unknown_query(c, *t.find("GET", {"v1", "ws"}).found) == std::vector<std::string>{"bogus", "limit"});
  const auto j = routes_json(t);
  REQUIRE(j.size() == 2);
  CHECK(
      j[0] ==
      json{{"method", "GET"}, {"pattern", "/v1/projects"}, {"access", "authenticated"}, {"query", {"limit", "after"}}});
  CHECK(j[1]["access"] == "push");
  CHECK(j[1]["query"] == json{"token"});
}
