#pragma once
/// The declarative route table: each controller registers its routes as
/// `{method, path pattern, handler}` (`/v1/projects/{id}/cells/{cell_id}`: a `{…}`
/// segment matches any one segment and is passed to the handler in order). Looking a
/// request up tells a known path with a wrong method (405, with the methods that path
/// allows for `Allow`) from an unknown path (404).

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http/call.hpp"
#include "events/access/policy.hpp"

namespace atrium::http_adapter {

/// The `{…}` segments of a matched path, in order.
using route_params = std::vector<std::string>;

/// A route's handler: the call, the authenticated caller (empty for open routes) and the
/// path parameters. Answers the call exactly once, now or later.
using route_handler = std::function<void(const call_ptr&, const principal&, const route_params&)>;

/// Who may reach a route.
enum class route_access {
  authenticated,  ///< a bearer token is required (401 otherwise)
  open,           ///< no authentication (health, metrics, login)
  push,           ///< authenticated; a long-lived stream (may pass `?token=`, never over a WebSocket)
};

/// One route.
struct route {
  std::string method;   ///< `GET`, `POST`, `PATCH`, `DELETE`
  std::string pattern;  ///< e.g. `/v1/projects/{id}`
  route_handler handler;
  route_access access = route_access::authenticated;
  /// What the route is for API-token scopes (events/access/policy.hpp `authorize_route`):
  /// `other` routes need a token with `admin`; sessions reach every route.
  access::route_class scope = access::route_class::other;
  /// The query parameters the route reads (`?limit=&after=`); any other is refused with
  /// 400 `invalid_argument` naming it (`details.unknown`). Push routes also take `token`.
  std::vector<std::string> query = {};
};

/// Every route of the API. Filled once at start, then only read (thread-safe to look up).
class route_table {
 public:
  /// Adds `r` and returns it, to set what the initializer did not (`.query`). A pattern
  /// must start with `/`. The reference is valid until the next `add`.
  route& add(route r);

  /// What a lookup found.
  struct match {
    const route* found = nullptr;       ///< the route for this method and path, if any
    route_params params;                ///< its `{…}` segments
    std::vector<const route*> at_path;  ///< every route of this path (any method)
    /// The methods this path allows, comma separated, for `Allow`: its routes' methods,
    /// `HEAD` where it has `GET`, and `OPTIONS` (`GET, PATCH, HEAD, OPTIONS`).
    [[nodiscard]] std::string allow() const;
    /// The same as a list.
    [[nodiscard]] std::vector<std::string> allowed() const;
    /// True when the path is known and every route of it is open.
    [[nodiscard]] bool open() const;
    /// True when a route of this path is a push stream.
    [[nodiscard]] bool push() const;
  };

  /// Looks `method` and the decoded `path` segments up. `HEAD` finds the path's `GET`
  /// route (RFC 9110 §9.3.2: the same answer without its body).
  [[nodiscard]] match find(std::string_view method, const std::vector<std::string>& path) const;

  /// Every route, in the order added (pointers stay valid while the table lives and no
  /// route is added).
  [[nodiscard]] std::vector<const route*> all() const {
    std::vector<const route*> out;
    out.reserve(routes_.size());
    for (const auto& e : routes_) out.push_back(&e.r);
    return out;
  }

 private:
  struct entry {
    route r;
    std::vector<std::string> segments;  // "" stands for a parameter
  };
  std::vector<entry> routes_;
};

/// Answers 405 `method_not_allowed` (API error shape, `details.method` and
/// `details.allowed`) with `Allow`.
void send_method_not_allowed(const call_ptr& c, const route_table::match& m);

/// The query parameters of `c` that route `r` does not take (`token` is taken by push
/// routes), in the order of the query; empty when all are known.
[[nodiscard]] std::vector<std::string> unknown_query(const call& c, const route& r);

/// The route table as JSON: `[{"method","pattern","access","query":[…]}]`, `access` one of
/// `authenticated`, `open`, `push` (what `atriumd routes` prints).
[[nodiscard]] json routes_json(const route_table& t);

}  // namespace atrium::http_adapter
