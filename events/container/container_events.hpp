#pragma once
/// Events of the container aggregate (stream `container-<id>`). Catalog: docs/events.md.
///
/// Two kinds of events share the stream: what admins asked for (the desired state:
/// `declared`, `start_requested`, `stop_requested`, `removed`) and what a container
/// runtime observed (`started`, `health_changed`, `exited`, `restarted`, `stopped`).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium {

/// An admin declared a container. Always the stream's version 1. Desired state starts
/// as `stopped`: nothing runs until `container.start_requested`.
struct container_declared {
  static constexpr std::string_view type = "container.declared";
  static constexpr int schema = 1;
  std::string container_id;
  std::string name;                        ///< `[a-z0-9][a-z0-9_.-]{0,62}`
  std::string image;                       ///< image reference, e.g. `postgres:16`
  std::vector<std::string> command;        ///< argv; empty means the image's default
  std::map<std::string, std::string> env;  ///< environment variables
  std::vector<int> ports;                  ///< container ports to publish, 1–65535
  std::string declared_by;                 ///< bare user id of the admin
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(container_declared, container_id, name, image, command, env, ports, declared_by)

/// An admin asked for the container to run (desired → `running`).
struct container_start_requested {
  static constexpr std::string_view type = "container.start_requested";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const container_start_requested&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, container_start_requested&) {
  (void)j.get_ref<const nlohmann::json::object_t&>();
}

/// The runtime started the container (observed → `running`).
struct container_started {
  static constexpr std::string_view type = "container.started";
  static constexpr int schema = 1;
  std::string runtime_id;  ///< the runtime's id of the container (e.g. a Docker container id)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(container_started, runtime_id)

/// The runtime reported a new health status of the running container.
struct container_health_changed {
  static constexpr std::string_view type = "container.health_changed";
  static constexpr int schema = 1;
  std::string health;  ///< `healthy`, `unhealthy` or `starting`
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(container_health_changed, health)

/// The container's process exited (observed → `exited`).
struct container_exited {
  static constexpr std::string_view type = "container.exited";
  static constexpr int schema = 1;
  int exit_code = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(container_exited, exit_code)

/// The runtime restarts an exited container that should run (observed → `starting`).
struct container_restarted {
  static constexpr std::string_view type = "container.restarted";
  static constexpr int schema = 1;
  std::uint32_t attempt = 1;     ///< consecutive restarts since the container was last healthy, from 1
  std::uint64_t backoff_ms = 0;  ///< wait before the start: min(1000 · 2^(attempt−1), 300000)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(container_restarted, attempt, backoff_ms)

/// An admin asked for the container to stop (desired → `stopped`).
struct container_stop_requested {
  static constexpr std::string_view type = "container.stop_requested";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const container_stop_requested&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, container_stop_requested&) {
  (void)j.get_ref<const nlohmann::json::object_t&>();
}

/// The runtime stopped the container (observed → `stopped`).
struct container_stopped {
  static constexpr std::string_view type = "container.stopped";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const container_stopped&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, container_stopped&) {
  (void)j.get_ref<const nlohmann::json::object_t&>();
}

/// An admin removed the container. The last event of its stream: every later command
/// is `not_found`.
struct container_removed {
  static constexpr std::string_view type = "container.removed";
  static constexpr int schema = 1;
};
/// Encodes as `{}`.
inline void to_json(nlohmann::json& j, const container_removed&) { j = nlohmann::json::object(); }
/// Accepts any JSON object; throws nlohmann::json::type_error for anything else.
inline void from_json(const nlohmann::json& j, container_removed&) {
  (void)j.get_ref<const nlohmann::json::object_t&>();
}

/// The events of a `container-<id>` stream.
using container_event =
    std::variant<container_declared, container_start_requested, container_started, container_health_changed,
                 container_exited, container_restarted, container_stop_requested, container_stopped, container_removed>;

}  // namespace atrium
