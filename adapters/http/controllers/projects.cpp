// Projects and their members.
#include "adapters/http/controllers/controllers.hpp"

namespace atrium::http_adapter {

void projects_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/projects", [self](auto& c, auto& p, auto&) { self->create(c, p); }});
  // Lists only what the caller may see: no collection-wide check.
  t.add({"GET", "/v1/projects",
         [self](auto& c, auto& p, auto&) {
           answer_list(*self->d_.kit, c, p, std::nullopt, "projects",
                       [&](const ports::page_request& at) { return self->d_.projects.visible_projects(p, at); });
         }})
      .query = {"limit", "after"};
  t.add({"GET", "/v1/projects/{id}",
         [self](auto& c, auto& p, auto& a) {
           const auto facts = project_facts(self->d_.projects, p, a[0]);
           answer_get(*self->d_.kit, c, p, access::operation::project_read, {.role = facts.role}, "project-" + a[0],
                      facts.view, "no such project");
         }})
      .query = {"as_of"};
  t.add({"PATCH", "/v1/projects/{id}", [self](auto& c, auto& p, auto& a) { self->patch(c, p, a[0]); }});
  t.add({"DELETE", "/v1/projects/{id}", [self](auto& c, auto& p, auto& a) { self->archive(c, p, a[0]); }});
  t.add({"POST", "/v1/projects/{id}/members", [self](auto& c, auto& p, auto& a) { self->add_member(c, p, a[0]); }});
  t.add({"DELETE", "/v1/projects/{id}/members/{member}",
         [self](auto& c, auto& p, auto& a) { self->remove_member(c, p, a[0], a[1]); }});
}

void projects_controller::create(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::project_create, {}, "projects")) return;
  auto named = named_body(*c);
  if (!named) return send_error(c, named.error());
  auto id = new_uuid_v7();
  d_.kit->execute(c, p, id, create_project{id, named->name, named->description}, 201);
}

void projects_controller::patch(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_project(*d_.kit, d_.projects, c, p, access::operation::project_update, id)) return;
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
  d_.kit->execute(c, p, id, update_project{*name, *description}, 200, *expected);
}

void projects_controller::archive(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_project(*d_.kit, d_.projects, c, p, access::operation::project_archive, id)) return;
  auto expected = optional_if_match(*c);
  if (!expected) return send_error(c, expected.error());
  d_.kit->execute(c, p, id, archive_project{}, 200, *expected);
}

/// POST /v1/projects/{id}/members: `{"user_id"|"group_id", "role"}`.
void projects_controller::add_member(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_project(*d_.kit, d_.projects, c, p, access::operation::project_share, id)) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto role = string_field(*body, "role", true);
  if (!role) return send_error(c, role.error());
  auto member = existing_member(d_.users, d_.groups, *body);
  if (!member) return send_error(c, member.error());
  if (member->type == "user") return d_.kit->execute(c, p, id, ::atrium::add_member{member->id, **role});
  d_.kit->execute(c, p, id, add_group{member->id, **role});
}

/// DELETE /v1/projects/{id}/members/{user_id or group_id}.
void projects_controller::remove_member(const call_ptr& c, const principal& p, const std::string& id,
                                        const std::string& member) {
  auto facts = guard_project(*d_.kit, d_.projects, c, p, access::operation::project_unshare, id, member == p.user_id);
  if (!facts) return;
  for (const auto& g : facts->view->value("groups", json::array())) {
    if (g.value("group_id", "") == member) return d_.kit->execute(c, p, id, remove_group{member});
  }
  d_.kit->execute(c, p, id, ::atrium::remove_member{member});
}

}  // namespace atrium::http_adapter
