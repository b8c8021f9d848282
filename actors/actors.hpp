#pragma once
/// Spawn functions of Atrium's actors (see runtime.hpp for the whole picture).

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <memory>
#include <vector>

#include "actors/ports/event_store.hpp"
#include "actors/ports/read_model_store.hpp"
#include "projections/read_model.hpp"

namespace atrium::actors {

/// Applies committed events to projections. Shared by the runner actor and startup.
class projection_engine {
 public:
  projection_engine(ports::event_store& store, ports::read_model_store& read_models,
                    std::vector<std::unique_ptr<projection>> projections);

  /// Loads the checkpoints and applies every stored event after the lowest of them.
  /// Returns the position all projections have reached.
  [[nodiscard]] result<std::uint64_t> catch_up();

  /// Applies a batch of committed events (in position order). Events at or below a
  /// projection's checkpoint are skipped; a gap before the batch is filled from the
  /// store first. Returns the position all projections have reached.
  [[nodiscard]] result<std::uint64_t> apply(const std::vector<envelope>& batch);

  /// The position every projection has applied.
  [[nodiscard]] std::uint64_t applied() const;

 private:
  result<void> apply_to(std::size_t index, const std::vector<envelope>& batch);

  ports::event_store& store_;
  ports::read_model_store& read_models_;
  std::vector<std::unique_ptr<projection>> projections_;
  std::vector<std::uint64_t> checkpoints_;
};

/// The projection runner: handles `committed_batch` and `await_position`.
caf::actor spawn_projection_runner(caf::actor_system& sys, std::shared_ptr<projection_engine> engine);

/// The event-store writer: handles `append_request`, forwards commits to `runner`.
caf::actor spawn_store_writer(caf::actor_system& sys, ports::event_store& store, caf::actor runner);

/// The entity registry: routes `user_command_msg` / `project_command_msg` to the
/// entity's actor, spawning and hydrating it (newest snapshot + later events) on first
/// use. Entity actors store a snapshot every `snapshot_every` events (0: never).
caf::actor spawn_registry(caf::actor_system& sys, ports::event_store& store, caf::actor writer,
                          std::uint64_t snapshot_every);

}  // namespace atrium::actors
