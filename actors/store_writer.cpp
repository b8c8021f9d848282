// The event-store writer actor: hands appends to the store's group commit and answers
// each requester once its batch is durable; forwards committed events, in position
// order, to the projection runner (looked up in the core directory, so a restarted
// runner is found).
//
// Failure: the store never throws (errors are values); if this actor stops anyway, the
// appends it still owes are answered `unavailable` (owed_reply) and the supervisor
// starts a new writer. A late `append_done` for the old writer is dropped; the append
// may have committed, which the requester learns from a version conflict or an
// idempotent retry, and the new writer tells the runner to catch up with the log head.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <unordered_map>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "actors/supervision.hpp"

namespace atrium::actors {
namespace {

/// The writer's own interface: the public one plus `append_done`, which only its
/// store's commit callback sends (to itself).
using writer_impl = writer_actor::extend<caf::reacts_to<msg::append_done>>;

struct writer_state {
  ports::event_store* store = nullptr;
  std::shared_ptr<core_directory> dir;
  std::uint64_t next_id = 1;
  std::unordered_map<std::uint64_t, owed_reply<msg::append_reply>> pending;
  static inline const char* name = "event-store-writer";
};

writer_impl::behavior_type store_writer(writer_impl::stateful_pointer<writer_state> self, ports::event_store* store,
                                        std::shared_ptr<core_directory> dir) {
  self->set_exception_handler(log_actor_exception);
  self->state.store = store;
  self->state.dir = std::move(dir);
  // Whatever a previous writer committed without telling the runner: catch up now.
  if (auto runner = self->state.dir->get<core_role::runner>(); runner && store->head_position() > 0) {
    self->send(runner, msg::log_advanced{store->head_position()});
  }
  return {
      [self](msg::append_request& req) -> caf::result<msg::append_reply> {
        const auto id = self->state.next_id++;
        self->state.pending.emplace(
            id, owed_reply<msg::append_reply>(self->make_response_promise<msg::append_reply>(), [] {
              return msg::append_reply{fail(errc::unavailable,
                                            "the event-store writer stopped before the append completed; "
                                            "it may or may not have been stored")};
            }));
        // Many appends are in flight at once: the store commits those that arrive during
        // a synced write together in its next batch. Its commit thread must not touch
        // this actor's state, so it answers with a message.
        writer_impl me = self;
        self->state.store->append_async(std::move(req.appends), [me, id](result<std::vector<envelope>> r) {
          caf::anon_send(me, msg::append_done{id, std::move(r)});
        });
        return caf::delegated<msg::append_reply>();
      },
      [self](msg::append_done& done) {
        auto it = self->state.pending.find(done.id);
        if (it == self->state.pending.end()) return;
        auto owed = std::move(it->second);
        self->state.pending.erase(it);
        if (done.committed && !done.committed->empty()) {
          // One commit thread sends these in commit order, so the runner sees positions in order.
          if (auto runner = self->state.dir->get<core_role::runner>()) {
            self->send(runner, msg::log_advanced{done.committed->back().position});
          }
        } else if (!done.committed && done.committed.error().code != errc::version_conflict) {
          spdlog::error("append failed code={} message={}", to_string(done.committed.error().code),
                        done.committed.error().message);
        }
        owed.deliver(msg::append_reply{std::move(done.committed)});
      },
  };
}

}  // namespace

writer_actor spawn_store_writer(caf::actor_system& sys, ports::event_store& store,
                                std::shared_ptr<core_directory> dir) {
  return sys.spawn(store_writer, &store, std::move(dir));
}

}  // namespace atrium::actors
