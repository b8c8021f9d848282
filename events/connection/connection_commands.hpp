#pragma once
/// Commands on the connection aggregate. None carries credentials: the adapter checks
/// them with `validate_connection_spec`, stores them in the vault, and passes only the
/// vault reference and the fingerprint.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace atrium {

/// Define a connection; the acting user becomes its owner. Members and admins only
/// (auditors change nothing).
struct create_connection {
  std::string connection_id;  ///< new id (UUIDv7), chosen by the caller
  std::string name;           ///< 1–200 characters, not blank
  std::string driver;         ///< `sqlite` or `postgres`
  nlohmann::json params;      ///< see `validate_connection_spec`
  std::string vault_ref;      ///< where the adapter stored the credentials
  std::string fingerprint;    ///< fingerprint of those credentials
};

/// Change the name and/or the parameters (the whole parameter object). Owners only.
struct update_connection {
  std::optional<std::string> name;
  std::optional<nlohmann::json> params;
};

/// Point at newly stored credentials. Owners only; an unchanged fingerprint is a no-op.
struct rotate_credentials {
  std::string vault_ref;
  std::string fingerprint;
};

/// Record the outcome of a connection test. Anyone who can use the connection.
struct record_test {
  bool ok = false;
  std::string error;  ///< empty when `ok`; longer than 4096 bytes is cut
  std::uint64_t latency_ms = 0;
};

/// Give a user or a group a role (or change it). Owners only.
struct grant_connection_access {
  std::string grantee_type;  ///< `user` or `group`
  std::string grantee_id;
  std::string role;  ///< `user` or `owner`
};

/// Take a user's or a group's role away. Owners only.
struct revoke_connection_access {
  std::string grantee_type;  ///< `user` or `group`
  std::string grantee_id;
};

/// Delete the connection. Owners only.
struct delete_connection {};

/// Any command on a connection stream.
using connection_command = std::variant<create_connection, update_connection, rotate_credentials, record_test,
                                        grant_connection_access, revoke_connection_access, delete_connection>;

}  // namespace atrium
