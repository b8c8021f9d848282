#pragma once
/// Port: remote workers take jobs from the server with leases (issue 16, point 3). The
/// server stays the only writer of job events: a worker claims a job, heartbeats while
/// it runs, uploads the result in numbered batches and reports how it ended; the job
/// dispatcher (actors/job_dispatcher.cpp) turns all of that into `job.started`,
/// `job.progressed` and exactly one terminal event. Implemented by the actor runtime
/// (actors/worker_leases.cpp); served by the HTTP adapter under `/v1/workers/…`.
///
///   worker ──claim(worker, slots_free, wait)──▶ dispatcher: next job (round robin over
///      │                                        projects) ─start_job{runner = worker}─▶ log
///      ◀── leased_job {lease_id, expires_at, spec with credentials} (or none after `wait`)
///      ├──heartbeat(lease, progress) every lease/3 ──▶ renews; answers `cancel`
///      ├──upload(lease, seq, columns?, rows, log?)  ──▶ server's result store
///      └──complete(lease, outcome, batches)         ──▶ commit, terminal event
///
///   no heartbeat for the lease duration: the lease is lost, the job is requeued as a new
///   attempt or failed (`worker <name> lost its lease`); later calls with it are `gone`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "events/error.hpp"
#include "ports/job_executor.hpp"
#include "ports/result_store.hpp"

namespace atrium::ports {

/// A worker asks for one job.
struct lease_claim {
  std::string worker;            ///< the worker's name: 1–64 of `A-Za-z0-9._-`
  std::string owner;             ///< the user id of the caller (later calls on the lease must come from them)
  std::uint32_t slots_free = 1;  ///< free slots of the worker now (≥ 1 to get a job)
  std::uint32_t slots = 0;       ///< the worker's slots in all (0: unknown), for `GET /v1/workers`
  std::chrono::milliseconds wait{std::chrono::seconds(20)};  ///< answer "none" after this long without a job
  /// Asked right before a job is leased to this claim (the claim may have waited): false
  /// (the caller's token was revoked or expired meanwhile) answers it `unauthenticated`
  /// instead. Unset: always true. Called on any thread; must not block for long.
  std::function<bool()> still_authorized;
  /// Asked right before a job is leased to this claim: false (the worker's connection
  /// closed while the claim waited: the worker stopped or died) drops the claim instead
  /// (answered nullopt, which nobody reads), and the job stays queued. Unset: always
  /// true. Called on any thread; must not block.
  std::function<bool()> still_connected;
};

/// A job leased to a worker. `spec.credentials` holds secrets: send it only to the worker,
/// never log it.
struct leased_job {
  std::string lease_id;                              ///< UUID
  std::chrono::system_clock::time_point expires_at;  ///< unless heartbeated before
  std::chrono::milliseconds lease{30000};            ///< the lease duration (heartbeat well within it)
  std::uint32_t max_attempts = 1;
  job_spec spec;
};

/// What a heartbeat is answered.
struct lease_renewal {
  bool cancel = false;  ///< stop the job: its cancel was requested, or it ran past its timeout
  std::chrono::system_clock::time_point expires_at;
};

/// One batch of a leased job's result, in order: `seq` counts from 0.
struct lease_upload {
  std::uint64_t seq = 0;
  std::optional<std::vector<result_column>> columns;  ///< with the first batch that has rows (once)
  row_batch rows;                                     ///< may be empty
  std::string log;                                    ///< captured output to append (may be empty)
};

/// What an upload is answered.
struct upload_ack {
  std::uint64_t next_seq = 0;  ///< the batch the server expects next
  bool duplicate = false;      ///< this `seq` had been applied already (a retry): nothing changed
  std::uint64_t rows = 0;      ///< rows the server kept so far
  bool full = false;           ///< the server's result bounds are reached (later rows are dropped)
};

/// How a leased job ended, as the worker reports it.
struct lease_completion {
  job_outcome outcome;            ///< `interrupted` without a cancel or timeout gives the job back (requeued)
  std::uint64_t batches = 0;      ///< batches uploaded (must equal the server's count)
  bool truncated = false;         ///< the worker's own bounds cut the result
  std::uint64_t duration_ms = 0;  ///< as the worker measured it
};

/// One lease held by a worker, for `GET /v1/workers`.
struct lease_info {
  std::string lease_id;
  std::string job_id;
  std::uint32_t attempt = 1;
  std::chrono::system_clock::time_point expires_at;
};

/// A worker the server has heard from.
struct worker_info {
  std::string name;
  std::uint32_t slots = 0;                          ///< as it last said (0: unknown)
  std::uint32_t slots_free = 0;                     ///< as it last said
  std::chrono::system_clock::time_point last_seen;  ///< its last claim, heartbeat, upload or completion
  std::vector<lease_info> leases;
};

/// The server side of the lease protocol. Thread-safe. Errors shared by the calls on a
/// lease: `gone` (unknown lease, or lost for want of heartbeats: the job went to another
/// attempt), `forbidden` (the lease belongs to another worker or user),
/// `failed_precondition` (the lease completed already), `unavailable` (no dispatcher).
class job_leases {
 public:
  virtual ~job_leases() = default;
  /// Leases the next job (fairly across projects) to `claim.worker`, or answers nullopt
  /// after `claim.wait` without one. `done` is called once, on any thread.
  /// Errors: `unavailable`.
  virtual void claim(lease_claim claim, std::function<void(result<std::optional<leased_job>>)> done) = 0;
  /// Renews `lease_id` and records the job's progress (appended as `job.progressed`, at
  /// most 2 per second).
  [[nodiscard]] virtual result<lease_renewal> heartbeat(const std::string& lease_id, const std::string& worker,
                                                        const std::string& owner, const job_progress& progress) = 0;
  /// Applies one result batch (blocking file I/O: call it off the I/O threads). Renews the
  /// lease. A `seq` below the expected one is acknowledged as a duplicate; above it:
  /// `failed_precondition`. Errors also: `invalid_argument` (column count, columns twice
  /// or after rows), `unavailable` (the result store).
  [[nodiscard]] virtual result<upload_ack> upload(const std::string& lease_id, const std::string& worker,
                                                  const std::string& owner, lease_upload batch) = 0;
  /// Commits the uploaded result and reports the outcome; the terminal event follows.
  /// Completing a lease that completed already succeeds again (a retried report).
  /// Errors also: `failed_precondition` (`batches` differs from the batches applied).
  [[nodiscard]] virtual result<void> complete(const std::string& lease_id, const std::string& worker,
                                              const std::string& owner, const lease_completion& done) = 0;
  /// The workers heard from within the last hour, by name, with their leases.
  [[nodiscard]] virtual std::vector<worker_info> workers() const = 0;
};

}  // namespace atrium::ports
