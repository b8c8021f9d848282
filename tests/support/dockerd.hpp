#pragma once
/// Test support: a throwaway Docker daemon of the test's own (Debian's `docker.io`, run
/// as root), on its own socket, data root and exec root in a temp dir
/// (/tmp/atrium-dockerd-XXXXXX), with the host's network only (`--bridge=none
/// --iptables=false --ip6tables=false`), as ../../docs/containers-docker.md describes:
///
///   dockerd --data-root T/root --exec-root T/exec -H unix://T/docker.sock --pidfile T/pid
///           --bridge=none --iptables=false --ip6tables=false
///           --default-ulimit nofile=20000:20000 --default-ulimit nproc=4096:4096
///           [--storage-driver vfs   when the default (overlay2) does not start]
///
/// Its log is T/dockerd.log. `stop()` (and the destructor) removes every container left,
/// stops dockerd by its pid (SIGTERM, SIGKILL after 20 s), unmounts what it left mounted
/// under T (netns, overlay) and removes T. No Beast, no adapter: the API is spoken with
/// plain HTTP/1.0 over the socket, so any test can use it.
///
/// Where dockerd cannot run (not root, not installed, no usable storage driver) `start`
/// returns nullptr with the reason, and the test calls `skip_test(reason)`.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace atrium::test {

/// An answer of the daemon.
struct docker_reply {
  int status = 0;     ///< HTTP status; 0 when the daemon could not be reached
  std::string body;   ///< the whole body
  std::string error;  ///< why there is no answer (status 0)
};

class dockerd {
 public:
  /// Starts a daemon and waits (up to 60 s) for `GET /_ping`. nullptr with `*why_not`
  /// set when it cannot run here.
  static std::unique_ptr<dockerd> start(std::string* why_not);
  ~dockerd();
  dockerd(const dockerd&) = delete;
  dockerd& operator=(const dockerd&) = delete;

  /// `unix:///tmp/atrium-dockerd-…/docker.sock`, for `--docker-host`.
  [[nodiscard]] std::string host() const { return "unix://" + socket().string(); }
  [[nodiscard]] std::filesystem::path socket() const { return dir_ / "docker.sock"; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  /// One API call (`target` such as `/v1.41/containers/json?all=1`) over a new
  /// connection, HTTP/1.0, waiting up to `timeout` for the whole answer.
  [[nodiscard]] docker_reply api(const std::string& method, const std::string& target, const std::string& body = {},
                                 const std::string& content_type = "application/json",
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  /// Imports an image `ref` (`name:tag`) made from Debian's busybox-static: `/bin/busybox`
  /// with symlinks for the usual applets (sh, httpd, sleep, echo, cat, head, tr, printf,
  /// true, false, kill), and `/www/index.html` holding `hello from atrium`. Uses
  /// `POST /images/create?fromSrc=-`. false with `*why` on failure.
  bool import_busybox_image(const std::string& ref, std::string* why);

  /// Stops the daemon (SIGTERM, 20 s) and starts it again on the same directories,
  /// waiting for `/_ping`. Containers stay (stopped). false with `*why` on failure.
  bool restart(std::string* why);

  /// Removes every container, stops the daemon and cleans the temp dir; idempotent.
  void stop();

 private:
  dockerd() = default;
  bool launch(std::string* why);
  void kill_daemon();

  std::filesystem::path dir_;
  std::string storage_driver_;  // "" (default) or "vfs"
  pid_t pid_ = -1;
};

/// Reports a test as skipped: prints `SKIPPED: <why>` to stdout and stderr and exits the
/// process with status 77, which CTest counts as skipped (SKIP_RETURN_CODE 77), never as
/// passed. Catch2 v2 has no SKIP of its own.
[[noreturn]] void skip_test(const std::string& why);

}  // namespace atrium::test
