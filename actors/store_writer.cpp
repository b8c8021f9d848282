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

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "actors/supervision.hpp"

namespace atrium::actors {
namespace {

/// The writer's own interface: the public one plus `append_done`, which only its
/// store's commit callback sends (to itself).
using writer_impl = writer_actor::extend<caf::reacts_to<msg::append_done>>;

/// Outcomes handed over by the store's commit thread, drained by the writer. Shared, so
/// that a callback that runs after the writer stopped still has somewhere to put its outcome.
struct completion_queue {
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, result<std::vector<envelope>>>> items;  // guarded by mu
};

struct writer_state {
  ports::event_store* store = nullptr;
  std::shared_ptr<completion_queue> completed = std::make_shared<completion_queue>();
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
        // The first outcome put into an empty queue sends the one message that makes the
        // writer drain it; later ones ride along.
        writer_impl me = self;
        self->state.store->append_async(std::move(req.appends),
                                        [me, id, queue = self->state.completed](result<std::vector<envelope>> r) {
                                          bool first = false;
                                          {
                                            std::lock_guard lock(queue->mu);
                                            first = queue->items.empty();
                                            queue->items.emplace_back(id, std::move(r));
                                          }
                                          if (first) caf::anon_send(me, msg::append_done{});
                                        });
        return caf::delegated<msg::append_reply>();
      },
      [self](msg::append_done) {
        std::vector<std::pair<std::uint64_t, result<std::vector<envelope>>>> items;
        {
          std::lock_guard lock(self->state.completed->mu);
          items.swap(self->state.completed->items);
        }
        // One commit thread queues outcomes in commit order: the last committed position
        // among them is the log's new head, told to the runner once for all of them.
        std::uint64_t advanced = 0;
        for (const auto& [id, committed] : items) {
          if (committed && !committed->empty()) {
            advanced = std::max(advanced, committed->back().position);
          } else if (!committed && committed.error().code != errc::version_conflict) {
            spdlog::error("append failed code={} message={}", to_string(committed.error().code),
                          committed.error().message);
          }
        }
        if (advanced > 0) {
          if (auto runner = self->state.dir->get<core_role::runner>()) self->send(runner, msg::log_advanced{advanced});
        }
        for (auto& [id, committed] : items) {
          auto it = self->state.pending.find(id);
          if (it == self->state.pending.end()) continue;
          auto owed = std::move(it->second);
          self->state.pending.erase(it);
          owed.deliver(msg::append_reply{std::move(committed)});
        }
      },
  };
}

}  // namespace

writer_actor spawn_store_writer(caf::actor_system& sys, ports::event_store& store,
                                std::shared_ptr<core_directory> dir) {
  return sys.spawn(store_writer, &store, std::move(dir));
}

}  // namespace atrium::actors
