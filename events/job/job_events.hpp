#pragma once
/// Events of the job aggregate (stream `job-<id>`). Catalog: docs/events.md.
///
/// A job lives through exactly one of these paths; every path ends in exactly one
/// terminal event (`succeeded`, `failed`, `cancelled` or `timed_out`):
///
///   ran:        job.submitted → job.queued → (job.started → job.progressed* → job.requeued)*
///               → job.started → job.progressed* → [job.cancel_requested]
///               → job.succeeded | job.failed | job.timed_out | job.cancelled (only after a request)
///               → [job.result_expired]
///   never ran:  job.submitted → job.queued → job.cancel_requested → job.cancelled
///
/// A cancel requested while running only marks the job; the run still ends in one of
/// the four terminal events (`job.cancelled` when the runner confirms the cancel).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium {

/// A job was submitted to a project. Always the stream's version 1, appended together
/// with `job.queued`. Schema 2 added `language`, `max_attempts` and `cell_id` (schema 1
/// payloads upcast to `""`, 1 and `""`).
struct job_submitted {
  static constexpr std::string_view type = "job.submitted";
  static constexpr int schema = 2;
  std::string job_id;
  std::string project_id;
  std::string kind;                ///< `sql` or `script`
  std::string connection_id;       ///< the connection a `sql` job runs on; may be empty for `script`
  std::string sql;                 ///< the statement(s) of a `sql` job, else empty
  std::string script;              ///< the script of a `script` job, else empty
  std::uint32_t timeout_s = 3600;  ///< 1–86400 seconds
  std::string submitted_by;        ///< bare user id of the submitter
  std::string language;            ///< `script`: `python` or `bash`; empty for `sql`
  std::uint32_t max_attempts = 1;  ///< 1–10: runs the job may take (a restart re-queues while attempts remain)
  std::string cell_id;             ///< the project cell the job runs (`POST …/cells/{cell_id}/run`), else empty
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_submitted, job_id, project_id, kind, connection_id, sql, script, timeout_s,
                                   submitted_by, language, max_attempts, cell_id)

/// The job was admitted to the run queue (today at once, in the submit's append).
struct job_queued {
  static constexpr std::string_view type = "job.queued";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const job_queued&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, job_queued&) { (void)j.get_ref<const nlohmann::json::object_t&>(); }

/// A runner took the job and started an attempt. Schema 2 added `attempt` (schema 1
/// payloads upcast to 1).
struct job_started {
  static constexpr std::string_view type = "job.started";
  static constexpr int schema = 2;
  std::string runner;         ///< the runner's name (e.g. `atriumd/<host>/slot-3`)
  std::uint32_t attempt = 1;  ///< 1 for the first run, +1 after each `job.requeued`
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_started, runner, attempt)

/// The runner reported progress (at most 2 per second per job). Schema 2 added `rows`,
/// `bytes` and `elapsed_ms` and made `percent` nullable (schema 1 payloads upcast with
/// zeros).
struct job_progressed {
  static constexpr std::string_view type = "job.progressed";
  static constexpr int schema = 2;
  std::uint64_t rows = 0;        ///< result rows read so far
  std::uint64_t bytes = 0;       ///< bytes of result text (or captured output) so far
  std::optional<int> percent;    ///< 0–100 when the runner can tell; `null` otherwise
  std::uint64_t elapsed_ms = 0;  ///< since the attempt started
  std::string message;           ///< free text from the runner, may be empty
};
/// `{"rows","bytes","percent": int|null,"elapsed_ms","message"}`.
inline void to_json(nlohmann::json& j, const job_progressed& e) {
  j = {{"rows", e.rows},
       {"bytes", e.bytes},
       {"percent", e.percent ? nlohmann::json(*e.percent) : nlohmann::json(nullptr)},
       {"elapsed_ms", e.elapsed_ms},
       {"message", e.message}};
}
/// Throws nlohmann::json::exception on a missing or mistyped field.
inline void from_json(const nlohmann::json& j, job_progressed& e) {
  j.at("rows").get_to(e.rows);
  j.at("bytes").get_to(e.bytes);
  const auto& p = j.at("percent");
  e.percent = p.is_null() ? std::nullopt : std::optional<int>(p.get<int>());
  j.at("elapsed_ms").get_to(e.elapsed_ms);
  j.at("message").get_to(e.message);
}

/// One column of a job's result table (types: ports/result_store.hpp).
struct job_column {
  std::string name;
  std::string type;
  friend bool operator==(const job_column&, const job_column&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_column, name, type)

/// Terminal: the job finished successfully; its result (if any) is in the result store.
/// Schema 2 replaced schema 1's free-form `summary` with these fields (a schema 1
/// payload upcasts with `rows` taken from `summary.rows` when it is a number, the rest
/// zero or empty).
struct job_succeeded {
  static constexpr std::string_view type = "job.succeeded";
  static constexpr int schema = 2;
  std::uint64_t rows = 0;           ///< rows in the stored result
  std::uint64_t bytes = 0;          ///< bytes of result text stored
  std::vector<job_column> columns;  ///< the result's columns; empty when there is no table
  std::uint64_t duration_ms = 0;    ///< the attempt's wall time
  bool truncated = false;           ///< a row or byte bound cut the result short
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_succeeded, rows, bytes, columns, duration_ms, truncated)

/// Terminal: the job failed. Schema 2 added `sqlstate` (schema 1 payloads upcast to "").
struct job_failed {
  static constexpr std::string_view type = "job.failed";
  static constexpr int schema = 2;
  std::string error;     ///< what went wrong, as the runner reports it
  std::string sqlstate;  ///< the database's SQLSTATE (e.g. `42601`) when it gave one, else empty
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_failed, error, sqlstate)

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

/// A running attempt was interrupted (the server restarted while it ran, a worker lost
/// its lease) and the job went back to the queue for another attempt; or the attempt
/// never reached its runner (the worker's connection closed before the lease's answer
/// was written) and is given back without counting (`counted` false: the next
/// `job.started` repeats its number). Not terminal. Schema 2 added `counted` (schema 1
/// payloads upcast to true).
struct job_requeued {
  static constexpr std::string_view type = "job.requeued";
  static constexpr int schema = 2;
  std::uint32_t attempt = 1;  ///< the attempt that was interrupted (or given back)
  std::string reason;         ///< e.g. `interrupted by server restart`
  bool counted = true;        ///< false: the attempt never ran and does not count against `max_attempts`
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(job_requeued, attempt, reason, counted)

/// The job's stored result and log were removed after their time to live; the result
/// API answers 410 from now on. Follows a terminal event.
struct job_result_expired {
  static constexpr std::string_view type = "job.result_expired";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const job_result_expired&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, job_result_expired&) {
  (void)j.get_ref<const nlohmann::json::object_t&>();
}

/// The events of a `job-<id>` stream.
using job_event = std::variant<job_submitted, job_queued, job_started, job_progressed, job_succeeded, job_failed,
                               job_cancel_requested, job_cancelled, job_timed_out, job_requeued, job_result_expired>;

}  // namespace atrium
