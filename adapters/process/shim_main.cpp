// atrium-shim: the supervisor of one `process` runtime container (as containerd-shim or
// conmon are for their runtimes). The adapter (container_runtime.cpp) starts it with
//
//   atrium-shim <container_dir> <ready_fd>
//
// in a session of its own; it forks once more (the adapter reaps the first process at
// once, so the shim belongs to init, not atriumd, and outlives an atriumd SIGKILL), takes
// the directory's `lock`, reads `runtime.json`, and runs the container's command as its
// child in a new session and process group (setsid), working dir = the container dir,
// stdin /dev/null, stdout+stderr into a pipe, its environment built from scratch
// (container_environment), its rlimits set. Then it
//   - writes `state.json` (running: pid, /proc start time) and `ok <pid>` to ready_fd, or
//     `error <text>` when the command cannot be executed;
//   - copies the output into the rotated log (lines ≤ 16 KiB);
//   - when the process ends (pidfd): SIGKILLs what is left of its process group and of
//     its cgroup, drains the pipe (≤ 500 ms), writes `state.json` (exited: exit code,
//     128+N for signal N, reason `exited`|`killed`|`oom`), removes the cgroup and exits.
// Limits: a cgroup (container_cgroup.hpp) when `runtime.json` allows it and one can be
// made, the process joining it before execve; otherwise setrlimit (RLIMIT_AS for memory,
// RLIMIT_NPROC for pids; no CPU limit).
// SIGTERM/SIGINT/SIGHUP to the shim are forwarded to the container's process group.
// Files: see container_files.hpp.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "adapters/process/container_cgroup.hpp"
#include "adapters/process/container_files.hpp"

namespace {

using namespace atrium::process_adapter;

volatile sig_atomic_t child_pid = 0;

void forward(int sig) {
  if (child_pid > 0) ::kill(-child_pid, sig);
}

void say(int fd, const std::string& text) {
  if (fd < 0) return;
  const std::string line = text + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: atrium-shim <container_dir> <ready_fd>\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  int ready = std::atoi(argv[2]);
  if (ready < 3) ready = -1;
  // Nothing of atriumd's descriptors but the ready pipe stays open.
  for (int fd = 3; fd < 1024; ++fd)
    if (fd != ready) ::close(fd);
  ::signal(SIGPIPE, SIG_IGN);

  // Detach: the adapter waits for this first process; the second is the shim.
  const pid_t detached = ::fork();
  if (detached < 0) {
    say(ready, std::string("error fork: ") + std::strerror(errno));
    return 1;
  }
  if (detached > 0) return 0;

  // The lock: exactly one shim per container dir. The adapter may hold it shared for a
  // moment while it checks liveness, so retry for a second.
  const int lock = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  bool locked = false;
  for (int i = 0; lock >= 0 && i < 100 && !locked; ++i) {
    locked = ::flock(lock, LOCK_EX | LOCK_NB) == 0;
    if (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!locked) {
    say(ready, "busy another supervisor runs for this container");
    return 1;
  }
  const auto text = read_file(dir / "runtime.json", 1 << 20);
  if (!text) {
    say(ready, "error " + text.error().message);
    return 1;
  }
  const auto spec = decode_runtime(*text);
  if (!spec) {
    say(ready, "error " + spec.error().message);
    return 1;
  }
  state_record state;
  state.runtime_id = spec->runtime_id;
  state.shim_pid = ::getpid();
  if (auto old = read_file(dir / "state.json", 64 * 1024)) {
    if (auto prev = decode_state(*old); prev && prev->runtime_id == spec->runtime_id) state.start = prev->start;
  }
  ++state.start;

  auto log = log_writer::open(dir, spec->log);
  if (!log) {
    say(ready, "error " + log.error().message);
    return 1;
  }

  // Everything the child needs, prepared before fork.
  const auto env = container_environment(*spec, dir);
  const auto program = resolve_program(spec->command[0], env);
  const auto finish = [&](std::optional<int> code, std::string reason, std::string error) {
    state.running = false;
    state.exit_code = code;
    state.reason = std::move(reason);
    state.error = std::move(error);
    state.finished_at_ms = unix_ms_now();
    (void)write_file_atomic(dir / "state.json", encode(state));
  };
  if (!program) {
    finish(127, "exited", "executable not found: " + spec->command[0]);
    say(ready, "error executable not found: " + spec->command[0]);
    return 0;
  }
  std::vector<char*> argv_c;
  for (const auto& a : spec->command) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  struct limit {
    int resource;
    rlim_t value;
  };
  std::vector<limit> limits;
  cgroup_set cgroup;
  if (spec->cgroups) {
    auto made = create_cgroup(spec->instance, spec->container_id, {spec->memory_bytes, spec->cpus, spec->pids});
    if (made) cgroup = std::move(*made);  // else: no usable hierarchy, rlimits below
  }
  std::vector<std::string> procs_files;
  for (const auto& d : cgroup.dirs) procs_files.push_back(d + "/cgroup.procs");
  std::vector<const char*> procs_paths;
  for (const auto& p : procs_files) procs_paths.push_back(p.c_str());
  if (cgroup.kind == cgroup_set::version::none) {
    if (spec->memory_bytes) limits.push_back({RLIMIT_AS, static_cast<rlim_t>(*spec->memory_bytes)});
    if (spec->pids) limits.push_back({RLIMIT_NPROC, static_cast<rlim_t>(*spec->pids)});
    state.limits_by = "rlimit";
  } else {
    state.limits_by = cgroup.kind == cgroup_set::version::v2 ? "cgroup-v2" : "cgroup-v1";
    state.cgroups = cgroup.dirs;
  }
  const std::uint64_t oom_before = cgroup_oom_kills(cgroup);

  int out[2];
  int report[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(report, O_CLOEXEC) != 0) {
    say(ready, std::string("error pipe: ") + std::strerror(errno));
    return 1;
  }
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid < 0) {
    say(ready, std::string("error fork: ") + std::strerror(errno));
    return 1;
  }
  if (pid == 0) {
    ::setsid();
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int err = 0;
    if (::chdir(dir.c_str()) != 0) err = errno;
    if (!err) err = join_cgroup(procs_paths);
    if (!err && (::dup2(devnull, 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(out[1], 2) < 0)) err = errno;
    for (const auto& l : limits) {
      const rlimit r{l.value, l.value};
      if (!err && ::setrlimit(l.resource, &r) != 0) err = errno;
    }
    if (!err) {
      ::execve(program->c_str(), argv_c.data(), envp.data());
      err = errno;
    }
    [[maybe_unused]] auto n = ::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  child_pid = pid;
  ::close(out[1]);
  ::close(report[1]);
  ::close(devnull);
  int exec_err = 0;
  ssize_t got;
  do got = ::read(report[0], &exec_err, sizeof exec_err);
  while (got < 0 && errno == EINTR);
  ::close(report[0]);
  if (got == static_cast<ssize_t>(sizeof exec_err)) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::string why = "cannot execute " + spec->command[0] + ": " + std::strerror(exec_err);
    log->write_line("atrium-shim: " + why);
    destroy_cgroup(cgroup, 2000);
    finish(127, "exited", why);
    say(ready, "error " + why);
    return 0;
  }

  struct sigaction sa {};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);

  state.running = true;
  state.pid = pid;
  state.pid_start = process_start_ticks(pid).value_or(0);
  state.started_at_ms = unix_ms_now();
  if (auto w = write_file_atomic(dir / "state.json", encode(state)); !w) {
    ::kill(-pid, SIGKILL);
    say(ready, "error " + w.error().message);
    int status = 0;
    ::waitpid(pid, &status, 0);
    destroy_cgroup(cgroup, 2000);
    return 1;
  }
  say(ready, "ok " + std::to_string(pid));
  if (ready >= 0) ::close(ready);
  // Our own stdio goes nowhere useful; make sure writes to it never block or kill us.
  const int null_rw = ::open("/dev/null", O_RDWR);
  if (null_rw >= 0) {
    ::dup2(null_rw, 0);
    ::dup2(null_rw, 1);
    ::dup2(null_rw, 2);
    if (null_rw > 2) ::close(null_rw);
  }

  const int pidfd = pidfd_open(pid);
  line_splitter splitter;
  const auto emit = [&](std::string_view line) { log->write_line(line); };
  int output = out[0];
  auto last_data = std::chrono::steady_clock::now();
  int status = 0;
  bool exited = false;
  char buf[65536];
  while (!exited) {
    pollfd fds[2] = {{output, POLLIN, 0}, {pidfd, POLLIN, 0}};
    const int n = ::poll(fds, 2, pidfd < 0 ? 100 : 250);
    if (n < 0 && errno != EINTR) break;
    if (output >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t r = ::read(output, buf, sizeof buf);
      if (r > 0) {
        splitter.feed({buf, static_cast<std::size_t>(r)}, emit);
        last_data = std::chrono::steady_clock::now();
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(output);
        output = -1;
      }
    }
    // A partial line (a prompt, progress without newline) is written after 250 ms of quiet.
    if (splitter.pending() && std::chrono::steady_clock::now() - last_data > std::chrono::milliseconds(250))
      splitter.flush(emit);
    if (pidfd < 0 || (fds[1].revents & POLLIN)) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) exited = true;
    }
  }
  if (!exited) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  child_pid = 0;
  // The main process ended: nothing of its group, or of its cgroup, may outlive it.
  ::kill(-pid, SIGKILL);
  const bool oom = cgroup_oom_kills(cgroup) > oom_before;
  destroy_cgroup(cgroup, 2000);
  if (output >= 0) {
    ::fcntl(output, F_SETFL, O_NONBLOCK);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{output, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t r = ::read(output, buf, sizeof buf);
      if (r <= 0) break;
      splitter.feed({buf, static_cast<std::size_t>(r)}, emit);
    }
    ::close(output);
  }
  splitter.flush(emit);
  if (WIFEXITED(status)) {
    finish(WEXITSTATUS(status), "exited", "");
  } else if (WIFSIGNALED(status)) {
    finish(128 + WTERMSIG(status), oom && WTERMSIG(status) == SIGKILL ? "oom" : "killed", "");
  } else {
    finish(std::nullopt, "lost", "waitpid failed");
  }
  return 0;
}
