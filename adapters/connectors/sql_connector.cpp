#include "adapters/connectors/sql_connector.hpp"

#include <sqlite3.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <exception>
#include <optional>
#include <string>

namespace atrium::connectors_adapter {
namespace {

using steady = std::chrono::steady_clock;

std::uint64_t elapsed_ms(steady::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
}

ports::connection_probe failed(std::string why) {
  ports::connection_probe p;
  p.error = std::move(why);
  return p;
}

/// `j[key]` as a string if `j` is an object holding a string there without NUL bytes
/// (a NUL would cut a C string short, e.g. drop the rest of a conninfo).
std::optional<std::string> string_field(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  auto s = it->get<std::string>();
  if (s.find('\0') != std::string::npos) return std::nullopt;
  return s;
}

/// A TCP port given as an integer (or a string of digits), 1–65535.
std::optional<unsigned> port_field(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_unsigned() || it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    if (v >= 1 && v <= 65535) return static_cast<unsigned>(v);
    return std::nullopt;
  }
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    const auto v = std::stoul(s);
    if (v >= 1 && v <= 65535) return static_cast<unsigned>(v);
  }
  return std::nullopt;
}

/// A conninfo value: single-quoted, with `\` and `'` backslash-escaped (libpq,
/// "Connection Strings", keyword/value form).
std::string conninfo_value(std::string_view v) {
  std::string out = "'";
  for (const char c : v) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

/// `text` with every occurrence of `secret` (if non-empty) replaced by `***`.
std::string redacted(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

/// libpq and pqxx end their messages with a newline.
std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

ports::connection_probe test_postgres(const nlohmann::json& params, const nlohmann::json& credentials,
                                      std::chrono::milliseconds timeout) {
  const auto host = string_field(params, "host");
  if (!host || host->empty()) return failed("params.host must be a non-empty string");
  if (host->front() == '/' || host->front() == '@' || host->find(',') != std::string::npos) {
    return failed("params.host must be one host name or IP address (no socket path, no list)");
  }
  const auto port = port_field(params, "port");
  if (!port) return failed("params.port must be an integer from 1 to 65535");
  const auto database = string_field(params, "database");
  if (!database || database->empty()) return failed("params.database must be a non-empty string");
  std::string sslmode = "prefer";
  if (params.is_object() && params.contains("sslmode")) {
    const auto s = string_field(params, "sslmode");
    if (!s) return failed("params.sslmode must be a string");
    if (!s->empty()) sslmode = *s;
  }
  const auto user = string_field(credentials, "user");
  if (!user || user->empty()) return failed("credentials.user must be a non-empty string");
  std::string password;
  if (credentials.is_object() && credentials.contains("password") && !credentials.at("password").is_null()) {
    const auto p = string_field(credentials, "password");
    if (!p) return failed("credentials.password must be a string");
    password = *p;
  }

  const auto ms = std::max<std::chrono::milliseconds::rep>(timeout.count(), 1);
  const auto connect_seconds = std::max<std::chrono::milliseconds::rep>((ms + 999) / 1000, 1);
  std::string conninfo = "host=" + conninfo_value(*host) + " port=" + conninfo_value(std::to_string(*port)) +
                         " dbname=" + conninfo_value(*database) + " user=" + conninfo_value(*user) +
                         " sslmode=" + conninfo_value(sslmode) +
                         " connect_timeout=" + conninfo_value(std::to_string(connect_seconds)) +
                         " options=" + conninfo_value("-c statement_timeout=" + std::to_string(ms)) +
                         " application_name=" + conninfo_value("atrium");
  if (!password.empty()) conninfo += " password=" + conninfo_value(password);

  ports::connection_probe probe;
  const auto start = steady::now();
  try {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    const pqxx::result r = tx.exec("SELECT version()");
    probe.server_version = r.at(0).at(0).c_str();
    probe.ok = true;
  } catch (const std::exception& ex) {
    probe.error = redacted(trimmed(ex.what()), password);
    if (probe.error.empty()) probe.error = "connection failed";
  } catch (...) {
    probe.error = "connection failed (unknown error)";
  }
  probe.latency_ms = elapsed_ms(start);
  std::fill(conninfo.begin(), conninfo.end(), '\0');  // it held the password
  std::fill(password.begin(), password.end(), '\0');
  return probe;
}

/// Interrupts a statement once the deadline has passed.
int past_deadline(void* deadline) { return steady::now() >= *static_cast<steady::time_point*>(deadline) ? 1 : 0; }

ports::connection_probe test_sqlite(const nlohmann::json& params, std::chrono::milliseconds timeout) {
  auto path = string_field(params, "path");
  if (!path || path->empty()) return failed("params.path must be a non-empty string");
  // SQLite (built with SQLITE_USE_URI on Debian) treats `file:…` as a URI that may ask to
  // create the file, and `:memory:` as an in-memory database; `./` makes both plain files.
  const std::string name = path->front() == '/' ? *path : "./" + *path;

  ports::connection_probe probe;
  const auto start = steady::now();
  steady::time_point deadline = start + std::max(timeout, std::chrono::milliseconds(1));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    probe.error = "cannot open " + *path + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  } else {
    const auto ms = timeout.count();
    sqlite3_busy_timeout(db, static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(ms, 1, 1 << 30)));
    sqlite3_progress_handler(db, 1000, past_deadline, &deadline);
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      probe.ok = true;
      probe.server_version = sqlite3_libversion();
    } else {
      probe.error = "cannot read " + *path + ": " + sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);  // also after a failed open, which may still allocate a handle
  probe.latency_ms = elapsed_ms(start);
  return probe;
}

}  // namespace

ports::connection_probe sql_connection_tester::test(std::string_view driver, const nlohmann::json& params,
                                                    const nlohmann::json& credentials,
                                                    std::chrono::milliseconds timeout) const {
  try {
    if (driver == "postgres") return test_postgres(params, credentials, timeout);
    if (driver == "sqlite") return test_sqlite(params, timeout);
    return failed("unknown driver " +
                  nlohmann::json(std::string(driver)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (...) {
    // Only allocation failures can get here; the port promises no exception.
    return failed("connection test failed unexpectedly");
  }
}

}  // namespace atrium::connectors_adapter
