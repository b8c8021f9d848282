#pragma once
/// Events of the user aggregate (stream `user-<id>`) and of username claims
/// (stream `username-<name>`, one event, appended atomically with `user.registered`
/// so that a username is unique without check-then-act). Catalog: docs/events.md.

#include <array>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace atrium {

/// A user account was created. `password_hash` is an argon2id PHC string; it is
/// redacted from every API response.
struct user_registered {
  static constexpr std::string_view type = "user.registered";
  static constexpr int schema = 1;
  static constexpr std::array<std::string_view, 1> redacted{"password_hash"};
  std::string user_id;
  std::string username;
  std::string email;
  std::string role;  ///< initial global role: admin, member or auditor
  std::string password_hash;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_registered, user_id, username, email, role, password_hash)

/// A global role was added to the user.
struct user_role_granted {
  static constexpr std::string_view type = "user.role_granted";
  static constexpr int schema = 1;
  std::string role;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_role_granted, role)

/// A global role was taken from the user.
struct user_role_revoked {
  static constexpr std::string_view type = "user.role_revoked";
  static constexpr int schema = 1;
  std::string role;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_role_revoked, role)

/// The user's password changed; the new argon2id hash is redacted from responses.
struct user_password_changed {
  static constexpr std::string_view type = "user.password_changed";
  static constexpr int schema = 1;
  static constexpr std::array<std::string_view, 1> redacted{"password_hash"};
  std::string password_hash;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_password_changed, password_hash)

/// The user was disabled: they can no longer log in or act, and their tokens fail.
struct user_disabled {
  static constexpr std::string_view type = "user.disabled";
  static constexpr int schema = 1;
  std::string reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_disabled, reason)

/// A service account was created: a principal that is not a person (docs/access.md,
/// "Service accounts"). It lives in the user's stream (`user-<id>`), so project and
/// connection grants, groups and the policy treat it as a user; it has no password and
/// never logs in: it acts only through API tokens. `name` is claimed like a username
/// (one namespace for people and service accounts).
struct user_service_account_created {
  static constexpr std::string_view type = "user.service_account_created";
  static constexpr int schema = 1;
  std::string user_id;
  std::string name;         ///< normalized like a username
  std::string description;  ///< free text, at most 1000 bytes of UTF-8
  std::string role;         ///< global role: admin, member or auditor
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_service_account_created, user_id, name, description, role)

/// A username was claimed by a user (stream `username-<lowercase name>`).
struct username_claimed {
  static constexpr std::string_view type = "username.claimed";
  static constexpr int schema = 1;
  std::string username;
  std::string user_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(username_claimed, username, user_id)

/// The events of a `user-<id>` stream.
using user_event = std::variant<user_registered, user_role_granted, user_role_revoked, user_password_changed,
                                user_disabled, user_service_account_created>;

}  // namespace atrium
