// Schedules: cron-timed jobs or DataDoc runs in projects (events/schedule/).
#include <chrono>
#include <limits>

#include "adapters/http/controllers/controllers.hpp"
#include "events/schedule/cron.hpp"

namespace atrium::http_adapter {
namespace {

/// The fields of `target`: `{"run_cells": true}` or a job template
/// `{"kind","connection_id"?,"sql"?,"script"?,"language"?,"timeout_s"?}`.
result<schedule_target> parse_target(const json& body) {
  auto it = body.find("target");
  if (it == body.end() || !it->is_object()) {
    return fail(errc::invalid_argument, "target must be an object: a job template or {\"run_cells\": true}",
                {{"field", "target"}});
  }
  const auto& t = *it;
  schedule_target out;
  if (auto rc = t.find("run_cells"); rc != t.end()) {
    if (!rc->is_boolean())
      return fail(errc::invalid_argument, "run_cells must be true", {{"field", "target.run_cells"}});
    if (rc->get<bool>()) {
      if (t.size() != 1) {
        return fail(errc::invalid_argument, "a run_cells target has no other fields", {{"field", "target"}});
      }
      out.run_cells = true;
      return out;
    }
  }
  for (auto [name, field] :
       {std::pair{"kind", &out.kind}, std::pair{"connection_id", &out.connection_id}, std::pair{"sql", &out.sql},
        std::pair{"script", &out.script}, std::pair{"language", &out.language}}) {
    auto v = string_field(t, name, false);
    if (!v) return std::unexpected(v.error());
    *field = v->value_or("");
  }
  if (auto ts = t.find("timeout_s"); ts != t.end() && !ts->is_null()) {
    if (!ts->is_number_integer() || ts->get<std::int64_t>() < 0 ||
        ts->get<std::uint64_t>() > std::numeric_limits<std::uint32_t>::max()) {
      return fail(errc::invalid_argument, "timeout_s must be a non-negative integer", {{"field", "target.timeout_s"}});
    }
    out.timeout_s = ts->get<std::uint32_t>();
  }
  return out;
}

std::chrono::sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

/// A run's outcome from its jobs' statuses, in run order: `none` (no job), `failed`
/// (one failed, timed out or was cancelled: the jobs after it are never submitted and
/// show `skipped`), `running` (one not finished, or not yet submitted: `pending`), else
/// `succeeded`. Marks the statuses of jobs that do not exist in place.
std::string outcome_of(json& jobs) {
  if (jobs.empty()) return "none";
  bool failed = false, running = false;
  for (auto& j : jobs) {
    const auto s = j.value("status", "");
    if (s.empty()) {
      j["status"] = failed ? "skipped" : "pending";
      running = running || !failed;
    } else if (s == "submitted" || s == "queued" || s == "running") {
      running = true;
    } else if (s != "succeeded") {
      failed = true;
    }
  }
  return failed ? "failed" : running ? "running" : "succeeded";
}

}  // namespace

json schedules_controller::with_next_fire_times(json row) const {
  json next = json::array();
  if (row.value("status", "") == "active") {
    auto spec = parse_cron(row.value("cron", ""));
    auto zone = d_.zones->locate(row.value("time_zone", "UTC"));
    auto anchor = parse_utc(row.value("anchor", ""));
    if (spec && zone) {
      for (auto t : next_fire_times(*spec, **zone, now_seconds(), 5, anchor.value_or(std::chrono::sys_seconds{}))) {
        next.push_back(format_utc(t));
      }
    }
  }
  row["next_fire_times"] = std::move(next);
  return row;
}

void schedules_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/schedules", [self](auto& c, auto& p, auto&) { self->create(c, p); }});
  t.add({"GET", "/v1/schedules", [self](auto& c, auto& p, auto&) { self->list(c, p); }}).query = {"limit", "after",
                                                                                                  "project_id"};
  t.add({"GET", "/v1/schedules/{id}",
         [self](auto& c, auto& p, auto& a) {
           const auto f = self->facts_of(p, a[0]);
           answer_get(*self->d_.kit, c, p, access::operation::schedule_read, {.role = f.role}, "schedule-" + a[0],
                      f.view, "no such schedule", self->shaped());
         }})
      .query = {"as_of"};
  t.add({"PATCH", "/v1/schedules/{id}", [self](auto& c, auto& p, auto& a) { self->patch(c, p, a[0]); }});
  t.add({"DELETE", "/v1/schedules/{id}", [self](auto& c, auto& p, auto& a) {
           const auto f = self->facts_of(p, a[0]);
           if (!self->d_.kit->admitted(c, p, access::operation::schedule_manage, {.role = f.role}, "schedule-" + a[0],
                                       f.view.has_value(), "no such schedule")) {
             return;
           }
           self->d_.kit->execute(c, p, a[0], delete_schedule{f.role});
         }});
  t.add({"POST", "/v1/schedules/{id}/pause", [self](auto& c, auto& p, auto& a) { self->pause(c, p, a[0]); }});
  t.add({"POST", "/v1/schedules/{id}/resume", [self](auto& c, auto& p, auto& a) {
           const auto f = self->facts_of(p, a[0]);
           if (!self->d_.kit->admitted(c, p, access::operation::schedule_manage, {.role = f.role}, "schedule-" + a[0],
                                       f.view.has_value(), "no such schedule")) {
             return;
           }
           self->d_.kit->execute(c, p, a[0], resume_schedule{f.role, now_seconds()}, 200, std::nullopt, self->shaped());
         }});
  t.add({"GET", "/v1/schedules/{id}/runs", [self](auto& c, auto& p, auto& a) { self->runs(c, p, a[0]); }}).query = {
      "limit", "after"};
}

/// The connection facts of a target (none for `run_cells` or no connection).
struct target_connection {
  std::optional<connection_role> role;
  bool uses = false;
};

/// POST /v1/schedules: `{"name","project_id","cron","time_zone"?,"target","catch_up"?}`.
void schedules_controller::create(const call_ptr& c, const principal& p) {
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto project = string_field(*body, "project_id", true);
  if (!project) return send_error(c, project.error());
  auto name = string_field(*body, "name", true);
  if (!name) return send_error(c, name.error());
  auto cron = string_field(*body, "cron", true);
  if (!cron) return send_error(c, cron.error());
  auto zone = string_field(*body, "time_zone", false);
  if (!zone) return send_error(c, zone.error());
  auto catch_up = string_field(*body, "catch_up", false);
  if (!catch_up) return send_error(c, catch_up.error());
  auto target = parse_target(*body);
  if (!target) return send_error(c, target.error());

  const auto proj = project_facts(d_.projects, p, **project);
  target_connection conn;
  if (!target->connection_id.empty()) {
    conn.uses = true;
    if (auto cf = connection_facts(d_.connections, p, target->connection_id); cf.record) conn.role = cf.record->role;
  }
  const access::facts f{.role = proj.role,
                        .connection_user = conn.role.has_value(),
                        .connection_owner = conn.role == connection_role::owner,
                        .uses_connection = conn.uses};
  if (!d_.kit->allowed(c, p, access::operation::schedule_create, f, "project-" + **project)) return;
  if (!proj.view) return send_error(c, error{errc::not_found, "no such project", {{"project_id", **project}}});
  if (conn.uses && !conn.role) {
    return send_error(c, error{errc::not_found, "no such connection", {{"connection_id", target->connection_id}}});
  }
  const auto tz = zone->value_or("UTC");
  auto located = d_.zones->locate(tz);
  if (!located) return send_error(c, located.error());
  create_schedule cmd;
  cmd.schedule_id = new_uuid_v7();
  cmd.project_id = **project;
  cmd.name = **name;
  cmd.cron = **cron;
  cmd.time_zone = tz;
  cmd.target = std::move(*target);
  cmd.catch_up = catch_up->value_or("none");
  cmd.creator_role = proj.role;
  cmd.time_zone_known = true;
  cmd.connection_usable = conn.role.has_value();
  cmd.now = now_seconds();
  const auto id = cmd.schedule_id;
  d_.kit->execute(c, p, id, std::move(cmd), 201, std::nullopt, shaped());
}

/// PATCH /v1/schedules/{id}: any of `{"name","cron","time_zone","target","catch_up"}`;
/// `If-Match: <version>` (optional): 409 `version_conflict` unless the schedule is at it.
void schedules_controller::patch(const call_ptr& c, const principal& p, const std::string& id) {
  const auto f = facts_of(p, id);
  if (!d_.kit->admitted(c, p, access::operation::schedule_manage, {.role = f.role}, "schedule-" + id,
                        f.view.has_value(), "no such schedule")) {
    return;
  }
  auto expected = optional_if_match(*c);
  if (!expected) return send_error(c, expected.error());
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  update_schedule cmd;
  for (auto [name, field] : {std::pair{"name", &cmd.name}, std::pair{"cron", &cmd.cron},
                             std::pair{"time_zone", &cmd.time_zone}, std::pair{"catch_up", &cmd.catch_up}}) {
    auto v = string_field(*body, name, false);
    if (!v) return send_error(c, v.error());
    *field = *v;
  }
  if (body->contains("target")) {
    auto target = parse_target(*body);
    if (!target) return send_error(c, target.error());
    cmd.target = std::move(*target);
    if (!cmd.target->connection_id.empty()) {
      const auto cf = connection_facts(d_.connections, p, cmd.target->connection_id);
      const access::facts tf{.role = f.role,
                             .connection_user = cf.record.has_value(),
                             .connection_owner = cf.record && cf.record->role == connection_role::owner,
                             .uses_connection = true};
      if (!d_.kit->allowed(c, p, access::operation::schedule_manage, tf, "schedule-" + id)) return;
      if (!cf.record) {
        return send_error(c,
                          error{errc::not_found, "no such connection", {{"connection_id", cmd.target->connection_id}}});
      }
      cmd.connection_usable = true;
    }
  }
  auto located = d_.zones->locate(cmd.time_zone.value_or(f.view->value("time_zone", "UTC")));
  if (!located) return send_error(c, located.error());
  cmd.time_zone_known = true;
  cmd.editor_role = f.role;
  cmd.now = now_seconds();
  d_.kit->execute(c, p, id, std::move(cmd), 200, *expected, shaped());
}

/// POST /v1/schedules/{id}/pause: `{"reason"?}`.
void schedules_controller::pause(const call_ptr& c, const principal& p, const std::string& id) {
  const auto f = facts_of(p, id);
  if (!d_.kit->admitted(c, p, access::operation::schedule_manage, {.role = f.role}, "schedule-" + id,
                        f.view.has_value(), "no such schedule")) {
    return;
  }
  json body = json::object();
  if (!c->req.body.empty()) {
    auto parsed = parse_object(c->req.body);
    if (!parsed) return send_error(c, parsed.error());
    body = std::move(*parsed);
  }
  auto reason = string_field(body, "reason", false);
  if (!reason) return send_error(c, reason.error());
  d_.kit->execute(c, p, id, pause_schedule{reason->value_or(""), f.role}, 200, std::nullopt, shaped());
}

/// GET /v1/schedules?project_id=: the schedules of the projects the caller reads (admins
/// and auditors: all), in id order, paged by `after` (a schedule id), each with
/// `next_fire_times`.
void schedules_controller::list(const call_ptr& c, const principal& p) {
  auto at = parse_page(*c);
  if (!at) return send_error(c, at.error());
  ports::schedule_filter filter{.at = *at};
  if (!narrow_to_readable_projects(*d_.kit, d_.projects, c, p, query_param(*c, "project_id"),
                                   access::operation::schedule_list, "schedules", "schedules", filter.every_project,
                                   filter.projects)) {
    return;
  }
  auto page = d_.schedules.schedules(filter);
  if (!page) return send_error(c, page.error());
  for (auto& item : page->items) item = with_next_fire_times(std::move(item));
  send_page(c, "schedules", *page);
}

/// GET /v1/schedules/{id}/runs: `{"runs":[{"fire_time","catch_up","fired_at","job_ids",
/// "jobs":[{"id","status","error"}],"outcome"}],"next"}`, oldest first, paged by `after` (a
/// fire time).
void schedules_controller::runs(const call_ptr& c, const principal& p, const std::string& id) {
  const auto f = facts_of(p, id);
  if (!d_.kit->admitted(c, p, access::operation::schedule_read, {.role = f.role}, "schedule-" + id, f.view.has_value(),
                        "no such schedule")) {
    return;
  }
  auto at = parse_page(*c);
  if (!at) return send_error(c, at.error());
  auto page = d_.schedules.schedule_runs(id, *at);
  if (!page) return send_error(c, page.error());
  for (auto& run : page->items) {
    json jobs = json::array();
    for (const auto& job_id : run.value("job_ids", json::array())) {
      auto job = d_.jobs.job(job_id.get<std::string>());
      json j{{"id", job_id}, {"status", ""}, {"error", ""}};
      if (job && *job) {
        j["status"] = (*job)->value("status", "");
        j["error"] = (*job)->value("error", "");
      }
      jobs.push_back(std::move(j));
    }
    run["outcome"] = outcome_of(jobs);
    run["jobs"] = std::move(jobs);
  }
  send_page(c, "runs", *page);
}

}  // namespace atrium::http_adapter
