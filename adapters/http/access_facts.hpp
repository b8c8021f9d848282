#pragma once
/// The facts the policy decision point needs about a resource, read through the query
/// port (events/access/policy.hpp: `access::facts`), and the guards that ask the policy
/// with them. Shared by the controllers and the real-time transport.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/http/kit.hpp"

namespace atrium::http_adapter {

/// Project `id` as `p` relates to it: its view (nullopt when it does not exist, the id
/// is not valid or the store failed) and `p`'s effective role.
struct project_access {
  std::optional<json> view;
  std::optional<project_role> role;
};
[[nodiscard]] project_access project_facts(const ports::project_queries& q, const principal& p, const std::string& id);

/// Asks the policy for `op` on project `id` (`self`: the caller addresses their own
/// membership). Allowed and existing: the caller's access. Otherwise the denial or
/// `not_found` has been answered: nullopt.
std::optional<project_access> guard_project(controller_kit& kit, const ports::project_queries& q, const call_ptr& c,
                                            const principal& p, access::operation op, const std::string& id,
                                            bool self = false);

/// Group `id` as `p` relates to it: its view, whether `p` is in it (directly or
/// nested) and whether they manage it.
struct group_access {
  std::optional<json> view;
  bool member = false;
  bool manager = false;
  [[nodiscard]] access::facts facts() const { return {.group_member = member, .group_manager = manager}; }
};
[[nodiscard]] group_access group_facts(const ports::group_queries& q, const principal& p, const std::string& id);

/// Connection `id` as `p` relates to it (nullopt record: none).
struct connection_access {
  std::optional<ports::connection_record> record;
  /// The policy's facts; `holds_credentials` as `holds_credentials` says.
  [[nodiscard]] access::facts facts() const;
};
[[nodiscard]] connection_access connection_facts(const ports::connection_queries& q, const principal& p,
                                                 const std::string& id);

/// A connection holds credentials when its driver takes them (`postgres`: a user and a
/// password); `sqlite` connections hold none.
[[nodiscard]] bool holds_credentials(const json& view);

/// Job `id`: its view, the caller's role on its project, whether the caller submitted it.
struct job_access {
  std::optional<json> view;
  std::optional<project_role> role;
  bool self = false;
  [[nodiscard]] access::facts facts() const { return {.role = role, .self = self}; }
};
[[nodiscard]] job_access job_facts(const ports::job_queries& jobs, const ports::project_queries& projects,
                                   const principal& p, const std::string& id);

/// Schedule `id`: its row (nullopt when there is none, it was deleted, the id is not
/// valid or the store failed) and the caller's role on its project.
struct schedule_access {
  std::optional<json> view;
  std::optional<project_role> role;
  [[nodiscard]] access::facts facts() const { return {.role = role}; }
};
[[nodiscard]] schedule_access schedule_facts(const ports::schedule_queries& schedules,
                                             const ports::project_queries& projects, const principal& p,
                                             const std::string& id);

/// The query ports the policy's facts about any stream come from.
struct stream_facts_source {
  const ports::project_queries& projects;
  const ports::group_queries& groups;
  const ports::connection_queries& connections;
  const ports::job_queries& jobs;
  const ports::schedule_queries& schedules;
};

/// The policy operation and facts for reading stream `stream_id` (its entity's read
/// permission, e.g. `schedule_read` for `schedule-<id>`: readers of the schedule's
/// project, admins and auditors; unowned streams such as `security` need `events_read`).
[[nodiscard]] std::pair<access::operation, access::facts> stream_access(const stream_facts_source& q,
                                                                        const principal& p,
                                                                        const std::string& stream_id);

/// A user or group named by a sharing or membership request.
struct member_ref {
  std::string type;  ///< `user` or `group`
  std::string id;
};
/// The `{"user_id"}` or `{"group_id"}` of a sharing or membership request, which must
/// exist: `invalid_argument` unless exactly one is given, `not_found` if it does not
/// exist, the store's errors.
[[nodiscard]] result<member_ref> existing_member(const ports::user_queries& users, const ports::group_queries& groups,
                                                 const json& body);

/// The projects a list across projects (jobs, schedules) may show `p`, as a filter's
/// `every_project` / `projects` pair. `project` (a `?project…=` query value, or empty):
/// that one project, if `p` may read it (`project.read`). Empty: every project for admins
/// and auditors after `list_op` on `collection` passes, else the projects shared with
/// `p` (at most `k_max_limit`). Returns false when it has answered the call: a denial
/// (403/404, recorded), a read error, or an empty page named `items` when `p` sees no
/// project; the caller then stops.
bool narrow_to_readable_projects(controller_kit& kit, const ports::project_queries& projects, const call_ptr& c,
                                 const principal& p, const std::string& project, access::operation list_op,
                                 const std::string& collection, const char* items, bool& every_project,
                                 std::vector<std::string>& ids);

}  // namespace atrium::http_adapter
