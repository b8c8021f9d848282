#pragma once
/// One controller per resource. Each is given only the ports it uses, and registers its
/// routes in the route table (adapters/http/router.hpp) with `add_routes`:
///
/// | controller              | file             | routes                                          |
/// |-------------------------|------------------|-------------------------------------------------|
/// | `sessions_controller`   | sessions.cpp     | POST /v1/auth/login, …/logout, GET …/session    |
/// | `users_controller`      | users.cpp        | /v1/users, /v1/users/{id}, …/disable            |
/// | `groups_controller`     | groups.cpp       | /v1/groups, /v1/groups/{id}, …/members[/{m}]    |
/// | `projects_controller`   | projects.cpp     | /v1/projects, /v1/projects/{id}, …/members[/{m}]|
/// | `cells_controller`      | cells.cpp        | /v1/projects/{id}/cells[/{cell_id}[/run|/changes|/updates]] |
/// | `connections_controller`| connections.cpp  | /v1/connections, …/{id}, …/test, …/members[/{m}]|
/// | `jobs_controller`       | jobs.cpp         | /v1/jobs, /v1/jobs/{id}, …/cancel               |
/// | `results_controller`    | results.cpp      | /v1/jobs/{id}/result, …/result.csv, …/log       |
/// | `schedules_controller`  | schedules.cpp    | /v1/schedules, …/{id}, …/pause, …/resume, …/runs |
/// | `containers_controller` | containers.cpp   | /v1/containers, …/{id}, …/start, …/stop, …/logs |
/// | `audit_controller`      | audit.cpp        | /v1/audit, /v1/audit/export, /v1/audit/verify   |
/// | `events_controller`     | events.cpp       | /v1/events, /v1/streams/{stream}, /v1/events/stream, /v1/ws,
/// /v1/projects/{id}/events[/stream] | | `admin_controller`      | admin.cpp        | /healthz, /readyz, /metrics,
/// /v1/admin/projections[/{name}/rebuild], /v1/admin/backups[/{id}] | | `workers_controller`    | workers.cpp      |
/// /v1/workers, /v1/workers/claim, /v1/workers/leases/{lease}/… | | `tokens_controller`     | tokens.cpp       |
/// /v1/service-accounts[/{id}[/disable|/tokens]], /v1/tokens[/{id}] |
///
/// Handlers answer through `send`/`send_error` (call.hpp), ask the policy through the
/// kit (kit.hpp) and never read a table: reads go through the query port
/// (ports/queries.hpp). Controllers include no Beast header.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "adapters/http/access_facts.hpp"
#include "adapters/http/kit.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/login_throttle.hpp"
#include "events/container/container_decider.hpp"
#include "ports/container_runtime.hpp"
#include "events/group/group_decider.hpp"
#include "events/job/job_decider.hpp"
#include "events/schedule/schedule_decider.hpp"
#include "events/schedule/zone.hpp"
#include "ports/backup.hpp"
#include "ports/connector.hpp"
#include "ports/event_store.hpp"
#include "ports/job_leases.hpp"
#include "ports/monitor.hpp"
#include "ports/result_store.hpp"
#include "ports/security.hpp"
#include "ports/vault.hpp"

namespace atrium::http_adapter {

/// Login, logout and the caller's session; a browser's session lives in the
/// `atrium_session` cookie (adapters/http/browser_security.hpp).
class sessions_controller : public std::enable_shared_from_this<sessions_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::user_queries& users;
    ports::token_store& tokens;
    const ports::password_hasher& hasher;
    const ports::secret_source& secrets;
    pool_fn hashing;
    std::int64_t session_ttl_seconds;
    /// Whether the call's `Origin` is this server's or an allowed one (a cookie login
    /// from elsewhere is login CSRF).
    std::function<bool(const call&)> same_origin;
    bool secure_cookie = false;  ///< `Secure` on the session cookie
    bool throttle = true;        ///< throttle failed logins (login_throttle.hpp)
  };
  explicit sessions_controller(deps d);
  void add_routes(route_table& t);

 private:
  /// POST /v1/auth/login `{"username","password","cookie"?: bool}`: `{"token","user",
  /// "expires_at"}`, or with `cookie: true` (Origin-checked, 403 otherwise) the token in
  /// `Set-Cookie` only and `{"user","expires_at"}`.
  void login(const call_ptr& c);
  /// POST /v1/auth/logout: ends the calling session; a cookie session's answer clears
  /// the cookie.
  void logout(const call_ptr& c);
  /// GET /v1/auth/session: `{"user":{…},"via","expires_at"?}` of the caller.
  void session(const call_ptr& c, const principal& p);
  /// Answers a throttled login 429 (`Retry-After`), recording `security.login_throttled`
  /// when the throttle lets the audit through.
  void refuse_throttled(const call_ptr& c, const std::string& claimed, const std::string& account,
                        const std::string& address, const login_throttle::block& b);
  deps d_;
  std::string dummy_hash_;  // verified against for unknown users, so timing does not reveal them
  /// Failure budgets per account and address (in memory: a restart clears them).
  std::shared_ptr<login_throttle> throttle_ = std::make_shared<login_throttle>();
};

/// Users: create, list, read, change (password, roles, disable).
class users_controller : public std::enable_shared_from_this<users_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::user_queries& users;
    ports::token_store& tokens;
    const ports::password_hasher& hasher;
    pool_fn hashing;
  };
  explicit users_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  void create(const call_ptr& c, const principal& p);
  void list(const call_ptr& c, const principal& p);
  void get(const call_ptr& c, const principal& p, const std::string& id);
  /// PATCH /v1/users/{id}: `{"password"?, "current_password"?, "grant_role"?,
  /// "revoke_role"?, "disabled"?: true}`, applied in that order, each as its own
  /// command; stops at the first error.
  void patch(const call_ptr& c, const principal& p, const std::string& id);
  /// Runs `cmds` one after the other for user `id`; the last is answered (ending
  /// sessions first when `end_sessions`, all but `keep`).
  void run_patch(const call_ptr& c, const principal& p, const std::string& id,
                 std::shared_ptr<std::vector<user_command>> cmds, bool end_sessions, const std::string& keep);
  /// POST /v1/users/{id}/disable: admins only; ends every session of the user.
  void disable(const call_ptr& c, const principal& p, const std::string& id);
  /// Wraps `done`: once the command succeeded, ends the sessions of `user_id` except
  /// `keep_token_hash` ("" ends all), then calls `done`; a store error is answered 503.
  ports::completion ending_sessions(const call_ptr& c, std::string user_id, std::string keep_token_hash,
                                    ports::completion done);
  deps d_;
};

/// The view of a user `p` may see: all of it for admins, auditors and the user; else
/// `{"id","username"}`.
[[nodiscard]] json public_user(const json& view, const principal& p);

/// Groups and their members.
class groups_controller : public std::enable_shared_from_this<groups_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::group_queries& groups;
    const ports::user_queries& users;
  };
  explicit groups_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  std::optional<group_access> guard(const call_ptr& c, const principal& p, access::operation op, const std::string& id);
  void create(const call_ptr& c, const principal& p);
  void add_member(const call_ptr& c, const principal& p, const std::string& id);
  void remove_member(const call_ptr& c, const principal& p, const std::string& id, const std::string& member);
  deps d_;
};

/// Projects and their members.
class projects_controller : public std::enable_shared_from_this<projects_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::project_queries& projects;
    const ports::user_queries& users;
    const ports::group_queries& groups;
  };
  explicit projects_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  void create(const call_ptr& c, const principal& p);
  void patch(const call_ptr& c, const principal& p, const std::string& id);
  void archive(const call_ptr& c, const principal& p, const std::string& id);
  void add_member(const call_ptr& c, const principal& p, const std::string& id);
  void remove_member(const call_ptr& c, const principal& p, const std::string& id, const std::string& member);
  deps d_;
};

/// A project's cells (its notebook), addressed by cell id; SQL cells carry a connection
/// and run as jobs.
class cells_controller : public std::enable_shared_from_this<cells_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::project_queries& projects;
    const ports::connection_queries& connections;  ///< whether the caller may use a cell's connection
    const ports::event_store& events;              ///< the log's head (`…/updates` waits for it once)
  };
  explicit cells_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  void add(const call_ptr& c, const principal& p, const std::string& id);
  void list(const call_ptr& c, const principal& p, const std::string& id);
  void get(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  void patch(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  void remove(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  /// POST …/cells/{cell_id}/run: submits the cell's SQL as a job on its connection, 202 job.
  void run(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  /// POST …/cells/{cell_id}/changes: co-editing changes on the current cell version, 200
  /// `{"version","position"}`; 409 with the updates to rebase on; 410 when they are gone.
  void change(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  /// GET …/cells/{cell_id}/updates?since=V: `{"version","updates":[…]}` after V; 400 past
  /// the version, 410 before the kept updates.
  void updates(const call_ptr& c, const principal& p, const std::string& id, const std::string& cell_id);
  /// Asks the policy for `op` on project `id`, with the facts about `connection_id` when
  /// not empty (`uses_connection`; `usable` is set to whether `p` may use it). Admitted and
  /// existing: the caller's project access; otherwise the denial or 404 has been answered.
  std::optional<project_access> guard_connected(const call_ptr& c, const principal& p, access::operation op,
                                                const std::string& id, const std::string& connection_id, bool& usable);
  /// Answers a cell command with the cell as projected (or as the actor's view says),
  /// `ETag: "<cell version>"`; `replay_header` marks a no-op `Idempotency-Replayed`.
  ports::completion finish_cell(const call_ptr& c, const std::string& id, const std::string& cell_id, unsigned status,
                                bool replay_header);
  deps d_;
};

/// Data connections, their credentials (through the vault) and tests.
class connections_controller : public std::enable_shared_from_this<connections_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::connection_queries& connections;
    const ports::user_queries& users;
    const ports::group_queries& groups;
    ports::secret_vault& vault;
    const ports::connection_tester& tester;
    pool_fn probes;
    std::chrono::milliseconds test_timeout;
  };
  explicit connections_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  std::optional<connection_access> guard(const call_ptr& c, const principal& p, access::operation op,
                                         const std::string& id);
  void create(const call_ptr& c, const principal& p);
  void patch(const call_ptr& c, const principal& p, const std::string& id);
  void remove(const call_ptr& c, const principal& p, const std::string& id);
  void test(const call_ptr& c, const principal& p, const std::string& id);
  void share(const call_ptr& c, const principal& p, const std::string& id);
  void unshare(const call_ptr& c, const principal& p, const std::string& id, const std::string& who);
  /// Answers a destination `check_destination` refused: `forbidden` as a recorded denial
  /// (403), anything else (`invalid_argument`: 400) as the error it is.
  void refuse_destination(const call_ptr& c, const error& e);
  deps d_;
};

/// Jobs (in projects, using connections).
class jobs_controller : public std::enable_shared_from_this<jobs_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::job_queries& jobs;
    const ports::project_queries& projects;
    const ports::connection_queries& connections;
  };
  explicit jobs_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  void submit(const call_ptr& c, const principal& p);
  void list(const call_ptr& c, const principal& p);
  void cancel(const call_ptr& c, const principal& p, const std::string& id);
  deps d_;
};

/// A finished job's output, read from the result store (ports/result_store.hpp) with
/// the job's read permission:
///
///   GET /v1/jobs/{id}/result?offset=&limit=  one page of rows as JSON
///   GET /v1/jobs/{id}/result.csv             the whole table as RFC 4180 CSV, streamed
///   GET /v1/jobs/{id}/log                    the captured log as text
///
/// Checks, in order: the policy (`job_read`; 404 for a job the caller may not see),
/// 404 for an unknown job, 400 for bad `offset`/`limit`, 409 `failed_precondition`
/// while the job has not finished (`details.status`), 410 `gone` once its result
/// expired, 404 (`details.reason: "no_result"`) when it did not succeed or left no
/// table (`result`, `result.csv`), or left nothing at all (`log`).
class results_controller : public std::enable_shared_from_this<results_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::job_queries& jobs;
    const ports::project_queries& projects;
    ports::result_store& results;
    pool_fn blocking;  ///< page and log reads run here, off the I/O threads
  };
  explicit results_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

  /// Rows per page when `limit` is absent, and the most one page may hold.
  static constexpr std::size_t default_rows = 1000;
  static constexpr std::size_t max_rows = 10000;
  /// The most of a log one request returns, in bytes (the store bounds logs to 1 MiB).
  static constexpr std::size_t max_log_bytes = 1 << 20;
  /// Bytes per chunk of a streamed CSV.
  static constexpr std::size_t csv_chunk_bytes = 64 << 10;

 private:
  /// Job `id`'s view when the caller may read it and it exists; else answers (403/404)
  /// and returns nullopt.
  std::optional<json> readable(const call_ptr& c, const principal& p, const std::string& id);
  /// True when the job of `view` finished and its result has not expired; else answers
  /// 409 or 410 and returns false.
  static bool finished(const call_ptr& c, const json& view);
  /// True when the finished job of `view` succeeded (only then is its table its result);
  /// else answers 404 `no_result` and returns false.
  static bool succeeded(const call_ptr& c, const std::string& id, const json& view);
  void page(const call_ptr& c, const principal& p, const std::string& id);
  void csv(const call_ptr& c, const principal& p, const std::string& id);
  void log(const call_ptr& c, const principal& p, const std::string& id);
  deps d_;
};

/// Containers (admins'): declare, list, read, start, stop, remove, change the spec
/// (PATCH rolls it), read logs (a tail, or followed as Server-Sent Events).
class containers_controller : public std::enable_shared_from_this<containers_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::container_queries& containers;
    /// The runtimes by name (logs); empty: `…/logs` answers 503.
    std::map<std::string, std::shared_ptr<ports::container_runtime>> runtimes;
    std::string default_runtime = "process";  ///< a declaration without `runtime` gets this one
    std::size_t max_log_readers = 16;         ///< log reads (tails and followers) at once, at most; beyond: 429
  };
  explicit containers_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  void declare(const call_ptr& c, const principal& p);
  void change(const call_ptr& c, const principal& p, const std::string& id);
  void logs(const call_ptr& c, const principal& p, const std::string& id);
  void command(const call_ptr& c, const principal& p, const std::string& id, access::operation op);
  deps d_;
  std::shared_ptr<std::atomic<std::size_t>> log_readers_ = std::make_shared<std::atomic<std::size_t>>(0);
};

/// The audit log: entries, export, hash-chain verification.
class audit_controller : public std::enable_shared_from_this<audit_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::audit_queries& audit;
    const ports::event_store& events;  ///< the hash chain
    pool_fn blocking;
  };
  explicit audit_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  void entries(const call_ptr& c, const principal& p);
  void export_entries(const call_ptr& c, const principal& p);
  void verify(const call_ptr& c, const principal& p);
  deps d_;
};

/// Health, readiness, metrics and the projections' administration.
class admin_controller : public std::enable_shared_from_this<admin_controller> {
 public:
  struct deps {
    kit_ptr kit;
    ports::projection_monitor& monitor;
    const ports::event_store& events;          ///< the head position
    ports::backup_service* backups = nullptr;  ///< online backups; nullptr: not configured (503)
    /// What `GET /metrics` serves besides the projections' progress.
    std::vector<const ports::metrics_source*> sources;
    /// Jobs and containers by state (`atrium_jobs`, `atrium_containers`); null: not served.
    const ports::job_queries* jobs = nullptr;
    const ports::container_queries* containers = nullptr;
  };
  explicit admin_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  void healthz(const call_ptr& c);
  void readyz(const call_ptr& c);
  void metrics(const call_ptr& c);
  void projections(const call_ptr& c, const principal& p);
  void rebuild(const call_ptr& c, const principal& p, const std::string& name);
  void take_backup(const call_ptr& c, const principal& p);
  void list_backups(const call_ptr& c, const principal& p);
  void get_backup(const call_ptr& c, const principal& p, const std::string& id);
  deps d_;
};

/// Remote workers (`atriumd worker`) and the lease protocol (ports/job_leases.hpp):
///
///   POST /v1/workers/claim                    a job with its lease (200), or none (204)
///   POST /v1/workers/leases/{lease}/heartbeat renews the lease; says whether to cancel
///   POST /v1/workers/leases/{lease}/result    one result batch (`seq` from 0)
///   POST /v1/workers/leases/{lease}/complete  the outcome; the terminal event follows
///   GET  /v1/workers                          workers, slots, leases, last heartbeat
///
/// The four worker calls need `job.work` (admins; `jobs:work` tokens); the list needs
/// `worker.list` (admins, auditors). A lost or unknown lease answers 410 `gone`; a lease
/// of another worker 403; a completed one 409 (a repeated completion 200).
class workers_controller : public std::enable_shared_from_this<workers_controller> {
 public:
  struct deps {
    kit_ptr kit;
    ports::job_leases* leases;  ///< null: every worker call answers 503
    pool_fn blocking;           ///< uploads and commits (file I/O) run here
    /// Whether the call's bearer token still authenticates (checked before a waiting
    /// claim gets a job).
    std::function<bool(const call&)> authenticated;
  };
  explicit workers_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  std::optional<json> admit(const call_ptr& c, const principal& p);
  void claim(const call_ptr& c, const principal& p);
  void heartbeat(const call_ptr& c, const principal& p, const std::string& id);
  void upload(const call_ptr& c, const principal& p, const std::string& id);
  void complete(const call_ptr& c, const principal& p, const std::string& id);
  void list(const call_ptr& c, const principal& p);
  deps d_;
};

/// Service accounts and API tokens (docs/access.md, "Service accounts", "API tokens"):
///
///   POST /v1/service-accounts                 `{"name","description"?,"role"?}` → 201 view (admins)
///   GET  /v1/service-accounts[/{id}]          admins and auditors
///   POST /v1/service-accounts/{id}/disable    admins: every token of the account fails at once
///   POST /v1/service-accounts/{id}/tokens     a token for the account (admins) → 201 with the secret
///   GET  /v1/service-accounts/{id}/tokens     its tokens (admins), never secrets
///   POST /v1/tokens                           a personal token of the caller → 201 with the secret
///   GET  /v1/tokens                           the caller's own tokens, never secrets
///   DELETE /v1/tokens/{id}                    revoke (own token; admins any): 401 from then on
///
/// A token body is `{"name","scopes":["events:read"|"jobs:work"|"admin",…],"expires_in_s"?}`;
/// the secret is answered once and only its SHA-256 is stored (ports/token_store.hpp).
/// Creating and revoking append `security.token_created` / `security.token_revoked`
/// (never the secret) before the answer; a revocation's delete is synced first.
class tokens_controller : public std::enable_shared_from_this<tokens_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::user_queries& users;
    ports::token_store& tokens;
    const ports::secret_source& secrets;
    pool_fn blocking;  ///< token listing scans the store: off the I/O threads
  };
  explicit tokens_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

  /// The longest `expires_in_s` accepted: ten years, in seconds.
  static constexpr std::int64_t max_expires_in_s = 10LL * 366 * 24 * 3600;
  /// The most tokens one owner may hold.
  static constexpr std::size_t max_tokens_per_owner = 100;

 private:
  void create_account(const call_ptr& c, const principal& p);
  void list_accounts(const call_ptr& c, const principal& p);
  void get_account(const call_ptr& c, const principal& p, const std::string& id);
  void disable_account(const call_ptr& c, const principal& p, const std::string& id);
  /// The service account `id` when the policy admits `op` on it and it exists (a user of
  /// kind `service`); else answers 403/404 and returns nullopt.
  std::optional<ports::user_record> account(const call_ptr& c, const principal& p, access::operation op,
                                            const std::string& id);
  /// Makes an API token owned by `owner` from the call's body and answers 201.
  void create_token(const call_ptr& c, const principal& p, const std::string& owner);
  /// Answers the API tokens of `owner` as `{"tokens":[…]}`, never their secrets.
  void list_tokens(const call_ptr& c, const std::string& owner);
  void revoke_token(const call_ptr& c, const principal& p, const std::string& token_id);
  deps d_;
};

/// Schedules: create, list, read, change, pause, resume (each answer's view with
/// `next_fire_times`, the next 5 instants from now, RFC 3339 UTC, computed at answer
/// time; empty unless active), delete, and their runs with the outcome of their jobs.
class schedules_controller : public std::enable_shared_from_this<schedules_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::schedule_queries& schedules;
    const ports::project_queries& projects;
    const ports::connection_queries& connections;
    const ports::job_queries& jobs;
    std::shared_ptr<const zone_database> zones;  ///< IANA zones (adapters/tz, wired by app/main.cpp)
  };
  explicit schedules_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  /// Schedule `id` as `p` relates to it (access_facts.hpp: `schedule_facts`).
  [[nodiscard]] schedule_access facts_of(const principal& p, const std::string& id) const {
    return schedule_facts(d_.schedules, d_.projects, p, id);
  }
  /// The row with `next_fire_times` added.
  [[nodiscard]] json with_next_fire_times(json row) const;
  /// `with_next_fire_times` as the shape of every answer that carries a schedule's view.
  [[nodiscard]] controller_kit::view_shape shaped() {
    return [self = shared_from_this()](json row) { return self->with_next_fire_times(std::move(row)); };
  }
  void create(const call_ptr& c, const principal& p);
  void list(const call_ptr& c, const principal& p);
  void patch(const call_ptr& c, const principal& p, const std::string& id);
  void pause(const call_ptr& c, const principal& p, const std::string& id);
  void runs(const call_ptr& c, const principal& p, const std::string& id);
  deps d_;
};

}  // namespace atrium::http_adapter
