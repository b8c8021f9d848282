// The container reconciler: drives container runtimes (ports/container_runtime.hpp) to the
// desired state of every container and records what it observed (docs/containers.md).
//
//   runner ──log_advanced──▶ read the log since the table's position ──▶ reload the touched rows
//   tick (200 ms, timers) ──▶ containers read model (in full every `resync`, and when far behind)
//        │                │ desired vs observed, per container (one action in flight each)
//        │                ▼
//        │      runtime work ──post──▶ pool threads (never a CAF thread) ──closure──▶ actor
//        │      (create/start, stop, remove, inspect, probe, list)                       │
//        │                                                                                ▼
//        └──────────────────────── report_* as the system principal ──▶ registry ──▶ container entity
//   runtime watch (exits, removals) ──closure──▶ actor ──▶ inspect ──▶ report_exited
//
// Observed state lives in the log; the runtime's view of a container (`runtime_container`)
// is kept per container from `list()` (at start: adoption; then every `resync`), `watch`
// hints and `inspect`s. Every decision is made on the actor's thread; every runtime call
// runs on the pool; results come back as closures run by the actor. A container waits for
// the read model to show the version its last command produced before the next action, so
// a stale row never repeats one.
//
// Adoption (first list after the projections reached the log head at start): a runtime
// container labelled with a container the log knows is adopted (nothing is started twice);
// one the log does not know, or whose container was removed, is stopped and removed and
// `runtime.orphan_removed` is recorded; a container observed running with no runtime
// container is reported `exited` with reason `lost`, and the restart policy starts it again.

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "actors/read_model_reload.hpp"
#include "events/container/container_decider.hpp"
#include "events/schedule/cron.hpp"
#include "projections/ops_views.hpp"

namespace atrium::actors {

// ---- the pool -------------------------------------------------------------------------------

/// Threads that run runtime calls (blocking) for the reconciler; owned by the actor
/// runtime, so that a restarted reconciler keeps them and shutdown joins them.
class container_pool {
 public:
  explicit container_pool(std::size_t threads) {
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ~container_pool() { stop(); }

  /// Queues `fn`; false (and `fn` dropped) once stopping.
  bool post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
    return true;
  }

  /// Drops queued work and joins the threads (work in progress finishes first).
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        fn();
      } catch (const std::exception& ex) {
        spdlog::error("reconciler: runtime work threw: {}", ex.what());
      } catch (...) {
        spdlog::error("reconciler: runtime work threw");
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

std::shared_ptr<container_pool> make_container_pool(std::size_t threads) {
  return std::make_shared<container_pool>(threads);
}

void stop_container_pool(container_pool& pool) { pool.stop(); }

namespace {

using namespace std::chrono;
using rec_tick_atom = caf::atom_constant<caf::atom("rectick")>;
using rec_ready_atom = caf::atom_constant<caf::atom("recready")>;

/// One container as the reconciler follows it.
struct tracked {
  container_state s;                                   // from the read model
  std::optional<system_clock::time_point> restart_at;  // observed `starting`: when to start it
  std::optional<ports::runtime_container> rt;          // the runtime's view, when known
  bool rt_known = false;                               // `rt` is current (a list or inspect answered)
  bool busy = false;                                   // a runtime call or command is in flight
  std::uint64_t wait_version = 0;                      // act only once the row reached this version
  steady_clock::time_point retry_after{};              // after a failure
  // health checks (Docker HEALTHCHECK semantics)
  bool probing = false;
  steady_clock::time_point run_since{};   // when the current run started (for start_period)
  steady_clock::time_point next_probe{};  //
  int failures = 0;                       // consecutive failed probes outside the start period
  std::string run_id;                     // the runtime id the health figures belong to
};

struct reconciler_state {
  container_execution cfg;
  ports::event_store* store = nullptr;
  std::shared_ptr<core_directory> dir;
  std::shared_ptr<container_pool> pool;
  std::map<std::string, tracked> table;  // by container id
  std::vector<std::shared_ptr<ports::watch_handle>> watches;
  std::set<std::string> warned;  // containers whose runtime is not available (logged once)
  std::uint64_t start_head = 0;
  std::uint64_t loaded_head = 0;
  bool ready = false;     // the projections reached the start head and the table loaded
  bool adopted = false;   // the first list() answered for every runtime
  bool awaiting = false;  // an await_position is in flight
  bool listing = false;   // a list() round is in flight
  steady_clock::time_point next_list{};
  static inline const char* name = "container-reconciler";

  ~reconciler_state() {
    // Cancelling a watch may block (joining its thread): never on a CAF thread.
    if (pool && !watches.empty()) {
      auto w = std::move(watches);
      if (!pool->post([w]() mutable { w.clear(); })) {
        std::thread([w]() mutable { w.clear(); }).detach();
      }
    }
  }
};

using self_ptr = caf::stateful_actor<reconciler_state>*;

/// Runs `work` on the pool, then `then(result)` on the actor (dropped if the actor is gone).
template <class Work, class Then>
void off_thread(self_ptr self, Work work, Then then) {
  caf::actor me = caf::actor_cast<caf::actor>(self);
  const bool queued = self->state.pool->post([me, work = std::move(work), then = std::move(then)]() mutable {
    auto r = work();
    caf::anon_send(me, msg::closure{[r = std::move(r), then = std::move(then)]() mutable { then(std::move(r)); }});
  });
  if (!queued) spdlog::debug("reconciler: pool stopped, work dropped");
}

ports::container_runtime* runtime_of(self_ptr self, const std::string& name) {
  auto it = self->state.cfg.runtimes.find(name);
  return it == self->state.cfg.runtimes.end() ? nullptr : it->second.get();
}

std::shared_ptr<ports::container_runtime> shared_runtime_of(self_ptr self, const std::string& name) {
  auto it = self->state.cfg.runtimes.find(name);
  return it == self->state.cfg.runtimes.end() ? nullptr : it->second;
}

ports::command_context system_context(const std::string& id) {
  return ports::command_context{principal::system(), "reconciler/" + id, std::nullopt, {}, nlohmann::json::object()};
}

ports::container_spec spec_of(const container_state& s) {
  ports::container_spec out;
  out.container_id = s.container_id;
  out.name = s.name;
  out.image = s.image;
  out.command = s.command;
  out.env = s.env;
  out.ports = s.ports;
  if (s.limits.memory_bytes) out.limits.memory_bytes = static_cast<std::uint64_t>(*s.limits.memory_bytes);
  if (s.limits.millicpus) out.limits.cpus = static_cast<double>(*s.limits.millicpus) / 1000.0;
  if (s.limits.pids) out.limits.pids = static_cast<std::uint32_t>(*s.limits.pids);
  out.spec_version = s.spec_version;
  return out;
}

/// Sends a container command as the system principal; `done` gets the outcome on the actor.
void report(self_ptr self, const std::string& id, container_command cmd,
            std::function<void(result<ports::command_outcome>)> done) {
  auto registry = self->state.dir->get<core_role::registry>();
  if (!registry || !self->state.dir->up(core_role::registry)) {
    return done(result<ports::command_outcome>(fail(errc::unavailable, "the entity registry is restarting")));
  }
  self->request(registry, caf::infinite, msg::container_command_msg{id, std::move(cmd), system_context(id)})
      .then([done](msg::command_reply& r) mutable { done(std::move(r.outcome)); },
            [done](caf::error& err) mutable {
              done(result<ports::command_outcome>(fail(errc::unavailable, "actor system: " + caf::to_string(err))));
            });
}

void reconcile(self_ptr self, const std::string& id);

/// Ends an action on `id`: on success waits for the row to reach the command's version;
/// on failure retries after a second (a `failed_precondition` means the row is stale).
void settle(self_ptr self, const std::string& id, const result<ports::command_outcome>& r, const char* what) {
  auto it = self->state.table.find(id);
  if (it == self->state.table.end()) return;
  auto& t = it->second;
  t.busy = false;
  if (r) {
    t.wait_version = std::max(t.wait_version, r->version);
    // The row may have caught up before the answer came: go on without waiting for a tick.
    if (t.s.version >= t.wait_version && self->state.adopted) reconcile(self, id);
    return;
  }
  if (r.error().code != errc::failed_precondition && r.error().code != errc::not_found) {
    spdlog::warn("reconciler: container_id={} {} not recorded: {}", id, what, r.error().message);
  } else {
    spdlog::info("reconciler: container_id={} {} refused: {}", id, what, r.error().message);
  }
  t.retry_after = steady_clock::now() + seconds(1);
}

std::int64_t ran_ms_of(const tracked& t) {
  if (t.rt && t.rt->started_at) {
    return std::max<std::int64_t>(0, duration_cast<milliseconds>(system_clock::now() - *t.rt->started_at).count());
  }
  if (t.run_since != steady_clock::time_point{}) {
    return std::max<std::int64_t>(0, duration_cast<milliseconds>(steady_clock::now() - t.run_since).count());
  }
  return 0;
}

// ---- actions ---------------------------------------------------------------------------------

struct launch_result {
  result<std::string> runtime_id = std::string();
  std::optional<ports::runtime_container> rt;
};

/// Starts the container: its runtime container when one exists with the current spec
/// version (an exited one is started again), else a new one (an old one is removed first).
void launch(self_ptr self, const std::string& id) {
  auto& t = self->state.table.at(id);
  auto rt = shared_runtime_of(self, t.s.runtime);
  t.busy = true;
  auto spec = spec_of(t.s);
  std::optional<ports::runtime_container> existing = t.rt_known ? t.rt : std::nullopt;
  off_thread(
      self,
      [rt, spec, existing]() -> launch_result {
        launch_result out;
        std::string runtime_id;
        if (existing && existing->spec_version == spec.spec_version) {
          runtime_id = existing->runtime_id;
          if (existing->status != ports::runtime_container::state::running) {
            if (auto ok = rt->start(runtime_id); !ok) {
              if (ok.error().code != errc::not_found) {
                out.runtime_id = std::unexpected(ok.error());
                return out;
              }
              runtime_id.clear();  // gone meanwhile: create a new one
            }
          }
        } else if (existing) {
          (void)rt->remove(existing->runtime_id);
        }
        if (runtime_id.empty()) {
          auto made = rt->create(spec);
          if (!made) {
            out.runtime_id = std::unexpected(made.error());
            return out;
          }
          runtime_id = *made;
          if (auto ok = rt->start(runtime_id); !ok) {
            out.runtime_id = std::unexpected(ok.error());
            return out;
          }
        }
        out.runtime_id = runtime_id;
        if (auto seen = rt->inspect(runtime_id)) out.rt = *seen;
        return out;
      },
      [self, id](launch_result r) {
        auto it = self->state.table.find(id);
        if (it == self->state.table.end()) return;
        auto& t = it->second;
        if (!r.runtime_id) {
          t.busy = false;
          t.retry_after = steady_clock::now() + seconds(2);
          spdlog::warn("reconciler: container_id={} not started: {}", id, r.runtime_id.error().message);
          return;
        }
        t.rt = r.rt;
        t.rt_known = r.rt.has_value();
        t.run_since = steady_clock::now();
        t.run_id = *r.runtime_id;
        t.failures = 0;
        if (t.s.health_check) t.next_probe = t.run_since + seconds(t.s.health_check->interval_s);
        spdlog::info("reconciler: container started container_id={} runtime_id={} pid={}", id, *r.runtime_id,
                     r.rt && r.rt->pid ? *r.rt->pid : -1);
        report(self, id, report_started{*r.runtime_id},
               [self, id](result<ports::command_outcome> out) { settle(self, id, out, "started"); });
      });
}

struct stop_result {
  result<void> done;
  std::optional<ports::runtime_container> rt;
};

/// Stops the runtime container (and removes it with `remove`), then `then(self, id, rt)`
/// runs on the actor with what inspect saw afterwards.
void stop_then(self_ptr self, const std::string& id, bool remove,
               std::function<void(self_ptr, const std::string&, std::optional<ports::runtime_container>)> then) {
  auto& t = self->state.table.at(id);
  auto rt = shared_runtime_of(self, t.s.runtime);
  t.busy = true;
  const auto runtime_id = t.rt ? t.rt->runtime_id : t.s.runtime_id;
  const auto grace = self->state.cfg.stop_grace;
  off_thread(
      self,
      [rt, runtime_id, grace, remove]() -> stop_result {
        stop_result out;
        if (runtime_id.empty()) return out;
        out.done = rt->stop(runtime_id, grace);
        if (!out.done && out.done.error().code == errc::not_found) out.done = {};
        if (auto seen = rt->inspect(runtime_id)) out.rt = *seen;
        if (remove && out.done) out.done = rt->remove(runtime_id);
        return out;
      },
      [self, id, then](stop_result r) {
        auto it = self->state.table.find(id);
        if (it == self->state.table.end()) return;
        if (!r.done) {
          it->second.busy = false;
          it->second.retry_after = steady_clock::now() + seconds(2);
          spdlog::warn("reconciler: container_id={} not stopped: {}", id, r.done.error().message);
          return;
        }
        then(self, id, r.rt);
      });
}

void stop_container(self_ptr self, const std::string& id) {
  stop_then(self, id, false, [](self_ptr self, const std::string& id, std::optional<ports::runtime_container> rt) {
    auto& t = self->state.table.at(id);
    t.rt = rt;
    t.rt_known = true;
    spdlog::info("reconciler: container stopped container_id={}", id);
    report(self, id, report_stopped{},
           [self, id](result<ports::command_outcome> out) { settle(self, id, out, "stopped"); });
  });
}

/// Stops the running container for `reason` (`unhealthy`, `rolled`) and reports its exit.
void stop_for(self_ptr self, const std::string& id, std::string reason) {
  const auto ran = ran_ms_of(self->state.table.at(id));
  const bool remove = reason == "rolled";
  stop_then(self, id, remove,
            [reason, ran](self_ptr self, const std::string& id, std::optional<ports::runtime_container> rt) {
              auto& t = self->state.table.at(id);
              const int code = rt && rt->exit_code ? *rt->exit_code : 137;
              t.rt = reason == "rolled" ? std::nullopt : rt;
              t.rt_known = true;
              spdlog::info("reconciler: container stopped container_id={} reason={} exit_code={}", id, reason, code);
              report(self, id, report_exited{code, reason, ran},
                     [self, id](result<ports::command_outcome> out) { settle(self, id, out, "exited"); });
            });
}

/// Reports the exit the runtime saw (or `lost` when the runtime container is gone).
void report_exit(self_ptr self, const std::string& id) {
  auto& t = self->state.table.at(id);
  int code = -1;
  std::string reason = "lost";
  if (t.rt && t.rt->status == ports::runtime_container::state::exited) {
    code = t.rt->exit_code.value_or(-1);
    reason = t.rt->reason.empty() ? "exited" : t.rt->reason;
  }
  // Only the reasons the decider takes: [a-z_]{1,64}.
  if (reason.empty() || reason.size() > 64 ||
      !std::all_of(reason.begin(), reason.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; })) {
    reason = "exited";
  }
  const auto ran = ran_ms_of(t);
  t.busy = true;
  spdlog::info("reconciler: container exited container_id={} exit_code={} reason={} ran_ms={}", id, code, reason, ran);
  report(self, id, report_exited{code, reason, ran},
         [self, id](result<ports::command_outcome> out) { settle(self, id, out, "exited"); });
}

void restart(self_ptr self, const std::string& id) {
  auto& t = self->state.table.at(id);
  t.busy = true;
  const auto backoff = milliseconds(restart_backoff_ms(static_cast<std::uint32_t>(t.s.restarts + 1)));
  report(self, id, report_restarted{}, [self, id, backoff](result<ports::command_outcome> out) {
    auto it = self->state.table.find(id);
    if (it != self->state.table.end() && out) {
      it->second.restart_at = system_clock::now() + backoff;
      spdlog::info("reconciler: container restart container_id={} backoff_ms={}", id, backoff.count());
    }
    settle(self, id, out, "restarted");
  });
}

void report_health_status(self_ptr self, const std::string& id, std::string health) {
  auto& t = self->state.table.at(id);
  t.busy = true;
  spdlog::info("reconciler: container health container_id={} health={}", id, health);
  report(self, id, report_health{std::move(health)},
         [self, id](result<ports::command_outcome> out) { settle(self, id, out, "health"); });
}

/// One health probe of a running container (Docker HEALTHCHECK semantics).
void probe(self_ptr self, const std::string& id) {
  auto& t = self->state.table.at(id);
  const auto& h = *t.s.health_check;
  auto rt = shared_runtime_of(self, t.s.runtime);
  ports::health_probe p;
  p.type = h.kind == "http" ? ports::health_probe::kind::http
                            : (h.kind == "exec" ? ports::health_probe::kind::exec : ports::health_probe::kind::tcp);
  p.port = h.port;
  p.path = h.path;
  p.exec = h.exec;
  p.timeout = seconds(h.timeout_s);
  t.probing = true;
  const auto runtime_id = t.run_id.empty() ? t.s.runtime_id : t.run_id;
  off_thread(
      self, [rt, runtime_id, p]() { return rt->probe(runtime_id, p); },
      [self, id, runtime_id](result<ports::probe_result> r) {
        auto it = self->state.table.find(id);
        if (it == self->state.table.end()) return;
        auto& t = it->second;
        t.probing = false;
        if (!t.s.health_check || t.s.observed != "running") return;
        const auto& h = *t.s.health_check;
        const auto now = steady_clock::now();
        t.next_probe = now + seconds(h.interval_s);
        if (!r) {
          spdlog::debug("reconciler: container_id={} probe error: {}", id, r.error().message);
          return;  // the runtime could not probe: exits are reported by the watch
        }
        if (r->healthy) {
          t.failures = 0;
          if (t.s.health != "healthy" && !t.busy) report_health_status(self, id, "healthy");
          return;
        }
        if (now < t.run_since + seconds(h.start_period_s)) return;  // failures in the start period do not count
        ++t.failures;
        spdlog::info("reconciler: container_id={} probe failed ({}/{}): {}", id, t.failures, h.retries, r->detail);
        if (t.failures >= h.retries && t.s.health != "unhealthy" && !t.busy) {
          report_health_status(self, id, "unhealthy");
        }
      });
}

/// What the container needs now; starts at most one action.
void reconcile(self_ptr self, const std::string& id) {
  auto& t = self->state.table.at(id);
  const auto now = steady_clock::now();
  if (t.busy || now < t.retry_after || t.s.version < t.wait_version) return;
  if (!runtime_of(self, t.s.runtime)) {
    if (self->state.warned.insert(id).second) {
      spdlog::warn("reconciler: container_id={} uses runtime {} which this atriumd does not run", id, t.s.runtime);
    }
    return;
  }
  const auto& s = t.s;
  using rs = ports::runtime_container::state;
  const bool rt_running = t.rt_known && t.rt && t.rt->status == rs::running;
  if (s.desired == "running") {
    if (s.observed == "declared" || s.observed == "stopped") return launch(self, id);
    if (s.observed == "exited") {
      if (rt_running && t.rt->spec_version == s.spec_version) {
        // Still (or again) running though an exit was recorded: stop it first.
        return stop_for(self, id, s.exit_reason.empty() ? "exited" : s.exit_reason);
      }
      if (s.exit_reason == "rolled") return launch(self, id);
      if (restart_due(s)) return restart(self, id);
      return;
    }
    if (s.observed == "starting") {
      if (!t.restart_at) t.restart_at = system_clock::now();
      if (system_clock::now() >= *t.restart_at) {
        t.restart_at.reset();
        return launch(self, id);
      }
      return;
    }
    if (s.observed == "running") {
      if (!t.rt_known) return;  // wait for list/inspect
      if (!rt_running) return report_exit(self, id);
      if (t.rt->spec_version != s.spec_version) return stop_for(self, id, "rolled");
      if (t.run_id != t.rt->runtime_id) {  // adopted: health figures start now
        t.run_id = t.rt->runtime_id;
        t.run_since = now;
        t.failures = 0;
        if (s.health_check) t.next_probe = now + seconds(s.health_check->interval_s);
      }
      if (!s.health_check) return;
      if (s.health.empty()) return report_health_status(self, id, "starting");
      if (s.health == "unhealthy") return stop_for(self, id, "unhealthy");
      if (!t.probing && now >= t.next_probe) probe(self, id);
      return;
    }
    return;
  }
  // desired stopped
  if (s.observed == "running" || s.observed == "starting" || (s.observed == "exited" && rt_running)) {
    return stop_container(self, id);
  }
  if (s.observed == "exited") {
    t.busy = true;
    report(self, id, report_stopped{},
           [self, id](result<ports::command_outcome> out) { settle(self, id, out, "stopped"); });
    return;
  }
  if (rt_running) stop_container(self, id);  // stopped in the log, running in the runtime
}

// ---- the runtime's view -------------------------------------------------------------------------

/// Stops and removes a runtime container the log does not account for; records it.
void remove_orphan(self_ptr self, const std::string& runtime_name, const ports::runtime_container& rc) {
  auto rt = shared_runtime_of(self, runtime_name);
  auto* store = self->state.store;
  const auto instance = self->state.cfg.instance;
  spdlog::warn("reconciler: orphan runtime container runtime={} runtime_id={} container_id={}: removing", runtime_name,
               rc.runtime_id, rc.container_id);
  off_thread(
      self,
      [rt, rc, store]() -> std::pair<result<void>, std::string> {
        std::string why = "unknown";
        if (!rc.container_id.empty()) {
          auto page = store->read_stream(container_stream(rc.container_id), 1, 1);
          if (page && !page->empty()) why = "removed";
        }
        return {rt->remove(rc.runtime_id), why};
      },
      [self, runtime_name, rc, instance](std::pair<result<void>, std::string> r) {
        if (!r.first) {
          spdlog::warn("reconciler: orphan runtime_id={} not removed: {}", rc.runtime_id, r.first.error().message);
          return;
        }
        auto gateway = self->state.dir->get(core_role::gateway);
        if (!gateway) return;
        auto event = make_event(runtime_orphan_removed{runtime_name, rc.runtime_id, rc.container_id, r.second});
        event.actor = principal::system().user_id;
        self->send(caf::actor_cast<caf::actor>(gateway),
                   msg::record_request{{"runtime-" + instance, ports::expected_version::any(), {std::move(event)}}},
                   msg::recorded_box{[id = rc.runtime_id](result<std::uint64_t> pos) {
                     if (!pos) spdlog::warn("reconciler: orphan {} not recorded: {}", id, pos.error().message);
                   }});
      });
}

/// Takes a `list()` of runtime `name`: updates each container's runtime view, removes orphans.
void absorb_list(self_ptr self, const std::string& name, const std::vector<ports::runtime_container>& list,
                 std::set<std::string>& seen_ids) {
  auto& st = self->state;
  std::map<std::string, std::vector<const ports::runtime_container*>> by_id;
  for (const auto& rc : list) by_id[rc.container_id].push_back(&rc);
  for (auto& [cid, items] : by_id) {
    auto it = st.table.find(cid);
    if (it == st.table.end() || it->second.s.runtime != name) {
      for (const auto* rc : items) remove_orphan(self, name, *rc);
      continue;
    }
    auto& t = it->second;
    seen_ids.insert(cid);
    if (t.busy) continue;  // an action in flight knows better
    // Several runtime containers for one container (a crash between create and report):
    // keep the running one of the current spec, else the newest; remove the others.
    const ports::runtime_container* keep = items.front();
    for (const auto* rc : items) {
      const bool better = (rc->status == ports::runtime_container::state::running &&
                           keep->status != ports::runtime_container::state::running) ||
                          rc->runtime_id == t.s.runtime_id;
      if (better) keep = rc;
    }
    for (const auto* rc : items) {
      if (rc != keep) remove_orphan(self, name, *rc);
    }
    if (!st.adopted && keep->status == ports::runtime_container::state::running) {
      spdlog::info("reconciler: adopted container_id={} runtime_id={} pid={}", cid, keep->runtime_id,
                   keep->pid ? *keep->pid : -1);
    }
    t.rt = *keep;
    t.rt_known = true;
  }
}

void list_all(self_ptr self) {
  auto& st = self->state;
  if (st.listing) return;
  st.listing = true;
  std::vector<std::pair<std::string, std::shared_ptr<ports::container_runtime>>> runtimes(st.cfg.runtimes.begin(),
                                                                                          st.cfg.runtimes.end());
  off_thread(
      self,
      [runtimes]() {
        std::vector<std::pair<std::string, result<std::vector<ports::runtime_container>>>> out;
        for (const auto& [name, rt] : runtimes) out.emplace_back(name, rt->list());
        return out;
      },
      [self](std::vector<std::pair<std::string, result<std::vector<ports::runtime_container>>>> lists) {
        auto& st = self->state;
        st.listing = false;
        st.next_list = steady_clock::now() + st.cfg.resync;
        std::set<std::string> seen;
        std::set<std::string> listed_runtimes;
        for (const auto& [name, list] : lists) {
          if (!list) {
            spdlog::warn("reconciler: runtime {} list failed: {}", name, list.error().message);
            continue;
          }
          listed_runtimes.insert(name);
          absorb_list(self, name, *list, seen);
        }
        // Containers with no runtime container at all (in a runtime that answered).
        for (auto& [id, t] : st.table) {
          if (t.busy || seen.contains(id) || !listed_runtimes.contains(t.s.runtime)) continue;
          t.rt.reset();
          t.rt_known = true;
        }
        if (!st.adopted && listed_runtimes.size() == lists.size()) {
          st.adopted = true;
          spdlog::info("reconciler ready containers={}", st.table.size());
        }
      });
}

/// A watch hint: inspect the runtime container, then reconcile.
void on_runtime_event(self_ptr self, const std::string& runtime_name, const ports::runtime_event& ev) {
  auto it = self->state.table.find(ev.container_id);
  if (it == self->state.table.end()) return;
  auto rt = shared_runtime_of(self, runtime_name);
  const auto runtime_id = ev.runtime_id;
  off_thread(
      self, [rt, runtime_id]() { return rt->inspect(runtime_id); },
      [self, id = ev.container_id, runtime_id](result<ports::runtime_container> r) {
        auto it = self->state.table.find(id);
        if (it == self->state.table.end() || it->second.busy) return;
        auto& t = it->second;
        if (t.rt && t.rt->runtime_id != runtime_id) return;  // about an older runtime container
        if (r) {
          t.rt = *r;
        } else if (r.error().code == errc::not_found) {
          t.rt.reset();
        } else {
          return;
        }
        t.rt_known = true;
        reconcile(self, id);
      });
}

// ---- loading the read model ---------------------------------------------------------------------

/// A container row of the read model into `t` (the restart instant recorded for a
/// container waiting out its back-off is taken when atriumd restarted). False if the row
/// does not parse (logged).
bool take_row(tracked& t, const nlohmann::json& row) {
  try {
    auto s = container_from_row(row);
    if (t.s.version == 0 && s.observed == "starting") {
      // After a restart of atriumd: the recorded instant, else now.
      if (auto n = row.find("next_restart_at"); n != row.end() && n->is_string()) {
        if (auto when = parse_utc(n->get<std::string>())) t.restart_at = system_clock::time_point(*when);
      }
    }
    t.s = std::move(s);
    return true;
  } catch (const std::exception& ex) {
    spdlog::warn("reconciler: bad container row {}: {}", row.dump().substr(0, 300), ex.what());
    return false;
  }
}

/// A container gone from the read model was removed: its runtime container goes too.
void forget(self_ptr self, std::map<std::string, tracked>::iterator it) {
  auto& t = it->second;
  if (t.rt && runtime_of(self, t.s.runtime)) {
    auto rt = shared_runtime_of(self, t.s.runtime);
    auto runtime_id = t.rt->runtime_id;
    spdlog::info("reconciler: container removed container_id={} runtime_id={}", it->first, runtime_id);
    self->state.pool->post([rt, runtime_id] { (void)rt->remove(runtime_id); });
  }
  self->state.table.erase(it);
}

/// Reloads the whole read model (at start and when far behind); the table then reflects
/// position `head`.
void load(self_ptr self, std::uint64_t head) {
  auto& st = self->state;
  std::map<std::string, nlohmann::json> rows;
  ports::page_request at{"", 500};
  for (;;) {
    auto page = st.cfg.queries->containers(at);
    if (!page) {
      spdlog::warn("reconciler: containers not loaded: {}", page.error().message);
      return;
    }
    for (auto& row : page->items) {
      if (!row.is_object()) continue;
      // The id first: json's operator= takes its argument by value, and C++17 sequences
      // the right side (the move) before the left.
      auto id = row.value("id", "");
      rows[std::move(id)] = std::move(row);
    }
    if (page->next.is_null()) break;
    at.after = page->next.get<std::string>();
  }
  for (auto it = st.table.begin(); it != st.table.end();) {
    auto next = std::next(it);
    if (!rows.contains(it->first) && !it->second.busy) forget(self, it);
    it = next;
  }
  for (auto& [id, row] : rows) {
    if (id.empty()) continue;
    auto [it, fresh] = st.table.try_emplace(id);
    if (!take_row(it->second, row) && fresh) st.table.erase(it);
  }
  st.loaded_head = std::max<std::uint64_t>(head, 1);
}

/// Beyond this many events behind, the reconciler reloads the whole read model instead
/// of reading the log for the containers that changed.
constexpr std::uint64_t k_follow_limit = 4096;

/// The projections applied the log up to `applied`: reads the events since the table's
/// position, reloads the rows of the containers they touched and reconciles those at
/// once (the tick would otherwise take up to `cfg.tick` for each step of a start).
void follow(self_ptr self, std::uint64_t applied) {
  auto& st = self->state;
  if (!st.ready || applied <= st.loaded_head) return;
  if (applied - st.loaded_head > k_follow_limit) {
    load(self, applied);
    return;
  }
  std::set<std::string> touched;
  const std::string prefix = container_stream("");
  for (std::uint64_t at = st.loaded_head; at < applied;) {
    auto page = st.store->read_all(at, 512);
    if (!page) {
      spdlog::warn("reconciler: log not read after position={}: {}", at, page.error().message);
      return load(self, applied);
    }
    if (page->empty()) break;
    for (const auto& e : *page) {
      if (e.position > applied) break;
      if (e.stream.starts_with(prefix)) touched.insert(e.stream.substr(prefix.size()));
      at = e.position;
    }
    if (page->back().position > applied) break;
  }
  for (const auto& id : touched) {
    auto row = st.cfg.queries->container(id);
    if (!row) {
      spdlog::warn("reconciler: container_id={} not reloaded: {}", id, row.error().message);
      return load(self, applied);
    }
    auto it = st.table.find(id);
    if (!*row) {
      if (it != st.table.end() && !it->second.busy) forget(self, it);
      continue;
    }
    if (it == st.table.end()) it = st.table.try_emplace(id).first;
    if (!take_row(it->second, **row) && it->second.s.version == 0) st.table.erase(it);
  }
  st.loaded_head = applied;
  if (!st.adopted) return;
  for (const auto& id : touched) {
    if (st.table.contains(id)) reconcile(self, id);
  }
}

void maybe_reload(self_ptr self) {
  reload_when_projected(self, [](self_ptr s, std::uint64_t head) { load(s, head); });
}

void tick(self_ptr self) {
  auto& st = self->state;
  if (!st.ready) return;
  // Normally `follow` keeps the table at the projections' position (the runner tells the
  // reconciler each time it applies); this catches up if that ever fell behind.
  if (steady_clock::now() >= st.next_list) {
    maybe_reload(self);
    list_all(self);
  }
  if (!st.adopted) return;
  std::vector<std::string> ids;
  for (const auto& [id, t] : st.table) ids.push_back(id);
  for (const auto& id : ids) {
    if (st.table.contains(id)) reconcile(self, id);
  }
}

void await_start(self_ptr self) {
  await_start_head(self, rec_ready_atom::value, "reconciler", [](self_ptr self, std::uint64_t applied) {
    load(self, applied);
    self->state.ready = true;
    list_all(self);
  });
}

caf::behavior reconciler(self_ptr self, ports::event_store* store, container_execution cfg,
                         std::shared_ptr<container_pool> pool, std::shared_ptr<core_directory> dir) {
  self->set_exception_handler(log_actor_exception);
  auto& st = self->state;
  st.store = store;
  st.cfg = std::move(cfg);
  st.pool = std::move(pool);
  st.dir = std::move(dir);
  st.start_head = store->head_position();
  caf::actor me = caf::actor_cast<caf::actor>(self);
  for (const auto& [name, rt] : st.cfg.runtimes) {
    auto handle = rt->watch([me, name = name](const ports::runtime_event& ev) {
      caf::anon_send(me, msg::runtime_hint{name, ev});
    });
    st.watches.push_back(std::shared_ptr<ports::watch_handle>(std::move(handle)));
  }
  await_start(self);
  self->delayed_send(self, st.cfg.tick, rec_tick_atom::value);
  return {
      [self](rec_tick_atom) {
        tick(self);
        self->delayed_send(self, self->state.cfg.tick, rec_tick_atom::value);
      },
      [self](rec_ready_atom) {
        if (!self->state.ready) await_start(self);
      },
      [](msg::closure& c) {
        if (c.fn) c.fn();
      },
      [self](msg::runtime_hint& h) {
        if (self->state.ready) on_runtime_event(self, h.runtime, h.event);
      },
      [self](msg::log_advanced& m) { follow(self, m.position); },
  };
}

}  // namespace

result<caf::actor> spawn_container_reconciler(caf::actor_system& sys, ports::event_store& store,
                                              container_execution cfg, std::shared_ptr<container_pool> pool,
                                              std::shared_ptr<core_directory> dir) {
  if (cfg.runtimes.empty() || cfg.queries == nullptr) {
    return fail(errc::invalid_argument, "container reconciler: no runtime or no queries");
  }
  return sys.spawn(reconciler, &store, std::move(cfg), std::move(pool), std::move(dir));
}

}  // namespace atrium::actors
