#pragma once
/// Commands on the group aggregate.

#include <set>
#include <string>
#include <variant>

namespace atrium {

/// Create the group; the acting user becomes its manager. Members and admins only
/// (auditors change nothing).
struct create_group {
  std::string group_id;     ///< new id (UUIDv7), chosen by the caller
  std::string name;         ///< 1–200 characters, not blank
  std::string description;  ///< at most 10,000 characters
};

/// Make a user or a group a direct member. Managers only (admins and the creator).
struct add_group_member {
  std::string member_type;  ///< `user` or `group`
  std::string member_id;    ///< bare user id or group id
  /// For `member_type == "group"`: every group id nested inside the group being added,
  /// transitively, not including that group itself. Filled by the adapter from the
  /// `groups` projection so that the decider can refuse a cycle without I/O. Empty for
  /// users.
  std::set<std::string> member_subgroups;
};

/// Remove a direct member. Managers only.
struct remove_group_member {
  std::string member_type;  ///< `user` or `group`
  std::string member_id;    ///< bare user id or group id
};

/// Any command on a group stream.
using group_command = std::variant<create_group, add_group_member, remove_group_member>;

}  // namespace atrium
