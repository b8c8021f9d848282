// Groups and their members (users or nested groups).
#include "adapters/http/controllers/controllers.hpp"

namespace atrium::http_adapter {

void groups_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/groups", [self](auto& c, auto& p, auto&) { self->create(c, p); }});
  // GET /v1/groups: admins and auditors see every group; others the groups they belong
  // to (directly or nested), in id order, paged by `after`.
  t.add({"GET", "/v1/groups",
         [self](auto& c, auto& p, auto&) {
           answer_list(*self->d_.kit, c, p, access::operation::group_list, "groups",
                       [&](const ports::page_request& at) { return self->d_.groups.visible_groups(p, at); });
         }})
      .query = {"limit", "after"};
  t.add({"GET", "/v1/groups/{id}",
         [self](auto& c, auto& p, auto& a) {
           const auto facts = group_facts(self->d_.groups, p, a[0]);
           answer_get(*self->d_.kit, c, p, access::operation::group_read, facts.facts(), "group-" + a[0], facts.view,
                      "no such group");
         }})
      .query = {"as_of"};
  t.add({"POST", "/v1/groups/{id}/members", [self](auto& c, auto& p, auto& a) { self->add_member(c, p, a[0]); }});
  t.add({"DELETE", "/v1/groups/{id}/members/{member}",
         [self](auto& c, auto& p, auto& a) { self->remove_member(c, p, a[0], a[1]); }});
}

std::optional<group_access> groups_controller::guard(const call_ptr& c, const principal& p, access::operation op,
                                                     const std::string& id) {
  auto facts = group_facts(d_.groups, p, id);
  if (!d_.kit->admitted(c, p, op, facts.facts(), "group-" + id, facts.view.has_value(), "no such group")) {
    return std::nullopt;
  }
  return facts;
}

void groups_controller::create(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::group_create, {}, "groups")) return;
  auto named = named_body(*c);
  if (!named) return send_error(c, named.error());
  auto id = new_uuid_v7();
  d_.kit->execute(c, p, id, create_group{id, named->name, named->description}, 201);
}

/// POST /v1/groups/{id}/members: `{"user_id"}` or `{"group_id"}` (a nested group).
void groups_controller::add_member(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard(c, p, access::operation::group_manage_members, id)) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto member = existing_member(d_.users, d_.groups, *body);
  if (!member) return send_error(c, member.error());
  add_group_member cmd{member->type, member->id, {}};
  if (member->type == "group") cmd.member_subgroups = d_.groups.subgroups_of(member->id, k_max_audit_scan);
  d_.kit->execute(c, p, id, std::move(cmd));
}

/// DELETE /v1/groups/{id}/members/{user_id or group_id}.
void groups_controller::remove_member(const call_ptr& c, const principal& p, const std::string& id,
                                      const std::string& member) {
  auto facts = guard(c, p, access::operation::group_manage_members, id);
  if (!facts) return;
  std::string type = "user";
  for (const auto& m : facts->view->value("members", json::array())) {
    if (m.value("group_id", "") == member) type = "group";
  }
  d_.kit->execute(c, p, id, remove_group_member{type, member});
}

}  // namespace atrium::http_adapter
