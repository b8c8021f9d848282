#pragma once
/// The schedule aggregate as pure code.
///
///   status   command (actor)                          decides            → status
///   —        create_schedule (editor/owner)           created            → active
///   active,  update_schedule (editor/owner)           updated            → unchanged
///   paused
///   active   pause_schedule (editor/owner, system)    paused             → paused
///   paused   resume_schedule (editor/owner)           resumed            → active
///   active,  delete_schedule (editor/owner)           deleted            → deleted
///   paused
///   active   fire_schedule (system only)              fired              → active
///
/// Pausing a paused schedule or resuming an active one decides nothing. Every other pair
/// is `failed_precondition` with details `{"status": <status>}`.
///
/// Invariants: only editors and owners of the project manage its schedules (admins count
/// as owners; auditors and viewers never); only the system principal fires; one instant
/// fires at most once and instants fire in increasing order: `fire_schedule` for an
/// instant not after the last fired one is `failed_precondition` (`{"last_fired": …}`),
/// and `schedule.fired`'s event id is `schedule_fire_event_id(id, instant)`, so even a
/// decision taken twice on a stale state appends once (the store answers a known event
/// id as success without a second copy).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/registry.hpp"
#include "events/schedule/schedule_commands.hpp"
#include "events/schedule/schedule_events.hpp"

namespace atrium {

/// The folded state of one schedule.
struct schedule_state {
  bool exists = false;
  std::string schedule_id;
  std::string project_id;
  std::string name;
  std::string cron;
  std::string time_zone;
  schedule_target target;
  std::string catch_up;  ///< `none` or `last`
  std::string owner;     ///< bare user id of the creator; jobs run with the owner's permissions
  std::string status;    ///< `active`, `paused` or `deleted`; empty while it does not exist
  std::string pause_reason;
  std::string anchor;      ///< RFC 3339 UTC: the `@every` anchor
  std::string last_fired;  ///< RFC 3339 UTC of the last fired instant; empty before the first firing
  std::string resumed_at;  ///< RFC 3339 UTC of the last resume; empty if never resumed
  std::uint64_t fired_count = 0;
  std::uint64_t version = 0;  ///< stream version of the last folded event

  /// The instant after which the next firing is due: the latest of the anchor, the last
  /// fired instant and the last resume (instants missed while paused are not caught up).
  [[nodiscard]] std::chrono::sys_seconds fire_after() const;
};

/// Decides a command. Errors: `forbidden` (caller disabled, not an editor/owner of the
/// project, an auditor; a fire from anyone but the system principal; a connection the
/// caller may not use), `not_found` (no such schedule, or deleted), `already_exists`,
/// `invalid_argument` (bad name, cron (details from `parse_cron`), time zone, target,
/// catch_up or reason; details name the `field`), `failed_precondition` (illegal in the
/// status; a fire instant not after the last fired one).
[[nodiscard]] result<std::vector<proposed_event>> decide(const schedule_state& state, const schedule_command& command,
                                                         const principal& actor);

/// Folds one event into the state (does not touch `version`); exhaustive over
/// `schedule_event` (events/exhaustive.hpp).
[[nodiscard]] schedule_state evolve(schedule_state state, const schedule_event& event);

/// The stream id of a schedule: `schedule-<id>`.
[[nodiscard]] std::string schedule_stream(std::string_view schedule_id);

/// The event id of `schedule.fired` for (schedule id, instant): a name-based UUIDv8
/// (RFC 9562 §5.8, the SHA-256 construction of its Appendix B.2): the first 128 bits of
/// SHA-256(namespace ‖ "schedule.fired\n" ‖ schedule id ‖ "\n" ‖ RFC 3339 instant), with
/// version 8 and the RFC variant set. SHA-256 is the hash chain's (events/chain.hpp).
[[nodiscard]] std::string schedule_fire_event_id(std::string_view schedule_id, std::chrono::sys_seconds fire_time);

/// A deterministic job id for the `index`-th job (from 0) started for one firing, built
/// like `schedule_fire_event_id` (name `"schedule.job\n" id "\n" instant "\n" index`), so a
/// retried firing submits the same job ids and the job store refuses duplicates.
[[nodiscard]] std::string schedule_job_id(std::string_view schedule_id, std::chrono::sys_seconds fire_time,
                                          std::size_t index);

/// Most jobs one firing records.
inline constexpr std::size_t max_schedule_fire_jobs = 1000;

}  // namespace atrium
