#pragma once
/// SQL connection tester: opens a real connection with the given parameters and
/// credentials, runs a trivial query, and reports the outcome as a value.
///
/// - `postgres` (libpqxx 6.4 over libpq): conninfo built from `params` and
///   `credentials`, every value single-quoted with `\` and `'` escaped (libpq's
///   conninfo rules), plus `connect_timeout` = ceil(timeout in s), at least 1 (libpq
///   itself waits at least 2 s per address), `options='-c statement_timeout=<ms>'` and
///   `application_name=atrium`; then `SELECT version()` in a non-transaction.
///   `server_version` is that version string. Errors are libpq's text with the
///   password, if non-empty, replaced by `***` everywhere.
///   `host` must be a host name or an IP address: Unix-socket directories (`/…`, `@…`)
///   and host lists (`a,b`) are refused, so a probe cannot reach this machine's local
///   sockets or multiply the timeout.
/// - `sqlite` (sqlite3): the file at `params.path` opened with SQLITE_OPEN_READONLY
///   (never created: a missing file is an error; a relative path is taken as `./path`, so
///   neither `file:` URIs nor `:memory:` apply), sqlite3_busy_timeout(timeout), a
///   progress handler that interrupts at the deadline, then
///   `SELECT count(*) FROM sqlite_master` (which fails on a file that is not a
///   database); always closed. `server_version` is sqlite3_libversion().
///
/// `latency_ms` is the steady-clock time of connect + query, also on failure.
///
/// Time bound: the whole call stays within about max(timeout, 2 s) for each address a
/// PostgreSQL host name resolves to, plus name resolution (getaddrinfo, not bounded by
/// libpq); SQLite calls stay within the timeout plus one progress-handler step.

#include "actors/ports/connector.hpp"

namespace atrium::connectors_adapter {

/// The tester for the `postgres` and `sqlite` drivers. Stateless and thread-safe.
class sql_connection_tester final : public ports::connection_tester {
 public:
  [[nodiscard]] ports::connection_probe test(std::string_view driver, const nlohmann::json& params,
                                             const nlohmann::json& credentials,
                                             std::chrono::milliseconds timeout) const override;
};

}  // namespace atrium::connectors_adapter
