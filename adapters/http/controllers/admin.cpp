// Health, readiness, metrics and the projections' administration.
#include "adapters/http/controllers/controllers.hpp"
#include "adapters/http/exposition.hpp"
#include "adapters/http/openapi_document.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

#include "events/admin/admin_events.hpp"
#include "events/registry.hpp"

namespace atrium::http_adapter {
namespace {

/// The event relay's status as served by /readyz and /v1/admin/projections.
json relay_json(const ports::relay_info& r) {
  return json{{"destination", r.destination},
              {"checkpoint", r.checkpoint},
              {"lag_positions", r.lag_positions},
              {"lag_seconds", r.lag_seconds},
              {"in_flight", r.in_flight},
              {"status", r.status},
              {"error", r.error}};
}

/// `down` and `store` of a health report: why the server is unhealthy.
json health_json(const ports::health_report& h) {
  json body{{"down", h.down}};
  if (h.store) body["store"] = json{{"code", to_string(h.store->code)}, {"message", h.store->message}};
  return body;
}

/// A backup as served by `/v1/admin/backups` (taken_at in RFC 3339, UTC).
json backup_json(const ports::backup_info& b) {
  return json{
      {"id", b.id},
      {"position", b.position},
      {"chain_head", b.chain_head},
      {"size_bytes", b.size_bytes},
      {"files", b.files},
      {"taken_at", format_rfc3339(std::chrono::system_clock::from_time_t(static_cast<std::time_t>(b.taken_at)))},
      {"master_key_included", b.master_key_included}};
}

error backups_not_configured() {
  return error{errc::unavailable, "backups are not configured on this server (--backup-dir)"};
}

}  // namespace

void admin_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"GET", "/healthz", [self](auto& c, auto&, auto&) { self->healthz(c); }, route_access::open});
  t.add({"GET", "/readyz", [self](auto& c, auto&, auto&) { self->readyz(c); }, route_access::open});
  t.add({"GET", "/metrics", [self](auto& c, auto&, auto&) { self->metrics(c); }, route_access::open});
  // The API's own description (docs/openapi.json as built in), open like the health routes.
  t.add({"GET", "/v1/openapi.json",
         [](auto& c, auto&, auto&) {
           send_body(c, std::string(openapi_document()), "application/json", {{"Cache-Control", "no-cache"}});
         },
         route_access::open});
  t.add({"GET", "/v1/admin/projections", [self](auto& c, auto& p, auto&) { self->projections(c, p); }});
  t.add({"POST", "/v1/admin/projections/{name}/rebuild",
         [self](auto& c, auto& p, auto& a) { self->rebuild(c, p, a[0]); }});
  t.add({"POST", "/v1/admin/backups", [self](auto& c, auto& p, auto&) { self->take_backup(c, p); }});
  t.add({"GET", "/v1/admin/backups", [self](auto& c, auto& p, auto&) { self->list_backups(c, p); }});
  t.add({"GET", "/v1/admin/backups/{id}", [self](auto& c, auto& p, auto& a) { self->get_backup(c, p, a[0]); }});
}

/// Health: 503 while a core actor is down or the store cannot write (a server that
/// cannot write never says it is healthy); `down` and `store` say why.
void admin_controller::healthz(const call_ptr& c) {
  const auto h = d_.monitor.health();
  auto body = health_json(h);
  body["status"] = h.healthy ? "ok" : "unhealthy";
  body["position"] = d_.events.head_position();
  send(c, h.healthy ? 200 : 503, body);
}

/// Readiness: 503 while the projections catch up after start, and while unhealthy: a
/// degraded Kafka relay is reported in the body, but the API keeps accepting commands.
void admin_controller::readyz(const call_ptr& c) {
  d_.monitor.report([c, h = d_.monitor.health()](ports::projections_report r) {
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

void admin_controller::projections(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::projections_read, {}, "projections")) return;
  d_.monitor.report([c](ports::projections_report r) {
    json list = json::array();
    for (const auto& i : r.projections) {
      list.push_back({{"name", i.name},
                      {"checkpoint", i.checkpoint},
                      {"lag_positions", i.lag_positions},
                      {"lag_ms", i.lag_ms},
                      {"status", i.status},
                      {"error", i.error},
                      {"slot", i.slot},
                      {"rebuild_checkpoint", i.rebuild_checkpoint ? json(*i.rebuild_checkpoint) : json(nullptr)}});
    }
    send(c, 200,
         json{{"head", r.head},
              {"ready", r.ready},
              {"projections", list},
              {"relay", r.relay ? relay_json(*r.relay) : json(nullptr)}});
  });
}

void admin_controller::metrics(const call_ptr& c) {
  // Prometheus text exposition format 0.0.4 (adapters/http/exposition.hpp); the families
  // are listed in docs/api.md ("GET /metrics") and docs/operations.md ("Monitoring").
  d_.monitor.report([c, sources = d_.sources, jobs = d_.jobs, containers = d_.containers](ports::projections_report r) {
    using ports::family;
    using ports::metric_type;
    std::vector<ports::metric_family> out;
    auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    out.push_back(
        family("atrium_log_head_position", metric_type::gauge, "Position of the last committed event.").add(d(r.head)));
    out.push_back(
        family("atrium_projections_ready", metric_type::gauge, "1 once the projections caught up after start.")
            .add(r.ready ? 1 : 0));
    auto checkpoint = family("atrium_projection_checkpoint", metric_type::gauge, "Last position a projection applied.");
    auto lag =
        family("atrium_projection_lag_positions", metric_type::gauge, "Committed events a projection has not applied.");
    auto lag_s = family("atrium_projection_lag_seconds", metric_type::gauge,
                        "Age of the oldest event a projection has not applied.");
    auto stalled = family("atrium_projection_stalled", metric_type::gauge,
                          "1 while a projection is stalled on an error (GET /v1/admin/projections says why).");
    for (const auto& p : r.projections) {
      checkpoint.add(d(p.checkpoint), {{"projection", p.name}});
      lag.add(d(p.lag_positions), {{"projection", p.name}});
      lag_s.add(static_cast<double>(p.lag_ms) / 1000.0, {{"projection", p.name}});
      stalled.add(p.status == "stalled" ? 1 : 0, {{"projection", p.name}});
    }
    for (auto* f : {&checkpoint, &lag, &lag_s, &stalled}) out.push_back(std::move(*f));
    if (r.relay) {
      out.push_back(family("atrium_relay_checkpoint", metric_type::gauge,
                           "Last position acknowledged by Kafka with every earlier one.")
                        .add(d(r.relay->checkpoint)));
      out.push_back(
          family("atrium_relay_lag_positions", metric_type::gauge, "Committed events not yet acknowledged by Kafka.")
              .add(d(r.relay->lag_positions)));
      out.push_back(family("atrium_relay_lag_seconds", metric_type::gauge,
                           "Age of the oldest event not yet acknowledged by Kafka.")
                        .add(r.relay->lag_seconds));
      out.push_back(
          family("atrium_relay_in_flight", metric_type::gauge, "Events sent to Kafka and not yet acknowledged.")
              .add(d(r.relay->in_flight)));
      out.push_back(family("atrium_relay_up", metric_type::gauge,
                           "0 while the relay is degraded (brokers unreachable or stalled).")
                        .add(r.relay->status == "degraded" ? 0 : 1));
    }
    // Jobs and containers by state, from the projections' count tables (a few rows);
    // without counts (a projection built by an older version) the family has no sample.
    auto job_family = family("atrium_jobs", metric_type::gauge, "Jobs by status (from the jobs projection).");
    if (auto counts = jobs != nullptr ? jobs->job_counts() : result<std::optional<ports::state_counts>>{};
        counts && *counts) {
      for (const auto& [status, n] : **counts) job_family.add(d(n), {{"status", status}});
    }
    out.push_back(std::move(job_family));
    auto container_family =
        family("atrium_containers", metric_type::gauge, "Containers not removed, by desired and observed state.");
    if (auto counts =
            containers != nullptr ? containers->container_counts() : result<std::optional<ports::state_counts>>{};
        counts && *counts) {
      for (const auto& [key, n] : **counts) {
        const auto slash = key.find('/');
        container_family.add(d(n), {{"desired", key.substr(0, slash)},
                                    {"observed", slash == std::string::npos ? "" : key.substr(slash + 1)}});
      }
    }
    out.push_back(std::move(container_family));
    for (const auto* s : sources) s->collect(out);
    send_body(c, prometheus_text(std::move(out)), k_prometheus_content_type, {});
  });
}

void admin_controller::rebuild(const call_ptr& c, const principal& p, const std::string& name) {
  if (!d_.kit->allowed(c, p, access::operation::projections_rebuild, {}, "projection-" + name)) return;
  d_.monitor.rebuild(name, [c, name](result<void> started) {
    if (!started) return send_error(c, started.error());
    send(c, 202, json{{"projection", name}, {"status", "rebuilding"}});
  });
}

/// POST /v1/admin/backups: takes an online backup (201 with it, `Location` its URL),
/// recorded as `admin.backup_taken` before the answer. 409 while another backup runs,
/// 503 when backups are not configured or the backup directory cannot be written.
void admin_controller::take_backup(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::backups_manage, {}, "backups")) return;
  if (d_.backups == nullptr) return send_error(c, backups_not_configured());
  d_.backups->take([c, kit = d_.kit](result<ports::backup_info> taken) {
    if (!taken) return send_error(c, taken.error());
    auto ev = make_event(admin_backup_taken{taken->id, taken->position, taken->chain_head, taken->size_bytes,
                                            taken->master_key_included, c->user_id, c->req.remote});
    ev.actor = "user-" + c->user_id;
    ev.correlation_id = c->correlation_id;
    ev.metadata = request_metadata(c->req);
    kit->record_unowned(admin_stream, std::move(ev), [c, info = *taken] {
      send(c, 201, backup_json(info), {{"Location", "/v1/admin/backups/" + std::to_string(info.id)}});
    });
  });
}

/// GET /v1/admin/backups: `{"backups": [...]}`, oldest first.
void admin_controller::list_backups(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::backups_manage, {}, "backups")) return;
  if (d_.backups == nullptr) return send_error(c, backups_not_configured());
  auto all = d_.backups->list();
  if (!all) return send_error(c, all.error());
  json list = json::array();
  for (const auto& b : *all) list.push_back(backup_json(b));
  send(c, 200, json{{"backups", std::move(list)}});
}

/// GET /v1/admin/backups/{id}: one backup; 404 for an id that is not a listed backup.
void admin_controller::get_backup(const call_ptr& c, const principal& p, const std::string& id) {
  if (!d_.kit->allowed(c, p, access::operation::backups_manage, {}, "backups")) return;
  if (d_.backups == nullptr) return send_error(c, backups_not_configured());
  std::uint32_t wanted = 0;
  const auto* end = id.data() + id.size();
  if (auto [ptr, ec] = std::from_chars(id.data(), end, wanted); ec != std::errc() || ptr != end || id.empty()) {
    return send_error(c, error{errc::not_found, "no such backup"});
  }
  auto all = d_.backups->list();
  if (!all) return send_error(c, all.error());
  for (const auto& b : *all) {
    if (b.id == wanted) return send(c, 200, backup_json(b));
  }
  send_error(c, error{errc::not_found, "no such backup"});
}

}  // namespace atrium::http_adapter
