#include "actors/runtime.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <deque>
#include <future>
#include <mutex>
#include <unordered_map>

#include "actors/actors.hpp"
#include "actors/job_attempts.hpp"
#include "actors/messages.hpp"
#include "actors/supervision.hpp"

namespace atrium {

const char* actors::role_name(core_role r) {
  switch (r) {
    case core_role::hub:
      return "subscription-hub";
    case core_role::runner:
      return "projection-runner";
    case core_role::writer:
      return "event-store-writer";
    case core_role::registry:
      return "entity-registry";
    case core_role::gateway:
      return "gateway";
    case core_role::relay:
      return "event-relay";
    case core_role::dispatcher:
      return "job-dispatcher";
    case core_role::scheduler:
      return "scheduler";
    case core_role::reconciler:
      return "container-reconciler";
  }
  return "unknown";
}

caf::error actors::log_actor_exception(caf::scheduled_actor* self, std::exception_ptr& e) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  spdlog::error("actor={} id={} failed: {}", self->name(), self->id(), what);
  return caf::make_error(caf::sec::runtime_error, std::move(what));
}

namespace {

/// The answer to a request whose message was dropped (an actor stopped with it queued).
error dropped_error() {
  return error{errc::unavailable, "the actor system stopped before answering (an actor failed or is restarting); retry",
               nlohmann::json::object()};
}

/// How long a caller waits for projections to reach its write before answering anyway.
constexpr auto k_projection_wait = std::chrono::seconds(10);

/// The gateway turns fire-and-forget sends from non-actor threads into requests and
/// calls the caller's completion with the reply (or `unavailable` on failure). Its peers
/// are looked up in the directory per message, so restarted peers are found; a peer
/// that is down is answered for at once. Completions are wrapped by `exactly_once` (see
/// the public entry points below), so a gateway that stops answers what it held.
caf::behavior gateway(caf::event_based_actor* self, std::shared_ptr<actors::core_directory> dir) {
  using actors::core_role;
  self->set_exception_handler(actors::log_actor_exception);
  auto restarting = [dir](core_role r) -> std::optional<error> {
    if (dir->up(r)) return std::nullopt;
    return error{errc::unavailable, std::string("the ") + actors::role_name(r) + " is restarting; retry",
                 nlohmann::json::object()};
  };
  auto forward = [self, dir, restarting](auto& m, msg::completion_box& box) {
    if (auto down = restarting(core_role::registry)) return box.fn(std::unexpected(*down));
    self->request(dir->get<core_role::registry>(), caf::infinite, std::move(m))
        .then([box](msg::command_reply& r) { box.fn(std::move(r.outcome)); },
              [box](caf::error& err) { box.fn(fail(errc::unavailable, "actor system: " + caf::to_string(err))); });
  };
  return {
      [forward](msg::user_command_msg& m, msg::completion_box& box) { forward(m, box); },
      [forward](msg::project_command_msg& m, msg::completion_box& box) { forward(m, box); },
      [forward](msg::group_command_msg& m, msg::completion_box& box) { forward(m, box); },
      [forward](msg::connection_command_msg& m, msg::completion_box& box) { forward(m, box); },
      [forward](msg::job_command_msg& m, msg::completion_box& box) { forward(m, box); },
      [forward](msg::container_command_msg& m, msg::completion_box& box) { forward(m, box); },
      [forward](msg::schedule_command_msg& m, msg::completion_box& box) { forward(m, box); },
      [self, dir, restarting](msg::record_request& m, msg::recorded_box& box) {
        if (auto down = restarting(core_role::writer)) return box.fn(std::unexpected(*down));
        self->request(dir->get<core_role::writer>(), caf::infinite, msg::append_request{{std::move(m.append)}})
            .then(
                [box](msg::append_reply& r) {
                  if (!r.committed) return box.fn(std::unexpected(r.committed.error()));
                  if (r.committed->empty()) return box.fn(fail(errc::internal, "append committed no event"));
                  box.fn(r.committed->back().position);
                },
                [box](caf::error& err) { box.fn(fail(errc::unavailable, "actor system: " + caf::to_string(err))); });
      },
      [self, dir](msg::projection_status_request& m, msg::status_box& box) {
        self->request(dir->get<core_role::runner>(), std::chrono::seconds(10), m)
            .then([box](msg::projection_status_reply& r) { box.fn(std::move(r.report)); },
                  [box](caf::error&) { box.fn(ports::projections_report{}); });
      },
      [self, dir, restarting](msg::rebuild_request& m, msg::rebuild_box& box) {
        if (auto down = restarting(core_role::runner)) return box.fn(std::unexpected(*down));
        self->request(dir->get<core_role::runner>(), std::chrono::seconds(30), m)
            .then([box](msg::rebuild_reply& r) { box.fn(std::move(r.started)); },
                  [box](caf::error& err) { box.fn(fail(errc::unavailable, "actor system: " + caf::to_string(err))); });
      },
      [self, dir](msg::await_position& m, msg::ready_box& box) {
        self->request(dir->get<core_role::runner>(), k_projection_wait, m)
            .then([box](msg::projections_ready&) { box.fn(); },
                  [box, m](caf::error& err) {
                    spdlog::warn("projections did not reach position={} in time: {}", m.position, caf::to_string(err));
                    box.fn();
                  });
      },
  };
}

using restart_atom = caf::atom_constant<caf::atom("restart")>;
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;

/// Makes a fresh actor for a role (the first one, or after a failure).
using factory = std::function<result<caf::strong_actor_ptr>()>;

/// The factory of role `R` from `make`, which returns a handle of `R`'s interface (or
/// `result` of one): the directory then holds only that interface under `R`.
template <actors::core_role R, class Make>
factory make_factory(Make make) {
  return [make = std::move(make)]() -> result<caf::strong_actor_ptr> {
    result<actors::role_handle_t<R>> made = make();
    if (!made) return std::unexpected(made.error());
    return caf::actor_cast<caf::strong_actor_ptr>(*made);
  };
}

/// What supervision has to remember; shared with the runtime (health, fatal).
struct supervision {
  std::shared_ptr<actors::core_directory> dir = std::make_shared<actors::core_directory>();
  std::array<factory, actors::k_core_roles> factories;
  std::chrono::milliseconds restart_delay{100};
  int max_restarts = 5;
  std::chrono::milliseconds restart_window{std::chrono::seconds(60)};
  std::function<void(const std::string&)> on_fatal;
  std::mutex fatal_mu;
  std::string fatal;  // set once supervision gave up (guarded by fatal_mu)

  void give_up(const std::string& why) {
    {
      std::lock_guard lock(fatal_mu);
      if (!fatal.empty()) return;
      fatal = why;
    }
    spdlog::critical("{}", why);
    if (on_fatal) {
      try {
        on_fatal(why);
      } catch (const std::exception& ex) {
        spdlog::critical("on_fatal threw: {}", ex.what());
      }
    }
  }
};

struct supervisor_state {
  std::shared_ptr<supervision> sup;
  std::unordered_map<caf::actor_id, actors::core_role> children;
  std::array<std::deque<std::chrono::steady_clock::time_point>, actors::k_core_roles> failures;
  bool stopping = false;
  static inline const char* name = "supervisor";
};

/// The supervisor: monitors the core actors (`adopt`), restarts one that stops (after a
/// back-off, `restart`), and gives up when one fails too often or cannot be made again.
caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, std::shared_ptr<supervision> sup) {
  using actors::core_role;
  self->set_exception_handler(actors::log_actor_exception);
  self->state.sup = std::move(sup);
  self->set_down_handler([self](caf::down_msg& m) {
    auto& st = self->state;
    auto it = st.children.find(m.source.id());
    // A core actor told to stop (user_shutdown) stops with the runtime: not a failure.
    if (it == st.children.end() || st.stopping || m.reason == caf::exit_reason::user_shutdown) return;
    const auto role = it->second;
    st.children.erase(it);
    const auto name = actors::role_name(role);
    const auto reason = m.reason ? caf::to_string(m.reason) : std::string("stopped");
    st.sup->dir->mark_down(role, reason);
    auto& failures = st.failures[static_cast<std::size_t>(role)];
    const auto now = std::chrono::steady_clock::now();
    while (!failures.empty() && now - failures.front() > st.sup->restart_window) failures.pop_front();
    failures.push_back(now);
    const auto n = static_cast<int>(failures.size());
    if (n > st.sup->max_restarts) {
      st.sup->give_up(fmt::format(
          "supervisor: actor={} failed {} times within {} s (last: {}); giving up so that the service manager "
          "restarts atriumd",
          name, n, std::chrono::duration_cast<std::chrono::seconds>(st.sup->restart_window).count(), reason));
      return;
    }
    auto delay = st.sup->restart_delay * (1 << std::min(n - 1, 6));
    delay = std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(5));
    spdlog::error("supervisor: actor={} failed: {}; restarting in {} ms (failure {} of {} allowed within {} s)", name,
                  reason, delay.count(), n, st.sup->max_restarts,
                  std::chrono::duration_cast<std::chrono::seconds>(st.sup->restart_window).count());
    self->delayed_send(self, delay, restart_atom::value, static_cast<std::uint8_t>(role));
  });
  self->set_exit_handler([self](caf::exit_msg& m) {
    // The runtime stops: children are stopped by it; no more restarts.
    self->state.stopping = true;
    self->quit(m.reason);
  });
  return {
      [self](adopt_atom, std::uint8_t r, caf::strong_actor_ptr& a) {
        self->monitor(a);
        self->state.children[a->id()] = static_cast<core_role>(r);
      },
      [self](restart_atom, std::uint8_t r) {
        auto& st = self->state;
        if (st.stopping) return;
        const auto role = static_cast<core_role>(r);
        result<caf::strong_actor_ptr> made = fail(errc::internal, "no factory");
        try {
          if (st.sup->factories[r]) made = st.sup->factories[r]();
        } catch (const std::exception& ex) {
          made = fail(errc::internal, ex.what());
        }
        if (!made) {
          st.sup->give_up(
              fmt::format("supervisor: actor={} cannot be restarted: {}; giving up so that the service "
                          "manager restarts atriumd",
                          actors::role_name(role), made.error().message));
          return;
        }
        self->monitor(*made);
        st.children[(*made)->id()] = role;
        st.sup->dir->set(role, *made);
        spdlog::warn("supervisor: actor={} restarted", actors::role_name(role));
      },
  };
}

}  // namespace

struct actor_runtime::impl {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::shared_ptr<supervision> sup = std::make_shared<supervision>();
  caf::actor supervisor;
  std::shared_ptr<actors::relay_status_cell> relay_status;
  ports::event_store* store = nullptr;                 // for the relay's lag in seconds, and the store's health
  std::shared_ptr<actors::job_attempts> attempts;      // running job attempts (none without a dispatcher)
  std::shared_ptr<actors::container_pool> containers;  // the reconciler's runtime threads (none without it)
  std::chrono::milliseconds stop_wait{0};
  std::shared_ptr<actors::entity_counts> entities;  // the registry's counts, for /metrics
  std::size_t max_live_entities = 0;

  /// The actor now serving `R`, with its interface.
  template <actors::core_role R>
  [[nodiscard]] actors::role_handle_t<R> get() const {
    return sup->dir->get<R>();
  }

  ~impl() {
    if (!system) return;
    // Running job attempts first: cancelled and awaited (bounded), nothing more reported
    // (the next start settles them as orphans).
    if (attempts) actors::stop_job_attempts(*attempts, stop_wait);
    // The supervisor next, so that nothing is restarted while the actors stop.
    if (supervisor) caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
    using actors::core_role;
    for (auto r : {core_role::reconciler, core_role::scheduler, core_role::dispatcher, core_role::gateway,
                   core_role::registry, core_role::writer, core_role::runner, core_role::hub, core_role::relay}) {
      if (auto a = sup->dir->get(r)) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    system.reset();  // blocks until every actor has terminated
    // Runtime calls in flight finish (containers keep running: the next start adopts them).
    if (containers) actors::stop_container_pool(*containers);
  }
};

actor_runtime::actor_runtime(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
actor_runtime::~actor_runtime() = default;

result<std::unique_ptr<actor_runtime>> actor_runtime::start(ports::event_store& store,
                                                            ports::read_model_store& read_models,
                                                            std::vector<std::unique_ptr<projection>> projections,
                                                            runtime_config config) {
  auto engine = std::make_shared<actors::projection_engine>(store, read_models, std::move(projections));
  if (config.catch_up_before_start) {
    auto caught_up = engine->catch_up();
    if (!caught_up) return std::unexpected(caught_up.error());
    spdlog::info("projections caught up position={}", *caught_up);
  } else if (auto ok = engine->load_checkpoints(); !ok) {
    return std::unexpected(ok.error());
  }
  const auto head = store.head_position();
  spdlog::info("projections at position={} of head={}", engine->applied(), head);

  auto p = std::make_unique<impl>();
  p->config.set("scheduler.max-threads", config.worker_threads);
  // After each job a CAF worker polls its queue: 100 attempts back to back, then 500
  // attempts 50 µs apart, before it blocks on a condition variable that every enqueue
  // from outside the scheduler signals. The periodic ticks (reconciler, scheduler, relay)
  // kept idle workers in that second phase: 7% of a core with nothing to do. With 10
  // attempts an idle atriumd uses 0.8% (docs/performance.md "Containers").
  p->config.set("work-stealing.moderate-poll-attempts", std::size_t{10});
  p->system = std::make_unique<caf::actor_system>(p->config);
  p->store = &store;
  auto& sup = *p->sup;
  sup.restart_delay = config.restart_delay;
  sup.max_restarts = config.max_restarts;
  sup.restart_window = config.restart_window;
  sup.on_fatal = config.on_fatal;
  auto* sys = p->system.get();
  auto dir = sup.dir;
  using actors::core_role;
  auto& f = sup.factories;
  f[static_cast<std::size_t>(core_role::hub)] = make_factory<core_role::hub>([sys, &store, &read_models, config] {
    return actors::spawn_subscription_hub(*sys, store, read_models, config.subscriber_stall_limit);
  });
  f[static_cast<std::size_t>(core_role::runner)] = make_factory<core_role::runner>(
      [sys, engine, head, dir] { return actors::spawn_projection_runner(*sys, engine, head, dir); });
  f[static_cast<std::size_t>(core_role::writer)] =
      make_factory<core_role::writer>([sys, &store, dir] { return actors::spawn_store_writer(*sys, store, dir); });
  p->entities = std::make_shared<actors::entity_counts>();
  p->max_live_entities = config.max_live_entities;
  f[static_cast<std::size_t>(core_role::registry)] =
      make_factory<core_role::registry>([sys, &store, dir, config, counts = p->entities] {
        return actors::spawn_registry(
            *sys, store, dir, {config.snapshot_every, config.passivate_after, config.max_live_entities, counts});
      });
  f[static_cast<std::size_t>(core_role::gateway)] =
      make_factory<core_role::gateway>([sys, dir] { return sys->spawn(gateway, dir); });
  if (config.publisher != nullptr) {
    p->relay_status = std::make_shared<actors::relay_status_cell>();
    p->relay_status->info.destination = config.publisher->describe();
    actors::relay_options options;
    options.checkpoint_name = config.relay_checkpoint;
    f[static_cast<std::size_t>(core_role::relay)] = make_factory<core_role::relay>(
        [sys, &store, &read_models, publisher = config.publisher, options, status = p->relay_status] {
          return actors::spawn_relay(*sys, store, read_models, *publisher, options, status);
        });
  }
  if (config.jobs.results != nullptr) {
    p->attempts = actors::make_job_attempts();
    p->stop_wait = config.jobs.stop_wait;
    f[static_cast<std::size_t>(core_role::dispatcher)] = make_factory<core_role::dispatcher>(
        [sys, &store, &read_models, jobs = config.jobs, attempts = p->attempts, dir] {
          return actors::spawn_job_dispatcher(*sys, store, read_models, jobs, attempts, dir);
        });
  }
  if (config.schedules.zones && config.schedules.queries != nullptr) {
    f[static_cast<std::size_t>(core_role::scheduler)] =
        make_factory<core_role::scheduler>([sys, &store, schedules = config.schedules, dir] {
          return actors::spawn_scheduler(*sys, store, schedules, dir);
        });
  }
  if (!config.containers.runtimes.empty() && config.containers.queries != nullptr) {
    p->containers = actors::make_container_pool(config.containers.threads);
    f[static_cast<std::size_t>(core_role::reconciler)] =
        make_factory<core_role::reconciler>([sys, &store, containers = config.containers, pool = p->containers, dir] {
          return actors::spawn_container_reconciler(*sys, store, containers, pool, dir);
        });
  }
  p->supervisor = p->system->spawn(supervisor, p->sup);
  // If the supervisor itself stops other than at shutdown, nobody restarts anything.
  caf::actor_cast<caf::abstract_actor*>(p->supervisor)->attach_functor([s = p->sup](const caf::error& reason) {
    if (reason && reason != caf::exit_reason::user_shutdown) {
      s->give_up("supervisor: stopped (" + caf::to_string(reason) +
                 "); giving up so that the service manager restarts atriumd");
    }
  });
  // First start, in dependency order (the writer tells the runner, the runner the hub).
  for (auto r : {core_role::hub, core_role::runner, core_role::writer, core_role::registry, core_role::gateway,
                 core_role::relay, core_role::dispatcher, core_role::scheduler, core_role::reconciler}) {
    const auto i = static_cast<std::size_t>(r);
    if (!f[i]) continue;
    auto made = f[i]();
    if (!made) return std::unexpected(made.error());
    dir->set(r, *made);
    caf::anon_send(p->supervisor, adopt_atom::value, static_cast<std::uint8_t>(r), *made);
  }
  return std::unique_ptr<actor_runtime>(new actor_runtime(std::move(p)));
}

namespace {
template <class Command>
void send_command(const caf::actor& gateway, std::string id, Command cmd, ports::command_context ctx,
                  ports::completion done) {
  // Answered exactly once, also if the message is dropped on the way (a failed actor).
  auto once = actors::exactly_once<result<ports::command_outcome>>(
      std::move(done), [](ports::completion& fn) { fn(std::unexpected(dropped_error())); });
  if (!gateway) return once(std::unexpected(dropped_error()));
  caf::anon_send(gateway, msg::command_msg<Command>{std::move(id), std::move(cmd), std::move(ctx)},
                 msg::completion_box{std::move(once)});
}
}  // namespace

void actor_runtime::execute(std::string id, user_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->get<actors::core_role::gateway>(), std::move(id), std::move(cmd), std::move(ctx),
               std::move(done));
}
void actor_runtime::execute(std::string id, project_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->get<actors::core_role::gateway>(), std::move(id), std::move(cmd), std::move(ctx),
               std::move(done));
}
void actor_runtime::execute(std::string id, group_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->get<actors::core_role::gateway>(), std::move(id), std::move(cmd), std::move(ctx),
               std::move(done));
}
void actor_runtime::execute(std::string id, connection_command cmd, ports::command_context ctx,
                            ports::completion done) {
  send_command(impl_->get<actors::core_role::gateway>(), std::move(id), std::move(cmd), std::move(ctx),
               std::move(done));
}
void actor_runtime::execute(std::string id, job_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->get<actors::core_role::gateway>(), std::move(id), std::move(cmd), std::move(ctx),
               std::move(done));
}
void actor_runtime::execute(std::string id, container_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->get<actors::core_role::gateway>(), std::move(id), std::move(cmd), std::move(ctx),
               std::move(done));
}

void actor_runtime::execute(std::string id, schedule_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->get<actors::core_role::gateway>(), std::move(id), std::move(cmd), std::move(ctx),
               std::move(done));
}

void actor_runtime::report(std::function<void(ports::projections_report)> done) {
  if (impl_->relay_status) {
    // The relay's part is read from its status cell (kept current by the relay actor).
    done = [cell = impl_->relay_status, store = impl_->store, next = std::move(done)](ports::projections_report r) {
      {
        std::lock_guard lock(cell->mu);
        r.relay = cell->info;
      }
      // Lag against this report's head (the cell's was taken at the relay's last tick),
      // and in seconds: the age of the oldest event not acknowledged (one read, here
      // rather than on each of the relay's ticks).
      r.relay->lag_positions = r.head > r.relay->checkpoint ? r.head - r.relay->checkpoint : 0;
      r.relay->lag_seconds = 0;
      if (r.relay->lag_positions > 0) {
        if (auto next_event = store->read_all(r.relay->checkpoint, 1); next_event && !next_event->empty()) {
          r.relay->lag_seconds = static_cast<double>(milliseconds_since(next_event->front().time)) / 1000.0;
        }
      }
      next(std::move(r));
    };
  }
  auto once = actors::exactly_once<ports::projections_report>(
      std::move(done), [](std::function<void(ports::projections_report)>& fn) { fn(ports::projections_report{}); });
  caf::anon_send(impl_->get<actors::core_role::gateway>(), msg::projection_status_request{},
                 msg::status_box{std::move(once)});
}

void actor_runtime::rebuild(std::string name, std::function<void(result<void>)> done) {
  auto once = actors::exactly_once<result<void>>(
      std::move(done), [](std::function<void(result<void>)>& fn) { fn(std::unexpected(dropped_error())); });
  caf::anon_send(impl_->get<actors::core_role::gateway>(), msg::rebuild_request{std::move(name)},
                 msg::rebuild_box{std::move(once)});
}

void actor_runtime::await_projections(std::uint64_t position, std::function<void()> done) {
  auto once = actors::exactly_once<>(std::move(done), [](std::function<void()>& fn) { fn(); });
  caf::anon_send(impl_->get<actors::core_role::gateway>(), msg::await_position{position},
                 msg::ready_box{std::move(once)});
}

ports::health_report actor_runtime::health() const {
  ports::health_report r;
  r.down = impl_->sup->dir->down();
  {
    std::lock_guard lock(impl_->sup->fatal_mu);
    if (!impl_->sup->fatal.empty()) r.down.push_back(impl_->sup->fatal);
  }
  if (impl_->store != nullptr) r.store = impl_->store->write_fault();
  r.healthy = r.down.empty() && !r.store;
  return r;
}

bool actor_runtime::inject_failure(std::string_view name, bool kill) {
  for (std::size_t i = 0; i < actors::k_core_roles; ++i) {
    const auto role = static_cast<actors::core_role>(i);
    if (name != actors::role_name(role)) continue;
    auto a = impl_->sup->dir->get(role);
    if (!a) return false;
    if (kill) {
      caf::anon_send_exit(a, caf::exit_reason::kill);
    } else {
      caf::anon_send_exit(a, caf::exit_reason::unhandled_exception);
    }
    return true;
  }
  return false;
}

std::pair<std::size_t, std::uint64_t> actor_runtime::entity_stats() {
  caf::scoped_actor self{*impl_->system};
  std::pair<std::size_t, std::uint64_t> out{0, 0};
  self->request(impl_->get<actors::core_role::registry>(), std::chrono::seconds(10), msg::registry_stats_request{})
      .receive(
          [&](msg::registry_stats& s) {
            out = {s.live, s.passivated};
          },
          [](caf::error&) {});
  return out;
}

void actor_runtime::collect(std::vector<ports::metric_family>& out) const {
  using ports::family;
  using ports::metric_type;
  out.push_back(family("atrium_entity_actors_live", metric_type::gauge,
                       "Entity actors alive now (one per active user, project, job, ...).")
                    .add(static_cast<double>(impl_->entities->live.value())));
  out.push_back(family("atrium_entity_actors_limit", metric_type::gauge,
                       "Entity actors alive at once, at most (--max-live-entities).")
                    .add(static_cast<double>(impl_->max_live_entities)));
  out.push_back(family("atrium_entity_passivations_total", metric_type::counter,
                       "Entity actors stopped since start because they were idle or over the limit.")
                    .add(static_cast<double>(impl_->entities->passivated.value())));
  const auto h = health();
  out.push_back(family("atrium_healthy", metric_type::gauge,
                       "1 while every core actor runs and the store can write (as /healthz says).")
                    .add(h.healthy ? 1 : 0));
}

void actor_runtime::record(std::string stream, proposed_event event, std::function<void(result<std::uint64_t>)> done) {
  caf::anon_send(impl_->get<actors::core_role::gateway>(),
                 msg::record_request{{std::move(stream), ports::expected_version::any(), {std::move(event)}}},
                 msg::recorded_box{actors::exactly_once<result<std::uint64_t>>(
                     std::move(done),
                     [](std::function<void(result<std::uint64_t>)>& fn) { fn(std::unexpected(dropped_error())); })});
}

void actor_runtime::subscribe(std::shared_ptr<ports::subscriber> s, ports::subscription sub) {
  caf::anon_send(impl_->get<actors::core_role::hub>(), msg::hub_subscribe{std::move(s), std::move(sub)});
}

void actor_runtime::unsubscribe(std::shared_ptr<ports::subscriber> s, std::string id) {
  caf::anon_send(impl_->get<actors::core_role::hub>(), msg::hub_unsubscribe{std::move(s), std::move(id)});
}

void actor_runtime::drop(std::shared_ptr<ports::subscriber> s) {
  caf::anon_send(impl_->get<actors::core_role::hub>(), msg::hub_drop{std::move(s)});
}

result<ports::command_outcome> actor_runtime::execute_blocking(std::string user_id, user_command cmd,
                                                               ports::command_context ctx) {
  auto promise = std::make_shared<std::promise<result<ports::command_outcome>>>();
  auto future = promise->get_future();
  execute(std::move(user_id), std::move(cmd), std::move(ctx),
          [promise](result<ports::command_outcome> r) { promise->set_value(std::move(r)); });
  auto out = future.get();
  if (out && out->position > 0) {
    auto ready = std::make_shared<std::promise<void>>();
    auto f = ready->get_future();
    await_projections(out->position, [ready] { ready->set_value(); });
    f.wait();
  }
  return out;
}

// ---- ports::job_leases (actors/worker_leases.cpp) ------------------------------------------

void actor_runtime::claim(ports::lease_claim claim,
                          std::function<void(result<std::optional<ports::leased_job>>)> done) {
  actors::send_claim(impl_->attempts.get(), *impl_->sup->dir, std::move(claim), std::move(done));
}

result<ports::lease_renewal> actor_runtime::heartbeat(const std::string& lease_id, const std::string& worker,
                                                      const std::string& owner, const ports::job_progress& progress) {
  return actors::renew_lease(impl_->attempts.get(), lease_id, worker, owner, progress);
}

result<ports::upload_ack> actor_runtime::upload(const std::string& lease_id, const std::string& worker,
                                                const std::string& owner, ports::lease_upload batch) {
  return actors::upload_to_lease(impl_->attempts.get(), lease_id, worker, owner, std::move(batch));
}

result<void> actor_runtime::complete(const std::string& lease_id, const std::string& worker, const std::string& owner,
                                     const ports::lease_completion& done) {
  return actors::complete_lease(impl_->attempts.get(), *impl_->sup->dir, lease_id, worker, owner, done);
}

std::vector<ports::worker_info> actor_runtime::workers() const { return actors::list_workers(impl_->attempts.get()); }

}  // namespace atrium
