#pragma once
/// Port: executing one job attempt. The dispatcher (actors/job_dispatcher.cpp) hands a
/// `job_spec` to the executor of its kind on a thread of its own; the executor streams
/// the result into a `result_writer` (ports/result_store.hpp), reports progress, and
/// returns how it ended. Adapters: adapters/connectors (`sqlite`, `postgres`) and
/// adapters/process (`script`: python, bash).
///
///   dispatcher thread slot ──run(spec, writer, progress, cancel)──▶ executor
///        ▲  progress (rows, bytes, percent?) ◀──────────────────────┤ (any rate; the
///        │                                                           │  dispatcher throttles)
///        └── cancel.request() (cancel or timeout) ──interrupt──────▶ │ PQcancel /
///                                                                    │ sqlite3_interrupt /
///                                                                    │ SIGTERM → SIGKILL
///   job_outcome ◀────────────────────────────────────────────────────┘
///
/// Nothing here assumes the executor runs inside atriumd: a remote worker (issue 16)
/// runs the same executors with a spec it received over the wire.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ports/result_store.hpp"

namespace atrium::ports {

/// Everything an executor needs to run one attempt. Holds secrets (`credentials`):
/// never log it; the dispatcher wipes it after the run.
struct job_spec {
  std::string job_id;      ///< UUID
  std::string project_id;  ///< UUID
  std::string kind;        ///< `sql` or `script`
  std::string language;    ///< `script`: `python` or `bash`; empty for `sql`
  std::string source;      ///< the SQL text or the script, 1–100000 bytes
  std::string driver;      ///< `sql`: the connection's driver (`sqlite`, `postgres`); empty for `script`
  nlohmann::json params;   ///< `sql`: the connection's params (e.g. `{"path"}`, `{"host","port",…}`)
  nlohmann::json credentials = nlohmann::json::object();  ///< `sql`: from the vault (`{"user","password"}`)
  std::uint32_t attempt = 1;                              ///< 1 for the first run
  std::chrono::seconds timeout{3600};  ///< for information: the dispatcher enforces it via `cancel_signal`
};

/// Progress of a running attempt, reported by the executor whenever it likes (the
/// dispatcher appends at most 2 `job.progressed` per second per job).
struct job_progress {
  std::uint64_t rows = 0;                ///< rows read so far
  std::uint64_t bytes = 0;               ///< bytes of cell text (or output) so far
  std::optional<int> percent;            ///< 0–100 when the executor can tell, else nullopt
  std::chrono::milliseconds elapsed{0};  ///< since the attempt started
};

/// How an attempt ended.
struct job_outcome {
  enum class status {
    succeeded,    ///< ran to the end (the result may be truncated: `result_writer::full()`)
    failed,       ///< the database or the script reported an error (`error`, maybe `sqlstate`)
    interrupted,  ///< stopped because `cancel_signal::request()` was called
  };
  status state = status::failed;
  std::string error;     ///< `failed`: what went wrong, as the database or script said it (no secret)
  std::string sqlstate;  ///< `failed` on a database that reports one (PostgreSQL), else empty

  /// Ran to the end.
  [[nodiscard]] static job_outcome succeeded() { return {status::succeeded, {}, {}}; }
  /// Failed with `why` (no secret in it) and, from a database that gives one, its SQLSTATE.
  [[nodiscard]] static job_outcome failed(std::string why, std::string sqlstate = {}) {
    return {status::failed, std::move(why), std::move(sqlstate)};
  }
  /// Stopped by `cancel_signal::request()`.
  [[nodiscard]] static job_outcome interrupted() { return {status::interrupted, "interrupted", {}}; }
};

/// A cancellation flag shared by the dispatcher and one running attempt. Thread-safe.
/// The executor registers how to interrupt its work (`on_request`); the dispatcher
/// calls `request` on a cancel or a timeout.
class cancel_signal {
 public:
  /// Sets the flag and calls the registered interrupter (once; later calls do nothing).
  void request() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      if (requested_) return;
      requested_ = true;
      fn = interrupt_;
    }
    if (fn) fn();
  }
  /// True once `request` was called.
  [[nodiscard]] bool requested() const {
    std::lock_guard lock(mu_);
    return requested_;
  }
  /// Registers the interrupter (replacing the previous one; an empty function clears
  /// it). Called at once, on this thread, if a request came already. The function must
  /// be safe to call from another thread while the executor works.
  void on_request(std::function<void()> fn) {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      interrupt_ = fn;
      now = requested_;
    }
    if (now && fn) fn();
  }

 private:
  mutable std::mutex mu_;
  bool requested_ = false;
  std::function<void()> interrupt_;
};

/// Callback for progress; called on the executor's thread.
using progress_fn = std::function<void(const job_progress&)>;

/// Runs attempts of one kind of job. Thread-safe: `run` is called from several
/// threads at once, each with its own spec, writer and signal.
class job_executor {
 public:
  virtual ~job_executor() = default;
  /// Runs the attempt to its end on the calling thread (blocks for as long as the job
  /// runs). Streams rows into `out` in batches (never the whole result in memory) and
  /// stops reading once `out.full()`; never calls `out.commit()` (the caller commits
  /// after `run` returns, whatever the outcome). Returns `interrupted` within about 1 s of
  /// `cancel.request()`, with the work really stopped (query cancelled on the server,
  /// process group gone). Never throws.
  [[nodiscard]] virtual job_outcome run(const job_spec& spec, result_writer& out, const progress_fn& progress,
                                        cancel_signal& cancel) = 0;
};

}  // namespace atrium::ports
