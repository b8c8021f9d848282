#pragma once
/// Port: a container runtime, the thing that really runs containers. The reconciler
/// (actors/, issue 18) drives a runtime towards each container's desired state and
/// records what it observed as container events. Adapters:
///   - `process` (adapters/process, the embedded default): a container's `command` runs
///     as a supervised child process in its own process group, with its `env`, a working
///     directory under `DATA_DIR/containers/<container_id>`, its ports as environment
///     variables, limits, and a bounded, rotated log;
///   - `docker` (adapters/docker): the Docker Engine API v1.41+ over its unix socket.
///
///   reconciler (its own threads, never a CAF scheduler thread)
///     ├─ list()            at start and periodically: what runs with our labels (adoption)
///     ├─ create()/start()  desired running, nothing observed
///     ├─ stop()/remove()   desired stopped/removed, or an orphan
///     ├─ probe()           health checks (interval/timeout/retries/start period are the
///     │                    reconciler's: one call is one attempt)
///     └─ watch(on_event)   exits and removals as they happen (Docker: `/events`;
///                          process: the supervisor's exit), never polling alone
///
/// Identity: every runtime container carries two labels, `atrium.container_id` (the
/// aggregate's id) and `atrium.instance` (the id of this atriumd installation, kept in
/// DATA_DIR, so several atriumd sharing one Docker daemon never touch each other's
/// containers). `list()` returns only this instance's containers.
///
/// Threading: every member is thread-safe and may block (network, fork, waits) for up to
/// the time given or about 10 s otherwise; callers run them off the CAF scheduler.
/// Errors are values: `unavailable` (the daemon or socket is down), `not_found` (no such
/// runtime container), `invalid_argument` (the spec cannot run on this runtime, e.g. an
/// image missing and not pullable, with the daemon's message), `internal` otherwise.
/// Nothing throws.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"

namespace atrium::ports {

/// Resource limits; nullopt is unlimited.
struct container_limits {
  std::optional<std::uint64_t> memory_bytes;  ///< memory limit in bytes, ≥ 4 MiB
  std::optional<double> cpus;                 ///< CPU share in cores, 0.01–1024 (Docker's `--cpus`)
  std::optional<std::uint32_t> pids;          ///< maximum number of processes/threads, 1–1048576
};

/// One health-check attempt's kind and target, as in the container's spec
/// (`"health": {"http": {"port","path"}} | {"tcp": {"port"}} | {"exec": [...]}`).
/// Timing (`interval_s`, `retries`, `start_period_s`) belongs to the reconciler; only
/// `timeout` is the runtime's.
struct health_probe {
  enum class kind { http, tcp, exec };
  kind type = kind::tcp;
  int port = 0;                              ///< http/tcp: a declared container port, 1–65535
  std::string path = "/";                    ///< http: request path, starts with `/`
  std::vector<std::string> exec;             ///< exec: argv run inside the container (its env and working dir)
  std::chrono::milliseconds timeout{30000};  ///< the attempt fails after this long
};

/// The result of one probe attempt.
struct probe_result {
  bool healthy = false;
  std::string detail;  ///< why it failed (HTTP status, connect error, exit code, timeout), ≤ 1 KiB
};

/// What a runtime needs to create a container. Built by the reconciler from the
/// container's folded state.
struct container_spec {
  std::string container_id;                ///< the aggregate's id (UUID); the `atrium.container_id` label
  std::string name;                        ///< `[a-z0-9][a-z0-9_.-]{0,62}`
  std::string image;                       ///< docker: image reference; process: ignored
  std::vector<std::string> command;        ///< argv; process: required; docker: empty is the image's default
  std::map<std::string, std::string> env;  ///< environment variables
  std::vector<int> ports;  ///< declared ports; process: `PORT_<n>=<n>` and `PORTS` env vars; docker: host network
  container_limits limits;
  std::uint64_t spec_version = 0;  ///< the aggregate version the spec comes from (label `atrium.spec_version`)
};

/// A container as the runtime sees it.
struct runtime_container {
  enum class state {
    created,  ///< created, never started or not running yet
    running,  ///< its process runs
    exited,   ///< its process ended (`exit_code`, `reason`)
  };
  std::string runtime_id;    ///< process: `proc-<container_id>-<n>`; docker: the container id
  std::string container_id;  ///< from the `atrium.container_id` label
  std::uint64_t spec_version = 0;
  state status = state::created;
  std::optional<int> exit_code;     ///< exited: the code; 128+N for signal N; nullopt when unknown
  std::string reason;               ///< exited: `exited`, `killed` (signal), `oom`, `lost` (unknown end) …
  std::optional<std::int64_t> pid;  ///< running: the main process id, when known
  std::optional<std::chrono::system_clock::time_point> started_at;  ///< when its process last started
};

/// A change observed by `watch`.
struct runtime_event {
  enum class kind {
    exited,   ///< the container's process ended (`exit_code`, `reason`)
    removed,  ///< the runtime container is gone (removed behind our back, or by `remove`)
  };
  kind type = kind::exited;
  std::string runtime_id;
  std::string container_id;
  std::optional<int> exit_code;
  std::string reason;
};

/// Which log lines to read.
struct log_request {
  std::size_t tail = 100;  ///< the last N lines first (0: none, only new ones with follow), ≤ 10000
  bool follow = false;     ///< then keep calling `on_line` with new lines until stopped
};

/// Receives one log line (without its newline; stdout and stderr interleaved). Return
/// false to stop reading.
using log_sink = std::function<bool(std::string_view line)>;

/// Cancels a `watch` when destroyed or reset.
class watch_handle {
 public:
  virtual ~watch_handle() = default;
};

/// A container runtime. See the file comment for threading and errors.
class container_runtime {
 public:
  virtual ~container_runtime() = default;

  /// `process` or `docker`.
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;

  /// Creates (does not start) a container for `spec`, labelled with this instance.
  /// Returns its runtime id. Docker pulls a missing image through the daemon first.
  [[nodiscard]] virtual result<std::string> create(const container_spec& spec) = 0;

  /// Starts a created or exited container. `not_found` when it does not exist.
  [[nodiscard]] virtual result<void> start(std::string_view runtime_id) = 0;

  /// Stops a running container: SIGTERM to its process group, SIGKILL after `grace`.
  /// Returns once it has exited. Stopping a container that is not running succeeds.
  [[nodiscard]] virtual result<void> stop(std::string_view runtime_id, std::chrono::seconds grace) = 0;

  /// Removes a container (stopping it first, with a 10 s grace) and what the runtime
  /// kept for it (the process runtime keeps the working directory and logs: those go with
  /// the aggregate). Removing one that does not exist succeeds.
  [[nodiscard]] virtual result<void> remove(std::string_view runtime_id) = 0;

  /// The container's current state, or `not_found`.
  [[nodiscard]] virtual result<runtime_container> inspect(std::string_view runtime_id) = 0;

  /// Every container of this instance (label `atrium.instance`), running or not.
  [[nodiscard]] virtual result<std::vector<runtime_container>> list() = 0;

  /// One health-check attempt against a running container, bounded by `probe.timeout`.
  /// A failed probe is a value (`healthy == false`), not an error; errors are for a
  /// container that does not exist or a runtime that is down.
  [[nodiscard]] virtual result<probe_result> probe(std::string_view runtime_id, const health_probe& probe) = 0;

  /// Reads the container's log: first the last `request.tail` lines, then, with
  /// `follow`, new lines as they come. Blocks the calling thread until `on_line`
  /// returns false, `stop` becomes true (checked at least every 250 ms), or (with
  /// follow) the container is removed; without follow, returns after the tail.
  [[nodiscard]] virtual result<void> logs(std::string_view runtime_id, const log_request& request,
                                          const log_sink& on_line, const std::atomic<bool>& stop) = 0;

  /// Calls `on_event` (on a thread of the runtime's, one call at a time) for every exit
  /// and removal of this instance's containers from now on, until the handle is
  /// destroyed. Events may repeat; the reconciler treats them as hints and `inspect`s.
  [[nodiscard]] virtual std::unique_ptr<watch_handle> watch(std::function<void(const runtime_event&)> on_event) = 0;
};

}  // namespace atrium::ports
