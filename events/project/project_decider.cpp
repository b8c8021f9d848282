#include "events/project/project_decider.hpp"

#include <algorithm>
#include <cctype>

#include "events/decide.hpp"
#include "events/exhaustive.hpp"
#include "events/project/change_set.hpp"
#include "events/validation.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;

bool valid_kind(const std::string& kind) {
  return kind == "markdown" || kind == "sql" || kind == "python" || kind == "chart";
}

/// An `op_id`: 1-128 characters of [A-Za-z0-9._:-] (a UUID fits).
bool valid_op_id(const std::string& op) {
  return !op.empty() && op.size() <= 128 && std::all_of(op.begin(), op.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '.' || ch == '_' || ch == ':' || ch == '-';
  });
}

/// A co-editing client id: 1-64 printable ASCII characters (space to tilde).
bool valid_client_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](unsigned char ch) { return ch >= 0x20 && ch <= 0x7E; });
}

/// A cell's kept updates after `base`, as served: `[{"version","changes","client_id"}…]`.
nlohmann::json updates_after(const project_cell& cell, std::uint64_t base) {
  auto out = nlohmann::json::array();
  for (const auto& u : cell.updates) {
    if (u.version > base) out.push_back({{"version", u.version}, {"changes", u.changes}, {"client_id", u.client_id}});
  }
  return out;
}

/// Index of the live cell `id` in `cells`, or `cells.size()`.
std::size_t index_of(const std::vector<project_cell>& cells, std::string_view id) {
  const auto it = std::find_if(cells.begin(), cells.end(), [&](const auto& c) { return c.cell_id == id; });
  return static_cast<std::size_t>(it - cells.begin());
}

/// Inserts `cell` right after the live cell `after` ("" or an unknown id: first / last).
void insert_after(std::vector<project_cell>& cells, project_cell cell, const std::string& after) {
  const auto at = after.empty() ? 0 : std::min(index_of(cells, after) + 1, cells.size());
  cells.insert(cells.begin() + static_cast<std::ptrdiff_t>(at), std::move(cell));
}

/// The cell as an error detail: `{cell_id, kind, content, version, after}`.
nlohmann::json cell_detail(const project_state& s, const project_cell& c) {
  const auto i = index_of(s.cells, c.cell_id);
  return {{"cell_id", c.cell_id},
          {"kind", c.kind},
          {"content", c.content},
          {"version", c.version},
          {"after", i == 0 || i >= s.cells.size() ? std::string() : s.cells[i - 1].cell_id}};
}

std::size_t total_bytes(const std::vector<project_cell>& cells) {
  std::size_t n = 0;
  for (const auto& c : cells) n += c.content.size();
  return n;
}

// decide: the project events the decider builds, one overload each (an event of another
// stream has none, so building it here fails to compile).
proposed_event emit(const project_created& e) { return make_event(e); }
proposed_event emit(const project_renamed& e) { return make_event(e); }
proposed_event emit(const project_described& e) { return make_event(e); }
proposed_event emit(const project_member_added& e) { return make_event(e); }
proposed_event emit(const project_member_removed& e) { return make_event(e); }
proposed_event emit(const project_archived& e) { return make_event(e); }
proposed_event emit(const project_group_added& e) { return make_event(e); }
proposed_event emit(const project_group_removed& e) { return make_event(e); }
proposed_event emit(const project_cell_added& e) { return make_event(e); }
proposed_event emit(const project_cell_edited& e) { return make_event(e); }
proposed_event emit(const project_cell_moved& e) { return make_event(e); }
proposed_event emit(const project_cell_removed& e) { return make_event(e); }
proposed_event emit(const project_cell_connection_set& e) { return make_event(e); }
proposed_event emit(const project_cell_changed& e) { return make_event(e); }

struct decider {
  const project_state& state;
  const principal& actor;

  [[nodiscard]] result<void> require(project_role at_least, const char* what) const {
    const auto role = state.role_of(actor);
    if (!role) return fail(errc::forbidden, "not a member of this project");
    if (*role < at_least) {
      return fail(errc::forbidden, std::string("only ") + what, {{"role", std::string(to_string(*role))}});
    }
    if (state.archived) return fail(errc::failed_precondition, "project is archived");
    return {};
  }

  result<events> operator()(const create_project& c) const {
    if (!actor.is_admin() && !actor.has(global_role::member)) {
      return fail(errc::forbidden, "only members and admins create projects");
    }
    if (state.exists) return fail(errc::already_exists, "project already exists");
    if (c.project_id.empty()) return fail(errc::invalid_argument, "project id is empty");
    if (auto ok = validate_name(c.name); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_description(c.description); !ok) return std::unexpected(ok.error());
    return events{emit(project_created{c.project_id, c.name, c.description, actor.user_id}),
                  emit(project_member_added{actor.user_id, "owner"})};
  }

  result<events> operator()(const update_project& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit"); !ok) return std::unexpected(ok.error());
    events out;
    if (c.name && *c.name != state.name) {
      if (auto ok = validate_name(*c.name); !ok) return std::unexpected(ok.error());
      out.push_back(emit(project_renamed{*c.name}));
    }
    if (c.description && *c.description != state.description) {
      if (auto ok = validate_description(*c.description); !ok) return std::unexpected(ok.error());
      out.push_back(emit(project_described{*c.description}));
    }
    return out;
  }

  result<events> operator()(const add_member& c) const {
    if (auto ok = require(project_role::owner, "owners share a project"); !ok) return std::unexpected(ok.error());
    if (c.user_id.empty()) return fail(errc::invalid_argument, "user_id is empty", {{"field", "user_id"}});
    const auto role = parse_project_role(c.role);
    if (!role) return fail(errc::invalid_argument, "role must be owner, editor or viewer", {{"field", "role"}});
    const auto it = state.members.find(c.user_id);
    if (it != state.members.end() && it->second == *role) return events{};
    if (it != state.members.end() && it->second == project_role::owner && state.owner_count() == 1) {
      return fail(errc::failed_precondition, "a project keeps at least one owner");
    }
    return events{emit(project_member_added{c.user_id, c.role})};
  }

  result<events> operator()(const remove_member& c) const {
    const bool leaving = c.user_id == actor.user_id && state.members.contains(actor.user_id);
    if (!leaving) {
      if (auto ok = require(project_role::owner, "owners remove members"); !ok) return std::unexpected(ok.error());
    } else if (state.archived) {
      return fail(errc::failed_precondition, "project is archived");
    }
    const auto it = state.members.find(c.user_id);
    if (it == state.members.end()) return fail(errc::not_found, "not a member", {{"user_id", c.user_id}});
    if (it->second == project_role::owner && state.owner_count() == 1) {
      return fail(errc::failed_precondition, "a project keeps at least one owner");
    }
    return events{emit(project_member_removed{c.user_id})};
  }

  result<events> operator()(const add_group& c) const {
    if (auto ok = require(project_role::owner, "owners share a project"); !ok) return std::unexpected(ok.error());
    if (c.group_id.empty()) return fail(errc::invalid_argument, "group_id is empty", {{"field", "group_id"}});
    const auto role = parse_project_role(c.role);
    if (!role) return fail(errc::invalid_argument, "role must be owner, editor or viewer", {{"field", "role"}});
    if (auto it = state.groups.find(c.group_id); it != state.groups.end() && it->second == *role) return events{};
    return events{emit(project_group_added{c.group_id, c.role})};
  }

  result<events> operator()(const remove_group& c) const {
    if (auto ok = require(project_role::owner, "owners remove groups"); !ok) return std::unexpected(ok.error());
    if (!state.groups.contains(c.group_id)) {
      return fail(errc::not_found, "the group has no role here", {{"group_id", c.group_id}});
    }
    return events{emit(project_group_removed{c.group_id})};
  }

  /// A cell may be placed after `after`: "" (first) or a live cell other than `self`.
  [[nodiscard]] result<void> placeable_after(const std::string& after, const std::string& self) const {
    if (after.empty() || state.find_cell(after)) {
      if (after == self) return fail(errc::invalid_argument, "a cell cannot follow itself", {{"field", "after"}});
      return {};
    }
    if (state.removed_cells.contains(after)) {
      return fail(errc::failed_precondition, "cell " + after + " was removed: it cannot be followed",
                  {{"field", "after"}, {"after", after}, {"removed", true}});
    }
    return fail(errc::invalid_argument, "no cell " + after + " in this project",
                {{"field", "after"}, {"after", after}});
  }

  [[nodiscard]] static result<void> check_size(const std::string& content) {
    if (content.size() > k_max_cell_bytes) {
      return fail(errc::payload_too_large, "cell content must be at most 262144 bytes",
                  {{"field", "content"}, {"limit", k_max_cell_bytes}});
    }
    return check_text(content, text_kind::multiline, "content");
  }

  /// The live cell `id`, or `not_found` (saying when it was removed).
  [[nodiscard]] result<const project_cell*> live_cell(const std::string& id) const {
    if (const auto* cell = state.find_cell(id)) return cell;
    if (state.removed_cells.contains(id)) {
      return fail(errc::not_found, "cell was removed", {{"cell_id", id}, {"removed", true}});
    }
    return fail(errc::not_found, "no such cell", {{"cell_id", id}});
  }

  /// `connection_id` may be given to a cell of `kind` by this caller: "" always; else a
  /// `sql` cell, a well-formed id, and a caller who may use it (admins use every one).
  [[nodiscard]] result<void> connectable(const std::string& kind, const std::string& connection_id, bool usable) const {
    if (connection_id.empty()) return {};
    if (kind != "sql") {
      return fail(errc::invalid_argument, "only sql cells take a connection",
                  {{"field", "connection_id"}, {"kind", kind}});
    }
    if (connection_id.size() > 64) {
      return fail(errc::invalid_argument, "connection_id is too long", {{"field", "connection_id"}});
    }
    if (auto ok = check_text(connection_id, text_kind::label, "connection_id"); !ok) return ok;
    if (!usable && !actor.is_admin()) {
      return fail(errc::forbidden, "you may not use this connection", {{"connection_id", connection_id}});
    }
    return {};
  }

  result<events> operator()(const add_cell& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit cells"); !ok) {
      return std::unexpected(ok.error());
    }
    if (c.cell_id.empty()) return fail(errc::invalid_argument, "cell_id is empty", {{"field", "cell_id"}});
    if (!valid_kind(c.kind)) {
      return fail(errc::invalid_argument, "kind must be markdown, sql, python or chart", {{"field", "kind"}});
    }
    if (auto ok = check_size(c.content); !ok) return std::unexpected(ok.error());
    if (auto ok = connectable(c.kind, c.connection_id, c.connection_usable); !ok) return std::unexpected(ok.error());
    if (const auto* cell = state.find_cell(c.cell_id)) {
      // A retried add (the client chose the id): the same cell is already there.
      if (cell->kind == c.kind && cell->content == c.content && cell->connection_id == c.connection_id) {
        return events{};
      }
      return fail(errc::already_exists, "a cell with this id exists", {{"cell_id", c.cell_id}});
    }
    if (state.removed_cells.contains(c.cell_id)) {
      return fail(errc::already_exists, "this cell id belonged to a removed cell", {{"cell_id", c.cell_id}});
    }
    const auto after = c.after ? *c.after : (state.cells.empty() ? std::string() : state.cells.back().cell_id);
    if (auto ok = placeable_after(after, c.cell_id); !ok) return std::unexpected(ok.error());
    if (state.cells.size() >= k_max_cells) {
      return fail(errc::failed_precondition, "a project holds at most 1000 cells", {{"limit", k_max_cells}});
    }
    if (total_bytes(state.cells) + c.content.size() > k_max_cells_bytes) {
      return fail(errc::payload_too_large, "the cells of a project hold at most 16 MiB",
                  {{"limit", k_max_cells_bytes}});
    }
    events out{emit(project_cell_added{c.cell_id, c.kind, c.content, after})};
    if (!c.connection_id.empty()) out.push_back(emit(project_cell_connection_set{c.cell_id, c.connection_id}));
    return out;
  }

  result<events> operator()(const set_cell_connection& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit cells"); !ok) {
      return std::unexpected(ok.error());
    }
    auto cell = live_cell(c.cell_id);
    if (!cell) return std::unexpected(cell.error());
    if (auto ok = connectable((*cell)->kind, c.connection_id, c.connection_usable); !ok) {
      return std::unexpected(ok.error());
    }
    if ((*cell)->connection_id == c.connection_id) return events{};
    return events{emit(project_cell_connection_set{c.cell_id, c.connection_id})};
  }

  result<events> operator()(const edit_cell& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit cells"); !ok) {
      return std::unexpected(ok.error());
    }
    if (!valid_op_id(c.op_id)) {
      return fail(errc::invalid_argument, "op_id must be 1-128 characters of [A-Za-z0-9._:-]", {{"field", "op_id"}});
    }
    auto cell = live_cell(c.cell_id);
    if (!cell) return std::unexpected(cell.error());
    // The op_id first: a retry of an applied edit has a stale base version by now, and
    // must be answered as done, not as a conflict.
    for (const auto& done : state.recent_edits) {
      if (done.op_id != c.op_id) continue;
      if (done.cell_id != c.cell_id) {
        return fail(errc::already_exists, "op_id was used for an edit of another cell",
                    {{"field", "op_id"}, {"op_id", c.op_id}, {"cell_id", done.cell_id}});
      }
      return events{};
    }
    if (c.base_version != (*cell)->version) {
      return fail(
          errc::version_conflict,
          "the cell is at version " + std::to_string((*cell)->version) + ", not " + std::to_string(c.base_version),
          {{"cell_id", c.cell_id},
           {"base_version", c.base_version},
           {"current_version", (*cell)->version},
           {"cell", cell_detail(state, **cell)}});
    }
    if (auto ok = check_size(c.content); !ok) return std::unexpected(ok.error());
    if (total_bytes(state.cells) - (*cell)->content.size() + c.content.size() > k_max_cells_bytes) {
      return fail(errc::payload_too_large, "the cells of a project hold at most 16 MiB",
                  {{"limit", k_max_cells_bytes}});
    }
    return events{emit(project_cell_edited{c.cell_id, c.content, (*cell)->version + 1, c.op_id})};
  }

  result<events> operator()(const change_cell& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit cells"); !ok) {
      return std::unexpected(ok.error());
    }
    if (!valid_client_id(c.client_id)) {
      return fail(errc::invalid_argument, "client_id must be 1-64 printable ASCII characters",
                  {{"field", "client_id"}});
    }
    if (c.updates.empty() || c.updates.size() > k_max_cell_updates) {
      return fail(errc::invalid_argument, "updates must hold 1 to 256 change sets",
                  {{"field", "updates"}, {"limit", k_max_cell_updates}});
    }
    auto cell = live_cell(c.cell_id);
    if (!cell) return std::unexpected(cell.error());
    // The shape first: a malformed request is refused whatever version it names.
    std::vector<change_set> parsed;
    parsed.reserve(c.updates.size());
    for (std::size_t i = 0; i < c.updates.size(); ++i) {
      auto cs = parse_change_set(c.updates[i]);
      if (!cs) return invalid_update(i, cs.error());
      parsed.push_back(std::move(*cs));
    }
    const auto current = (*cell)->version;
    if (c.base_version < (*cell)->oldest_base()) {
      return fail(
          errc::gone,
          "the cell's updates since version " + std::to_string(c.base_version) + " are no longer kept: reload the cell",
          {{"cell_id", c.cell_id}, {"version", current}, {"oldest_version", (*cell)->oldest_base()}});
    }
    if (c.base_version != current) {
      return fail(
          errc::version_conflict,
          "the cell is at version " + std::to_string(current) + ", not " + std::to_string(c.base_version),
          {{"cell_id", c.cell_id},
           {"version", current},
           {"updates", c.base_version < current ? updates_after(**cell, c.base_version) : nlohmann::json::array()}});
    }
    std::string content = (*cell)->content;
    for (std::size_t i = 0; i < parsed.size(); ++i) {
      auto next = apply_change_set(content, parsed[i]);
      if (!next) return invalid_update(i, next.error());
      // Checked after every update: intermediate documents are bounded too.
      if (next->size() > k_max_cell_bytes) {
        return fail(errc::payload_too_large, "cell content must be at most 262144 bytes",
                    {{"field", "updates"}, {"index", i}, {"limit", k_max_cell_bytes}});
      }
      content = std::move(*next);
    }
    if (total_bytes(state.cells) - (*cell)->content.size() + content.size() > k_max_cells_bytes) {
      return fail(errc::payload_too_large, "the cells of a project hold at most 16 MiB",
                  {{"limit", k_max_cells_bytes}});
    }
    return events{emit(project_cell_changed{c.cell_id, c.updates, c.client_id, current + c.updates.size()})};
  }

  /// `e` (about update `index`) as the decider's answer: `invalid_argument` naming it.
  static std::unexpected<error> invalid_update(std::size_t index, const error& e) {
    auto details = e.details.is_object() ? e.details : nlohmann::json::object();
    details["field"] = "updates";
    details["index"] = index;
    return fail(errc::invalid_argument, "update " + std::to_string(index) + ": " + e.message, std::move(details));
  }

  result<events> operator()(const move_cell& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit cells"); !ok) {
      return std::unexpected(ok.error());
    }
    auto cell = live_cell(c.cell_id);
    if (!cell) return std::unexpected(cell.error());
    if (auto ok = placeable_after(c.after, c.cell_id); !ok) return std::unexpected(ok.error());
    const auto i = index_of(state.cells, c.cell_id);
    const auto now_after = i == 0 ? std::string() : state.cells[i - 1].cell_id;
    if (now_after == c.after) return events{};
    return events{emit(project_cell_moved{c.cell_id, c.after})};
  }

  result<events> operator()(const remove_cell& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit cells"); !ok) {
      return std::unexpected(ok.error());
    }
    if (state.removed_cells.contains(c.cell_id)) return events{};
    if (!state.find_cell(c.cell_id)) return fail(errc::not_found, "no such cell", {{"cell_id", c.cell_id}});
    return events{emit(project_cell_removed{c.cell_id})};
  }

  result<events> operator()(const archive_project& c) const {
    if (state.archived && state.role_of(actor) == project_role::owner) return events{};
    if (auto ok = require(project_role::owner, "owners archive a project"); !ok) return std::unexpected(ok.error());
    return events{emit(project_archived{c.reason})};
  }
};

// evolve: one overload per project_event alternative (see project_decider.hpp).

void evolve(project_state& s, const project_created& e) {
  s.exists = true;
  s.project_id = e.project_id;
  s.name = e.name;
  s.description = e.description;
  s.created_by = e.created_by;
}

void evolve(project_state& s, const project_renamed& e) { s.name = e.name; }

void evolve(project_state& s, const project_described& e) { s.description = e.description; }

void evolve(project_state& s, const project_member_added& e) {
  if (auto r = parse_project_role(e.role)) s.members[e.user_id] = *r;
}

void evolve(project_state& s, const project_member_removed& e) { s.members.erase(e.user_id); }

void evolve(project_state& s, const project_archived&) { s.archived = true; }

void evolve(project_state& s, const project_group_added& e) {
  if (auto r = parse_project_role(e.role)) s.groups[e.group_id] = *r;
}

void evolve(project_state& s, const project_group_removed& e) { s.groups.erase(e.group_id); }

void evolve(project_state& s, const project_cell_added& e) {
  insert_after(s.cells, project_cell{e.cell_id, e.kind, e.content, 1}, e.after);
}

void evolve(project_state& s, const project_cell_edited& e) {
  if (const auto i = index_of(s.cells, e.cell_id); i < s.cells.size()) {
    auto& cell = s.cells[i];
    // Co-editing clients see a whole-cell edit as one update replacing the document.
    auto changes = replace_all_change(cell.content, e.content);
    const auto bytes = change_set_bytes(changes);
    cell.keep_update({e.version, std::move(changes), "", bytes});
    cell.content = e.content;
    cell.version = e.version;
  }
  s.recent_edits.push_back({e.op_id, e.cell_id, e.version});
  while (s.recent_edits.size() > k_recent_edits) s.recent_edits.pop_front();
}

void evolve(project_state& s, const project_cell_moved& e) {
  if (const auto i = index_of(s.cells, e.cell_id); i < s.cells.size()) {
    auto cell = std::move(s.cells[i]);
    s.cells.erase(s.cells.begin() + static_cast<std::ptrdiff_t>(i));
    insert_after(s.cells, std::move(cell), e.after);
  }
}

void evolve(project_state& s, const project_cell_removed& e) {
  if (const auto i = index_of(s.cells, e.cell_id); i < s.cells.size()) {
    s.cells.erase(s.cells.begin() + static_cast<std::ptrdiff_t>(i));
  }
  s.removed_cells.insert(e.cell_id);
  std::erase_if(s.recent_edits, [&](const auto& r) { return r.cell_id == e.cell_id; });
}

void evolve(project_state& s, const project_cell_changed& e) {
  const auto i = index_of(s.cells, e.cell_id);
  if (i >= s.cells.size()) return;
  auto& cell = s.cells[i];
  // The decider applied these already; a change set that does not apply here (a stored
  // event this fold cannot follow) leaves the content as it was, but versions and the
  // history still advance, so they stay those of the log.
  auto version = e.version - std::min<std::uint64_t>(e.version, e.changes.size());
  for (const auto& changes : e.changes) {
    if (auto cs = parse_change_set(changes)) {
      if (auto next = apply_change_set(cell.content, *cs)) cell.content = std::move(*next);
    }
    cell.keep_update({++version, changes, e.client_id, change_set_bytes(changes)});
  }
  cell.version = e.version;
}

void evolve(project_state& s, const project_cell_connection_set& e) {
  if (const auto i = index_of(s.cells, e.cell_id); i < s.cells.size()) s.cells[i].connection_id = e.connection_id;
}

/// The fallback: chosen only for a `project_event` alternative that has no overload above
/// (an exact non-template match beats it), and then it fails to compile.
template <class E>
void evolve(project_state&, const E&) {
  static_assert(no_handler_for<E>, "a project_event alternative has no evolve(project_state&, const E&) overload");
}

}  // namespace

std::optional<project_role> project_state::role_of(const principal& p) const {
  if (p.is_admin()) return project_role::owner;
  std::optional<project_role> best;
  if (auto it = members.find(p.user_id); it != members.end()) best = it->second;
  for (const auto& [group, role] : groups) {
    if (p.groups.contains(group) && (!best || role > *best)) best = role;
  }
  return best;
}

void project_cell::keep_update(cell_update u) {
  updates_bytes += u.bytes;
  updates.push_back(std::move(u));
  while (updates.size() > 1 && (updates.size() > k_cell_updates_kept || updates_bytes > k_cell_updates_bytes)) {
    updates_bytes -= updates.front().bytes;
    updates.pop_front();
  }
}

std::size_t project_state::owner_count() const {
  return static_cast<std::size_t>(
      std::count_if(members.begin(), members.end(), [](const auto& m) { return m.second == project_role::owner; }));
}

const project_cell* project_state::find_cell(std::string_view cell_id) const {
  const auto i = index_of(cells, cell_id);
  return i < cells.size() ? &cells[i] : nullptr;
}

result<std::vector<proposed_event>> decide(const project_state& state, const project_command& command,
                                           const principal& actor) {
  return decide_admitted<decider>(state, command, actor, "project", state.exists,
                                  std::holds_alternative<create_project>(command));
}

project_state evolve(project_state s, const project_event& event) {
  std::visit([&s](const auto& e) { evolve(s, e); }, event);
  return s;
}

std::string project_stream(std::string_view project_id) { return "project-" + std::string(project_id); }

}  // namespace atrium
