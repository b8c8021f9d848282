// A throwaway dockerd for tests; see dockerd.hpp.
#include "tests/support/dockerd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

extern char** environ;

namespace atrium::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  p += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path f = fs::path(dir) / name;
    if (::access(f.c_str(), X_OK) == 0) return f.string();
  }
  return {};
}

std::string tail_of(const fs::path& file, std::size_t max) {
  std::ifstream in(file, std::ios::binary);
  std::string s{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return s.size() > max ? s.substr(s.size() - max) : s;
}

// Mount points under `dir`, deepest first.
std::vector<std::string> mounts_under(const fs::path& dir) {
  std::ifstream in("/proc/self/mounts");
  std::vector<std::string> out;
  std::string dev, mnt, rest;
  const std::string prefix = dir.string() + "/";
  while (in >> dev >> mnt && std::getline(in, rest)) {
    if (mnt.starts_with(prefix)) out.push_back(mnt);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

}  // namespace

void skip_test(const std::string& why) {
  std::cout << "SKIPPED: " << why << std::endl;
  std::cerr << "SKIPPED: " << why << std::endl;
  std::_Exit(77);
}

std::unique_ptr<dockerd> dockerd::start(std::string* why_not) {
  if (::geteuid() != 0) {
    *why_not = "dockerd needs root (this test runs as uid " + std::to_string(::geteuid()) + ")";
    return nullptr;
  }
  if (find_in_path("dockerd").empty()) {
    *why_not = "dockerd is not installed (apt-get install -y docker.io)";
    return nullptr;
  }
  std::unique_ptr<dockerd> d(new dockerd());
  std::string tmpl = "/tmp/atrium-dockerd-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    *why_not = "mkdtemp failed";
    return nullptr;
  }
  d->dir_ = tmpl;
  std::string why;
  if (d->launch(&why)) return d;
  // overlay2 may not work here (e.g. on an overlay root without support): vfs always does.
  d->kill_daemon();
  const std::string first = why;
  d->storage_driver_ = "vfs";
  if (d->launch(&why)) {
    std::cerr << "dockerd: the default storage driver failed (" << first << "), running with vfs" << std::endl;
    return d;
  }
  *why_not = "dockerd does not start here: " + first + " / with --storage-driver vfs: " + why;
  d->stop();
  return nullptr;
}

bool dockerd::launch(std::string* why) {
  const fs::path log = dir_ / "dockerd.log";
  std::vector<std::string> args = {find_in_path("dockerd"),
                                   "--data-root",
                                   (dir_ / "root").string(),
                                   "--exec-root",
                                   (dir_ / "exec").string(),
                                   "-H",
                                   host(),
                                   "--pidfile",
                                   (dir_ / "pid").string(),
                                   "--bridge=none",
                                   "--iptables=false",
                                   "--ip6tables=false",
                                   "--default-ulimit",
                                   "nofile=20000:20000",
                                   "--default-ulimit",
                                   "nproc=4096:4096"};
  if (!storage_driver_.empty()) {
    args.push_back("--storage-driver");
    args.push_back(storage_driver_);
  }
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int rc = ::posix_spawn(&pid_, argp[0], &actions, nullptr, argp.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    *why = "posix_spawn dockerd: " + std::string(std::strerror(rc));
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *why = "dockerd exited (status " + std::to_string(status) + "); its log ends:\n" + tail_of(log, 1500);
      return false;
    }
    const auto r = api("GET", "/_ping", {}, {}, 2s);
    if (r.status == 200) return true;
    std::this_thread::sleep_for(50ms);
  }
  *why = "dockerd did not answer /_ping within 60 s; its log ends:\n" + tail_of(log, 1500);
  return false;
}

void dockerd::kill_daemon() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const bool exited = wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 20s);
  if (!exited) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

bool dockerd::restart(std::string* why) {
  kill_daemon();
  return launch(why);
}

void dockerd::stop() {
  if (dir_.empty()) return;
  if (pid_ > 0) {
    const auto list = api("GET", "/v1.41/containers/json?all=1", {}, {}, 10s);
    if (list.status == 200) {
      const auto doc = nlohmann::json::parse(list.body, nullptr, false);
      if (doc.is_array()) {
        for (const auto& c : doc) {
          if (c.is_object() && c.contains("Id") && c["Id"].is_string()) {
            (void)api("DELETE", "/v1.41/containers/" + c["Id"].get<std::string>() + "?force=1&v=1", {}, {}, 20s);
          }
        }
      }
    }
  }
  kill_daemon();
  for (const auto& m : mounts_under(dir_)) ::umount2(m.c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) std::cerr << "dockerd: could not remove " << dir_ << ": " << ec.message() << std::endl;
  dir_.clear();
}

dockerd::~dockerd() { stop(); }

docker_reply dockerd::api(const std::string& method, const std::string& target, const std::string& body,
                          const std::string& content_type, std::chrono::milliseconds timeout) const {
  docker_reply out;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    out.error = "socket: " + std::string(std::strerror(errno));
    return out;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = socket().string();
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    out.error = "connect " + path + ": " + std::strerror(errno);
    ::close(fd);
    return out;
  }
  std::string req = method + " " + target + " HTTP/1.0\r\nHost: docker\r\n";
  if (!body.empty()) req += "Content-Type: " + content_type + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  req += body;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t sent = 0;
  while (sent < req.size()) {
    const auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      out.error = "send: " + std::string(std::strerror(errno));
      ::close(fd);
      return out;
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out.error = "timed out";
      ::close(fd);
      return out;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000))) <= 0) continue;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      out.error = "recv: " + std::string(std::strerror(errno));
      ::close(fd);
      return out;
    }
    if (n == 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto end = in.find("\r\n\r\n");
  if (!in.starts_with("HTTP/1.") || end == std::string::npos || in.size() < 12) {
    out.error = "not an HTTP answer";
    return out;
  }
  out.status = std::atoi(in.c_str() + 9);
  out.body = in.substr(end + 4);
  return out;
}

bool dockerd::import_busybox_image(const std::string& ref, std::string* why) {
  const fs::path busybox = fs::exists("/bin/busybox") ? fs::path("/bin/busybox") : fs::path(find_in_path("busybox"));
  if (busybox.empty() || !fs::exists(busybox)) {
    *why = "busybox is not installed (apt-get install -y busybox-static)";
    return false;
  }
  const fs::path rootfs = dir_ / "rootfs";
  std::error_code ec;
  fs::remove_all(rootfs, ec);
  fs::create_directories(rootfs / "bin");
  fs::create_directories(rootfs / "www");
  fs::create_directories(rootfs / "tmp");
  fs::copy_file(busybox, rootfs / "bin" / "busybox", fs::copy_options::overwrite_existing, ec);
  if (ec) {
    *why = "copy busybox: " + ec.message();
    return false;
  }
  for (const char* applet :
       {"sh", "httpd", "sleep", "echo", "cat", "head", "tr", "printf", "true", "false", "kill", "ls", "env"}) {
    fs::create_symlink("busybox", rootfs / "bin" / applet, ec);
  }
  std::ofstream(rootfs / "www" / "index.html") << "hello from atrium\n";
  const fs::path tar = dir_ / "rootfs.tar";
  const auto t = run_process({"tar", "-C", rootfs.string(), "-cf", tar.string(), "."}, 60s);
  if (t.exit_code != 0) {
    *why = "tar failed: " + t.err;
    return false;
  }
  std::ifstream in(tar, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto colon = ref.rfind(':');
  const std::string repo = colon == std::string::npos ? ref : ref.substr(0, colon);
  const std::string tag = colon == std::string::npos ? "latest" : ref.substr(colon + 1);
  const auto r =
      api("POST", "/v1.41/images/create?fromSrc=-&repo=" + repo + "&tag=" + tag, bytes, "application/x-tar", 60s);
  if (r.status != 200 || r.body.find("\"error\"") != std::string::npos) {
    *why = "image import failed: " + std::to_string(r.status) + " " + r.error + " " + r.body.substr(0, 500);
    return false;
  }
  return true;
}

}  // namespace atrium::test
