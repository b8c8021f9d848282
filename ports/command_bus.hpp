#pragma once
/// Port: how adapters (HTTP, later WebSocket) hand commands to the actor system and
/// learn their outcome, without blocking their I/O threads. Implemented by
/// `atrium::actor_runtime` (actors/runtime.hpp).
///
///   adapter ──execute(cmd, ctx, done)──▶ gateway actor ──▶ registry ──▶ entity actor
///   adapter ◀──done(outcome) on a CAF thread (post it back to your executor)

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/envelope.hpp"
#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/connection/connection_commands.hpp"
#include "events/container/container_commands.hpp"
#include "events/group/group_commands.hpp"
#include "events/job/job_commands.hpp"
#include "events/project/project_commands.hpp"
#include "events/schedule/schedule_commands.hpp"
#include "events/user/user_commands.hpp"

namespace atrium::ports {

/// Metadata of a command.
struct command_context {
  principal actor;                                ///< who acts
  std::string correlation_id;                     ///< request id, copied into every event
  std::optional<std::uint64_t> expected_version;  ///< from `If-Match`; checked against the entity
  /// Deterministic id of this command (derived from the client's `Idempotency-Key`), or
  /// empty. When set, its events get the ids `<command_id>.<n>` (n from 0, across every
  /// stream of the append), so a retried command is answered by the store with the
  /// events it already committed instead of writing them again.
  std::string command_id;
  /// Facts about the request's origin, copied into every event's `metadata`: the HTTP
  /// adapter sets `{"client_address","user_agent"}`; empty for internal commands.
  nlohmann::json metadata = nlohmann::json::object();
};

/// What a successful command produced.
struct command_outcome {
  std::vector<envelope> events;  ///< committed events of this command, possibly none (no-op)
  std::uint64_t version = 0;     ///< the entity's version after the command
  std::uint64_t position = 0;    ///< global position of the last committed event (0 if none)
  nlohmann::json view;           ///< the entity as served by the API after the command
};

/// Called exactly once, on an actor-system thread.
using completion = std::function<void(result<command_outcome>)>;

/// Entry point for commands.
class command_bus {
 public:
  virtual ~command_bus() = default;
  /// Runs a command on user `user_id`. Errors are those of the user decider plus
  /// `version_conflict` (stale expected version) and `unavailable` (shutting down).
  virtual void execute(std::string user_id, user_command cmd, command_context ctx, completion done) = 0;
  /// Runs a command on project `project_id`; errors as above for the project decider.
  virtual void execute(std::string project_id, project_command cmd, command_context ctx, completion done) = 0;
  /// Runs a command on group `group_id`; errors as above for the group decider.
  virtual void execute(std::string group_id, group_command cmd, command_context ctx, completion done) = 0;
  /// Runs a command on connection `connection_id`; errors as above for its decider.
  virtual void execute(std::string connection_id, connection_command cmd, command_context ctx, completion done) = 0;
  /// Runs a command on job `job_id`; errors as above for the job decider.
  virtual void execute(std::string job_id, job_command cmd, command_context ctx, completion done) = 0;
  /// Runs a command on container `container_id`; errors as above for its decider.
  virtual void execute(std::string container_id, container_command cmd, command_context ctx, completion done) = 0;
  /// Runs a command on schedule `schedule_id`; errors as above for the schedule decider.
  virtual void execute(std::string schedule_id, schedule_command cmd, command_context ctx, completion done) = 0;
  /// Appends one event to a stream that no aggregate owns (expected version `any`), such
  /// as the `security` stream; `done` gets the committed event's position or the
  /// store's error.
  virtual void record(std::string stream, proposed_event event, std::function<void(result<std::uint64_t>)> done) = 0;

  /// Calls `done` once every projection has applied `position` (read-your-writes).
  virtual void await_projections(std::uint64_t position, std::function<void()> done) = 0;
};

}  // namespace atrium::ports
