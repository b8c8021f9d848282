#pragma once
/// API view of a schedule and its row form (also the aggregate's snapshot form). The
/// `schedules` projection stores the row plus `created_at` and `updated_at`; the API adds
/// `next_fire_times` at read time (adapters/http/controllers/schedules.cpp).

#include <nlohmann/json.hpp>

#include "events/schedule/schedule_decider.hpp"

namespace atrium {

/// `{"id","project_id","name","cron","time_zone","target","catch_up","owner","status",
/// "pause_reason","anchor","last_fired","resumed_at","fired_count","version"}`; `target` as
/// in `schedule.created`; `last_fired` and `resumed_at` are RFC 3339 UTC or "".
[[nodiscard]] nlohmann::json schedule_view(const schedule_state& s);

/// Row form of a schedule (equal to its view).
[[nodiscard]] nlohmann::json schedule_row(const schedule_state& s);

/// Inverse of `schedule_row` (extra keys are ignored); throws nlohmann::json::exception on
/// a malformed row.
[[nodiscard]] schedule_state schedule_from_row(const nlohmann::json& row);

}  // namespace atrium
