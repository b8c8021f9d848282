// GET /metrics and --log-format json against the real atriumd (issue 20, point 4): the
// metric families appear with values that follow real traffic, the exposition and the
// alert rules pass `promtool check` (Debian `prometheus`; the promtool cases exit 77,
// skipped, with a message when it is not installed), and every JSON log line parses.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/metrics_text.hpp"
#include "tests/support/atriumd.hpp"
#include "tests/support/raw_websocket.hpp"

namespace {

using atrium::test::atriumd_server;
using atrium::test::exposition;
using atrium::test::temp_dir;
using atrium::test::wait_until;

/// The path of `promtool`, or exits 77 (CTest: skipped) saying how to get it.
std::string promtool_or_skip() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    const auto p = std::string(dir) + "/promtool";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  std::cout << "SKIPPED: promtool is not installed (apt-get install prometheus; deploy/install-deps.sh does)"
            << std::endl;
  std::cerr << "SKIPPED: promtool is not installed (apt-get install prometheus; deploy/install-deps.sh does)"
            << std::endl;
  std::_Exit(77);
}

exposition scrape(const atriumd_server& s) {
  auto r = s.client().get("/metrics");
  REQUIRE(r.status == 200);
  return exposition::parse(r.body);
}

}  // namespace

TEST_CASE("metrics: the new families follow real traffic", "[e2e][metrics]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  auto created = admin.post("/v1/projects", {{"name", "Metrics"}});
  REQUIRE(created.status == 201);
  const auto id = created.json.at("id").get<std::string>();
  CHECK(admin.get("/v1/projects/" + id).status == 200);
  CHECK(admin.get("/v1/projects/0193a1c2-0000-7000-8000-000000000000").status == 404);
  CHECK(admin.get("/v1/no-such-thing/at-all").status == 404);

  auto m = scrape(server);
  // Requests by route template, method and status; the raw path never appears.
  CHECK(m.value("atrium_http_requests_total", {{"route", "/v1/projects"}, {"method", "POST"}, {"status", "201"}}) == 1);
  CHECK(m.value("atrium_http_requests_total", {{"route", "/v1/projects/{id}"}, {"method", "GET"}, {"status", "404"}}) ==
        1);
  CHECK(m.value("atrium_http_requests_total", {{"route", "/v1/projects/{id}"}, {"method", "GET"}, {"status", "200"}}) ==
        1);
  CHECK(m.value("atrium_http_requests_total", {{"route", "unmatched"}, {"method", "GET"}, {"status", "404"}}) == 1);
  CHECK(m.value("atrium_http_requests_total", {{"route", "/v1/auth/login"}, {"method", "POST"}, {"status", "200"}}) ==
        1);
  CHECK(m.body.find(id) == std::string::npos);
  CHECK(m.body.find("no-such-thing") == std::string::npos);
  // Latency histograms in seconds, per route and method.
  CHECK(m.value("atrium_http_request_duration_seconds_count", {{"route", "/v1/projects"}, {"method", "POST"}}) == 1);
  CHECK(m.value("atrium_http_request_duration_seconds_bucket",
                {{"route", "/v1/projects"}, {"method", "POST"}, {"le", "+Inf"}}) == 1);
  CHECK(m.value("atrium_http_request_duration_seconds_sum", {{"route", "/v1/projects"}, {"method", "POST"}}) > 0);
  // The group commit: the admin's bootstrap and the project are committed events.
  CHECK(m.value("atrium_commit_groups_total") >= 2);
  CHECK(m.value("atrium_committed_events_total") >= m.value("atrium_commit_groups_total"));
  CHECK(m.value("atrium_commit_group_events_count") == m.value("atrium_commit_groups_total"));
  CHECK(m.value("atrium_commit_group_events_sum") == m.value("atrium_committed_events_total"));
  // Entity actors: the admin and the project are live.
  CHECK(m.value("atrium_entity_actors_live") >= 1);
  CHECK(m.has("atrium_entity_passivations_total"));
  CHECK(m.value("atrium_entity_actors_limit") == 100000);
  // RocksDB and the data dir's disk.
  for (const char* name :
       {"atrium_rocksdb_live_data_bytes", "atrium_rocksdb_pending_compaction_bytes", "atrium_rocksdb_write_stopped",
        "atrium_rocksdb_delayed_write_rate_bytes", "atrium_rocksdb_write_stall_seconds_total"}) {
    INFO(name);
    CHECK(m.has(name));
  }
  CHECK(m.value("atrium_rocksdb_write_stopped") == 0);
  CHECK(m.value("atrium_rocksdb_write_stalls_total", {{"kind", "stop"}}) == 0);
  CHECK(m.value("atrium_data_dir_free_bytes") > 0);
  CHECK(m.value("atrium_data_dir_size_bytes") >= m.value("atrium_data_dir_free_bytes"));
  // The process, under the standard names.
  CHECK(m.value("process_resident_memory_bytes") > 1 << 20);
  CHECK(m.value("process_open_fds") > 3);
  CHECK(m.value("process_max_fds") >= m.value("process_open_fds"));
  CHECK(m.value("process_start_time_seconds") > 1.7e9);
  CHECK(m.value("atrium_uptime_seconds") > 0);
  CHECK(m.value("atrium_healthy") == 1);
  // Jobs and containers by state (the `ops_counts` projection).
  CHECK(m.has_family("atrium_jobs"));
  CHECK(m.has_family("atrium_containers"));
  // Nothing open yet.
  CHECK(m.value("atrium_websocket_connections") == 0);
  CHECK(m.value("atrium_push_subscriptions", {{"transport", "websocket"}}) == 0);
}

TEST_CASE("metrics: a WebSocket and its subscription are counted while open", "[e2e][metrics]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  auto created = admin.post("/v1/projects", {{"name", "Watched"}});
  REQUIRE(created.status == 201);
  const auto project = created.json.at("id").get<std::string>();
  const auto token = server.login("admin", atrium::test::k_admin_password);
  {
    atrium::test::raw_websocket ws(server.address, "/v1/ws", {{"Authorization", "Bearer " + token}});
    REQUIRE(ws.ok());
    REQUIRE(ws.send_json({{"op", "subscribe"}, {"id", "s1"}, {"projects", {project}}, {"after", 0}}));
    REQUIRE(ws.await([](const nlohmann::json& j) {
                return j.value("op", "") == "result" && j.value("ok", false);
              }).has_value());
    auto m = scrape(server);
    CHECK(m.value("atrium_websocket_connections") == 1);
    CHECK(m.value("atrium_push_subscriptions", {{"transport", "websocket"}}) == 1);
    CHECK(m.value("atrium_http_requests_total", {{"route", "/v1/ws"}, {"method", "GET"}, {"status", "101"}}) == 1);
    ws.close();
  }
  CHECK(
      wait_until([&] { return scrape(server).value("atrium_websocket_connections") == 0; }, std::chrono::seconds(10)));
  auto m = scrape(server);
  CHECK(m.value("atrium_push_subscriptions", {{"transport", "websocket"}}) == 0);
}

TEST_CASE("metrics: the exposition passes promtool check metrics", "[e2e][metrics][promtool]") {
  const auto promtool = promtool_or_skip();
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  REQUIRE(admin.post("/v1/projects", {{"name", "Checked"}}).status == 201);
  CHECK(admin.get("/v1/nope").status == 404);
  CHECK(admin.request("PUT", "/v1/projects").status == 405);
  const auto body = server.client().get("/metrics").body;
  const auto file = dir.path() / "metrics.txt";
  std::ofstream(file) << body;
  auto out = atrium::test::run_process({"sh", "-c", promtool + " check metrics < '" + file.string() + "'"});
  INFO(out.out << out.err << "\n" << body);
  CHECK(out.exit_code == 0);
  CHECK(out.err.empty());
}

TEST_CASE("metrics: the alert rules pass promtool check rules", "[e2e][metrics][promtool]") {
  const auto promtool = promtool_or_skip();
  const std::string rules = std::string(ATRIUM_SOURCE_DIR) + "/deploy/prometheus/alerts.yml";
  auto out = atrium::test::run_process({promtool, "check", "rules", rules});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 0);
  CHECK(out.out.find("SUCCESS") != std::string::npos);
  // Every metric a rule names is one atriumd serves (or Prometheus' own `up`).
  temp_dir dir;
  atriumd_server server(dir.path(), {"--kafka", "embedded"});
  const auto m = scrape(server);
  std::ifstream in(rules);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  for (const char* name :
       {"atrium_projection_lag_seconds", "atrium_projection_stalled", "atrium_relay_up", "atrium_relay_lag_seconds",
        "atrium_http_requests_total", "atrium_data_dir_free_bytes", "atrium_data_dir_size_bytes",
        "atrium_rocksdb_write_stall_seconds_total", "atrium_rocksdb_write_stopped", "atrium_healthy"}) {
    INFO(name);
    CHECK(text.find(name) != std::string::npos);
    CHECK(m.has_family(name));
  }
}

TEST_CASE("logs: --log-format json writes one JSON object per line", "[e2e][logs]") {
  temp_dir dir;
  std::string request_id;
  {
    atriumd_server server(dir.path(), {"--log-format", "json"});
    auto admin = server.admin();
    auto r = admin.request("POST", "/v1/projects", nlohmann::json{{"name", "Logged \"line\" \\ here"}}.dump(),
                           {{"X-Request-Id", "req-metrics-1"}});
    REQUIRE(r.status == 201);
    // A hostile path: quotes, a backslash and a control character must not break a line.
    CHECK(admin.get("/v1/%22%5C%01x").status == 400);
    REQUIRE(server.stop() == 0);
  }
  std::ifstream in(dir.path() / "atriumd.log");
  std::size_t lines = 0;
  bool saw_request = false;
  bool saw_listening = false;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.starts_with("admin password") || line.starts_with("atriumd listening")) continue;
    INFO(line);
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(line));
    REQUIRE(j.is_object());
    ++lines;
    CHECK(j.at("time").get<std::string>().size() == std::string("2026-11-21T04:45:59.123Z").size());
    CHECK(j.at("time").get<std::string>().back() == 'Z');
    CHECK(j.at("level").is_string());
    CHECK(j.at("message").is_string());
    CHECK(j.at("fields").is_object());
    if (j.value("request_id", "") == "req-metrics-1") {
      saw_request = true;
      CHECK(j.at("message") == "http");
      CHECK(j.at("fields").at("method") == "POST");
      CHECK(j.at("fields").at("path") == "/v1/projects");
      CHECK(j.at("fields").at("status") == "201");
    }
    if (j.at("message") == "listening") saw_listening = true;
  }
  CHECK(lines > 5);
  CHECK(saw_request);
  CHECK(saw_listening);
}
