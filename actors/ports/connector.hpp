#pragma once
/// Port: testing a connection to an external data source with the credentials from the
/// vault ("Test connection" of a connection entity). Implemented by adapters/connectors
/// (PostgreSQL through libpqxx, SQLite through sqlite3).
///
/// Drivers and the shapes they take (validated by the connection decider before they
/// get here; an adapter still treats a bad shape as a failed probe, never a throw):
///
/// | driver     | params                                                         | credentials |
/// |------------|----------------------------------------------------------------|--------------------------------------|
/// | `sqlite`   | `{"path": string}` — an existing database file, opened read-only | ignored | | `postgres` | `{"host":
/// string, "port": int, "database": string, "sslmode": string}` | `{"user": string, "password"?: string}` |

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace atrium::ports {

/// The outcome of one connection test.
struct connection_probe {
  bool ok = false;               ///< connected and the trivial query succeeded
  std::string error;             ///< why not, when !ok (never contains the password)
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
  /// `ok == false` with an error.
  [[nodiscard]] virtual connection_probe test(std::string_view driver, const nlohmann::json& params,
                                              const nlohmann::json& credentials,
                                              std::chrono::milliseconds timeout) const = 0;
};

}  // namespace atrium::ports
