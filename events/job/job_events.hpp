#pragma once
/// Events of the job aggregate (stream `job-<id>`). Catalog: docs/events.md.
///
/// A job lives through exactly one of these paths; every path ends in exactly one
/// terminal event (`succeeded`, `failed`, `cancelled` or `timed_out`):
///
///   ran:        job.submitted → job.queued → job.started → job.progressed* → [job.cancel_requested]
///               → job.succeeded | job.failed | job.timed_out | job.cancelled (only after a request)
///   never ran:  job.submitted → job.queued → job.cancel_requested → job.cancelled
///
/// A cancel requested while running only marks the job; the run still ends in one of
/// the four terminal events (`job.cancelled` when the runner confirms the cancel).

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace atrium {

/// A job was submitted to a project. Always the stream's version 1, appended together
/// with `job.queued`.
struct job_submitted {
  static constexpr std::string_view type = "job.submitted";
  static constexpr int schema = 1;
  std::string job_id;
  std::string project_id;
  std::string kind;                ///< `sql` or `script`
  std::string connection_id;       ///< the connection a `sql` job runs on; may be empty for `script`
  std::string sql;                 ///< the statement(s) of a `sql` job, else empty
  std::string script;              ///< the script of a `script` job, else empty
  std::uint32_t timeout_s = 3600;  ///< 1–86400 seconds
  std::string submitted_by;        ///< bare user id of the submitter
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_submitted, job_id, project_id, kind, connection_id, sql, script, timeout_s,
                                   submitted_by)

/// The job was admitted to the run queue (today at once, in the submit's append).
struct job_queued {
  static constexpr std::string_view type = "job.queued";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const job_queued&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, job_queued&) { (void)j.get_ref<const nlohmann::json::object_t&>(); }

/// A runner took the job and started it.
struct job_started {
  static constexpr std::string_view type = "job.started";
  static constexpr int schema = 1;
  std::string runner;  ///< the runner's name
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_started, runner)

/// The runner reported progress.
struct job_progressed {
  static constexpr std::string_view type = "job.progressed";
  static constexpr int schema = 1;
  int percent = 0;      ///< 0–100
  std::string message;  ///< free text from the runner
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_progressed, percent, message)

/// Terminal: the job finished successfully.
struct job_succeeded {
  static constexpr std::string_view type = "job.succeeded";
  static constexpr int schema = 1;
  nlohmann::json summary = nlohmann::json::object();  ///< a JSON object chosen by the runner (e.g. row counts)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_succeeded, summary)

/// Terminal: the job failed.
struct job_failed {
  static constexpr std::string_view type = "job.failed";
  static constexpr int schema = 1;
  std::string error;  ///< what went wrong, as the runner reports it
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_failed, error)

/// Someone asked to cancel the job. Not terminal: `job.cancelled` follows at once when
/// the job had not started, or later when the runner confirms.
struct job_cancel_requested {
  static constexpr std::string_view type = "job.cancel_requested";
  static constexpr int schema = 1;
  std::string requested_by;  ///< bare user id (or `system`)
  std::string reason;        ///< free text, at most 1000 bytes
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_cancel_requested, requested_by, reason)

/// Terminal: the job was cancelled.
struct job_cancelled {
  static constexpr std::string_view type = "job.cancelled";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const job_cancelled&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, job_cancelled&) { (void)j.get_ref<const nlohmann::json::object_t&>(); }

/// Terminal: the runner stopped the job because it ran past its timeout.
struct job_timed_out {
  static constexpr std::string_view type = "job.timed_out";
  static constexpr int schema = 1;
  std::uint32_t after_s = 0;  ///< seconds the job had run when it was stopped
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_timed_out, after_s)

/// The events of a `job-<id>` stream.
using job_event = std::variant<job_submitted, job_queued, job_started, job_progressed, job_succeeded, job_failed,
                               job_cancel_requested, job_cancelled, job_timed_out>;

}  // namespace atrium
