#pragma once
/// Commands on the project aggregate.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium {

/// Create the project; the acting user becomes its owner. Members and admins only
/// (auditors change nothing).
struct create_project {
  std::string project_id;   ///< new id (UUIDv7), chosen by the caller
  std::string name;         ///< 1–200 characters, not blank
  std::string description;  ///< at most 10,000 characters
};

/// Change name and/or description. Editors and owners.
struct update_project {
  std::optional<std::string> name;
  std::optional<std::string> description;
};

/// Give a user a role (or change it). Owners only.
struct add_member {
  std::string user_id;
  std::string role;  ///< owner, editor or viewer
};

/// Take a user's role away. Owners, or a member leaving on their own.
struct remove_member {
  std::string user_id;
};

/// Give a group a role (or change it). Owners only.
struct add_group {
  std::string group_id;
  std::string role;  ///< owner, editor or viewer
};

/// Take a group's role away. Owners only.
struct remove_group {
  std::string group_id;
};

/// Archive the project. Owners only; archiving twice is a no-op.
struct archive_project {
  std::string reason;
};

/// Add a cell. Editors and owners. Adding a live cell again with the same kind and
/// content is a no-op (a retried add with a client-chosen id).
struct add_cell {
  std::string cell_id;  ///< new id (UUIDv7), chosen by the API or the client
  std::string kind;     ///< markdown, sql, python or chart
  std::string content;  ///< at most `k_max_cell_bytes`
  /// The live cell it follows ("" = first); nullopt = after the last cell.
  std::optional<std::string> after;
  /// `sql` cells only: the connection its runs use ("" = none). A non-empty one is set
  /// by a `project.cell_connection_set` in the same append.
  std::string connection_id;
  bool connection_usable = false;  ///< whether the caller may use `connection_id` (the adapter resolves it)
};

/// Replace a cell's content. Editors and owners. `base_version` must be the cell's
/// current version (else `version_conflict` with the current cell); an `op_id` already
/// applied to this cell is a no-op.
struct edit_cell {
  std::string cell_id;
  std::string content;  ///< at most `k_max_cell_bytes`
  std::uint64_t base_version = 0;
  std::string op_id;  ///< 1-128 characters of [A-Za-z0-9._:-]
};

/// Apply character-level changes to a cell (co-editing; docs/realtime.md "Co-editing").
/// Editors and owners. `base_version` must be the cell's current version: an older one
/// is refused with `version_conflict` carrying every update since (so the client can
/// rebase), or `gone` when those are no longer kept; a newer one with `version_conflict`.
struct change_cell {
  std::string cell_id;
  std::uint64_t base_version = 0;
  std::string client_id;                ///< 1-64 printable ASCII characters
  std::vector<nlohmann::json> updates;  ///< 1-256 change sets (ChangeSet JSON), applied in order
};

/// Move a cell so that it follows `after` ("" = first). Editors and owners; moving to
/// where it already is is a no-op.
struct move_cell {
  std::string cell_id;
  std::string after;
};

/// Remove a cell. Editors and owners; removing a removed cell is a no-op.
struct remove_cell {
  std::string cell_id;
};

/// Set (or clear, with "") the connection of a `sql` cell. Editors and owners who may
/// use the connection (admins may use every connection); setting the connection it
/// already has is a no-op.
struct set_cell_connection {
  std::string cell_id;
  std::string connection_id;       ///< "" = clear
  bool connection_usable = false;  ///< whether the caller may use `connection_id` (the adapter resolves it)
};

/// Any command on a project stream.
using project_command =
    std::variant<create_project, update_project, add_member, remove_member, archive_project, add_group, remove_group,
                 add_cell, edit_cell, move_cell, remove_cell, set_cell_connection, change_cell>;

}  // namespace atrium
