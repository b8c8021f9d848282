#pragma once
/// Events of the connection aggregate (stream `connection-<id>`). Catalog: docs/events.md.
///
/// No event ever carries a secret. Credentials live in the vault; events hold only the
/// vault reference (`vault_ref`) and a fingerprint of the credentials. The fingerprint
/// shows that they changed without showing what they are.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace atrium {

/// A connection to an external database was defined. The same append also holds a
/// `connection.access_granted` that makes the creator an `owner`.
struct connection_created {
  static constexpr std::string_view type = "connection.created";
  static constexpr int schema = 1;
  std::string connection_id;
  std::string name;
  std::string driver;       ///< `sqlite` or `postgres`
  nlohmann::json params;    ///< driver parameters with defaults filled in; never credentials
  std::string vault_ref;    ///< where the credentials are stored (not the credentials)
  std::string fingerprint;  ///< fingerprint of the credentials (not the credentials)
  std::string created_by;   ///< user id of the creator
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(connection_created, connection_id, name, driver, params, vault_ref, fingerprint,
                                   created_by)

/// The name and/or parameters changed; both fields carry the full new values.
struct connection_updated {
  static constexpr std::string_view type = "connection.updated";
  static constexpr int schema = 1;
  std::string name;
  nlohmann::json params;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(connection_updated, name, params)

/// New credentials were stored in the vault.
struct connection_credentials_rotated {
  static constexpr std::string_view type = "connection.credentials_rotated";
  static constexpr int schema = 1;
  std::string vault_ref;
  std::string fingerprint;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(connection_credentials_rotated, vault_ref, fingerprint)

/// The connection was tried against the database.
struct connection_tested {
  static constexpr std::string_view type = "connection.tested";
  static constexpr int schema = 1;
  bool ok = false;
  std::string error;             ///< the driver's message; empty when `ok`
  std::uint64_t latency_ms = 0;  ///< round trip of the test, milliseconds
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(connection_tested, ok, error, latency_ms)

/// A user or a group got a role on the connection, or their role changed.
struct connection_access_granted {
  static constexpr std::string_view type = "connection.access_granted";
  static constexpr int schema = 1;
  std::string grantee_type;  ///< `user` or `group`
  std::string grantee_id;    ///< bare user id or group id
  std::string role;          ///< `user` or `owner`
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(connection_access_granted, grantee_type, grantee_id, role)

/// A user's or a group's role on the connection was taken away.
struct connection_access_revoked {
  static constexpr std::string_view type = "connection.access_revoked";
  static constexpr int schema = 1;
  std::string grantee_type;  ///< `user` or `group`
  std::string grantee_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(connection_access_revoked, grantee_type, grantee_id)

/// The connection was deleted; every further command on it is `not_found`.
struct connection_deleted {
  static constexpr std::string_view type = "connection.deleted";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const connection_deleted&) { j = nlohmann::json::object(); }
/// Accepts any object (fields a later schema may add are ignored).
inline void from_json(const nlohmann::json& j, connection_deleted&) {
  if (!j.is_object()) throw nlohmann::json::type_error::create(302, "connection.deleted payload must be an object", &j);
}

/// The events of a `connection-<id>` stream.
using connection_event =
    std::variant<connection_created, connection_updated, connection_credentials_rotated, connection_tested,
                 connection_access_granted, connection_access_revoked, connection_deleted>;

}  // namespace atrium
