// The scheduler: fires schedules (events/schedule/) at their cron instants.
//
//   tick (every 200 ms) ──▶ due schedules ──fire_schedule (system)──▶ registry ──▶ schedule entity
//                                   │                                         └─ schedule.fired (deterministic id)
//                                   └─ run chain ──submit_job (as the owner)──▶ registry ──▶ job entity
//
// State comes from the `schedules` read model (reloaded whenever the projections applied a
// newer head) and the `jobs` read model (a run's progress); the schedule entity stays the
// authority: it refuses an instant that is not after its last fired one, and
// `schedule.fired`'s event id is derived from (schedule, instant), so a restart, a retry or
// a stale read model never fires one instant twice. A firing is recorded before its jobs
// are submitted, with their ids (`schedule_job_id`, deterministic too); a run chain then
// submits them (one for a job template; one per SQL cell, each after the previous one
// succeeded, for `run_cells`) and a submission that finds the job already there counts as
// done. After a restart the newest run of every schedule is driven again, so a crash
// between the firing and its submissions loses no job.
//
// Instants missed while the scheduler was not running (before it became ready) follow the
// schedule's `catch_up`: `none` skips them, `last` fires the newest one once, flagged
// `catch_up`. Jobs run as the schedule's owner (the owner's roles, groups and grants, read
// at each submission); an owner who is disabled, gone, or no longer an editor of the
// project or a user of the target's connection gets the schedule paused (system) with a
// reason, checked before each firing and every `owner_check`.

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "actors/read_model_reload.hpp"
#include "events/job/job_decider.hpp"
#include "events/schedule/cron.hpp"
#include "events/schedule/schedule_decider.hpp"
#include "projections/schedule_views.hpp"

namespace atrium::actors {
namespace {

using namespace std::chrono;
using sch_tick_atom = caf::atom_constant<caf::atom("schtick")>;
using sch_ready_atom = caf::atom_constant<caf::atom("schready")>;

/// Most iterations spent looking for the newest instant missed while down (a one-minute
/// cron over ~2 years); beyond, the newest one found so far is fired.
constexpr std::size_t k_max_missed_scan = 1'000'000;

/// One schedule as the scheduler follows it.
struct entry {
  schedule_state s;                        // from the read model
  std::optional<cron_spec> spec;           // nullopt: the cron or the zone is unusable (logged once)
  std::shared_ptr<const zone_rules> zone;  //
  sys_seconds cursor{};                    // instants at or before it are fired or skipped
  std::optional<sys_seconds> due;          // the next instant to fire
  std::optional<sys_seconds> catch_up;     // a missed instant to fire first (`catch_up: last`)
  bool busy = false;                       // a fire or pause command is in flight
  steady_clock::time_point retry_after{};  // after a failed command
};

/// One job of a run, without its id and facts.
struct job_template {
  std::string kind, connection_id, sql, script, language, cell_id;
  std::uint32_t timeout_s = 3600;
};

/// A firing whose jobs are still being submitted or awaited.
struct run_chain {
  std::string schedule_id;
  sys_seconds fire_time{};
  std::vector<std::string> job_ids;
  std::vector<job_template> plan;  // same length as job_ids
  std::size_t submitted = 0;       // jobs 0..submitted-1 were submitted (or found)
  bool busy = false;               // a submission is in flight
};

struct scheduler_state {
  schedule_execution cfg;
  ports::event_store* store = nullptr;
  std::shared_ptr<core_directory> dir;
  std::map<std::string, entry> table;     // by schedule id
  std::map<std::string, run_chain> runs;  // by `<schedule id>/<fire time>`
  std::uint64_t start_head = 0;
  std::uint64_t loaded_head = 0;  // the head the projections had applied at the last load
  bool ready = false;             // the projections reached the head at start
  bool awaiting = false;          // an await_position is in flight
  sys_seconds started{};          // instants before it were missed while down
  steady_clock::time_point next_owner_check{};
  static inline const char* name = "scheduler";
};

using self_ptr = caf::stateful_actor<scheduler_state>*;

ports::command_context system_context(const std::string& schedule_id) {
  return ports::command_context{
      principal::system(), "scheduler/" + schedule_id, std::nullopt, {}, nlohmann::json::object()};
}

/// Sends a command through the registry; `done` gets its outcome (`unavailable` when the
/// registry is down).
template <class Command, class Done>
void run_command(self_ptr self, const std::string& id, Command cmd, ports::command_context ctx, Done done) {
  auto registry = self->state.dir->get<core_role::registry>();
  if (!registry || !self->state.dir->up(core_role::registry)) {
    return done(result<ports::command_outcome>(fail(errc::unavailable, "the entity registry is restarting")));
  }
  self->request(registry, caf::infinite, msg::command_msg<Command>{id, std::move(cmd), std::move(ctx)})
      .then([done](msg::command_reply& r) mutable { done(std::move(r.outcome)); },
            [done](caf::error& err) mutable {
              done(result<ports::command_outcome>(fail(errc::unavailable, "actor system: " + caf::to_string(err))));
            });
}

// ---- the owner's rights ----------------------------------------------------------------------

/// The owner as a principal, their role on the project, and why they may not run the
/// schedule (empty: they may). `unavailable` on a read error.
struct owner_access {
  principal who;
  std::optional<project_role> role;
  std::string refusal;
  nlohmann::json project;  // the project's view (cells), when found
};

result<owner_access> owner_of(const ports::queries& q, const schedule_state& s) {
  owner_access out;
  auto user = q.user(s.owner);
  if (!user) return std::unexpected(user.error());
  if (!*user) {
    out.refusal = "the owner " + s.owner + " no longer exists";
    return out;
  }
  const auto& u = (*user)->state;
  out.who = principal{u.user_id, u.roles, u.disabled, q.groups_of(u.user_id)};
  if (u.disabled) {
    out.refusal = "the owner " + u.username + " is disabled";
    return out;
  }
  auto project = q.project(s.project_id, out.who);
  if (!project) return std::unexpected(project.error());
  if (!*project) {
    out.refusal = "the project " + s.project_id + " no longer exists";
    return out;
  }
  out.role = (*project)->role;
  out.project = std::move((*project)->view);
  const bool editor = out.who.is_admin() || (out.role && *out.role != project_role::viewer);
  if (!editor) out.refusal = "the owner " + u.username + " may no longer edit the project";
  return out;
}

/// Whether `who` may use connection `id` (`unavailable` on a read error).
result<bool> may_use(const ports::queries& q, const principal& who, const std::string& id) {
  if (id.empty()) return true;
  auto c = q.connection(id, who);
  if (!c) return std::unexpected(c.error());
  return *c && (*c)->role.has_value();
}

/// The jobs one firing runs: the template, or the project's runnable SQL cells (kind
/// `sql`, with a connection and some text) in document order.
std::vector<job_template> plan_of(const schedule_state& s, const nlohmann::json& project) {
  std::vector<job_template> out;
  if (!s.target.run_cells) {
    out.push_back({s.target.kind, s.target.connection_id, s.target.sql, s.target.script, s.target.language, "",
                   s.target.timeout_s});
    return out;
  }
  for (const auto& cell : project.value("cells", nlohmann::json::array())) {
    const auto sql = cell.value("content", "");
    const auto conn = cell.value("connection_id", "");
    if (cell.value("kind", "") != "sql" || conn.empty() || sql.find_first_not_of(" \t\r\n") == std::string::npos) {
      continue;
    }
    if (out.size() == max_schedule_fire_jobs) break;
    out.push_back({"sql", conn, sql, "", "", cell.value("cell_id", ""), s.target.timeout_s});
  }
  return out;
}

/// Why the owner may not run the plan's connections (empty: they may).
result<std::string> connection_refusal(const ports::queries& q, const owner_access& o,
                                       const std::vector<job_template>& plan) {
  std::set<std::string> seen;
  for (const auto& j : plan) {
    if (!seen.insert(j.connection_id).second) continue;
    auto ok = may_use(q, o.who, j.connection_id);
    if (!ok) return std::unexpected(ok.error());
    if (!*ok) return "the owner " + o.who.user_id + " may no longer use the connection " + j.connection_id;
  }
  return std::string();
}

// ---- pausing -----------------------------------------------------------------------------------

void pause(self_ptr self, const std::string& id, const std::string& reason) {
  auto it = self->state.table.find(id);
  if (it == self->state.table.end() || it->second.busy) return;
  it->second.busy = true;
  spdlog::info("schedule paused schedule_id={} reason=\"{}\"", id, reason);
  run_command(self, id, schedule_command{pause_schedule{reason, std::nullopt}}, system_context(id),
              [self, id](result<ports::command_outcome> r) {
                auto it = self->state.table.find(id);
                if (it == self->state.table.end()) return;
                it->second.busy = false;
                if (r) {
                  it->second.s.status = "paused";
                } else {
                  spdlog::warn("schedule_id={} not paused: {}", id, r.error().message);
                  it->second.retry_after = steady_clock::now() + seconds(1);
                }
              });
}

// ---- run chains ----------------------------------------------------------------------------------

std::string run_key(const std::string& id, sys_seconds t) { return id + "/" + format_utc(t); }

/// Submits job `i` of `run` as the schedule's owner.
void submit(self_ptr self, const std::string& key, std::size_t i) {
  auto& run = self->state.runs.at(key);
  auto it = self->state.table.find(run.schedule_id);
  if (it == self->state.table.end()) {  // deleted meanwhile: its run ends
    self->state.runs.erase(key);
    return;
  }
  const auto& q = *self->state.cfg.queries;
  auto owner = owner_of(q, it->second.s);
  if (!owner) return;  // read error: the next tick retries
  const auto& j = run.plan[i];
  auto usable = may_use(q, owner->who, j.connection_id);
  if (!usable) return;
  if (!owner->refusal.empty() || !*usable) {
    pause(self, run.schedule_id,
          owner->refusal.empty() ? "the owner may no longer use the connection " + j.connection_id : owner->refusal);
    self->state.runs.erase(key);
    return;
  }
  submit_job cmd{.job_id = run.job_ids[i],
                 .project_id = it->second.s.project_id,
                 .kind = j.kind,
                 .connection_id = j.connection_id,
                 .sql = j.sql,
                 .script = j.script,
                 .timeout_s = j.timeout_s,
                 .submitter_role = owner->role,
                 .connection_usable = *usable,
                 .language = j.language,
                 .max_attempts = std::nullopt,
                 .cell_id = j.cell_id};
  ports::command_context ctx{owner->who, "schedule-" + run.schedule_id, std::nullopt, {}, nlohmann::json::object()};
  run.busy = true;
  run_command(self, run.job_ids[i], job_command{std::move(cmd)}, std::move(ctx),
              [self, key, i](result<ports::command_outcome> r) {
                auto it = self->state.runs.find(key);
                if (it == self->state.runs.end()) return;
                auto& run = it->second;
                run.busy = false;
                if (r || r.error().code == errc::already_exists) {
                  run.submitted = std::max(run.submitted, i + 1);
                  spdlog::info("scheduled job submitted schedule_id={} fire_time={} job_id={} index={}",
                               run.schedule_id, format_utc(run.fire_time), run.job_ids[i], i);
                  return;
                }
                if (r.error().code == errc::unavailable) return;  // the next tick retries
                spdlog::warn("schedule_id={} fire_time={} job {} not submitted: {}", run.schedule_id,
                             format_utc(run.fire_time), run.job_ids[i], r.error().message);
                if (r.error().code == errc::forbidden) pause(self, run.schedule_id, r.error().message);
                self->state.runs.erase(it);  // the run stops here
              });
}

/// Advances a run: submits its next job once every earlier one succeeded; ends it when
/// one failed (or all are done).
void drive(self_ptr self, const std::string& key) {
  auto& run = self->state.runs.at(key);
  if (run.busy) return;
  const auto& q = *self->state.cfg.queries;
  for (std::size_t i = 0; i < run.job_ids.size(); ++i) {
    auto job = q.job(run.job_ids[i]);
    if (!job) return;  // read error: retry next tick
    if (!*job) {
      if (i < run.submitted) return;  // submitted, not yet projected
      return submit(self, key, i);
    }
    const auto status = (*job)->value("status", "");
    if (status == "succeeded") continue;
    if (status == "failed" || status == "timed_out" || status == "cancelled") {
      if (i + 1 < run.job_ids.size()) {
        spdlog::info("scheduled run stopped schedule_id={} fire_time={} at job_id={} status={}", run.schedule_id,
                     format_utc(run.fire_time), run.job_ids[i], status);
      }
      self->state.runs.erase(key);
      return;
    }
    return;  // still running
  }
  self->state.runs.erase(key);
}

// ---- firing ---------------------------------------------------------------------------------------

void recompute_due(entry& e) {
  e.due.reset();
  if (!e.spec || !e.zone) return;
  const auto anchor = parse_utc(e.s.anchor);
  e.due = next_fire_time(*e.spec, *e.zone, e.cursor, anchor ? *anchor : sys_seconds{});
}

/// Fires schedule `id` for instant `t`: checks the owner, records `schedule.fired` with
/// the run's job ids, then starts the run.
void fire(self_ptr self, const std::string& id, sys_seconds t, bool catching_up) {
  auto& e = self->state.table.at(id);
  const auto& q = *self->state.cfg.queries;
  auto owner = owner_of(q, e.s);
  if (!owner) {
    e.retry_after = steady_clock::now() + seconds(1);
    return;
  }
  auto plan = plan_of(e.s, owner->project);
  if (owner->refusal.empty()) {
    auto refused = connection_refusal(q, *owner, plan);
    if (!refused) {
      e.retry_after = steady_clock::now() + seconds(1);
      return;
    }
    owner->refusal = *refused;
  }
  if (!owner->refusal.empty()) return pause(self, id, owner->refusal);
  std::vector<std::string> job_ids;
  for (std::size_t i = 0; i < plan.size(); ++i) job_ids.push_back(schedule_job_id(id, t, i));
  e.busy = true;
  run_command(
      self, id, schedule_command{fire_schedule{t, job_ids, catching_up}}, system_context(id),
      [self, id, t, catching_up, job_ids, plan = std::move(plan)](result<ports::command_outcome> r) mutable {
        auto it = self->state.table.find(id);
        if (it == self->state.table.end()) return;
        auto& e = it->second;
        e.busy = false;
        const bool was_fired = !r && r.error().code == errc::failed_precondition && r.error().details.is_object() &&
                               r.error().details.value("last_fired", "") == format_utc(t);
        if (r || was_fired) {
          spdlog::info("schedule fired schedule_id={} fire_time={} jobs={}{}", id, format_utc(t), job_ids.size(),
                       catching_up ? " catch_up" : "");
          const auto key = run_key(id, t);
          if (!plan.empty() && !self->state.runs.contains(key)) {
            self->state.runs[key] = run_chain{id, t, std::move(job_ids), std::move(plan)};
            drive(self, key);
          }
        } else if (r.error().code == errc::not_found) {
          self->state.table.erase(it);
          return;
        } else if (r.error().code == errc::failed_precondition) {
          // Paused meanwhile (the next load says so), or a later instant was fired already.
          spdlog::info("schedule_id={} instant {} not fired: {}", id, format_utc(t), r.error().message);
        } else {
          spdlog::warn("schedule_id={} instant {} not fired (retrying): {}", id, format_utc(t), r.error().message);
          e.retry_after = steady_clock::now() + seconds(1);
          return;
        }
        if (catching_up) {
          e.catch_up.reset();
        } else {
          e.cursor = std::max(e.cursor, t);
          recompute_due(e);
        }
      });
}

// ---- loading the read model --------------------------------------------------------------------

/// The newest instant after `after` and before `before`, if any (`catch_up: last`).
std::optional<sys_seconds> newest_missed(const entry& e, sys_seconds after, sys_seconds before) {
  const auto anchor = parse_utc(e.s.anchor);
  const auto a = anchor ? *anchor : sys_seconds{};
  std::optional<sys_seconds> out;
  if (e.spec->is_every()) {  // anchor + k * every, directly
    if (before <= a + e.spec->every) return out;
    const auto k = (before - seconds(1) - a) / e.spec->every;
    const auto t = a + k * e.spec->every;
    if (t > after) out = t;
    return out;
  }
  auto t = after;
  for (std::size_t i = 0; i < k_max_missed_scan; ++i) {
    auto next = next_fire_time(*e.spec, *e.zone, t, a);
    if (!next || *next >= before) break;
    out = t = *next;
  }
  return out;
}

/// Builds the entry of a schedule seen for the first time.
entry first_sight(scheduler_state& st, schedule_state s) {
  entry e;
  e.s = std::move(s);
  auto spec = parse_cron(e.s.cron);
  auto zone = spec && st.cfg.zones ? st.cfg.zones->locate(e.s.time_zone) : result<std::shared_ptr<const zone_rules>>();
  if (!spec || !zone || !*zone) {
    spdlog::warn("schedule_id={} cannot fire: {}", e.s.schedule_id,
                 !spec ? spec.error().message : (zone ? "no zone database" : zone.error().message));
    return e;
  }
  e.spec = std::move(*spec);
  e.zone = std::move(*zone);
  const auto base = e.s.fire_after();
  e.cursor = std::max(base, st.started - seconds(1));
  if (e.s.catch_up == "last" && e.s.status == "active") e.catch_up = newest_missed(e, base, st.started);
  return e;
}

/// The run of a schedule's newest firing, driven again after a restart.
void resume_newest_run(self_ptr self, const entry& e) {
  if (e.s.last_fired.empty()) return;
  const auto t = parse_utc(e.s.last_fired);
  if (!t) return;
  const auto& q = *self->state.cfg.queries;
  auto page = q.schedule_runs(e.s.schedule_id, {format_utc(*t - seconds(1)), 1});
  if (!page || page->items.empty()) return;
  const auto& run = page->items.at(0);
  std::vector<std::string> ids;
  for (const auto& j : run.value("job_ids", nlohmann::json::array())) ids.push_back(j.get<std::string>());
  if (ids.empty()) return;
  auto owner = owner_of(q, e.s);
  if (!owner) return;
  auto plan = plan_of(e.s, owner->project);
  if (plan.size() < ids.size()) ids.resize(plan.size());  // cells removed since: the run ends earlier
  plan.resize(ids.size());
  self->state.runs[run_key(e.s.schedule_id, *t)] = run_chain{e.s.schedule_id, *t, std::move(ids), std::move(plan)};
}

/// Reloads every schedule from the read model (the projections applied `head`).
void load(self_ptr self, std::uint64_t head) {
  auto& st = self->state;
  const bool first = st.loaded_head == 0 && st.table.empty();
  std::map<std::string, entry> next;
  ports::schedule_filter filter{.every_project = true, .projects = {}, .at = {"", 500}};
  for (;;) {
    auto page = st.cfg.queries->schedules(filter);
    if (!page) {
      spdlog::warn("scheduler: schedules not loaded: {}", page.error().message);
      return;  // keep the old table; the next tick tries again
    }
    for (const auto& row : page->items) {
      schedule_state s;
      try {
        s = schedule_from_row(row);
      } catch (const std::exception& ex) {
        spdlog::warn("scheduler: bad schedule row {}: {}", row.value("id", ""), ex.what());
        continue;
      }
      const auto id = s.schedule_id;
      auto old = st.table.find(id);
      if (old == st.table.end()) {
        next[id] = first_sight(st, std::move(s));
        if (first) resume_newest_run(self, next[id]);
      } else if (old->second.s.version == s.version) {
        next[id] = std::move(old->second);
      } else {
        auto e = std::move(old->second);
        const bool respec = e.s.cron != s.cron || e.s.time_zone != s.time_zone;
        e.s = std::move(s);
        if (respec) {
          auto fresh = first_sight(st, e.s);
          fresh.cursor = std::max(fresh.cursor, e.cursor);
          fresh.busy = e.busy;
          e = std::move(fresh);
        }
        e.cursor = std::max(e.cursor, e.s.fire_after());
        next[id] = std::move(e);
      }
      recompute_due(next[id]);
    }
    if (page->next.is_null()) break;
    filter.at.after = page->next.get<std::string>();
  }
  // Entries with a command in flight stay until it answers (a deleted one then goes).
  for (auto& [id, e] : st.table) {
    if (e.busy && !next.contains(id)) next[id] = std::move(e);
  }
  st.table = std::move(next);
  st.loaded_head = std::max<std::uint64_t>(head, 1);
}

// ---- the actor -------------------------------------------------------------------------------------

/// Reloads the schedules once the projections applied the log's current head (one load
/// in flight at most; called once per tick).
void maybe_reload(self_ptr self) {
  reload_when_projected(self, [](self_ptr s, std::uint64_t head) { load(s, head); });
}

/// Pauses the active schedules whose owner lost the right to run them.
void check_owners(self_ptr self) {
  auto& st = self->state;
  const auto& q = *st.cfg.queries;
  for (auto& [id, e] : st.table) {
    if (e.busy || e.s.status != "active") continue;
    auto owner = owner_of(q, e.s);
    if (!owner) continue;
    if (owner->refusal.empty()) {
      auto refused = connection_refusal(q, *owner, plan_of(e.s, owner->project));
      if (!refused) continue;
      owner->refusal = *refused;
    }
    if (!owner->refusal.empty()) pause(self, id, owner->refusal);
  }
}

void tick(self_ptr self) {
  auto& st = self->state;
  if (!st.ready) return;
  maybe_reload(self);
  const auto now = floor<seconds>(system_clock::now());
  const auto wall = steady_clock::now();
  if (wall >= st.next_owner_check) {
    st.next_owner_check = wall + st.cfg.owner_check;
    check_owners(self);
  }
  std::vector<std::pair<std::string, std::pair<sys_seconds, bool>>> due;
  for (auto& [id, e] : st.table) {
    if (e.busy || e.s.status != "active" || wall < e.retry_after) continue;
    if (e.catch_up) {
      due.push_back({id, {*e.catch_up, true}});
    } else if (e.due && *e.due <= now) {
      due.push_back({id, {*e.due, false}});
    }
  }
  for (const auto& [id, what] : due) fire(self, id, what.first, what.second);
  std::vector<std::string> keys;
  for (const auto& [key, run] : st.runs) keys.push_back(key);
  for (const auto& key : keys) {
    if (st.runs.contains(key)) drive(self, key);
  }
}

/// Waits until the projections applied the head the log had at start, then loads.
void await_start(self_ptr self) {
  await_start_head(self, sch_ready_atom::value, "scheduler", [](self_ptr self, std::uint64_t applied) {
    auto& st = self->state;
    st.ready = true;
    st.started = floor<seconds>(system_clock::now());
    load(self, applied);
    spdlog::info("scheduler ready schedules={} runs_resumed={}", st.table.size(), st.runs.size());
  });
}

caf::behavior scheduler(self_ptr self, ports::event_store* store, schedule_execution cfg,
                        std::shared_ptr<core_directory> dir) {
  self->set_exception_handler(log_actor_exception);
  auto& st = self->state;
  st.store = store;
  st.cfg = std::move(cfg);
  st.dir = std::move(dir);
  st.start_head = store->head_position();
  await_start(self);
  self->delayed_send(self, st.cfg.tick, sch_tick_atom::value);
  return {
      [self](sch_tick_atom) {
        tick(self);
        self->delayed_send(self, self->state.cfg.tick, sch_tick_atom::value);
      },
      [self](sch_ready_atom) {
        if (!self->state.ready) await_start(self);
      },
  };
}

}  // namespace

result<caf::actor> spawn_scheduler(caf::actor_system& sys, ports::event_store& store, schedule_execution cfg,
                                   std::shared_ptr<core_directory> dir) {
  if (!cfg.zones || cfg.queries == nullptr) return fail(errc::invalid_argument, "scheduler: no zones or queries");
  return sys.spawn(scheduler, &store, std::move(cfg), std::move(dir));
}

}  // namespace atrium::actors
