#pragma once
/// Port: testing a connection to an external data source with the credentials from the
/// vault ("Test connection" of a connection entity). Implemented by adapters/connectors
/// (PostgreSQL through libpqxx, SQLite through sqlite3).
///
/// Drivers and the shapes they take (validated by the connection decider before they
/// get here; an adapter still treats a bad shape as a failed probe, never a throw):
///
/// - `sqlite`: params `{"path": string}`, an existing database file, opened read-only;
///   credentials ignored.
/// - `postgres`: params `{"host": string, "port": int, "database": string, "sslmode":
///   string}`; credentials `{"user": string, "password"?: string}`.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "events/error.hpp"

namespace atrium::ports {

/// The outcome of one connection test.
///
/// `error_class` is all a member learns about a failure (the HTTP adapter passes
/// `error`, the driver's detail, to admins only):
///
/// - `denied_by_policy`: the host, or an address it resolves to, is denied by the
///   server's network policy;
/// - `unreachable`: the name does not resolve, or there is no route to the host;
/// - `refused`: nothing listens on that port;
/// - `timeout`: no answer within the test timeout;
/// - `tls`: the TLS handshake or the server's certificate failed;
/// - `auth_failed`: the server refused the user, the password or the database;
/// - `not_a_database`: something answered that is not the driver's database; for SQLite
///   every failure (a member cannot tell a missing file from one that is not a database);
/// - `failed`: anything else (malformed parameters, an unknown driver, a query that
///   failed after connecting).
struct connection_probe {
  bool ok = false;               ///< connected and the trivial query succeeded
  std::string error_class;       ///< when !ok: one of the classes above
  std::string error;             ///< the driver's detail when !ok; every form of the password masked
  std::uint64_t latency_ms = 0;  ///< connect + query, wall time (steady clock), milliseconds
  std::string server_version;    ///< e.g. `PostgreSQL 15.5 on x86_64…` or the SQLite library version `3.40.1`
};

/// Connection tester. Thread-safe; every call opens and closes its own connection.
class connection_tester {
 public:
  virtual ~connection_tester() = default;
  /// Really connects and runs a trivial query; never throws, never blocks past
  /// `timeout` (give or take the granularity of the driver's own timeouts, documented
  /// by the adapter). An unknown driver or a malformed `params`/`credentials` gives
  /// `ok == false` with an error. The destination is checked against the network
  /// policy first, and the driver connects only to the addresses that were checked.
  [[nodiscard]] virtual connection_probe test(std::string_view driver, const nlohmann::json& params,
                                              const nlohmann::json& credentials,
                                              std::chrono::milliseconds timeout) const = 0;

  /// Checks where a connection with these `params` would go against the network policy
  /// without connecting (on create and change of a connection; a test or a job checks
  /// again, resolved afresh, before each use). Blocks for name resolution. A host name
  /// that does not resolve (yet) passes. `sqlite` has no network destination: its
  /// `params.path` must lie under the server's SQLite root when the adapter has one.
  /// Errors: `forbidden` with details `{"class":"denied_by_policy","host","address"?,
  /// "rule"}`; `invalid_argument` with details `{"field":"params.path"}` for a SQLite
  /// path outside the root.
  [[nodiscard]] virtual result<void> check_destination(std::string_view driver, const nlohmann::json& params) const = 0;
};

}  // namespace atrium::ports
