#pragma once
/// Shared by the actors that act on a read model and must not act on a stale one (the
/// scheduler, the container reconciler): reload the model only once the projections have
/// applied the log's current head. CAF-only; include from actor .cpp files.

#include <chrono>
#include <cstdint>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "actors/supervision.hpp"

namespace atrium::actors {

/// Asks the projection runner to tell when it has applied the log's current head, then
/// calls `load(self, head)`; one request in flight at most. Nothing when the model is
/// already loaded at the head or no runner is up. Call it once per tick.
///
/// `self`'s state needs: `store` (pointer with `head_position()`), `dir` (the role
/// directory, `get<core_role::runner>()`), `bool awaiting`, `std::uint64_t loaded_head`.
template <class Self, class Load>
void reload_when_projected(Self self, Load load) {
  auto& st = self->state;
  const auto head = st.store->head_position();
  if (st.awaiting || head <= st.loaded_head) return;
  auto runner = st.dir->template get<core_role::runner>();
  if (!runner) return;
  st.awaiting = true;
  self->request(runner, caf::infinite, msg::await_position{head})
      .then(
          [self, head, load](msg::projections_ready& r) {
            self->state.awaiting = false;
            if (r.applied >= head) load(self, head);
          },
          [self](caf::error&) { self->state.awaiting = false; });
}

/// Waits until the projections applied `self->state.start_head` (the log's head when the
/// actor started), then calls `ready(self, applied)`. Until then, and while no runner is up
/// or the wait fails, sends `retry` to `self` after 1 s (the actor calls this again on it).
/// `who` names the actor in the warning.
template <class Self, class Atom, class Ready>
void await_start_head(Self self, Atom retry, const char* who, Ready ready) {
  auto runner = self->state.dir->template get<core_role::runner>();
  if (!runner) {
    self->delayed_send(self, std::chrono::seconds(1), retry);
    return;
  }
  self->request(runner, caf::infinite, msg::await_position{self->state.start_head})
      .then(
          [self, retry, ready](msg::projections_ready& r) {
            const auto start = self->state.start_head;
            if (r.applied < start || (r.applied == 0 && start > 0)) {
              self->delayed_send(self, std::chrono::seconds(1), retry);
              return;
            }
            ready(self, r.applied);
          },
          [self, retry, who](caf::error& err) {
            spdlog::warn("{}: projections not awaited: {}", who, caf::to_string(err));
            self->delayed_send(self, std::chrono::seconds(1), retry);
          });
}

}  // namespace atrium::actors
