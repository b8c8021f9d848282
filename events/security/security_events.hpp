#pragma once
/// Events of the `security` stream: what auditors need that is not a state change of an
/// entity (DESIGN.md, "Domain sketch"). All security events go to the one stream
/// `security`, appended with expected version `any`. Catalog: docs/events.md.

#include <string>
#include <string_view>

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

}  // namespace atrium
