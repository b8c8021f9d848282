#pragma once
/// The HTTP API v1 (DESIGN.md, "HTTP API v1"): routing, authentication, input
/// validation and the mapping of domain errors to HTTP statuses.
///
/// | method and path                              | who                                  |
/// |----------------------------------------------|--------------------------------------|
/// | POST /v1/auth/login                          | anyone with credentials              |
/// | POST /v1/users, PATCH /v1/users/{id}         | admins (PATCH `password`: also self) |
/// | POST /v1/users/{id}/disable                  | admins                               |
/// | GET /v1/users, GET /v1/users/{id}            | admins, auditors; members see id and username |
/// | POST /v1/projects                            | members, admins                      |
/// | GET /v1/projects                             | everyone: the projects they may see  |
/// | GET /v1/projects/{id}                        | its members, admins, auditors; else 404 |
/// | PATCH /v1/projects/{id} (If-Match required)  | its editors and owners               |
/// | DELETE /v1/projects/{id} (archive)           | its owners                           |
/// | POST /v1/projects/{id}/members               | its owners                           |
/// | DELETE /v1/projects/{id}/members/{user_id}   | its owners, or the member themself   |
/// | GET /v1/audit, GET /v1/audit/verify, GET /v1/events | admins, auditors              |
/// | GET /v1/streams/{stream}                     | admins, auditors, the stream's own user or project members |
/// | GET /v1/streams/security                     | admins, auditors                     |
/// | GET /healthz                                 | anyone                               |
///
/// Every POST, PATCH and DELETE may carry `Idempotency-Key` (1-255 visible ASCII): a
/// retry answers the stored response and writes nothing; the key on another request is
/// 409. Logins are recorded in the `security` stream.
///
/// Errors answer `{"error":{"code","message","details"}}`: 400 invalid_argument,
/// 401 unauthenticated, 403 forbidden, 404 not_found, 409 version_conflict /
/// already_exists / failed_precondition, 413, 428 precondition_required, 503, 500.

#include <memory>

#include <chrono>

#include "actors/ports/command_bus.hpp"
#include "actors/ports/connector.hpp"
#include "actors/ports/vault.hpp"
#include "actors/ports/event_store.hpp"
#include "actors/ports/read_model_store.hpp"
#include "actors/ports/security.hpp"
#include "adapters/http/http_server.hpp"

namespace atrium::http_adapter {

/// What the API needs; all references must outlive the `api`.
struct api_dependencies {
  ports::command_bus& commands;
  ports::event_store& events;
  ports::read_model_store& read_models;
  ports::token_store& tokens;
  ports::idempotency_store& idempotency;
  const ports::password_hasher& hasher;
  const ports::secret_source& secrets;
  ports::secret_vault& vault;               ///< connection credentials
  const ports::connection_tester& tester;   ///< `POST /v1/connections/{id}/test`
  std::int64_t session_ttl_seconds = 24 * 3600;
  std::size_t hashing_threads = 2;  ///< argon2id runs here, never on an I/O thread
  std::size_t probe_threads = 2;    ///< connection tests run here (blocking network I/O)
  std::chrono::milliseconds connection_test_timeout{5000};  ///< a test gives up after this
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

  /// Waits for background work (password hashing) to finish; call before destroying
  /// the ports.
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

/// The HTTP status of a domain error kind.
[[nodiscard]] unsigned http_status(errc code) noexcept;

}  // namespace atrium::http_adapter
