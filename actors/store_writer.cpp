// The event-store writer actor: hands appends to the store's group commit and answers
// each requester once its batch is durable; forwards committed events, in position
// order, to the projection runner.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <unordered_map>

#include "actors/actors.hpp"
#include "actors/messages.hpp"

namespace atrium::actors {
namespace {

struct writer_state {
  ports::event_store* store = nullptr;
  caf::actor runner;
  std::uint64_t next_id = 1;
  std::unordered_map<std::uint64_t, caf::response_promise> pending;
  static inline const char* name = "event-store-writer";
};

caf::behavior store_writer(caf::stateful_actor<writer_state>* self, ports::event_store* store, caf::actor runner) {
  self->state.store = store;
  self->state.runner = std::move(runner);
  return {
      [self](msg::append_request& req) -> caf::result<msg::append_reply> {
        const auto id = self->state.next_id++;
        self->state.pending.emplace(id, self->make_response_promise());
        // Many appends are in flight at once: the store commits those that arrive during
        // a synced write together in its next batch. Its commit thread must not touch
        // this actor's state, so it answers with a message.
        auto me = caf::actor_cast<caf::actor>(self);
        self->state.store->append_async(std::move(req.appends), [me, id](result<std::vector<envelope>> r) {
          caf::anon_send(me, msg::append_done{id, std::move(r)});
        });
        return caf::delegated<msg::append_reply>();
      },
      [self](msg::append_done& done) {
        auto it = self->state.pending.find(done.id);
        if (it == self->state.pending.end()) return;
        auto rp = std::move(it->second);
        self->state.pending.erase(it);
        if (done.committed && !done.committed->empty()) {
          // One commit thread sends these in commit order, so the runner sees positions in order.
          self->send(self->state.runner, msg::log_advanced{done.committed->back().position});
        } else if (!done.committed && done.committed.error().code != errc::version_conflict) {
          spdlog::error("append failed code={} message={}", to_string(done.committed.error().code),
                        done.committed.error().message);
        }
        rp.deliver(msg::append_reply{std::move(done.committed)});
      },
  };
}

}  // namespace

caf::actor spawn_store_writer(caf::actor_system& sys, ports::event_store& store, caf::actor runner) {
  return sys.spawn(store_writer, &store, std::move(runner));
}

}  // namespace atrium::actors
