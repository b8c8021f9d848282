#pragma once
/// Events of the schedule aggregate (stream `schedule-<id>`). Catalog: docs/events.md.
///
///   schedule.created → (schedule.updated | schedule.paused → schedule.resumed | schedule.fired)*
///   → [schedule.deleted]
///
/// A schedule runs a job template, or the SQL cells of its project in document order
/// (`run_cells`), on a cron expression in an IANA time zone (events/schedule/cron.hpp).
/// `schedule.fired` carries a deterministic event id derived from the schedule id and
/// the fire instant (`schedule_fire_event_id`), so the same instant is never recorded
/// twice, whoever retries.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium {

/// What a schedule starts when it fires: a job template, or the project's SQL cells.
struct schedule_target {
  bool run_cells = false;          ///< run the project's SQL cells in order, stop at the first failure
  std::string kind;                ///< job template: `sql` or `script`; empty for `run_cells`
  std::string connection_id;       ///< `sql`: required; `script`: optional
  std::string sql;                 ///< `sql` only
  std::string script;              ///< `script` only
  std::string language;            ///< `script`: `python` or `bash`
  std::uint32_t timeout_s = 3600;  ///< 1–86400 seconds, per job
  friend bool operator==(const schedule_target&, const schedule_target&) = default;
};
/// `{"run_cells":true}` for a DataDoc target, else
/// `{"kind","connection_id","sql","script","language","timeout_s"}`.
inline void to_json(nlohmann::json& j, const schedule_target& t) {
  if (t.run_cells) {
    j = {{"run_cells", true}};
    return;
  }
  j = {{"kind", t.kind},     {"connection_id", t.connection_id}, {"sql", t.sql},
       {"script", t.script}, {"language", t.language},           {"timeout_s", t.timeout_s}};
}
/// Throws nlohmann::json::exception on a missing or mistyped field.
inline void from_json(const nlohmann::json& j, schedule_target& t) {
  t = schedule_target{};
  if (j.contains("run_cells") && j.at("run_cells").get<bool>()) {
    t.run_cells = true;
    return;
  }
  j.at("kind").get_to(t.kind);
  j.at("connection_id").get_to(t.connection_id);
  j.at("sql").get_to(t.sql);
  j.at("script").get_to(t.script);
  j.at("language").get_to(t.language);
  j.at("timeout_s").get_to(t.timeout_s);
}

/// A schedule was created (active at once). Its creator owns it: its jobs run with the
/// owner's permissions.
struct schedule_created {
  static constexpr std::string_view type = "schedule.created";
  static constexpr int schema = 1;
  std::string schedule_id;
  std::string project_id;
  std::string name;       ///< 1–200 bytes, single line
  std::string cron;       ///< as given, accepted by `parse_cron`
  std::string time_zone;  ///< IANA name, e.g. `Europe/Berlin`
  schedule_target target;
  std::string catch_up;    ///< `none` or `last`: what a restart does with firings missed while down
  std::string created_by;  ///< bare user id of the owner
  std::string anchor;      ///< RFC 3339 UTC (to the second): `@every` counts intervals from here
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(schedule_created, schedule_id, project_id, name, cron, time_zone, target, catch_up,
                                   created_by, anchor)

/// A schedule's settings changed. Carries every editable field with its new value.
/// `anchor` moves to the update's instant when `cron` or `time_zone` changed.
struct schedule_updated {
  static constexpr std::string_view type = "schedule.updated";
  static constexpr int schema = 1;
  std::string name;
  std::string cron;
  std::string time_zone;
  schedule_target target;
  std::string catch_up;
  std::string anchor;
  std::string updated_by;  ///< bare user id
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(schedule_updated, name, cron, time_zone, target, catch_up, anchor, updated_by)

/// The schedule stopped firing (by a user, or by the scheduler when the owner lost the
/// right to run it or was disabled).
struct schedule_paused {
  static constexpr std::string_view type = "schedule.paused";
  static constexpr int schema = 1;
  std::string reason;     ///< free text, at most 1000 bytes
  std::string paused_by;  ///< bare user id, or `system`
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(schedule_paused, reason, paused_by)

/// A paused schedule fires again (from the next instant after the resume; missed
/// instants are not caught up).
struct schedule_resumed {
  static constexpr std::string_view type = "schedule.resumed";
  static constexpr int schema = 1;
  std::string resumed_by;  ///< bare user id
  std::string resumed_at;  ///< RFC 3339 UTC (to the second)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(schedule_resumed, resumed_by, resumed_at)

/// The schedule was deleted; it never fires again. Terminal.
struct schedule_deleted {
  static constexpr std::string_view type = "schedule.deleted";
  static constexpr int schema = 1;
  std::string deleted_by;  ///< bare user id
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(schedule_deleted, deleted_by)

/// The scheduler fired the schedule for one instant and started these jobs. The event
/// id is `schedule_fire_event_id(schedule_id, fire_time)`.
struct schedule_fired {
  static constexpr std::string_view type = "schedule.fired";
  static constexpr int schema = 1;
  std::string fire_time;             ///< the instant fired, RFC 3339 UTC to the second
  std::vector<std::string> job_ids;  ///< the jobs started for it (one, or one per cell for `run_cells`), may be empty
  bool catch_up = false;             ///< fired late, for an instant missed while atriumd was down
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(schedule_fired, fire_time, job_ids, catch_up)

/// The events of a `schedule-<id>` stream.
using schedule_event = std::variant<schedule_created, schedule_updated, schedule_paused, schedule_resumed,
                                    schedule_deleted, schedule_fired>;

}  // namespace atrium
