#pragma once
/// Commands on the user aggregate. Passwords arrive already hashed (argon2id, by the
/// adapter that owns the hashing library): the core never sees a clear-text password.

#include <string>
#include <variant>

namespace atrium {

/// Create the user. Admins only.
struct register_user {
  std::string user_id;        ///< new id (UUIDv7), chosen by the caller
  std::string username;       ///< 3–32 chars of [a-z0-9._-], stored lowercase
  std::string email;          ///< must contain one '@', at most 254 chars
  std::string role;           ///< admin, member or auditor
  std::string password_hash;  ///< argon2id PHC string, non-empty
};

/// Add a global role. Admins only; granting a held role is a no-op.
struct grant_role {
  std::string role;
};

/// Remove a global role. Admins only; an admin cannot revoke their own admin role.
struct revoke_role {
  std::string role;
};

/// Replace the password hash. The user themself or an admin. A user changing their own
/// password (admins too) must have proven the current one: the adapter, which owns the
/// hashing library, checks it against the stored hash and sets `current_password_verified`.
/// An admin resetting someone else's password needs no proof.
struct change_password {
  std::string password_hash;
  bool current_password_verified = false;  ///< set only after the current password matched
};

/// Disable the user. Admins only, never oneself; disabling twice is a no-op.
struct disable_user {
  std::string reason;
};

/// Create a service account (a user of kind `service`, without a password). Admins only.
struct register_service_account {
  std::string user_id;      ///< new id (UUIDv7), chosen by the caller
  std::string name;         ///< as a username: 3–32 chars of [a-z0-9._-], stored lowercase
  std::string description;  ///< at most 1000 bytes of UTF-8 (may be empty)
  std::string role;         ///< admin, member or auditor
};

/// Any command on a user stream.
using user_command =
    std::variant<register_user, grant_role, revoke_role, change_password, disable_user, register_service_account>;

}  // namespace atrium
