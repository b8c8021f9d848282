#pragma once
/// Port: the read side's queries, as the API asks them. Implemented in
/// projections/queries.{hpp,cpp} over the read-model store (and, for time travel, the
/// event store); the HTTP adapter reads rows only through these interfaces, so it knows
/// neither table names nor the row form of an entity (secrets such as a user's password
/// hash or a connection's vault reference stay apart from the served view).
///
///   controller ──▶ ports::*_queries ──▶ projections/queries.cpp ──▶ read_model_store
///                                                     └──(as of)──▶ event_store + fold
///
/// Views are the API's JSON shapes (docs/api.md): `id` and `version` always present,
/// plus the times the projections add (`created_at`, `updated_at`, …). A store error
/// is answered as a value (`unavailable`), never thrown.

#include <map>
#include <string_view>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/connection/connection_decider.hpp"
#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/project/project_decider.hpp"
#include "events/user/user_decider.hpp"

namespace atrium::ports {

/// Where a list starts and how long it may be: the entries with key (id) > `after`
/// ("" from the first), at most `limit`.
struct page_request {
  std::string after;
  std::size_t limit = 100;
};

/// One page of a list: `items` (a JSON array of views, in id order) and `next`, the id
/// to pass as `after` for the following page, or null when the list ended (a full page
/// always has a `next`).
struct page {
  nlohmann::json items = nlohmann::json::array();
  nlohmann::json next = nullptr;
};

// ---- users -------------------------------------------------------------------------

/// A user as the read side knows them: the state the deciders use (with the password
/// hash: login and password changes verify against it) and the served view (without it).
struct user_record {
  user_state state;
  nlohmann::json view;
};

/// Users and the groups they are in.
class user_queries {
 public:
  virtual ~user_queries() = default;
  /// User `id`; nullopt if there is none. `unavailable` on a store error, `internal` for
  /// a malformed row.
  [[nodiscard]] virtual result<std::optional<user_record>> user(std::string_view id) const = 0;
  /// The user holding the (normalized, `normalize_username`) username; nullopt if none.
  [[nodiscard]] virtual result<std::optional<user_record>> user_by_name(std::string_view username) const = 0;
  /// Every user's view in id order, paged.
  [[nodiscard]] virtual result<page> users(const page_request& at) const = 0;
  /// The ids of every group `user_id` belongs to, directly or through nested groups
  /// (breadth-first; a cycle cannot loop it). A store error ends the walk early.
  [[nodiscard]] virtual std::set<std::string> groups_of(std::string_view user_id) const = 0;
};

// ---- groups ------------------------------------------------------------------------

/// Groups.
class group_queries {
 public:
  virtual ~group_queries() = default;
  /// Group `id`'s view (`{"id","name","description","created_by","members",…}`); nullopt
  /// if there is none. `unavailable` on a store error.
  [[nodiscard]] virtual result<std::optional<nlohmann::json>> group(std::string_view id) const = 0;
  /// The groups `p` may list: every group for admins and auditors, otherwise the groups
  /// `p` is in (directly or nested), in id order, paged.
  [[nodiscard]] virtual result<page> visible_groups(const principal& p, const page_request& at) const = 0;
  /// Every group nested inside group `id`, transitively (not `id` itself); at most
  /// `limit` of them are examined.
  [[nodiscard]] virtual std::set<std::string> subgroups_of(std::string_view id, std::size_t limit) const = 0;
};

// ---- projects ----------------------------------------------------------------------

/// A project as a caller sees it: the view (with cells and timestamps) and the caller's
/// effective role on it (nullopt: none).
struct project_record {
  nlohmann::json view;
  std::optional<project_role> role;
};

/// Projects.
class project_queries {
 public:
  virtual ~project_queries() = default;
  /// Project `id` with `p`'s role on it; nullopt if there is none. `unavailable` on a
  /// store error.
  [[nodiscard]] virtual result<std::optional<project_record>> project(std::string_view id,
                                                                      const principal& p) const = 0;
  /// The projects `p` may list (admins and auditors: all; others: those shared with them
  /// or one of their groups), in id order, paged; each a summary: the view without
  /// `cells` but with `cell_count`.
  [[nodiscard]] virtual result<page> visible_projects(const principal& p, const page_request& at) const = 0;
  /// The ids of the projects shared with `p` or one of their groups (not every project
  /// for admins: the caller decides who sees everything), at most `limit` per index.
  [[nodiscard]] virtual result<std::set<std::string>> shared_project_ids(const principal& p,
                                                                         std::size_t limit) const = 0;
  /// The co-editing state of live cell `cell_id` of project `project_id`, as projected:
  /// `{"version": the cell's version, "updates": [{"version","changes","client_id"}…]}`,
  /// its kept updates oldest first (docs/realtime.md, "Co-editing"); nullopt when there
  /// is no such project or live cell. `unavailable` on a store error.
  [[nodiscard]] virtual result<std::optional<nlohmann::json>> cell_updates(std::string_view project_id,
                                                                           const std::string& cell_id) const = 0;
};

// ---- connections -------------------------------------------------------------------

/// A connection as a caller sees it: the served view (no vault reference), the vault
/// reference (for tests, rotation and deletion only: never answer it) and the caller's
/// effective role (nullopt: none).
struct connection_record {
  nlohmann::json view;
  std::string vault_ref;
  std::optional<connection_role> role;
};

/// Connections.
class connection_queries {
 public:
  virtual ~connection_queries() = default;
  /// Connection `id` with `p`'s role on it; nullopt if there is none. `unavailable` on a
  /// store error.
  [[nodiscard]] virtual result<std::optional<connection_record>> connection(std::string_view id,
                                                                            const principal& p) const = 0;
  /// The connections `p` may list (admins and auditors: all; others: those granted to
  /// them or one of their groups), views in id order, paged.
  [[nodiscard]] virtual result<page> visible_connections(const principal& p, const page_request& at) const = 0;
};

// ---- jobs and containers -----------------------------------------------------------

/// Which jobs to list.
struct job_filter {
  bool every_project = true;          ///< all jobs; otherwise those of `projects`
  std::vector<std::string> projects;  ///< project ids (when not `every_project`)
  std::string status;                 ///< "" for any
  page_request at;
};

/// Counts of entities by state, as the projections keep them (`job_counts`,
/// `container_counts`): state → count, states with none left out.
using state_counts = std::map<std::string, std::uint64_t>;

/// The key the projections write into a count table when they applied position 1: its
/// counts cover the whole log (a table without it was started by an older version).
inline constexpr std::string_view k_counts_complete = "_complete";

/// Jobs.
class job_queries {
 public:
  virtual ~job_queries() = default;
  /// Jobs by status (`queued`, `running`, `succeeded`, …); nullopt when the `jobs`
  /// projection was built before it kept counts (rebuild it to get them) or is not
  /// kept here. `unavailable` on a store error.
  [[nodiscard]] virtual result<std::optional<state_counts>> job_counts() const { return std::nullopt; }
  /// Job `id`'s view; nullopt if there is none. `unavailable` on a store error.
  [[nodiscard]] virtual result<std::optional<nlohmann::json>> job(std::string_view id) const = 0;
  /// The jobs `filter` selects, in id order, paged.
  [[nodiscard]] virtual result<page> jobs(const job_filter& filter) const = 0;
};

/// Containers.
class container_queries {
 public:
  virtual ~container_queries() = default;
  /// Containers not removed, by `<desired>/<observed>` state (`running/running`,
  /// `running/exited`, …); nullopt as for `job_queries::job_counts`.
  [[nodiscard]] virtual result<std::optional<state_counts>> container_counts() const { return std::nullopt; }
  /// Container `id`'s view; nullopt if there is none. `unavailable` on a store error.
  [[nodiscard]] virtual result<std::optional<nlohmann::json>> container(std::string_view id) const = 0;
  /// Every container's view in id order, paged.
  [[nodiscard]] virtual result<page> containers(const page_request& at) const = 0;
};

// ---- schedules ---------------------------------------------------------------------

/// Which schedules to list.
struct schedule_filter {
  bool every_project = true;          ///< all schedules; otherwise those of `projects`
  std::vector<std::string> projects;  ///< project ids (when not `every_project`)
  page_request at;                    ///< `after`: a schedule id
};

/// Schedules and their runs (the `schedules` projection).
class schedule_queries {
 public:
  virtual ~schedule_queries() = default;
  /// Schedule `id`'s row (`schedule_row` + `created_at`, `updated_at`); nullopt if there
  /// is none or it was deleted. `unavailable` on a store error.
  [[nodiscard]] virtual result<std::optional<nlohmann::json>> schedule(std::string_view id) const = 0;
  /// The schedules `filter` selects, in id order, paged.
  [[nodiscard]] virtual result<page> schedules(const schedule_filter& filter) const = 0;
  /// The firings of schedule `id`, oldest first (`after`: a fire time), each
  /// `{"fire_time","job_ids","catch_up","fired_at"}`.
  [[nodiscard]] virtual result<page> schedule_runs(std::string_view id, const page_request& at) const = 0;
};

// ---- any entity, now and as of a position --------------------------------------------

/// A point of the log to look back at: a position, a time (RFC 3339 as stored events
/// carry it, `2026-11-21T04:45:59.123456Z`), or both (both must hold).
struct as_of_bound {
  std::optional<std::uint64_t> position;
  std::optional<std::string> time;
};

/// An entity as it was: its view and the position and time of the last event folded.
struct historic_view {
  nlohmann::json view;
  std::uint64_t position = 0;
  std::string time;
};

/// Entities addressed by stream id (`user-<id>`, `project-<id>`, `group-<id>`,
/// `connection-<id>`, `job-<id>`, `container-<id>`).
class entity_queries {
 public:
  virtual ~entity_queries() = default;
  /// The projected view of the entity of `stream` as the API serves it; nullopt for
  /// another kind of stream, an unknown entity or a store error.
  [[nodiscard]] virtual std::optional<nlohmann::json> current(std::string_view stream) const = 0;
  /// The entity of `stream` as it was at `bound`: folded from its own events committed
  /// then (never read from a projection). nullopt if it did not exist then. Errors: the
  /// event store's, `invalid_argument` for an event that does not decode.
  [[nodiscard]] virtual result<std::optional<historic_view>> as_of(std::string_view stream,
                                                                   const as_of_bound& bound) const = 0;
};

// ---- audit -------------------------------------------------------------------------

/// The filters of the audit log; every one present must match.
struct audit_filter {
  std::optional<std::string> actor;     ///< `user-<id>`, `<id>`, `system` or `anonymous`
  std::optional<std::string> stream;    ///< exact stream id
  std::optional<std::string> entity;    ///< stream prefix: `project`, `user`, `security` …
  std::optional<std::string> type;      ///< event type, e.g. `project.renamed`
  std::optional<std::string> since;     ///< normalized RFC 3339; entries with time >= since
  std::optional<std::string> until;     ///< normalized RFC 3339; entries with time < until
  std::optional<std::uint64_t> after;   ///< entries with position > after
  std::optional<std::uint64_t> before;  ///< entries with position < before
  bool desc = false;                    ///< `order=desc`: newest first

  /// True when a content filter (not only a position bound) is set, so that most rows
  /// may be skipped.
  [[nodiscard]] bool selective() const { return actor || stream || entity || type || since || until; }
};

/// A walk over the audit entries in position order from a starting bound, keeping the
/// entries the filter matches:
///
///   forward:  (after ──────────────▶ before)     backward: (after ◀────────────── before)
///
/// The bound on the far side ends the walk; the near one is where it starts.
class audit_walk {
 public:
  virtual ~audit_walk() = default;
  /// Appends to `out` (in walking order) up to `want` matching entries as served
  /// (`{"position","time","actor","stream","entity","version","type","event_id",
  /// "correlation_id","client_address","user_agent",…}`), examining at most `max_rows`
  /// rows. Store errors are passed on.
  [[nodiscard]] virtual result<void> fill(nlohmann::json& out, std::size_t want, std::size_t max_rows) = 0;
  /// True once no further entry can match (end of the log or the far bound reached).
  [[nodiscard]] virtual bool exhausted() const = 0;
  /// Position of the last row examined (0 before any): where a further walk continues.
  [[nodiscard]] virtual std::uint64_t last_examined() const = 0;
};

/// The audit log.
class audit_queries {
 public:
  virtual ~audit_queries() = default;
  /// A walk over the entries `filter` selects: `backward` starts at `filter.before`
  /// towards `filter.after` (else the other way round), reading `batch` rows per store
  /// scan. `filter` is copied.
  [[nodiscard]] virtual std::unique_ptr<audit_walk> walk(const audit_filter& filter, bool backward,
                                                         std::size_t batch) const = 0;
};

/// Every query the API asks, for wiring one implementation into all controllers.
class queries : public user_queries,
                public group_queries,
                public project_queries,
                public connection_queries,
                public job_queries,
                public container_queries,
                public schedule_queries,
                public entity_queries,
                public audit_queries {};

}  // namespace atrium::ports
