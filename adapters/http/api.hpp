#pragma once
/// The HTTP API v1 (docs/design.md, "HTTP API v1"): the edge checks, authentication,
/// idempotency and the route table; each resource's routes are its controller's
/// (adapters/http/controllers/controllers.hpp), reading through the query port
/// (ports/queries.hpp) and writing through the command bus.
///
///   request ─▶ api::handle: edge checks (wire.hpp) ─▶ route table lookup (404 / 405)
///           │  (a GET/HEAD outside /v1 and the open routes: the web console's files,
///           │   static_files.hpp)
///           ─▶ authenticate (bearer token, `?token=` on a stream, or the session cookie
///              → session or API token → user)
///           ─▶ Origin check of a cookie-authenticated change, WebSocket or SSE
///              (browser_security.hpp; 403)
///           ─▶ token scopes (access::authorize_route) ─▶ Idempotency-Key
///           ─▶ controller handler ─▶ policy (kit) ─▶ command bus / query port ─▶ answer
///
/// Routes (who may call each: the policy decision point, events/access/policy.hpp; the
/// full matrix is in docs/access.md):
///
/// | method and path                                              | does                          |
/// |--------------------------------------------------------------|-------------------------------|
/// | POST /v1/auth/login                                          | token (or cookie) for username+password |
/// | POST /v1/auth/logout, GET /v1/auth/session                   | end / describe the caller's session |
/// | GET, HEAD / and /{file…} (outside /v1)                       | the web console's files        |
/// | POST/GET /v1/users, GET/PATCH /v1/users/{id}, POST …/disable | users                         |
/// | POST/GET /v1/groups, GET /v1/groups/{id}                     | groups                        |
/// | POST /v1/groups/{id}/members, DELETE …/members/{id}          | `{"user_id"|"group_id"}`      |
/// | POST/GET /v1/projects, GET/PATCH/DELETE /v1/projects/{id}    | PATCH needs If-Match          |
/// | POST /v1/projects/{id}/members, DELETE …/members/{id}        | `{"user_id"|"group_id","role"}` |
/// | POST/GET /v1/connections, GET/PATCH/DELETE …/{id}            | credentials go to the vault   |
/// | POST /v1/connections/{id}/test                               | really connects; records it   |
/// | POST /v1/connections/{id}/members, DELETE …/members/{id}     | `{"user_id"|"group_id","role"}` (user, owner) |
/// | POST/GET /v1/jobs (`?project=&status=`), GET /v1/jobs/{id}   | jobs                          |
/// | POST /v1/jobs/{id}/cancel                                    | `{"reason"?}`                 |
/// | GET /v1/jobs/{id}/result (`?offset=&limit=`), …/result.csv, …/log | a finished job's output  |
/// | POST/GET /v1/schedules (`?project_id=`), GET/PATCH/DELETE …/{id} | schedules (cron + time zone) |
/// | POST /v1/schedules/{id}/pause, …/resume, GET …/runs           | `{"reason"?}`; firings and job outcomes |
/// | POST/GET /v1/containers, GET/PATCH/DELETE …/{id}, POST …/start|stop | containers (admins; PATCH rolls) |
/// | GET /v1/containers/{id}/logs (`?tail=&follow=1`)             | a container's log (admins; follow: SSE) |
/// | GET /v1/audit, GET /v1/audit/verify, GET /v1/events          | the logs (admins, auditors)   |
/// | GET /v1/streams/{stream}                                     | one stream, if its entity is readable |
/// | GET /v1/ws                                                   | WebSocket: subscribe, command, presence |
/// | GET /v1/events/stream                                        | the log as Server-Sent Events  |
/// | GET /v1/projects/{id}/events, GET …/events/stream            | a project's events (its readers; SSE) |
/// | POST /v1/workers/claim, POST /v1/workers/leases/{lease}/heartbeat|result|complete | remote workers (`job.work`) |
/// | GET /v1/workers                                              | workers and their leases (admins, auditors) |
/// | POST/GET /v1/service-accounts, GET …/{id}, POST …/disable    | service accounts (admins)     |
/// | POST/GET /v1/service-accounts/{id}/tokens, POST/GET /v1/tokens, DELETE /v1/tokens/{id} | API tokens |
/// | GET /healthz                                                 | anyone                        |
///
/// A denial answers 403, or 404 where the resource's existence is private, and appends
/// `security.access_denied` to the `security` stream; logins are recorded there too.
///
/// Every POST, PATCH and DELETE may carry `Idempotency-Key` (1-255 visible ASCII): a
/// retry answers the stored response and writes nothing; the key on another request is
/// 409.
///
/// A known path with another method answers 405 `method_not_allowed` with `Allow`; an
/// unknown path 404 `not_found`.
///
/// Every answer carries `Content-Security-Policy`, `X-Content-Type-Options`,
/// `Referrer-Policy` and `X-Frame-Options` (browser_security.hpp).
///
/// Errors answer `{"error":{"code","message","details"}}`: 400 invalid_argument,
/// 401 unauthenticated, 403 forbidden, 404 not_found, 405 method_not_allowed, 409 version_conflict /
/// already_exists / failed_precondition, 410 gone, 413, 428 precondition_required, 503, 500.

#include <chrono>
#include <map>
#include <memory>

#include "ports/command_bus.hpp"
#include "ports/container_runtime.hpp"
#include "ports/connector.hpp"
#include "ports/vault.hpp"
#include "events/schedule/zone.hpp"
#include "ports/event_store.hpp"
#include "ports/job_leases.hpp"
#include "ports/backup.hpp"
#include "ports/metrics.hpp"
#include "ports/monitor.hpp"
#include "ports/queries.hpp"
#include "ports/read_model_store.hpp"
#include "ports/result_store.hpp"
#include "ports/security.hpp"
#include "ports/subscriptions.hpp"
#include "adapters/http/http_server.hpp"
#include "adapters/http/static_files.hpp"

namespace atrium::http_adapter {

/// What the API needs; all references must outlive the `api`.
struct api_dependencies {
  ports::command_bus& commands;
  ports::event_store& events;
  const ports::queries& queries;  ///< the read side (projections/queries.hpp)
  ports::token_store& tokens;
  ports::idempotency_store& idempotency;
  const ports::password_hasher& hasher;
  const ports::secret_source& secrets;
  ports::secret_vault& vault;              ///< connection credentials
  const ports::connection_tester& tester;  ///< `POST /v1/connections/{id}/test`
  ports::projection_monitor& monitor;      ///< `/readyz`, `GET /v1/admin/projections`
  ports::subscription_hub& hub;            ///< `GET /v1/ws`, `GET /v1/events/stream`
  ports::result_store& results;            ///< `GET /v1/jobs/{id}/result`, `…/result.csv`, `…/log`
  std::int64_t session_ttl_seconds = 24 * 3600;
  std::size_t hashing_threads = 2;                          ///< argon2id runs here, never on an I/O thread
  std::size_t probe_threads = 2;                            ///< connection tests run here (blocking network I/O)
  std::chrono::milliseconds connection_test_timeout{5000};  ///< a test gives up after this
  /// IANA time zones of schedules (adapters/tz); nullptr: only `UTC` is known.
  std::shared_ptr<const zone_database> zones;
  ports::job_leases* leases = nullptr;       ///< remote workers (`/v1/workers/…`); null: those answer 503
  ports::backup_service* backups = nullptr;  ///< `/v1/admin/backups`; null: those answer 503
  /// The web console's files, served at `/` (static_files.hpp); nullptr: no console
  /// (`GET /` answers 404 saying so).
  std::shared_ptr<const web_root> web;
  /// Origins besides the server's own whose cookie-authenticated changes, WebSockets and
  /// SSE streams are accepted (`--allowed-origin`), normalized (`normalize_origin`).
  std::vector<std::string> allowed_origins;
  bool secure_cookie = false;  ///< mark the session cookie `Secure` (TLS in front of atriumd)
  bool login_throttle = true;  ///< throttle failed logins (controllers/sessions.cpp); off: `--no-login-throttle`
  /// Container runtimes by name (`GET /v1/containers/{id}/logs`); empty: logs answer 503.
  std::map<std::string, std::shared_ptr<ports::container_runtime>> container_runtimes;
  std::string default_container_runtime = "process";  ///< of a container declared without `runtime`
  /// Change counters of the `users` and `groups` projections (a `watched_read_models`
  /// the projection runner writes through, projections/read_model_watch.hpp): with
  /// them, authentication keeps each user's principal until a user or group event
  /// changes those rows (auth_cache.hpp); nullptr: it reads the rows on every request.
  const ports::read_model_changes* read_model_changes = nullptr;
  /// What `GET /metrics` serves besides the API's own requests and connections and the
  /// projections' progress (the store, the actor runtime, the process); each must
  /// outlive the `api`.
  std::vector<const ports::metrics_source*> metrics_sources;
};

/// The request handler of the API.
class api {
 public:
  explicit api(api_dependencies deps);
  ~api();
  api(const api&) = delete;
  api& operator=(const api&) = delete;

  /// Handles one request; never throws, answers exactly once.
  void handle(http_request request, respond_fn respond);

  /// The route table as JSON: `[{"method","pattern","access","query":[…]}]`
  /// (router.hpp `routes_json`).
  [[nodiscard]] nlohmann::json routes() const;

  /// Waits for background work (password hashing) to finish; call before destroying
  /// the ports.
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// The HTTP status of a domain error kind.
[[nodiscard]] unsigned http_status(errc code) noexcept;

}  // namespace atrium::http_adapter
