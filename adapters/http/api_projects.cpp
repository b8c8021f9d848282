// The HTTP API: projects and their members.
#include "adapters/http/api_internal.hpp"

#include "events/project/project_decider.hpp"
#include "projections/views.hpp"

namespace atrium::http_adapter {

/// Asks the policy for `op` on project `id`; the project's row when allowed (nullopt
/// when it does not exist and the caller reads everything), or nothing after answering
/// the denial.
std::optional<api::impl::project_access> api::impl::guard_project(const call_ptr& c, const principal& p,
                                                                  access::operation op, const std::string& id,
                                                                  bool self) {
  auto facts = project_facts(p, id);
  const access::facts f{.role = facts.role, .self = self};
  if (!admitted(c, p, op, f, "project-" + id, facts.row.has_value(), "no such project")) return std::nullopt;
  return facts;
}

void api::impl::create_project_(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::project_create, {}, "projects")) return;
  auto named = named_body(*c);
  if (!named) return send_error(c, named.error());
  auto id = new_uuid_v7();
  d.commands.execute(id, create_project{id, named->name, named->description}, context(*c, p), finish(c, 201));
}

namespace {

/// A project as listed: its view without the cells (their content can be large; `GET`
/// of the project or of its cells serves them) but with `cell_count`.
json project_summary(const json& row) {
  auto view = project_view_of_row(row);
  view["cell_count"] = project_cells_of(view).size();
  view.erase("cells");
  return view;
}

}  // namespace

void api::impl::list_projects(const call_ptr& c, const principal& p) {
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  const auto after = c->query.contains("after") ? c->query["after"] : std::string();
  json projects = json::array();
  std::string last;
  if (p.is_admin() || p.has(global_role::auditor)) {
    auto rows = d.read_models.scan("projects", "projects", "", after, *limit);
    if (!rows) return send_error(c, rows.error());
    for (const auto& r : *rows) projects.push_back(project_summary(r.value));
    if (!rows->empty()) last = rows->back().key;
  } else {
    auto ids = shared_ids("projects", project_indexes(p), after, *limit);
    if (!ids) return send_error(c, ids.error());
    for (const auto& pid : *ids) {
      if (projects.size() == *limit) break;
      auto row = d.read_models.get("projects", "projects", pid);
      if (!row) return send_error(c, row.error());
      if (*row) projects.push_back(project_summary(**row));
      last = pid;
    }
  }
  send(c, 200, json{{"projects", projects}, {"next", projects.size() == *limit ? json(last) : json(nullptr)}});
}

void api::impl::get_project(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = guard_project(c, p, access::operation::project_read, id);
  if (!facts || answer_as_of(c, "project-" + id)) return;
  send(c, 200, project_view_of_row(*facts->row), {{"ETag", etag(facts->row->value("version", std::uint64_t{0}))}});
}

void api::impl::patch_project(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_project(c, p, access::operation::project_update, id)) return;
  auto expected = parse_if_match(c->req.header("if-match"));
  if (!expected) return send_error(c, expected.error());
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto name = string_field(*body, "name", false);
  if (!name) return send_error(c, name.error());
  auto description = string_field(*body, "description", false);
  if (!description) return send_error(c, description.error());
  if (!*name && !*description)
    return send_error(c, error{errc::invalid_argument, "nothing to change: give name or description"});
  d.commands.execute(id, update_project{*name, *description}, context(*c, p, *expected), finish(c, 200));
}

void api::impl::archive(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_project(c, p, access::operation::project_archive, id)) return;
  std::optional<std::uint64_t> expected;
  if (auto h = c->req.header("if-match"); !h.empty()) {
    auto v = parse_if_match(h);
    if (!v) return send_error(c, v.error());
    expected = *v;
  }
  d.commands.execute(id, archive_project{}, context(*c, p, expected), finish(c, 200));
}

result<std::set<std::string>> api::impl::shared_ids(std::string_view projection,
                                                    const std::vector<index_prefix>& indexes, const std::string& after,
                                                    std::size_t limit) const {
  std::set<std::string> ids;
  for (const auto& [table, prefix] : indexes) {
    auto rows = d.read_models.scan(projection, table, prefix, after.empty() ? "" : prefix + after, limit);
    if (!rows) return std::unexpected(rows.error());
    for (const auto& r : *rows) ids.insert(r.key.substr(prefix.size()));
  }
  return ids;
}

std::vector<api::impl::index_prefix> api::impl::project_indexes(const principal& p) {
  std::vector<index_prefix> out{{"user_projects", p.user_id + "/"}};
  for (const auto& g : p.groups) out.push_back({"group_projects", g + "/"});
  return out;
}

/// POST /v1/projects/{id}/members: `{"user_id"|"group_id", "role"}`.
void api::impl::add_member_(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_project(c, p, access::operation::project_share, id)) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto role = string_field(*body, "role", true);
  if (!role) return send_error(c, role.error());
  auto member = existing_member(*body);
  if (!member) return send_error(c, member.error());
  if (member->type == "user") {
    return d.commands.execute(id, add_member{member->id, **role}, context(*c, p), finish(c, 200));
  }
  d.commands.execute(id, add_group{member->id, **role}, context(*c, p), finish(c, 200));
}

/// DELETE /v1/projects/{id}/members/{user_id or group_id}.
void api::impl::remove_member_(const call_ptr& c, const principal& p, const std::string& id,
                               const std::string& member) {
  auto facts = guard_project(c, p, access::operation::project_unshare, id, member == p.user_id);
  if (!facts) return;
  for (const auto& g : facts->row->value("groups", json::array())) {
    if (g.value("group_id", "") == member) {
      return d.commands.execute(id, remove_group{member}, context(*c, p), finish(c, 200));
    }
  }
  d.commands.execute(id, remove_member{member}, context(*c, p), finish(c, 200));
}

}  // namespace atrium::http_adapter
