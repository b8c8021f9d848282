// Service accounts and API tokens: machine credentials with scopes, expiry and revocation.
#include <ctime>

#include "adapters/http/controllers/controllers.hpp"
#include "events/security/security_events.hpp"

namespace atrium::http_adapter {
namespace {

constexpr std::size_t k_max_token_name_bytes = 100;
constexpr std::size_t k_account_scan_rounds = 20;  // pages of users examined per service-account list

/// Unix seconds as RFC 3339 UTC (`2026-12-04T12:00:00Z`); null for 0 ("never").
json time_or_null(std::int64_t unix_seconds) {
  if (unix_seconds == 0) return nullptr;
  const std::time_t t = unix_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(out);
}

/// The public view of a stored API token: never its secret or hash.
json token_view(const ports::session_record& r, std::int64_t now) {
  return json{{"id", r.token_id},
              {"name", r.name},
              {"scopes", r.scopes},
              {"user_id", r.user_id},
              {"created_by", r.created_by},
              {"created_at", time_or_null(r.issued_at)},
              {"expires_at", time_or_null(r.expires_at)},
              {"last_used_at", time_or_null(r.last_used_at)},
              {"expired", r.expired(now)}};
}

/// What a token body asks for.
struct token_request {
  std::string name;
  std::vector<std::string> scopes;  // known, sorted, without repeats
  std::int64_t expires_in_s = 0;    // 0: never
};

result<std::vector<std::string>> parse_scopes(const json& body) {
  auto it = body.find("scopes");
  const auto bad = [] {
    return fail(errc::invalid_argument,
                "scopes must be a non-empty array of \"events:read\", \"jobs:work\" or \"admin\"",
                {{"field", "scopes"}});
  };
  if (it == body.end() || !it->is_array() || it->empty() || it->size() > 8) return bad();
  std::set<std::string> scopes;
  for (const auto& s : *it) {
    if (!s.is_string() || !parse_token_scope(s.get<std::string>())) return bad();
    scopes.insert(s.get<std::string>());
  }
  return std::vector<std::string>(scopes.begin(), scopes.end());
}

result<token_request> parse_token_request(const std::string& raw) {
  auto body = parse_object(raw);
  if (!body) return std::unexpected(body.error());
  auto name = string_field(*body, "name", true);
  if (!name) return std::unexpected(name.error());
  if ((*name)->empty() || (*name)->size() > k_max_token_name_bytes) {
    return fail(errc::invalid_argument, "name must be 1-100 bytes", {{"field", "name"}});
  }
  if (auto ok = check_text(**name, text_kind::label, "name"); !ok) return std::unexpected(ok.error());
  auto scopes = parse_scopes(*body);
  if (!scopes) return std::unexpected(scopes.error());
  token_request r{**name, std::move(*scopes), 0};
  if (auto it = body->find("expires_in_s"); it != body->end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
        (it->is_number_unsigned() && it->get<std::uint64_t>() > std::uint64_t(tokens_controller::max_expires_in_s)) ||
        it->get<std::int64_t>() > tokens_controller::max_expires_in_s) {
      return fail(
          errc::invalid_argument,
          "expires_in_s must be an integer number of seconds, 1-" + std::to_string(tokens_controller::max_expires_in_s),
          {{"field", "expires_in_s"}});
    }
    r.expires_in_s = it->get<std::int64_t>();
  }
  return r;
}

/// A security event caused by `c`'s caller, with the request's metadata.
template <class Event>
proposed_event security_event(const call& c, Event e) {
  auto ev = make_event(std::move(e));
  ev.actor = "user-" + c.user_id;
  ev.correlation_id = c.correlation_id;
  ev.metadata = request_metadata(c.req);
  return ev;
}

}  // namespace

void tokens_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/service-accounts", [self](auto& c, auto& p, auto&) { self->create_account(c, p); }});
  t.add({"GET", "/v1/service-accounts", [self](auto& c, auto& p, auto&) { self->list_accounts(c, p); }}).query = {
      "limit", "after"};
  t.add({"GET", "/v1/service-accounts/{id}", [self](auto& c, auto& p, auto& a) { self->get_account(c, p, a[0]); }})
      .query = {"as_of"};
  t.add({"POST", "/v1/service-accounts/{id}/disable",
         [self](auto& c, auto& p, auto& a) { self->disable_account(c, p, a[0]); }});
  t.add({"POST", "/v1/service-accounts/{id}/tokens", [self](auto& c, auto& p, auto& a) {
           auto found = self->account(c, p, access::operation::token_create, a[0]);
           if (!found) return;
           if (found->state.disabled) {
             return send_error(c, error{errc::failed_precondition, "the service account is disabled"});
           }
           self->create_token(c, p, a[0]);
         }});
  t.add({"GET", "/v1/service-accounts/{id}/tokens", [self](auto& c, auto& p, auto& a) {
           if (self->account(c, p, access::operation::token_list, a[0])) self->list_tokens(c, a[0]);
         }});
  t.add({"POST", "/v1/tokens", [self](auto& c, auto& p, auto&) {
           if (!self->d_.kit->allowed(c, p, access::operation::token_create, {.self = true}, "tokens")) return;
           self->create_token(c, p, p.user_id);
         }});
  t.add({"GET", "/v1/tokens", [self](auto& c, auto& p, auto&) {
           if (!self->d_.kit->allowed(c, p, access::operation::token_list, {.self = true}, "tokens")) return;
           self->list_tokens(c, p.user_id);
         }});
  t.add({"DELETE", "/v1/tokens/{id}", [self](auto& c, auto& p, auto& a) { self->revoke_token(c, p, a[0]); }});
}

void tokens_controller::create_account(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::service_account_create, {}, "service-accounts")) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  register_service_account cmd;
  for (auto [name, out] : {std::pair{"name", &cmd.name}, {"description", &cmd.description}, {"role", &cmd.role}}) {
    auto v = string_field(*body, name, std::string_view(name) == "name");
    if (!v) return send_error(c, v.error());
    *out = v->value_or(std::string_view(name) == "role" ? "member" : "");
  }
  cmd.user_id = new_uuid_v7();
  auto id = cmd.user_id;
  d_.kit->execute(c, p, id, std::move(cmd), 201);
}

void tokens_controller::list_accounts(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::service_account_list, {}, "service-accounts")) return;
  auto at = parse_page(*c);
  if (!at) return send_error(c, at.error());
  // Service accounts are users of kind `service`: a filtered walk over the users, a
  // bounded number of pages per request (`next` resumes it).
  ports::page out;
  ports::page_request scan{at->after, k_max_limit};
  for (std::size_t round = 0; round < k_account_scan_rounds; ++round) {
    auto page = d_.users.users(scan);
    if (!page) return send_error(c, page.error());
    for (const auto& u : page->items) {
      if (u.value("kind", "person") != "service") continue;
      out.items.push_back(u);
      if (out.items.size() == at->limit) {
        out.next = u.value("id", "");
        return send_page(c, "service_accounts", out);
      }
    }
    if (page->next.is_null()) return send_page(c, "service_accounts", out);
    scan.after = page->next.get<std::string>();
  }
  out.next = scan.after;
  send_page(c, "service_accounts", out);
}

std::optional<ports::user_record> tokens_controller::account(const call_ptr& c, const principal& p,
                                                             access::operation op, const std::string& id) {
  if (!d_.kit->allowed(c, p, op, {.self = id == p.user_id}, "user-" + id)) return std::nullopt;
  std::optional<ports::user_record> found;
  if (valid_id(id)) {
    auto r = d_.users.user(id);
    if (!r) {
      send_error(c, r.error());
      return std::nullopt;
    }
    found = std::move(*r);
  }
  if (!found || !found->state.is_service()) {
    send_error(c, error{errc::not_found, "no such service account"});
    return std::nullopt;
  }
  return found;
}

void tokens_controller::get_account(const call_ptr& c, const principal& p, const std::string& id) {
  if (auto found = account(c, p, access::operation::service_account_read, id)) {
    if (!d_.kit->answer_as_of(c, "user-" + id)) send_view(c, found->view);
  }
}

void tokens_controller::disable_account(const call_ptr& c, const principal& p, const std::string& id) {
  if (!account(c, p, access::operation::service_account_disable, id)) return;
  // Its tokens are kept (listed, audited) but fail at once: authentication refuses every
  // token of a disabled user.
  d_.kit->commands().execute(id, disable_user{"service account disabled"}, controller_kit::context(*c, p),
                             d_.kit->finish(c, 200));
}

void tokens_controller::create_token(const call_ptr& c, const principal& p, const std::string& owner) {
  auto request = parse_token_request(c->req.body);
  if (!request) return send_error(c, request.error());
  d_.blocking([self = shared_from_this(), c, p, owner, request = std::move(*request)] {
    const auto& d = self->d_;
    auto held = d.tokens.api_tokens_of(owner);
    if (!held) return send_error(c, held.error());
    if (held->size() >= max_tokens_per_owner) {
      return send_error(c, error{errc::failed_precondition,
                                 "the owner holds the most tokens allowed; revoke some first",
                                 {{"limit", max_tokens_per_owner}}});
    }
    const auto now = unix_now();
    ports::session_record record{owner, now, request.expires_in_s == 0 ? 0 : now + request.expires_in_s};
    record.kind = ports::token_kind::api;
    record.token_id = new_uuid_v7();
    record.name = request.name;
    record.scopes = request.scopes;
    record.created_by = p.user_id;
    // `atr_` marks the secret for secret scanners; 256 random bits follow.
    const auto secret = "atr_" + d.secrets.random_token();
    if (auto ok = d.tokens.put(d.secrets.sha256_hex(secret), record); !ok) return send_error(c, ok.error());
    spdlog::info("api token created token_id={} user_id={} created_by={} request_id={}", record.token_id, owner,
                 p.user_id, c->correlation_id);
    auto answer = token_view(record, now);
    answer["token"] = secret;
    auto e = security_event(*c, security_token_created{record.token_id, owner, p.user_id, record.name, record.scopes,
                                                       record.expires_at, c->req.remote});
    d.kit->record_security(std::move(e), [c, answer = std::move(answer), id = record.token_id] {
      // The token's URL (where it is revoked), under whichever route created it.
      send(c, 201, answer, {{"Location", "/v1/tokens/" + id}});
    });
  });
}

void tokens_controller::list_tokens(const call_ptr& c, const std::string& owner) {
  d_.blocking([self = shared_from_this(), c, owner] {
    auto held = self->d_.tokens.api_tokens_of(owner);
    if (!held) return send_error(c, held.error());
    const auto now = unix_now();
    json out = json::array();
    for (const auto& t : *held) out.push_back(token_view(t.record, now));
    send(c, 200, json{{"tokens", out}});
  });
}

void tokens_controller::revoke_token(const call_ptr& c, const principal& p, const std::string& token_id) {
  if (!valid_id(token_id)) return send_error(c, error{errc::not_found, "no such token"});
  d_.blocking([self = shared_from_this(), c, p, token_id] {
    const auto& d = self->d_;
    auto found = d.tokens.api_token(token_id);
    if (!found) return send_error(c, found.error());
    // Someone else's token is as unknown as a missing one (its id is private).
    const bool own = *found && (*found)->record.user_id == p.user_id;
    if (!d.kit->allowed(c, p, access::operation::token_revoke, {.self = own || !*found}, "token-" + token_id)) return;
    if (!*found) return send_error(c, error{errc::not_found, "no such token"});
    const auto& [hash, record] = **found;
    // Synced before the answer: from here on the token fails.
    if (auto ok = d.tokens.erase(hash); !ok) return send_error(c, ok.error());
    spdlog::info("api token revoked token_id={} user_id={} revoked_by={} request_id={}", record.token_id,
                 record.user_id, p.user_id, c->correlation_id);
    auto e = security_event(
        *c, security_token_revoked{record.token_id, record.user_id, p.user_id, record.scopes, c->req.remote});
    d.kit->record_security(std::move(e), [c, id = record.token_id] {
      send(c, 200, json{{"id", id}, {"revoked", true}});
    });
  });
}

}  // namespace atrium::http_adapter
