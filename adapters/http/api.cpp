// The HTTP API: routing, authentication, idempotency, answering commands.
#include "adapters/http/api_internal.hpp"

#include "events/project/project_decider.hpp"
#include "events/security/security_events.hpp"
#include "events/user/user_decider.hpp"
#include "projections/access_views.hpp"
#include "projections/views.hpp"

namespace atrium::http_adapter {

unsigned http_status(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
      return 400;
    case errc::unauthenticated:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::version_conflict:
    case errc::already_exists:
    case errc::failed_precondition:
      return 409;
    case errc::payload_too_large:
      return 413;
    case errc::precondition_required:
      return 428;
    case errc::unavailable:
      return 503;
    case errc::internal:
      return 500;
  }
  return 500;
}

result<principal> api::impl::authenticate(call& c) const {
  auto token = bearer_token(c.req.header("authorization"));
  if (!token) return fail(errc::unauthenticated, "missing bearer token");
  const auto token_hash = d.secrets.sha256_hex(*token);
  const auto session = d.tokens.get(token_hash);
  if (!session) return std::unexpected(session.error());
  if (!*session) return fail(errc::unauthenticated, "invalid or expired token");
  if ((*session)->expires_at <= unix_now()) {
    (void)d.tokens.erase(token_hash);  // an expired session is of no further use
    return fail(errc::unauthenticated, "invalid or expired token");
  }
  auto row = d.read_models.get("users", "users", (*session)->user_id);
  if (!row) return std::unexpected(row.error());
  if (!*row) return fail(errc::unauthenticated, "invalid or expired token");
  const auto user = user_from_row(**row);
  if (user.disabled) return fail(errc::unauthenticated, "user is disabled");
  c.who = user.username;
  c.user_id = user.user_id;
  c.token_hash = token_hash;
  return principal{user.user_id, user.roles, user.disabled, groups_of(user.user_id)};
}

std::set<std::string> api::impl::groups_of(const std::string& user_id) const {
  std::set<std::string> seen;
  std::vector<std::string> frontier;
  auto expand = [&](const std::string& table, const std::string& child) {
    const auto prefix = child + "/";
    auto rows = d.read_models.scan("groups", table, prefix, "", k_max_limit);
    if (!rows) return;
    for (const auto& r : *rows) {
      auto g = r.key.substr(prefix.size());
      if (seen.insert(g).second) frontier.push_back(std::move(g));
    }
  };
  expand("user_groups", user_id);
  while (!frontier.empty()) {
    auto g = std::move(frontier.back());
    frontier.pop_back();
    expand("group_parents", g);
  }
  return seen;
}

api::impl::project_access api::impl::project_facts(const principal& p, const std::string& id) const {
  project_access out;
  if (!valid_id(id)) return out;
  auto row = d.read_models.get("projects", "projects", id);
  if (!row || !*row) return out;
  out.row = **row;
  try {
    out.role = project_from_row(**row).role_of(p);
  } catch (const json::exception&) {
  }
  return out;
}

bool api::impl::allowed(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
                        const std::string& resource) {
  c->operation = std::string(access::to_string(op));
  c->resource = resource;
  const auto decision = access::authorize(p, op, f);
  if (decision.allowed) return true;
  deny(c, decision.as_error(), decision.reason);
  return false;
}

bool api::impl::admitted(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
                         const std::string& resource, bool exists, const char* missing) {
  if (!allowed(c, p, op, f, resource)) return false;
  if (!exists) send_error(c, error{errc::not_found, missing});
  return exists;
}

void api::impl::deny(const call_ptr& c, const error& e, const std::string& reason) {
  auto ev = make_event(
      security_access_denied{c->user_id, c->operation, c->resource, reason, http_status(e.code), c->req.remote});
  ev.actor = c->user_id.empty() ? "anonymous" : "user-" + c->user_id;
  ev.correlation_id = c->correlation_id;
  ev.metadata = request_metadata(c->req);
  record_security(std::move(ev), [c, e] { send_error(c, e); });
}

void api::impl::record_security(proposed_event e, std::function<void()> then) {
  d.commands.record(std::string(security_stream), std::move(e),
                    [self = shared_from_this(), then = std::move(then)](result<std::uint64_t> r) {
                      if (!r) {
                        spdlog::error("security event not recorded: {}", r.error().message);
                        return then();
                      }
                      // Read-your-writes: an audit read after this answer includes the event.
                      self->d.commands.await_projections(*r, then);
                    });
}

ports::command_context api::impl::context(const call& c, const principal& p,
                                          std::optional<std::uint64_t> expected) const {
  return ports::command_context{p, c.correlation_id, expected, c.command_id, request_metadata(c.req)};
}

/// Finishes a command: waits until projections include it (read-your-writes), then
/// answers with the entity's view — for a project, the projected row (the same shape
/// as `GET`, timestamps included) when it has caught up to this version.
///
/// When the store answered a retried command (same Idempotency-Key) with events it had
/// already committed, those may belong to another entity than the one this attempt
/// addressed (a create retried after the server stopped mid-request gets a new id);
/// the answer is then that original entity, as projected.
ports::completion api::impl::finish(const call_ptr& c, unsigned status) {
  return [self = shared_from_this(), c, status](result<ports::command_outcome> r) {
    if (!r && r.error().code == errc::forbidden) return self->deny(c, r.error(), r.error().message);
    if (!r) return send_error(c, r.error());
    if (r->events.empty()) return send(c, status, r->view, {{"ETag", etag(r->version)}});
    const auto stream = r->events.front().stream;
    std::uint64_t version = 0;
    for (const auto& e : r->events) {
      if (e.stream == stream) version = e.version;
    }
    const bool replayed = r->version == 0;
    // X-Atrium-Position: the log position of the command's last event, from which a
    // subscription sees everything the command caused (WebSocket results carry it).
    auto answer = [self, c, status, stream, version, replayed, view = r->view, position = r->position] {
      const auto at = std::to_string(position);
      if (auto row = self->entity_row(stream)) {
        const auto v = row->value("version", std::uint64_t{0});
        if (v == version || replayed) return send(c, status, *row, {{"ETag", etag(v)}, {"X-Atrium-Position", at}});
      }
      send(c, status, view, {{"ETag", etag(version)}, {"X-Atrium-Position", at}});
    };
    self->d.commands.await_projections(r->position, answer);
  };
}

/// The projected row of an entity's stream, as the API serves it.
std::optional<json> api::impl::entity_row(const std::string& stream) const {
  const auto dash = stream.find('-');
  if (dash == std::string::npos) return std::nullopt;
  const auto entity = stream.substr(0, dash), id = stream.substr(dash + 1);
  // entity → (projection, table); every projection keeps its entities' rows under their id.
  static const std::map<std::string, std::pair<std::string, std::string>> tables{
      {"user", {"users", "users"}},    {"project", {"projects", "projects"}},
      {"group", {"groups", "groups"}}, {"connection", {"connections", "connections"}},
      {"job", {"jobs", "jobs"}},       {"container", {"containers", "containers"}}};
  auto t = tables.find(entity);
  if (t == tables.end()) return std::nullopt;
  auto row = d.read_models.get(t->second.first, t->second.second, id);
  if (!row || !*row) return std::nullopt;
  if (entity == "user") return user_view_of_row(**row);
  if (entity == "connection") return connection_view_of_row(**row);
  if (entity == "project") return project_view_of_row(**row);
  return **row;
}

/// Applies `Idempotency-Key` to a mutating request: answers a replay or a reused key
/// itself (returns false), or prepares the call to run and remember its response.
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
    std::vector<std::pair<std::string, std::string>> headers{{"X-Request-Id", c->correlation_id},
                                                             {"Idempotency-Replayed", "true"}};
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

void api::impl::route(const call_ptr& c) {
  const auto& path = c->path;
  const auto& m = c->req.method;
  auto is = [&](std::initializer_list<std::string_view> segs) {
    if (segs.size() != path.size()) return false;
    std::size_t i = 0;
    for (auto s : segs) {
      if (s != "*" && s != path[i]) return false;
      ++i;
    }
    return true;
  };
  auto method_not_allowed = [&] {
    send_error(c, error{errc::invalid_argument, "method not allowed", {{"method", m}}});
  };

  // Health: 503 while a core actor is down or the store cannot write (a server that
  // cannot write never says it is healthy); `down` and `store` say why.
  auto health_json = [](const ports::health_report& h) {
    json body{{"down", h.down}};
    if (h.store) body["store"] = json{{"code", to_string(h.store->code)}, {"message", h.store->message}};
    return body;
  };
  if (is({"healthz"})) {
    if (m != "GET") return method_not_allowed();
    const auto h = d.monitor.health();
    auto body = health_json(h);
    body["status"] = h.healthy ? "ok" : "unhealthy";
    body["position"] = d.events.head_position();
    return send(c, h.healthy ? 200 : 503, body);
  }
  if (is({"readyz"})) {
    if (m != "GET") return method_not_allowed();
    // 503 while the projections catch up after start, and while unhealthy: a degraded
    // Kafka relay is reported in the body, but the API keeps accepting commands meanwhile.
    return d.monitor.report([c, h = d.monitor.health(), health_json](ports::projections_report r) {
      std::uint64_t lag = 0;
      for (const auto& p : r.projections) lag = std::max(lag, p.lag_positions);
      const bool ready = r.ready && h.healthy;
      json body{{"status", !h.healthy ? "unhealthy"
                           : r.ready  ? "ready"
                                      : "catching_up"},
                {"head", r.head},
                {"max_lag_positions", lag}};
      if (!h.healthy) body.update(health_json(h));
      if (r.relay) body["relay"] = relay_json(*r.relay);
      send(c, ready ? 200 : 503, body);
    });
  }
  if (is({"metrics"})) {
    if (m != "GET") return method_not_allowed();
    return metrics(c);
  }
  if (is({"v1", "auth", "login"})) {
    if (m != "POST") return method_not_allowed();
    return login(c);
  }
  if (path.empty() || path[0] != "v1") return send_error(c, error{errc::not_found, "no such route"});

  // Browsers cannot set headers on a WebSocket or EventSource: they may pass `token`.
  const bool push = is({"v1", "ws"}) || is({"v1", "events", "stream"});
  // Checked on the decoded path, so no encoding of it slips through.
  if (push && c->req.via_websocket) {
    return send_error(c, error{errc::invalid_argument, "path must be an API route under /v1/ (not a stream)"});
  }
  if (push && c->req.header("authorization").empty() && c->query.contains("token")) {
    c->req.headers["authorization"] = "Bearer " + c->query["token"];
  }
  auto who = authenticate(*c);
  if (!who) return send_error(c, who.error());
  const principal& p = *who;
  if ((m == "POST" || m == "PATCH" || m == "DELETE") && !idempotency(c, p)) return;

  if (is({"v1", "users"})) {
    if (m == "POST") return create_user(c, p);
    if (m == "GET") return list_users(c, p);
    return method_not_allowed();
  }
  if (is({"v1", "users", "*"})) {
    if (m == "GET") return get_user(c, p, path[2]);
    if (m == "PATCH") return patch_user(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "users", "*", "disable"})) {
    if (m != "POST") return method_not_allowed();
    return disable_user_(c, p, path[2]);
  }
  if (is({"v1", "auth", "logout"})) {
    if (m != "POST") return method_not_allowed();
    return logout(c, p);
  }
  if (is({"v1", "projects"})) {
    if (m == "POST") return create_project_(c, p);
    if (m == "GET") return list_projects(c, p);
    return method_not_allowed();
  }
  if (is({"v1", "projects", "*"})) {
    if (m == "GET") return get_project(c, p, path[2]);
    if (m == "PATCH") return patch_project(c, p, path[2]);
    if (m == "DELETE") return archive(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "projects", "*", "cells"})) {
    if (m == "POST") return add_cell_(c, p, path[2]);
    if (m == "GET") return list_cells(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "projects", "*", "cells", "*"})) {
    if (m == "GET") return get_cell(c, p, path[2], path[4]);
    if (m == "PATCH") return patch_cell(c, p, path[2], path[4]);
    if (m == "DELETE") return remove_cell_(c, p, path[2], path[4]);
    return method_not_allowed();
  }
  if (is({"v1", "projects", "*", "members"})) {
    if (m != "POST") return method_not_allowed();
    return add_member_(c, p, path[2]);
  }
  if (is({"v1", "projects", "*", "members", "*"})) {
    if (m != "DELETE") return method_not_allowed();
    return remove_member_(c, p, path[2], path[4]);
  }
  if (is({"v1", "groups"})) {
    if (m == "POST") return create_group_(c, p);
    if (m == "GET") return list_groups(c, p);
    return method_not_allowed();
  }
  if (is({"v1", "groups", "*"})) {
    if (m == "GET") return get_group(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "groups", "*", "members"})) {
    if (m == "POST") return add_group_member_(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "groups", "*", "members", "*"})) {
    if (m == "DELETE") return remove_group_member_(c, p, path[2], path[4]);
    return method_not_allowed();
  }
  if (is({"v1", "connections"})) {
    if (m == "POST") return create_connection_(c, p);
    if (m == "GET") return list_connections(c, p);
    return method_not_allowed();
  }
  if (is({"v1", "connections", "*"})) {
    if (m == "GET") return get_connection(c, p, path[2]);
    if (m == "PATCH") return patch_connection(c, p, path[2]);
    if (m == "DELETE") return delete_connection_(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "connections", "*", "test"})) {
    if (m == "POST") return test_connection(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "connections", "*", "members"})) {
    if (m == "POST") return share_connection(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "connections", "*", "members", "*"})) {
    if (m == "DELETE") return unshare_connection(c, p, path[2], path[4]);
    return method_not_allowed();
  }
  if (is({"v1", "jobs"})) {
    if (m == "POST") return submit_job_(c, p);
    if (m == "GET") return list_jobs(c, p);
    return method_not_allowed();
  }
  if (is({"v1", "jobs", "*"})) {
    if (m == "GET") return get_job(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "jobs", "*", "cancel"})) {
    if (m == "POST") return cancel_job(c, p, path[2]);
    return method_not_allowed();
  }
  if (is({"v1", "containers"})) {
    if (m == "POST") return declare_container_(c, p);
    if (m == "GET") return list_containers(c, p);
    return method_not_allowed();
  }
  if (is({"v1", "containers", "*"})) {
    if (m == "GET") return get_container(c, p, path[2]);
    if (m == "DELETE") return container_command_(c, p, path[2], access::operation::container_remove);
    return method_not_allowed();
  }
  if (is({"v1", "containers", "*", "start"})) {
    if (m == "POST") return container_command_(c, p, path[2], access::operation::container_start);
    return method_not_allowed();
  }
  if (is({"v1", "containers", "*", "stop"})) {
    if (m == "POST") return container_command_(c, p, path[2], access::operation::container_stop);
    return method_not_allowed();
  }
  if (is({"v1", "admin", "projections"})) {
    if (m != "GET") return method_not_allowed();
    return projections(c, p);
  }
  if (is({"v1", "admin", "projections", "*", "rebuild"})) {
    if (m != "POST") return method_not_allowed();
    return rebuild_projection(c, p, path[3]);
  }
  if (is({"v1", "audit", "export"})) {
    if (m != "GET") return method_not_allowed();
    return export_audit(c, p);
  }
  if (is({"v1", "audit", "verify"})) {
    if (m != "GET") return method_not_allowed();
    return verify_chain(c, p);
  }
  if (is({"v1", "audit"})) {
    if (m != "GET") return method_not_allowed();
    return audit(c, p);
  }
  if (is({"v1", "events"})) {
    if (m != "GET") return method_not_allowed();
    return events(c, p);
  }
  if (is({"v1", "events", "stream"})) {
    if (m != "GET") return method_not_allowed();
    return event_stream(c, p);
  }
  if (is({"v1", "ws"})) {
    if (m != "GET") return method_not_allowed();
    return websocket(c, p);
  }
  if (is({"v1", "streams", "*"})) {
    if (m != "GET") return method_not_allowed();
    return stream(c, p, path[2]);
  }
  send_error(c, error{errc::not_found, "no such route"});
}

api::api(api_dependencies deps) : impl_(std::make_shared<impl>(deps)) {}
api::~api() { stop(); }

void api::stop() { impl_->hashing.join(); }

void api::handle(http_request request, respond_fn respond) { impl_->handle(std::move(request), std::move(respond)); }

void api::impl::handle(http_request request, respond_fn respond) {
  auto c = std::make_shared<call>();
  c->req = std::move(request);
  c->respond = std::move(respond);
  const auto rid = c->req.header("x-request-id");
  const bool rid_ok = !rid.empty() && rid.size() <= 128 && std::all_of(rid.begin(), rid.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
  });
  c->correlation_id = rid_ok ? rid : new_uuid_v7();
  try {
    // The edge: nothing from the wire reaches a handler, an actor or the store unchecked.
    auto target = parse_target(c->req.target);
    if (!target) return send_error(c, target.error());
    if (auto ok = check_request(c->req); !ok) return send_error(c, ok.error());
    c->path = std::move(target->path);
    for (auto& [k, v] : target->query) c->query[std::move(k)] = std::move(v);
    route(c);
  } catch (const std::exception& ex) {
    spdlog::error("request failed {} error={}", log_request(*c), log_escape(ex.what()));
    send_error(c, error{errc::internal, "internal error"});
  }
}

}  // namespace atrium::http_adapter
