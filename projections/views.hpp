#pragma once
/// API views of entities and their row forms. The users and projects projections
/// store rows in the row form; the API serves the view form (`id` and `version`
/// always present, secrets never).

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "events/project/project_decider.hpp"
#include "events/user/user_decider.hpp"

namespace atrium {

/// `{"id","username","email","roles":[...],"disabled","version"}` — no password hash.
[[nodiscard]] nlohmann::json user_view(const user_state& s);

/// `{"id","name","description","created_by","members":[{"user_id","role"}],
///   "groups":[{"group_id","role"}],"archived","cells":[cell…],"version"}`, each cell
/// `{"cell_id","kind","content","version","after","connection_id"}` in notebook order
/// (`after`: the id of the cell before it, "" for the first; `connection_id`: "" = none).
/// Projected rows add `updated_at` and `last_job_id` to each cell (the projects
/// projection keeps them; the aggregate does not know them).
[[nodiscard]] nlohmann::json project_view(const project_state& s);

/// The cells of a project view or row, `[{"cell_id","kind","content","version","after",
/// "connection_id" (,"updated_at","last_job_id" in projected rows)}]` in order; an empty
/// array when it has none.
[[nodiscard]] nlohmann::json project_cells_of(const nlohmann::json& project);

/// Row form of a user: the view plus `password_hash`.
[[nodiscard]] nlohmann::json user_row(const user_state& s);
/// Inverse of `user_row`; throws nlohmann::json::exception on a malformed row.
[[nodiscard]] user_state user_from_row(const nlohmann::json& row);

/// Row form of a project (also its snapshot form): the view plus what only the
/// aggregate needs, `removed_cells` (ids), `recent_edits` (`[{"op_id","cell_id",
/// "version"}]`, oldest first) and `cell_updates` (`{"<cell_id>":[{"version","changes",
/// "client_id"}…]}`, each live cell's kept co-editing updates, oldest first).
[[nodiscard]] nlohmann::json project_row(const project_state& s);
/// Inverse of `project_row`; throws nlohmann::json::exception on a malformed row.
[[nodiscard]] project_state project_from_row(const nlohmann::json& row);

/// Removes private fields (`password_hash`) from a user row, giving its view.
[[nodiscard]] nlohmann::json user_view_of_row(nlohmann::json row);

/// Removes the aggregate's bookkeeping (`removed_cells`, `recent_edits`,
/// `cell_updates`) from a project row, giving its view (timestamps kept).
[[nodiscard]] nlohmann::json project_view_of_row(nlohmann::json row);

/// The co-editing state of live cell `cell_id` in a project row: `{"version": the
/// cell's version, "updates": [{"version","changes","client_id"}…]}` (its kept updates,
/// oldest first; none in rows written before co-editing); nullopt when the row has no
/// such live cell.
[[nodiscard]] std::optional<nlohmann::json> cell_updates_of_row(const nlohmann::json& row, const std::string& cell_id);

}  // namespace atrium
