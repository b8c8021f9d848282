#include "adapters/process/script_executor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "adapters/process/csv_reader.hpp"
#include "events/text.hpp"

namespace atrium::process_adapter {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;
using ports::job_outcome;

namespace {

// --- small POSIX helpers ----------------------------------------------------------

/// An owned file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  [[nodiscard]] int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

/// A pipe whose ends are both at fd 3 or above (so that dup2 onto 0–2 in the child never
/// clobbers the other end) and close-on-exec; the read end is non-blocking.
result<std::pair<unique_fd, unique_fd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail(errc::unavailable, "pipe: " + errno_text(errno));
  unique_fd r(p[0]), w(p[1]);
  for (unique_fd* end : {&r, &w}) {
    if (end->get() < 3) {
      const int moved = ::fcntl(end->get(), F_DUPFD_CLOEXEC, 3);
      if (moved < 0) return fail(errc::unavailable, "fcntl: " + errno_text(errno));
      *end = unique_fd(moved);
    }
  }
  ::fcntl(r.get(), F_SETFL, ::fcntl(r.get(), F_GETFL) | O_NONBLOCK);
  return std::pair{std::move(r), std::move(w)};
}

/// `name` in the first directory of `search_path` (colon-separated) that holds an
/// executable regular file of that name; empty if none.
fs::path find_program(const std::string& name, const std::string& search_path) {
  std::stringstream dirs(search_path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

/// One resource limit of the child (setrlimit(2)).
struct limit {
  int resource;
  rlim_t soft;
  rlim_t hard;
};

/// What the child becomes: the program, its arguments and environment, its cwd and its
/// resource limits (each lowered to the parent's hard limit, which it cannot exceed).
struct spawn_request {
  std::string program;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  std::vector<limit> limits;
};

/// The child's side of fork(): only async-signal-safe calls (the parent may have other
/// threads, holding locks the child would never see released), then execve.
[[noreturn]] void exec_child(const spawn_request& req, char* const* argv, char* const* envp, int devnull, int out_w,
                             int err_w, int report_w, pid_t parent, int max_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);  // ignored signals would survive execve
  ::setsid();                                                   // own session and process group, no tty
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::dup2(devnull, 0);
  ::dup2(out_w, 1);
  ::dup2(err_w, 2);
  int err = 0;
  if (!req.cwd.empty() && ::chdir(req.cwd.c_str()) != 0) err = errno;
  for (const limit& l : req.limits) {
    if (err != 0) break;
    const rlimit lim{l.soft, l.hard};
    if (::setrlimit(l.resource, &lim) != 0) err = errno;
  }
  if (err == 0) {
    // Nothing of the parent's leaks into the script (close_range's flag needs Linux 5.11).
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    ::execve(req.program.c_str(), argv, envp);
    err = errno;
  }
  [[maybe_unused]] auto n = ::write(report_w, &err, sizeof err);
  ::_exit(127);
}

/// Starts `req` with stdout on `out_w` and stderr on `err_w` (stdin /dev/null) in a new
/// session and process group (pgid = pid). Returns the pid once execve succeeded.
/// Errors: `unavailable` (fork, or execve's errno).
result<pid_t> spawn(spawn_request req, int out_w, int err_w) {
  for (limit& l : req.limits) {
    rlimit now{};
    if (::getrlimit(l.resource, &now) != 0 || now.rlim_max == RLIM_INFINITY) continue;
    l.hard = std::min(l.hard, now.rlim_max);
    l.soft = std::min(l.soft, l.hard);
  }
  std::vector<char*> argv, envp;
  for (const auto& a : req.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : req.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  unique_fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) return fail(errc::unavailable, "open /dev/null: " + errno_text(errno));
  auto report = make_pipe();  // execve's errno comes back through it; EOF means it worked
  if (!report) return std::unexpected(report.error());
  ::fcntl(report->first.get(), F_SETFL, 0);
  const pid_t parent = ::getpid();
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  const int max_fd =
      files.rlim_cur == RLIM_INFINITY ? 1 << 20 : static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20));
  const pid_t pid = ::fork();
  if (pid < 0) return fail(errc::unavailable, "fork: " + errno_text(errno));
  if (pid == 0)
    exec_child(req, argv.data(), envp.data(), devnull.get(), out_w, err_w, report->second.get(), parent, max_fd);
  report->second.reset();
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report->first.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return fail(errc::unavailable, "cannot start " + req.program + ": " + errno_text(err));
  }
  return pid;
}

/// The live (not zombie) processes of process group `pgid`, from /proc/<pid>/stat.
std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> members;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (!(rest >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') members.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return members;
}

/// True when no process other than zombies is in process group `pgid` (checked by
/// kill(-pgid, 0) and, while that still finds members, by reading /proc).
bool group_gone(pid_t pgid) {
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return true;
  return group_members(pgid).empty();
}

/// Asks group `pgid` to stop. Under the sandbox the leader is bwrap, which dies at once
/// on SIGTERM and takes its PID namespace with it (SIGKILL for all): the members but
/// the leader get the SIGTERM, so that the script has its grace period too.
void terminate_group(pid_t pgid, bool sandboxed) {
  if (!sandboxed) {
    ::kill(-pgid, SIGTERM);
    return;
  }
  for (const pid_t pid : group_members(pgid)) {
    if (pid != pgid) ::kill(pid, SIGTERM);
  }
}

/// SIGKILLs group `pgid` until no process of it is left (or `deadline` passes: false).
bool kill_group_and_wait(pid_t pgid, clock::time_point deadline) {
  while (true) {
    int status = 0;
    while (::waitpid(-pgid, &status, WNOHANG) > 0) {
    }
    if (group_gone(pgid)) return true;
    ::kill(-pgid, SIGKILL);
    if (clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string signal_text(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  std::string text = "killed by signal " + std::to_string(sig);
  if (abbrev != nullptr) text += std::string(" (SIG") + abbrev;
  switch (sig) {
    case SIGXCPU:
      text += ": CPU time limit reached";
      break;
    case SIGXFSZ:
      text += ": file size limit reached";
      break;
    case SIGKILL:
      text += ": CPU time hard limit, out of memory, or cancelled";
      break;
    default:
      break;
  }
  if (abbrev != nullptr) text += ")";
  return text;
}

/// Removes a work dir a script may have made hard to remove (directories without
/// permissions): on failure, gives every directory in it (never following a symlink)
/// u+rwx and tries again.
void remove_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec) return;
  const std::function<void(const fs::path&)> fix = [&](const fs::path& d) {
    struct stat st {};
    if (::lstat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
    ::chmod(d.c_str(), 0700);
    std::error_code it_ec;
    for (const auto& e : fs::directory_iterator(d, it_ec)) fix(e.path());
  };
  fix(dir);
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("script_executor: cannot remove work dir path={} error={}", dir.string(), ec.message());
}

/// Column types from the first batch of result.csv: `int` when every non-NULL cell is
/// a decimal integer that fits 64 bits, `float` when every one is an integer or a
/// decimal/exponent number, else `text` (also for a column of NULLs only).
std::vector<ports::result_column> infer_columns(const std::vector<std::string>& names, const ports::row_batch& batch) {
  std::vector<ports::result_column> columns;
  for (std::size_t c = 0; c < names.size(); ++c) {
    bool any = false, all_int = true, all_num = true;
    for (std::size_t r = 0; r < batch.rows() && all_num; ++r) {
      const auto& cell = batch.cells[r * batch.columns + c];
      if (!cell) continue;
      any = true;
      const std::string& s = *cell;
      const char* end = s.data() + s.size();
      std::int64_t i = 0;
      const auto ri = std::from_chars(s.data(), end, i);
      if (s.empty() || ri.ec != std::errc{} || ri.ptr != end) all_int = false;
      if (all_int) continue;
      double d = 0;
      const bool charset = std::all_of(s.begin(), s.end(), [](char ch) {
        return (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == 'e' || ch == 'E';
      });
      const auto rd = std::from_chars(s.data(), end, d);
      if (s.empty() || !charset || rd.ec != std::errc{} || rd.ptr != end) all_num = false;
    }
    columns.push_back({names[c], !any ? "text" : all_int ? "int" : all_num ? "float" : "text"});
  }
  return columns;
}

/// Wakes the attempt's poll loop from the thread that calls `cancel_signal::request`.
/// Shared with the registered interrupter, so the eventfd stays open as long as a copy
/// of that function may still run.
struct waker {
  unique_fd fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  void notify() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd.get(), &one, sizeof one);
  }
  void drain() const {
    std::uint64_t v = 0;
    [[maybe_unused]] auto n = ::read(fd.get(), &v, sizeof v);
  }
};

bool valid_job_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
  });
}

}  // namespace

// --- one attempt ----------------------------------------------------------------------

namespace {

/// One run of one script: work dir, child, poll loop, outcome, CSV import, clean-up.
class attempt {
 public:
  attempt(const script_executor_options& options, std::vector<std::string> sandbox_prefix, const ports::job_spec& spec,
          ports::result_writer& out, const ports::progress_fn& progress, ports::cancel_signal& cancel)
      : options_(options),
        sandbox_prefix_(std::move(sandbox_prefix)),
        spec_(spec),
        out_(out),
        progress_(progress),
        cancel_(cancel) {}

  job_outcome run(const fs::path& work_dir) {
    work_dir_ = work_dir;
    if (auto ok = prepare(); !ok) {
      dir_fd_.reset();
      remove_tree(work_dir_);
      return job_outcome::failed(ok.error().message);
    }
    auto waker_ptr = std::make_shared<waker>();
    waker_ = waker_ptr;
    cancel_.on_request([waker_ptr] { waker_ptr->notify(); });
    job_outcome outcome = cancel_.requested() ? job_outcome::interrupted() : execute();
    cancel_.on_request({});
    dir_fd_.reset();
    remove_tree(work_dir_);
    return outcome;
  }

 private:
  /// A fresh work dir (an earlier attempt's leftover is removed) holding the script.
  result<void> prepare() {
    remove_tree(work_dir_);
    if (::mkdir(work_dir_.c_str(), 0700) != 0)
      return fail(errc::unavailable, "cannot create the work dir: " + errno_text(errno));
    dir_fd_ = unique_fd(::open(work_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dir_fd_.get() < 0) return fail(errc::unavailable, "cannot open the work dir: " + errno_text(errno));
    script_name_ = spec_.language == "python" ? "script.py" : "script.sh";
    unique_fd f(::openat(dir_fd_.get(), script_name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    std::string_view rest = spec_.source;
    while (f.get() >= 0 && !rest.empty()) {
      const ssize_t n = ::write(f.get(), rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail(errc::unavailable, "cannot write the script: " + errno_text(errno));
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (f.get() < 0) return fail(errc::unavailable, "cannot write the script: " + errno_text(errno));
    return {};
  }

  spawn_request request() const {
    spawn_request req;
    const bool python = spec_.language == "python";
    const std::vector<std::string> command =
        python ? std::vector<std::string>{options_.python.string(), "-I", "-u", script_name_}
               : std::vector<std::string>{options_.bash.string(), script_name_};
    req.cwd = work_dir_.string();
    if (sandbox_prefix_.empty()) {
      req.program = command[0];
      req.argv = command;
      req.env = {"PATH=/usr/bin:/bin", "HOME=" + req.cwd, "TMPDIR=" + req.cwd, "LANG=C.UTF-8"};
    } else {
      req.program = sandbox_prefix_[0];
      req.argv = sandbox_prefix_;
      req.argv.insert(req.argv.end(), command.begin(), command.end());
      req.env = {"PATH=/usr/bin:/bin"};  // bwrap's own; the script's is set by --clearenv/--setenv
    }
    const auto cpu = static_cast<rlim_t>(std::max<std::int64_t>(1, (spec_.timeout + options_.cpu_margin).count()));
    // RLIMIT_CPU's hard limit comes 2 s after the soft one, so that SIGXCPU comes first.
    req.limits = {{RLIMIT_CPU, cpu, cpu + 2},
                  {RLIMIT_AS, options_.max_address_space, options_.max_address_space},
                  {RLIMIT_FSIZE, options_.max_file_size, options_.max_file_size},
                  {RLIMIT_NPROC, options_.max_processes, options_.max_processes},
                  {RLIMIT_NOFILE, options_.max_open_files, options_.max_open_files},
                  {RLIMIT_CORE, 0, 0}};
    return req;
  }

  job_outcome execute() {
    const auto& interpreter = spec_.language == "python" ? options_.python : options_.bash;
    if (interpreter.empty())
      return job_outcome::failed((spec_.language == "python" ? "python3" : "bash") + std::string(" is not installed"));
    auto out_pipe = make_pipe();
    auto err_pipe = make_pipe();
    if (!out_pipe || !err_pipe) return job_outcome::failed("cannot start the script: no pipe");
    start_ = clock::now();
    auto pid = spawn(request(), out_pipe->second.get(), err_pipe->second.get());
    out_pipe->second.reset();
    err_pipe->second.reset();
    if (!pid) return job_outcome::failed(pid.error().message);
    pid_ = *pid;
    out_fd_ = std::move(out_pipe->first);
    err_fd_ = std::move(err_pipe->first);
    pidfd_ = unique_fd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    pump();
    if (!kill_group_and_wait(pid_, clock::now() + std::chrono::seconds(5)))
      spdlog::warn("script_executor: processes of the group outlive the script job={} pgid={}", spec_.job_id, pid_);
    if (dropped_ > 0 && !store_error_) {
      auto ok = out_.append_log("\n[atrium: " + std::to_string(dropped_) + " more bytes of output dropped]\n");
      if (!ok) store_error_ = ok.error().message;
    }
    report(0, output_bytes_);
    return conclude();
  }

  /// Reads both pipes until the script has exited and they are drained, reacting to
  /// cancellation and reporting progress.
  void pump() {
    auto next_progress = start_ + options_.progress_interval;
    std::optional<clock::time_point> kill_at, drain_until;
    bool killed = false;
    while (true) {
      pollfd fds[4];
      int n = 0;
      for (int fd : {out_fd_.get(), err_fd_.get(), waker_->fd.get(), exited_ ? -1 : pidfd_.get()}) {
        if (fd >= 0) fds[n++] = pollfd{fd, POLLIN, 0};
      }
      auto now = clock::now();
      auto wait = std::chrono::milliseconds(100);
      for (const auto& t : {std::optional(next_progress), kill_at, drain_until}) {
        if (t)
          wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(std::max(*t - now, clock::duration{})));
      }
      ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(wait.count()));
      read_pipe(out_fd_, false);
      read_pipe(err_fd_, true);
      waker_->drain();
      now = clock::now();
      if (!exited_ && !cancelled_ && cancel_.requested()) {
        cancelled_ = true;
        terminate_group(pid_, !sandbox_prefix_.empty());
        kill_at = now + options_.grace;
      }
      if (!exited_ && store_error_ && !kill_at && !killed) kill_at = now;  // the result cannot be kept: stop
      if (kill_at && now >= *kill_at) {
        ::kill(-pid_, SIGKILL);
        kill_at.reset();
        killed = true;
      }
      if (!exited_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) {
        exited_ = true;
        ::kill(-pid_, SIGKILL);  // what the script left running; it cannot outlive the job
        drain_until = now + std::chrono::seconds(1);
      }
      if (now >= next_progress) {
        report(0, output_bytes_);
        next_progress = now + options_.progress_interval;
      }
      if (exited_ && ((out_fd_.get() < 0 && err_fd_.get() < 0) || now >= *drain_until)) break;
    }
    out_fd_.reset();
    err_fd_.reset();
  }

  /// Reads what `fd` has now (a bounded amount per call, for fairness); closes it at EOF.
  void read_pipe(unique_fd& fd, bool is_stderr) {
    char buf[64 * 1024];
    for (int i = 0; i < 16 && fd.get() >= 0; ++i) {
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        fd.reset();
        return;
      }
      on_output(std::string_view(buf, static_cast<std::size_t>(n)), is_stderr);
    }
  }

  void on_output(std::string_view data, bool is_stderr) {
    output_bytes_ += data.size();
    if (is_stderr) {
      stderr_tail_.append(data);
      if (stderr_tail_.size() > 8192) stderr_tail_.erase(0, stderr_tail_.size() - 4096);
    }
    const std::uint64_t room = options_.max_log_bytes > log_kept_ ? options_.max_log_bytes - log_kept_ : 0;
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(room, data.size()));
    if (take > 0 && !store_error_) {
      auto ok = out_.append_log(data.substr(0, take));
      if (!ok) store_error_ = ok.error().message;
    }
    log_kept_ += take;
    dropped_ += data.size() - take;
  }

  void report(std::uint64_t rows, std::uint64_t bytes) {
    if (!progress_) return;
    progress_(ports::job_progress{rows, bytes, std::nullopt,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start_)});
  }

  /// The last non-empty line of stderr, valid UTF-8, at most 1000 bytes.
  std::string last_stderr_line() const {
    std::string_view s = stderr_tail_;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
    const auto nl = s.rfind('\n');
    if (nl != std::string_view::npos) s.remove_prefix(nl + 1);
    return truncate_utf8(repair_utf8(s), 1000);
  }

  job_outcome conclude() {
    if (cancelled_) return job_outcome::interrupted();
    if (store_error_) return job_outcome::failed("result store: " + *store_error_);
    if (WIFSIGNALED(status_)) return job_outcome::failed(signal_text(WTERMSIG(status_)));
    const int code = WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    // bwrap reports its command's death by signal S as exit status 128 + S.
    if (!sandbox_prefix_.empty() && code > 128 && code < 128 + NSIG)
      return job_outcome::failed(signal_text(code - 128));
    if (code != 0) {
      const std::string line = last_stderr_line();
      return job_outcome::failed("exit status " + std::to_string(code) + (line.empty() ? "" : ": " + line));
    }
    return import_csv();
  }

  job_outcome import_csv();

  const script_executor_options& options_;
  std::vector<std::string> sandbox_prefix_;
  const ports::job_spec& spec_;
  ports::result_writer& out_;
  const ports::progress_fn& progress_;
  ports::cancel_signal& cancel_;

  fs::path work_dir_;
  unique_fd dir_fd_;
  std::string script_name_;
  std::shared_ptr<waker> waker_;
  clock::time_point start_ = clock::now();
  pid_t pid_ = -1;
  unique_fd out_fd_, err_fd_, pidfd_;
  int status_ = 0;
  bool exited_ = false;
  bool cancelled_ = false;
  std::optional<std::string> store_error_;
  std::uint64_t output_bytes_ = 0, log_kept_ = 0, dropped_ = 0;
  std::string stderr_tail_;
};

/// Streams `result.csv` (if the script left one) into the writer in batches of
/// `batch_rows`; the first batch decides the column types (infer_columns).
job_outcome attempt::import_csv() {
  unique_fd fd(::openat(dir_fd_.get(), "result.csv", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return job_outcome::succeeded();
    if (errno == ELOOP) return job_outcome::failed("result.csv is a symbolic link");
    return job_outcome::failed("cannot open result.csv: " + errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return job_outcome::failed("result.csv is not a regular file");
  csv_reader reader(csv_limits{options_.max_columns, options_.max_field_bytes});
  bool begun = false;
  auto flush = [&](bool last) -> result<void> {
    auto& batch = reader.batch();
    if (!reader.header() || (!last && batch.rows() < options_.batch_rows)) return {};
    if (!begun) {
      if (auto ok = out_.begin(infer_columns(*reader.header(), batch)); !ok) return ok;
      begun = true;
    }
    if (batch.rows() > 0) {
      if (auto kept = out_.append(batch); !kept) return std::unexpected(kept.error());
    }
    batch.clear();
    report(out_.rows(), out_.bytes());
    return {};
  };
  std::string buf(64 * 1024, '\0');
  while (!out_.full()) {
    if (cancel_.requested()) return job_outcome::interrupted();
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return job_outcome::failed("cannot read result.csv: " + errno_text(errno));
    const bool last = n == 0;
    auto parsed = last ? reader.finish() : reader.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    if (!parsed) return job_outcome::failed(parsed.error().message);
    if (auto ok = flush(last); !ok) return job_outcome::failed("result store: " + ok.error().message);
    if (last) break;
  }
  return job_outcome::succeeded();
}

}  // namespace

// --- the executor -----------------------------------------------------------------------

std::vector<std::string> script_executor::sandbox_base() const {
  // --cap-drop ALL: bwrap started by root keeps root's capabilities unless told, and
  // CAP_SYS_ADMIN would let the script mount its way out of the sandbox's view.
  std::vector<std::string> args{
      options_.bwrap.string(), "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"};
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    const auto st = fs::symlink_status(dir, ec);
    if (ec) continue;
    if (fs::is_symlink(st)) {
      args.insert(args.end(), {"--symlink", fs::read_symlink(dir, ec).string(), dir});
    } else if (fs::is_directory(st)) {
      args.insert(args.end(), {"--ro-bind", dir, dir});
    }
  }
  for (const auto& entry : etc_entries()) args.insert(args.end(), {"--ro-bind-try", entry, entry});
  args.insert(args.end(), {"--proc", "/proc", "--dev", "/dev"});
  for (const auto& hidden : hidden_inside_) {
    std::error_code ec;
    if (fs::is_directory(hidden, ec)) {
      args.insert(args.end(), {"--tmpfs", hidden.string()});
    } else {
      args.insert(args.end(), {"--ro-bind", "/dev/null", hidden.string()});
    }
  }
  return args;
}

std::vector<std::string> script_executor::sandbox_args(const fs::path& work_dir) const {
  std::vector<std::string> args = sandbox_base_;
  args.insert(args.end(), {"--bind", work_dir.string(), "/job", "--chdir", "/job", "--clearenv", "--setenv", "PATH",
                           "/usr/bin:/bin", "--setenv", "HOME", "/job", "--setenv", "TMPDIR", "/job", "--setenv",
                           "LANG", "C.UTF-8", "--"});
  return args;
}

std::vector<std::string> script_executor::etc_entries() {
  std::vector<std::string> entries;
  for (const char* name : {"alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group",
                           "nsswitch.conf", "hosts", "mime.types"}) {
    entries.push_back(std::string("/etc/") + name);
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/etc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("python3")) entries.push_back(e.path().string());
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

bool script_executor::probe_sandbox(std::string& why) const {
  const fs::path true_program = find_program("true", options_.search_path);
  const fs::path dir = options_.work_root / ("probe-" + std::to_string(::getpid()));
  remove_tree(dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  spawn_request req;
  req.argv = sandbox_args(dir);
  req.argv.push_back(true_program.empty() ? "/usr/bin/true" : true_program.string());
  req.program = req.argv[0];
  req.env = {"PATH=/usr/bin:/bin"};
  auto pipe = make_pipe();
  if (!pipe) {
    why = pipe.error().message;
    return false;
  }
  auto pid = spawn(req, pipe->second.get(), pipe->second.get());
  pipe->second.reset();
  if (!pid) {
    why = pid.error().message;
    remove_tree(dir);
    return false;
  }
  std::string output;
  const auto deadline = clock::now() + std::chrono::seconds(10);
  char buf[4096];
  bool eof = false;
  while (!eof && clock::now() < deadline) {
    pollfd p{pipe->first.get(), POLLIN, 0};
    ::poll(&p, 1, 100);
    const ssize_t n = ::read(pipe->first.get(), buf, sizeof buf);
    eof = n == 0;
    if (n > 0 && output.size() < 4096) output.append(buf, static_cast<std::size_t>(n));
  }
  if (!eof) ::kill(-*pid, SIGKILL);  // a probe that hangs fails
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  kill_group_and_wait(*pid, clock::now() + std::chrono::seconds(5));
  remove_tree(dir);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  while (!output.empty() && output.back() == '\n') output.pop_back();
  why = "bwrap failed (status " + std::to_string(status) + "): " + repair_utf8(output);
  return false;
}

result<std::unique_ptr<script_executor>> script_executor::create(script_executor_options options) {
  if (options.work_root.empty()) return fail(errc::invalid_argument, "script executor: the work root is empty");
  std::error_code ec;
  fs::create_directories(options.work_root, ec);
  if (ec)
    return fail(errc::unavailable,
                "script executor: cannot create " + options.work_root.string() + ": " + ec.message());
  fs::permissions(options.work_root, fs::perms::owner_all, ec);
  options.work_root = fs::canonical(options.work_root, ec);
  if (ec) return fail(errc::unavailable, "script executor: " + ec.message());
  if (options.python.empty()) options.python = find_program("python3", options.search_path);
  if (options.bash.empty()) options.bash = find_program("bash", options.search_path);
  if (options.bwrap.empty()) options.bwrap = find_program("bwrap", options.search_path);
  if (options.python.empty()) spdlog::warn("script_executor: python3 not found search_path={}", options.search_path);
  if (options.bash.empty()) spdlog::warn("script_executor: bash not found search_path={}", options.search_path);

  std::unique_ptr<script_executor> self(new script_executor(std::move(options)));
  auto& o = self->options_;
  // A hidden path under a bound system path gets covered; one that contains a bound
  // path cannot be hidden without breaking the sandbox, so it is refused.
  std::vector<fs::path> bound{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
  for (const auto& e : etc_entries()) bound.emplace_back(e);
  for (const auto& h : o.hidden_paths) {
    fs::path hidden = fs::weakly_canonical(h, ec);
    if (ec || !hidden.is_absolute())
      return fail(errc::invalid_argument, "script executor: bad hidden path " + h.string());
    if (!hidden.has_filename()) hidden = hidden.parent_path();
    for (const auto& b : bound) {
      const auto [hi, bi] = std::mismatch(hidden.begin(), hidden.end(), b.begin(), b.end());
      if (hi == hidden.end()) {
        return fail(errc::invalid_argument,
                    "script executor: hidden path " + hidden.string() + " contains the sandbox's " + b.string());
      }
      if (bi == b.end()) self->hidden_inside_.push_back(hidden);  // visible through b: cover it
    }
  }
  if (o.sandbox == sandbox_mode::never) {
    spdlog::info("script_executor: sandbox=off (mode never) work_root={}", o.work_root.string());
    return self;
  }
  self->sandbox_base_ = self->sandbox_base();
  std::string why = "bwrap not found on " + o.search_path;
  if (!o.bwrap.empty() && self->probe_sandbox(why)) {
    self->sandboxed_ = true;
    spdlog::info("script_executor: sandbox=bwrap path={} work_root={}", o.bwrap.string(), o.work_root.string());
    return self;
  }
  if (o.sandbox == sandbox_mode::always) return fail(errc::unavailable, "script executor: no sandbox: " + why);
  spdlog::warn("script_executor: sandbox=off reason=\"{}\" (scripts run unsandboxed; hidden paths are readable)", why);
  return self;
}

job_outcome script_executor::run(const ports::job_spec& spec, ports::result_writer& out,
                                 const ports::progress_fn& progress, ports::cancel_signal& cancel) {
  try {
    if (spec.kind != "script") return job_outcome::failed("the script executor cannot run a job of kind " + spec.kind);
    if (spec.language != "python" && spec.language != "bash")
      return job_outcome::failed("unknown script language: " + spec.language);
    if (!valid_job_id(spec.job_id)) return job_outcome::failed("invalid job id");
    const fs::path work_dir = options_.work_root / (spec.job_id + "-" + std::to_string(spec.attempt));
    attempt a(options_, sandboxed_ ? sandbox_args(work_dir) : std::vector<std::string>{}, spec, out, progress, cancel);
    const auto started = clock::now();
    job_outcome outcome = a.run(work_dir);
    // The error text is not logged: it may quote the script's output.
    spdlog::info("script_executor: job={} attempt={} language={} sandbox={} outcome={} duration_ms={}", spec.job_id,
                 spec.attempt, spec.language, sandboxed_ ? "bwrap" : "off",
                 outcome.state == job_outcome::status::succeeded ? "succeeded"
                 : outcome.state == job_outcome::status::failed  ? "failed"
                                                                 : "interrupted",
                 std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started).count());
    return outcome;
  } catch (const std::exception& e) {
    return job_outcome::failed(std::string("script executor: ") + e.what());
  }
}

}  // namespace atrium::process_adapter
