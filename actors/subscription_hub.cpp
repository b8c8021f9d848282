// The subscription hub actor: runs `hub_core` (hub_core.hpp) on one CAF thread. The
// projection runner tells it how far the projections have applied the log
// (`log_advanced`), so access re-checks see the read models as of each event; lagging
// subscriptions catch up a page at a time between messages.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/actors.hpp"
#include "actors/hub_core.hpp"
#include "actors/messages.hpp"

namespace atrium::actors {
namespace {

using hub_tick_atom = caf::atom_constant<caf::atom("hubtick")>;

/// How soon catch-up looks again at subscribers that were all congested.
constexpr auto k_congested_retry = std::chrono::milliseconds(20);

struct hub_state {
  std::unique_ptr<hub_core> core;
  bool ticking = false;  // a catch-up tick is in the mailbox
  static inline const char* name = "subscription-hub";
};

caf::behavior subscription_hub(caf::stateful_actor<hub_state>* self, ports::event_store* store,
                               ports::read_model_store* read_models, std::chrono::milliseconds stall_limit) {
  auto lookup = [read_models](const std::string& job_id) -> std::optional<std::string> {
    auto row = read_models->get("jobs", "jobs", job_id);
    if (!row || !*row || !(*row)->contains("project_id") || !(**row)["project_id"].is_string()) return std::nullopt;
    return (**row)["project_id"].get<std::string>();
  };
  self->state.core = std::make_unique<hub_core>(*store, lookup, store->head_position(), 1000, stall_limit);
  auto tick = [self] {
    if (self->state.ticking) return;
    self->state.ticking = true;
    self->send(self, hub_tick_atom::value);
  };
  return {
      [self, tick](msg::hub_subscribe& m) {
        if (self->state.core->subscribe(m.owner, std::move(m.sub))) tick();
      },
      [self](msg::hub_unsubscribe& m) { self->state.core->unsubscribe(m.owner, m.id); },
      [self](msg::hub_drop& m) { self->state.core->drop(m.owner.get()); },
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

caf::actor spawn_subscription_hub(caf::actor_system& sys, ports::event_store& store,
                                  ports::read_model_store& read_models, std::chrono::milliseconds stall_limit) {
  return sys.spawn(subscription_hub, &store, &read_models, stall_limit);
}

}  // namespace atrium::actors
