// (c) Through HTTP with keep-alive: the real atriumd on 127.0.0.1:0 over a temp data
// dir. The bench logs in as admin, creates one project per connection, then over C
// keep-alive connections loops PATCH /v1/projects/{id} with If-Match = the version of
// the previous answer (its ETag). An asynchronous Beast client on one io_context drives
// every connection; a command's latency runs from writing the request to reading the
// whole response. atriumd is stopped by its PID at the end.
//
// The only bench file that includes Beast (it costs ~30 s and ~1 GB to compile).
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "tests/bench/bench.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr const char* k_admin_password = "atrium-bench-admin-password";

/// A project the bench renames, and the version the server last answered.
struct project {
  std::string id;
  std::uint64_t version = 0;
};

/// One keep-alive connection looping PATCH requests on its own project.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(asio::io_context& io, project& p, std::size_t index, const std::string& token, run_control& ctl)
      : stream_(io), project_(p), index_(index), token_(token), ctl_(ctl) {}

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
    req_.method(http::verb::patch);
    req_.target("/v1/projects/" + project_.id);
    req_.version(11);
    req_.keep_alive(true);
    req_.set(http::field::host, "127.0.0.1");
    req_.set(http::field::authorization, "Bearer " + token_);
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::if_match, std::to_string(project_.version));
    req_.body() = nlohmann::json{{"name", renamed_name(index_ * 1'000'000'000ULL + seq_)}}.dump();
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

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

}  // namespace

figures run_http(const options& o, const figures& raw) {
  figures out;
  if (o.connections.empty()) return out;
  test::temp_dir dir;
  const auto data = dir.path() / "data";
  const auto log = dir.path() / "atriumd.log";
  const std::string binary = o.atriumd_path.empty() ? std::string(ATRIUMD_PATH) : o.atriumd_path;
  std::vector<std::string> argv{binary, "--data-dir", data.string(), "--listen", "127.0.0.1:0"};
  if (!o.atriumd_log_level.empty()) {
    argv.emplace_back("--log-level");
    argv.push_back(o.atriumd_log_level);
  }
  progress("http: starting " + binary);
  test::child_process proc(argv, {{"ATRIUM_ADMIN_PASSWORD", k_admin_password}}, log);

  asio::io_context io;
  tcp::endpoint server;
  std::string address;
  const bool up = test::wait_until(
      [&] {
        if (!proc.running()) return true;  // reported below
        std::ifstream f(data / "atriumd.addr");
        if (!(f >> address)) return false;
        const auto colon = address.rfind(':');
        if (colon == std::string::npos) return false;
        try {
          if (test::http_client(address).get("/healthz").status != 200) return false;
          server = tcp::endpoint(asio::ip::make_address(address.substr(0, colon)),
                                 static_cast<unsigned short>(std::stoul(address.substr(colon + 1))));
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(30));
  if (!up || !proc.running()) {
    throw std::runtime_error("atriumd did not start; its log ends with:\n" + tail(slurp(log), 2000));
  }

  // Setup (never measured) through the tests' blocking client.
  test::http_client setup(address);
  auto login = setup.post("/v1/auth/login", {{"username", "admin"}, {"password", k_admin_password}});
  if (login.status != 200) throw std::runtime_error("login: status " + std::to_string(login.status) + " " + login.body);
  const auto token = login.json.at("token").get<std::string>();
  setup.token(token);

  std::size_t most = 0;
  for (auto c : o.connections) most = std::max(most, c);
  std::vector<project> projects(most);
  for (std::size_t i = 0; i < most; ++i) {
    auto r = setup.post("/v1/projects", {{"name", "bench project " + std::to_string(i)}, {"description", ""}});
    if (r.status != 201) throw std::runtime_error("create project: status " + std::to_string(r.status) + " " + r.body);
    projects[i] = {r.json.at("id").get<std::string>(), r.json.at("version").get<std::uint64_t>()};
  }

  for (const std::size_t c : o.connections) {
    progress("http: " + std::to_string(c) + " keep-alive connections");
    measurement m{"http_patch_project", "http", c};
    run_control ctl(o.seconds, o.events);
    std::vector<std::shared_ptr<connection>> conns;
    for (std::size_t i = 0; i < c; ++i) {
      conns.push_back(std::make_shared<connection>(io, projects[i], i, token, ctl));
      conns.back()->start(server);
    }
    io.restart();
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
    out[c] = print_measurement(m, raw_at(raw, c));
  }

  const int status = proc.stop(SIGTERM);
  if (status != 0) progress("http: atriumd did not exit cleanly (status " + std::to_string(status) + ")");
  return out;
}

}  // namespace atrium::bench
