#pragma once
/// Port: the state of the projections, for `/readyz` and `GET /v1/admin/projections`.
/// Implemented by `atrium::actor_runtime` (asks the projection runner actor).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "events/error.hpp"

namespace atrium::ports {

/// One projection as the runner sees it.
struct projection_info {
  std::string name;                 ///< e.g. `projects`
  std::uint64_t checkpoint = 0;     ///< last position applied (and committed with its rows)
  std::uint64_t lag_positions = 0;  ///< log head minus checkpoint
  /// Milliseconds the oldest event not yet applied has waited since its commit (0 when
  /// caught up): how stale the projection's rows are at most.
  std::int64_t lag_ms = 0;
  /// `catching_up` (start), `live` (caught up, following), `rebuilding` (a new slot is
  /// being built beside the serving one), `stalled` (an error)
  std::string status;
  std::string error;  ///< why stalled; empty otherwise
  int slot = 0;       ///< the storage slot serving reads (0 or 1); a rebuild swaps it
  /// While rebuilding: the position the new slot has reached.
  std::optional<std::uint64_t> rebuild_checkpoint;
};

/// The event relay's progress (Kafka; docs/integrations.md).
struct relay_info {
  std::string destination;          ///< e.g. `kafka://127.0.0.1:9092/atrium.events`
  std::uint64_t checkpoint = 0;     ///< every event up to here was acknowledged
  std::uint64_t lag_positions = 0;  ///< head − checkpoint
  double lag_seconds = 0;           ///< age of the oldest unacknowledged event (commit time to now)
  std::uint64_t in_flight = 0;      ///< published, not yet acknowledged
  /// `live` (nothing or little unacknowledged, brokers reachable), `catching_up`
  /// (a backlog is being delivered), `degraded` (brokers unreachable, or no
  /// acknowledgement for a while although events wait; `error` says why).
  std::string status = "live";
  std::string error;
};

/// Every projection, with the log head at the time of the report.
struct projections_report {
  std::uint64_t head = 0;  ///< last committed position
  /// True once every projection has caught up with the log as it was when the server
  /// started (and stays true): what `/readyz` reports.
  bool ready = false;
  std::vector<projection_info> projections;
  std::optional<relay_info> relay;  ///< absent when no relay runs (Kafka off)
};

/// Whether the server can serve and write now: what `/healthz` reports (and `/readyz`
/// requires besides caught-up projections).
struct health_report {
  bool healthy = true;            ///< false while a core actor is down or the store cannot write
  std::vector<std::string> down;  ///< core actors down, each `<name>: <why>`
  std::optional<error> store;     ///< why the event store cannot write (disk full, a storage failure)
};

/// Read access to the projections' progress, and the server's health.
class projection_monitor {
 public:
  virtual ~projection_monitor() = default;
  /// The health now; thread-safe, answers at once (no round trip through an actor, so a
  /// wedged actor system cannot hang the liveness probe).
  [[nodiscard]] virtual health_report health() const = 0;
  /// Calls `done` once, on an actor-system thread, with the current report.
  virtual void report(std::function<void(projections_report)> done) = 0;
  /// Starts rebuilding projection `name` online: a new slot is built from position 0
  /// beside the serving one, which keeps serving until the new one has caught up; then
  /// they swap and the old slot is emptied. `done` gets `not_found` (no such
  /// projection), `failed_precondition` (already rebuilding) or success once started.
  virtual void rebuild(std::string name, std::function<void(result<void>)> done) = 0;
};

}  // namespace atrium::ports
