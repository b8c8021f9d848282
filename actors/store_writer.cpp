#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/actors.hpp"
#include "actors/messages.hpp"

namespace atrium::actors {
namespace {

struct writer_state {
  ports::event_store* store = nullptr;
  caf::actor runner;
  static inline const char* name = "event-store-writer";
};

caf::behavior store_writer(caf::stateful_actor<writer_state>* self, ports::event_store* store, caf::actor runner) {
  self->state.store = store;
  self->state.runner = std::move(runner);
  return {
      [self](msg::append_request& req) -> msg::append_reply {
        auto committed = self->state.store->append(std::move(req.appends));
        if (committed && !committed->empty()) {
          // Single writer: batches leave here in commit order, so the runner sees
          // positions in order.
          self->send(self->state.runner, msg::committed_batch{*committed});
        } else if (!committed && committed.error().code != errc::version_conflict) {
          spdlog::error("append failed code={} message={}", to_string(committed.error().code),
                        committed.error().message);
        }
        return msg::append_reply{std::move(committed)};
      },
  };
}

}  // namespace

caf::actor spawn_store_writer(caf::actor_system& sys, ports::event_store& store, caf::actor runner) {
  return sys.spawn(store_writer, &store, std::move(runner));
}

}  // namespace atrium::actors
