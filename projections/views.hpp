#pragma once
/// API views of entities and their row forms. The users and projects projections
/// store rows in the row form; the API serves the view form (`id` and `version`
/// always present, secrets never).

#include <nlohmann/json.hpp>

#include "events/project/project_decider.hpp"
#include "events/user/user_decider.hpp"

namespace atrium {

/// `{"id","username","email","roles":[...],"disabled","version"}` — no password hash.
[[nodiscard]] nlohmann::json user_view(const user_state& s);

/// `{"id","name","description","created_by","members":[{"user_id","role"}],
///   "groups":[{"group_id","role"}],"archived","version"}`.
[[nodiscard]] nlohmann::json project_view(const project_state& s);

/// Row form of a user: the view plus `password_hash`.
[[nodiscard]] nlohmann::json user_row(const user_state& s);
/// Inverse of `user_row`; throws nlohmann::json::exception on a malformed row.
[[nodiscard]] user_state user_from_row(const nlohmann::json& row);

/// Row form of a project (equal to its view).
[[nodiscard]] nlohmann::json project_row(const project_state& s);
/// Inverse of `project_row`; throws nlohmann::json::exception on a malformed row.
[[nodiscard]] project_state project_from_row(const nlohmann::json& row);

/// Removes private fields (`password_hash`) from a user row, giving its view.
[[nodiscard]] nlohmann::json user_view_of_row(nlohmann::json row);

}  // namespace atrium
