#pragma once
/// Messages exchanged by Atrium's actors (CAF 0.17). They never leave the process, so
/// they are whitelisted as unsafe (not serializable) message types rather than given
/// `inspect` overloads.

#include <caf/allowed_unsafe_message_type.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ports/command_bus.hpp"
#include "ports/container_runtime.hpp"
#include "ports/event_store.hpp"
#include "ports/monitor.hpp"
#include "ports/subscriptions.hpp"

namespace atrium::msg {

/// To the event-store writer: append atomically. Replied with `append_reply`.
struct append_request {
  std::vector<ports::stream_append> appends;
};

/// The writer's answer.
struct append_reply {
  result<std::vector<envelope>> committed;
};

/// From the store's commit thread back to the writer: appends completed. Their outcomes
/// wait in the writer's completion queue; one message stands for every outcome queued
/// since the writer last drained it (a committed group of 256 appends is one message,
/// not 256: issue 19).
struct append_done {};

/// From the writer to the projection runner: the log grew to `position`. The runner
/// reads the new events from the store itself, so a runner that falls behind holds
/// tiny notifications in its mailbox, not the events (memory stays bounded).
struct log_advanced {
  std::uint64_t position = 0;  ///< the last committed position
};

/// To the projection runner: reply (with `projections_ready`) once `position` is applied.
struct await_position {
  std::uint64_t position = 0;
};

/// The projection runner's answer to `await_position`.
struct projections_ready {
  std::uint64_t applied = 0;
};

/// To the projection runner: reply with `projection_status_reply`.
struct projection_status_request {};

/// The runner's report.
struct projection_status_reply {
  ports::projections_report report;
};

/// To the projection runner: start rebuilding projection `name`; replied with `rebuild_reply`.
struct rebuild_request {
  std::string name;
};

/// The runner's answer to `rebuild_request`.
struct rebuild_reply {
  result<void> started;
};

/// A callback carried to the gateway actor for `rebuild_request`.
struct rebuild_box {
  std::function<void(result<void>)> fn;
};

/// A callback carried to the gateway actor for `projection_status_request`.
struct status_box {
  std::function<void(ports::projections_report)> fn;
};

/// A command for the entity `id` of the aggregate whose commands are `Command`.
template <class Command>
struct command_msg {
  std::string id;
  Command command;
  ports::command_context context;
};

using user_command_msg = command_msg<user_command>;
using project_command_msg = command_msg<project_command>;
using group_command_msg = command_msg<group_command>;
using connection_command_msg = command_msg<connection_command>;
using job_command_msg = command_msg<job_command>;
using container_command_msg = command_msg<container_command>;
using schedule_command_msg = command_msg<schedule_command>;

/// An entity actor's answer to a command.
struct command_reply {
  result<ports::command_outcome> outcome;
};

/// To the registry: how many entities are live and how many were passivated.
struct registry_stats_request {};

/// The registry's answer.
struct registry_stats {
  std::size_t live = 0;
  std::uint64_t passivated = 0;
};

/// A callback carried to the gateway actor, called once with the outcome.
struct completion_box {
  ports::completion fn;
};

/// To the gateway: append one event to an unowned stream (e.g. `security`).
struct record_request {
  ports::stream_append append;
};

/// A callback carried to the gateway actor for `record_request`.
struct recorded_box {
  std::function<void(result<std::uint64_t>)> fn;
};

/// A callback carried to the gateway actor for `await_position`.
struct ready_box {
  std::function<void()> fn;
};

/// To the subscription hub: start `sub` for `owner`.
struct hub_subscribe {
  std::shared_ptr<ports::subscriber> owner;
  ports::subscription sub;
};

/// To the subscription hub: end subscription `id` of `owner` (answered by `ended`).
struct hub_unsubscribe {
  std::shared_ptr<ports::subscriber> owner;
  std::string id;
};

/// To the subscription hub: end every subscription of `owner` silently.
struct hub_drop {
  std::shared_ptr<ports::subscriber> owner;
};

/// To an actor that posted blocking work to threads of its own (the container
/// reconciler): the continuation, run by the actor's handler on its own thread.
struct closure {
  std::function<void()> fn;
};

/// From a container runtime's watch thread to the reconciler: `event` happened in
/// runtime `runtime` (a hint: the reconciler inspects).
struct runtime_hint {
  std::string runtime;
  ports::runtime_event event;
};

}  // namespace atrium::msg

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::append_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::append_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::append_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::log_advanced)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::await_position)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::projections_ready)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::user_command_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::project_command_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::group_command_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::connection_command_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::job_command_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::container_command_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::schedule_command_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::command_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::completion_box)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::ready_box)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::record_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::recorded_box)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::registry_stats_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::registry_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::projection_status_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::projection_status_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::status_box)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::rebuild_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::rebuild_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::rebuild_box)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::hub_subscribe)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::hub_unsubscribe)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::hub_drop)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::closure)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::msg::runtime_hint)
