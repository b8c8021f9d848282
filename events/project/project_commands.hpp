#pragma once
/// Commands on the project aggregate.

#include <optional>
#include <string>
#include <variant>

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

/// Any command on a project stream.
using project_command =
    std::variant<create_project, update_project, add_member, remove_member, archive_project, add_group, remove_group>;

}  // namespace atrium
