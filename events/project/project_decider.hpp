#pragma once
/// The project aggregate as pure code. Invariants: a project keeps at least one user
/// owner (direct, not through a group);
/// only owners share (add or remove members); only editors and owners edit (the
/// project and its cells); an archived project refuses every change; a disabled user
/// cannot act. Admins act as owners of every project.
///
/// Cells: addressed by id, ordered by "follows cell X" links (never an index); an edit
/// names the cell version it was based on and a stale one is refused with the current
/// cell; an edit's `op_id` is remembered (the last `k_recent_edits` of the project), so a
/// retry is answered as a no-op instead of being applied twice or refused as stale.
/// A `sql` cell may carry a connection (`project.cell_connection_set`), which its runs use.
///
/// Co-editing (CodeMirror's central-authority collab protocol, docs/realtime.md
/// "Co-editing"): a cell's version counts updates. `change_cell` is accepted only on the
/// current version and appends one `project.cell_changed` with all its change sets; a
/// whole-cell `edit_cell` counts as one update replacing the whole document (client id
/// ""). Each cell keeps its last `k_cell_updates_kept` updates (and at most
/// `k_cell_updates_bytes` of them), so a client on an older version gets what it missed
/// and rebases; in the state, and so in the row and the snapshot.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/project/project_commands.hpp"
#include "events/project/project_events.hpp"
#include "events/registry.hpp"

namespace atrium {

/// Limits of a project's cells (documented in docs/events.md).
inline constexpr std::size_t k_max_cell_bytes = 256 * 1024;         ///< content of one cell
inline constexpr std::size_t k_max_cells = 1000;                    ///< live cells of one project
inline constexpr std::size_t k_max_cells_bytes = 16 * 1024 * 1024;  ///< content of all live cells
/// How many of the project's latest edits remember their `op_id` (for idempotent retries).
inline constexpr std::size_t k_recent_edits = 256;

/// How many of a cell's latest updates it keeps (co-editing history).
inline constexpr std::size_t k_cell_updates_kept = 512;
/// How many bytes of change sets (`change_set_bytes`) a cell's kept updates hold at most;
/// older updates go first, the newest is always kept. Bounds the row and the snapshot
/// when updates are large (a whole-cell edit carries the whole new content).
inline constexpr std::size_t k_cell_updates_bytes = 256 * 1024;
/// Updates one `change_cell` carries at most.
inline constexpr std::size_t k_max_cell_updates = 256;

/// One update of a cell as co-editing clients see it (`GET …/cells/{cell_id}/updates`).
struct cell_update {
  std::uint64_t version = 0;  ///< the cell's version after this update
  nlohmann::json changes;     ///< a change set, ChangeSet JSON (events/project/change_set.hpp)
  std::string client_id;      ///< who sent it; "" for a whole-cell edit
  std::size_t bytes = 0;      ///< `change_set_bytes(changes)` (not stored: recomputed on load)
};

/// One live cell of a project's notebook.
struct project_cell {
  std::string cell_id;
  std::string kind;  ///< markdown, sql, python or chart
  std::string content;
  std::uint64_t version = 0;        ///< 1 when added, +1 per update (a whole-cell edit is one)
  std::string connection_id;        ///< `sql` cells: the connection its runs use; "" = none
  std::deque<cell_update> updates;  ///< the latest kept updates, oldest first, versions contiguous up to `version`
  std::size_t updates_bytes = 0;    ///< sum of `updates[i].bytes`

  /// The oldest version a client may be on and still be sent what it missed: the version
  /// before the oldest kept update (`version` when none is kept).
  [[nodiscard]] std::uint64_t oldest_base() const noexcept {
    return updates.empty() ? version : updates.front().version - 1;
  }
  /// Appends `u` and drops the oldest updates beyond `k_cell_updates_kept` and
  /// `k_cell_updates_bytes` (the newest stays).
  void keep_update(cell_update u);
};

/// An applied edit, remembered so that a retry with the same `op_id` is not applied twice.
struct project_recent_edit {
  std::string op_id;
  std::string cell_id;
  std::uint64_t version = 0;  ///< the cell version the edit produced
};

/// The folded state of one project.
struct project_state {
  bool exists = false;
  std::string project_id;
  std::string name;
  std::string description;
  std::string created_by;
  std::map<std::string, project_role> members;  ///< user id → role
  std::map<std::string, project_role> groups;   ///< group id → role (shared with a group)
  bool archived = false;
  std::vector<project_cell> cells;               ///< live cells, in notebook order
  std::set<std::string> removed_cells;           ///< ids of removed cells (never reused)
  std::deque<project_recent_edit> recent_edits;  ///< the last `k_recent_edits` edits, oldest first
  std::uint64_t version = 0;                     ///< stream version of the last folded event

  /// The role the principal holds here: admins count as owners; otherwise the most
  /// permissive of its direct role and the roles of every group in `p.groups`; nullopt
  /// if none.
  [[nodiscard]] std::optional<project_role> role_of(const principal& p) const;
  /// Number of direct user members with the owner role.
  [[nodiscard]] std::size_t owner_count() const;
  /// The live cell with this id, or nullptr.
  [[nodiscard]] const project_cell* find_cell(std::string_view cell_id) const;
};

/// Decides a command. Errors: `forbidden` (caller disabled, not a member, or role too
/// low; auditors change nothing; a cell given a connection the caller may not use),
/// `not_found` (no such project, member or cell),
/// `already_exists` (also: a cell id taken, an `op_id` used for another cell),
/// `invalid_argument` (bad name, description, role, cell kind, `op_id`, `after`
/// naming no cell of the project, a connection for a cell that is not `sql`; a
/// `change_cell` with a bad `client_id`, no or over 256 updates, a malformed change set,
/// one whose length is not the document's or that cuts a surrogate pair: details
/// `field: "updates"`, `index` of the update), `failed_precondition` (archived, the last
/// owner would go, `after` names a removed cell, too many cells), `version_conflict` (a stale cell edit: details
/// `cell_id`, `base_version`, `current_version` and `cell`, the current
/// `{cell_id, kind, content, version, after}`; a `change_cell` not on the current
/// version: details `{"cell_id","version": current, "updates":[{"version","changes",
/// "client_id"}…]}`, every kept update after `base_version`, empty for a newer one),
/// `gone` (a `change_cell` based on a version older than the kept updates: details
/// `cell_id`, `version`, `oldest_version`), `payload_too_large` (cell content over
/// `k_max_cell_bytes`, or all cells over `k_max_cells_bytes`).
[[nodiscard]] result<std::vector<proposed_event>> decide(const project_state& state, const project_command& command,
                                                         const principal& actor);

/// Folds one event into the state (does not touch `version`).
///
/// Exhaustive by construction (events/exhaustive.hpp): project_decider.cpp has one overload
/// `evolve(project_state&, const <event>&)` per `project_event` alternative, dispatched with
/// `std::visit`, and a `static_assert` fallback template, so an alternative added to
/// `project_event` without its overload fails to compile. `decide` builds each event through
/// `emit(const <event>&)`, so `git grep "<event>&"` finds where it is decided and folded.
[[nodiscard]] project_state evolve(project_state state, const project_event& event);

/// The stream id of a project: `project-<id>`.
[[nodiscard]] std::string project_stream(std::string_view project_id);

}  // namespace atrium
