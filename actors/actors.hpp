#pragma once
/// Spawn functions of Atrium's actors (see runtime.hpp for the whole picture). The
/// writer, the registry, the runner and the hub are typed actors: their interfaces are
/// in actors/interfaces.hpp.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ports/event_publisher.hpp"
#include "ports/event_store.hpp"
#include "ports/metrics.hpp"
#include "ports/monitor.hpp"
#include "ports/read_model_store.hpp"
#include "actors/interfaces.hpp"
#include "actors/supervision.hpp"
#include "ports/read_model.hpp"
#include "actors/runtime.hpp"

namespace atrium::actors {

/// Applies committed events to projections. Shared by the runner actor and startup.
///
/// Each projection is stored in one of two slots (ports::slot_name); the engine applies
/// events to the active slot, which serves reads. An online rebuild
/// (`start_rebuild`) fills the other slot from position 0 with a fresh instance of the
/// projection, beside the active one, which keeps serving and following the log; once
/// the rebuild has reached the active checkpoint the slots swap (`activate`) and the old
/// slot is emptied.
class projection_engine {
 public:
  projection_engine(ports::event_store& store, ports::read_model_store& read_models,
                    std::vector<std::unique_ptr<projection>> projections);

  /// Loads the checkpoints and applies every stored event after the lowest of them.
  /// Returns the position all projections have reached.
  [[nodiscard]] result<std::uint64_t> catch_up();

  /// Loads the active slots and their checkpoints only (the runner catches up
  /// afterwards, page by page).
  [[nodiscard]] result<void> load_checkpoints();

  /// One projection's progress.
  struct progress {
    std::string name;
    std::uint64_t checkpoint = 0;  ///< of the active slot
    int slot = 0;                  ///< the active slot
    /// Set while a rebuild runs: the rebuilding slot's checkpoint.
    std::optional<std::uint64_t> rebuild_checkpoint;
  };
  /// Every projection's progress, in runner order.
  [[nodiscard]] std::vector<progress> checkpoints() const;

  /// The store the engine reads (for lag figures).
  [[nodiscard]] const ports::event_store& store() const { return store_; }

  /// Applies the stored events after the position all projections have reached, in
  /// pages of 1000, until the log has no more or `max_pages` were applied. Returns the
  /// position all projections have reached.
  [[nodiscard]] result<std::uint64_t> follow(std::size_t max_pages = SIZE_MAX);

  /// The position every projection has applied (active slots).
  [[nodiscard]] std::uint64_t applied() const;

  /// Starts rebuilding projection `name` in its inactive slot, from position 0, with a
  /// new instance made by `make`. Errors: `not_found` (no such projection),
  /// `failed_precondition` (a rebuild of it is running), the store's errors.
  [[nodiscard]] result<void> start_rebuild(std::string_view name, std::unique_ptr<projection> fresh);

  /// Advances every running rebuild by up to `max_pages` pages; a rebuild that has
  /// caught up with its active slot swaps in. Returns true while rebuilds remain.
  [[nodiscard]] result<bool> rebuild_step(std::size_t max_pages);

 private:
  class overlay;
  /// Rows an overlay holds before its slot is committed, whatever the page count.
  static constexpr std::size_t k_max_pending_rows = 50'000;

  struct slot_state {
    slot_state(std::unique_ptr<projection> p, int s, std::uint64_t cp);
    slot_state(slot_state&&) noexcept;
    slot_state& operator=(slot_state&&) noexcept;
    ~slot_state();
    std::unique_ptr<projection> impl;
    int slot = 0;
    std::uint64_t checkpoint = 0;      ///< committed (stored with the rows)
    std::uint64_t position = 0;        ///< applied, in `pending` until committed
    std::unique_ptr<overlay> pending;  ///< rows read and changed since the checkpoint
    [[nodiscard]] std::string storage() const { return ports::slot_name(impl->name(), slot); }
    [[nodiscard]] bool full() const;
  };
  /// Applies the contiguous events after `target.position` to its overlay (in memory).
  void apply_to(slot_state& target, const std::vector<envelope>& batch);
  /// Writes the overlay's changed rows with the checkpoint `target.position` in one
  /// atomic write; on error the slot returns to its last checkpoint.
  result<void> commit(slot_state& target);

  ports::event_store& store_;
  ports::read_model_store& read_models_;
  std::vector<slot_state> active_;
  std::vector<std::optional<slot_state>> rebuilding_;  // same index as active_
};

/// The projection runner: handles `log_advanced` (reads the new events from the store
/// and applies them), `await_position` and `projection_status_request`. It starts by
/// catching up with the log (`start_head`, the head when the server started) page by
/// page, answering messages in between; until then the report says not ready.
/// Once the projections have applied a position it tells the hub (`log_advanced`, found
/// in `dir`). A restarted runner first reloads the engine's checkpoints (dropping rows
/// applied in memory and not committed) and catches up from there.
runner_actor spawn_projection_runner(caf::actor_system& sys, std::shared_ptr<projection_engine> engine,
                                     std::uint64_t start_head, std::shared_ptr<core_directory> dir);

/// The subscription hub (hub_core.hpp): handles `hub_subscribe`, `hub_unsubscribe`,
/// `hub_drop` and `log_advanced` (from the projection runner, once projections applied
/// it). Resolves a job's project from the `jobs` read model. A subscriber that takes no
/// replayed event for `stall_limit` is cut as a slow consumer.
hub_actor spawn_subscription_hub(caf::actor_system& sys, ports::event_store& store,
                                 ports::read_model_store& read_models, std::chrono::milliseconds stall_limit);

/// Settings of the event relay (actors/relay.cpp).
struct relay_options {
  std::string checkpoint_name = "relay:atrium.events";  ///< its checkpoint in the read-model store
  std::size_t max_in_flight = 10'000;                   ///< published and unacknowledged, at most
  std::chrono::milliseconds poll_interval{5};           ///< how often an idle relay looks at the log head
  std::chrono::seconds stall_after{10};  ///< no acknowledgement for this long while events wait: degraded
  std::uint64_t live_lag = 1000;         ///< lag (positions) up to which the relay counts as live
};

/// The relay's latest status, written by the relay actor, read by reports (any thread).
struct relay_status_cell {
  std::mutex mu;
  ports::relay_info info;
};

/// The event relay: publishes every committed event after its checkpoint to
/// `publisher`, in position order, with at most `max_in_flight` unacknowledged; the
/// checkpoint advances over contiguous acknowledged positions only and is saved (not
/// synced) as it moves. A failed delivery makes it publish again from the checkpoint
/// (at least once). Errors: reading the checkpoint.
[[nodiscard]] result<caf::actor> spawn_relay(caf::actor_system& sys, ports::event_store& store,
                                             ports::read_model_store& checkpoints, ports::event_publisher& publisher,
                                             relay_options options, std::shared_ptr<relay_status_cell> status);

/// The event-store writer: handles `append_request`, forwards commits to the runner
/// (found in `dir`). Appends it still owes when it stops are answered `unavailable`.
writer_actor spawn_store_writer(caf::actor_system& sys, ports::event_store& store, std::shared_ptr<core_directory> dir);

/// The entity registry's counts, written by the registry, read by any thread (metrics).
struct entity_counts {
  ports::gauge live;          ///< entity actors alive now
  ports::counter passivated;  ///< entity actors stopped for idleness or the `max_live` bound, since start
};

/// Settings of the entity registry.
struct registry_options {
  std::uint64_t snapshot_every = 100;                                  ///< entities snapshot every N events (0: never)
  std::chrono::milliseconds passivate_after{std::chrono::minutes(5)};  ///< idle time before an entity stops
  std::size_t max_live = 100000;  ///< entity actors alive at once, at most (beyond: least recently used stop)
  /// Where the registry publishes its counts for /metrics (kept across registry restarts);
  /// nullptr: nowhere.
  std::shared_ptr<entity_counts> counts;
};

/// The entity registry: routes `user_command_msg` / `project_command_msg` to the
/// entity's actor, spawning and hydrating it (newest snapshot + later events) on first
/// use, and passivates entities (stops their actors) that were idle for
/// `passivate_after`, or the least recently used ones while more than `max_live` live.
/// Answers `registry_stats_request` with `registry_stats`. Entity actors find the
/// writer in `dir`. An entity actor that fails (an exception, an exit) answers its
/// pending command `unavailable` and is forgotten; the next command on that entity
/// spawns and hydrates a fresh one. When the registry stops, its entity actors stop with
/// it and every command it still owes is answered `unavailable`.
registry_actor spawn_registry(caf::actor_system& sys, ports::event_store& store, std::shared_ptr<core_directory> dir,
                              registry_options options);

/// The attempts running in this process (job_dispatcher.cpp): owned by the runtime, not
/// by the dispatcher actor, so that a restarted dispatcher adopts them (a job never runs
/// twice at the same time) and the runtime can stop them when it stops. Thread-safe.
class job_attempts;

/// An empty table of running attempts.
[[nodiscard]] std::shared_ptr<job_attempts> make_job_attempts();

/// Stops every running attempt for a shutdown: from now on no attempt starts and no
/// outcome is reported (the next start treats the jobs as orphans); each running one is
/// cancelled (`cancel_signal::request`) and its thread joined, for `wait` at most in
/// all (a thread still running then is detached).
void stop_job_attempts(job_attempts& attempts, std::chrono::milliseconds wait);

/// The job dispatcher: follows the log from its checkpoint (`jobs.checkpoint_name`, a
/// low-water mark before the oldest unfinished job), keeps the unfinished jobs in memory,
/// starts queued ones fairly across projects (round robin over projects, FIFO within
/// one) on at most `jobs.slots` threads, appends their progress (at most 2 per second
/// per job) and exactly one terminal event as the system principal, cancels on
/// `job.cancel_requested` and on timeouts, requeues or fails orphans of an earlier run
/// after its first catch-up, and expires old results. Finds the registry and the runner
/// in `dir`. Errors: reading the checkpoint.
[[nodiscard]] result<dispatcher_actor> spawn_job_dispatcher(caf::actor_system& sys, ports::event_store& store,
                                                            ports::read_model_store& checkpoints, job_execution jobs,
                                                            std::shared_ptr<job_attempts> attempts,
                                                            std::shared_ptr<core_directory> dir);

/// The scheduler (scheduler.cpp): once the projections applied the log's head at start,
/// fires every active schedule of the `schedules` read model at its cron instants (within
/// a tick, 200 ms by default): appends `schedule.fired` as the system principal, then
/// submits the run's jobs as the schedule's owner (a `run_cells` run one cell after the
/// other, stopping at the first that does not succeed). Instants missed before it became
/// ready follow each schedule's `catch_up`. Pauses a schedule whose owner lost the right
/// to run it. Finds the registry and the runner in `dir`. Errors: `invalid_argument`
/// without zones or queries.
[[nodiscard]] result<caf::actor> spawn_scheduler(caf::actor_system& sys, ports::event_store& store,
                                                 schedule_execution schedules, std::shared_ptr<core_directory> dir);

/// Threads on which the container reconciler runs runtime calls (they block): owned by
/// the actor runtime, so a restarted reconciler keeps them; joined at shutdown.
class container_pool;

/// A pool of `threads` threads (at least one).
[[nodiscard]] std::shared_ptr<container_pool> make_container_pool(std::size_t threads);

/// Drops queued work and joins the threads (calls in progress finish first). Idempotent.
void stop_container_pool(container_pool& pool);

/// The container reconciler (container_reconciler.cpp, docs/containers.md): once the
/// projections applied the log's head at start, lists every runtime's containers and
/// adopts them, then drives each container of the `containers` read model to its desired
/// state through its runtime (runtime calls on `pool`, never on a CAF thread), records
/// what it observed as the system principal (started, exited, restarted, health_changed,
/// stopped), restarts under each container's policy with back-off, probes health, rolls
/// containers whose spec changed, and stops and removes runtime containers the log does
/// not account for (`runtime.orphan_removed` on `runtime-<instance>`). Errors:
/// `invalid_argument` without runtimes or queries.
[[nodiscard]] result<caf::actor> spawn_container_reconciler(caf::actor_system& sys, ports::event_store& store,
                                                            container_execution containers,
                                                            std::shared_ptr<container_pool> pool,
                                                            std::shared_ptr<core_directory> dir);

}  // namespace atrium::actors
