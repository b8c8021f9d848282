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

/// PATCH /v1/users/{id}: `{"password"?, "grant_role"?, "revoke_role"?, "disabled"?: true}`,
/// applied in that order, each as its own command; stops at the first error.
void api::impl::patch_user(const call_ptr& c, const principal& p, const std::string& id) {
  if (!allowed(c, p, access::operation::user_update, {.self = id == p.user_id}, "user-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such user"});
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto password = string_field(*body, "password", false);
  auto grant = string_field(*body, "grant_role", false);
  auto revoke = string_field(*body, "revoke_role", false);
  for (const auto* f : {&password, &grant, &revoke}) {
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
  auto run = [self = shared_from_this(), c, p, id, cmds] {
    auto step = std::make_shared<std::function<void(std::size_t)>>();
    *step = [self, c, p, id, cmds, step](std::size_t i) {
      if (i + 1 == cmds->size()) {
        auto last = std::move((*cmds)[i]);
        self->d.commands.execute(id, std::move(last), self->context(*c, p), self->finish(c, 200));
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
  boost::asio::post(hashing, [self = shared_from_this(), c, cmds, run, pw = **password] {
    auto hash = self->d.hasher.hash(pw);
    if (!hash) return send_error(c, hash.error());
    cmds->insert(cmds->begin(), change_password{*hash});
    run();
  });
}

json api::impl::public_user(const json& row, const principal& p) {
  if (p.is_admin() || p.has(global_role::auditor) || row.value("id", "") == p.user_id) return user_view_of_row(row);
  return json{{"id", row.value("id", "")}, {"username", row.value("username", "")}};
}

}  // namespace atrium::http_adapter
