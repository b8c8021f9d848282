// (c) Through HTTP with keep-alive: the real atriumd on 127.0.0.1:0 over a temp data
// dir. The bench logs in as admin, creates one project per connection, then over C
// keep-alive connections loops PATCH /v1/projects/{id} with If-Match = the version of
// the previous answer (its ETag). An asynchronous Beast client on one io_context drives
// every connection; a command's latency runs from writing the request to reading the
// whole response. atriumd is stopped by its PID at the end.
//
// (reads, issue 19) The same server and client loop `GET /healthz` (the baseline: the
// edge and Beast, no token, no store), `GET /v1/projects/{id}` and `GET /v1/projects`
// (each connection on its own project; the list answers every project, one page) with
// the admin's bearer token; then, where `wrk` is on PATH, wrk runs the same three
// requests against the same server (`wrk -t2 -c<most> -d<seconds>s --latency`), so a
// real load tool's figures sit next to the bench's own in one run.
//
// The only bench file that includes Beast (it costs ~30 s and ~1 GB to compile).
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
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
using tcp = asio::ip::tcp;

/// A project the bench renames, and the version the server last answered.
struct project {
  std::string id;
  std::uint64_t version = 0;
};

/// What a connection sends in its loop.
enum class request_kind {
  patch_project,  ///< PATCH /v1/projects/{id} with If-Match: a command (path http)
  healthz,        ///< GET /healthz: no token, no store (the reads baseline)
  get_project,    ///< GET /v1/projects/{id}
  list_projects,  ///< GET /v1/projects
};

const char* scenario_of(request_kind k) {
  switch (k) {
    case request_kind::patch_project:
      return "http_patch_project";
    case request_kind::healthz:
      return "http_get_healthz";
    case request_kind::get_project:
      return "http_get_project";
    case request_kind::list_projects:
      return "http_list_projects";
  }
  return "?";
}

std::string target_of(request_kind k, const project& p) {
  switch (k) {
    case request_kind::patch_project:
    case request_kind::get_project:
      return "/v1/projects/" + p.id;
    case request_kind::healthz:
      return "/healthz";
    case request_kind::list_projects:
      return "/v1/projects";
  }
  return "/";
}

/// One keep-alive connection looping one kind of request on its own project.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(asio::io_context& io, request_kind kind, project& p, std::size_t index, const std::string& token,
             run_control& ctl)
      : stream_(io), kind_(kind), project_(p), index_(index), token_(token), ctl_(ctl) {}

  void start(const tcp::endpoint& server) {
    stream_.async_connect(server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("connect", ec);
      self->send();
    });
  }

  std::vector<std::int64_t> latencies;
  std::uint64_t events = 0;
  std::uint64_t errors = 0;
  steady::time_point finished{};

 private:
  void send() {
    if (!ctl_.next()) return close();
    ++seq_;
    req_ = {};
    req_.method(kind_ == request_kind::patch_project ? http::verb::patch : http::verb::get);
    req_.target(target_of(kind_, project_));
    req_.version(11);
    req_.keep_alive(true);
    req_.set(http::field::host, "127.0.0.1");
    if (kind_ != request_kind::healthz) req_.set(http::field::authorization, "Bearer " + token_);
    if (kind_ == request_kind::patch_project) {
      req_.set(http::field::content_type, "application/json");
      req_.set(http::field::if_match, std::to_string(project_.version));
      req_.body() = nlohmann::json{{"name", renamed_name(index_ * 1'000'000'000ULL + seq_)}}.dump();
    }
    req_.prepare_payload();
    sent_ = steady::now();
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail("write", ec);
      self->res_ = {};
      http::async_read(self->stream_, self->buf_, self->res_,
                       [self](beast::error_code ec2, std::size_t) { self->on_read(ec2); });
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) return fail("read", ec);
    const auto now = steady::now();
    if (res_.result_int() != 200) {
      ++errors;
      progress("http: connection " + std::to_string(index_) + ": status " + std::to_string(res_.result_int()) + " " +
               res_.body().substr(0, 300));
      return close();
    }
    if (kind_ != request_kind::patch_project) {
      latencies.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent_).count());
      return send();
    }
    auto v = parse_etag(std::string_view(res_[http::field::etag]));
    if (!v) {
      try {
        v = nlohmann::json::parse(res_.body()).at("version").get<std::uint64_t>();
      } catch (const std::exception&) {
      }
    }
    if (!v || *v <= project_.version) {
      ++errors;
      progress("http: connection " + std::to_string(index_) + ": no new version in the answer");
      return close();
    }
    latencies.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent_).count());
    events += *v - project_.version;
    project_.version = *v;
    send();
  }

  void fail(const char* what, beast::error_code ec) {
    ++errors;
    progress("http: connection " + std::to_string(index_) + ": " + what + ": " + ec.message());
    close();
  }

  void close() {
    finished = steady::now();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  request_kind kind_;
  project& project_;
  std::size_t index_;
  const std::string& token_;
  run_control& ctl_;
  std::uint64_t seq_ = 0;
  steady::time_point sent_{};
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

/// A fresh atriumd over a temp data dir, logged in as admin, with `projects` projects.
struct bench_server {
  test::temp_dir dir;
  std::unique_ptr<test::child_process> proc;
  std::string address;  ///< host:port
  tcp::endpoint endpoint;
  std::string token;  ///< the admin's session token
  std::vector<project> projects;

  bench_server(const options& o, std::size_t count) {
    auto started = start_atriumd(o, dir.path(), "http");
    proc = std::move(started.proc);
    address = started.address;
    endpoint = started.endpoint;
    token = started.token;
    // Setup (never measured) through the tests' blocking client.
    test::http_client setup(address);
    setup.token(token);
    projects.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      auto r = setup.post("/v1/projects", {{"name", "bench project " + std::to_string(i)}, {"description", ""}});
      if (r.status != 201)
        throw std::runtime_error("create project: status " + std::to_string(r.status) + " " + r.body);
      projects[i] = {r.json.at("id").get<std::string>(), r.json.at("version").get<std::uint64_t>()};
    }
  }

  ~bench_server() {
    const int status = proc->stop(SIGTERM);
    if (status != 0) progress("http: atriumd did not exit cleanly (status " + std::to_string(status) + ")");
  }

  /// Runs `c` connections looping `kind` for one measured point and returns its figures.
  measurement measure(const options& o, request_kind kind, std::size_t c, const std::string& path) {
    asio::io_context io;
    measurement m{scenario_of(kind), path, c};
    run_control ctl(o.seconds, o.events);
    std::vector<std::shared_ptr<connection>> conns;
    for (std::size_t i = 0; i < c; ++i) {
      conns.push_back(std::make_shared<connection>(io, kind, projects[i % projects.size()], i, token, ctl));
      conns.back()->start(endpoint);
    }
    io.run();
    steady::time_point end = ctl.start();
    for (const auto& k : conns) {
      end = std::max(end, k->finished);
      m.events += k->events;
      m.commands += k->latencies.size();
      m.errors += k->errors;
      m.latencies_ns.insert(m.latencies_ns.end(), k->latencies.begin(), k->latencies.end());
    }
    m.seconds = std::chrono::duration<double>(end - ctl.start()).count();
    m.extra["connections"] = static_cast<double>(c);
    return m;
  }
};

/// `wrk`'s path when it is on PATH, else "".
std::string find_wrk() {
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const auto dir = rest.substr(0, colon);
    const auto candidate = std::filesystem::path(std::string(dir)) / "wrk";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return {};
}

/// A latency as wrk prints it (`812.00us`, `1.23ms`, `2.01s`) in microseconds; -1 if not one.
double wrk_us(const std::string& s) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    return -1;
  }
  const auto unit = s.substr(used);
  double us = -1;
  if (unit == "us") us = v;
  if (unit == "ms") us = v * 1e3;
  if (unit == "s") us = v * 1e6;
  return us < 0 ? us : std::round(us * 10) / 10;
}

/// Runs wrk against `url` with `c` connections and prints its figures as one JSON line.
void run_wrk(const std::string& wrk, const options& o, request_kind kind, const std::string& url,
             const std::string& token, std::size_t c) {
  const auto seconds = std::max<long>(1, std::lround(o.seconds > 0 ? o.seconds : 5));
  std::vector<std::string> argv{wrk, "-t2", "-c" + std::to_string(c), "-d" + std::to_string(seconds) + "s",
                                "--latency"};
  if (kind != request_kind::healthz) {
    argv.emplace_back("-H");
    argv.push_back("Authorization: Bearer " + token);
  }
  argv.push_back(url);
  const auto out = test::run_process(argv, std::chrono::seconds(seconds + 60));
  nlohmann::ordered_json j;
  j["scenario"] = std::string("wrk_") + (scenario_of(kind) + 5);  // wrk_get_project, …
  j["path"] = "reads";
  j["tool"] = "wrk";
  j["connections"] = c;
  j["seconds"] = seconds;
  if (out.exit_code != 0) {
    j["failed"] = "wrk exited with " + std::to_string(out.exit_code) + ": " + out.err.substr(0, 300);
    std::cout << j.dump() << std::endl;
    return;
  }
  std::istringstream in(out.out);
  std::string line;
  std::uint64_t non_2xx = 0;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first, second;
    words >> first >> second;
    if (first == "Requests/sec:") j["requests_per_s"] = std::stod(second);
    if (first == "50%") j["p50_us"] = wrk_us(second);
    if (first == "75%") j["p75_us"] = wrk_us(second);
    if (first == "90%") j["p90_us"] = wrk_us(second);
    if (first == "99%") j["p99_us"] = wrk_us(second);
    if (first == "Non-2xx") {
      std::string third, count;
      words >> third >> count;
      non_2xx = std::stoull(count);
    }
  }
  j["errors"] = non_2xx;
  std::cout << j.dump() << std::endl;
}

}  // namespace

figures run_http(const options& o, const figures& raw) {
  figures out;
  if (o.connections.empty()) return out;
  std::size_t most = 0;
  for (auto c : o.connections) most = std::max(most, c);
  bench_server server(o, most);
  for (const std::size_t c : o.connections) {
    progress("http: " + std::to_string(c) + " keep-alive connections");
    auto m = server.measure(o, request_kind::patch_project, c, "http");
    out[c] = print_measurement(m, raw_at(raw, c));
  }
  return out;
}

void run_reads(const options& o) {
  if (o.connections.empty()) return;
  std::size_t most = 0;
  for (auto c : o.connections) most = std::max(most, c);
  bench_server server(o, most);
  for (const std::size_t c : o.connections) {
    double baseline = 0;
    for (auto kind : {request_kind::healthz, request_kind::get_project, request_kind::list_projects}) {
      progress(std::string("reads: ") + scenario_of(kind) + " over " + std::to_string(c) + " keep-alive connections");
      auto m = server.measure(o, kind, c, "reads");
      const double rps = m.seconds > 0 ? static_cast<double>(m.commands) / m.seconds : 0;
      if (kind == request_kind::healthz) baseline = rps;
      m.extra["requests_per_s"] = std::round(rps * 10) / 10;
      m.extra["ratio_to_healthz"] = baseline > 0 ? std::round(rps / baseline * 1000) / 1000 : 0;
      (void)print_measurement(m, std::nullopt);
    }
  }
  const auto wrk = find_wrk();
  if (wrk.empty()) {
    print_skipped("wrk", "reads", "wrk is not on PATH (apt-get install wrk)");
    return;
  }
  const auto base = "http://" + server.address;
  for (auto kind : {request_kind::healthz, request_kind::get_project, request_kind::list_projects}) {
    progress(std::string("reads: wrk ") + scenario_of(kind) + " over " + std::to_string(most) + " connections");
    run_wrk(wrk, o, kind, base + target_of(kind, server.projects.front()), server.token, most);
  }
}

started_atriumd start_atriumd(const options& o, const std::filesystem::path& dir, const std::string& what,
                              const std::vector<std::string>& extra) {
  const auto data = dir / "data";
  const auto log = dir / "atriumd.log";
  const std::string binary = o.atriumd_path.empty() ? std::string(ATRIUMD_PATH) : o.atriumd_path;
  std::vector<std::string> argv{binary, "--data-dir", data.string(), "--listen", "127.0.0.1:0"};
  if (!o.atriumd_log_level.empty()) {
    argv.emplace_back("--log-level");
    argv.push_back(o.atriumd_log_level);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  started_atriumd s;
  s.proc = std::make_unique<test::child_process>(
      argv, std::map<std::string, std::string>{{"ATRIUM_ADMIN_PASSWORD", k_bench_admin_password}}, log);
  progress(what + ": started " + binary + " pid=" + std::to_string(s.proc->pid()));
  const bool up = test::wait_until(
      [&] {
        if (!s.proc->running()) return true;  // reported below
        std::ifstream f(data / "atriumd.addr");
        if (!(f >> s.address)) return false;
        const auto colon = s.address.rfind(':');
        if (colon == std::string::npos) return false;
        try {
          if (test::http_client(s.address).get("/healthz").status != 200) return false;
          s.endpoint = tcp::endpoint(asio::ip::make_address(s.address.substr(0, colon)),
                                     static_cast<unsigned short>(std::stoul(s.address.substr(colon + 1))));
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(30));
  if (!up || !s.proc->running()) {
    throw std::runtime_error("atriumd did not start; its log ends with:\n" + tail(slurp(log), 2000));
  }
  test::http_client setup(s.address);
  auto login = setup.post("/v1/auth/login", {{"username", "admin"}, {"password", k_bench_admin_password}});
  if (login.status != 200) {
    throw std::runtime_error("login: status " + std::to_string(login.status) + " " + login.body);
  }
  s.token = login.json.at("token").get<std::string>();
  return s;
}

}  // namespace atrium::bench
