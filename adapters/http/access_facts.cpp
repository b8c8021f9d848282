// Facts for the policy decision point, read through the query port.
#include "adapters/http/access_facts.hpp"

namespace atrium::http_adapter {

project_access project_facts(const ports::project_queries& q, const principal& p, const std::string& id) {
  project_access out;
  if (!valid_id(id)) return out;
  auto record = q.project(id, p);
  if (!record || !*record) return out;
  out.view = std::move((*record)->view);
  out.role = (*record)->role;
  return out;
}

std::optional<project_access> guard_project(controller_kit& kit, const ports::project_queries& q, const call_ptr& c,
                                            const principal& p, access::operation op, const std::string& id,
                                            bool self) {
  auto facts = project_facts(q, p, id);
  const access::facts f{.role = facts.role, .self = self};
  if (!kit.admitted(c, p, op, f, "project-" + id, facts.view.has_value(), "no such project")) return std::nullopt;
  return facts;
}

group_access group_facts(const ports::group_queries& q, const principal& p, const std::string& id) {
  group_access out;
  if (!valid_id(id)) return out;
  auto view = q.group(id);
  if (!view || !*view) return out;
  out.view = std::move(**view);
  out.member = p.groups.contains(id);
  out.manager = out.view->value("created_by", "") == p.user_id;
  return out;
}

access::facts connection_access::facts() const {
  const auto role = record ? record->role : std::nullopt;
  return {.connection_user = role.has_value(),
          .connection_owner = role == connection_role::owner,
          .connection_holds_credentials = record && holds_credentials(record->view)};
}

connection_access connection_facts(const ports::connection_queries& q, const principal& p, const std::string& id) {
  connection_access out;
  if (!valid_id(id)) return out;
  auto record = q.connection(id, p);
  if (record && *record) out.record = std::move(**record);
  return out;
}

bool holds_credentials(const json& view) { return view.value("driver", "") != "sqlite"; }

namespace {

/// The facts of an entity that lives in a project (a job, a schedule) from `row`, its
/// read (none when absent or the read failed): its view and `p`'s role on its project.
template <class Access>
Access in_project(result<std::optional<json>> row, const ports::project_queries& projects, const principal& p) {
  Access out;
  if (!row || !*row) return out;
  out.view = std::move(**row);
  out.role = project_facts(projects, p, out.view->value("project_id", "")).role;
  return out;
}

}  // namespace

job_access job_facts(const ports::job_queries& jobs, const ports::project_queries& projects, const principal& p,
                     const std::string& id) {
  if (!valid_id(id)) return {};
  auto out = in_project<job_access>(jobs.job(id), projects, p);
  out.self = out.view && out.view->value("submitted_by", "") == p.user_id;
  return out;
}

schedule_access schedule_facts(const ports::schedule_queries& schedules, const ports::project_queries& projects,
                               const principal& p, const std::string& id) {
  if (!valid_id(id)) return {};
  return in_project<schedule_access>(schedules.schedule(id), projects, p);
}

std::pair<access::operation, access::facts> stream_access(const stream_facts_source& q, const principal& p,
                                                          const std::string& stream_id) {
  using access::operation;
  const auto dash = stream_id.find('-');
  const auto entity = dash == std::string::npos ? stream_id : stream_id.substr(0, dash);
  const auto id = dash == std::string::npos ? std::string() : stream_id.substr(dash + 1);
  if (entity == "user" && id == p.user_id) return {operation::user_read, {.self = true}};
  if (entity == "project") return {operation::project_read, {.role = project_facts(q.projects, p, id).role}};
  if (entity == "group") return {operation::group_read, group_facts(q.groups, p, id).facts()};
  if (entity == "connection") {
    const auto c = connection_facts(q.connections, p, id);
    const auto role = c.record ? c.record->role : std::nullopt;
    return {operation::connection_read,
            {.connection_user = role.has_value(), .connection_owner = role == connection_role::owner}};
  }
  if (entity == "job") return {operation::job_read, job_facts(q.jobs, q.projects, p, id).facts()};
  if (entity == "schedule") return {operation::schedule_read, schedule_facts(q.schedules, q.projects, p, id).facts()};
  if (entity == "container") return {operation::container_read, {}};
  return {operation::events_read, {}};  // other users' streams, `security`, username claims
}

result<member_ref> existing_member(const ports::user_queries& users, const ports::group_queries& groups,
                                   const json& body) {
  auto user = string_field(body, "user_id", false);
  if (!user) return std::unexpected(user.error());
  auto group = string_field(body, "group_id", false);
  if (!group) return std::unexpected(group.error());
  if (user->has_value() == group->has_value()) {
    return fail(errc::invalid_argument, "give exactly one of user_id and group_id");
  }
  const bool is_user = user->has_value();
  member_ref ref{is_user ? "user" : "group", is_user ? **user : **group};
  const char* what = is_user ? "no such user" : "no such group";
  const json details{{is_user ? "user_id" : "group_id", ref.id}};
  if (!valid_id(ref.id)) return fail(errc::not_found, what, details);
  bool exists = false;
  if (is_user) {
    auto u = users.user(ref.id);
    if (!u) return std::unexpected(u.error());
    exists = u->has_value();
  } else {
    auto g = groups.group(ref.id);
    if (!g) return std::unexpected(g.error());
    exists = g->has_value();
  }
  if (!exists) return fail(errc::not_found, what, details);
  return ref;
}

bool narrow_to_readable_projects(controller_kit& kit, const ports::project_queries& projects, const call_ptr& c,
                                 const principal& p, const std::string& project, access::operation list_op,
                                 const std::string& collection, const char* items, bool& every_project,
                                 std::vector<std::string>& ids) {
  if (!project.empty()) {
    const auto facts = project_facts(projects, p, project);
    if (!kit.allowed(c, p, access::operation::project_read, {.role = facts.role}, "project-" + project)) return false;
    every_project = false;
    ids = {project};
    return true;
  }
  if (!kit.allowed(c, p, list_op, {}, collection)) return false;
  if (p.is_admin() || p.has(global_role::auditor)) return true;
  auto shared = projects.shared_project_ids(p, k_max_limit);
  if (!shared) {
    send_error(c, shared.error());
    return false;
  }
  if (shared->empty()) {
    send_page(c, items, {});
    return false;
  }
  every_project = false;
  ids.assign(shared->begin(), shared->end());
  return true;
}

}  // namespace atrium::http_adapter
