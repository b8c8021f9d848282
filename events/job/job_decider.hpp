#pragma once
/// The job aggregate as pure code. A job runs SQL on a connection or a script for a
/// project; the job runner (the system principal) drives it through its states:
///
///   status      command (actor)                    decides                           → status
///   —           submit_job (editor/owner)          submitted, queued                 → queued
///   queued      start_job (runner)                 started                           → running
///   running     report_progress (runner)           progressed                        → running
///   running     complete_job / fail_job /          succeeded / failed / timed_out    → that
///               time_out_job (runner)
///   running     requeue_job (runner, attempts left)  requeued                         → queued
///   running     release_job (runner)               requeued (counted: false)         → queued
///   terminal    expire_result (runner)             result_expired (once)             → unchanged
///   submitted,  request_cancel (submitter, admin,  cancel_requested, cancelled       → cancelled
///   queued      editor/owner)
///   running     request_cancel (same)              cancel_requested                  → running
///   running     confirm_cancel (runner, only after cancelled                         → cancelled
///               a cancel request)
///
/// Every other pair is `failed_precondition` with details `{"status": <status>}`, except
/// that cancelling a cancelled job, or asking twice while running, decides nothing.
///
/// Invariants: exactly one terminal event per job (after `succeeded`, `failed`,
/// `cancelled` or `timed_out` every runner command is refused and a cancel is a no-op
/// or refused); only editors and owners of the project submit (admins count as owners;
/// auditors never); a job that uses a connection needs the submitter to be allowed to
/// use it; only the system principal moves a job through its run states; a disabled
/// user cannot act.
///
/// Queue admission is immediate: `submit_job` decides `job.submitted` and `job.queued`
/// in one append; the dispatcher (actors/job_dispatcher.cpp) starts queued jobs as
/// slots free up. `start_job` numbers the attempt (1, then +1 after each requeue); a
/// job is requeued only while `attempt < max_attempts`.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/error.hpp"
#include "events/job/job_commands.hpp"
#include "events/job/job_events.hpp"
#include "events/principal.hpp"
#include "events/registry.hpp"

namespace atrium {

/// The folded state of one job.
struct job_state {
  bool exists = false;
  std::string job_id;
  std::string project_id;
  std::string kind;  ///< `sql` or `script`
  std::string connection_id;
  std::string sql;
  std::string script;
  std::uint32_t timeout_s = 0;
  std::string submitted_by;  ///< bare user id
  std::string language;      ///< `script`: `python` or `bash`
  std::uint32_t max_attempts = 1;
  std::string cell_id;        ///< the project cell the job runs, if any
  std::uint32_t attempt = 0;  ///< the current (or last) attempt; 0 before the first start
  /// `submitted`, `queued`, `running`, `succeeded`, `failed`, `cancelled` or `timed_out`;
  /// empty while the job does not exist.
  std::string status;
  bool cancel_requested = false;    ///< a cancel was asked for and the job has not stopped yet (or stopped since)
  int progress = 0;                 ///< last reported percent, 0–100 (100 once succeeded)
  std::string progress_message;     ///< last reported progress message
  std::uint64_t rows = 0;           ///< last reported rows, or the result's rows once succeeded
  std::uint64_t bytes = 0;          ///< last reported bytes, or the result's bytes once succeeded
  std::uint64_t elapsed_ms = 0;     ///< last reported elapsed time, or the duration once succeeded
  std::vector<job_column> columns;  ///< the result's columns once succeeded
  bool truncated = false;           ///< the result was cut short by a bound
  std::string error;                ///< `job.failed`'s error, or "timed out after N s"; empty otherwise
  std::string sqlstate;             ///< `job.failed`'s SQLSTATE, if any
  bool result_expired = false;      ///< `job.result_expired` happened
  std::uint64_t version = 0;        ///< stream version of the last folded event

  /// True once the job reached a terminal status (succeeded, failed, cancelled, timed_out).
  [[nodiscard]] bool terminal() const;
};

/// Decides a command. Errors: `forbidden` (caller disabled; an auditor, viewer or
/// non-member submitting; a connection the submitter may not use; a cancel by someone
/// other than the submitter, an admin or an editor/owner; a runner command from anyone
/// but the system principal), `not_found` (no such job), `already_exists` (submitting
/// an existing job), `invalid_argument` (bad kind, language, sql, script, connection,
/// timeout, max_attempts, cell_id, runner, percent, columns, sqlstate, message or reason;
/// details name the `field`), `failed_precondition` (the command is illegal in the job's
/// status, or a requeue with no attempt left; details `{"status": <current status>}`).
/// Cancelling a cancelled job, or a running job whose cancel was already requested,
/// decides no events.
[[nodiscard]] result<std::vector<proposed_event>> decide(const job_state& state, const job_command& command,
                                                         const principal& actor);

/// Folds one event into the state (does not touch `version`).
///
/// Exhaustive by construction (events/exhaustive.hpp): job_decider.cpp has one overload
/// `evolve(job_state&, const <event>&)` per `job_event` alternative, dispatched with
/// `std::visit`, and a `static_assert` fallback template, so an alternative added to
/// `job_event` without its overload fails to compile. `decide` builds each event through
/// `emit(const <event>&)`, so `git grep "<event>&"` finds where it is decided and folded.
[[nodiscard]] job_state evolve(job_state state, const job_event& event);

/// The stream id of a job: `job-<id>`.
[[nodiscard]] std::string job_stream(std::string_view job_id);

/// Largest `sql` or `script`, in bytes.
inline constexpr std::size_t max_job_source_bytes = 100000;
/// Timeout when `submit_job` gives none, in seconds.
inline constexpr std::uint32_t default_job_timeout_s = 3600;
/// Largest timeout, in seconds (one day).
inline constexpr std::uint32_t max_job_timeout_s = 86400;
/// Largest `max_attempts`.
inline constexpr std::uint32_t max_job_attempts = 10;

}  // namespace atrium
