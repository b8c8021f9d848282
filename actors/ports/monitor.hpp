#pragma once
/// Port: the state of the projections, for `/readyz` and `GET /v1/admin/projections`.
/// Implemented by `atrium::actor_runtime` (asks the projection runner actor).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace atrium::ports {

/// One projection as the runner sees it.
struct projection_info {
  std::string name;                 ///< e.g. `projects`
  std::uint64_t checkpoint = 0;     ///< last position applied (and committed with its rows)
  std::uint64_t lag_positions = 0;  ///< log head minus checkpoint
  /// Milliseconds the oldest event not yet applied has waited since its commit (0 when
  /// caught up): how stale the projection's rows are at most.
  std::int64_t lag_ms = 0;
  std::string status;  ///< `catching_up` (start), `live` (caught up, following), `stalled` (an error)
  std::string error;   ///< why stalled; empty otherwise
};

/// Every projection, with the log head at the time of the report.
struct projections_report {
  std::uint64_t head = 0;  ///< last committed position
  /// True once every projection has caught up with the log as it was when the server
  /// started (and stays true): what `/readyz` reports.
  bool ready = false;
  std::vector<projection_info> projections;
};

/// Read access to the projections' progress.
class projection_monitor {
 public:
  virtual ~projection_monitor() = default;
  /// Calls `done` once, on an actor-system thread, with the current report.
  virtual void report(std::function<void(projections_report)> done) = 0;
};

}  // namespace atrium::ports
