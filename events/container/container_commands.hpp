#pragma once
/// Commands on the container aggregate. Admin commands change the desired state and
/// come from admins through the API; runtime commands report the observed state and
/// come only from the container runtime, acting as the system principal
/// (`principal::system()`, user id `system`).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "events/container/container_events.hpp"

namespace atrium {

/// Admin: declare a new container (desired `stopped`, observed `declared`).
struct declare_container {
  std::string container_id;                     ///< new id (UUIDv7), chosen by the caller
  std::string name;                             ///< `[a-z0-9][a-z0-9_.-]{0,62}`
  std::string image;                            ///< 1–255 bytes, no whitespace
  std::vector<std::string> command;             ///< at most 64 arguments of at most 4096 bytes each
  std::map<std::string, std::string> env;       ///< at most 128; keys `[A-Za-z_][A-Za-z0-9_]*`, values ≤ 32768 bytes
  std::vector<int> ports;                       ///< at most 32 distinct ports, each 1–65535
  std::string runtime = "process";              ///< `process` (command required) or `docker` (image required)
  container_limits_spec limits;                 ///< each limit in its range (container_events.hpp)
  std::string restart = "on-failure";           ///< `always`, `on-failure` or `never`
  std::optional<container_health_spec> health;  ///< http/tcp port among `ports`; timings in range
};

/// Admin: change the spec (`PATCH /v1/containers/{id}`): each member that is set replaces
/// the current one (`health` set to nullopt removes the check); the result is validated
/// as a declaration is. The runtime cannot change. No event when nothing changes.
struct change_spec {
  std::optional<std::string> image;
  std::optional<std::vector<std::string>> command;
  std::optional<std::map<std::string, std::string>> env;
  std::optional<std::vector<int>> ports;
  std::optional<std::string> runtime;  ///< only the current runtime is accepted
  std::optional<container_limits_spec> limits;
  std::optional<std::string> restart;
  std::optional<std::optional<container_health_spec>> health;
};

/// Admin: the container should run (no-op when it already should).
struct request_start {};

/// Admin: the container should stop (no-op when it already should).
struct request_stop {};

/// Admin: remove the container; refused while it is observed `running` or `starting`.
struct remove_container {};

/// Runtime: the container is running (only while desired `running`).
struct report_started {
  std::string runtime_id;  ///< the runtime's id of the container, not empty
};

/// Runtime: the running container's health (no-op when unchanged).
struct report_health {
  std::string health;  ///< `healthy`, `unhealthy` or `starting`
};

/// Runtime: the container's process exited.
struct report_exited {
  int exit_code = 0;              ///< -1 when unknown
  std::string reason = "exited";  ///< see `container_exited::reason`
  std::int64_t ran_ms = 0;        ///< how long it ran, ≥ 0 (0: unknown)
};

/// Runtime: an exited container that should run is being restarted; the decider picks
/// the attempt number and back-off.
struct report_restarted {};

/// Runtime: the container is stopped.
struct report_stopped {};

/// Any command on a container stream.
using container_command = std::variant<declare_container, request_start, request_stop, remove_container, report_started,
                                       report_health, report_exited, report_restarted, report_stopped, change_spec>;

}  // namespace atrium
