#pragma once
/// The projections of this slice:
///
/// | name       | table           | key                     | row                                   |
/// |------------|-----------------|-------------------------|---------------------------------------|
/// | `users`    | `users`         | user id                 | user row (view + password hash)       |
/// |            | `usernames`     | lowercase username      | `{"user_id"}`                         |
/// | `projects` | `projects`      | project id              | project view with members             |
/// |            | `user_projects` | `<user id>/<project id>`| `{"role"}` — the projects a user sees |
/// |            | `group_projects`| `<group id>/<project id>`| `{"role"}` — projects shared with a group |
/// | `audit`    | `entries`       | position (20 digits)    |
/// `{position,time,actor,stream,type,version,event_id,correlation_id}` |

#include <memory>
#include <vector>

#include "ports/read_model.hpp"

namespace atrium {

/// Users and the username index.
[[nodiscard]] std::unique_ptr<projection> make_users_projection();
/// Projects, their members, and per user the projects they may see.
[[nodiscard]] std::unique_ptr<projection> make_projects_projection();
/// The audit log: one entry per event of every stream.
[[nodiscard]] std::unique_ptr<projection> make_audit_projection();
/// Groups, their members, and the indexes that resolve a user's groups (access_projections.cpp).
[[nodiscard]] std::unique_ptr<projection> make_groups_projection();
/// Connections (never their secrets) and the index of who was granted each (access_projections.cpp).
[[nodiscard]] std::unique_ptr<projection> make_connections_projection();
/// Jobs and the per-project job index (ops_projections.cpp).
[[nodiscard]] std::unique_ptr<projection> make_jobs_projection();
/// Containers with desired and observed state (ops_projections.cpp).
[[nodiscard]] std::unique_ptr<projection> make_containers_projection();

/// Schedules, the per-project index and each schedule's runs (schedule_projections.cpp).
[[nodiscard]] std::unique_ptr<projection> make_schedules_projection();

/// A new instance of the projection called `name` (as `projection::name()` says), or
/// nullptr for an unknown name (used to rebuild one projection).
[[nodiscard]] std::unique_ptr<projection> make_projection(std::string_view name);

/// All projections of the server, in the order the runner applies them.
[[nodiscard]] std::vector<std::unique_ptr<projection>> make_all_projections();

}  // namespace atrium
