// (push) Real-time delivery (issue 6, point 7): commit-to-delivery latency over
// `GET /v1/ws` and the server's memory per idle WebSocket connection.
//
//   driver ──PATCH /v1/projects/{id}──▶ atriumd ──commit──▶ hub ──{"op":"event"}──▶ N ws clients
//   (keep-alive, fixed rate)                                       (one io_context, one thread)
//
// Each measured point starts a fresh atriumd (127.0.0.1:0, temp data dir), so its
// resident memory before the connections is a clean baseline. The bench logs in as
// admin, creates the projects, reads atriumd's VmRSS, opens N WebSocket connections
// (Authorization header; at most 256 handshakes in flight), each subscribing to one
// project `after` the log head, waits for every subscription's result, lets them sit
// idle for 2 s and reads VmRSS again: (after - before) / N is the memory per idle
// subscribed connection. Then a driver renames the projects round-robin at a fixed
// rate (one keep-alive HTTP connection, If-Match = the last ETag) and every client
// records each event's arrival. A delivery's latency runs from the envelope's commit
// `time` (the store's clock; same machine, same system clock) to its arrival at the
// client; the latency from the PATCH's send is reported too. Every subscriber must
// get exactly the positions committed to its project, in order: anything missing,
// extra or out of order is an error (printed, and the bench exits non-zero).
//
// Scenarios: `push_baseline` (1 subscriber: what delivery costs without fan-out, the
// baseline of the run), `push_one_project` (N on one project), `push_many_projects`
// (N spread over --push-projects projects, N/P each).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "tests/bench/bench.hpp"
#include "tests/bench/bench_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using wall = std::chrono::system_clock;

constexpr std::size_t k_handshakes_in_flight = 256;
// atriumd takes at most 16 WebSockets per user (docs/realtime.md "Limits"): every 16
// clients share one admin service account's `admin`-scoped API token.
constexpr std::size_t k_connections_per_token = 16;
constexpr std::size_t k_connections_per_source = 25'000;
constexpr double k_goal_p99_ms = 50;
constexpr double k_goal_kib_per_connection = 20;

/// The "Max open files" soft limit of a process, from /proc/PID/limits; 0 if unreadable.
std::uint64_t proc_max_open_files(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("Max open files")) {
      std::istringstream in(line.substr(14));
      std::uint64_t soft = 0;
      in >> soft;
      return soft;
    }
  }
  return 0;
}

/// `2026-11-21T04:45:59.123456Z` (as `now_rfc3339` writes it) → system-clock time.
std::optional<wall::time_point> parse_time(std::string_view t) {
  if (t.size() < 20 || t[4] != '-' || t[10] != 'T') return std::nullopt;
  auto num = [&](std::size_t at, std::size_t n) {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) v = v * 10 + (t[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  std::int64_t micros = 0;
  if (t.size() >= 27 && t[19] == '.') micros = num(20, 6);
  return wall::from_time_t(timegm(&tm)) + std::chrono::microseconds(micros);
}

/// One event as a client saw it arrive.
struct delivery {
  std::uint64_t position = 0;
  wall::time_point at_wall{};
  steady::time_point at{};
};

struct ws_client;

/// What every client of one point shares; touched only on the io thread, except the
/// atomics the main thread polls.
struct push_context {
  asio::io_context& io;
  tcp::endpoint server;
  std::vector<std::string> tokens;  // client i uses tokens[i / k_connections_per_token]
  std::vector<std::string> projects;
  std::vector<std::shared_ptr<ws_client>> clients;
  std::size_t next = 0, in_flight = 0;
  std::atomic<std::size_t> subscribed{0}, failed{0};
  std::atomic<std::uint64_t> delivered{0};
  std::map<std::uint64_t, std::string> commit_times;  // position → envelope `time`, first seen
  std::string first_error;

  void launch();
};

/// One WebSocket connection with one subscription to one project.
struct ws_client : std::enable_shared_from_this<ws_client> {
  ws_client(push_context& ctx, std::size_t index, std::string project)
      : project_(std::move(project)), ctx_(ctx), ws_(ctx.io), index_(index) {}

  std::vector<delivery> got;
  std::string project_;
  bool subscribed = false;
  bool failed = false;

  void start() {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(60));
    // One source address holds ~28,000 connections to one server port (the ephemeral
    // port range): client i connects from 127.0.0.(1 + i / 25000).
    if (const auto source = index_ / k_connections_per_source; source > 0) {
      beast::error_code ec;
      auto& sock = beast::get_lowest_layer(ws_).socket();
      sock.open(tcp::v4(), ec);
      if (!ec) {
        const auto address =
            asio::ip::address_v4(asio::ip::address_v4::loopback().to_uint() + static_cast<std::uint32_t>(source));
        sock.bind(tcp::endpoint(address, 0), ec);
      }
      if (ec) return fail("bind", ec.message());
    }
    beast::get_lowest_layer(ws_).async_connect(ctx_.server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("connect", ec.message());
      self->handshake();
    });
  }

  void close() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  void handshake() {
    const auto& token = ctx_.tokens[index_ / k_connections_per_token];
    ws_.set_option(websocket::stream_base::decorator(
        [token](websocket::request_type& req) { req.set(http::field::authorization, "Bearer " + token); }));
    ws_.async_handshake("127.0.0.1", "/v1/ws", [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("handshake", ec.message());
      beast::get_lowest_layer(self->ws_).expires_never();
      self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      self->out_ =
          nlohmann::json{{"op", "subscribe"}, {"id", 1}, {"projects", nlohmann::json::array({self->project_})}}.dump();
      self->ws_.text(true);
      self->ws_.async_write(asio::buffer(self->out_), [self](beast::error_code ec2, std::size_t) {
        if (ec2) return self->fail("subscribe", ec2.message());
      });
      self->read();
    });
  }

  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail("read", ec.message());
      self->on_message();
      self->buf_.consume(self->buf_.size());
      self->read();
    });
  }

  void on_message() {
    const auto data = buf_.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    if (text.starts_with(R"({"op":"event")")) {
      // Only the position and the commit time are needed: found without a full parse
      // (the envelope's keys are sorted, `data` and `metadata` come first and hold no
      // `"position":`), so 200,000 events/s cost the client little.
      const auto at_wall = wall::now();
      const auto at = steady::now();
      const auto ev = text.find(R"("event":)");
      const auto p = text.find(R"("position":)", ev);
      if (ev == std::string_view::npos || p == std::string_view::npos) return fail("event", std::string(text));
      std::uint64_t position = 0;
      for (auto i = p + 11; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        position = position * 10 + static_cast<std::uint64_t>(text[i] - '0');
      }
      got.push_back({position, at_wall, at});
      if (!ctx_.commit_times.contains(position)) {
        const auto t = text.find(R"("time":")", p);
        if (t != std::string_view::npos) ctx_.commit_times[position] = std::string(text.substr(t + 8, 27));
      }
      ctx_.delivered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    nlohmann::json m;
    try {
      m = nlohmann::json::parse(text);
    } catch (const std::exception&) {
      return fail("message", std::string(text));
    }
    if (m.value("op", "") == "result" && m.value("id", 0) == 1 && m.value("ok", false) && !subscribed) {
      subscribed = true;
      ctx_.subscribed.fetch_add(1);
      --ctx_.in_flight;
      ctx_.launch();
      return;
    }
    fail("unexpected message", std::string(text.substr(0, 300)));
  }

  void fail(const char* what, const std::string& detail) {
    if (failed) return;
    failed = true;
    if (ctx_.first_error.empty()) {
      ctx_.first_error = "client " + std::to_string(index_) + ": " + what + ": " + detail;
    }
    ctx_.failed.fetch_add(1);
    if (!subscribed) {
      --ctx_.in_flight;
      ctx_.launch();
    }
    close();
  }

  push_context& ctx_;
  websocket::stream<beast::tcp_stream> ws_;
  std::size_t index_;
  beast::flat_buffer buf_;
  std::string out_;
};

void push_context::launch() {
  while (in_flight < k_handshakes_in_flight && next < clients.size()) {
    ++in_flight;
    clients[next++]->start();
  }
}

/// The real atriumd on 127.0.0.1:0 over a fresh temp data dir, logged in as admin.
struct server {
  test::temp_dir dir;
  std::unique_ptr<test::child_process> proc;
  std::string address;
  tcp::endpoint endpoint;
  std::string token;

  explicit server(const options& o) {
    auto started = start_atriumd(o, dir.path(), "push");
    proc = std::move(started.proc);
    address = started.address;
    endpoint = started.endpoint;
    token = started.token;
  }

  void stop() {
    const int status = proc->stop(SIGTERM);
    if (status != 0) progress("push: atriumd did not exit cleanly (status " + std::to_string(status) + ")");
  }
};

/// A committed rename: which project, when its PATCH was sent, its round trip.
struct commit {
  std::size_t project = 0;
  steady::time_point sent{};
  std::int64_t rtt_ns = 0;
};

double ms(std::int64_t ns) { return std::round(static_cast<double>(ns) / 1e3) / 1e3; }

double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return ms(sorted[rank - 1]);
}

double round3(double v) { return std::round(v * 1000) / 1000; }

/// Raises this process's open-file limit to the hard limit (atriumd, spawned by us,
/// inherits it), and the hard limit to `wanted` where allowed (root). Returns the soft
/// limit now in force.
std::uint64_t raise_open_files(std::uint64_t wanted) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_max < wanted) {
    rlimit more{wanted, wanted};
    if (::setrlimit(RLIMIT_NOFILE, &more) == 0) ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) progress("push: setrlimit(RLIMIT_NOFILE) failed");
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

/// One measured point. Returns the p99 (ms) from commit, for the baseline ratio.
double run_point(const options& o, const std::string& scenario, std::size_t subscribers, std::size_t project_count,
                 std::optional<double> baseline_p99_ms, int& failures, bool drive = true) {
  progress("push: " + scenario + ": " + std::to_string(subscribers) + " subscribers over " +
           std::to_string(project_count) + " project(s); starting atriumd");
  server srv(o);
  progress("push: atriumd pid " + std::to_string(srv.proc->pid()) + ", max open files " +
           std::to_string(proc_max_open_files(srv.proc->pid())));

  test::http_client setup(srv.address);
  setup.token(srv.token);
  std::vector<std::string> project_ids;
  std::vector<std::uint64_t> versions;
  for (std::size_t i = 0; i < project_count; ++i) {
    auto r = setup.post("/v1/projects", {{"name", "push bench " + std::to_string(i)}, {"description", ""}});
    if (r.status != 201) throw std::runtime_error("create project: status " + std::to_string(r.status) + " " + r.body);
    project_ids.push_back(r.json.at("id").get<std::string>());
    versions.push_back(r.json.at("version").get<std::uint64_t>());
  }

  // One service account (role admin, so it reads every project) and token per 16 clients.
  std::vector<std::string> tokens;
  for (std::size_t i = 0; i * k_connections_per_token < subscribers; ++i) {
    auto account = setup.post("/v1/service-accounts", {{"name", "push-bench-" + std::to_string(i)}, {"role", "admin"}});
    if (account.status != 201) {
      throw std::runtime_error("service account: status " + std::to_string(account.status) + " " + account.body);
    }
    auto token = setup.post("/v1/service-accounts/" + account.json.at("id").get<std::string>() + "/tokens",
                            {{"name", "push bench"}, {"scopes", nlohmann::json::array({"admin"})}});
    if (token.status != 201) {
      throw std::runtime_error("token: status " + std::to_string(token.status) + " " + token.body);
    }
    tokens.push_back(token.json.at("token").get<std::string>());
  }

  // Memory before any WebSocket: the server after startup, login and setup.
  const auto rss_before = proc_status_kib(srv.proc->pid(), "VmRSS");

  asio::io_context io;
  push_context ctx{io, srv.endpoint, std::move(tokens), project_ids};
  std::vector<std::size_t> per_project(project_count, 0);
  for (std::size_t i = 0; i < subscribers; ++i) {
    ctx.clients.push_back(std::make_shared<ws_client>(ctx, i, project_ids[i % project_count]));
    ++per_project[i % project_count];
  }
  auto work = asio::make_work_guard(io);
  const auto connect_start = steady::now();
  asio::post(io, [&ctx] { ctx.launch(); });
  std::thread io_thread([&io] { io.run(); });
  auto finish_io = [&] {
    work.reset();
    io.stop();
    if (io_thread.joinable()) io_thread.join();
  };

  const bool all_subscribed = test::wait_until([&] { return ctx.subscribed.load() + ctx.failed.load() >= subscribers; },
                                               std::chrono::seconds(600));
  const double connect_seconds = std::chrono::duration<double>(steady::now() - connect_start).count();
  if (!all_subscribed || ctx.failed.load() > 0) {
    finish_io();
    throw std::runtime_error("only " + std::to_string(ctx.subscribed.load()) + " of " + std::to_string(subscribers) +
                             " subscribed (" + std::to_string(ctx.failed.load()) +
                             " failed; first: " + ctx.first_error + ")");
  }
  progress("push: " + std::to_string(subscribers) + " subscribed in " + std::to_string(connect_seconds) +
           " s; idle 2 s");
  // Idle and settled: the per-connection memory is read once the server has nothing
  // left to do for the new connections.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto rss_idle = proc_status_kib(srv.proc->pid(), "VmRSS");
  progress("push: atriumd VmRSS " + std::to_string(rss_idle / 1024) + " MiB with " + std::to_string(subscribers) +
           " idle subscribers (" + std::to_string(rss_before / 1024) + " MiB before)");
  const double kib_per_connection =
      static_cast<double>(static_cast<std::int64_t>(rss_idle) - static_cast<std::int64_t>(rss_before)) /
      static_cast<double>(subscribers);

  // The driver: renames round-robin at a fixed rate over one keep-alive connection.
  const double rate = o.push_rate;
  const auto count = drive ? static_cast<std::size_t>(std::max(1.0, std::round(rate * o.seconds))) : 0;
  progress("push: driving " + std::to_string(count) + " renames at " + std::to_string(rate) + "/s");
  std::map<std::uint64_t, commit> commits;  // position → commit
  std::uint64_t driver_errors = 0;
  const double cpu_bench_0 = proc_cpu_seconds(::getpid());
  const double cpu_server_0 = proc_cpu_seconds(srv.proc->pid());
  const auto drive_start = steady::now();
  {
    asio::io_context driver_io;
    beast::tcp_stream stream(driver_io);
    stream.connect(srv.endpoint);
    beast::flat_buffer buf;
    for (std::size_t k = 0; k < count; ++k) {
      std::this_thread::sleep_until(drive_start + std::chrono::duration_cast<steady::duration>(
                                                      std::chrono::duration<double>(static_cast<double>(k) / rate)));
      const std::size_t pi = k % project_count;
      http::request<http::string_body> req{http::verb::patch, "/v1/projects/" + project_ids[pi], 11};
      req.set(http::field::host, "127.0.0.1");
      req.set(http::field::authorization, "Bearer " + srv.token);
      req.set(http::field::content_type, "application/json");
      req.set(http::field::if_match, std::to_string(versions[pi]));
      req.keep_alive(true);
      req.body() = nlohmann::json{{"name", renamed_name(k)}}.dump();
      req.prepare_payload();
      const auto sent = steady::now();
      http::write(stream, req);
      http::response<http::string_body> res;
      http::read(stream, buf, res);
      const auto rtt = steady::now() - sent;
      const auto v = parse_etag(std::string_view(res[http::field::etag]));
      const auto position = parse_etag(std::string_view(res["X-Atrium-Position"]));
      if (res.result_int() != 200 || !v || !position) {
        ++driver_errors;
        progress("push: PATCH status " + std::to_string(res.result_int()) + " " + res.body().substr(0, 300));
        continue;
      }
      versions[pi] = *v;
      commits[*position] = commit{pi, sent, std::chrono::duration_cast<std::chrono::nanoseconds>(rtt).count()};
    }
  }
  const auto drive_end = steady::now();

  std::uint64_t expected = 0;
  for (const auto& [pos, c] : commits) expected += per_project[c.project];
  const bool arrived = test::wait_until([&] { return ctx.delivered.load() >= expected; }, std::chrono::seconds(60));
  const auto last_arrival = steady::now();
  const double cpu_bench = proc_cpu_seconds(::getpid()) - cpu_bench_0;
  const double cpu_server = proc_cpu_seconds(srv.proc->pid()) - cpu_server_0;
  const auto rss_busy = proc_status_kib(srv.proc->pid(), "VmRSS");
  finish_io();

  // Every subscriber: exactly its project's committed positions, in order.
  std::map<std::size_t, std::vector<std::uint64_t>> wanted;  // project → positions
  for (const auto& [pos, c] : commits) wanted[c.project].push_back(pos);
  std::uint64_t bad_subscribers = 0, missing = 0, surplus = 0;
  std::string first_bad;
  std::map<std::uint64_t, wall::time_point> committed_at;  // position → the envelope's commit time
  for (const auto& [pos, text] : ctx.commit_times) {
    if (auto at = parse_time(text)) committed_at[pos] = *at;
  }
  std::vector<std::int64_t> from_commit, from_send;
  from_commit.reserve(expected);
  from_send.reserve(expected);
  steady::time_point last_seen = drive_start;
  for (std::size_t i = 0; i < subscribers; ++i) {
    const auto& cl = *ctx.clients[i];
    const auto& want = wanted[i % project_count];
    std::vector<std::uint64_t> seen;
    for (const auto& d : cl.got) {
      seen.push_back(d.position);
      last_seen = std::max(last_seen, d.at);
      auto c = commits.find(d.position);
      if (c == commits.end()) continue;
      from_send.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d.at - c->second.sent).count());
      if (auto t = committed_at.find(d.position); t != committed_at.end()) {
        from_commit.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d.at_wall - t->second).count());
      }
    }
    if (seen != want) {
      ++bad_subscribers;
      if (seen.size() < want.size()) missing += want.size() - seen.size();
      if (seen.size() > want.size()) surplus += seen.size() - want.size();
      if (first_bad.empty()) {
        first_bad = "subscriber " + std::to_string(i) + " got " + std::to_string(seen.size()) + " events, expected " +
                    std::to_string(want.size());
      }
    }
  }
  (void)last_arrival;
  std::sort(from_commit.begin(), from_commit.end());
  std::sort(from_send.begin(), from_send.end());
  std::vector<std::int64_t> rtts;
  for (const auto& [pos, c] : commits) rtts.push_back(c.rtt_ns);
  std::sort(rtts.begin(), rtts.end());

  const double span = std::chrono::duration<double>(std::max(last_seen, drive_end) - drive_start).count();
  const double p99 = percentile_ms(from_commit, 0.99);
  nlohmann::ordered_json j;
  j["scenario"] = scenario;
  j["path"] = "push";
  j["subscribers"] = subscribers;
  j["projects"] = project_count;
  j["events"] = commits.size();
  j["rate_per_s"] = rate;
  j["seconds"] = round3(span);
  j["deliveries"] = from_commit.size();
  j["deliveries_per_s"] = span > 0 ? std::round(static_cast<double>(from_commit.size()) / span) : 0;
  j["p50_ms"] = percentile_ms(from_commit, 0.50);
  j["p99_ms"] = p99;
  j["p999_ms"] = percentile_ms(from_commit, 0.999);
  j["max_ms"] = from_commit.empty() ? 0 : ms(from_commit.back());
  j["from_send_p50_ms"] = percentile_ms(from_send, 0.50);
  j["from_send_p99_ms"] = percentile_ms(from_send, 0.99);
  j["http_p50_ms"] = percentile_ms(rtts, 0.50);
  j["http_p99_ms"] = percentile_ms(rtts, 0.99);
  if (baseline_p99_ms && *baseline_p99_ms > 0) {
    j["p99_to_baseline"] = round3(p99 / *baseline_p99_ms);
  } else {
    j["p99_to_baseline"] = nullptr;
  }
  j["goal_ms"] = k_goal_p99_ms;
  j["met"] = drive ? nlohmann::ordered_json(p99 < k_goal_p99_ms && bad_subscribers == 0 && arrived) : nullptr;
  j["connect_s"] = round3(connect_seconds);
  j["rss_before_kib"] = rss_before;
  j["rss_idle_kib"] = rss_idle;
  j["rss_busy_kib"] = rss_busy;
  // One connection moves VmRSS by a page or two at most: no per-connection figure.
  const bool per_connection = subscribers >= 100;
  j["kib_per_idle_connection"] = per_connection ? nlohmann::ordered_json(round3(kib_per_connection)) : nullptr;
  j["memory_goal_kib"] = k_goal_kib_per_connection;
  j["memory_met"] = per_connection ? nlohmann::ordered_json(kib_per_connection < k_goal_kib_per_connection) : nullptr;
  j["cpu_atriumd_s"] = round3(cpu_server);
  j["cpu_bench_s"] = round3(cpu_bench);
  j["missing"] = missing;
  j["surplus"] = surplus;
  j["bad_subscribers"] = bad_subscribers;
  j["errors"] = driver_errors + ctx.failed.load();
  std::cout << j.dump() << std::endl;

  if (!arrived || bad_subscribers > 0 || driver_errors > 0 || ctx.failed.load() > 0) {
    ++failures;
    progress("push: ERROR in " + scenario + " at " + std::to_string(subscribers) + ": " +
             std::to_string(bad_subscribers) + " subscribers without exactly their events (" + std::to_string(missing) +
             " missing, " + std::to_string(surplus) + " surplus; " + first_bad + "), " + std::to_string(driver_errors) +
             " driver errors, " + std::to_string(ctx.failed.load()) + " connections failed" +
             (ctx.first_error.empty() ? "" : " (" + ctx.first_error + ")"));
  }
  progress("push: " + scenario + " " + std::to_string(subscribers) + ": p50 " +
           std::to_string(j["p50_ms"].get<double>()) + " ms, p99 " + std::to_string(p99) +
           " ms (goal < 50: " + (p99 < k_goal_p99_ms ? "MET" : "MISSED") + "), " + std::to_string(kib_per_connection) +
           " KiB per idle connection (goal < 20: " +
           (kib_per_connection < k_goal_kib_per_connection ? "MET" : "MISSED") + ")");

  // Client sockets close first (the server sees them go), then the server stops.
  for (auto& c : ctx.clients) c->close();
  ctx.clients.clear();
  srv.stop();
  return p99;
}

}  // namespace

int run_push(const options& o) {
  std::size_t most = std::max<std::size_t>(1, o.push_idle);
  for (auto n : o.subscribers) most = std::max(most, n);
  const auto limit = raise_open_files(most + 4096);
  progress("push: open-file limit " + std::to_string(limit) + " (atriumd inherits it); largest point needs " +
           std::to_string(most) + " sockets on each side");
  if (limit < most + 256) {
    throw std::runtime_error("open-file limit " + std::to_string(limit) + " is too low for " + std::to_string(most) +
                             " connections (raise the hard limit: ulimit -Hn)");
  }
  int failures = 0;
  const double baseline = run_point(o, "push_baseline", 1, 1, std::nullopt, failures);
  for (const auto n : o.subscribers) run_point(o, "push_one_project", n, 1, baseline, failures);
  for (const auto n : o.subscribers) {
    run_point(o, "push_many_projects", n, std::min(n, o.push_projects), baseline, failures);
  }
  if (o.push_idle > 0) {
    run_point(o, "push_idle", o.push_idle, std::min(o.push_idle, o.push_projects), std::nullopt, failures, false);
  }
  return failures;
}

}  // namespace atrium::bench
