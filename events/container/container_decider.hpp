#pragma once
/// The container aggregate as pure code. A container has a desired state (what admins
/// asked for) and an observed state (what the container runtime last reported); the
/// reconciler (actors/container_reconciler.cpp) drives the runtime to the desired state
/// and reports what it observed, restarting exited containers under their restart policy
/// with an exponential back-off. docs/containers.md has the whole lifecycle.
///
///   admin command     desired after   refused when
///   declare_container stopped         the id exists (already_exists)
///   request_start     running         — (no-op when already running)
///   request_stop      stopped         — (no-op when already stopped)
///   remove_container  removed         observed running or starting
///   change_spec       unchanged       invalid spec, runtime changed (no-op when equal)
///
///   observed   report_started  report_exited  report_restarted  report_stopped
///   declared   → running *     ✗              ✗                 ✗
///   starting   → running *     → exited       ✗                 → stopped
///   running    ✗               → exited       ✗                 → stopped
///   exited     → running *     ✗              → starting *      → stopped
///   stopped    → running *     ✗              ✗                 no-op
///   (* only while desired is running; ✗ is failed_precondition. report_health only
///   while running.)
///
/// Back-off: the n-th consecutive restart waits min(1000 · 2^(n−1), 300000) ms
/// (1 s, 2 s, 4 s … capped at 5 min); the count resets when an exit reports a run of
/// 10 min or more (`ran_ms`, measured by the reconciler and carried in the command, so
/// the decider stays pure: Kubernetes' CrashLoopBackOff reset), and on `request_start`.
/// `report_restarted` is refused unless the policy asks for a restart (`restart_due`).
///
/// Invariants: only admins change the desired state; only the system principal reports
/// the observed state; a container observed `running` or `starting` cannot be removed;
/// a removed container is gone (every command is `not_found`); a disabled user cannot
/// act.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/container/container_commands.hpp"
#include "events/container/container_events.hpp"
#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/registry.hpp"

namespace atrium {

/// The folded state of one container.
struct container_state {
  bool exists = false;
  bool removed = false;
  std::string container_id;
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::vector<int> ports;
  std::string runtime = "process";  ///< `process` or `docker`
  container_limits_spec limits;
  std::string restart = "on-failure";                 ///< `always`, `on-failure` or `never`
  std::optional<container_health_spec> health_check;  ///< the spec's `health`; none: no check
  std::uint64_t spec_version = 0;                     ///< stream version of the declaration or the last `spec_changed`
  std::string declared_by;                            ///< bare user id of the admin who declared it
  std::string desired;                                ///< `running`, `stopped` or `removed`
  /// `declared`, `starting`, `running`, `exited`, `stopped` or `removed`.
  std::string observed;
  std::string health;            ///< `healthy`, `unhealthy`, `starting`, or empty when unknown (not running)
  std::string runtime_id;        ///< the runtime's id from the last `container.started`; empty before
  std::optional<int> exit_code;  ///< exit code of the last exit; nullopt if it never exited
  std::string exit_reason;       ///< reason of the last exit (`container_exited::reason`); empty before
  unsigned restarts = 0;         ///< consecutive restarts since it was last healthy
  std::uint64_t version = 0;     ///< stream version of the last folded event
};

/// Decides a command. Errors: `forbidden` (caller disabled; an admin command from a
/// non-admin; a runtime command from anyone but the system principal), `not_found` (no
/// such container, or it was removed), `already_exists` (declaring an existing or
/// removed id), `invalid_argument` (bad name, image, command, env, ports, runtime,
/// limits, restart, health, runtime id, exit reason; details name the `field`, e.g.
/// `limits.memory_bytes`, `health.port`), `failed_precondition` (the command is illegal in
/// the current state; details `{"observed": ..., "desired": ...}`). Asking for the
/// desired state it already has, an unchanged health, and a stop of a stopped container
/// decide no events.
[[nodiscard]] result<std::vector<proposed_event>> decide(const container_state& state, const container_command& command,
                                                         const principal& actor);

/// Folds one event into the state (does not touch `version`).
///
/// Exhaustive by construction (events/exhaustive.hpp): container_decider.cpp has one overload
/// `evolve(container_state&, const <event>&)` per `container_event` alternative, dispatched with
/// `std::visit`, and a `static_assert` fallback template, so an alternative added to
/// `container_event` without its overload fails to compile. `decide` builds each event through
/// `emit(const <event>&)`, so `git grep "<event>&"` finds where it is decided and folded.
[[nodiscard]] container_state evolve(container_state state, const container_event& event);

/// The stream id of a container: `container-<id>`.
[[nodiscard]] std::string container_stream(std::string_view container_id);

/// Whether the restart policy asks for a restart of an exited container that should run:
/// `always`; `on-failure` unless the last exit was a clean `exited` with code 0; never
/// for `never`, nor after a `rolled` exit (the reconciler starts the new spec at once).
[[nodiscard]] bool restart_due(const container_state& s) noexcept;

/// The back-off before restart `attempt` (from 1): min(1000 · 2^(attempt−1), 300000) ms.
[[nodiscard]] std::uint64_t restart_backoff_ms(std::uint32_t attempt) noexcept;

}  // namespace atrium
