// GET /metrics under hostile traffic (issue 20 point 4): paths and methods a client makes
// up never become label values, so they cannot blow up the series a Prometheus scrape
// stores; the exposition stays parseable whatever bytes the requests carried.
#include "tests/e2e/metrics_text.hpp"
#include "tests/hostile/hostile.hpp"

namespace {

using namespace atrium::hostile;

/// The scrape, REQUIREd to answer 200.
atrium::test::exposition scrape(const world& w) {
  auto r = w.call("GET", "/metrics");
  REQUIRE(!r.responses.empty());
  REQUIRE(r.responses[0].status == 200);
  return atrium::test::exposition::parse(r.responses[0].body);
}

}  // namespace

TEST_CASE("metrics: 1,000 distinct unknown paths are one route label value", "[hostile][metrics]") {
  world w({}, false);
  const auto before = scrape(w).find("atrium_http_requests_total").size();
  for (int i = 0; i < 1000; ++i) {
    // Half without a token (401), half with the admin's (404); under /v1 and outside it.
    const auto path = (i % 4 < 2 ? "/v1/made-up-" : "/made-up-") + std::to_string(i) + "/x%22y%5Cz";
    auto r = w.call("GET", path, i % 2 == 0 ? w.admin : "");
    REQUIRE(!r.responses.empty());
    CHECK(r.responses[0].status >= 400);
  }
  // Hostile methods, paths with encoded control bytes and quotes, a huge path.
  for (const char* m : {"BREW", "PROPFIND", "TRACE", "M-SEARCH"}) (void)w.call(m, "/v1/projects", w.admin);
  (void)w.call("GET", "/v1/%0a%0d%00%22\"", w.admin);
  (void)w.call("GET", "/v1/" + std::string(4000, 'a'), w.admin);

  const auto m = scrape(w);
  const auto routes = m.label_values("atrium_http_requests_total", "route");
  for (const auto& r : routes) {
    INFO(r);
    CHECK(r.find("made-up") == std::string::npos);
    CHECK((r == "unmatched" || r == "static" || r.starts_with("/")));
    CHECK(r.size() < 100);
  }
  CHECK(m.body.find("made-up") == std::string::npos);
  CHECK(m.value("atrium_http_requests_total", {{"route", "unmatched"}}) >= 1000);
  // A handful of series more (unmatched by method and status, /v1/projects' refusals), not a thousand.
  const auto after = m.find("atrium_http_requests_total").size();
  CHECK(after <= before + 12);
  for (const auto& method : m.label_values("atrium_http_requests_total", "method")) {
    INFO(method);
    CHECK((method == "GET" || method == "HEAD" || method == "POST" || method == "PUT" || method == "PATCH" ||
           method == "DELETE" || method == "OPTIONS" || method == "other"));
  }
  w.prove_alive("metrics cardinality");
}
