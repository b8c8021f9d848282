// Users: create (argon2id on the hashing pool), list, read, change, disable.
#include "adapters/http/controllers/controllers.hpp"
#include "events/user/password_policy.hpp"

namespace atrium::http_adapter {

json public_user(const json& view, const principal& p) {
  if (p.is_admin() || p.has(global_role::auditor) || view.value("id", "") == p.user_id) return view;
  return json{{"id", view.value("id", "")}, {"username", view.value("username", "")}};
}

void users_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/users", [self](auto& c, auto& p, auto&) { self->create(c, p); }});
  t.add({"GET", "/v1/users", [self](auto& c, auto& p, auto&) { self->list(c, p); }}).query = {"limit", "after"};
  t.add({"GET", "/v1/users/{id}", [self](auto& c, auto& p, auto& a) { self->get(c, p, a[0]); }}).query = {"as_of"};
  t.add({"PATCH", "/v1/users/{id}", [self](auto& c, auto& p, auto& a) { self->patch(c, p, a[0]); }});
  t.add({"POST", "/v1/users/{id}/disable", [self](auto& c, auto& p, auto& a) { self->disable(c, p, a[0]); }});
}

void users_controller::create(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::user_create, {}, "users")) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  register_user cmd;
  for (auto [name, out] : {std::pair{"username", &cmd.username}, {"email", &cmd.email}, {"role", &cmd.role}}) {
    auto v = string_field(*body, name, std::string_view(name) != "role");
    if (!v) return send_error(c, v.error());
    *out = v->value_or("member");
  }
  auto password = string_field(*body, "password", true);
  if (!password) return send_error(c, password.error());
  // Validate what is cheap before spending an argon2id hash on it.
  if (auto n = normalize_username(cmd.username); !n) return send_error(c, n.error());
  if (!parse_global_role(cmd.role)) {
    return send_error(c, error{errc::invalid_argument, "role must be admin, member or auditor", {{"field", "role"}}});
  }
  if (auto ok = check_password_policy(**password, *normalize_username(cmd.username)); !ok) {
    return send_error(c, ok.error());
  }
  cmd.user_id = new_uuid_v7();
  d_.hashing([self = shared_from_this(), c, p, cmd, password = **password]() mutable {
    auto hash = self->d_.hasher.hash(password);
    if (!hash) return send_error(c, hash.error());
    cmd.password_hash = *hash;
    auto id = cmd.user_id;
    self->d_.kit->execute(c, p, id, std::move(cmd), 201);
  });
}

void users_controller::list(const call_ptr& c, const principal& p) {
  answer_list(*d_.kit, c, p, access::operation::user_list, "users", [&](const ports::page_request& at) {
    auto page = d_.users.users(at);
    if (page) {
      for (auto& u : page->items) u = public_user(u, p);
    }
    return page;
  });
}

void users_controller::get(const call_ptr& c, const principal& p, const std::string& id) {
  std::optional<json> view;
  if (valid_id(id)) {
    auto found = d_.users.user(id);
    if (!found) return send_error(c, found.error());
    if (*found) view = (*found)->view;
  }
  answer_get(*d_.kit, c, p, access::operation::user_read, {.self = id == p.user_id}, "user-" + id, view, "no such user",
             [&p](json v) { return public_user(v, p); });
}

/// Passwords: a user changing their own password (admins too) gives `current_password`
/// (400 when missing; 403 and `security.access_denied` when wrong); their other
/// sessions end, the one making the request continues. An admin resetting someone
/// else's password needs no current password, and every session of that user ends, as
/// on `disabled`.
void users_controller::patch(const call_ptr& c, const principal& p, const std::string& id) {
  if (!d_.kit->allowed(c, p, access::operation::user_update, {.self = id == p.user_id}, "user-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such user"});
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto password = string_field(*body, "password", false);
  auto current = string_field(*body, "current_password", false);
  auto grant = string_field(*body, "grant_role", false);
  auto revoke = string_field(*body, "revoke_role", false);
  for (const auto* f : {&password, &current, &grant, &revoke}) {
    if (!*f) return send_error(c, f->error());
  }
  const auto disabled = body->find("disabled");
  if (disabled != body->end() && !(disabled->is_boolean() && disabled->get<bool>())) {
    return send_error(c, error{errc::invalid_argument, "disabled can only be set to true", {{"field", "disabled"}}});
  }
  auto cmds = std::make_shared<std::vector<user_command>>();
  if (*grant) cmds->push_back(grant_role{**grant});
  if (*revoke) cmds->push_back(revoke_role{**revoke});
  if (disabled != body->end()) cmds->push_back(disable_user{});
  if (cmds->empty() && !*password) {
    return send_error(
        c, error{errc::invalid_argument, "nothing to change: give password, grant_role, revoke_role or disabled"});
  }
  const bool own_password = *password && id == p.user_id;
  if (own_password && !*current) {
    return send_error(c, error{errc::invalid_argument,
                               "current_password is required to change your own password",
                               {{"field", "current_password"}}});
  }
  // Sessions to end once every command succeeded: the user's other sessions after
  // changing their own password; all of them after a reset by an admin or a disable.
  const bool end_sessions = *password || disabled != body->end();
  const std::string keep = own_password ? c->token_hash : std::string();
  if (!*password) return run_patch(c, p, id, cmds, end_sessions, keep);
  // The policy (against the user's own name) before a hash is spent on it.
  {
    auto user = d_.users.user(id);
    if (!user) return send_error(c, user.error());
    if (!*user) return send_error(c, error{errc::not_found, "no such user"});
    if (auto ok = check_password_policy(**password, (*user)->state.username); !ok) return send_error(c, ok.error());
  }
  d_.hashing([self = shared_from_this(), c, p, id, cmds, own_password, end_sessions, keep, pw = **password,
              current = current->value_or("")] {
    if (own_password) {
      // Verified against the projected hash: the one login checks too.
      auto user = self->d_.users.user(id);
      if (!user) return send_error(c, user.error());
      if (!*user) return send_error(c, error{errc::not_found, "no such user"});
      if (!self->d_.hasher.verify((*user)->state.password_hash, current)) {
        return self->d_.kit->deny(c,
                                  error{errc::forbidden, "current_password is wrong", {{"field", "current_password"}}},
                                  "wrong current password");
      }
    }
    auto hash = self->d_.hasher.hash(pw);
    if (!hash) return send_error(c, hash.error());
    cmds->insert(cmds->begin(), change_password{*hash, own_password});
    self->run_patch(c, p, id, cmds, end_sessions, keep);
  });
}

void users_controller::run_patch(const call_ptr& c, const principal& p, const std::string& id,
                                 std::shared_ptr<std::vector<user_command>> cmds, bool end_sessions,
                                 const std::string& keep) {
  auto step = std::make_shared<std::function<void(std::size_t)>>();
  *step = [self = shared_from_this(), c, p, id, cmds, step, end_sessions, keep](std::size_t i) {
    auto& bus = self->d_.kit->commands();
    if (i + 1 == cmds->size()) {
      auto last = std::move((*cmds)[i]);
      auto done = self->d_.kit->finish(c, 200);
      if (end_sessions) done = self->ending_sessions(c, id, keep, std::move(done));
      bus.execute(id, std::move(last), controller_kit::context(*c, p), std::move(done));
      *step = nullptr;  // break the self-reference
      return;
    }
    bus.execute(id, (*cmds)[i], controller_kit::context(*c, p), [step, c, i](result<ports::command_outcome> r) {
      if (!r) {
        send_error(c, r.error());
        *step = nullptr;
        return;
      }
      (*step)(i + 1);
    });
  };
  (*step)(0);
}

void users_controller::disable(const call_ptr& c, const principal& p, const std::string& id) {
  if (!d_.kit->allowed(c, p, access::operation::user_disable, {.self = id == p.user_id}, "user-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such user"});
  d_.kit->commands().execute(id, disable_user{}, controller_kit::context(*c, p),
                             ending_sessions(c, id, "", d_.kit->finish(c, 200)));
}

ports::completion users_controller::ending_sessions(const call_ptr& c, std::string user_id, std::string keep_token_hash,
                                                    ports::completion done) {
  return [self = shared_from_this(), c, user_id = std::move(user_id), keep = std::move(keep_token_hash),
          done = std::move(done)](result<ports::command_outcome> r) {
    if (!r) return done(std::move(r));
    // A pass over the sessions and a synced write: on the blocking pool, not the caller's thread.
    self->d_.hashing([self, c, user_id, keep, done, r = std::move(r)]() mutable {
      auto ended = self->d_.tokens.erase_user(user_id, keep);
      if (!ended) {
        spdlog::error("sessions not ended user_id={} error={}", user_id, ended.error().message);
        return send_error(
            c, error{errc::unavailable,
                     "the change is stored, but the user's sessions could not be ended: " + ended.error().message});
      }
      spdlog::info("sessions ended user_id={} count={} request_id={}", user_id, *ended, c->correlation_id);
      done(std::move(r));
    });
  };
}

}  // namespace atrium::http_adapter
