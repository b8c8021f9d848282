#pragma once
/// The `docker` container runtime (ports/container_runtime.hpp): containers run by a
/// Docker Engine (API v1.41 or later, dockerd 20.10+) spoken to over its local socket
/// (`--docker-host unix:///var/run/docker.sock`) with HTTP/1.1 (Boost.Beast, in
/// docker_http.cpp only) and JSON (nlohmann).
///
///   reconciler ──create/start/stop/remove/inspect/list/probe/logs──▶ docker_client
///        ▲                                                            │ one AF_UNIX
///        │ runtime_event (die → exited, oom → exited, destroy → removed) │ connection
///        └── watch thread ◀── GET /events?filters={type, label} ◀─────┘ per request
///            (reconnects with back-off 0.1 s → 5 s; since=<last timeNano>)
///
/// How the port's operations map (every path prefixed with `/v1.41`):
///   create  `GET /images/{image}/json`; when 404, `POST /images/create?fromImage=&tag=`
///           (a pull: no registry reachable gives `invalid_argument` with the daemon's
///           message); then `POST /containers/create?name=atrium-<name>-<id[0..8]>` with
///           `Image`, `Cmd` (empty: the image's), `Env`, labels `atrium.container_id`,
///           `atrium.instance`, `atrium.spec_version`, and `HostConfig` {`Memory`,
///           `NanoCpus`, `PidsLimit`, `NetworkMode: host`, `RestartPolicy: no`: the
///           reconciler owns restarts}. A name taken by a stopped container of ours (the
///           same container id and instance: left over from a crash) is removed and the
///           create retried once; taken by a running one: `already_exists` with
///           `details.runtime_id`.
///   start   `POST /containers/{id}/start` (304 already running: success).
///   stop    `POST /containers/{id}/stop?t=<grace s>` (SIGTERM, SIGKILL after t; 304: success).
///   remove  stop with t=10, then `DELETE /containers/{id}?force=1&v=1` (its anonymous
///           volumes too); 404: success.
///   inspect `GET /containers/{id}/json`: State.Status, ExitCode, OOMKilled (reason
///           `oom`), Pid, StartedAt (docker_wire.hpp).
///   list    `GET /containers/json?all=1&filters={"label":["atrium.instance=<instance>"]}`,
///           then an inspect of each (exit codes and start times are not in the list).
///   logs    `GET /containers/{id}/logs?stdout=1&stderr=1&tail=N&follow=0|1`, the
///           multiplexed stream split into lines of at most 16 KiB (log_demuxer). With
///           follow, a stream that ends while the container still exists (it stopped) is
///           resumed once it runs again (`since=` when data last came, `tail=all`), until `on_line`
///           returns false, `stop`, or the container is removed.
///   probe   http/tcp: from the host to 127.0.0.1:<port> — containers share the host's
///           network (NetworkMode host; atriumd's own dockerd runs with --bridge=none), so
///           a declared port is the host's port and two containers cannot declare the
///           same one. exec: `POST /containers/{id}/exec` (Cmd, no TTY, output not
///           attached) + `POST /exec/{eid}/start` (Detach) + `GET /exec/{eid}/json` until
///           it is not Running (every 50 ms), healthy on ExitCode 0, bounded by the
///           probe's timeout (a timed-out exec process is left to end on its own: the
///           Engine API cannot kill it).
///
/// Ownership: every operation on a runtime id first inspects it, and a container whose
/// `atrium.instance` label is not this runtime's instance is treated as absent
/// (`not_found`; `remove` succeeds), so an atriumd never touches another's containers.
/// Runtime ids must be `[A-Za-z0-9_.-]{1,128}` (else `not_found`).
///
/// Errors: `unavailable` when the daemon cannot be reached or answers 5xx on an
/// operation, `not_found`, `invalid_argument` for the daemon's 400s and a missing image
/// (its message kept), `internal` for answers that do not parse. Nothing throws.

#include <chrono>
#include <memory>
#include <string>

#include "events/error.hpp"
#include "ports/container_runtime.hpp"

namespace atrium::docker_adapter {

/// Configuration of the docker runtime.
struct docker_runtime_options {
  /// The daemon's socket, `unix:///absolute/path` (the only form supported).
  std::string host = "unix:///var/run/docker.sock";
  /// This atriumd's instance id (a UUID kept in DATA_DIR/instance_id): the
  /// `atrium.instance` label of every container it creates and lists. 1–128 characters
  /// of `[A-Za-z0-9_.-]`.
  std::string instance;
  /// The bound of each ordinary daemon call (`stop` adds its grace to it).
  std::chrono::milliseconds request_timeout{10000};
  /// The bound of an image pull in `create`.
  std::chrono::milliseconds pull_timeout{300000};
  /// Whether `make_docker_runtime` checks that the daemon answers and speaks API ≥ 1.41
  /// (`GET /version`). Off, the first operation finds out.
  bool check_daemon = true;
};

/// Makes the docker runtime. Errors: `invalid_argument` (a host that is not `unix://`
/// plus an absolute path — the message names the supported form —, or an empty or
/// malformed instance); with `check_daemon`: `unavailable` (no daemon answers on the
/// socket) or `invalid_argument` (its API version is below 1.41).
[[nodiscard]] result<std::unique_ptr<ports::container_runtime>> make_docker_runtime(docker_runtime_options options);

}  // namespace atrium::docker_adapter
