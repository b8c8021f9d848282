#pragma once
/// The policy decision point: the one place that says whether a caller may perform an
/// operation of the HTTP API. Every route of the API asks `authorize` before it reads or
/// commands anything; the deciders check their own invariants again (defence in depth).
///
/// Pure: the adapter gathers the facts (the caller's effective role on the project or
/// connection concerned, group management, ...) from the read models and passes them in.
///
/// Rules (docs/design.md "Domain", docs/access.md has the full matrix):
/// - global `admin` may do everything; `auditor` reads every resource, the audit log and
///   the event log, and changes nothing; `member` creates projects, groups and
///   connections and acts where a role was granted to them or to one of their groups;
/// - project roles `viewer` < `editor` < `owner`, direct or through a group, the most
///   permissive grant winning; connection roles `user` < `owner` likewise;
/// - a denied read of a resource whose existence is private (project, group, connection,
///   job) answers `not_found`, as does a denied change of such a resource the caller
///   cannot see; otherwise `forbidden`.
///
/// API tokens (docs/access.md, "API tokens"): a request made with a token carries the
/// token's scopes (`principal::scopes`), and is allowed only what its owner may do *and*
/// what a scope allows — the intersection, decided here in two places:
/// - `authorize_route`: which routes a token may reach at all (`route_class`, given by each
///   route when it is registered), checked before the handler runs;
/// - `authorize`: which operations a token may perform (`scope_for`), checked with the
///   owner's roles on every operation, so a route that reads through several operations
///   (a stream of any entity) never lets a narrow token change anything.
/// A missing scope answers 403 `forbidden` naming it (`details.missing_scope`).

#include <optional>
#include <string>
#include <string_view>

#include "events/error.hpp"
#include "events/principal.hpp"

namespace atrium::access {

/// Every operation of the API that needs a decision.
enum class operation {
  user_create,
  user_list,
  user_read,
  user_update,  ///< PATCH of a user: admins, or the user themself (the decider limits what)
  user_disable,
  group_create,
  group_list,
  group_read,
  group_manage_members,
  project_create,
  project_list,
  project_read,
  project_update,
  project_archive,
  project_share,
  project_unshare,   ///< removing a member: owners, or a member leaving (`facts::self`)
  project_cell_add,  ///< the project's cells: editors and owners (reading them is `project_read`)
  project_cell_edit,
  project_cell_move,
  project_cell_remove,
  project_cell_run,  ///< run a cell (submits a job): editors and owners who may use its connection
  connection_create,
  connection_list,
  connection_read,
  connection_update,  ///< PATCH, also rotates credentials
  connection_delete,
  connection_share,
  connection_test,
  job_submit,
  job_list,
  job_read,
  job_cancel,
  schedule_create,  ///< create a schedule in a project: editors and owners who may use its target's connection
  schedule_list,    ///< list schedules: everyone, filtered to the projects they read
  schedule_read,    ///< a schedule and its runs: readers of its project
  schedule_manage,  ///< update, pause, resume, delete: editors and owners of its project
  container_create,
  container_list,
  container_read,
  container_start,
  container_stop,
  container_remove,
  container_update,         ///< PATCH the spec (the container rolls): admins
  container_logs,           ///< read a container's log (tail or follow): admins
  audit_read,               ///< the audit log and its chain verification
  events_read,              ///< the global event log and unowned streams (`security`)
  projections_read,         ///< the projections' checkpoints and lag
  projections_rebuild,      ///< start an online rebuild of a projection
  backups_manage,           ///< take and list online backups of the store: admins
  service_account_create,   ///< admins
  service_account_list,     ///< admins and auditors
  service_account_read,     ///< admins and auditors
  service_account_disable,  ///< admins: every token of the account fails at once
  token_create,             ///< a personal token (`facts::self`) by anyone; a service account's by admins
  token_list,               ///< one's own tokens (`facts::self`); admins list anyone's
  token_revoke,             ///< one's own token (`facts::self`); admins revoke any
  job_work,                 ///< the remote-worker routes (claim, heartbeat, report): admins only
  worker_list,              ///< `GET /v1/workers`: admins and auditors
};

/// `"project.update"`-style name of an operation, recorded in `security.access_denied`.
[[nodiscard]] std::string_view to_string(operation op) noexcept;

/// What the adapter knows about the caller and the resource addressed.
struct facts {
  /// The caller's effective project role on the project concerned (for a job: the job's
  /// project; for a submission: the target project); nullopt if none.
  std::optional<atrium::project_role> role;
  /// The caller may use the connection concerned (connection role `user` or `owner`).
  bool connection_user = false;
  /// The caller owns the connection concerned.
  bool connection_owner = false;
  /// The connection concerned holds credentials (a `postgres` user and password): only
  /// its owners (and admins) test it, since a test sends them to its host.
  bool connection_holds_credentials = false;
  /// The operation uses a connection (a job naming one, a cell given one, a cell run):
  /// the caller must be its user.
  bool uses_connection = false;
  /// The caller is a member of the group concerned (directly or through nested groups).
  bool group_member = false;
  /// The caller manages the group concerned (its creator).
  bool group_manager = false;
  /// The resource is the caller: their own user, their own membership, their own job.
  bool self = false;
};

/// The outcome: allowed, or the error to answer (`forbidden` or `not_found`) with the
/// reason recorded in the security stream.
struct decision {
  bool allowed = false;
  errc code = errc::forbidden;
  std::string reason;
  /// The token scope that would have allowed the request (`"jobs:work"`), when a scope
  /// was missing; empty otherwise. Answered as `details.missing_scope`.
  std::string missing_scope;

  [[nodiscard]] static decision allow() { return {true, errc::forbidden, {}, {}}; }
  [[nodiscard]] error as_error() const;
};

/// Decides whether `who` may perform `op` given `f`. Never fails otherwise. A token's
/// scopes are checked first (`scope_for`), then the owner's roles.
[[nodiscard]] decision authorize(const principal& who, operation op, const facts& f = {});

/// What a route is, as far as token scopes go (each route names its class when it is
/// registered; docs/access.md, "API tokens", has the table).
enum class route_class {
  other,       ///< every other route: needs `admin`
  event_read,  ///< `GET /v1/events`, `/v1/events/stream`, `/v1/streams/{s}`, `/v1/ws`: `events:read`
  job_read,    ///< `GET /v1/jobs`, `/v1/jobs/{id}`, its result, CSV and log: `jobs:work`
  job_work,    ///< the remote-worker routes: `jobs:work`
};

/// Whether `who` may reach a route of class `c`: always for a session; for a token when
/// one of its scopes covers the class (`admin` covers all). A denial is `forbidden` with
/// `missing_scope` set.
[[nodiscard]] decision authorize_route(const principal& who, route_class c);

/// The scope a token needs for `op`, besides `admin` which allows every operation:
/// `jobs:work` for `job_work`; `events:read` or `jobs:work` for `job_read`/`job_list`;
/// `events:read` for every other read (`*_read`, `*_list`, `events_read`); nullopt for
/// changes, which only `admin` allows.
[[nodiscard]] std::optional<token_scope> scope_for(operation op) noexcept;

}  // namespace atrium::access
