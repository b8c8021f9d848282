// The docker runtime against a hostile or broken daemon: a fake "dockerd" on a unix socket
// in a temp dir answers with garbage, hangs, truncates, overflows and lies, and the
// runtime must answer every call with an error value (never a throw, a crash or a hang
// past its deadline), and its watch must survive and reconnect (docs/hostile.md).
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "adapters/docker/docker_runtime.hpp"
#include "tests/support/process.hpp"

namespace {

using namespace std::chrono_literals;
using atrium::errc;

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const auto n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// A fake daemon: every connection's request line (`GET /v1.41/...`) goes to `handler`,
// which writes what it likes to the socket; the connection is closed when it returns.
class fake_daemon {
 public:
  using handler = std::function<void(const std::string& request_line, int fd, const std::atomic<bool>& stopping)>;

  fake_daemon(const std::filesystem::path& path, handler h) : path_(path), handler_(std::move(h)) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 64) == 0);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~fake_daemon() {
    stopping_ = true;
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (auto& t : workers_) t.join();
    ::close(listen_fd_);
  }
  std::string host() const { return "unix://" + path_.string(); }
  int connections(const std::string& prefix) {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count_if(seen_.begin(), seen_.end(), [&](auto& l) { return l.starts_with(prefix); }));
  }

  // Blocks until the peer closes or the daemon stops (a daemon that never answers).
  static void hang(int fd, const std::atomic<bool>& stopping) {
    char buf[4096];
    while (!stopping) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0 && ::recv(fd, buf, sizeof buf, 0) <= 0) return;
    }
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos && in.size() < (1 << 20)) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) break;
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    const std::string line = in.substr(0, in.find("\r\n"));
    {
      std::lock_guard lock(mu_);
      seen_.push_back(line);
    }
    handler_(line, fd, stopping_);
    ::close(fd);
  }

  std::filesystem::path path_;
  handler handler_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<std::string> seen_;
};

std::string http(int status, const std::string& body, const std::string& extra = {}) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
         "\r\n" + body;
}

const std::string k_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string inspect_doc(const std::string& instance) {
  return R"({"Id":")" + k_id +
         R"(","State":{"Status":"running","Pid":7,"ExitCode":0,"StartedAt":"2026-12-04T22:00:00Z"},)"
         R"("Config":{"Tty":false,"Labels":{"atrium.instance":")" +
         instance + R"(","atrium.container_id":"c1","atrium.spec_version":"1"}}})";
}

std::unique_ptr<atrium::ports::container_runtime> runtime_on(const fake_daemon& d) {
  atrium::docker_adapter::docker_runtime_options o;
  o.host = d.host();
  o.instance = "inst";
  o.request_timeout = 500ms;
  o.pull_timeout = 500ms;
  o.check_daemon = false;
  auto rt = atrium::docker_adapter::make_docker_runtime(o);
  REQUIRE(rt);
  return std::move(*rt);
}

}  // namespace

TEST_CASE("docker runtime: a daemon answering garbage gets error values, never a throw or a hang", "[docker-hostile]") {
  atrium::test::temp_dir dir;
  // Each inspect gets the next misbehaviour.
  std::atomic<int> next{0};
  const std::vector<std::function<void(int, const std::atomic<bool>&)>> answers = {
      [](int fd, auto&) { send_all(fd, "HELLO\r\n\r\n"); },                      // not HTTP
      [](int fd, auto& s) { fake_daemon::hang(fd, s); },                         // never answers
      [](int fd, auto&) { send_all(fd, http(200, "not json")); },                // not JSON
      [](int fd, auto&) { send_all(fd, http(200, R"({"Id":5,"State":{}})")); },  // wrong types
      [](int fd, auto&) { send_all(fd, http(200, std::string(100000, '['))); },  // deep nesting
      [](int fd, auto&) { send_all(fd, http(200, "{}", "X-Big: " + std::string(100000, 'a') + "\r\n")); },
      [](int fd, auto&) { send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"); },
      [](int fd, auto&) { send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"Id\":"); },  // cut short
      [](int fd, auto&) { send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"); },  // header cut short
      [](int fd, auto&) { send_all(fd, http(500, "\xff\xfe garbage")); },
      [](int fd, auto&) { send_all(fd, http(200, inspect_doc("someone-else"))); },  // another instance's
      [](int, auto&) {},                                                            // closes at once
  };
  fake_daemon d(dir.path() / "d.sock", [&](const std::string&, int fd, const std::atomic<bool>& stopping) {
    const auto i = next.fetch_add(1);
    if (i < static_cast<int>(answers.size())) answers[i](fd, stopping);
  });
  auto rt = runtime_on(d);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    INFO("misbehaviour " << i);
    auto r = rt->inspect(k_id);
    REQUIRE_FALSE(r);
    const auto code = r.error().code;
    CHECK((code == errc::unavailable || code == errc::internal || code == errc::not_found));
    CHECK_FALSE(r.error().message.empty());
  }
  auto missing = rt->inspect("no/such");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == errc::not_found);
}

TEST_CASE("docker runtime: hostile list, log and pull answers", "[docker-hostile]") {
  atrium::test::temp_dir dir;
  std::atomic<int> list_calls{0};
  std::atomic<int> log_calls{0};
  fake_daemon d(dir.path() / "d.sock", [&](const std::string& line, int fd, const std::atomic<bool>&) {
    if (line.starts_with("GET /v1.41/containers/json")) {
      // first not an array, then an array of odd items and an id whose inspect is a 404
      if (list_calls++ == 0) {
        send_all(fd, http(200, R"({"a":1})"));
      } else {
        send_all(fd, http(200, R"([1, null, {"Id": 7}, {"Id":"gone"}, {"Id":")" + k_id + R"("}])"));
      }
    } else if (line.starts_with("GET /v1.41/containers/gone/json")) {
      send_all(fd, http(404, R"({"message":"No such container: gone"})"));
    } else if (line.starts_with("GET /v1.41/containers/" + k_id + "/json")) {
      send_all(fd, http(200, inspect_doc("inst")));
    } else if (line.starts_with("GET /v1.41/containers/" + k_id + "/logs")) {
      const int n = log_calls++;
      std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n";
      if (n == 0) {
        // a good frame, then a frame with a bad stream byte
        std::string ok("\x01\0\0\0\0\0\0\x03hi\n", 11);
        std::string bad("\x07\0\0\0\0\0\0\x01x", 9);
        send_all(fd, head + "Content-Length: " + std::to_string(ok.size() + bad.size()) + "\r\n\r\n" + ok + bad);
      } else {
        // a frame announcing 4 GiB, then the connection ends
        send_all(fd, head + "\r\n" + std::string("\x01\0\0\0\xff\xff\xff\xff", 8) + "partial");
      }
    } else if (line.starts_with("GET /v1.41/images/")) {
      send_all(fd, http(404, R"({"message":"no such image"})"));
    } else if (line.starts_with("POST /v1.41/images/create")) {
      // a 200 pull whose progress stream reports the failure
      send_all(
          fd, http(200, "{\"status\":\"Pulling\"}\n{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"denied\"}\n"));
    } else {
      send_all(fd, http(404, R"({"message":"page not found"})"));
    }
  });
  auto rt = runtime_on(d);
  auto l = rt->list();
  REQUIRE_FALSE(l);
  CHECK(l.error().code == errc::internal);
  l = rt->list();
  REQUIRE(l);
  REQUIRE(l->size() == 1);
  CHECK(l->front().runtime_id == k_id);

  std::vector<std::string> lines;
  std::atomic<bool> stop{false};
  auto logs = rt->logs(
      k_id, {10, false},
      [&](std::string_view s) {
        lines.emplace_back(s);
        return true;
      },
      stop);
  REQUIRE_FALSE(logs);
  CHECK(logs.error().code == errc::internal);
  CHECK(lines == std::vector<std::string>{"hi"});
  lines.clear();
  logs = rt->logs(
      k_id, {10, false},
      [&](std::string_view s) {
        lines.emplace_back(s);
        return true;
      },
      stop);
  CHECK(lines == std::vector<std::string>{"partial"});

  atrium::ports::container_spec spec;
  spec.container_id = "c1";
  spec.name = "x";
  spec.image = "somewhere/app:1";
  auto c = rt->create(spec);
  REQUIRE_FALSE(c);
  CHECK(c.error().code == errc::invalid_argument);
  CHECK(c.error().message.find("denied") != std::string::npos);
}

TEST_CASE("docker runtime: the watch skips garbage, survives a broken stream, reconnects and stops",
          "[docker-hostile]") {
  atrium::test::temp_dir dir;
  std::atomic<int> streams{0};
  fake_daemon d(dir.path() / "d.sock", [&](const std::string& line, int fd, const std::atomic<bool>& stopping) {
    if (!line.starts_with("GET /v1.41/events?")) return;
    const int n = streams++;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    auto chunk = [&](const std::string& s) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", s.size());
      return send_all(fd, size + s + "\r\n");
    };
    if (n == 0) {
      chunk("garbage\n[]\n{\"Type\":\"container\"}\n");
      chunk(std::string(1100000, 'x'));  // a line over 1 MiB, then its end
      chunk("\n");
      chunk(R"({"Type":"container","Action":"die","Actor":{"ID":"aaa","Attributes":{"atrium.instance":"inst",)"
            R"("atrium.container_id":"c1","exitCode":"3"}},"timeNano":5})"
            "\n");
      chunk(R"({"Type":"container","Action":"die","Actor":{"ID":"bbb","Attributes":{"atrium.instance":"other"}}})"
            "\n");
      send_all(fd, "zz\r\n");  // a broken chunk: the stream ends
    } else if (n == 1) {
      chunk(R"({"Type":"container","Action":"destroy","Actor":{"ID":"aaa","Attributes":{"atrium.instance":"inst"}}})"
            "\n");
      fake_daemon::hang(fd, stopping);  // then silence until the watch goes away
    }
  });
  auto rt = runtime_on(d);
  std::mutex mu;
  std::vector<atrium::ports::runtime_event> seen;
  auto w = rt->watch([&](const atrium::ports::runtime_event& e) {
    std::lock_guard lock(mu);
    seen.push_back(e);
  });
  REQUIRE(atrium::test::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() >= 2;
      },
      20s));
  {
    std::lock_guard lock(mu);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].type == atrium::ports::runtime_event::kind::exited);
    CHECK(seen[0].runtime_id == "aaa");
    CHECK(seen[0].exit_code == 3);
    CHECK(seen[1].type == atrium::ports::runtime_event::kind::removed);
  }
  CHECK(streams.load() == 2);
  CHECK(d.connections("GET /v1.41/events?filters=") == 2);
  w.reset();  // the second stream hangs: destroying the handle must still return
}
