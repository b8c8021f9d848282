#pragma once
/// Events of the project aggregate (stream `project-<id>`). Catalog: docs/events.md.

#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace atrium {

/// A project was created; the creator is added as owner by a following
/// `project.member_added` in the same append.
struct project_created {
  static constexpr std::string_view type = "project.created";
  static constexpr int schema = 1;
  std::string project_id;
  std::string name;
  std::string description;
  std::string created_by;  ///< user id of the creator
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_created, project_id, name, description, created_by)

/// The project's name changed.
struct project_renamed {
  static constexpr std::string_view type = "project.renamed";
  static constexpr int schema = 1;
  std::string name;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_renamed, name)

/// The project's description changed.
struct project_described {
  static constexpr std::string_view type = "project.described";
  static constexpr int schema = 1;
  std::string description;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_described, description)

/// A user was given a role on the project (also used to change a member's role).
struct project_member_added {
  static constexpr std::string_view type = "project.member_added";
  static constexpr int schema = 1;
  std::string user_id;
  std::string role;  ///< owner, editor or viewer
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_member_added, user_id, role)

/// A user lost their role on the project.
struct project_member_removed {
  static constexpr std::string_view type = "project.member_removed";
  static constexpr int schema = 1;
  std::string user_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_member_removed, user_id)

/// A group was given a role on the project (also used to change its role): every user
/// in the group, directly or through nested groups, holds that role here.
struct project_group_added {
  static constexpr std::string_view type = "project.group_added";
  static constexpr int schema = 1;
  std::string group_id;
  std::string role;  ///< owner, editor or viewer
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_group_added, group_id, role)

/// A group lost its role on the project.
struct project_group_removed {
  static constexpr std::string_view type = "project.group_removed";
  static constexpr int schema = 1;
  std::string group_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_group_removed, group_id)

/// The project was archived: it stays readable and refuses every further change.
struct project_archived {
  static constexpr std::string_view type = "project.archived";
  static constexpr int schema = 1;
  std::string reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(project_archived, reason)

/// The events of a `project-<id>` stream.
using project_event =
    std::variant<project_created, project_renamed, project_described, project_member_added, project_member_removed,
                 project_archived, project_group_added, project_group_removed>;

}  // namespace atrium
