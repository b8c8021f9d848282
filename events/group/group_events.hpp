#pragma once
/// Events of the group aggregate (stream `group-<id>`). Catalog: docs/events.md.
///
/// A group holds users and other groups. Its members are folded from
/// `group.member_added` / `group.member_removed`; nesting is acyclic (the decider
/// refuses a cycle), so a user's transitive groups are a finite walk up the
/// `group_parents` index of the `groups` projection.

#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace atrium {

/// A group was created (always the stream's version 1).
struct group_created {
  static constexpr std::string_view type = "group.created";
  static constexpr int schema = 1;
  std::string group_id;
  std::string name;
  std::string description;
  std::string created_by;  ///< user id of the creator; the creator manages the group
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(group_created, group_id, name, description, created_by)

/// A user or a group became a direct member of the group.
struct group_member_added {
  static constexpr std::string_view type = "group.member_added";
  static constexpr int schema = 1;
  std::string member_type;  ///< `user` or `group`
  std::string member_id;    ///< bare user id or group id
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(group_member_added, member_type, member_id)

/// A direct member left the group.
struct group_member_removed {
  static constexpr std::string_view type = "group.member_removed";
  static constexpr int schema = 1;
  std::string member_type;  ///< `user` or `group`
  std::string member_id;    ///< bare user id or group id
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(group_member_removed, member_type, member_id)

/// The events of a `group-<id>` stream.
using group_event = std::variant<group_created, group_member_added, group_member_removed>;

}  // namespace atrium
