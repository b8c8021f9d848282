#pragma once
/// API views of jobs and containers and their row forms. The `jobs` and `containers`
/// projections store the row form (plus the times they add: `submitted_at`,
/// `updated_at`, `finished_at` for jobs; `created_at`, `updated_at` for containers);
/// the actor layer uses the row form as the aggregate's snapshot and the view as the
/// API answer. `*_from_row(*_row(s))` gives back every field the deciders use.

#include <nlohmann/json.hpp>

#include "events/container/container_decider.hpp"
#include "events/job/job_decider.hpp"

namespace atrium {

/// `{"id","project_id","kind","language","connection_id","cell_id","sql","script",
/// "timeout_s","max_attempts","attempt","submitted_by","status","cancel_requested",
/// "progress","progress_message","rows","bytes","elapsed_ms","columns","truncated",
/// "error","sqlstate","result_expired","version"}`. `rows`, `bytes` and `elapsed_ms`
/// are the last progress report while running and the result's totals (elapsed = the
/// duration) once succeeded; `columns` is `[{"name","type"}]`, empty until succeeded.
[[nodiscard]] nlohmann::json job_view(const job_state& s);

/// Row form of a job (equal to its view).
[[nodiscard]] nlohmann::json job_row(const job_state& s);
/// Inverse of `job_row` (extra keys such as the projection's times are ignored);
/// throws nlohmann::json::exception on a malformed row.
[[nodiscard]] job_state job_from_row(const nlohmann::json& row);

/// `{"id","name","image","command":[...],"env":{...},"ports":[...],"runtime","spec":{"image",
/// "command","env","ports","runtime","limits","restart","health"} (limits and health in the
/// API shape, events/container/container_spec_json.hpp),"spec_version","declared_by","desired",
/// "observed","health","runtime_id","exit_code"(null if it never exited),"exit_reason"(null
/// likewise),"restarts","next_restart_at"(null here; the projection sets it),"version"}`.
[[nodiscard]] nlohmann::json container_view(const container_state& s);

/// Row form of a container: the view plus `removed` (so a snapshot of a removed
/// container stays removed), `limits_raw` and `health_raw` (the spec as the events hold it).
[[nodiscard]] nlohmann::json container_row(const container_state& s);
/// Inverse of `container_row` (extra keys are ignored; a missing `removed` is false);
/// throws nlohmann::json::exception on a malformed row.
[[nodiscard]] container_state container_from_row(const nlohmann::json& row);

}  // namespace atrium
