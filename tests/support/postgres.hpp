#pragma once
/// Test support: a throwaway PostgreSQL server for adapter tests and benchmarks.
///
///   initdb (temp dir, user `options.user`, SCRAM password or trust, --no-sync)
///     ─▶ pg_ctl start -w (127.0.0.1 only, a free port, socket dir = the temp dir)
///     ─▶ … tests connect to 127.0.0.1:port() …
///     ─▶ destructor: pg_ctl stop -m fast, then wait for the postmaster PID (SIGKILL
///        after 30 s); the temp dir is removed.
///
/// initdb refuses to run as root: as root, the temp dir is chowned to the `postgres`
/// user and initdb/pg_ctl run through `runuser -u postgres --`. The postmaster is
/// daemonized by pg_ctl; this process marks itself a child subreaper while the server
/// lives, so the postmaster is reaped here instead of lingering as a zombie.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace atrium::test {

/// How to set the server up.
struct postgres_options {
  std::string user = "atrium";  ///< the bootstrap superuser
  std::string password;         ///< empty: `trust` authentication; else SCRAM-SHA-256 with this password
  std::size_t max_connections = 100;
  std::vector<std::string> settings;             ///< extra `-c name=value` server settings, as `name=value`
  std::optional<std::filesystem::path> bin_dir;  ///< default: find_postgres_bin_dir()
};

/// The newest PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) under
/// /usr/lib/postgresql/<version>/bin; nullopt if none is installed.
[[nodiscard]] std::optional<std::filesystem::path> find_postgres_bin_dir();

/// A free TCP port on 127.0.0.1, as the kernel picks it for port 0.
[[nodiscard]] unsigned short free_loopback_port();

/// A running throwaway server; stopped and deleted on destruction.
class postgres_server {
 public:
  /// initdb and start; throws std::runtime_error (with the tail of the logs) if it
  /// cannot, e.g. PostgreSQL is not installed.
  explicit postgres_server(postgres_options options = {});
  ~postgres_server();
  postgres_server(const postgres_server&) = delete;
  postgres_server& operator=(const postgres_server&) = delete;

  [[nodiscard]] std::string host() const { return "127.0.0.1"; }
  [[nodiscard]] unsigned short port() const { return port_; }
  [[nodiscard]] const std::string& user() const { return options_.user; }
  /// The postmaster's PID.
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// A libpq conninfo for database `postgres` as `user()`, with the password if any.
  [[nodiscard]] std::string conninfo() const;
  /// Fast shutdown (pg_ctl stop -m fast), then waits for the postmaster PID; SIGKILL
  /// after 30 s. Idempotent.
  void stop();

 private:
  postgres_options options_;
  temp_dir dir_;
  std::filesystem::path bin_;
  std::optional<std::filesystem::path> runuser_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace atrium::test
