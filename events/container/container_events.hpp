#pragma once
/// Events of the container aggregate (stream `container-<id>`). Catalog: docs/events.md.
///
/// Two kinds of events share the stream: what admins asked for (the desired state:
/// `declared`, `start_requested`, `stop_requested`, `removed`) and what a container
/// runtime observed (`started`, `health_changed`, `exited`, `restarted`, `stopped`).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium {

/// Resource limits of a container (`limits` in its spec); absent is unlimited. Integers
/// only (the hash chain's canonical bytes hold no floats): CPU is in millicores, as in
/// Kubernetes (`cpus: 0.5` in the API is `millicpus: 500`).
struct container_limits_spec {
  std::optional<std::int64_t> memory_bytes;  ///< bytes, 4 MiB – 1 TiB
  std::optional<std::int64_t> millicpus;     ///< thousandths of a core, 10 – 1024000
  std::optional<std::int64_t> pids;          ///< processes/threads, 1 – 1048576
  bool operator==(const container_limits_spec&) const = default;
};
/// Encodes as `{"memory_bytes": n|null, "millicpus": n|null, "pids": n|null}`.
inline void to_json(nlohmann::json& j, const container_limits_spec& l) {
  const auto opt = [](const std::optional<std::int64_t>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  j = nlohmann::json{{"memory_bytes", opt(l.memory_bytes)}, {"millicpus", opt(l.millicpus)}, {"pids", opt(l.pids)}};
}
/// Missing or null members are absent; throws nlohmann::json exceptions on other shapes.
inline void from_json(const nlohmann::json& j, container_limits_spec& l) {
  const auto get = [&j](const char* key) -> std::optional<std::int64_t> {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    return it->get<std::int64_t>();
  };
  (void)j.get_ref<const nlohmann::json::object_t&>();
  l.memory_bytes = get("memory_bytes");
  l.millicpus = get("millicpus");
  l.pids = get("pids");
}

/// A container's health check (`health` in its spec), with Docker HEALTHCHECK's timing:
/// the first probe runs `interval_s` after the start, each probe may take `timeout_s`,
/// `retries` consecutive failures make it `unhealthy`, failures within `start_period_s`
/// of the start do not count (a success there makes it `healthy`).
struct container_health_spec {
  std::string kind = "tcp";       ///< `http`, `tcp` or `exec`
  int port = 0;                   ///< http/tcp: one of the declared ports
  std::string path = "/";         ///< http: request path, starts with `/`, ≤ 1024 bytes
  std::vector<std::string> exec;  ///< exec: argv, 1–64 arguments
  int interval_s = 30;            ///< 1–86400
  int timeout_s = 30;             ///< 1–3600
  int retries = 3;                ///< 1–100
  int start_period_s = 0;         ///< 0–86400
  bool operator==(const container_health_spec&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(container_health_spec, kind, port, path, exec, interval_s, timeout_s, retries,
                                   start_period_s)

/// An admin declared a container. Always the stream's version 1. Desired state starts
/// as `stopped`: nothing runs until `container.start_requested`. Schema 2 added
/// `runtime`, `limits`, `restart` and `health` (a schema-1 payload upcasts to runtime
/// `docker`, no limits, restart `on-failure`, no health: schema 1 required an image).
struct container_declared {
  static constexpr std::string_view type = "container.declared";
  static constexpr int schema = 2;
  std::string container_id;
  std::string name;                             ///< `[a-z0-9][a-z0-9_.-]{0,62}`
  std::string image;                            ///< image reference, e.g. `postgres:16`; may be empty for `process`
  std::vector<std::string> command;             ///< argv; empty means the image's default (docker only)
  std::map<std::string, std::string> env;       ///< environment variables
  std::vector<int> ports;                       ///< container ports to publish, 1–65535
  std::string declared_by;                      ///< bare user id of the admin
  std::string runtime = "process";              ///< `process` or `docker`
  container_limits_spec limits;                 ///< resource limits
  std::string restart = "on-failure";           ///< `always`, `on-failure` or `never`
  std::optional<container_health_spec> health;  ///< none: no health check
};
/// Encodes every member; `health` is null when absent.
inline void to_json(nlohmann::json& j, const container_declared& e) {
  j = nlohmann::json{{"container_id", e.container_id},
                     {"name", e.name},
                     {"image", e.image},
                     {"command", e.command},
                     {"env", e.env},
                     {"ports", e.ports},
                     {"declared_by", e.declared_by},
                     {"runtime", e.runtime},
                     {"limits", e.limits},
                     {"restart", e.restart},
                     {"health", e.health ? nlohmann::json(*e.health) : nlohmann::json(nullptr)}};
}
/// Decodes a schema-2 payload; throws nlohmann::json exceptions on a missing member.
inline void from_json(const nlohmann::json& j, container_declared& e) {
  j.at("container_id").get_to(e.container_id);
  j.at("name").get_to(e.name);
  j.at("image").get_to(e.image);
  j.at("command").get_to(e.command);
  j.at("env").get_to(e.env);
  j.at("ports").get_to(e.ports);
  j.at("declared_by").get_to(e.declared_by);
  j.at("runtime").get_to(e.runtime);
  j.at("limits").get_to(e.limits);
  j.at("restart").get_to(e.restart);
  const auto& h = j.at("health");
  if (h.is_null()) {
    e.health.reset();
  } else {
    e.health = h.get<container_health_spec>();
  }
}

/// An admin changed the container's spec (`PATCH /v1/containers/{id}`): the whole new
/// spec. A running container is rolled: stopped, then started with this spec.
struct container_spec_changed {
  static constexpr std::string_view type = "container.spec_changed";
  static constexpr int schema = 1;
  std::string image;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::vector<int> ports;
  std::string runtime;  ///< unchanged from the declaration
  container_limits_spec limits;
  std::string restart;
  std::optional<container_health_spec> health;
  std::string changed_by;  ///< bare user id of the admin
};
/// Encodes every member; `health` is null when absent.
inline void to_json(nlohmann::json& j, const container_spec_changed& e) {
  j = nlohmann::json{{"image", e.image},
                     {"command", e.command},
                     {"env", e.env},
                     {"ports", e.ports},
                     {"runtime", e.runtime},
                     {"limits", e.limits},
                     {"restart", e.restart},
                     {"health", e.health ? nlohmann::json(*e.health) : nlohmann::json(nullptr)},
                     {"changed_by", e.changed_by}};
}
/// Throws nlohmann::json exceptions on a missing member.
inline void from_json(const nlohmann::json& j, container_spec_changed& e) {
  j.at("image").get_to(e.image);
  j.at("command").get_to(e.command);
  j.at("env").get_to(e.env);
  j.at("ports").get_to(e.ports);
  j.at("runtime").get_to(e.runtime);
  j.at("limits").get_to(e.limits);
  j.at("restart").get_to(e.restart);
  const auto& h = j.at("health");
  if (h.is_null()) {
    e.health.reset();
  } else {
    e.health = h.get<container_health_spec>();
  }
  j.at("changed_by").get_to(e.changed_by);
}

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

/// The container's process exited (observed → `exited`). Schema 2 added `reason` and
/// `ran_ms` (a schema-1 payload upcasts to reason `exited`, ran_ms 0).
struct container_exited {
  static constexpr std::string_view type = "container.exited";
  static constexpr int schema = 2;
  int exit_code = 0;  ///< the process's exit code; 128+N after signal N; -1 when unknown (`lost`)
  /// `exited` (it ended by itself), `killed` (a signal), `oom`, `lost` (gone, end
  /// unknown), `unhealthy` (stopped by the reconciler after failed health checks),
  /// `rolled` (stopped to start a changed spec).
  std::string reason = "exited";
  /// How long it had run, in ms (0 when unknown). A run of 10 min or more resets the
  /// restart count (Kubernetes' CrashLoopBackOff).
  std::int64_t ran_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(container_exited, exit_code, reason, ran_ms)

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
                 container_exited, container_restarted, container_stop_requested, container_stopped, container_removed,
                 container_spec_changed>;

/// The reconciler found a runtime container labelled with this instance that the log does
/// not account for (no such container, or one that was removed) and stopped and removed
/// it. Recorded as the system principal on the stream `runtime-<instance id>`, which no
/// aggregate owns.
struct runtime_orphan_removed {
  static constexpr std::string_view type = "runtime.orphan_removed";
  static constexpr int schema = 1;
  std::string runtime;       ///< `process` or `docker`
  std::string runtime_id;    ///< the runtime's id of the removed container
  std::string container_id;  ///< its `atrium.container_id` label
  std::string why;           ///< `unknown` (never declared) or `removed` (its aggregate was removed)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(runtime_orphan_removed, runtime, runtime_id, container_id, why)

}  // namespace atrium
