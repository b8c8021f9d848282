// Sessions: login (argon2id on the hashing pool) and logout.
#include "adapters/http/controllers/controllers.hpp"
#include "events/security/security_events.hpp"

namespace atrium::http_adapter {

sessions_controller::sessions_controller(deps d) : d_(std::move(d)) {
  auto h = d_.hasher.hash("atrium-timing-equalizer");
  dummy_hash_ = h ? *h : std::string();
}

void sessions_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/auth/login", [self](auto& c, auto&, auto&) { self->login(c); }, route_access::open});
  t.add({"POST", "/v1/auth/logout", [self](auto& c, auto&, auto&) { self->logout(c); }});
}

void sessions_controller::login(const call_ptr& c) {
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto username = string_field(*body, "username", true);
  if (!username) return send_error(c, username.error());
  auto password = string_field(*body, "password", true);
  if (!password) return send_error(c, password.error());

  std::optional<user_state> user;
  if (auto name = normalize_username(**username)) {
    auto found = d_.users.user_by_name(*name);
    if (!found) return send_error(c, found.error());
    if (*found) user = (*found)->state;
  }
  d_.hashing([self = shared_from_this(), c, user, password = **password, claimed = **username] {
    const auto& d = self->d_;
    const auto& hash = user ? user->password_hash : self->dummy_hash_;
    const bool matches = d.hasher.verify(hash, password) && user;
    if (!matches || user->disabled) {
      // Every refused login is recorded in the security stream before the answer.
      auto e = make_event(security_login_failed{truncate_utf8(claimed, 64),
                                                matches ? "disabled" : "invalid_credentials", c->req.remote});
      e.actor = "anonymous";
      e.correlation_id = c->correlation_id;
      e.metadata = request_metadata(c->req);
      d.kit->record_security(std::move(e), [c] {
        send_error(c, error{errc::unauthenticated, "invalid username or password"});
      });
      return;
    }
    const auto token = d.secrets.random_token();
    const auto now = unix_now();
    if (auto put = d.tokens.put(d.secrets.sha256_hex(token),
                                ports::session_record{user->user_id, now, now + d.session_ttl_seconds});
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
                {"expires_at", now + d.session_ttl_seconds}};
    d.kit->record_security(std::move(e), [c, answer = std::move(answer)] { send(c, 200, answer); });
  });
}

void sessions_controller::logout(const call_ptr& c) {
  // Any authenticated caller ends their own session: the one this request was made with,
  // no other. An API token is revoked by id instead (audited), never by a logout.
  if (!c->token_id.empty()) {
    return send_error(c, error{errc::invalid_argument,
                               "logout ends a login session; revoke an API token with DELETE /v1/tokens/{id}",
                               {{"token_id", c->token_id}}});
  }
  if (auto ok = d_.tokens.erase(c->token_hash); !ok) return send_error(c, ok.error());
  send(c, 200, json{{"status", "logged_out"}});
}

}  // namespace atrium::http_adapter
