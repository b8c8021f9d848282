#include "adapters/connectors/sql_connector.hpp"

#include <sqlite3.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <cctype>
#include <vector>
#include <exception>
#include <optional>
#include <string>

#include "adapters/connectors/sqlite_paths.hpp"

namespace atrium::connectors_adapter {
namespace {

using steady = std::chrono::steady_clock;

std::uint64_t elapsed_ms(steady::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
}

ports::connection_probe failed(std::string why, std::string error_class = "failed") {
  ports::connection_probe p;
  p.error_class = std::move(error_class);
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

/// Every occurrence of `needle` (non-empty) in `text` replaced by `***`.
void replace_all(std::string& text, std::string_view needle) {
  if (needle.empty()) return;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 3)) {
    text.replace(at, needle.size(), "***");
  }
}

std::string percent_encoded(std::string_view s, bool upper, bool plus_for_space) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ' && plus_for_space) {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

std::string base64(std::string_view s, bool url, bool pad) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8) |
                   static_cast<unsigned char>(s[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(alphabet[(n >> shift) & 63]);
  }
  if (const auto rest = s.size() - i; rest > 0) {
    auto n = static_cast<unsigned char>(s[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(s[i + 1]) << 8;
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    if (rest == 2) out.push_back(alphabet[(n >> 6) & 63]);
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

std::string hex(std::string_view s, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (const unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

/// libpq and pqxx end their messages with a newline.
std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

ports::connection_probe test_postgres(const network_policy& policy, const nlohmann::json& params,
                                      const nlohmann::json& credentials, std::chrono::milliseconds timeout) {
  ports::connection_probe probe;
  const auto start = steady::now();
  auto pinned = postgres_conninfo(policy, params, credentials, timeout);
  if (!pinned) {
    probe.error_class = pinned.error().details.value("class", "failed");
    probe.error = pinned.error().message;
    probe.latency_ms = elapsed_ms(start);
    return probe;
  }
  std::string password;
  if (auto p = string_field(credentials, "password")) password = std::move(*p);
  try {
    pqxx::connection conn(pinned->conninfo);
    pqxx::nontransaction tx(conn);
    const pqxx::result r = tx.exec("SELECT version()");
    probe.server_version = r.at(0).at(0).c_str();
    probe.ok = true;
  } catch (const std::exception& ex) {
    const auto text = trimmed(ex.what());
    probe.error_class = classify_postgres_error(text);
    probe.error = mask_secret(text, password);
    if (probe.error.empty()) probe.error = "connection failed";
  } catch (...) {
    probe.error_class = "failed";
    probe.error = "connection failed (unknown error)";
  }
  probe.latency_ms = elapsed_ms(start);
  std::fill(pinned->conninfo.begin(), pinned->conninfo.end(), '\0');  // it held the password
  std::fill(password.begin(), password.end(), '\0');
  return probe;
}

/// Interrupts a statement once the deadline has passed.
int past_deadline(void* deadline) { return steady::now() >= *static_cast<steady::time_point*>(deadline) ? 1 : 0; }

ports::connection_probe test_sqlite(const nlohmann::json& params, const std::optional<std::filesystem::path>& root,
                                    std::chrono::milliseconds timeout) {
  auto path = string_field(params, "path");
  if (!path || path->empty()) return failed("params.path must be a non-empty string", "not_a_database");
  // SQLite (built with SQLITE_USE_URI on Debian) treats `file:…` as a URI that may ask to
  // create the file, and `:memory:` as an in-memory database; `./` makes both plain files
  // (a path resolved under the root is absolute).
  std::string name = path->front() == '/' ? *path : "./" + *path;
  if (root) {
    auto resolved = resolve_sqlite_path(*root, *path);
    if (!resolved) return failed(resolved.error().message, "not_a_database");
    name = resolved->string();
  }

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
  if (!probe.ok) probe.error_class = "not_a_database";
  probe.latency_ms = elapsed_ms(start);
  return probe;
}

}  // namespace

result<pinned_conninfo> postgres_conninfo(const network_policy& policy, const nlohmann::json& params,
                                          const nlohmann::json& credentials, std::chrono::milliseconds timeout,
                                          std::optional<std::chrono::milliseconds> statement_timeout) {
  auto bad = [](std::string why) { return fail(errc::invalid_argument, std::move(why), {{"class", "failed"}}); };
  const auto host = string_field(params, "host");
  if (!host || host->empty()) return bad("params.host must be a non-empty string");
  if (host->front() == '/' || host->front() == '@' || host->find(',') != std::string::npos) {
    return bad("params.host must be one host name or IP address (no socket path, no list)");
  }
  const auto port = port_field(params, "port");
  if (!port) return bad("params.port must be an integer from 1 to 65535");
  const auto database = string_field(params, "database");
  if (!database || database->empty()) return bad("params.database must be a non-empty string");
  std::string sslmode = "prefer";
  if (params.is_object() && params.contains("sslmode")) {
    const auto s = string_field(params, "sslmode");
    if (!s) return bad("params.sslmode must be a string");
    if (!s->empty()) sslmode = *s;
  }
  const auto user = string_field(credentials, "user");
  if (!user || user->empty()) return bad("credentials.user must be a non-empty string");
  std::string password;
  if (credentials.is_object() && credentials.contains("password") && !credentials.at("password").is_null()) {
    const auto p = string_field(credentials, "password");
    if (!p) return bad("credentials.password must be a string");
    password = *p;
  }

  auto addresses = policy.resolve(*host);
  if (!addresses) return std::unexpected(addresses.error());
  if (addresses->size() > 8) addresses->resize(8);
  // One `host` entry per `hostaddr` entry (libpq pairs them): the name serves TLS
  // verification, the address is where libpq connects.
  std::string hosts, hostaddrs;
  for (const auto& a : *addresses) {
    hosts += (hosts.empty() ? "" : ",") + *host;
    hostaddrs += (hostaddrs.empty() ? "" : ",") + a.to_string();
  }

  const auto ms = std::max<std::chrono::milliseconds::rep>(timeout.count(), 1);
  const auto statement_ms =
      statement_timeout ? std::max<std::chrono::milliseconds::rep>(statement_timeout->count(), 0) : ms;
  const auto connect_seconds = std::max<std::chrono::milliseconds::rep>((ms + 999) / 1000, 1);
  // Paths that cannot exist: libpq then uses no password file and no client certificate
  // (ENOENT is "none", not an error).
  constexpr const char* k_nowhere = "/nonexistent-atrium-path/none";
  pinned_conninfo out;
  out.addresses = std::move(*addresses);
  out.conninfo = "host=" + conninfo_value(hosts) + " hostaddr=" + conninfo_value(hostaddrs) +
                 " port=" + conninfo_value(std::to_string(*port)) + " dbname=" + conninfo_value(*database) +
                 " user=" + conninfo_value(*user) + " sslmode=" + conninfo_value(sslmode) +
                 " connect_timeout=" + conninfo_value(std::to_string(connect_seconds)) +
                 " options=" + conninfo_value("-c statement_timeout=" + std::to_string(statement_ms)) +
                 " application_name=" + conninfo_value("atrium") + " passfile=" + conninfo_value(k_nowhere) +
                 " sslcert=" + conninfo_value(k_nowhere) + " sslkey=" + conninfo_value(k_nowhere) +
                 " password=" + conninfo_value(password);
  std::fill(password.begin(), password.end(), '\0');
  return out;
}

std::string mask_secret(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  std::string reversed(secret.rbegin(), secret.rend());
  std::string json_escaped =
      nlohmann::json(std::string(secret)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  json_escaped = json_escaped.substr(1, json_escaped.size() - 2);
  std::string conninfo_escaped = conninfo_value(secret);
  conninfo_escaped = conninfo_escaped.substr(1, conninfo_escaped.size() - 2);
  std::vector<std::string> forms{std::string(secret),
                                 reversed,
                                 percent_encoded(secret, true, false),
                                 percent_encoded(secret, false, false),
                                 percent_encoded(secret, true, true),
                                 percent_encoded(secret, false, true),
                                 json_escaped,
                                 conninfo_escaped,
                                 base64(secret, false, true),
                                 base64(secret, false, false),
                                 base64(secret, true, false),
                                 hex(secret, false),
                                 hex(secret, true)};
  // Longest first, so a form containing another is masked whole.
  std::sort(forms.begin(), forms.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& f : forms) replace_all(text, f);
  // Hex in mixed case.
  const auto lower = lowercase(text);
  const auto h = hex(secret, false);
  for (std::size_t at = lower.find(h); at != std::string::npos; at = lower.find(h, at + h.size())) {
    std::fill(text.begin() + static_cast<std::ptrdiff_t>(at), text.begin() + static_cast<std::ptrdiff_t>(at + h.size()),
              '*');
  }
  return text;
}

std::string classify_postgres_error(std::string_view message) {
  const auto m = lowercase(message);
  auto has = [&](std::string_view needle) { return m.find(needle) != std::string::npos; };
  if (has("timeout expired") || has("statement timeout") || has("timed out")) return "timeout";
  if (has("connection refused")) return "refused";
  // A peer that is not PostgreSQL answers the startup or SSL request with bytes libpq
  // cannot read.
  if (has("invalid response to ssl negotiation") || has("expected authentication request") ||
      has("server closed the connection unexpectedly") || has("unsupported frontend protocol") ||
      has("lost synchronization") || has("received invalid response") || has("invalid message")) {
    return "not_a_database";
  }
  if (has("password authentication failed") || has("no password supplied") || has("authentication failed") ||
      has("no pg_hba.conf entry") || has("does not exist") || has("permission denied") || has("sasl") || has("scram") ||
      has("password")) {
    return "auth_failed";
  }
  if (has("ssl") || has("tls") || has("certificate")) return "tls";
  if (has("no route to host") || has("network is unreachable") || has("could not translate host name") ||
      has("host is down") || has("name or service not known") || has("could not connect")) {
    return "unreachable";
  }
  return "failed";
}

ports::connection_probe sql_connection_tester::test(std::string_view driver, const nlohmann::json& params,
                                                    const nlohmann::json& credentials,
                                                    std::chrono::milliseconds timeout) const {
  try {
    if (driver == "postgres") return test_postgres(policy_, params, credentials, timeout);
    if (driver == "sqlite") return test_sqlite(params, sqlite_root_, timeout);
    return failed("unknown driver " +
                  nlohmann::json(std::string(driver)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (...) {
    // Only allocation failures can get here; the port promises no exception.
    return failed("connection test failed unexpectedly");
  }
}

result<void> sql_connection_tester::check_destination(std::string_view driver, const nlohmann::json& params) const {
  if (driver == "sqlite" && sqlite_root_) {
    const auto path = params.is_object() ? params.find("path") : params.end();
    if (!params.is_object() || path == params.end() || !path->is_string()) return {};
    auto resolved = resolve_sqlite_path(*sqlite_root_, path->get_ref<const std::string&>());
    if (!resolved) return std::unexpected(resolved.error());
    return {};
  }
  if (driver != "postgres") return {};
  const auto host = string_field(params, "host");
  if (!host || host->empty()) return {};  // malformed: the spec validation answers that
  auto checked = policy_.resolve(*host);
  // A name that does not resolve (yet) passes: every use resolves and checks again.
  if (!checked && checked.error().code == errc::forbidden) return std::unexpected(checked.error());
  return {};
}

}  // namespace atrium::connectors_adapter
