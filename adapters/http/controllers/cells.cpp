// The HTTP API: a project's cells (its notebook), addressed by cell id, never by index.
//
//   POST   /v1/projects/{id}/cells            {"kind","content"?,"after"?,"cell_id"?,
//                                              "connection_id"?}                       201 cell
//   GET    /v1/projects/{id}/cells[?as_of=]                                              200 list
//   GET    /v1/projects/{id}/cells/{cell_id}[?as_of=]                                    200 cell
//   PATCH  /v1/projects/{id}/cells/{cell_id}  {"content","base_version","op_id"} (edit)  200 cell
//                                             {"after"}                        (move)  200 cell
//                                             {"connection_id"} (string; null/"" clears) 200 cell
//   DELETE /v1/projects/{id}/cells/{cell_id}                                             200 list
//   POST   /v1/projects/{id}/cells/{cell_id}/run  {"timeout_s"?,"max_attempts"?} or none  202 job
//   POST   /v1/projects/{id}/cells/{cell_id}/changes  {"version","client_id","updates":[{"changes"}…]}
//                                                     200 {"version","position"} (co-editing)
//   GET    /v1/projects/{id}/cells/{cell_id}/updates?since=V   200 {"version","updates":[…]}
//
// A cell is `{"cell_id","kind","content","version","after","connection_id","last_job_id",
// "updated_at"}`; a list is `{"project_id","cells":[cell…],"version"}` (the project's
// version). Rules and errors are the project decider's (events/project/project_decider.hpp);
// docs/architecture.md, "Project cells", has the whole contract. Giving a cell a
// connection, and running it, needs the right to use the connection besides editing the
// project (the policy's `uses_connection`). Co-editing (`…/changes`, `…/updates`) is
// CodeMirror's central-authority collab protocol: docs/realtime.md, "Co-editing".
#include <initializer_list>
#include <limits>
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

/// An optional non-negative integer member that fits in 32 bits (`timeout_s`,
/// `max_attempts`); the job decider checks the ranges.
result<std::optional<std::uint32_t>> count_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::uint32_t>{};
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
      it->get<std::uint64_t>() > std::numeric_limits<std::uint32_t>::max()) {
    return fail(errc::invalid_argument, std::string(name) + " must be a non-negative integer", {{"field", name}});
  }
  return std::optional<std::uint32_t>{it->get<std::uint32_t>()};
}

/// `connection_id`: a string, or null / "" for none; absent is none too.
result<std::string> connection_field(const json& body) {
  auto given = string_field(body, "connection_id", false);
  if (!given) return std::unexpected(given.error());
  return given->value_or("");
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

/// The largest body `POST …/changes` takes (the cell limit: a change set never needs
/// more than the document it produces, plus framing).
constexpr std::size_t k_max_changes_body = 256 * 1024;

/// `updates` of a `POST …/changes` body: 1-256 objects `{"changes": <ChangeSet JSON>}`;
/// the change sets' shape is the decider's to check.
result<std::vector<json>> updates_field(const json& body) {
  auto it = body.find("updates");
  if (it == body.end() || !it->is_array()) {
    return fail(errc::invalid_argument, "updates must be an array of {\"changes\"}", {{"field", "updates"}});
  }
  if (it->empty() || it->size() > k_max_cell_updates) {
    return fail(errc::invalid_argument, "updates must hold 1 to 256 updates",
                {{"field", "updates"}, {"limit", k_max_cell_updates}});
  }
  std::vector<json> out;
  out.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& u = (*it)[i];
    if (!u.is_object() || !u.contains("changes") || u.size() != 1) {
      return fail(errc::invalid_argument, "update " + std::to_string(i) + " must be {\"changes\": <ChangeSet JSON>}",
                  {{"field", "updates"}, {"index", i}});
    }
    out.push_back(u.at("changes"));
  }
  return out;
}

}  // namespace

void cells_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/projects/{id}/cells", [self](auto& c, auto& p, auto& a) { self->add(c, p, a[0]); }});
  t.add({"GET", "/v1/projects/{id}/cells", [self](auto& c, auto& p, auto& a) { self->list(c, p, a[0]); }}).query = {
      "as_of"};
  t.add(
       {"GET", "/v1/projects/{id}/cells/{cell_id}", [self](auto& c, auto& p, auto& a) { self->get(c, p, a[0], a[1]); }})
      .query = {"as_of"};
  t.add({"PATCH", "/v1/projects/{id}/cells/{cell_id}",
         [self](auto& c, auto& p, auto& a) { self->patch(c, p, a[0], a[1]); }});
  t.add({"DELETE", "/v1/projects/{id}/cells/{cell_id}",
         [self](auto& c, auto& p, auto& a) { self->remove(c, p, a[0], a[1]); }});
  t.add({"POST", "/v1/projects/{id}/cells/{cell_id}/run",
         [self](auto& c, auto& p, auto& a) { self->run(c, p, a[0], a[1]); }});
  t.add({"POST", "/v1/projects/{id}/cells/{cell_id}/changes",
         [self](auto& c, auto& p, auto& a) { self->change(c, p, a[0], a[1]); }});
  t.add({"GET", "/v1/projects/{id}/cells/{cell_id}/updates",
         [self](auto& c, auto& p, auto& a) { self->updates(c, p, a[0], a[1]); }})
      .query = {"since"};
}

std::optional<project_access> cells_controller::guard_connected(const call_ptr& c, const principal& p,
                                                                access::operation op, const std::string& id,
                                                                const std::string& connection_id, bool& usable) {
  auto proj = project_facts(d_.projects, p, id);
  access::facts f{.role = proj.role};
  usable = false;
  if (!connection_id.empty()) {
    const auto conn = connection_facts(d_.connections, p, connection_id);
    const auto role = conn.record ? conn.record->role : std::nullopt;
    usable = role.has_value();
    f.connection_user = usable;
    f.connection_owner = role == connection_role::owner;
    f.uses_connection = true;
  }
  if (!d_.kit->admitted(c, p, op, f, "project-" + id, proj.view.has_value(), "no such project")) return std::nullopt;
  return proj;
}

void cells_controller::add(const call_ptr& c, const principal& p, const std::string& id) {
  // The connection named in the body is part of the policy's question, so the body is
  // parsed first; its errors are answered only once the policy has admitted the caller.
  auto body = parse_object(c->req.body);
  auto connection = body ? connection_field(*body) : result<std::string>(std::string());
  bool usable = false;
  if (!guard_connected(c, p, access::operation::project_cell_add, id, connection.value_or(""), usable)) return;
  if (!body) return send_error(c, body.error());
  if (!connection) return send_error(c, connection.error());
  if (auto ok = known_keys(*body, {"kind", "content", "after", "cell_id", "connection_id"}); !ok) {
    return send_error(c, ok.error());
  }
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
  d_.kit->commands().execute(id, add_cell{cell_id, **kind, content->value_or(""), *after, *connection, usable},
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
  // The body says which operation this is (an edit, a move or a connection change), and
  // names the connection the policy asks about, so it is parsed first;
  // errors in it are answered only once the policy has admitted the caller.
  auto body = parse_object(c->req.body);
  const bool edit = body && (body->contains("content") || body->contains("base_version") || body->contains("op_id"));
  const bool move = body && body->contains("after");
  const bool connect = body && body->contains("connection_id");
  const auto op =
      move && !edit && !connect ? access::operation::project_cell_move : access::operation::project_cell_edit;
  auto connection = connect ? connection_field(*body) : result<std::string>(std::string());
  bool usable = false;
  if (!guard_connected(c, p, op, id, connection.value_or(""), usable)) return;
  if (!body) return send_error(c, body.error());
  if (auto ok = known_keys(*body, {"content", "base_version", "op_id", "after", "connection_id"}); !ok) {
    return send_error(c, ok.error());
  }
  if (int(edit) + int(move) + int(connect) != 1) {
    return send_error(
        c, error{errc::invalid_argument, edit || move || connect
                                             ? "an edit, a move and a connection change are separate requests"
                                             : "nothing to change: give content, base_version and op_id, or after, or "
                                               "connection_id"});
  }
  if (!is_uuid_v7(cell_id)) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}});
  if (connect) {
    if (!connection) return send_error(c, connection.error());
    return d_.kit->commands().execute(id, set_cell_connection{cell_id, *connection, usable},
                                      controller_kit::context(*c, p), finish_cell(c, id, cell_id, 200, false));
  }
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

/// POST /v1/projects/{id}/cells/{cell_id}/run: `{"timeout_s"?, "max_attempts"?}` or no
/// body. Submits a `sql` job with the cell's content and connection (`cell_id` set) and
/// answers 202 with the job as `GET /v1/jobs/{id}` shows it.
void cells_controller::run(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id) {
  // First as one who may run cells here at all, before anything about the cell is told.
  bool usable = false;
  auto proj = guard_connected(c, p, access::operation::project_cell_run, id, "", usable);
  if (!proj) return;
  json body = json::object();
  if (!c->req.body.empty()) {
    auto parsed = parse_object(c->req.body);
    if (!parsed) return send_error(c, parsed.error());
    body = std::move(*parsed);
  }
  if (auto ok = known_keys(body, {"timeout_s", "max_attempts"}); !ok) return send_error(c, ok.error());
  auto timeout = count_field(body, "timeout_s");
  if (!timeout) return send_error(c, timeout.error());
  auto attempts = count_field(body, "max_attempts");
  if (!attempts) return send_error(c, attempts.error());
  const auto cell = find_cell(*proj->view, cell_id);
  if (!cell) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}});
  const auto kind = cell->value("kind", "");
  if (kind != "sql") {
    return send_error(c, error{errc::invalid_argument,
                               "only sql cells run; this cell is " + kind,
                               {{"cell_id", cell_id}, {"kind", kind}}});
  }
  const auto connection = cell->value("connection_id", "");
  if (connection.empty()) {
    return send_error(c, error{errc::invalid_argument,
                               "the cell has no connection: set one with PATCH {\"connection_id\"} first",
                               {{"cell_id", cell_id}, {"field", "connection_id"}}});
  }
  const auto sql = cell->value("content", "");
  if (sql.find_first_not_of(" \t\r\n") == std::string::npos) {
    return send_error(c, error{errc::invalid_argument,
                               "the cell is empty: there is no sql to run",
                               {{"cell_id", cell_id}, {"field", "content"}}});
  }
  // Now as one who may use the cell's connection.
  if (!guard_connected(c, p, access::operation::project_cell_run, id, connection, usable)) return;
  auto job_id = new_uuid_v7();
  submit_job cmd{.job_id = job_id,
                 .project_id = id,
                 .kind = "sql",
                 .connection_id = connection,
                 .sql = sql,
                 .timeout_s = *timeout,
                 .submitter_role = proj->role,
                 .connection_usable = usable,
                 .max_attempts = *attempts,
                 .cell_id = cell_id};
  d_.kit->execute(c, p, job_id, std::move(cmd), 202);
}

/// POST /v1/projects/{id}/cells/{cell_id}/changes: `{"version","client_id","updates":
/// [{"changes"}…]}`. Admitted like an edit (PATCH); answers 200 `{"version","position"}`
/// once the projections have the event (so a `GET …/updates` that follows sees it).
void cells_controller::change(const call_ptr& c, const principal& p, const std::string& id,
                              const std::string& cell_id) {
  bool usable = false;
  if (!guard_connected(c, p, access::operation::project_cell_edit, id, "", usable)) return;
  if (c->req.body.size() > k_max_changes_body) {
    return send_error(c, error{errc::payload_too_large,
                               "the body of a change must be at most 262144 bytes",
                               {{"limit", k_max_changes_body}}});
  }
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  if (auto ok = known_keys(*body, {"version", "client_id", "updates"}); !ok) return send_error(c, ok.error());
  auto base = version_field(*body, "version");
  if (!base) return send_error(c, base.error());
  auto client = string_field(*body, "client_id", true);
  if (!client) return send_error(c, client.error());
  auto updates = updates_field(*body);
  if (!updates) return send_error(c, updates.error());
  if (!is_uuid_v7(cell_id)) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}});
  d_.kit->commands().execute(id, change_cell{cell_id, *base, **client, std::move(*updates)},
                             controller_kit::context(*c, p),
                             [self = shared_from_this(), c, cell_id](result<ports::command_outcome> r) {
                               if (!r && r.error().code == errc::forbidden)
                                 return self->d_.kit->deny(c, r.error(), r.error().message);
                               if (!r) return send_error(c, r.error());
                               const auto cell = find_cell(r->view, cell_id);
                               const auto version = cell ? cell->value("version", std::uint64_t{0}) : std::uint64_t{0};
                               const auto position = r->position;
                               auto answer = [c, version, position] {
                                 send(c, 200, json{{"version", version}, {"position", position}},
                                      {{"ETag", etag(version)}, {"X-Atrium-Position", std::to_string(position)}});
                               };
                               if (r->events.empty()) return answer();
                               self->d_.kit->commands().await_projections(position, std::move(answer));
                             });
}

/// GET /v1/projects/{id}/cells/{cell_id}/updates?since=V: the kept updates after V, as
/// projected. A `since` past the projected version waits once for the projections to
/// reach the log's head (the client may have heard of a newer version on a WebSocket
/// before the projections applied it), then is 400 if still past it.
void cells_controller::updates(const call_ptr& c, const principal& p, const std::string& id,
                               const std::string& cell_id) {
  if (!guard_project(*d_.kit, d_.projects, c, p, access::operation::project_read, id)) return;
  const auto raw = query_param(*c, "since");
  auto since = parse_u64(raw, "since");
  if (raw.empty() || !since) {
    return send_error(c, error{errc::invalid_argument,
                               "since must be a cell version (a non-negative integer)",
                               {{"parameter", "since"}}});
  }
  auto self = shared_from_this();
  auto answer = [self, c, id, cell_id, since = *since](bool final) {
    auto state = self->d_.projects.cell_updates(id, cell_id);
    if (!state) return send_error(c, state.error()), true;
    if (!*state) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}}), true;
    const auto version = (*state)->value("version", std::uint64_t{0});
    if (since > version) {
      if (!final) return false;
      return send_error(
                 c, error{errc::invalid_argument,
                          "since " + std::to_string(since) + " is past the cell's version " + std::to_string(version),
                          {{"parameter", "since"}, {"version", version}}}),
             true;
    }
    const auto& kept = (*state)->at("updates");
    const auto oldest = kept.empty() ? version : kept.front().value("version", std::uint64_t{1}) - 1;
    if (since < oldest) {
      return send_error(c, error{errc::gone,
                                 "the cell's updates since version " + std::to_string(since) +
                                     " are no longer kept: reload the cell",
                                 {{"cell_id", cell_id}, {"version", version}, {"oldest_version", oldest}}}),
             true;
    }
    auto out = json::array();
    for (const auto& u : kept) {
      if (u.value("version", std::uint64_t{0}) > since) out.push_back(u);
    }
    send(c, 200, json{{"version", version}, {"updates", std::move(out)}}, {{"ETag", etag(version)}});
    return true;
  };
  if (answer(false)) return;
  d_.kit->commands().await_projections(d_.events.head_position(), [answer] { answer(true); });
}

ports::completion cells_controller::finish_cell(const call_ptr& c, const std::string& id, const std::string& cell_id,
                                                unsigned status, bool replay_header) {
  return [self = shared_from_this(), c, id, cell_id, status, replay_header](result<ports::command_outcome> r) {
    if (!r && r.error().code == errc::forbidden) return self->d_.kit->deny(c, r.error(), r.error().message);
    if (!r) return send_error(c, r.error());
    auto cell = find_cell(r->view, cell_id);
    if (!cell) return send_error(c, error{errc::not_found, "no such cell", {{"cell_id", cell_id}}});
    std::vector<std::pair<std::string, std::string>> headers{{"ETag", etag(cell->value("version", std::uint64_t{0}))}};
    if (status == 201) headers.emplace_back("Location", "/v1/projects/" + id + "/cells/" + cell_id);
    if (replay_header && r->events.empty()) headers.emplace_back("Idempotency-Replayed", "true");
    // The projected cell also carries `updated_at`; a row that differs otherwise (it has
    // not caught up, the wait timed out, or it has moved on past this command) does not
    // show this command's result, so the actor's view answers then.
    auto answer = [self, c, id, cell_id, status, headers, cell = *cell] {
      if (auto row = self->d_.kit->current("project-" + id)) {
        if (auto projected = find_cell(*row, cell_id)) {
          auto bare = *projected;
          bare.erase("updated_at");
          bare.erase("last_job_id");
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
