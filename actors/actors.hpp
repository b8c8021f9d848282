#pragma once
/// Spawn functions of Atrium's actors (see runtime.hpp for the whole picture).

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
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

  /// Loads the checkpoints only (the runner catches up afterwards, page by page).
  [[nodiscard]] result<void> load_checkpoints();

  /// Each projection's name and checkpoint, in runner order.
  [[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> checkpoints() const;

  /// The store the engine reads (for lag figures).
  [[nodiscard]] const ports::event_store& store() const { return store_; }

  /// Applies the stored events after the position all projections have reached, in
  /// pages of 1000, until the log has no more or `max_pages` were applied. Returns the
  /// position all projections have reached.
  [[nodiscard]] result<std::uint64_t> follow(std::size_t max_pages = SIZE_MAX);

  /// The position every projection has applied.
  [[nodiscard]] std::uint64_t applied() const;

 private:
  result<void> apply_to(std::size_t index, const std::vector<envelope>& batch);

  ports::event_store& store_;
  ports::read_model_store& read_models_;
  std::vector<std::unique_ptr<projection>> projections_;
  std::vector<std::uint64_t> checkpoints_;
};

/// The projection runner: handles `log_advanced` (reads the new events from the store
/// and applies them), `await_position` and `projection_status_request`. It starts by
/// catching up with the log (`start_head`, the head when the server started) page by
/// page, answering messages in between; until then the report says not ready.
caf::actor spawn_projection_runner(caf::actor_system& sys, std::shared_ptr<projection_engine> engine,
                                   std::uint64_t start_head);

/// The event-store writer: handles `append_request`, forwards commits to `runner`.
caf::actor spawn_store_writer(caf::actor_system& sys, ports::event_store& store, caf::actor runner);

/// Settings of the entity registry.
struct registry_options {
  std::uint64_t snapshot_every = 100;                                  ///< entities snapshot every N events (0: never)
  std::chrono::milliseconds passivate_after{std::chrono::minutes(5)};  ///< idle time before an entity stops
  std::size_t max_live = 100000;  ///< entity actors alive at once, at most (beyond: least recently used stop)
};

/// The entity registry: routes `user_command_msg` / `project_command_msg` to the
/// entity's actor, spawning and hydrating it (newest snapshot + later events) on first
/// use, and passivates entities (stops their actors) that were idle for
/// `passivate_after`, or the least recently used ones while more than `max_live` live.
/// Answers `registry_stats_request` with `registry_stats`.
caf::actor spawn_registry(caf::actor_system& sys, ports::event_store& store, caf::actor writer,
                          registry_options options);

}  // namespace atrium::actors
