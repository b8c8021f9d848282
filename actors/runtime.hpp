#pragma once
/// The actor system of atriumd (CAF 0.17), behind a plain C++ interface so that
/// adapters and main() need no CAF headers.
///
///   command_bus::execute ─▶ gateway ─▶ registry ─spawn/hydrate─▶ entity actor (user,
///                                                                  project, group, connection,
///                                                                  job, container)
///                                                                  │ decide → events
///                                                                  ▼
///                              projection runner ◀─committed─ event-store writer ─▶ RocksDB
///                              (users, projects, audit)            (synced WriteBatch)
///
/// * One actor per entity, spawned on first use and hydrated from its stream; its
///   mailbox serializes commands on that entity (the append is awaited).
/// * One writer actor owns appends; after each commit it sends the events, in position
///   order, to the projection runner.
/// * The projection runner applies each projection and writes its rows and checkpoint
///   in one batch; it catches up from the checkpoints at start and whenever it sees a gap.
///
/// Jobs: a job dispatcher (when `runtime_config::jobs.results` is set) follows the log,
/// starts queued jobs on threads of its own and reports their progress and outcome as
/// the system principal (actors/job_dispatcher.cpp). Running attempts belong to the
/// runtime, not to the actor, so a restarted dispatcher adopts them; the destructor
/// cancels and awaits them.
///
/// Schedules: a scheduler (when `runtime_config::schedules` is set) fires them at their
/// cron instants, recording `schedule.fired` as the system principal and submitting the
/// run's jobs as each schedule's owner (actors/scheduler.cpp, docs/jobs.md "Schedules").
///
/// Containers: a reconciler (when `runtime_config::containers` has runtimes) drives the
/// container runtimes to each container's desired state and records what it observed as
/// the system principal (actors/container_reconciler.cpp, docs/containers.md).
///
/// Supervision (docs/architecture.md, "Supervision and failure"): a supervisor actor
/// monitors the gateway, the registry, the writer, the projection runner, the
/// subscription hub and the relay. One that fails is marked down (`health()` says so),
/// its pending requests are answered `unavailable`, and it is restarted after a short
/// back-off; peers find the new one through a directory, so nothing else restarts. An
/// actor that fails more than `max_restarts` times within `restart_window` (or cannot be
/// restarted) is beyond repair: `on_fatal` is called once and health stays down.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <utility>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ports/command_bus.hpp"
#include "ports/container_runtime.hpp"
#include "ports/event_publisher.hpp"
#include "ports/event_store.hpp"
#include "ports/job_executor.hpp"
#include "ports/job_leases.hpp"
#include "ports/metrics.hpp"
#include "ports/monitor.hpp"
#include "ports/queries.hpp"
#include "ports/result_store.hpp"
#include "ports/vault.hpp"
#include "ports/read_model_store.hpp"
#include "ports/subscriptions.hpp"
#include "ports/read_model.hpp"
#include "events/schedule/zone.hpp"

namespace atrium {

/// Settings of the job dispatcher (actors/job_dispatcher.cpp): the ports it runs jobs
/// through and its bounds. Every pointer must outlive the runtime. The dispatcher runs
/// when `results` is set; `slots == 0` keeps it from starting any job (jobs stay
/// queued; orphans of an earlier run are still requeued or failed, results expire).
struct job_execution {
  /// Executors by key: a `sql` job's connection driver (`sqlite`, `postgres`), or
  /// `script` for script jobs. A job whose key has none fails with a clear error.
  std::map<std::string, ports::job_executor*> executors;
  ports::result_store* results = nullptr;                       ///< where attempts write; unset: no dispatcher
  ports::secret_vault* vault = nullptr;                         ///< opens a connection's credentials
  const ports::connection_queries* connections = nullptr;       ///< a job's connection (driver, params, vault ref)
  std::size_t slots = 0;                                        ///< attempts running at once, at most
  ports::result_limits limits;                                  ///< bounds of each result
  std::chrono::seconds result_ttl{std::chrono::hours(24 * 7)};  ///< results expire after this; 0: never
  std::chrono::seconds expiry_interval{60};                     ///< how often expired results are swept
  std::string runner_name = "atriumd";              ///< runner names are `<runner_name>/slot-<n>` (n from 1)
  std::string checkpoint_name = "dispatcher:jobs";  ///< its checkpoint in the read-model store
  /// At shutdown, running attempts are cancelled and awaited this long at most.
  std::chrono::milliseconds stop_wait{std::chrono::seconds(5)};
  /// A job leased to a remote worker (ports/job_leases.hpp) that is not heartbeated for
  /// this long is lost: requeued as a new attempt, or failed when none is left.
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
};

/// Settings of the scheduler (actors/scheduler.cpp), which fires schedules at their cron
/// instants and runs their jobs as the schedules' owners. It runs when both `zones` and
/// `queries` are set; both must outlive the runtime.
struct schedule_execution {
  std::shared_ptr<const zone_database> zones;                      ///< IANA time zones of the schedules
  const ports::queries* queries = nullptr;                         ///< schedules, jobs, users, projects, connections
  std::chrono::milliseconds tick{200};                             ///< how often due instants are looked for
  std::chrono::milliseconds owner_check{std::chrono::seconds(5)};  ///< how often owners' rights are checked
};

/// Settings of the container reconciler (actors/container_reconciler.cpp, docs/containers.md).
/// It runs when `runtimes` is not empty and `queries` is set; both must outlive the runtime.
struct container_execution {
  /// The runtimes by name (`process`, `docker`): a container runs on the one its spec
  /// names; one whose runtime is missing here is left alone (logged once).
  std::map<std::string, std::shared_ptr<ports::container_runtime>> runtimes;
  const ports::queries* queries = nullptr;  ///< the `containers` read model
  std::string instance;                     ///< this installation's id: orphans are recorded on `runtime-<instance>`
  std::chrono::milliseconds tick{200};      ///< how often containers are reconciled
  std::chrono::milliseconds resync{std::chrono::seconds(5)};  ///< how often every runtime is listed
  std::chrono::seconds stop_grace{10};                        ///< SIGTERM to SIGKILL when stopping a container
  std::size_t threads = 4;                                    ///< runtime calls in flight at once, at most
};

/// Settings of the actor system.
struct runtime_config {
  std::size_t worker_threads = 2;      ///< CAF scheduler threads
  std::uint64_t snapshot_every = 100;  ///< an entity snapshots its state every N events; 0 disables
  std::chrono::milliseconds passivate_after{std::chrono::minutes(5)};  ///< idle entities stop after this
  std::size_t max_live_entities = 100000;                              ///< entity actors alive at once, at most
  /// True: `start` applies the whole log to the projections before it returns (tools,
  /// tests). False (the server): the projection runner catches up in the background
  /// while the API serves; `report().ready` turns true when it has.
  bool catch_up_before_start = false;
  /// When set, an event relay publishes the log to it (Kafka; must outlive the runtime).
  ports::event_publisher* publisher = nullptr;
  /// The relay's checkpoint name in the read-model store (one per destination topic).
  std::string relay_checkpoint = "relay:atrium.events";
  /// A subscriber (WebSocket, SSE) that takes no replayed event for this long while its
  /// queue is congested is closed as a slow consumer.
  std::chrono::milliseconds subscriber_stall_limit{std::chrono::seconds(30)};
  /// A failed core actor is restarted after this delay, doubled for each earlier failure
  /// of the same actor within `restart_window` (at most 5 s).
  std::chrono::milliseconds restart_delay{100};
  /// Failures of one core actor within `restart_window` that are still restarted; one
  /// more is fatal.
  int max_restarts = 5;
  std::chrono::milliseconds restart_window{std::chrono::seconds(60)};
  /// Called once, on an actor thread, with one line saying why, when supervision gives
  /// up; the server then exits non-zero so that its service manager restarts it. Unset:
  /// the line is logged (critical) and `health()` stays unhealthy.
  std::function<void(const std::string&)> on_fatal;
  /// The job dispatcher's ports and bounds (none: no job runs in this process).
  job_execution jobs;
  /// The scheduler's ports (none: no schedule fires in this process).
  schedule_execution schedules;
  /// The container reconciler's runtimes (none: containers stay as declared).
  container_execution containers;
};

/// The running actor system.
class actor_runtime final : public ports::command_bus,
                            public ports::projection_monitor,
                            public ports::subscription_hub,
                            public ports::job_leases,
                            public ports::metrics_source {
 public:
  /// Loads the projections' checkpoints (and, with `catch_up_before_start`, applies the
  /// log up to its head, blocking), then spawns the actors.
  /// `store` and `read_models` must outlive the runtime. Errors: those of the stores.
  [[nodiscard]] static result<std::unique_ptr<actor_runtime>> start(
      ports::event_store& store, ports::read_model_store& read_models,
      std::vector<std::unique_ptr<projection>> projections, runtime_config config = {});

  /// Stops every actor and waits for them; pending commands complete with `unavailable`.
  ~actor_runtime() override;
  actor_runtime(const actor_runtime&) = delete;
  actor_runtime& operator=(const actor_runtime&) = delete;

  void execute(std::string user_id, user_command cmd, ports::command_context ctx, ports::completion done) override;
  void execute(std::string project_id, project_command cmd, ports::command_context ctx,
               ports::completion done) override;
  void execute(std::string group_id, group_command cmd, ports::command_context ctx, ports::completion done) override;
  void execute(std::string connection_id, connection_command cmd, ports::command_context ctx,
               ports::completion done) override;
  void execute(std::string job_id, job_command cmd, ports::command_context ctx, ports::completion done) override;
  void execute(std::string schedule_id, schedule_command cmd, ports::command_context ctx,
               ports::completion done) override;
  void execute(std::string container_id, container_command cmd, ports::command_context ctx,
               ports::completion done) override;
  void await_projections(std::uint64_t position, std::function<void()> done) override;
  void report(std::function<void(ports::projections_report)> done) override;
  void rebuild(std::string name, std::function<void(result<void>)> done) override;
  /// Unhealthy while a core actor is down (restarting, or given up on) or the store
  /// cannot write (`event_store::write_fault`). Thread-safe, answers at once.
  [[nodiscard]] ports::health_report health() const override;
  void record(std::string stream, proposed_event event, std::function<void(result<std::uint64_t>)> done) override;
  void subscribe(std::shared_ptr<ports::subscriber> s, ports::subscription sub) override;
  void unsubscribe(std::shared_ptr<ports::subscriber> s, std::string id) override;
  void drop(std::shared_ptr<ports::subscriber> s) override;

  // ports::job_leases (actors/worker_leases.cpp): `unavailable` without a job dispatcher.
  void claim(ports::lease_claim claim, std::function<void(result<std::optional<ports::leased_job>>)> done) override;
  [[nodiscard]] result<ports::lease_renewal> heartbeat(const std::string& lease_id, const std::string& worker,
                                                       const std::string& owner,
                                                       const ports::job_progress& progress) override;
  [[nodiscard]] result<ports::upload_ack> upload(const std::string& lease_id, const std::string& worker,
                                                 const std::string& owner, ports::lease_upload batch) override;
  [[nodiscard]] result<void> complete(const std::string& lease_id, const std::string& worker, const std::string& owner,
                                      const ports::lease_completion& done) override;
  [[nodiscard]] std::vector<ports::worker_info> workers() const override;

  /// ports::metrics_source: entity actors live, their limit and passivations so far
  /// (published by the registry, read without a round trip), and health as 0/1.
  void collect(std::vector<ports::metric_family>& out) const override;

  /// Entity actors alive now and passivated so far (blocks briefly; for tests and
  /// benchmarks).
  [[nodiscard]] std::pair<std::size_t, std::uint64_t> entity_stats();

  /// Makes core actor `name` (`event-store-writer`, `entity-registry`, `gateway`,
  /// `projection-runner`, `subscription-hub`, `event-relay`, `job-dispatcher`, `scheduler`) fail as a crash would: an
  /// exit message with reason `unhandled_exception`, or `kill` (which no handler can
  /// intercept). For tests of supervision. False if no such actor runs.
  bool inject_failure(std::string_view name, bool kill = false);

  /// Runs a user command and blocks until it completes. For startup code only (never
  /// on an I/O thread).
  [[nodiscard]] result<ports::command_outcome> execute_blocking(std::string user_id, user_command cmd,
                                                                ports::command_context ctx);

  struct impl;

 private:
  explicit actor_runtime(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace atrium
