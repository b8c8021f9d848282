// The HTTP API: data connections, their credentials (through the vault) and tests.
//
// Secrets: `credentials` of a request go straight to the vault; commands, events, rows,
// responses and log lines only ever see the vault reference and the fingerprint.
#include "adapters/http/controllers/controllers.hpp"

namespace atrium::http_adapter {
namespace {

/// The `credentials` member: an object, or absent/null (= empty object).
result<json> credentials_field(const json& body) {
  auto it = body.find("credentials");
  if (it == body.end() || it->is_null()) return json::object();
  if (!it->is_object()) {
    return fail(errc::invalid_argument, "credentials must be an object", {{"field", "credentials"}});
  }
  return *it;
}

/// Where a `postgres` connection goes: host and port as normalized (port 5432 default).
std::pair<std::string, std::uint64_t> destination_of(const json& params) {
  std::string host;
  std::uint64_t port = 5432;
  if (params.is_object()) {
    if (auto h = params.find("host"); h != params.end() && h->is_string()) host = h->get<std::string>();
    if (auto pt = params.find("port"); pt != params.end() && pt->is_number_unsigned()) port = pt->get<std::uint64_t>();
  }
  return {host, port};
}

/// What a member is told about a failed test, by class.
std::string class_message(const std::string& error_class) {
  static const std::map<std::string, std::string> messages{
      {"denied_by_policy", "the server's connection policy does not allow this destination"},
      {"unreachable", "the host could not be reached"},
      {"refused", "the host refused the connection"},
      {"timeout", "the host did not answer in time"},
      {"tls", "the TLS handshake failed"},
      {"auth_failed", "the database refused the credentials or the database name"},
      {"not_a_database", "no database could be opened there"},
  };
  auto it = messages.find(error_class);
  return it == messages.end() ? "the connection test failed" : it->second;
}

}  // namespace

void connections_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/connections", [self](auto& c, auto& p, auto&) { self->create(c, p); }});
  // Admins and auditors see all; others those granted to them or to one of their groups.
  t.add({"GET", "/v1/connections",
         [self](auto& c, auto& p, auto&) {
           answer_list(*self->d_.kit, c, p, access::operation::connection_list, "connections",
                       [&](const ports::page_request& at) { return self->d_.connections.visible_connections(p, at); });
         }})
      .query = {"limit", "after"};
  t.add({"GET", "/v1/connections/{id}",
         [self](auto& c, auto& p, auto& a) {
           const auto facts = connection_facts(self->d_.connections, p, a[0]);
           answer_get(*self->d_.kit, c, p, access::operation::connection_read, facts.facts(), "connection-" + a[0],
                      facts.record ? std::optional<json>(facts.record->view) : std::nullopt, "no such connection");
         }})
      .query = {"as_of"};
  t.add({"PATCH", "/v1/connections/{id}", [self](auto& c, auto& p, auto& a) { self->patch(c, p, a[0]); }});
  t.add({"DELETE", "/v1/connections/{id}", [self](auto& c, auto& p, auto& a) { self->remove(c, p, a[0]); }});
  t.add({"POST", "/v1/connections/{id}/test", [self](auto& c, auto& p, auto& a) { self->test(c, p, a[0]); }});
  t.add({"POST", "/v1/connections/{id}/members", [self](auto& c, auto& p, auto& a) { self->share(c, p, a[0]); }});
  t.add({"DELETE", "/v1/connections/{id}/members/{member}",
         [self](auto& c, auto& p, auto& a) { self->unshare(c, p, a[0], a[1]); }});
}

std::optional<connection_access> connections_controller::guard(const call_ptr& c, const principal& p,
                                                               access::operation op, const std::string& id) {
  auto facts = connection_facts(d_.connections, p, id);
  if (!d_.kit->admitted(c, p, op, facts.facts(), "connection-" + id, facts.record.has_value(), "no such connection")) {
    return std::nullopt;
  }
  return facts;
}

/// A destination `check_destination` refused: one the network policy denies (`forbidden`)
/// is recorded as `security.access_denied` and answered 403; a malformed one (e.g. a
/// SQLite `params.path` outside `--sqlite-root`: `invalid_argument`) is bad input, 400,
/// and not a denial.
void connections_controller::refuse_destination(const call_ptr& c, const error& e) {
  if (e.code == errc::forbidden) return d_.kit->deny(c, e, "connection destination denied by policy");
  send_error(c, e);
}

/// POST /v1/connections: `{"name","driver","params":{...},"credentials":{...}}`. The
/// destination is checked against the network policy first (on the probe pool: it
/// resolves the host name); a denied one is answered 403 with details
/// `{"class":"denied_by_policy",…}` and recorded as `security.access_denied`.
void connections_controller::create(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::connection_create, {}, "connections")) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto name = string_field(*body, "name", true);
  if (!name) return send_error(c, name.error());
  auto driver = string_field(*body, "driver", true);
  if (!driver) return send_error(c, driver.error());
  const auto params = body->value("params", json::object());
  auto credentials = credentials_field(*body);
  if (!credentials) return send_error(c, credentials.error());
  if (auto ok = validate_connection_spec(**driver, params, *credentials); !ok) return send_error(c, ok.error());
  d_.probes([self = shared_from_this(), c, p, name = **name, driver = **driver, params,
             credentials = std::move(*credentials)] {
    if (auto ok = self->d_.tester.check_destination(driver, params); !ok)
      return self->refuse_destination(c, ok.error());
    auto sealed = self->d_.vault.seal(credentials);
    if (!sealed) return send_error(c, sealed.error());
    auto id = new_uuid_v7();
    auto done = self->d_.kit->finish(c, 201);
    self->d_.kit->commands().execute(
        id, create_connection{id, name, driver, normalized_params(driver, params), sealed->ref, sealed->fingerprint},
        controller_kit::context(*c, p), [self, ref = sealed->ref, done](auto r) {
          // A refused create leaves nothing that refers to the secret.
          if (!r) (void)self->d_.vault.erase(ref);
          done(std::move(r));
        });
  });
}

/// PATCH /v1/connections/{id}: `{"name"?, "params"?, "credentials"?}`; new credentials
/// are sealed under a new reference and the old entry is erased once rotated.
///
/// Stored credentials never follow a connection to a new destination: changing the host
/// or the port of a connection that holds credentials needs `credentials` in the same
/// request (400, details `{"field":"credentials"}`, otherwise). New params are checked
/// against the network policy like a create.
void connections_controller::patch(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = guard(c, p, access::operation::connection_update, id);
  if (!facts) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto name = string_field(*body, "name", false);
  if (!name) return send_error(c, name.error());
  std::optional<json> params;
  if (auto it = body->find("params"); it != body->end() && !it->is_null()) params = *it;
  const bool rotate = body->contains("credentials") && !(*body)["credentials"].is_null();
  if (!*name && !params && !rotate) {
    return send_error(c, error{errc::invalid_argument, "nothing to change: give name, params or credentials"});
  }
  const auto driver = facts->record->view.value("driver", "");
  const auto old_ref = facts->record->vault_ref;
  std::optional<json> credentials;
  if (rotate) {
    auto given = credentials_field(*body);
    if (!given) return send_error(c, given.error());
    const auto effective = params ? *params : facts->record->view.value("params", json::object());
    if (auto ok = validate_connection_spec(driver, effective, *given); !ok) return send_error(c, ok.error());
    credentials = std::move(*given);
  } else if (params) {
    if (auto ok = validate_connection_params(driver, *params); !ok) return send_error(c, ok.error());
  }
  if (params) params = normalized_params(driver, *params);
  if (params && !rotate && holds_credentials(facts->record->view) &&
      destination_of(*params) != destination_of(facts->record->view.value("params", json::object()))) {
    return send_error(c, error{errc::invalid_argument,
                               "changing the host or port of a connection that holds credentials needs new "
                               "credentials in the same request: stored credentials never follow a connection "
                               "to a new destination",
                               {{"field", "credentials"}}});
  }
  d_.probes([self = shared_from_this(), c, p, id, name = *name, params, credentials, driver, old_ref] {
    if (params) {
      if (auto ok = self->d_.tester.check_destination(driver, *params); !ok) {
        return self->refuse_destination(c, ok.error());
      }
    }
    std::optional<ports::sealed_secret> sealed;
    if (credentials) {
      auto s = self->d_.vault.seal(*credentials);
      if (!s) return send_error(c, s.error());
      sealed = *s;
    }
    auto rotate_step = [self, c, p, id, sealed, old_ref] {
      if (!sealed) return;
      self->d_.kit->commands().execute(id, rotate_credentials{sealed->ref, sealed->fingerprint},
                                       controller_kit::context(*c, p),
                                       [self, sealed, old_ref, done = self->d_.kit->finish(c, 200)](auto r) {
                                         // Keep exactly the entry the connection now refers to.
                                         const bool rotated = r && !r->events.empty();
                                         const auto& unused = rotated ? old_ref : sealed->ref;
                                         if (!unused.empty()) (void)self->d_.vault.erase(unused);
                                         done(std::move(r));
                                       });
    };
    if (!name && !params) return rotate_step();
    auto then = sealed ? ports::completion([self, c, sealed, rotate_step](result<ports::command_outcome> r) {
      if (!r) {
        (void)self->d_.vault.erase(sealed->ref);
        return send_error(c, r.error());
      }
      rotate_step();
    })
                       : self->d_.kit->finish(c, 200);
    self->d_.kit->commands().execute(id, update_connection{name, params}, controller_kit::context(*c, p),
                                     std::move(then));
  });
}

/// DELETE /v1/connections/{id}: the connection is gone and its vault entry erased.
void connections_controller::remove(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = guard(c, p, access::operation::connection_delete, id);
  if (!facts) return;
  d_.kit->commands().execute(id, delete_connection{}, controller_kit::context(*c, p),
                             [self = shared_from_this(), ref = facts->record->vault_ref,
                              done = d_.kit->finish(c, 200)](result<ports::command_outcome> r) {
                               if (r && !ref.empty()) {
                                 if (auto ok = self->d_.vault.erase(ref); !ok) {
                                   spdlog::warn("vault entry of a deleted connection not erased: {}",
                                                ok.error().message);
                                 }
                               }
                               done(std::move(r));
                             });
}

/// POST /v1/connections/{id}/test: opens the credentials, checks the destination against
/// the network policy and really connects to the checked addresses (on the probe pool,
/// bounded by the test timeout), records `connection.tested` with the error's class
/// only, and answers `{"ok","error","message","latency_ms","server_version","connection"}`
/// — `error` the class (`""` when ok), `message` a sentence for it — plus, for admins
/// only, `"detail"`: the driver's text with every form of the password masked. Only
/// owners (and admins) test a connection that holds credentials.
void connections_controller::test(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = guard(c, p, access::operation::connection_test, id);
  if (!facts) return;
  d_.probes([self = shared_from_this(), c, p, id, row = facts->record->view, ref = facts->record->vault_ref] {
    ports::connection_probe probe;
    auto credentials = self->d_.vault.open(ref);
    if (!credentials) {
      probe.error_class = "failed";
      probe.error = "credentials unavailable: " + credentials.error().message;
    } else {
      probe = self->d_.tester.test(row.value("driver", ""), row.value("params", json::object()), *credentials,
                                   self->d_.test_timeout);
    }
    if (!probe.ok && probe.error_class.empty()) probe.error_class = "failed";
    spdlog::info("connection test connection_id={} ok={} class={} latency_ms={} request_id={}", id, probe.ok,
                 probe.ok ? "-" : probe.error_class, probe.latency_ms, c->correlation_id);
    self->d_.kit->commands().execute(
        id, record_test{probe.ok, probe.ok ? "" : probe.error_class, probe.latency_ms}, controller_kit::context(*c, p),
        [self, c, p, probe](result<ports::command_outcome> r) {
          if (!r) return send_error(c, r.error());
          self->d_.kit->commands().await_projections(r->position, [c, p, probe, view = r->view] {
            json answer{{"ok", probe.ok},
                        {"error", probe.ok ? "" : probe.error_class},
                        {"message", probe.ok ? "connected" : class_message(probe.error_class)},
                        {"latency_ms", probe.latency_ms},
                        {"server_version", probe.server_version},
                        {"connection", view}};
            if (p.is_admin() && !probe.ok) answer["detail"] = probe.error;
            send(c, 200, answer);
          });
        });
  });
}

/// POST /v1/connections/{id}/members: `{"user_id"|"group_id", "role": "user"|"owner"}`.
void connections_controller::share(const call_ptr& c, const principal& p, const std::string& id) {
  if (!guard(c, p, access::operation::connection_share, id)) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto role = string_field(*body, "role", true);
  if (!role) return send_error(c, role.error());
  auto member = existing_member(d_.users, d_.groups, *body);
  if (!member) return send_error(c, member.error());
  d_.kit->commands().execute(id, grant_connection_access{member->type, member->id, **role},
                             controller_kit::context(*c, p), d_.kit->finish(c, 200));
}

/// DELETE /v1/connections/{id}/members/{user_id or group_id}.
void connections_controller::unshare(const call_ptr& c, const principal& p, const std::string& id,
                                     const std::string& who) {
  auto facts = guard(c, p, access::operation::connection_share, id);
  if (!facts) return;
  std::string type = "user";
  for (const auto& g : facts->record->view.value("grants", json::array())) {
    if (g.value("group_id", "") == who) type = "group";
  }
  d_.kit->commands().execute(id, revoke_connection_access{type, who}, controller_kit::context(*c, p),
                             d_.kit->finish(c, 200));
}

}  // namespace atrium::http_adapter
