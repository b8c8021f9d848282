// The HTTP API: groups and their members.
#include "adapters/http/api_internal.hpp"

#include "events/group/group_decider.hpp"
#include "projections/access_views.hpp"

namespace atrium::http_adapter {

result<api::impl::member_ref> api::impl::existing_member(const json& body) const {
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
  auto row = is_user ? d.read_models.get("users", "users", ref.id) : d.read_models.get("groups", "groups", ref.id);
  if (!row) return std::unexpected(row.error());
  if (!*row) return fail(errc::not_found, what, details);
  return ref;
}

api::impl::group_access api::impl::group_facts(const principal& p, const std::string& id) const {
  group_access out;
  if (!valid_id(id)) return out;
  auto row = d.read_models.get("groups", "groups", id);
  if (!row || !*row) return out;
  out.row = **row;
  out.member = p.groups.contains(id);
  out.manager = (**row).value("created_by", "") == p.user_id;
  return out;
}

std::optional<api::impl::group_access> api::impl::guard_group(const call_ptr& c, const principal& p,
                                                              access::operation op, const std::string& id) {
  auto facts = group_facts(p, id);
  const access::facts f{.group_member = facts.member, .group_manager = facts.manager};
  if (!admitted(c, p, op, f, "group-" + id, facts.row.has_value(), "no such group")) return std::nullopt;
  return facts;
}

void api::impl::create_group_(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::group_create, {}, "groups")) return;
  auto named = named_body(*c);
  if (!named) return send_error(c, named.error());
  auto id = new_uuid_v7();
  d.commands.execute(id, create_group{id, named->name, named->description}, context(*c, p), finish(c, 201));
}

/// GET /v1/groups: admins and auditors see every group; others the groups they belong
/// to (directly or nested), in id order, paged by `after`.
void api::impl::list_groups(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::group_list, {}, "groups")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  const auto after = c->query.contains("after") ? c->query["after"] : std::string();
  json groups = json::array();
  std::string last;
  if (p.is_admin() || p.has(global_role::auditor)) {
    auto rows = d.read_models.scan("groups", "groups", "", after, *limit);
    if (!rows) return send_error(c, rows.error());
    for (const auto& r : *rows) groups.push_back(r.value);
    if (!rows->empty()) last = rows->back().key;
  } else {
    for (auto it = p.groups.upper_bound(after); it != p.groups.end() && groups.size() < *limit; ++it) {
      auto row = d.read_models.get("groups", "groups", *it);
      if (!row) return send_error(c, row.error());
      if (*row) groups.push_back(**row);
      last = *it;
    }
  }
  send(c, 200, json{{"groups", groups}, {"next", groups.size() == *limit ? json(last) : json(nullptr)}});
}

void api::impl::get_group(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = guard_group(c, p, access::operation::group_read, id);
  if (!facts || answer_as_of(c, "group-" + id)) return;
  send(c, 200, *facts->row, {{"ETag", etag(facts->row->value("version", std::uint64_t{0}))}});
}

/// Every group nested inside group `id`, transitively (not `id` itself), from the
/// groups projection; bounded by what one request may examine.
std::set<std::string> api::impl::subgroups_of(const std::string& id) const {
  std::set<std::string> seen;
  std::vector<std::string> frontier{id};
  while (!frontier.empty() && seen.size() < k_max_audit_scan) {
    const auto g = std::move(frontier.back());
    frontier.pop_back();
    auto row = d.read_models.get("groups", "groups", g);
    if (!row || !*row) continue;
    for (const auto& m : (**row).value("members", json::array())) {
      const auto child = m.value("group_id", "");
      if (!child.empty() && child != id && seen.insert(child).second) frontier.push_back(child);
    }
  }
  return seen;
}

/// POST /v1/groups/{id}/members: `{"user_id"}` or `{"group_id"}` (a nested group).
void api::impl::add_group_member_(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_group(c, p, access::operation::group_manage_members, id)) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto member = existing_member(*body);
  if (!member) return send_error(c, member.error());
  add_group_member cmd{member->type, member->id, {}};
  if (member->type == "group") cmd.member_subgroups = subgroups_of(member->id);
  d.commands.execute(id, std::move(cmd), context(*c, p), finish(c, 200));
}

/// DELETE /v1/groups/{id}/members/{user_id or group_id}.
void api::impl::remove_group_member_(const call_ptr& c, const principal& p, const std::string& id,
                                     const std::string& member) {
  auto facts = guard_group(c, p, access::operation::group_manage_members, id);
  if (!facts) return;
  std::string type = "user";
  for (const auto& m : facts->row->value("members", json::array())) {
    if (m.value("group_id", "") == member) type = "group";
  }
  d.commands.execute(id, remove_group_member{type, member}, context(*c, p), finish(c, 200));
}

}  // namespace atrium::http_adapter
