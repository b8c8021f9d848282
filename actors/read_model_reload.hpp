#pragma once
/// Shared by the actors that act on a read model and must not act on a stale one (the
/// scheduler, the container reconciler): reload the model only once the projections have
/// applied the log's current head. CAF-only; include from actor .cpp files.

#include <cstdint>

#include <caf/all.hpp>

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

}  // namespace atrium::actors
