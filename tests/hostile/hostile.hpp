#pragma once
/// The hostile-input suite's shared pieces: a real atriumd with a cast of users and one
/// entity of every kind, a deadline-bounded request helper, the oracle every hostile
/// request is judged by, the tally a campaign prints, and the proof of life that follows
/// every group of cases (docs/hostile.md).
///
///   case ──raw bytes──▶ atriumd ──▶ verdict: answered in time? no 5xx? error shape?
///                                            4xx where the input is invalid?
///   group of cases ──▶ prove_alive: process running, /healthz 200,
///                                   POST /v1/projects 201, GET /v1/audit/verify ok

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/atriumd.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/raw_websocket.hpp"

namespace atrium::hostile {

using nlohmann::json;
using header_list = std::vector<std::pair<std::string, std::string>>;
using test::raw_end;
using test::raw_result;
using test::to_string;

/// The deadline for any one hostile request: no answer by then is a hang.
inline constexpr std::chrono::milliseconds k_deadline{10000};

/// What a case's answer must be.
enum class expect {
  reject,   ///< a 4xx with the JSON error shape (the input is invalid)
  any,      ///< anything but a 5xx; a 4xx must have the error shape (valid or tolerable input)
  success,  ///< a 2xx
};

/// The status codes ≥ 500 a route may answer on purpose (documented limits). Empty for
/// every route today: see docs/hostile.md "Deliberate 5xx".
inline const std::set<unsigned> k_allowed_5xx{};

/// True when `j` is `{"error":{"code":string,"message":string,"details":object}}`.
bool is_error_shape(const json& j);

/// A readable excerpt of `s` (control bytes escaped, at most `n` bytes).
std::string excerpt(std::string_view s, std::size_t n = 160);

/// Counts and judges the cases of a campaign; failures are kept for the report.
struct tally {
  std::string name;
  std::size_t requests = 0, five_xx = 0, hangs = 0, unanswered = 0, wrong = 0;
  std::vector<std::string> failures;

  /// Judges one HTTP exchange against `e`. `may_close` allows "closed without an answer"
  /// (only where HTTP gives the server nobody to answer). Returns true when it passed.
  bool judge(const std::string& what, const raw_result& r, expect e, bool may_close = false);
  /// Judges a status and JSON body seen some other way (a WebSocket command's result).
  bool judge_status(const std::string& what, unsigned status, const json& body, expect e);
  /// Records a failure that is neither (e.g. a WebSocket that hung).
  void fail(const std::string& what, const std::string& why);
  /// `hostile campaign <name>: N requests, X 5xx, Y hangs, Z unanswered, W wrong answers`.
  [[nodiscard]] std::string summary() const;
  /// Judges one answer without counting it as a request.
  bool verdict(const std::string& what, unsigned status, const json& body, expect e);
  /// Prints the summary, adds it to the process-wide total, and CHECKs that nothing failed
  /// (listing the first failures).
  void report();
};

/// A running atriumd with users (admin, two members, an auditor, a victim member for
/// user changes) and one live entity of every kind, owned by the member `alice`.
struct world {
  test::temp_dir dir;
  std::unique_ptr<test::atriumd_server> server;
  std::string admin, alice, bob, auditor;  ///< tokens
  std::string alice_id, bob_id, dave_id, auditor_id;
  std::string project, cell, group, connection, job, container, schedule;
  std::string sqlite_path;
  std::size_t serial = 0;  ///< for unique names

  /// Starts atriumd (with `args`) and creates the cast and the entities.
  explicit world(std::vector<std::string> args = {}, bool entities = true);

  [[nodiscard]] const std::string& address() const { return server->address; }
  [[nodiscard]] pid_t pid() const { return server->proc->pid(); }
  /// The server's log so far.
  [[nodiscard]] std::string log() const { return test::atriumd_server::slurp(server->log); }

  /// A request with a bearer token (if any) and a JSON body (if not null), within the
  /// hostile deadline. Never throws; a failure shows in the result's `end`.
  raw_result call(const std::string& method, const std::string& target, const std::string& token = "",
                  const json& body = nullptr, header_list headers = {}) const;
  /// `call` with a raw body string.
  raw_result call_raw(const std::string& method, const std::string& target, const std::string& token,
                      const std::string& body, header_list headers = {}) const;
  /// Creates (as admin) a member and returns {id, token}.
  std::pair<std::string, std::string> make_member(const std::string& name, const std::string& password);

  /// Substitutes {P} {C} {G} {K} {J} {X} {S} {A} {B} {D} {N} (project, cell, group,
  /// connection, job, container, schedule, alice, bob, dave ids; a fresh serial) in `s`.
  std::string fill(std::string s);
  json fill(const json& j);

  /// Requires that the server is alive, answers /healthz, still writes
  /// (`POST /v1/projects` → 201) and verifies (`GET /v1/audit/verify` → ok true).
  /// `after` names the group of cases just run, for the failure message.
  void prove_alive(const std::string& after);
};

/// The token of a response to a login, or "" (with a failed CHECK).
std::string token_of(const raw_result& r);

/// `n` nested arrays: `[[[...]]]`.
std::string deep_array(std::size_t n);
/// `n` nested objects: `{"a":{"a":...}}`.
std::string deep_object(std::size_t n);

/// The resident set size of `pid` in KiB (VmRSS), 0 if unknown.
std::size_t rss_kib(pid_t pid);
/// utime + stime of `pid` in clock ticks.
std::uint64_t cpu_ticks(pid_t pid);
/// The number of open file descriptors of `pid`.
std::size_t open_fds(pid_t pid);

}  // namespace atrium::hostile
