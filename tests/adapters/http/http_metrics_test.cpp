/// The API's request metrics (adapters/http/http_metrics.hpp) and their exposition
/// (adapters/http/exposition.hpp): routes by template, bounded labels, histograms with a
/// `+Inf` bucket, label values escaped.

#include <catch2/catch.hpp>

#include "adapters/http/exposition.hpp"
#include "adapters/http/http_metrics.hpp"

namespace {

using namespace atrium::http_adapter;

}  // namespace

TEST_CASE("http metrics: requests are counted under their route template, method and status", "[http][metrics]") {
  route_table t;
  auto none = [](const call_ptr&, const atrium::principal&, const route_params&) {};
  t.add({"GET", "/v1/projects/{id}", none});
  t.add({"PATCH", "/v1/projects/{id}", none});
  t.add({"POST", "/v1/projects", none});
  http_metrics m;
  m.index(t);
  const auto routes = t.all();
  REQUIRE(routes.size() == 3);
  // Two routes of one pattern share its id.
  CHECK(m.route_id(routes[0]) == m.route_id(routes[1]));
  CHECK(m.route_id(routes[2]) != m.route_id(routes[0]));
  CHECK(m.route_id(nullptr) == http_metrics::k_unmatched);

  const auto get = http_metrics::method_index("GET");
  m.observe(m.route_id(routes[0]), get, 200, 0.002);
  m.observe(m.route_id(routes[0]), get, 404, 0.0005);
  m.observe(m.route_id(routes[2]), http_metrics::method_index("POST"), 201, 3);
  m.observe(http_metrics::k_unmatched, http_metrics::method_index("BREW"), 400, 0.0001);
  m.observe(http_metrics::k_unmatched, get, 404, 0.0001);
  m.observe(99, get, 404, 0.0001);                  // an unknown route id counts as unmatched
  m.observe(m.route_id(routes[2]), get, 1000, 20);  // a status beyond 599 is clamped

  std::vector<atrium::ports::metric_family> families;
  m.collect(families);
  const auto text = prometheus_text(std::move(families));
  INFO(text);
  CHECK(text.find("# TYPE atrium_http_requests_total counter\n") != std::string::npos);
  CHECK(text.find("atrium_http_requests_total{route=\"/v1/projects/{id}\",method=\"GET\",status=\"200\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("atrium_http_requests_total{route=\"/v1/projects/{id}\",method=\"GET\",status=\"404\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("atrium_http_requests_total{route=\"unmatched\",method=\"other\",status=\"400\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("atrium_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("atrium_http_requests_total{route=\"/v1/projects\",method=\"GET\",status=\"599\"} 1\n") !=
        std::string::npos);
  // The latency histogram: cumulative buckets, `+Inf` equal to the count.
  CHECK(
      text.find("atrium_http_request_duration_seconds_bucket{route=\"/v1/projects/{id}\",method=\"GET\",le=\"0.001\"} "
                "1\n") != std::string::npos);
  CHECK(
      text.find("atrium_http_request_duration_seconds_bucket{route=\"/v1/projects/{id}\",method=\"GET\",le=\"0.0025\"}"
                " 2\n") != std::string::npos);
  CHECK(text.find(
            "atrium_http_request_duration_seconds_bucket{route=\"/v1/projects\",method=\"POST\",le=\"+Inf\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("atrium_http_request_duration_seconds_count{route=\"/v1/projects\",method=\"POST\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("atrium_http_request_duration_seconds_sum{route=\"/v1/projects\",method=\"POST\"} 3\n") !=
        std::string::npos);
  // A (route, method) never seen has no series.
  CHECK(text.find("method=\"PATCH\"") == std::string::npos);
}

TEST_CASE("http metrics: a push connection is counted while its callbacks live or until it closes", "[http][metrics]") {
  auto m = std::make_shared<http_metrics>();
  {
    auto cb = http_metrics::counted(push_callbacks{}, m, &http_metrics::websockets);
    CHECK(m->websockets.value() == 1);
    cb.on_close();
    CHECK(m->websockets.value() == 0);
    cb.on_close();  // once only
    CHECK(m->websockets.value() == 0);
  }
  {
    auto cb = http_metrics::counted(push_callbacks{}, m, &http_metrics::sse_streams);
    CHECK(m->sse_streams.value() == 1);
  }  // never closed: released with the callbacks
  CHECK(m->sse_streams.value() == 0);
}

TEST_CASE("exposition: label values are escaped, help is one line, same-name families merge", "[http][metrics]") {
  using atrium::ports::family;
  using atrium::ports::metric_type;
  std::vector<atrium::ports::metric_family> f;
  f.push_back(family("x_total", metric_type::counter, "A \\ help\nsecond line").add(1, {{"v", "a\"b\\c\nd"}}));
  f.push_back(family("x_total", metric_type::counter, "ignored").add(2, {{"v", "e"}}));
  f.push_back(family("g", metric_type::gauge, "A gauge with no sample."));
  const auto text = prometheus_text(std::move(f));
  CHECK(text ==
        "# HELP x_total A \\\\ help\n"
        "# TYPE x_total counter\n"
        "x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"
        "x_total{v=\"e\"} 2\n"
        "# HELP g A gauge with no sample.\n"
        "# TYPE g gauge\n");
}
