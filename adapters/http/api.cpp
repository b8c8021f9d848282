// The HTTP API: the edge, authentication, idempotency and the route table that
// dispatches to the controllers.
#include "adapters/http/api.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "adapters/http/auth_cache.hpp"
#include "adapters/http/browser_security.hpp"
#include "adapters/http/controllers/controllers.hpp"
#include "adapters/http/event_schemas.hpp"
#include "adapters/http/http_semantics.hpp"
#include "adapters/http/realtime.hpp"

namespace atrium::http_adapter {

struct api::impl : std::enable_shared_from_this<api::impl> {
  api_dependencies d;
  /// `d.tokens` with its records kept (every token write of the API goes through it).
  cached_token_store tokens;
  /// Callers' principals, kept until a user or group event changes them.
  principal_cache principals;
  boost::asio::thread_pool hashing;  // argon2id and other blocking work, never on an I/O thread
  boost::asio::thread_pool probes;   // connection tests: blocking network I/O, bounded by a timeout
  std::shared_ptr<controller_kit> kit;
  std::shared_ptr<realtime_context> realtime;
  route_table routes;

  explicit impl(api_dependencies deps);

  /// Runs a request: the edge checks, then `dispatch`. Never throws.
  void run(const call_ptr& c);
  /// Looks the route up and answers 404/405, authenticates, applies Idempotency-Key and
  /// calls the route's handler.
  void dispatch(const call_ptr& c);
  /// The caller of `c` from its credential: the `Authorization: Bearer` token, else on a
  /// push route (`push`) the `?token=` query, else the `atrium_session` cookie. Records
  /// who they are, how they authenticated (`via`) and their expiry on the call; a token
  /// from the query or the cookie is put into the call's Authorization header (what a
  /// WebSocket's commands then run with).
  result<principal> authenticate(call& c, bool push = false);
  /// The token of `c`'s credential, setting `c.via`; `unauthenticated` when there is none.
  static result<std::string> credential(call& c, bool push);
  /// True when a cookie-authenticated `c` may go on: a safe method on a plain route, or
  /// an `Origin` that is this server's or an allowed one. Else refuses it (403, recorded
  /// as `security.access_denied`) and returns false.
  bool origin_checked(const call_ptr& c, bool push);
  /// Answers a GET or HEAD outside /v1 from the web console's files (404 otherwise).
  void serve_static(const call_ptr& c);
  /// Answers `OPTIONS`: 204 with `Allow` for a known path (an API route's or a console
  /// file's), the CORS preflight headers when it is a preflight from a listed origin;
  /// 404 for an unknown path.
  void options(const call_ptr& c, const route_table::match& found);
  /// True when `c` may reach route `r`: its body is JSON (else 415
  /// `unsupported_media_type`) and it names no query parameter the route does not take
  /// (else 400 `invalid_argument`, `details.unknown`). Answers the refusal itself.
  static bool acceptable(const call_ptr& c, const route& r);
  /// Applies `Idempotency-Key` to a mutating request: answers a replay or a reused key
  /// itself (returns false), or prepares the call to run and remember its response.
  bool idempotency(const call_ptr& c, const principal& p);
  /// A call for `request` answered through `respond`.
  static call_ptr make_call(http_request request, respond_fn respond);
};

namespace {

pool_fn on(boost::asio::thread_pool& pool) {
  return [&pool](std::function<void()> task) { boost::asio::post(pool, std::move(task)); };
}

/// Without a zone database (tests that wire none), schedules know only `UTC`.
class utc_only final : public zone_database {
 public:
  result<std::shared_ptr<const zone_rules>> locate(std::string_view name) const override {
    if (name == "UTC") return utc_zone();
    return fail(errc::invalid_argument, "unknown time zone: " + std::string(name.substr(0, 64)),
                {{"field", "time_zone"}});
  }
};

std::shared_ptr<const zone_database> zones_or_utc(std::shared_ptr<const zone_database> zones) {
  if (zones) return zones;
  return std::make_shared<const utc_only>();
}

}  // namespace

api::impl::impl(api_dependencies deps)
    : d(deps),
      tokens(deps.tokens),
      principals(deps.queries, deps.read_model_changes),
      hashing(deps.hashing_threads),
      probes(deps.probe_threads),
      kit(std::make_shared<controller_kit>(d.commands, d.queries)) {
  const auto& q = d.queries;
  realtime = std::make_shared<realtime_context>(realtime_context{d.hub, d.events, q, {q, q, q, q, q}});
  auto& table = routes;
  auto sources = d.metrics_sources;
  sources.push_back(realtime->metrics.get());
  std::make_shared<admin_controller>(
      admin_controller::deps{kit, d.monitor, d.events, d.backups, std::move(sources), &q, &q})
      ->add_routes(table);
  std::make_shared<tokens_controller>(tokens_controller::deps{kit, q, tokens, d.secrets, on(hashing)})
      ->add_routes(table);
  std::make_shared<sessions_controller>(
      sessions_controller::deps{kit, q, tokens, d.hasher, d.secrets, on(hashing), d.session_ttl_seconds,
                                [this](const call& c) {
                                  return origin_allowed(c.req.header("origin"), c.req.header("host"),
                                                        d.allowed_origins);
                                },
                                d.secure_cookie, d.login_throttle})
      ->add_routes(table);
  std::make_shared<users_controller>(users_controller::deps{kit, q, tokens, d.hasher, on(hashing)})->add_routes(table);
  std::make_shared<groups_controller>(groups_controller::deps{kit, q, q})->add_routes(table);
  std::make_shared<projects_controller>(projects_controller::deps{kit, q, q, q})->add_routes(table);
  std::make_shared<cells_controller>(cells_controller::deps{kit, q, q, d.events})->add_routes(table);
  std::make_shared<connections_controller>(
      connections_controller::deps{kit, q, q, q, d.vault, d.tester, on(probes), d.connection_test_timeout})
      ->add_routes(table);
  std::make_shared<jobs_controller>(jobs_controller::deps{kit, q, q, q})->add_routes(table);
  std::make_shared<results_controller>(results_controller::deps{kit, q, q, d.results, on(hashing)})->add_routes(table);
  std::make_shared<schedules_controller>(schedules_controller::deps{kit, q, q, q, q, zones_or_utc(d.zones)})
      ->add_routes(table);
  std::make_shared<workers_controller>(workers_controller::deps{kit, d.leases, on(hashing),
                                                                [this](const call& c) {
                                                                  auto copy = c;
                                                                  return authenticate(copy).has_value();
                                                                }})
      ->add_routes(table);
  std::make_shared<containers_controller>(
      containers_controller::deps{kit, q, d.container_runtimes, d.default_container_runtime})
      ->add_routes(table);
  std::make_shared<audit_controller>(audit_controller::deps{kit, q, d.events, on(hashing)})->add_routes(table);
  std::make_shared<events_controller>(events_controller::deps{kit, d.events, realtime})->add_routes(table);
  add_event_schema_routes(table);
  realtime->metrics->index(table);
  realtime->metrics->websocket_subscriptions = realtime->presence->subscriptions;
}

result<std::string> api::impl::credential(call& c, bool push) {
  if (const auto auth = c.req.header("authorization"); !auth.empty()) {
    c.via = "bearer";
    auto token = bearer_token(auth);
    if (!token) return fail(errc::unauthenticated, "missing bearer token");
    return *token;
  }
  // Browsers cannot set headers on a WebSocket or EventSource: they may pass `token`.
  if (push) {
    if (auto it = c.query.find("token"); it != c.query.end()) {
      c.via = "token";
      return it->second;
    }
  }
  auto cookie = cookie_value(c.req.header("cookie"), k_session_cookie);
  if (!cookie) {
    c.via = "cookie";
    return fail(errc::unauthenticated, cookie.error().message, cookie.error().details);
  }
  if (!*cookie) return fail(errc::unauthenticated, "missing bearer token or session cookie");
  c.via = "cookie";
  return std::move(**cookie);
}

result<principal> api::impl::authenticate(call& c, bool push) {
  auto token = credential(c, push);
  if (!token) return std::unexpected(token.error());
  const auto token_hash = d.secrets.sha256_hex(*token);
  const auto session = tokens.get(token_hash);
  if (!session) return std::unexpected(session.error());
  if (!*session) return fail(errc::unauthenticated, "invalid or expired token");
  const auto& record = **session;
  const bool api_token = record.kind == ports::token_kind::api;
  const auto now = unix_now();
  if (record.expired(now)) {
    // An expired API token stays listed (`GET /v1/tokens`, `expired: true`) until its
    // owner deletes it; an expired session is of no further use.
    if (api_token) {
      return fail(errc::unauthenticated, "the API token has expired",
                  {{"token_id", record.token_id}, {"expired_at", record.expires_at}});
    }
    (void)tokens.erase(token_hash);
    return fail(errc::unauthenticated, "invalid or expired token");
  }
  auto found = principals.resolve(record.user_id);
  if (!found) return std::unexpected(found.error());
  if (!*found) return fail(errc::unauthenticated, "invalid or expired token");
  auto& user = **found;
  // A disabled user's (or service account's) every token fails, sessions and API tokens.
  if (user.who.disabled) return fail(errc::unauthenticated, "user is disabled");
  c.who = user.username;
  c.user_id = user.who.user_id;
  c.token_hash = token_hash;
  c.expires_at = record.expires_at;
  // What a WebSocket opened with a query token or the cookie runs its commands with.
  if (c.via != "bearer") c.req.headers["authorization"] = "Bearer " + *token;
  principal p = std::move(user.who);
  if (api_token) {
    c.token_id = record.token_id;
    p.scopes.emplace();
    for (const auto& s : record.scopes) {
      if (auto scope = parse_token_scope(s)) p.scopes->insert(*scope);
    }
    // `last_used_at` to the minute: an unsynced write at most once a minute per token.
    if (now - record.last_used_at >= 60) {
      if (auto ok = tokens.touch(token_hash, now); !ok) {
        spdlog::warn("token use not noted token_id={} error={}", record.token_id, ok.error().message);
      }
    }
  }
  return p;
}

bool api::impl::idempotency(const call_ptr& c, const principal& p) {
  const auto key = c->req.header("idempotency-key");
  if (key.empty()) return true;
  if (key.size() > 255 || !std::all_of(key.begin(), key.end(), [](unsigned char ch) { return ch > 32 && ch < 127; })) {
    send_error(c, error{errc::invalid_argument,
                        "Idempotency-Key must be 1-255 visible ASCII characters",
                        {{"header", "Idempotency-Key"}}});
    return false;
  }
  const auto scoped = d.secrets.sha256_hex(p.user_id + "\n" + key);
  const auto fingerprint = d.secrets.sha256_hex(c->req.method + "\n" + c->req.target + "\n" + c->req.body);
  auto claimed = d.idempotency.claim(scoped, fingerprint);
  if (!claimed) {
    send_error(c, claimed.error());
    return false;
  }
  const auto& [outcome, record] = *claimed;
  if (outcome == ports::idempotency_claim::mismatch) {
    send_error(c, error{errc::already_exists,
                        "this Idempotency-Key was used for a different request",
                        {{"header", "Idempotency-Key"}}});
    return false;
  }
  if (outcome == ports::idempotency_claim::replay) {
    header_list headers{{"X-Request-Id", c->correlation_id}, {"Idempotency-Replayed", "true"}};
    if (!record.etag.empty()) headers.emplace_back("ETag", record.etag);
    spdlog::info("http {} status={} user={} request_id={} idempotent_replay=true", log_request(*c), record.status,
                 log_escape(c->who, 64), c->correlation_id);
    c->respond(http_response{record.status, record.body, "application/json", std::move(headers)});
    return false;
  }
  c->command_id = scoped;
  c->remember = [self = shared_from_this(), scoped, fingerprint](unsigned status, const std::string& body,
                                                                 const std::string& tag) {
    if (auto ok = self->d.idempotency.complete(scoped, {fingerprint, true, status, body, tag}); !ok) {
      spdlog::warn("idempotency record not stored: {}", ok.error().message);
    }
  };
  return true;
}

void api::impl::dispatch(const call_ptr& c) {
  const auto& path = c->path;
  const auto& m = c->req.method;
  const auto found = routes.find(m, path);
  // Counted under the route's template (a known path with another method: that path's).
  c->route_id = realtime->metrics->route_id(found.found != nullptr  ? found.found
                                            : found.at_path.empty() ? nullptr
                                                                    : found.at_path.front());
  // A preflight carries no credentials: answered before authentication.
  if (m == "OPTIONS") return options(c, found);
  // Open routes (health, metrics, login) answer without authentication.
  if (found.open()) {
    if (!found.found) return send_method_not_allowed(c, found);
    if (!acceptable(c, *found.found)) return;
    return found.found->handler(c, principal{}, found.params);
  }
  if (path.empty() || path[0] != "v1") return serve_static(c);

  const bool push = found.push();
  // Checked on the decoded path, so no encoding of it slips through.
  if (push && c->req.via_websocket) {
    return send_error(c, error{errc::invalid_argument, "path must be an API route under /v1/ (not a stream)"});
  }
  auto who = authenticate(*c, push);
  if (!who) {
    // A cookie that no longer works is removed, so the browser stops sending it.
    if (c->via == "cookie")
      return send_error(c, who.error(), {{"Set-Cookie", cleared_session_cookie(d.secure_cookie)}});
    return send_error(c, who.error());
  }
  const principal& p = *who;
  // A cookie-authenticated change or stream, and a WebSocket upgrade from a browser page
  // whatever its credential (a page may hold a token: cross-site WebSocket hijacking), must
  // come from this server's origin or a listed one. Clients without Origin go on.
  const bool browser_ws = c->req.websocket && !c->req.header("origin").empty();
  if ((c->via == "cookie" || browser_ws) && !origin_checked(c, push)) return;
  // An API token reaches only the routes its scopes cover (the policy's route gate);
  // the operations it then performs are checked against its scopes again.
  if (found.found && p.scopes) {
    if (const auto d = access::authorize_route(p, found.found->scope); !d.allowed) {
      c->operation = c->req.method + " " + found.found->pattern;
      c->resource = "route";
      return kit->deny(c, d.as_error(), d.reason);
    }
  }
  if (!found.found) {
    if (found.at_path.empty()) return send_error(c, error{errc::not_found, "no such route"});
    return send_method_not_allowed(c, found);
  }
  if (!acceptable(c, *found.found)) return;
  if ((m == "POST" || m == "PATCH" || m == "DELETE") && !idempotency(c, p)) return;
  found.found->handler(c, p, found.params);
}

bool api::impl::acceptable(const call_ptr& c, const route& r) {
  // A WebSocket command's body is the frame's JSON: no Content-Type to check.
  if (!c->req.via_websocket) {
    if (auto why = refused_media_type(c->req.header("content-type"), c->req.body.size())) {
      send(c, 415,
           json{{"error",
                 {{"code", "unsupported_media_type"},
                  {"message", *why},
                  {"details",
                   {{"content_type", repair_utf8(truncate_utf8(c->req.header("content-type"), 256))},
                    {"accepted", json::array({"application/json"})}}}}}});
      return false;
    }
  }
  if (auto unknown = unknown_query(*c, r); !unknown.empty()) {
    json names = json::array();
    for (const auto& n : unknown) names.push_back(repair_utf8(truncate_utf8(n, 128)));
    json known = r.query;
    if (r.access == route_access::push) known.push_back("token");
    send_error(c, error{errc::invalid_argument,
                        "unknown query parameter" + std::string(unknown.size() > 1 ? "s" : "") + ": " +
                            repair_utf8(truncate_utf8(unknown.front(), 128)) + (unknown.size() > 1 ? ", …" : ""),
                        {{"unknown", names}, {"accepted", known}}});
    return false;
  }
  return true;
}

void api::impl::options(const call_ptr& c, const route_table::match& found) {
  std::string allow;
  if (!found.at_path.empty()) {
    allow = found.allow();
  } else if ((c->path.empty() || c->path[0] != "v1") && d.web && d.web->find(c->req.target) != nullptr) {
    allow = "GET, HEAD, OPTIONS";
  } else {
    return send_error(c, error{errc::not_found, "no such route"});
  }
  header_list headers{{"Allow", allow}, {"X-Request-Id", c->correlation_id}};
  const auto origin = listed_origin(c->req.header("origin"), d.allowed_origins);
  if (origin && !c->req.header("access-control-request-method").empty()) {
    for (auto& h : preflight_headers(*origin, allow)) headers.push_back(std::move(h));
  }
  spdlog::info("http {} status=204 request_id={} preflight={}", log_request(*c), c->correlation_id,
               origin ? "allowed" : "no");
  http_response r{204, "", "application/json", std::move(headers)};
  r.content_type.clear();
  c->respond(std::move(r));
}

bool api::impl::origin_checked(const call_ptr& c, bool push) {
  const auto& m = c->req.method;
  if (!push && (m == "GET" || m == "HEAD" || m == "OPTIONS")) return true;
  const auto origin = c->req.header("origin");
  if (origin_allowed(origin, c->req.header("host"), d.allowed_origins)) return true;
  // A browser sends no Origin on a same-origin GET (Fetch: only CORS requests carry it),
  // so a console page's `new EventSource('/v1/…/stream')` has none; it does send
  // `Sec-Fetch-Site` (a header page script cannot set), which says the same thing.
  if (push && origin.empty() && m == "GET" && c->req.header("sec-fetch-site") == "same-origin") return true;
  c->operation = repair_utf8(truncate_utf8(m + " " + c->req.target.substr(0, c->req.target.find('?')), 256));
  c->resource = "origin";
  const auto shown = repair_utf8(truncate_utf8(origin, 256));
  error e{errc::forbidden,
          origin.empty() ? std::string("cross-origin request refused: no Origin header; a request authenticated by the "
                                       "session cookie must come from this server's pages")
                         : "cross-origin request refused: Origin " + shown + " is not this server's",
          {{"origin", shown}}};
  kit->deny(c, e, origin.empty() ? "cookie request without Origin" : "cookie request from a foreign origin");
  return false;
}

void api::impl::serve_static(const call_ptr& c) {
  const auto& m = c->req.method;
  if (m != "GET" && m != "HEAD") return send_error(c, error{errc::not_found, "no such route"});
  if (!d.web) {
    if (static_path(c->req.target) == "index.html") {
      return send_error(c, error{errc::not_found, "the web console is not installed (build web/ or pass --web-root)"});
    }
    return send_error(c, error{errc::not_found, "no such route"});
  }
  const auto* file = d.web->find(c->req.target);
  if (!file) return send_error(c, error{errc::not_found, "no such route"});
  c->route_id = http_metrics::k_static;
  auto resp = static_response(*file, c->req);
  resp.headers.emplace_back("X-Request-Id", c->correlation_id);
  spdlog::debug("http {} status={} bytes={} request_id={}", log_request(*c), resp.status, resp.body.size(),
                c->correlation_id);
  c->respond(std::move(resp));
}

call_ptr api::impl::make_call(http_request request, respond_fn respond) {
  auto c = std::make_shared<call>();
  c->req = std::move(request);
  c->respond = std::move(respond);
  const auto rid = c->req.header("x-request-id");
  const bool rid_ok = !rid.empty() && rid.size() <= 128 && std::all_of(rid.begin(), rid.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
  });
  c->correlation_id = rid_ok ? rid : new_uuid_v7();
  return c;
}

void api::impl::run(const call_ptr& c) {
  try {
    // The edge: nothing from the wire reaches a handler, an actor or the store unchecked.
    auto target = parse_target(c->req.target);
    if (!target) return send_error(c, target.error());
    if (auto ok = check_request(c->req); !ok) return send_error(c, ok.error());
    c->path = std::move(target->path);
    for (auto& [k, v] : target->query) c->query[std::move(k)] = std::move(v);
    dispatch(c);
  } catch (const std::exception& ex) {
    spdlog::error("request failed {} error={}", log_request(*c), log_escape(ex.what()));
    send_error(c, error{errc::internal, "internal error"});
  }
}

api::api(api_dependencies deps) : impl_(std::make_shared<impl>(deps)) {
  // WebSocket commands run exactly as requests do, answered as JSON.
  std::weak_ptr<impl> weak = impl_;
  impl_->realtime->run_command = [weak](http_request request, respond_fn respond,
                                        std::function<void(unsigned, const json&, const header_list&)> json_answer) {
    auto self = weak.lock();
    if (!self) return;
    auto c = impl::make_call(std::move(request), std::move(respond));
    c->json_sink = std::move(json_answer);
    self->run(c);
  };
}

api::~api() { stop(); }

void api::stop() { impl_->hashing.join(); }

nlohmann::json api::routes() const { return routes_json(impl_->routes); }

void api::handle(http_request request, respond_fn respond) {
  auto c = impl::make_call(std::move(request), nullptr);
  // Every answer, API or static file, carries the browser security headers, and is
  // counted under its call's route (the call is alive whenever its `respond` runs).
  representation_request facts{c->req.method, c->req.header("accept-encoding"), c->req.header("if-none-match"),
                               listed_origin(c->req.header("origin"), impl_->d.allowed_origins),
                               !impl_->d.allowed_origins.empty()};
  c->respond = [respond = std::move(respond), metrics = impl_->realtime->metrics, weak = std::weak_ptr<call>(c),
                method = http_metrics::method_index(c->req.method), started = c->started,
                facts = std::move(facts)](http_response r) mutable {
    add_security_headers(r.headers);
    const auto held = weak.lock();
    // The web console's files carry their own ETags and gzip variants (static_files.hpp).
    facts.representation = !held || held->route_id != http_metrics::k_static;
    // An OPTIONS answer carries the preflight's CORS headers itself.
    if (facts.method == "OPTIONS" && r.status == 204) facts.cors_origin.reset();
    finish_representation(r, facts);
    metrics->observe(held ? held->route_id : http_metrics::k_unmatched, method, r.status,
                     std::chrono::duration<double>(clock_type::now() - started).count());
    respond(std::move(r));
  };
  impl_->run(c);
}

}  // namespace atrium::http_adapter
