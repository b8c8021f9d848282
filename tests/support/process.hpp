#pragma once
/// Test support: a temp directory removed on destruction, and a child process
/// (the real atriumd) started with posix_spawn and stopped by its PID.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace atrium::test {

/// A TCP port free on 127.0.0.1 right now: bound to port 0, read back and released (a
/// server started with it next may still lose a race; tests that can, pass port 0).
/// Throws std::runtime_error when no socket can be bound.
int free_port();

/// A fresh directory under the system temp dir; removed recursively on destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A running child process; killed (SIGKILL) on destruction if still running.
class child_process {
 public:
  /// Starts `argv[0]` with the arguments and extra environment variables; stdout and
  /// stderr go to `log_file`. Throws std::runtime_error if it cannot start.
  child_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                const std::filesystem::path& log_file);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Sends `signal` and waits up to `timeout` for the exit; returns the exit status as
  /// from waitpid (or -1 on timeout, after which the process is SIGKILLed).
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// True while the process has not exited.
  [[nodiscard]] bool running();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

/// The outcome of a process run to completion by `run_process`.
struct process_output {
  int exit_code = -1;  ///< its exit status; -1 if a signal ended it or it timed out
  std::string out;     ///< everything it wrote to stdout
  std::string err;     ///< everything it wrote to stderr
};

/// Runs `argv[0]` (looked up in PATH when it has no slash) with the arguments (stdin from /dev/null, the environment
/// inherited) until it exits, capturing stdout and stderr through temp files (no pipe to fill). After `timeout` it is
/// SIGKILLed and `exit_code` is -1. Throws std::runtime_error if it cannot start.
[[nodiscard]] process_output run_process(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(120));

/// Polls `pred` every 20 ms until it returns true or `timeout` passes.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace atrium::test
