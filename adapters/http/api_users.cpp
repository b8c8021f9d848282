// The HTTP API: login and users.
#include "adapters/http/api_internal.hpp"

#include "events/security/security_events.hpp"
#include "events/user/user_decider.hpp"
#include "projections/views.hpp"

namespace atrium::http_adapter {

void api::impl::login(const call_ptr& c) {
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto username = string_field(*body, "username", true);
  if (!username) return send_error(c, username.error());
  auto password = string_field(*body, "password", true);
  if (!password) return send_error(c, password.error());

  std::optional<user_state> user;
  if (auto name = normalize_username(**username)) {
    auto idx = d.read_models.get("users", "usernames", *name);
    if (!idx) return send_error(c, idx.error());
    if (*idx) {
      auto row = d.read_models.get("users", "users", (**idx).value("user_id", ""));
      if (!row) return send_error(c, row.error());
      if (*row) user = user_from_row(**row);
    }
  }
  boost::asio::post(hashing, [self = shared_from_this(), c, user, password = **password, claimed = **username] {
    const auto& hash = user ? user->password_hash : self->dummy_hash;
    const bool matches = self->d.hasher.verify(hash, password) && user;
    if (!matches || user->disabled) {
      // Every refused login is recorded in the security stream before the answer.
      auto e = make_event(security_login_failed{truncate_utf8(claimed, 64),
                                                matches ? "disabled" : "invalid_credentials", c->req.remote});
      e.actor = "anonymous";
      e.correlation_id = c->correlation_id;
      e.metadata = request_metadata(c->req);
      self->record_security(std::move(e), [c] {
        send_error(c, error{errc::unauthenticated, "invalid username or password"});
      });
      return;
    }
    const auto token = self->d.secrets.random_token();
    const auto now = unix_now();
    if (auto put = self->d.tokens.put(self->d.secrets.sha256_hex(token),
                                      ports::session_record{user->user_id, now, now + self->d.session_ttl_seconds});
        !put) {
      return send_error(c, put.error());
    }
    c->who = user->username;
    auto e = make_event(security_login_succeeded{user->user_id, user->username, c->req.remote});
    e.actor = "user-" + user->user_id;
    e.correlation_id = c->correlation_id;
    e.metadata = request_metadata(c->req);
    json answer{{"token", token},
                {"user", {{"id", user->user_id}, {"username", user->username}}},
                {"expires_at", now + self->d.session_ttl_seconds}};
    self->record_security(std::move(e), [c, answer = std::move(answer)] { send(c, 200, answer); });
  });
}

void api::impl::create_user(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::user_create, {}, "users")) return;
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
  cmd.user_id = new_uuid_v7();
  boost::asio::post(hashing, [self = shared_from_this(), c, p, cmd, password = **password]() mutable {
    auto hash = self->d.hasher.hash(password);
    if (!hash) return send_error(c, hash.error());
    cmd.password_hash = *hash;
    auto id = cmd.user_id;
    self->d.commands.execute(id, std::move(cmd), self->context(*c, p), self->finish(c, 201));
  });
}

void api::impl::list_users(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::user_list, {}, "users")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  const auto after = c->query.contains("after") ? c->query["after"] : std::string();
  auto rows = d.read_models.scan("users", "users", "", after, *limit);
  if (!rows) return send_error(c, rows.error());
  json users = json::array();
  for (const auto& r : *rows) users.push_back(public_user(r.value, p));
  send(c, 200, json{{"users", users}, {"next", rows->size() == *limit ? json(rows->back().key) : json(nullptr)}});
}

void api::impl::get_user(const call_ptr& c, const principal& p, const std::string& id) {
  if (!allowed(c, p, access::operation::user_read, {.self = id == p.user_id}, "user-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such user"});
  if (answer_as_of(c, "user-" + id, [&p](json view) { return public_user(view, p); })) return;
  auto row = d.read_models.get("users", "users", id);
  if (!row) return send_error(c, row.error());
  if (!*row) return send_error(c, error{errc::not_found, "no such user"});
  send(c, 200, public_user(**row, p), {{"ETag", etag((**row).value("version", std::uint64_t{0}))}});
}

/// PATCH /v1/users/{id}: `{"password"?, "current_password"?, "grant_role"?, "revoke_role"?,
/// "disabled"?: true}`, applied in that order, each as its own command; stops at the
/// first error.
///
/// Passwords: a user changing their own password (admins too) gives `current_password`
/// (400 when missing; 403 and `security.access_denied` when wrong); their other
/// sessions end, the one making the request continues. An admin resetting someone
/// else's password needs no current password, and every session of that user ends, as
/// on `disabled`.
void api::impl::patch_user(const call_ptr& c, const principal& p, const std::string& id) {
  if (!allowed(c, p, access::operation::user_update, {.self = id == p.user_id}, "user-" + id)) return;
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
  auto run = [self = shared_from_this(), c, p, id, cmds, end_sessions, keep] {
    auto step = std::make_shared<std::function<void(std::size_t)>>();
    *step = [self, c, p, id, cmds, step, end_sessions, keep](std::size_t i) {
      if (i + 1 == cmds->size()) {
        auto last = std::move((*cmds)[i]);
        auto done = self->finish(c, 200);
        if (end_sessions) done = self->ending_sessions(c, id, keep, std::move(done));
        self->d.commands.execute(id, std::move(last), self->context(*c, p), std::move(done));
        *step = nullptr;  // break the self-reference
        return;
      }
      self->d.commands.execute(id, (*cmds)[i], self->context(*c, p), [step, c, i](result<ports::command_outcome> r) {
        if (!r) {
          send_error(c, r.error());
          *step = nullptr;
          return;
        }
        (*step)(i + 1);
      });
    };
    (*step)(0);
  };
  if (!*password) return run();
  boost::asio::post(hashing, [self = shared_from_this(), c, id, cmds, run, own_password, pw = **password,
                              current = current->value_or("")] {
    if (own_password) {
      // Verified against the projected hash: the one login checks too.
      auto row = self->d.read_models.get("users", "users", id);
      if (!row) return send_error(c, row.error());
      if (!*row) return send_error(c, error{errc::not_found, "no such user"});
      if (!self->d.hasher.verify(user_from_row(**row).password_hash, current)) {
        return self->deny(c, error{errc::forbidden, "current_password is wrong", {{"field", "current_password"}}},
                          "wrong current password");
      }
    }
    auto hash = self->d.hasher.hash(pw);
    if (!hash) return send_error(c, hash.error());
    cmds->insert(cmds->begin(), change_password{*hash, own_password});
    run();
  });
}

void api::impl::disable_user_(const call_ptr& c, const principal& p, const std::string& id) {
  if (!allowed(c, p, access::operation::user_disable, {.self = id == p.user_id}, "user-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such user"});
  d.commands.execute(id, disable_user{}, context(*c, p), ending_sessions(c, id, "", finish(c, 200)));
}

ports::completion api::impl::ending_sessions(const call_ptr& c, std::string user_id, std::string keep_token_hash,
                                             ports::completion done) {
  return [self = shared_from_this(), c, user_id = std::move(user_id), keep = std::move(keep_token_hash),
          done = std::move(done)](result<ports::command_outcome> r) {
    if (!r) return done(std::move(r));
    // A pass over the sessions and a synced write: on the blocking pool, not the caller's thread.
    boost::asio::post(self->hashing, [self, c, user_id, keep, done, r = std::move(r)]() mutable {
      auto ended = self->d.tokens.erase_user(user_id, keep);
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

void api::impl::logout(const call_ptr& c, const principal& p) {
  (void)p;  // any authenticated caller ends their own session
  if (auto ok = d.tokens.erase(c->token_hash); !ok) return send_error(c, ok.error());
  send(c, 200, json{{"status", "logged_out"}});
}

json api::impl::public_user(const json& row, const principal& p) {
  if (p.is_admin() || p.has(global_role::auditor) || row.value("id", "") == p.user_id) return user_view_of_row(row);
  return json{{"id", row.value("id", "")}, {"username", row.value("username", "")}};
}

}  // namespace atrium::http_adapter
