#pragma once
/// API views and row forms of groups and connections.
///
/// The `groups` and `connections` projections store rows in the row form. The actor
/// layer uses `*_row` / `*_from_row` as the snapshot form of an aggregate, so
/// `*_from_row(*_row(s))` gives back every field the decider reads. The API serves the
/// view form: `id` and `version` are always present, and the vault reference never is.
///
/// Projections add `created_at` and `updated_at` (RFC 3339) to rows. The `connections`
/// projection also adds `last_test.time`. The `*_from_row` functions ignore these fields.

#include <nlohmann/json.hpp>

#include "events/connection/connection_decider.hpp"
#include "events/group/group_decider.hpp"

namespace atrium {

/// `{"id","name","description","created_by","members":[{"user_id"}…,{"group_id"}…],"version"}`.
/// Members list the users first, then the groups, each sorted by id.
[[nodiscard]] nlohmann::json group_view(const group_state& s);

/// Row form of a group (equal to its view).
[[nodiscard]] nlohmann::json group_row(const group_state& s);
/// Inverse of `group_row`. Throws nlohmann::json::exception on a malformed row.
[[nodiscard]] group_state group_from_row(const nlohmann::json& row);

/// Row form of a connection: `{"id","name","driver","params","fingerprint","vault_ref",
/// "created_by","grants":[{"user_id"|"group_id","role"}],"last_test":{"ok","error",
/// "latency_ms"} or null,"deleted","version"}`. Grants list the users first, then the
/// groups, each sorted by id. It holds no secret, but its `vault_ref` is not served.
[[nodiscard]] nlohmann::json connection_row(const connection_state& s);
/// Inverse of `connection_row`. Throws nlohmann::json::exception on a malformed row.
[[nodiscard]] connection_state connection_from_row(const nlohmann::json& row);
/// The API view of a connection row: the row without `vault_ref`.
[[nodiscard]] nlohmann::json connection_view_of_row(nlohmann::json row);
/// The API view of a connection: `connection_view_of_row(connection_row(s))`.
[[nodiscard]] nlohmann::json connection_view(const connection_state& s);

}  // namespace atrium
