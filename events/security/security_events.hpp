#pragma once
/// Events of the `security` stream: what auditors need that is not a state change of an
/// entity (docs/design.md, "Domain"). All security events go to the one stream
/// `security`, appended with expected version `any`. Catalog: docs/events.md.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium {

/// The stream every security event is appended to.
inline constexpr std::string_view security_stream = "security";

/// A user logged in and received a session token.
struct security_login_succeeded {
  static constexpr std::string_view type = "security.login_succeeded";
  static constexpr int schema = 1;
  std::string user_id;
  std::string username;
  std::string client_address;  ///< "ip:port" of the HTTP peer
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(security_login_succeeded, user_id, username, client_address)

/// A login was refused. `username` is what the client sent (at most 64 bytes kept);
/// `reason` is `invalid_credentials` or `disabled`.
struct security_login_failed {
  static constexpr std::string_view type = "security.login_failed";
  static constexpr int schema = 1;
  std::string username;
  std::string reason;
  std::string client_address;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(security_login_failed, username, reason, client_address)

/// A login was refused 429 without checking the password: too many failures for the
/// account (`scope` `account`: `subject` is the username as claimed, at most 64 bytes)
/// or from the address (`scope` `address`). `retry_after_s`: the seconds the client was
/// told to wait. At most one per account or address per 15-minute window is recorded
/// (docs/access.md "Login throttling"), however many attempts were refused.
struct security_login_throttled {
  static constexpr std::string_view type = "security.login_throttled";
  static constexpr int schema = 1;
  std::string subject;
  std::string client_address;  ///< "ip:port" of the HTTP peer
  std::int64_t retry_after_s = 0;
  std::string scope;  ///< `account` or `address`
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(security_login_throttled, subject, client_address, retry_after_s, scope)

/// The policy decision point refused a request (docs/access.md). `operation` is the
/// policy's name for it (`project.update`), `resource` the stream or collection addressed
/// (`project-<id>`, `projects`), `status` the HTTP status answered (403 or 404).
struct security_access_denied {
  static constexpr std::string_view type = "security.access_denied";
  static constexpr int schema = 1;
  std::string user_id;
  std::string operation;
  std::string resource;
  std::string reason;
  unsigned status = 403;
  std::string client_address;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(security_access_denied, user_id, operation, resource, reason, status, client_address)

/// An API token was made (docs/access.md, "API tokens"). Never the secret: only its id,
/// owner and what it may do. `user_id` is the token's owner (a person for a personal
/// token, a service account's id for its tokens), `created_by` who made it;
/// `expires_at` Unix seconds (0: never expires).
struct security_token_created {
  static constexpr std::string_view type = "security.token_created";
  static constexpr int schema = 1;
  std::string token_id;
  std::string user_id;
  std::string created_by;
  std::string name;
  std::vector<std::string> scopes;  ///< `events:read`, `jobs:work`, `admin`
  std::int64_t expires_at = 0;
  std::string client_address;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(security_token_created, token_id, user_id, created_by, name, scopes, expires_at,
                                   client_address)

/// An API token was revoked: it fails (401) on every later request. `user_id` is its
/// owner, `revoked_by` who revoked it; `scopes` what it could do.
struct security_token_revoked {
  static constexpr std::string_view type = "security.token_revoked";
  static constexpr int schema = 1;
  std::string token_id;
  std::string user_id;
  std::string revoked_by;
  std::vector<std::string> scopes;
  std::string client_address;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(security_token_revoked, token_id, user_id, revoked_by, scopes, client_address)

}  // namespace atrium
