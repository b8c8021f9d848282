#include "adapters/process/container_runtime.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "adapters/process/container_cgroup.hpp"
#include "adapters/process/container_files.hpp"

extern char** environ;

namespace atrium::process_adapter {

namespace {

namespace fs = std::filesystem;
using ports::runtime_container;
using clock = std::chrono::steady_clock;

constexpr std::size_t runtime_json_limit = 1 << 20;
constexpr std::size_t state_json_limit = 64 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

/// A file descriptor closed on destruction.
struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f = -1) : fd(f) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

/// Whether some process holds the shim's lock on `dir/lock` (the shim lives).
bool shim_alive(const fs::path& dir) {
  fd_guard lock(::open((dir / "lock").c_str(), O_RDONLY | O_CLOEXEC));
  if (lock.fd < 0) return false;
  if (::flock(lock.fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(lock.fd, LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK;
}

/// Whether a live (not zombie) process of group `pgid` is left. kill(-pgid, 0) answers
/// quickly when the group is gone; since it counts zombies too (a process re-parented to a
/// pid 1 that does not reap stays one), a positive answer is checked in /proc.
bool group_alive(std::int64_t pgid) {
  if (pgid <= 1) return false;
  if (::kill(static_cast<pid_t>(-pgid), 0) != 0 && errno == ESRCH) return false;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto text = read_file(it->path() / "stat", 4096);
    if (!text) continue;
    const auto close = text->rfind(')');
    if (close == std::string::npos || close + 2 >= text->size()) continue;
    // "<state> <ppid> <pgrp> …" after the command name.
    const char state = (*text)[close + 2];
    const auto p1 = text->find(' ', close + 2);
    const auto p2 = p1 == std::string::npos ? p1 : text->find(' ', p1 + 1);
    if (p2 == std::string::npos) continue;
    if (std::strtoll(text->c_str() + p2 + 1, nullptr, 10) == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

/// What the files of one container dir say, with the liveness checks done.
struct observed {
  runtime_record record;
  runtime_container container;
  std::uint64_t start = 0;  // state.json's start number, 0 when never started
  std::optional<state_record> state;
};

std::optional<std::pair<std::string, std::uint64_t>> checked_id(std::string_view runtime_id) {
  return parse_runtime_id(runtime_id);
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

/// Connects to 127.0.0.1:port within `deadline`; returns the socket or -1 with `why` set.
int connect_local(int port, clock::time_point deadline, std::string& why) {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    why = "socket: " + errno_text(errno);
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return s;
  if (errno != EINPROGRESS) {
    why = "connect: " + errno_text(errno);
    ::close(s);
    return -1;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  pollfd p{s, POLLOUT, 0};
  if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
    why = "connect: timed out";
    ::close(s);
    return -1;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    why = "connect: " + errno_text(err);
    ::close(s);
    return -1;
  }
  return s;
}

/// Reads and checks one container dir. nullopt when it holds no (readable) runtime
/// container. `settle`: when the process is gone but its shim still lives, wait up to
/// 2 s for the shim to record the exit.
std::optional<observed> observe_container(const fs::path& root, const std::string& container_id, bool settle) {
  const auto dir = root / container_id;
  auto text = read_file(dir / "runtime.json", runtime_json_limit);
  if (!text) return std::nullopt;
  auto record = decode_runtime(*text);
  if (!record || record->container_id != container_id) return std::nullopt;
  observed o;
  o.record = std::move(*record);
  o.container.runtime_id = o.record.runtime_id;
  o.container.container_id = o.record.container_id;
  o.container.spec_version = o.record.spec_version;
  const auto deadline = clock::now() + std::chrono::seconds(2);
  for (;;) {
    auto state_text = read_file(dir / "state.json", state_json_limit);
    if (!state_text) {
      if (state_text.error().code == errc::not_found) {
        o.container.status = runtime_container::state::created;
        return o;
      }
      o.container.status = runtime_container::state::exited;
      o.container.reason = "lost";
      return o;
    }
    auto state = decode_state(*state_text);
    if (!state) {
      o.container.status = runtime_container::state::exited;
      o.container.reason = "lost";
      return o;
    }
    if (state->runtime_id != o.record.runtime_id) {
      o.container.status = runtime_container::state::created;
      return o;
    }
    o.start = state->start;
    o.state = *state;
    o.container.started_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(state->started_at_ms));
    if (!state->running) {
      o.container.status = runtime_container::state::exited;
      o.container.exit_code = state->exit_code;
      o.container.reason = state->reason.empty() ? "exited" : state->reason;
      return o;
    }
    if (process_alive(state->pid, state->pid_start)) {
      o.container.status = runtime_container::state::running;
      o.container.pid = state->pid;
      return o;
    }
    if (shim_alive(dir)) {
      if (settle && clock::now() < deadline) {
        sleep_ms(20);
        continue;
      }
      // The shim is recording the exit right now: still running for a moment.
      o.container.status = runtime_container::state::running;
      o.container.pid = state->pid;
      return o;
    }
    o.container.status = runtime_container::state::exited;
    o.container.reason = "lost";
    return o;
  }
}

class process_runtime;

class process_watch final : public ports::watch_handle {
 public:
  process_watch(process_runtime& rt, std::function<void(const ports::runtime_event&)> on_event);
  ~process_watch() override;

 private:
  void run();
  void scan_dir(const std::string& container_id);
  void scan_all();
  void add_watch(const std::string& container_id);

  fs::path root_;
  std::string instance_;
  std::chrono::milliseconds scan_interval_;
  std::function<void(const ports::runtime_event&)> on_event_;
  int inotify_ = -1;
  int wake_ = -1;
  int root_wd_ = -1;
  std::unordered_map<int, std::string> wd_to_id_;
  std::set<std::string> watched_;
  // Per container id: the runtime id seen and the exit last reported for it.
  struct seen {
    std::string runtime_id;
    std::string exit_key;  // "" while not exited
  };
  std::map<std::string, seen> seen_;
  std::thread thread_;
};

class process_runtime final : public ports::container_runtime {
 public:
  explicit process_runtime(process_runtime_options options) : options_(std::move(options)) {
    if (options_.shim_path.empty()) {
      std::error_code ec;
      const auto self = fs::read_symlink("/proc/self/exe", ec);
      options_.shim_path = (ec ? fs::path(".") : self.parent_path()) / "atrium-shim";
    }
    options_.log_max_bytes = std::max<std::uint64_t>(options_.log_max_bytes, 4096);
    options_.log_files = std::min(options_.log_files, 100u);
    std::error_code ec;
    fs::create_directories(root(), ec);
  }

  std::string_view name() const noexcept override { return "process"; }

  [[nodiscard]] fs::path root() const { return options_.data_dir / "containers"; }
  [[nodiscard]] fs::path dir_of(const std::string& container_id) const { return root() / container_id; }
  [[nodiscard]] const std::string& instance() const { return options_.instance; }
  [[nodiscard]] std::chrono::milliseconds options_scan_interval() const {
    return std::max(options_.scan_interval, std::chrono::milliseconds(50));
  }

  result<std::string> create(const ports::container_spec& spec) override {
    if (!valid_container_id(spec.container_id))
      return fail(errc::invalid_argument, "container id must be 1-128 of [A-Za-z0-9_-]");
    if (spec.command.empty() || spec.command[0].empty())
      return fail(errc::invalid_argument, "the process runtime needs a command");
    for (const int p : spec.ports)
      if (p < 1 || p > 65535) return fail(errc::invalid_argument, "ports must be 1-65535");
    auto guard = lock_container(spec.container_id);
    const auto dir = dir_of(spec.container_id);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail(errc::internal, dir.string() + ": " + ec.message());
    if (auto current = observe(spec.container_id, false);
        current && current->container.status == runtime_container::state::running)
      return fail(errc::invalid_argument, "runtime container " + current->container.runtime_id +
                                              " still runs; stop or remove it before creating another");
    std::uint64_t seq = 0;
    if (auto text = read_file(dir / "runtime.seq", 64)) seq = std::strtoull(text->c_str(), nullptr, 10);
    ++seq;
    if (auto w = write_file_atomic(dir / "runtime.seq", std::to_string(seq) + "\n"); !w)
      return std::unexpected(w.error());
    runtime_record r;
    r.runtime_id = "proc-" + spec.container_id + "-" + std::to_string(seq);
    r.container_id = spec.container_id;
    r.instance = options_.instance;
    r.spec_version = spec.spec_version;
    r.name = spec.name;
    r.command = spec.command;
    r.env = spec.env;
    r.ports = spec.ports;
    r.memory_bytes = spec.limits.memory_bytes;
    r.cpus = spec.limits.cpus;
    r.pids = spec.limits.pids;
    r.cgroups = options_.cgroups;
    r.log = {options_.log_max_bytes, options_.log_files};
    ::unlink((dir / "state.json").c_str());
    if (auto w = write_file_atomic(dir / "runtime.json", encode(r)); !w) return std::unexpected(w.error());
    spdlog::info("process_runtime created runtime_id={} container_id={}", r.runtime_id, r.container_id);
    return r.runtime_id;
  }

  result<void> start(std::string_view runtime_id) override {
    const auto id = checked_id(runtime_id);
    if (!id) return fail(errc::not_found, "no such runtime container");
    auto guard = lock_container(id->first);
    auto current = observe(id->first, true);
    if (!current || current->container.runtime_id != runtime_id)
      return fail(errc::not_found, "no such runtime container");
    const auto dir = dir_of(id->first);
    if (current->container.status == runtime_container::state::running) return {};
    // A shim that has just recorded an exit is ending; one that lives on runs the process.
    const auto until = clock::now() + std::chrono::seconds(2);
    while (shim_alive(dir) && clock::now() < until) sleep_ms(5);
    if (shim_alive(dir)) return {};
    if (::access(options_.shim_path.c_str(), X_OK) != 0)
      return fail(errc::unavailable, "the container supervisor is missing: " + options_.shim_path.string());

    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return fail(errc::internal, "pipe: " + errno_text(errno));
    fd_guard read_end(ready[0]);
    // dup2 onto itself would keep FD_CLOEXEC: make sure the write end is not fd 3 already.
    fd_guard write_end(::fcntl(ready[1], F_DUPFD_CLOEXEC, 10));
    ::close(ready[1]);
    if (write_end.fd < 0) return fail(errc::internal, "fcntl: " + errno_text(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, write_end.fd, 3);  // dup2 clears FD_CLOEXEC on fd 3
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const std::string shim = options_.shim_path.string();
    const std::string dir_arg = dir.string();
    std::string fd_arg = "3";
    char* argv[] = {const_cast<char*>(shim.c_str()), const_cast<char*>(dir_arg.c_str()), fd_arg.data(), nullptr};
    char* envp[] = {const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, shim.c_str(), &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return fail(errc::unavailable, "cannot start " + shim + ": " + errno_text(rc));
    ::close(write_end.fd);
    write_end.fd = -1;
    // The first shim process forks the real one and exits at once.
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string reply;
    const auto deadline = clock::now() + std::chrono::seconds(10);
    char buf[512];
    while (reply.find('\n') == std::string::npos && clock::now() < deadline && reply.size() < 4096) {
      pollfd p{read_end.fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(read_end.fd, buf, sizeof buf);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
    }
    if (const auto nl = reply.find('\n'); nl != std::string::npos) reply.resize(nl);
    if (reply.starts_with("ok ") || reply.starts_with("busy")) {
      spdlog::info("process_runtime started runtime_id={} {}", runtime_id, reply);
      return {};
    }
    if (reply.starts_with("error ")) return fail(errc::invalid_argument, reply.substr(6));
    return fail(errc::internal, "the container supervisor did not report a start (" + shim + ")");
  }

  result<void> stop(std::string_view runtime_id, std::chrono::seconds grace) override {
    const auto id = checked_id(runtime_id);
    if (!id) return fail(errc::not_found, "no such runtime container");
    auto guard = lock_container(id->first);
    return stop_locked(*id, runtime_id, grace);
  }

  result<void> remove(std::string_view runtime_id) override {
    const auto id = checked_id(runtime_id);
    if (!id) return {};
    auto guard = lock_container(id->first);
    auto stopped = stop_locked(*id, runtime_id, std::chrono::seconds(10));
    if (!stopped) return stopped.error().code == errc::not_found ? result<void>{} : stopped;
    const auto dir = dir_of(id->first);
    ::unlink((dir / "state.json").c_str());
    ::unlink((dir / "runtime.json").c_str());
    spdlog::info("process_runtime removed runtime_id={}", runtime_id);
    return {};
  }

  result<runtime_container> inspect(std::string_view runtime_id) override {
    const auto id = checked_id(runtime_id);
    if (!id) return fail(errc::not_found, "no such runtime container");
    auto current = observe(id->first, true);
    if (!current || current->container.runtime_id != runtime_id || current->record.instance != options_.instance)
      return fail(errc::not_found, "no such runtime container");
    return current->container;
  }

  result<std::vector<runtime_container>> list() override {
    std::vector<runtime_container> out;
    std::error_code ec;
    for (fs::directory_iterator it(root(), ec), end; !ec && it != end; it.increment(ec)) {
      const auto cid = it->path().filename().string();
      if (!valid_container_id(cid)) continue;
      auto current = observe(cid, true);
      if (current && current->record.instance == options_.instance) out.push_back(current->container);
    }
    if (ec && ec != std::errc::no_such_file_or_directory)
      return fail(errc::unavailable, root().string() + ": " + ec.message());
    return out;
  }

  result<ports::probe_result> probe(std::string_view runtime_id, const ports::health_probe& probe) override {
    const auto id = checked_id(runtime_id);
    if (!id) return fail(errc::not_found, "no such runtime container");
    auto current = observe(id->first, false);
    if (!current || current->container.runtime_id != runtime_id || current->record.instance != options_.instance)
      return fail(errc::not_found, "no such runtime container");
    if (current->container.status != runtime_container::state::running)
      return ports::probe_result{false, "not running"};
    const auto timeout = std::clamp(probe.timeout, std::chrono::milliseconds(1), std::chrono::milliseconds(3600000));
    const auto deadline = clock::now() + timeout;
    switch (probe.type) {
      case ports::health_probe::kind::tcp:
      case ports::health_probe::kind::http: {
        if (probe.port < 1 || probe.port > 65535) return ports::probe_result{false, "port out of range"};
        std::string why;
        fd_guard s(connect_local(probe.port, deadline, why));
        if (s.fd < 0) return ports::probe_result{false, why};
        if (probe.type == ports::health_probe::kind::tcp) return ports::probe_result{true, "connected"};
        return http_probe(s.fd, probe, deadline);
      }
      case ports::health_probe::kind::exec:
        return exec_probe(current->record, dir_of(id->first), probe, deadline);
    }
    return ports::probe_result{false, "unknown probe"};
  }

  result<void> logs(std::string_view runtime_id, const ports::log_request& request, const ports::log_sink& on_line,
                    const std::atomic<bool>& stop) override {
    const auto id = checked_id(runtime_id);
    if (!id) return fail(errc::not_found, "no such runtime container");
    const auto dir = dir_of(id->first);
    const auto exists = [&] {
      auto text = read_file(dir / "runtime.json", runtime_json_limit);
      if (!text) return false;
      auto r = decode_runtime(*text);
      return r && r->runtime_id == runtime_id && r->instance == options_.instance;
    };
    if (!exists()) return fail(errc::not_found, "no such runtime container");
    // Open `log` first: the tail ends where the follow begins.
    fd_guard fd(::open((dir / "log").c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    std::uint64_t offset = 0;
    ino_t inode = 0;
    if (fd.fd >= 0 && ::fstat(fd.fd, &st) == 0) {
      offset = static_cast<std::uint64_t>(st.st_size);
      inode = st.st_ino;
    }
    for (const auto& line : tail_log(dir, std::min<std::size_t>(request.tail, 10000), offset))
      if (!on_line(line)) return {};
    if (!request.follow) return {};
    line_splitter splitter;
    bool go_on = true;
    const auto emit = [&](std::string_view line) {
      if (go_on) go_on = on_line(line);
    };
    std::vector<char> buf(64 * 1024);
    const auto drain = [&](int f) {
      for (;;) {
        const ssize_t n = ::pread(f, buf.data(), buf.size(), static_cast<off_t>(offset));
        if (n <= 0) return;
        offset += static_cast<std::uint64_t>(n);
        splitter.feed({buf.data(), static_cast<std::size_t>(n)}, emit);
        if (!go_on) return;
      }
    };
    int checks = 0;
    while (go_on && !stop.load()) {
      if (fd.fd >= 0) drain(fd.fd);
      if (!go_on) break;
      // Rotated (a new inode at `log`) or truncated: finish the old file, then start over.
      struct stat now {};
      if (::stat((dir / "log").c_str(), &now) == 0) {
        if (fd.fd < 0 || now.st_ino != inode) {
          if (fd.fd >= 0) {
            drain(fd.fd);
            // More than one rotation since the last look: the old file is log.k, and
            // log.k-1 … log.1 came after it; read those whole, oldest first.
            int k = 0;
            for (int i = 1; i <= 100 && k == 0; ++i) {
              struct stat r {};
              if (::stat((dir / ("log." + std::to_string(i))).c_str(), &r) != 0) break;
              if (r.st_ino == inode) k = i;
            }
            for (int j = k - 1; j >= 1 && go_on; --j) {
              fd_guard mid(::open((dir / ("log." + std::to_string(j))).c_str(), O_RDONLY | O_CLOEXEC));
              if (mid.fd < 0) continue;
              offset = 0;
              drain(mid.fd);
            }
          }
          splitter.flush(emit);
          if (fd.fd >= 0) ::close(fd.fd);
          fd.fd = ::open((dir / "log").c_str(), O_RDONLY | O_CLOEXEC);
          inode = now.st_ino;
          offset = 0;
          continue;
        } else if (static_cast<std::uint64_t>(now.st_size) < offset) {
          offset = 0;
        }
      }
      if (++checks % 8 == 0 && !exists()) break;  // removed: the follow ends
      sleep_ms(200);
    }
    return {};
  }

  std::unique_ptr<ports::watch_handle> watch(std::function<void(const ports::runtime_event&)> on_event) override {
    return std::make_unique<process_watch>(*this, std::move(on_event));
  }

  /// See observe_container.
  std::optional<observed> observe(const std::string& container_id, bool settle) const {
    return observe_container(root(), container_id, settle);
  }

 private:
  std::unique_lock<std::mutex> lock_container(const std::string& container_id) {
    std::shared_ptr<std::mutex> m;
    {
      std::lock_guard g(locks_mutex_);
      auto& slot = locks_[container_id];
      if (!slot) slot = std::make_shared<std::mutex>();
      m = slot;
    }
    // The map keeps the mutex alive (one small entry per container id ever used).
    return std::unique_lock<std::mutex>(*m);
  }

  result<void> stop_locked(const std::pair<std::string, std::uint64_t>& id, std::string_view runtime_id,
                           std::chrono::seconds grace) {
    auto current = observe(id.first, false);
    if (!current || current->container.runtime_id != runtime_id || current->record.instance != options_.instance)
      return fail(errc::not_found, "no such runtime container");
    const auto dir = dir_of(id.first);
    if (!current->state || !current->state->running) return {};
    const auto& state = *current->state;
    const std::int64_t pgid = state.pid;
    int last_signal = 0;
    // The container's cgroup (when it has one) also holds what left the process group.
    cgroup_set cgroup;
    for (const auto& d : state.cgroups)
      if (valid_cgroup_path(d, id.first)) cgroup.dirs.push_back(d);
    const auto alive = [&] { return group_alive(pgid) || !cgroup_pids(cgroup).empty(); };
    const auto signal = [&](int sig) {
      last_signal = sig;
      ::kill(static_cast<pid_t>(-pgid), sig);
      signal_cgroup(cgroup, sig);
    };
    // Only signal the group while its leader is the process we started (pid + start
    // time): a pgid cannot be reused while a member of the group lives.
    if (process_alive(state.pid, state.pid_start)) {
      signal(SIGTERM);
      const auto until = clock::now() + grace;
      while (alive() && clock::now() < until) sleep_ms(20);
      if (alive()) {
        signal(SIGKILL);
        const auto hard = clock::now() + std::chrono::seconds(5);
        while (alive() && clock::now() < hard) sleep_ms(10);
        if (alive()) return fail(errc::internal, "process group " + std::to_string(pgid) + " survived SIGKILL");
      }
      // Zombies of the group wait for their parent (the shim, or pid 1): give them a moment.
      const auto reaped = clock::now() + std::chrono::seconds(1);
      while (::kill(static_cast<pid_t>(-pgid), 0) == 0 && clock::now() < reaped) sleep_ms(10);
    }
    // The shim records the exit and ends; wait for it (bounded).
    const auto until = clock::now() + std::chrono::seconds(5);
    while (shim_alive(dir) && clock::now() < until) sleep_ms(10);
    auto after = read_file(dir / "state.json", state_json_limit);
    auto parsed = after ? decode_state(*after) : result<state_record>(std::unexpected(after.error()));
    if (parsed && parsed->runtime_id == state.runtime_id && parsed->running && !shim_alive(dir)) {
      // No shim recorded it (it was killed): record what we know.
      state_record s = *parsed;
      s.running = false;
      s.finished_at_ms = unix_ms_now();
      if (last_signal != 0) {
        s.exit_code = 128 + last_signal;
        s.reason = "killed";
      } else {
        s.reason = "lost";
      }
      destroy_cgroup(cgroup, 2000);  // the shim would have removed it
      if (auto w = write_file_atomic(dir / "state.json", encode(s)); !w) return w;
    }
    spdlog::info("process_runtime stopped runtime_id={}", runtime_id);
    return {};
  }

  static result<ports::probe_result> http_probe(int s, const ports::health_probe& probe, clock::time_point deadline) {
    std::string path = probe.path.empty() || probe.path[0] != '/' ? "/" + probe.path : probe.path;
    if (path.find_first_of("\r\n ") != std::string::npos) return ports::probe_result{false, "invalid path"};
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(probe.port) +
                                "\r\nUser-Agent: atrium-health\r\nConnection: close\r\n\r\n";
    std::size_t sent = 0;
    std::string response;
    char buf[1024];
    while (clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      pollfd p{s, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
      if (::poll(&p, 1, static_cast<int>(std::max<long long>(left, 1))) <= 0) continue;
      if (sent < request.size()) {
        const ssize_t n = ::send(s, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) return ports::probe_result{false, "send: " + errno_text(errno)};
        if (n > 0) sent += static_cast<std::size_t>(n);
        continue;
      }
      const ssize_t n = ::recv(s, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n > 0) response.append(buf, static_cast<std::size_t>(n));
      const auto eol = response.find("\r\n");
      if (eol != std::string::npos || n <= 0 || response.size() >= 1024) {
        const std::string line = response.substr(0, std::min<std::size_t>(eol, 200));
        // "HTTP/1.x NNN reason"
        if (line.size() >= 12 && line.starts_with("HTTP/") && line[8] == ' ') {
          const int status = std::atoi(line.substr(9, 3).c_str());
          const bool ok = status >= 200 && status < 400;
          return ports::probe_result{ok, "HTTP " + std::to_string(status)};
        }
        return ports::probe_result{false, n <= 0 ? "connection closed without a status line" : "not an HTTP response"};
      }
    }
    return ports::probe_result{false, "timed out"};
  }

  static result<ports::probe_result> exec_probe(const runtime_record& record, const fs::path& dir,
                                                const ports::health_probe& probe, clock::time_point deadline) {
    if (probe.exec.empty() || probe.exec[0].empty()) return ports::probe_result{false, "empty exec command"};
    const auto env = container_environment(record, dir);
    const auto program = resolve_program(probe.exec[0], env);
    if (!program) return ports::probe_result{false, "executable not found: " + probe.exec[0]};
    std::vector<char*> argv;
    for (const auto& a : probe.exec) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return fail(errc::internal, "pipe: " + errno_text(errno));
    fd_guard read_end(out[0]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, out[1], 2);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, program->c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    if (rc != 0) return ports::probe_result{false, "cannot execute " + probe.exec[0] + ": " + errno_text(rc)};
    std::string output;
    char buf[512];
    int status = 0;
    bool done = false;
    bool timed_out = false;
    while (!done) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        done = true;
        break;
      }
      if (clock::now() >= deadline) {
        ::kill(-pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        timed_out = true;
        break;
      }
      pollfd p{read_end.fd, POLLIN, 0};
      if (read_end.fd >= 0 && ::poll(&p, 1, 20) > 0) {
        const ssize_t n = ::read(read_end.fd, buf, sizeof buf);
        if (n > 0 && output.size() < 1024) output.append(buf, std::min<std::size_t>(n, 1024 - output.size()));
        if (n == 0) {
          ::close(read_end.fd);
          read_end.fd = -1;
        }
      } else if (read_end.fd < 0) {
        sleep_ms(20);
      }
    }
    ::kill(-pid, SIGKILL);  // whatever the probe left in its group
    if (timed_out) return ports::probe_result{false, "timed out"};
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ports::probe_result{true, "exit 0"};
    std::string detail = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                           : "killed by signal " + std::to_string(WTERMSIG(status));
    if (!output.empty()) detail += ": " + output;
    if (detail.size() > 1024) detail.resize(1024);
    return ports::probe_result{false, detail};
  }

  process_runtime_options options_;
  std::mutex locks_mutex_;
  std::map<std::string, std::shared_ptr<std::mutex>> locks_;
};

process_watch::process_watch(process_runtime& rt, std::function<void(const ports::runtime_event&)> on_event)
    : root_(rt.root()),
      instance_(rt.instance()),
      scan_interval_(rt.options_scan_interval()),
      on_event_(std::move(on_event)) {
  inotify_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (inotify_ >= 0)
    root_wd_ = ::inotify_add_watch(inotify_, root_.c_str(), IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_ONLYDIR);
  // What exists now is the baseline: events are for changes from now on.
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const auto cid = it->path().filename().string();
    if (!valid_container_id(cid)) continue;
    add_watch(cid);
    auto o = observe_container(root_, cid, false);
    if (!o || o->record.instance != instance_) continue;
    seen s{o->container.runtime_id, ""};
    if (o->container.status == runtime_container::state::exited)
      s.exit_key = std::to_string(o->start) + ":" + o->container.reason;
    seen_[cid] = s;
  }
  thread_ = std::thread([this] { run(); });
}

process_watch::~process_watch() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  if (inotify_ >= 0) ::close(inotify_);
  if (wake_ >= 0) ::close(wake_);
}

void process_watch::add_watch(const std::string& container_id) {
  if (inotify_ < 0 || watched_.contains(container_id)) return;
  const int wd = ::inotify_add_watch(inotify_, (root_ / container_id).c_str(),
                                     IN_MOVED_TO | IN_DELETE | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_ONLYDIR);
  if (wd < 0) return;
  wd_to_id_[wd] = container_id;
  watched_.insert(container_id);
}

void process_watch::scan_dir(const std::string& container_id) {
  auto o = observe_container(root_, container_id, false);
  if (o && o->record.instance != instance_) return;
  const auto it = seen_.find(container_id);
  if (it != seen_.end() && (!o || o->container.runtime_id != it->second.runtime_id)) {
    ports::runtime_event e;
    e.type = ports::runtime_event::kind::removed;
    e.runtime_id = it->second.runtime_id;
    e.container_id = container_id;
    on_event_(e);
    seen_.erase(it);
  }
  if (!o) return;
  auto& s = seen_[container_id];
  s.runtime_id = o->container.runtime_id;
  if (o->container.status != runtime_container::state::exited) {
    s.exit_key.clear();
    return;
  }
  const std::string key = std::to_string(o->start) + ":" + o->container.reason;
  if (key == s.exit_key) return;
  s.exit_key = key;
  ports::runtime_event e;
  e.type = ports::runtime_event::kind::exited;
  e.runtime_id = o->container.runtime_id;
  e.container_id = container_id;
  e.exit_code = o->container.exit_code;
  e.reason = o->container.reason;
  on_event_(e);
}

void process_watch::scan_all() {
  std::set<std::string> present;
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const auto cid = it->path().filename().string();
    if (!valid_container_id(cid)) continue;
    present.insert(cid);
    add_watch(cid);
    scan_dir(cid);
  }
  std::vector<std::string> gone;
  for (const auto& [cid, s] : seen_)
    if (!present.contains(cid)) gone.push_back(cid);
  for (const auto& cid : gone) scan_dir(cid);
}

void process_watch::run() {
  auto next_scan = clock::now() + scan_interval_;
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_scan - clock::now()).count();
    pollfd fds[2] = {{wake_, POLLIN, 0}, {inotify_, POLLIN, 0}};
    const int n = ::poll(fds, inotify_ >= 0 ? 2 : 1, static_cast<int>(std::max<long long>(left, 0)));
    if (fds[0].revents & POLLIN) return;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      std::set<std::string> dirty;
      bool rescan = false;
      for (;;) {
        const ssize_t len = ::read(inotify_, buf, sizeof buf);
        if (len <= 0) break;
        for (char* p = buf; p < buf + len;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          if (ev->mask & IN_Q_OVERFLOW) rescan = true;
          if (ev->wd == root_wd_) {
            if (ev->len > 0) dirty.insert(ev->name);
            continue;
          }
          if (ev->mask & IN_IGNORED) {
            if (auto it = wd_to_id_.find(ev->wd); it != wd_to_id_.end()) {
              watched_.erase(it->second);
              dirty.insert(it->second);
              wd_to_id_.erase(it);
            }
            continue;
          }
          if (auto it = wd_to_id_.find(ev->wd); it != wd_to_id_.end()) {
            const std::string_view name = ev->len > 0 ? std::string_view(ev->name) : std::string_view();
            // Only the files that change a container's state matter (not its log).
            if (name.empty() || name == "state.json" || name == "runtime.json" || name == "lock")
              dirty.insert(it->second);
          }
        }
      }
      if (rescan) {
        scan_all();
      } else {
        for (const auto& cid : dirty) {
          if (!valid_container_id(cid)) continue;
          add_watch(cid);
          scan_dir(cid);
        }
      }
    }
    if (clock::now() >= next_scan) {
      scan_all();
      next_scan = clock::now() + scan_interval_;
    }
  }
}

}  // namespace

std::unique_ptr<ports::container_runtime> make_process_runtime(process_runtime_options options) {
  return std::make_unique<process_runtime>(std::move(options));
}

}  // namespace atrium::process_adapter
