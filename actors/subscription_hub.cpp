// The subscription hub actor: runs `hub_core` (hub_core.hpp) on one CAF thread. The
// projection runner tells it how far the projections have applied the log
// (`log_advanced`), so access re-checks see the read models as of each event; lagging
// subscriptions catch up a page at a time between messages.
//
// Failure: if the hub stops other than by a shutdown (an exception, an exit), every
// subscription it held ends with `unavailable` (the subscriber closes or tells its
// client, who subscribes again from its last position) and the supervisor starts a new,
// empty hub.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <map>

#include "actors/actors.hpp"
#include "actors/hub_core.hpp"
#include "actors/messages.hpp"

namespace atrium::actors {
namespace {

using hub_tick_atom = caf::atom_constant<caf::atom("hubtick")>;

/// The hub's own interface: the public one plus its catch-up tick (sent to itself).
using hub_impl = hub_actor::extend<caf::reacts_to<hub_tick_atom>>;

/// How soon catch-up looks again at subscribers that were all congested.
constexpr auto k_congested_retry = std::chrono::milliseconds(20);

struct hub_state {
  std::unique_ptr<hub_core> core;
  bool ticking = false;  // a catch-up tick is in the mailbox
  // Subscriptions started here (subscriber, id) → (subscriber, its `after`), so that a
  // hub that fails can end each of them; `after` is a safe resume point (the client may
  // hold a newer one).
  std::map<std::pair<const ports::subscriber*, std::string>, std::pair<std::weak_ptr<ports::subscriber>, std::uint64_t>>
      started;
  bool shutdown = false;  // told to stop with the server: subscribers are going away too
  static inline const char* name = "subscription-hub";
  ~hub_state() {
    if (shutdown) return;
    for (auto& [key, value] : started) {
      if (auto s = value.first.lock()) {
        try {
          s->ended(key.second,
                   error{errc::unavailable, "the subscription hub restarted: subscribe again from your last position",
                         nlohmann::json::object()},
                   value.second);
        } catch (...) {
          // A subscriber that cannot take the notice is closing anyway.
        }
      }
    }
  }
};

hub_impl::behavior_type subscription_hub(hub_impl::stateful_pointer<hub_state> self, ports::event_store* store,
                                         ports::read_model_store* read_models, std::chrono::milliseconds stall_limit) {
  auto lookup = [read_models](const std::string& job_id) -> std::optional<std::string> {
    auto row = read_models->get("jobs", "jobs", job_id);
    if (!row || !*row || !(*row)->contains("project_id") || !(**row)["project_id"].is_string()) return std::nullopt;
    return (**row)["project_id"].get<std::string>();
  };
  self->set_exception_handler(log_actor_exception);
  self->set_exit_handler([self](caf::exit_msg& m) {
    self->state.shutdown = m.reason == caf::exit_reason::user_shutdown;
    self->quit(m.reason);
  });
  self->state.core = std::make_unique<hub_core>(*store, lookup, store->head_position(), 1000, stall_limit);
  auto tick = [self] {
    if (self->state.ticking) return;
    self->state.ticking = true;
    self->send(self, hub_tick_atom::value);
  };
  return {
      [self, tick](msg::hub_subscribe& m) {
        self->state.started[{m.owner.get(), m.sub.id}] = {m.owner, m.sub.after};
        if (self->state.core->subscribe(m.owner, std::move(m.sub))) tick();
      },
      [self](msg::hub_unsubscribe& m) {
        self->state.started.erase({m.owner.get(), m.id});
        self->state.core->unsubscribe(m.owner, m.id);
      },
      [self](msg::hub_drop& m) {
        auto& started = self->state.started;
        for (auto it = started.lower_bound({m.owner.get(), std::string()});
             it != started.end() && it->first.first == m.owner.get();) {
          it = started.erase(it);
        }
        self->state.core->drop(m.owner.get());
      },
      [self](msg::log_advanced& m) {
        if (auto ok = self->state.core->advance(m.position); !ok) {
          spdlog::error("subscription hub stalled at position={}: {}", self->state.core->dispatched(),
                        ok.error().message);
        }
      },
      [self, tick](hub_tick_atom) {
        self->state.ticking = false;
        auto report = self->state.core->catch_up(1);
        if (!report) {
          spdlog::error("subscription catch-up failed: {}", report.error().message);
          return;
        }
        if (!report->behind) return;
        if (report->progressed) return tick();
        // Every lagging subscriber is congested: look again shortly rather than spin.
        self->state.ticking = true;
        self->delayed_send(self, k_congested_retry, hub_tick_atom::value);
      },
  };
}

}  // namespace

hub_actor spawn_subscription_hub(caf::actor_system& sys, ports::event_store& store,
                                 ports::read_model_store& read_models, std::chrono::milliseconds stall_limit) {
  return sys.spawn(subscription_hub, &store, &read_models, stall_limit);
}

}  // namespace atrium::actors
