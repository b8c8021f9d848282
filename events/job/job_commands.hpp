#pragma once
/// Commands on the job aggregate. `submit_job` and `request_cancel` come from users
/// through the API; the others come from the job runner, which acts as the system
/// principal (`principal::system()`, user id `system`) and nobody else may send them.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/job/job_events.hpp"
#include "events/principal.hpp"

namespace atrium {

/// Submit a job to a project. Editors and owners of the project (admins count as
/// owners); never auditors. The last two fields are facts the adapter resolves before
/// deciding.
struct submit_job {
  std::string job_id;                          ///< new id (UUIDv7), chosen by the caller
  std::string project_id;                      ///< the project the job belongs to
  std::string kind;                            ///< `sql` or `script`
  std::string connection_id;                   ///< required for `sql`, optional for `script`
  std::string sql;                             ///< `sql` only: 1–100000 bytes, not blank
  std::string script;                          ///< `script` only: 1–100000 bytes, not blank
  std::optional<std::uint32_t> timeout_s;      ///< 1–86400 seconds; 3600 when absent
  std::optional<project_role> submitter_role;  ///< the submitter's effective role on the project
  bool connection_usable = false;              ///< whether the submitter may use `connection_id`
  std::string language;                        ///< `script`: `python` or `bash` (required); `sql`: empty
  std::optional<std::uint32_t> max_attempts;   ///< 1–10; 1 when absent
  std::string cell_id;                         ///< the cell this job runs, if any (the adapter checked it exists)
};

/// Ask to cancel the job. The submitter, admins, and editors and owners of the project.
struct request_cancel {
  std::string reason;                          ///< free text, at most 1000 bytes
  std::optional<project_role> requester_role;  ///< the requester's effective role on the project
};

/// Runner: a queued job starts its next attempt (the decider numbers it).
struct start_job {
  std::string runner;  ///< the runner's name, not empty, at most 200 bytes
};

/// Runner: progress of a running job.
struct report_progress {
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;
  std::optional<int> percent;  ///< 0–100 when known
  std::uint64_t elapsed_ms = 0;
  std::string message;  ///< free text, at most 1000 bytes
};

/// Runner: a running job finished successfully.
struct complete_job {
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;
  std::vector<job_column> columns;  ///< at most 10000
  std::uint64_t duration_ms = 0;
  bool truncated = false;
};

/// Runner: a running job failed.
struct fail_job {
  std::string error;     ///< what went wrong (cut to 10000 bytes by the decider)
  std::string sqlstate;  ///< empty or 5 characters [0-9A-Z]
};

/// Runner: a running job ran past its timeout and was stopped.
struct time_out_job {
  std::uint32_t after_s = 0;  ///< seconds it had run
};

/// Runner: a running job whose cancel was requested has stopped.
struct confirm_cancel {};

/// Runner: a running attempt was lost (the server restarted); put the job back in the
/// queue if attempts remain (`failed_precondition` otherwise: fail it instead).
struct requeue_job {
  std::string reason;  ///< at most 1000 bytes
};

/// Runner: a running attempt never reached its runner (a remote worker's connection
/// closed before the answer that leased it the job was written); put the job back in
/// the queue without counting the attempt (whatever attempts are left).
struct release_job {
  std::string reason;  ///< at most 1000 bytes
};

/// Runner: the job's stored result expired and was removed. Only on a finished job;
/// a second one decides nothing.
struct expire_result {};

/// Any command on a job stream.
using job_command = std::variant<submit_job, request_cancel, start_job, report_progress, complete_job, fail_job,
                                 time_out_job, confirm_cancel, requeue_job, expire_result, release_job>;

}  // namespace atrium
