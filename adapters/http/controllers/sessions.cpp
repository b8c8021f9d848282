// Sessions: login (argon2id on the hashing pool), logout and the caller's session.
#include "adapters/http/browser_security.hpp"
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
  t.add({"GET", "/v1/auth/session", [self](auto& c, auto& p, auto&) { self->session(c, p); }});
}

void sessions_controller::login(const call_ptr& c) {
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto username = string_field(*body, "username", true);
  if (!username) return send_error(c, username.error());
  auto password = string_field(*body, "password", true);
  if (!password) return send_error(c, password.error());
  bool cookie = false;
  if (auto it = body->find("cookie"); it != body->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return send_error(c, error{errc::invalid_argument, "cookie must be true or false", {{"field", "cookie"}}});
    }
    cookie = it->get<bool>();
  }
  // A cookie login from another site would sign the browser in as the attacker (login
  // CSRF): it must come from this server's pages, as every cookie-authenticated change.
  if (cookie && !d_.same_origin(*c)) {
    const auto origin = repair_utf8(truncate_utf8(c->req.header("origin"), 256));
    c->operation = "POST /v1/auth/login";
    c->resource = "origin";
    return d_.kit->deny(
        c,
        error{errc::forbidden,
              origin.empty() ? std::string("cross-origin request refused: no Origin header; a cookie "
                                           "login must come from this server's pages")
                             : "cross-origin request refused: Origin " + origin + " is not this server's",
              {{"origin", origin}}},
        origin.empty() ? "cookie login without Origin" : "cookie login from a foreign origin");
  }

  // Throttled before the password is checked (no hash spent, nothing learned): the
  // account is the username as it would be looked up, or as sent when it is no username.
  const auto normalized = normalize_username(**username);
  const auto account = normalized ? *normalized : truncate_utf8(**username, 64);
  const auto address = address_of(c->req.remote);
  if (auto blocked = d_.throttle ? throttle_->check(account, address) : std::nullopt)
    return refuse_throttled(c, **username, account, address, *blocked);

  std::optional<user_state> user;
  if (normalized) {
    auto found = d_.users.user_by_name(*normalized);
    if (!found) return send_error(c, found.error());
    if (*found) user = (*found)->state;
  }
  d_.hashing([self = shared_from_this(), c, user, password = **password, claimed = **username, cookie, account,
              address] {
    const auto& d = self->d_;
    const auto& hash = user ? user->password_hash : self->dummy_hash_;
    const bool matches = d.hasher.verify(hash, password) && user;
    if (!matches || user->disabled) {
      self->throttle_->failed(account, address);
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
    self->throttle_->succeeded(account, address);
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
    json answer{{"user", {{"id", user->user_id}, {"username", user->username}}},
                {"expires_at", now + d.session_ttl_seconds}};
    header_list headers;
    if (cookie) {
      // The token goes only into the HttpOnly cookie: page script never sees it.
      headers.emplace_back("Set-Cookie", session_cookie(token, d.session_ttl_seconds, d.secure_cookie));
    } else {
      answer["token"] = token;
    }
    d.kit->record_security(
        std::move(e), [c, answer = std::move(answer), headers = std::move(headers)] { send(c, 200, answer, headers); });
  });
}

void sessions_controller::refuse_throttled(const call_ptr& c, const std::string& claimed, const std::string& account,
                                           const std::string& address, const login_throttle::block& b) {
  const auto retry = std::to_string(b.retry_after_s);
  spdlog::info("http method=POST path=/v1/auth/login status=429 scope={} retry_after={} request_id={}", b.scope, retry,
               c->correlation_id);
  auto answer = [c, b, retry] {
    send(c, 429,
         json{{"error",
               {{"code", "too_many_requests"},
                {"message", "too many failed logins; retry after " + retry + " s"},
                {"details", {{"retry_after_s", b.retry_after_s}, {"scope", b.scope}}}}}},
         {{"Retry-After", retry}});
  };
  // One audit event per account or address per window, however many attempts a flood makes.
  if (!throttle_->should_audit(b, account, address)) return answer();
  auto e = make_event(security_login_throttled{b.scope == "address" ? address : truncate_utf8(claimed, 64),
                                               c->req.remote, b.retry_after_s, b.scope});
  e.actor = "anonymous";
  e.correlation_id = c->correlation_id;
  e.metadata = request_metadata(c->req);
  d_.kit->record_security(std::move(e), std::move(answer));
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
  header_list headers;
  if (c->via == "cookie") headers.emplace_back("Set-Cookie", cleared_session_cookie(d_.secure_cookie));
  send(c, 200, json{{"status", "logged_out"}}, std::move(headers));
}

void sessions_controller::session(const call_ptr& c, const principal& p) {
  auto found = d_.users.user(p.user_id);
  if (!found) return send_error(c, found.error());
  if (!*found) return send_error(c, error{errc::unauthenticated, "invalid or expired token"});
  // The caller's own user as `GET /v1/users/{id}` shows it to them (never a password hash).
  auto user = (*found)->view;
  user.erase("password_hash");
  user["groups"] = p.groups;  // direct and nested, as grants resolve them
  json answer{{"user", std::move(user)}, {"via", c->via}};
  if (c->expires_at != 0) answer["expires_at"] = c->expires_at;
  if (!c->token_id.empty()) answer["token_id"] = c->token_id;
  send(c, 200, answer);
}

}  // namespace atrium::http_adapter
