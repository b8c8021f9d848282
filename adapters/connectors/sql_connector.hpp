#pragma once
/// SQL connection tester: opens a real connection with the given parameters and
/// credentials, runs a trivial query, and reports the outcome as a value.
///
/// - `postgres` (libpqxx 6.4 over libpq): `postgres_conninfo` below (the destination
///   checked against the network policy and pinned by `hostaddr`), then `SELECT
///   version()` in a non-transaction. `server_version` is that version string. The error
///   detail is libpq's text with every form of the password masked (`mask_secret`), and
///   its class comes from `classify_postgres_error`. `host` must be a host name or an IP
///   address: Unix-socket directories (`/…`, `@…`) and host lists (`a,b`) are refused,
///   so a probe cannot reach this machine's local sockets or multiply the timeout.
/// - `sqlite` (sqlite3): the file at `params.path` opened with SQLITE_OPEN_READONLY
///   (never created: a missing file is an error). With a SQLite root (atriumd passes
///   `--sqlite-root`, default `DATA_DIR/files`), the path is resolved under it by
///   `resolve_sqlite_path` (sqlite_paths.hpp: a relative path is taken inside the root,
///   symlinks are followed, anything outside is refused); without one (the default
///   constructor, kept for existing callers) a relative path is taken as `./path`. Either
///   way neither `file:` URIs nor `:memory:` apply. Then sqlite3_busy_timeout(timeout), a
///   progress handler that interrupts at the deadline, then
///   `SELECT count(*) FROM sqlite_master` (which fails on a file that is not a
///   database); always closed. `server_version` is sqlite3_libversion(). Every failure
///   has the class `not_a_database`.
///
/// `latency_ms` is the steady-clock time of connect + query, also on failure.
///
/// Time bound: the whole call stays within about max(timeout, 2 s) for each address a
/// PostgreSQL host name resolves to (at most 8), plus name resolution (getaddrinfo, not
/// bounded); SQLite calls stay within the timeout plus one progress-handler step.

#include <filesystem>
#include <optional>
#include <vector>

#include "ports/connector.hpp"
#include "adapters/connectors/network_policy.hpp"

namespace atrium::connectors_adapter {

/// A PostgreSQL conninfo pinned to checked addresses: what a job executor hands to
/// libpq/libpqxx. Holds the password: wipe it after use.
struct pinned_conninfo {
  std::string conninfo;
  std::vector<ip_address> addresses;  ///< where it will connect, in order
};

/// Builds the conninfo for a `postgres` connection after checking its destination:
/// `params.host` is resolved once and judged by `policy` (network_policy::resolve), and
/// the conninfo names the checked addresses as `hostaddr` (with `host` kept for TLS
/// verification), so libpq never resolves the name again. Also sets `connect_timeout`
/// (`timeout` rounded up to seconds), `statement_timeout` (`options`: `statement_timeout`
/// when given, zero meaning none, else `timeout`), `application_name=atrium`, and closes libpq's
/// fall-backs to the server's own secrets: `password` is always given (an empty one
/// when the credentials have none, so `PGPASSWORD` is not read), `passfile` and
/// `sslcert` point at paths that do not exist (no `~/.pgpass`, no client certificate
/// of the server's user). At most 8 addresses are used.
///
/// Every executor that opens a PostgreSQL connection for a user goes through this.
/// Errors: `invalid_argument` (malformed params or credentials, details `class`
/// `failed`), and those of `network_policy::resolve` (`forbidden`, `unavailable`).
[[nodiscard]] result<pinned_conninfo> postgres_conninfo(
    const network_policy& policy, const nlohmann::json& params, const nlohmann::json& credentials,
    std::chrono::milliseconds timeout, std::optional<std::chrono::milliseconds> statement_timeout = std::nullopt);

/// `text` with every form of `secret` the server might print replaced by `***`: as is,
/// reversed, percent-encoded (upper and lower hex, `+` or `%20` for spaces), JSON- and
/// conninfo-escaped, base64 (standard and URL alphabets, with and without padding) and
/// hex (lower and upper). Nothing is masked for an empty secret.
[[nodiscard]] std::string mask_secret(std::string text, std::string_view secret);

/// The class (connector.hpp) of a libpq/libpqxx error message.
[[nodiscard]] std::string classify_postgres_error(std::string_view message);

/// The tester for the `postgres` and `sqlite` drivers. Stateless apart from its policy;
/// thread-safe.
class sql_connection_tester final : public ports::connection_tester {
 public:
  /// With the built-in network policy (loopback, link-local and metadata denied).
  sql_connection_tester() = default;
  explicit sql_connection_tester(network_policy policy) : policy_(std::move(policy)) {}
  /// With a SQLite root: every `sqlite` `params.path` must lie under `sqlite_root` (see
  /// sqlite_paths.hpp), in `check_destination` and `test`. atriumd passes its
  /// `--sqlite-root`; without a root (the constructors above) any path is accepted.
  sql_connection_tester(network_policy policy, std::filesystem::path sqlite_root)
      : policy_(std::move(policy)), sqlite_root_(std::move(sqlite_root)) {}

  [[nodiscard]] ports::connection_probe test(std::string_view driver, const nlohmann::json& params,
                                             const nlohmann::json& credentials,
                                             std::chrono::milliseconds timeout) const override;

  /// `postgres`: the network policy (ports/connector.hpp). `sqlite` with a root: a
  /// string `params.path` outside the root is `invalid_argument` with details
  /// `{"field":"params.path"}` (resolve_sqlite_path); other shapes pass (the connection's
  /// own validation answers them).
  [[nodiscard]] result<void> check_destination(std::string_view driver, const nlohmann::json& params) const override;

  [[nodiscard]] const network_policy& policy() const { return policy_; }
  /// The SQLite root, if any.
  [[nodiscard]] const std::optional<std::filesystem::path>& sqlite_root() const { return sqlite_root_; }

 private:
  network_policy policy_;
  std::optional<std::filesystem::path> sqlite_root_;
};

}  // namespace atrium::connectors_adapter
