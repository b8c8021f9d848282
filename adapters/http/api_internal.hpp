#pragma once
/// Internals of the HTTP API shared by its translation units (api*.cpp): the request
/// in flight, answering helpers, input parsing, and `api::impl` with one member per
/// route. Not a public header: only adapters/http includes it.

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adapters/http/api.hpp"
#include "adapters/http/wire.hpp"
#include "events/access/policy.hpp"
#include "events/connection/connection_decider.hpp"
#include "events/project/project_decider.hpp"
#include "events/text.hpp"

namespace atrium::http_adapter {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

inline constexpr std::size_t k_default_limit = 100;
inline constexpr std::size_t k_max_limit = 1000;
inline constexpr std::size_t k_max_audit_scan = 10000;  // rows examined per audit request

inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// One request in flight; shared by the callbacks that finish it.
struct call {
  http_request req;
  respond_fn respond;
  std::vector<std::string> path;
  std::map<std::string, std::string> query;
  std::string correlation_id;
  clock_type::time_point started = clock_type::now();
  std::string who = "-";
  std::string command_id;  ///< scoped Idempotency-Key, when the client sent one
  std::string user_id;     ///< the authenticated caller, once known
  std::string token_hash;  ///< SHA-256 hex of the caller's session token, once authenticated
  /// The policy operation and resource this call was authorized for, recorded with a
  /// denial the decider reports later (`forbidden` from a command).
  std::string operation = "-";
  std::string resource = "-";
  /// Stores the final response under the idempotency key (set when a key was claimed).
  std::function<void(unsigned status, const std::string& body, const std::string& etag)> remember;
};
using call_ptr = std::shared_ptr<call>;

/// `method=… path=…` of a request for a log line, escaped (events/text.hpp `log_escape`):
/// nothing a client sends can start a new log line or forge a field.
inline std::string log_request(const call& c) {
  return "method=" + log_escape(c.req.method, 32) +
         " path=" + log_escape(c.req.target.substr(0, c.req.target.find('?')));
}

inline void send(const call_ptr& c, unsigned status, const json& body,
                 std::vector<std::pair<std::string, std::string>> headers = {}) {
  headers.emplace_back("X-Request-Id", c->correlation_id);
  const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - c->started).count();
  spdlog::info("http {} status={} ms={:.2f} user={} request_id={}", log_request(*c), status, ms, log_escape(c->who, 64),
               c->correlation_id);
  // Replace, not throw, on invalid UTF-8: a response must never take a thread down.
  auto text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (c->remember && status < 500) {
    std::string tag;
    for (const auto& [k, v] : headers) {
      if (k == "ETag") tag = v;
    }
    c->remember(status, text, tag);
  }
  c->respond(http_response{status, std::move(text), "application/json", std::move(headers)});
}

inline void send_error(const call_ptr& c, const error& e) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (e.code == errc::unauthenticated) headers.emplace_back("WWW-Authenticate", "Bearer");
  // `details` is always an object, as the error shape promises.
  send(c, http_status(e.code),
       json{{"error",
             {{"code", std::string(to_string(e.code))},
              {"message", e.message},
              {"details", e.details.is_object() ? e.details : json::object()}}}},
       std::move(headers));
}

inline std::string etag(std::uint64_t version) { return "\"" + std::to_string(version) + "\""; }

inline bool valid_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
  });
}

inline constexpr std::size_t k_max_user_agent_bytes = 256;

/// The metadata recorded with every event a request causes:
/// `{"client_address": "<ip>:<port>", "user_agent": <User-Agent>}`. The user agent is made
/// valid UTF-8 (invalid bytes become U+FFFD, since event JSON must encode) and cut to at
/// most `k_max_user_agent_bytes` bytes at a character boundary; absent headers give "".
/// The event relay's status as served by /readyz and /v1/admin/projections.
inline json relay_json(const ports::relay_info& r) {
  return json{{"destination", r.destination},
              {"checkpoint", r.checkpoint},
              {"lag_positions", r.lag_positions},
              {"lag_seconds", r.lag_seconds},
              {"in_flight", r.in_flight},
              {"status", r.status},
              {"error", r.error}};
}

inline json request_metadata(const http_request& req) {
  return json{{"client_address", req.remote},
              {"user_agent", truncate_utf8(repair_utf8(req.header("user-agent")), k_max_user_agent_bytes)}};
}

/// The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1; the scheme is
/// case-insensitive, RFC 9110 §11.1), or nullopt when the value is not of that form.
inline std::optional<std::string> bearer_token(std::string_view auth) {
  constexpr std::string_view scheme = "bearer";
  if (auth.size() <= scheme.size() + 1) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(auth[i])) != scheme[i]) return std::nullopt;
  }
  auto rest = auth.substr(scheme.size());
  if (rest.front() != ' ') return std::nullopt;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  if (rest.empty() || rest.find(' ') != std::string_view::npos) return std::nullopt;
  return std::string(rest);
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (RFC 3339 §5.6, `T`/`Z` in either case) as
/// the same instant in the form every stored event `time` has: UTC with six fraction
/// digits (`2026-11-21T04:45:59.123456Z`), so string order is time order. A finer
/// fraction rounds up to the next microsecond, which keeps `time >= t` and `time < t`
/// exact against microsecond times. A space in place of the offset's sign is read as `+`
/// (an unencoded `+` in a query string arrives as a space). nullopt when malformed, or
/// outside the years 0000-9999 once in UTC. Defined in api_log.cpp.
std::optional<std::string> normalize_rfc3339(std::string_view s);

/// A request body that must be a JSON object, parsed at the edge (wire.hpp: bounded
/// depth, no NUL). `invalid_argument` otherwise.
inline result<json> parse_object(const std::string& body) {
  auto j = parse_json(body);
  if (!j) {
    auto e = j.error();
    e.message = "request body: " + e.message;
    return std::unexpected(std::move(e));
  }
  if (!j->is_object()) return fail(errc::invalid_argument, "request body must be a JSON object");
  return j;
}

/// A string field: nullopt when absent (or null); `invalid_argument` when of another type
/// or when required and absent.
inline result<std::optional<std::string>> string_field(const json& body, const char* name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return fail(errc::invalid_argument, std::string(name) + " is required", {{"field", name}});
    return std::optional<std::string>{};
  }
  if (!it->is_string()) return fail(errc::invalid_argument, std::string(name) + " must be a string", {{"field", name}});
  return std::optional<std::string>{it->get<std::string>()};
}

/// The body of a create with a display name: `{"name", "description"?}` (description
/// `""` when absent); `invalid_argument` for a body that is not an object or fields of
/// the wrong type. Lengths are the deciders' to check.
struct named {
  std::string name;
  std::string description;
};
inline result<named> named_body(const call& c) {
  auto body = parse_object(c.req.body);
  if (!body) return std::unexpected(body.error());
  auto name = string_field(*body, "name", true);
  if (!name) return std::unexpected(name.error());
  auto description = string_field(*body, "description", false);
  if (!description) return std::unexpected(description.error());
  return named{**name, description->value_or("")};
}

inline result<std::uint64_t> parse_u64(std::string_view s, const char* what) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return fail(errc::invalid_argument, std::string(what) + " must be a non-negative integer", {{"parameter", what}});
  }
  return v;
}

inline result<std::size_t> parse_limit(const call& c) {
  auto it = c.query.find("limit");
  if (it == c.query.end()) return k_default_limit;
  auto v = parse_u64(it->second, "limit");
  if (!v) return std::unexpected(v.error());
  if (*v == 0 || *v > k_max_limit) {
    return fail(errc::invalid_argument, "limit must be 1-" + std::to_string(k_max_limit), {{"parameter", "limit"}});
  }
  return static_cast<std::size_t>(*v);
}

/// `If-Match: 3`, `"3"` or `W/"3"` → 3.
inline result<std::uint64_t> parse_if_match(const std::string& raw) {
  if (raw.empty())
    return fail(errc::precondition_required, "If-Match with the version you based this change on is required");
  std::string_view v(raw);
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  auto n = parse_u64(v, "If-Match");
  if (!n) return fail(errc::invalid_argument, "If-Match must be a version number", {{"header", "If-Match"}});
  return n;
}

/// Who is present in which project (api_ws.cpp).
struct presence_board;
std::shared_ptr<presence_board> make_presence_board();

struct api::impl : std::enable_shared_from_this<api::impl> {
  api_dependencies d;
  boost::asio::thread_pool hashing;
  boost::asio::thread_pool probes;  // connection tests: blocking network I/O, bounded by a timeout
  std::string dummy_hash;           // verified against for unknown users, so timing does not reveal them
  std::shared_ptr<presence_board> presence = make_presence_board();

  explicit impl(api_dependencies deps) : d(deps), hashing(deps.hashing_threads), probes(deps.probe_threads) {
    auto h = d.hasher.hash("atrium-timing-equalizer");
    dummy_hash = h ? *h : std::string();
  }

  // ---- authentication ---------------------------------------------------------------

  result<principal> authenticate(call& c) const;

  // ---- access control (the policy decision point, events/access/policy.hpp) -----------

  /// Asks the policy whether `p` may perform `op` on `resource` (a stream id such as
  /// `project-<id>`, or a collection such as `projects`). Allowed: returns true. Denied:
  /// appends `security.access_denied` to the security stream, then answers 403 or 404,
  /// and returns false.
  bool allowed(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
               const std::string& resource);

  /// `allowed`, then, for an existing resource only: answers `not_found` (`missing`) and
  /// returns false when `exists` is false.
  bool admitted(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
                const std::string& resource, bool exists, const char* missing);

  /// Appends `e` to the `security` stream, then calls `then` once the projections have
  /// applied it (so the caller's next audit read shows it), or at once if the append
  /// failed (logged; the answer is not withheld).
  void record_security(proposed_event e, std::function<void()> then);

  /// Records `security.access_denied` for `e` (403/404) and answers it.
  void deny(const call_ptr& c, const error& e, const std::string& reason);

  /// The ids of every group `user_id` belongs to, directly or through nested groups
  /// (breadth-first over the groups projection; cycles cannot loop it).
  std::set<std::string> groups_of(const std::string& user_id) const;

  /// The caller's effective role on project `id` and its row; `row` is nullopt when the
  /// project does not exist.
  struct project_access {
    std::optional<json> row;
    std::optional<project_role> role;
  };
  project_access project_facts(const principal& p, const std::string& id) const;

  /// Group `id` as the caller relates to it: its row (nullopt if none), whether the
  /// caller is in it (directly or nested) and whether they manage it.
  struct group_access {
    std::optional<json> row;
    bool member = false;
    bool manager = false;
  };
  group_access group_facts(const principal& p, const std::string& id) const;
  /// Like `guard_project`, for groups.
  std::optional<group_access> guard_group(const call_ptr& c, const principal& p, access::operation op,
                                          const std::string& id);

  /// Connection `id`: its row (with `vault_ref`: never answer it as is) and the
  /// caller's effective role.
  struct connection_access {
    std::optional<json> row;
    std::optional<connection_role> role;
  };
  connection_access connection_facts(const principal& p, const std::string& id) const;
  /// Like `guard_project`, for connections.
  std::optional<connection_access> guard_connection(const call_ptr& c, const principal& p, access::operation op,
                                                    const std::string& id);

  /// Job `id`: its row, the caller's role on its project, whether the caller submitted it.
  struct job_access {
    std::optional<json> row;
    std::optional<project_role> role;
    bool self = false;
  };
  job_access job_facts(const principal& p, const std::string& id) const;

  /// An index table of a projection and the key prefix of one grantee in it.
  struct index_prefix {
    std::string table;
    std::string prefix;
  };
  /// The ids listed under any of `indexes` (what is shared with the caller directly or
  /// through one of their groups), at most `limit` per index after `after`, merged in
  /// id order. Errors: the store's.
  result<std::set<std::string>> shared_ids(std::string_view projection, const std::vector<index_prefix>& indexes,
                                           const std::string& after, std::size_t limit) const;
  /// The `user_projects` / `group_projects` prefixes of `p` and their groups.
  static std::vector<index_prefix> project_indexes(const principal& p);

  /// A user or group named by a sharing request.
  struct member_ref {
    std::string type;  ///< `user` or `group`
    std::string id;
  };
  /// The `{"user_id"}` or `{"group_id"}` of a sharing or membership request, which must
  /// exist: `invalid_argument` unless exactly one is given, `not_found` if it does not
  /// exist.
  result<member_ref> existing_member(const json& body) const;

  // ---- time travel (api_history.cpp) ---------------------------------------------------

  /// `?as_of=`: absent, a position, or an RFC 3339 time (normalized like stored times).
  struct as_of_bound {
    bool given = false;
    std::optional<std::uint64_t> position;
    std::optional<std::string> time;
  };
  /// Parses `as_of`; `invalid_argument` when it is neither a position nor a time.
  result<as_of_bound> parse_as_of(const call& c) const;
  /// The events of `stream` committed at or before the bound, in version order.
  result<std::vector<envelope>> events_until(const std::string& stream, const as_of_bound& bound) const;
  /// When the call has `as_of`, answers the entity of `stream` as it was then — folded
  /// from its events (projections/history.hpp), not read from the live projection —
  /// optionally passed through `shape` (e.g. the public subset of a user), with
  /// `"as_of":{"position","time"}` of the last event folded; 404 if it did not exist
  /// then. Returns false (nothing sent) when there is no `as_of`.
  bool answer_as_of(const call_ptr& c, const std::string& stream, const std::function<json(json)>& shape = nullptr);

  // ---- helpers ------------------------------------------------------------------------

  ports::command_context context(const call& c, const principal& p, std::optional<std::uint64_t> expected = {}) const;

  /// Finishes a command: waits until projections include it (read-your-writes), then
  /// answers with the entity's view — for a project, the projected row (the same shape
  /// as `GET`, timestamps included) when it has caught up to this version.
  ///
  /// When the store answered a retried command (same Idempotency-Key) with events it had
  /// already committed, those may belong to another entity than the one this attempt
  /// addressed (a create retried after the server stopped mid-request gets a new id);
  /// the answer is then that original entity, as projected.
  ports::completion finish(const call_ptr& c, unsigned status);

  /// The projected row of a `user-…` or `project-…` stream, as the API serves it.
  std::optional<json> entity_row(const std::string& stream) const;

  /// Applies `Idempotency-Key` to a mutating request: answers a replay or a reused key
  /// itself (returns false), or prepares the call to run and remember its response.
  bool idempotency(const call_ptr& c, const principal& p);

  /// Asks the policy for `op` on project `id` (`self`: the caller addresses their own
  /// membership). Allowed and existing: the caller's access and the row. Otherwise the
  /// denial or `not_found` has been answered: nullopt.
  std::optional<project_access> guard_project(const call_ptr& c, const principal& p, access::operation op,
                                              const std::string& id, bool self = false);

  static json public_user(const json& row, const principal& p);

  // ---- routes -------------------------------------------------------------------------

  /// Parses the target and routes one request (`api::handle`; WebSocket commands too).
  void handle(http_request request, respond_fn respond);

  void route(const call_ptr& c);

  /// GET /v1/ws: upgrades to a WebSocket connection (api_ws.cpp; 426 without an upgrade).
  void websocket(const call_ptr& c, const principal& p);

  /// GET /v1/events/stream: the log as Server-Sent Events after `Last-Event-ID` or `after`.
  void event_stream(const call_ptr& c, const principal& p);

  void login(const call_ptr& c);

  void create_user(const call_ptr& c, const principal& p);

  void list_users(const call_ptr& c, const principal& p);

  void get_user(const call_ptr& c, const principal& p, const std::string& id);

  /// PATCH /v1/users/{id}: `{"password"?, "grant_role"?, "revoke_role"?, "disabled"?: true}`,
  /// applied in that order, each as its own command; stops at the first error.
  void patch_user(const call_ptr& c, const principal& p, const std::string& id);

  /// POST /v1/users/{id}/disable: admins only; ends every session of the user.
  void disable_user_(const call_ptr& c, const principal& p, const std::string& id);

  /// POST /v1/auth/logout: ends the caller's session (the token is refused from then on)
  /// and answers 200 `{"status":"logged_out"}`.
  void logout(const call_ptr& c, const principal& p);

  /// Wraps `done` (a command's completion): once the command succeeded, ends the
  /// sessions of user `user_id` except `keep_token_hash` ("" ends all), then calls
  /// `done`; a store error ending them is answered 503.
  ports::completion ending_sessions(const call_ptr& c, std::string user_id, std::string keep_token_hash,
                                    ports::completion done);

  void create_project_(const call_ptr& c, const principal& p);

  void list_projects(const call_ptr& c, const principal& p);

  void get_project(const call_ptr& c, const principal& p, const std::string& id);

  void patch_project(const call_ptr& c, const principal& p, const std::string& id);

  void archive(const call_ptr& c, const principal& p, const std::string& id);

  void add_member_(const call_ptr& c, const principal& p, const std::string& id);

  void remove_member_(const call_ptr& c, const principal& p, const std::string& id, const std::string& member);

  // project cells (api_cells.cpp)
  /// POST /v1/projects/{id}/cells: `{"kind","content"?,"after"?,"cell_id"?}` → 201 the cell.
  void add_cell_(const call_ptr& c, const principal& p, const std::string& id);
  /// GET /v1/projects/{id}/cells (`?as_of=` too): `{"project_id","cells":[…],"version"}`.
  void list_cells(const call_ptr& c, const principal& p, const std::string& id);
  /// GET /v1/projects/{id}/cells/{cell_id} (`?as_of=` too): the cell; 404 if it is not
  /// a live cell (then).
  void get_cell(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  /// PATCH /v1/projects/{id}/cells/{cell_id}: an edit `{"content","base_version","op_id"}`
  /// or a move `{"after"}` → 200 the cell.
  void patch_cell(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  /// DELETE /v1/projects/{id}/cells/{cell_id} → 200 the remaining cells, as `list_cells`.
  void remove_cell_(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  /// Answers a cell command: the cell `cell_id` as projected once the projections have
  /// applied the command (as the actor's view says, if they have not caught up in time),
  /// with `ETag: "<cell version>"`; a no-op answers the cell at once. `replay_header`:
  /// mark a no-op with `Idempotency-Replayed: true` (an edit whose `op_id` was applied).
  ports::completion finish_cell(const call_ptr& c, const std::string& id, const std::string& cell_id, unsigned status,
                                bool replay_header);

  /// The policy operation and facts for reading stream `stream_id` (its entity's read
  /// permission; unowned streams such as `security` need `events_read`).
  std::pair<access::operation, access::facts> stream_access(const principal& p, const std::string& stream_id) const;

  /// GET /v1/audit: the audit projection's entries, filtered by `actor`, `stream`,
  /// `entity`, `type`, `since`/`until` (RFC 3339) and `after`/`before` (positions),
  /// paged both ways (`order`, `limit`); answers `{"entries","next","prev","order"}`.
  void audit(const call_ptr& c, const principal& p);

  /// GET /v1/audit/export?format=jsonl|csv: the whole filtered log (same filters as
  /// `audit`, no limit; at most `k_max_audit_export` entries), built on the hashing pool.
  void export_audit(const call_ptr& c, const principal& p);

  /// GET /v1/audit/verify: recomputes the hash chain on the blocking pool (it reads the
  /// whole log) and answers `{"ok","count","last_hash"}` or, broken, also
  /// `{"broken_at","reason"}` — 200 either way: the check itself succeeded.
  void verify_chain(const call_ptr& c, const principal& p);

  void events(const call_ptr& c, const principal& p);

  /// GET /v1/admin/projections: `{"head","ready","projections":[{"name","checkpoint",
  /// "lag_positions","lag_ms","status","error"}]}`.
  void projections(const call_ptr& c, const principal& p);
  /// GET /metrics: Prometheus text format (no authentication, like /readyz).
  void metrics(const call_ptr& c);

  /// POST /v1/admin/projections/{name}/rebuild: 202 `{"projection","status":"rebuilding"}`
  /// once the rebuild started; 404 unknown projection, 409 already rebuilding.
  void rebuild_projection(const call_ptr& c, const principal& p, const std::string& name);

  void stream(const call_ptr& c, const principal& p, const std::string& stream_id);

  // groups (api_groups.cpp)
  void create_group_(const call_ptr& c, const principal& p);
  void list_groups(const call_ptr& c, const principal& p);
  void get_group(const call_ptr& c, const principal& p, const std::string& id);
  std::set<std::string> subgroups_of(const std::string& id) const;
  void add_group_member_(const call_ptr& c, const principal& p, const std::string& id);
  void remove_group_member_(const call_ptr& c, const principal& p, const std::string& id, const std::string& member);

  // connections (api_connections.cpp)
  void create_connection_(const call_ptr& c, const principal& p);
  void list_connections(const call_ptr& c, const principal& p);
  void get_connection(const call_ptr& c, const principal& p, const std::string& id);
  void patch_connection(const call_ptr& c, const principal& p, const std::string& id);
  void delete_connection_(const call_ptr& c, const principal& p, const std::string& id);
  void test_connection(const call_ptr& c, const principal& p, const std::string& id);
  void share_connection(const call_ptr& c, const principal& p, const std::string& id);
  void unshare_connection(const call_ptr& c, const principal& p, const std::string& id, const std::string& who);

  // jobs and containers (api_ops.cpp)
  void submit_job_(const call_ptr& c, const principal& p);
  void list_jobs(const call_ptr& c, const principal& p);
  void get_job(const call_ptr& c, const principal& p, const std::string& id);
  void cancel_job(const call_ptr& c, const principal& p, const std::string& id);
  void declare_container_(const call_ptr& c, const principal& p);
  void list_containers(const call_ptr& c, const principal& p);
  void get_container(const call_ptr& c, const principal& p, const std::string& id);
  void container_command_(const call_ptr& c, const principal& p, const std::string& id, access::operation op);
};

}  // namespace atrium::http_adapter
