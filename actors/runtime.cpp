#include "actors/runtime.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <future>

#include "actors/actors.hpp"
#include "actors/messages.hpp"

namespace atrium {
namespace {

/// How long a caller waits for projections to reach its write before answering anyway.
constexpr auto k_projection_wait = std::chrono::seconds(10);

/// The gateway turns fire-and-forget sends from non-actor threads into requests and
/// calls the caller's completion with the reply (or `unavailable` on failure).
caf::behavior gateway(caf::event_based_actor* self, caf::actor registry, caf::actor runner, caf::actor writer) {
  auto forward = [self, registry](auto& m, msg::completion_box& box) {
    self->request(registry, caf::infinite, std::move(m))
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
      [self, writer](msg::record_request& m, msg::recorded_box& box) {
        self->request(writer, caf::infinite, msg::append_request{{std::move(m.append)}})
            .then(
                [box](msg::append_reply& r) {
                  if (!r.committed) return box.fn(std::unexpected(r.committed.error()));
                  box.fn(r.committed->back().position);
                },
                [box](caf::error& err) { box.fn(fail(errc::unavailable, "actor system: " + caf::to_string(err))); });
      },
      [self, runner](msg::projection_status_request& m, msg::status_box& box) {
        self->request(runner, std::chrono::seconds(10), m)
            .then([box](msg::projection_status_reply& r) { box.fn(std::move(r.report)); },
                  [box](caf::error&) { box.fn(ports::projections_report{}); });
      },
      [self, runner](msg::rebuild_request& m, msg::rebuild_box& box) {
        self->request(runner, std::chrono::seconds(30), m)
            .then([box](msg::rebuild_reply& r) { box.fn(std::move(r.started)); },
                  [box](caf::error& err) { box.fn(fail(errc::unavailable, "actor system: " + caf::to_string(err))); });
      },
      [self, runner](msg::await_position& m, msg::ready_box& box) {
        self->request(runner, k_projection_wait, m)
            .then([box](msg::projections_ready&) { box.fn(); },
                  [box, m](caf::error& err) {
                    spdlog::warn("projections did not reach position={} in time: {}", m.position, caf::to_string(err));
                    box.fn();
                  });
      },
  };
}

}  // namespace

struct actor_runtime::impl {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  caf::actor hub, runner, writer, registry, gateway, relay;
  std::shared_ptr<actors::relay_status_cell> relay_status;
  ports::event_store* store = nullptr;  // for the relay's lag in seconds, computed on report

  ~impl() {
    if (!system) return;
    for (const auto& a : {gateway, registry, writer, runner, hub, relay}) {
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    system.reset();  // blocks until every actor has terminated
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
  p->system = std::make_unique<caf::actor_system>(p->config);
  p->hub = actors::spawn_subscription_hub(*p->system, store, read_models, config.subscriber_stall_limit);
  p->runner = actors::spawn_projection_runner(*p->system, engine, head, p->hub);
  p->writer = actors::spawn_store_writer(*p->system, store, p->runner);
  p->registry = actors::spawn_registry(*p->system, store, p->writer,
                                       {config.snapshot_every, config.passivate_after, config.max_live_entities});
  p->gateway = p->system->spawn(gateway, p->registry, p->runner, p->writer);
  if (config.publisher != nullptr) {
    p->relay_status = std::make_shared<actors::relay_status_cell>();
    p->relay_status->info.destination = config.publisher->describe();
    p->store = &store;
    actors::relay_options options;
    options.checkpoint_name = config.relay_checkpoint;
    auto relay = actors::spawn_relay(*p->system, store, read_models, *config.publisher, options, p->relay_status);
    if (!relay) return std::unexpected(relay.error());
    p->relay = *relay;
  }
  return std::unique_ptr<actor_runtime>(new actor_runtime(std::move(p)));
}

namespace {
template <class Command>
void send_command(const caf::actor& gateway, std::string id, Command cmd, ports::command_context ctx,
                  ports::completion done) {
  caf::anon_send(gateway, msg::command_msg<Command>{std::move(id), std::move(cmd), std::move(ctx)},
                 msg::completion_box{std::move(done)});
}
}  // namespace

void actor_runtime::execute(std::string id, user_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->gateway, std::move(id), std::move(cmd), std::move(ctx), std::move(done));
}
void actor_runtime::execute(std::string id, project_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->gateway, std::move(id), std::move(cmd), std::move(ctx), std::move(done));
}
void actor_runtime::execute(std::string id, group_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->gateway, std::move(id), std::move(cmd), std::move(ctx), std::move(done));
}
void actor_runtime::execute(std::string id, connection_command cmd, ports::command_context ctx,
                            ports::completion done) {
  send_command(impl_->gateway, std::move(id), std::move(cmd), std::move(ctx), std::move(done));
}
void actor_runtime::execute(std::string id, job_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->gateway, std::move(id), std::move(cmd), std::move(ctx), std::move(done));
}
void actor_runtime::execute(std::string id, container_command cmd, ports::command_context ctx, ports::completion done) {
  send_command(impl_->gateway, std::move(id), std::move(cmd), std::move(ctx), std::move(done));
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
  caf::anon_send(impl_->gateway, msg::projection_status_request{}, msg::status_box{std::move(done)});
}

void actor_runtime::rebuild(std::string name, std::function<void(result<void>)> done) {
  caf::anon_send(impl_->gateway, msg::rebuild_request{std::move(name)}, msg::rebuild_box{std::move(done)});
}

void actor_runtime::await_projections(std::uint64_t position, std::function<void()> done) {
  caf::anon_send(impl_->gateway, msg::await_position{position}, msg::ready_box{std::move(done)});
}

std::pair<std::size_t, std::uint64_t> actor_runtime::entity_stats() {
  caf::scoped_actor self{*impl_->system};
  std::pair<std::size_t, std::uint64_t> out{0, 0};
  self->request(impl_->registry, std::chrono::seconds(10), msg::registry_stats_request{})
      .receive(
          [&](msg::registry_stats& s) {
            out = {s.live, s.passivated};
          },
          [](caf::error&) {});
  return out;
}

void actor_runtime::record(std::string stream, proposed_event event, std::function<void(result<std::uint64_t>)> done) {
  caf::anon_send(impl_->gateway,
                 msg::record_request{{std::move(stream), ports::expected_version::any(), {std::move(event)}}},
                 msg::recorded_box{std::move(done)});
}

void actor_runtime::subscribe(std::shared_ptr<ports::subscriber> s, ports::subscription sub) {
  caf::anon_send(impl_->hub, msg::hub_subscribe{std::move(s), std::move(sub)});
}

void actor_runtime::unsubscribe(std::shared_ptr<ports::subscriber> s, std::string id) {
  caf::anon_send(impl_->hub, msg::hub_unsubscribe{std::move(s), std::move(id)});
}

void actor_runtime::drop(std::shared_ptr<ports::subscriber> s) {
  caf::anon_send(impl_->hub, msg::hub_drop{std::move(s)});
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

}  // namespace atrium
