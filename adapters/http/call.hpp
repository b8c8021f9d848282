#pragma once
/// The request in flight and what every controller answers and parses with: the
/// `call`, `send`/`send_error` (the API's error shape), ETags, ids, bodies, paging,
/// `If-Match`. Beast-free; not a public header (only adapters/http includes it).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/http/api.hpp"
#include "adapters/http/wire.hpp"
#include "events/principal.hpp"
#include "events/text.hpp"
#include "ports/queries.hpp"

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
  /// The route this request is counted under in the metrics (http_metrics route id; 0:
  /// `unmatched` until the route table found one).
  int route_id = 0;
  std::string who = "-";
  std::string command_id;  ///< scoped Idempotency-Key, when the client sent one
  std::string user_id;     ///< the authenticated caller, once known
  std::string token_hash;  ///< SHA-256 hex of the caller's session token, once authenticated
  std::string token_id;    ///< the public id of the caller's API token ("" for a session)
  /// How the caller authenticated, once known: `bearer` (Authorization header), `token`
  /// (`?token=` on a WebSocket or SSE route) or `cookie` (the `atrium_session` cookie).
  std::string via;
  std::int64_t expires_at = 0;  ///< the caller's session or token expiry, Unix seconds (0: never)
  /// The policy operation and resource this call was authorized for, recorded with a
  /// denial the decider reports later (`forbidden` from a command).
  std::string operation = "-";
  std::string resource = "-";
  /// Stores the final response under the idempotency key (set when a key was claimed).
  std::function<void(unsigned status, const std::string& body, const std::string& etag)> remember;
  /// Set for a WebSocket command: takes a JSON answer as it is (`send` never dumps it).
  std::function<void(unsigned status, const json& body, const std::vector<std::pair<std::string, std::string>>&)>
      json_sink;
};
using call_ptr = std::shared_ptr<call>;

/// `method=… path=…` of a request for a log line, escaped (events/text.hpp `log_escape`):
/// nothing a client sends can start a new log line or forge a field.
inline std::string log_request(const call& c) {
  return "method=" + log_escape(c.req.method, 32) +
         " path=" + log_escape(c.req.target.substr(0, c.req.target.find('?')));
}

/// The headers of an answer, in order.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// Answers `body` with `status` (logged as one line; remembered under the idempotency
/// key when one was claimed and the status is below 500). A 201 to a POST whose body has
/// a string `id` gets `Location: <request path>/<id>` unless `headers` has one. A call with a `json_sink`
/// (a WebSocket command) gets the JSON itself, never its text.
void send(const call_ptr& c, unsigned status, const json& body, header_list headers = {});

/// Answers `e` in the API's error shape `{"error":{"code","message","details"}}`
/// (`WWW-Authenticate: Bearer` with a 401), with `headers` besides.
void send_error(const call_ptr& c, const error& e, header_list headers = {});

/// Answers a non-JSON body with 200 (exports, metrics), logged like `send`.
void send_body(const call_ptr& c, std::string body, std::string content_type, header_list headers);

/// Answers an entity's view with 200 and `ETag: "<its version>"`.
void send_view(const call_ptr& c, const json& view);

/// Answers one page of a list: `{"<name>":[…],"next"}`.
void send_page(const call_ptr& c, const char* name, const ports::page& page);

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

/// `?limit=` (default `k_default_limit`, 1-`k_max_limit`) and `?after=` of a list.
inline result<ports::page_request> parse_page(const call& c) {
  auto limit = parse_limit(c);
  if (!limit) return std::unexpected(limit.error());
  auto it = c.query.find("after");
  return ports::page_request{it == c.query.end() ? std::string() : it->second, *limit};
}

/// A query parameter, "" when absent.
inline std::string query_param(const call& c, const char* name) {
  auto it = c.query.find(name);
  return it == c.query.end() ? std::string() : it->second;
}

/// `If-Match: 3`, `"3"`, `W/"3"` or `"3-gz"` (the tag of a gzip answer) → 3: the version
/// a change is based on; `*` → nullopt (any current version: the resource exists, which
/// the route checked before). Absent: `precondition_required` (428); not a version
/// number: `invalid_argument`.
inline result<std::optional<std::uint64_t>> parse_if_match(const std::string& raw) {
  if (raw.empty())
    return fail(errc::precondition_required, "If-Match with the version you based this change on is required");
  std::string_view v(raw);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v == "*") return std::optional<std::uint64_t>{};
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.ends_with("-gz")) v.remove_suffix(3);
  auto n = parse_u64(v, "If-Match");
  if (!n) return fail(errc::invalid_argument, "If-Match must be a version number or *", {{"header", "If-Match"}});
  return std::optional<std::uint64_t>{*n};
}

/// The `If-Match` of `c` where it is optional: nullopt when absent (the change applies to
/// any version), else `parse_if_match`. The command then carries it as its expected
/// version, so a stale one is answered 409 `version_conflict` with the current version.
inline result<std::optional<std::uint64_t>> optional_if_match(const call& c) {
  const auto raw = c.req.header("if-match");
  if (raw.empty()) return std::optional<std::uint64_t>{};
  return parse_if_match(raw);
}

}  // namespace atrium::http_adapter
