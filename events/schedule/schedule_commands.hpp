#pragma once
/// Commands on the schedule aggregate. Users manage schedules through the API (editors
/// and owners of the schedule's project; admins count as owners); only the scheduler,
/// acting as the system principal, fires them. The `*_role`, `time_zone_known` and
/// `connection_usable` fields are facts the adapter resolves before deciding.

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "events/principal.hpp"
#include "events/schedule/schedule_events.hpp"

namespace atrium {

/// Create a schedule in a project.
struct create_schedule {
  std::string schedule_id;  ///< new id (UUIDv7), chosen by the caller
  std::string project_id;
  std::string name;       ///< 1–200 bytes, single line
  std::string cron;       ///< events/schedule/cron.hpp syntax
  std::string time_zone;  ///< IANA name; `UTC` when empty
  schedule_target target;
  std::string catch_up;                      ///< `none` (when empty) or `last`
  std::optional<project_role> creator_role;  ///< the creator's effective role on the project
  bool time_zone_known = false;              ///< the adapter found `time_zone` in the zone database
  bool connection_usable = false;            ///< the creator may use `target.connection_id` (if any)
  std::chrono::sys_seconds now{};            ///< the command's instant (the `@every` anchor)
};

/// Change a schedule's settings; absent fields keep their value.
struct update_schedule {
  std::optional<std::string> name;
  std::optional<std::string> cron;
  std::optional<std::string> time_zone;
  std::optional<schedule_target> target;
  std::optional<std::string> catch_up;
  std::optional<project_role> editor_role;  ///< the caller's effective role on the project
  bool time_zone_known = false;             ///< the adapter found the (new or current) time zone
  bool connection_usable = false;           ///< the caller may use the (new or current) target's connection
  std::chrono::sys_seconds now{};
};

/// Stop firing. Users (editors/owners) or the scheduler (system) when the owner lost access.
struct pause_schedule {
  std::string reason;  ///< at most 1000 bytes
  std::optional<project_role> editor_role;
};

/// Fire again after a pause.
struct resume_schedule {
  std::optional<project_role> editor_role;
  std::chrono::sys_seconds now{};
};

/// Delete the schedule (terminal).
struct delete_schedule {
  std::optional<project_role> editor_role;
};

/// Scheduler: record a firing for `fire_time` with the jobs started for it.
struct fire_schedule {
  std::chrono::sys_seconds fire_time{};  ///< the cron instant fired (not the wall time it was fired at)
  std::vector<std::string> job_ids;      ///< at most 1000
  bool catch_up = false;
};

/// Any command on a schedule stream.
using schedule_command =
    std::variant<create_schedule, update_schedule, pause_schedule, resume_schedule, delete_schedule, fire_schedule>;

}  // namespace atrium
