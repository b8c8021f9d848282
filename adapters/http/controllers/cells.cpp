// The HTTP API: a project's cells (its notebook), addressed by cell id, never by index.
//
//   POST   /v1/projects/{id}/cells            {"kind","content"?,"after"?,"cell_id"?}   201 cell
//   GET    /v1/projects/{id}/cells[?as_of=]                                              200 list
//   GET    /v1/projects/{id}/cells/{cell_id}[?as_of=]                                    200 cell
//   PATCH  /v1/projects/{id}/cells/{cell_id}  {"content","base_version","op_id"} (edit)  200 cell
//                                             {"after"}                        (move)  200 cell
//   DELETE /v1/projects/{id}/cells/{cell_id}                                             200 list
//
// A cell is `{"cell_id","kind","content","version","after","updated_at"}`; a list is
// `{"project_id","cells":[cell…],"version"}` (the project's version). Rules and errors are
// the project decider's (events/project/project_decider.hpp); docs/architecture.md,
// "Project cells", has the whole contract.
#include <initializer_list>
#include <string_view>

#include "adapters/http/controllers/controllers.hpp"

namespace atrium::http_adapter {
namespace {

/// `invalid_argument` naming the first key of `body` that is not in `known`: a
/// misspelled field is an error, not silently ignored.
result<void> known_keys(const json& body, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return fail(errc::invalid_argument, "unknown field " + key, {{"field", key}});
    }
  }
  return {};
}

/// The cells of a project view, in order; an empty array when it has none.
json project_cells_of(const json& project) {
  auto it = project.find("cells");
  return it != project.end() && it->is_array() ? *it : json::array();
}

/// The cell `cell_id` of a project view or row, or nullopt.
std::optional<json> find_cell(const json& project, const std::string& cell_id) {
  for (const auto& cell : project_cells_of(project)) {
    if (cell.value("cell_id", "") == cell_id) return cell;
  }
  return std::nullopt;
}

/// The list answer of a project view or row.
json cells_list(const json& project) {
  return json{{"project_id", project.value("id", "")},
              {"cells", project_cells_of(project)},
              {"version", project.value("version", std::uint64_t{0})}};
}

/// `base_version`: a non-negative integer.
result<std::uint64_t> version_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    return fail(errc::invalid_argument, std::string(name) + " is required", {{"field", name}});
  }
  if (!it->is_number_unsigned()) {
    return fail(errc::invalid_argument, std::string(name) + " must be a non-negative integer", {{"field", name}});
  }
  return it->get<std::uint64_t>();
}

}  // namespace

void cells_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/projects/{id}/cells", [self](auto& c, auto& p, auto& a) { self->add(c, p, a[0]); }});
  t.add({"GET", "/v1/projects/{id}/cells", [self](auto& c, auto& p, auto& a) { self->list(c, p, a[0]); }});
  t.add(
      {"GET", "/v1/projects/{id}/cells/{cell_id}", [self](auto& c, auto& p, auto& a) { self->get(c, p, a[0], a[1]); }});
  t.add({"PATCH", "/v1/projects/{id}/cells/{cell_id}",
         [self](auto& c, auto& p, auto& a) { self->patch(c, p, a[0], a[1]); }});
  t.add({"DELETE", "/v1/projects/{id}/cells/{cell_id}",
         [self](auto& c, auto& p, auto& a) { self->remove(c, p, a[0], a[1]); }});
}

void cells_controller::add(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard_project(*d_.kit, d_.projects, c, p, access::operation::project_cell_add, id)) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  if (auto ok = known_keys(*body, {"kind", "content", "after", "cell_id"}); !ok) return send_error(c, ok.error());
  auto kind = string_field(*body, "kind", true);
  if (!kind) return send_error(c, kind.error());
  auto content = string_field(*body, "content", false);
  if (!content) return send_error(c, content.error());
  auto after = string_field(*body, "after", false);
  if (!after) return send_error(c, after.error());
  auto chosen = string_field(*body, "cell_id", false);
  if (!chosen) return send_error(c, chosen.error());
  if (*chosen && !is_uuid_v7(**chosen)) {
    return send_error(c, error{errc::invalid_argument, "cell_id must be a UUIDv7 (lowercase)", {{"field", "cell_id"}}});
  }
  const auto cell_id = chosen->value_or(new_uuid_v7());
  d_.kit->commands().execute(id, add_cell{cell_id, **kind, content->value_or(""), *after},
                             controller_kit::context(*c, p), finish_cell(c, id, cell_id, 201, false));
}

void cells_controller::list(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = guard_project(*d_.kit, d_.projects, c, p, access::operation::project_read, id);
  if (!facts || d_.kit->answer_as_of(c, "project-" + id, [](json view) { return cells_list(view); })) return;
  send(c, 200, cells_list(*facts->view), {{"ETag", etag(facts->view->value("version", std::uint64_t{0}))}});
}

void cells_controller::get(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id) {
  auto facts = guard_project(*d_.kit, d_.projects, c, p, access::operation::project_read, id);
  if (!facts) return;
  auto missing = [&] { send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}}); };
  auto bound = controller_kit::parse_as_of(*c);
  if (!bound) return send_error(c, bound.error());
  if (!*bound) {
    auto cell = find_cell(*facts->view, cell_id);
    if (!cell) return missing();
    return send(c, 200, *cell, {{"ETag", etag(cell->value("version", std::uint64_t{0}))}});
  }
  // As it was: folded from the project's events up to the bound, like `answer_as_of`.
  auto then = d_.kit->as_of("project-" + id, **bound);
  if (!then) return send_error(c, then.error());
  auto cell = *then ? find_cell((*then)->view, cell_id) : std::nullopt;
  if (!cell) return missing();
  (*cell)["as_of"] = {{"position", (*then)->position}, {"time", (*then)->time}};
  send(c, 200, *cell, {{"ETag", etag(cell->value("version", std::uint64_t{0}))}});
}

void cells_controller::patch(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id) {
  // The body says which operation this is (an edit or a move), so it is parsed first;
  // errors in it are answered only once the policy has admitted the caller.
  auto body = parse_object(c->req.body);
  const bool edit = body && (body->contains("content") || body->contains("base_version") || body->contains("op_id"));
  const bool move = body && body->contains("after");
  const auto op = move && !edit ? access::operation::project_cell_move : access::operation::project_cell_edit;
  if (!guard_project(*d_.kit, d_.projects, c, p, op, id)) return;
  if (!body) return send_error(c, body.error());
  if (auto ok = known_keys(*body, {"content", "base_version", "op_id", "after"}); !ok) {
    return send_error(c, ok.error());
  }
  if (edit == move) {
    return send_error(
        c, error{errc::invalid_argument, edit ? "an edit and a move are separate requests"
                                              : "nothing to change: give content, base_version and op_id, or after"});
  }
  if (!is_uuid_v7(cell_id)) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}});
  if (move) {
    auto after = string_field(*body, "after", true);
    if (!after) return send_error(c, after.error());
    return d_.kit->commands().execute(id, move_cell{cell_id, **after}, controller_kit::context(*c, p),
                                      finish_cell(c, id, cell_id, 200, false));
  }
  auto content = string_field(*body, "content", true);
  if (!content) return send_error(c, content.error());
  auto base = version_field(*body, "base_version");
  if (!base) return send_error(c, base.error());
  auto op_id = string_field(*body, "op_id", true);
  if (!op_id) return send_error(c, op_id.error());
  d_.kit->commands().execute(id, edit_cell{cell_id, **content, *base, **op_id}, controller_kit::context(*c, p),
                             finish_cell(c, id, cell_id, 200, true));
}

void cells_controller::remove(const call_ptr& c, const principal& p, const std::string& id,
                              const std::string& cell_id) {
  if (!guard_project(*d_.kit, d_.projects, c, p, access::operation::project_cell_remove, id)) return;
  if (!is_uuid_v7(cell_id)) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}});
  d_.kit->commands().execute(id, remove_cell{cell_id}, controller_kit::context(*c, p),
                             [self = shared_from_this(), c, id](result<ports::command_outcome> r) {
                               if (!r && r.error().code == errc::forbidden)
                                 return self->d_.kit->deny(c, r.error(), r.error().message);
                               if (!r) return send_error(c, r.error());
                               // The projected row at this command's version (cells with
                               // `updated_at`), else the actor's view.
                               auto answer = [self, c, id, version = r->version, view = r->view] {
                                 auto row = self->d_.kit->current("project-" + id);
                                 const bool current = row && row->value("version", std::uint64_t{0}) == version;
                                 send(c, 200, cells_list(current ? *row : view), {{"ETag", etag(version)}});
                               };
                               if (r->events.empty()) return answer();
                               self->d_.kit->commands().await_projections(r->position, std::move(answer));
                             });
}

ports::completion cells_controller::finish_cell(const call_ptr& c, const std::string& id, const std::string& cell_id,
                                                unsigned status, bool replay_header) {
  return [self = shared_from_this(), c, id, cell_id, status, replay_header](result<ports::command_outcome> r) {
    if (!r && r.error().code == errc::forbidden) return self->d_.kit->deny(c, r.error(), r.error().message);
    if (!r) return send_error(c, r.error());
    auto cell = find_cell(r->view, cell_id);
    if (!cell) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}});
    std::vector<std::pair<std::string, std::string>> headers{{"ETag", etag(cell->value("version", std::uint64_t{0}))}};
    if (replay_header && r->events.empty()) headers.emplace_back("Idempotency-Replayed", "true");
    // The projected cell also carries `updated_at`; a row that differs otherwise (it has
    // not caught up, the wait timed out, or it has moved on past this command) does not
    // show this command's result, so the actor's view answers then.
    auto answer = [self, c, id, cell_id, status, headers, cell = *cell] {
      if (auto row = self->d_.kit->current("project-" + id)) {
        if (auto projected = find_cell(*row, cell_id)) {
          auto bare = *projected;
          bare.erase("updated_at");
          if (bare == cell) return send(c, status, *projected, headers);
        }
      }
      send(c, status, cell, headers);
    };
    if (r->events.empty()) return answer();  // a no-op: nothing to wait for
    self->d_.kit->commands().await_projections(r->position, std::move(answer));
  };
}

}  // namespace atrium::http_adapter
