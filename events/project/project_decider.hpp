#pragma once
/// The project aggregate as pure code. Invariants: a project keeps at least one user
/// owner (direct, not through a group);
/// only owners share (add or remove members); only editors and owners edit; an
/// archived project refuses every change; a disabled user cannot act. Admins act as
/// owners of every project.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/project/project_commands.hpp"
#include "events/project/project_events.hpp"
#include "events/registry.hpp"

namespace atrium {

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
  std::uint64_t version = 0;  ///< stream version of the last folded event

  /// The role the principal holds here: admins count as owners; otherwise the most
  /// permissive of its direct role and the roles of every group in `p.groups`; nullopt
  /// if none.
  [[nodiscard]] std::optional<project_role> role_of(const principal& p) const;
  /// Number of direct user members with the owner role.
  [[nodiscard]] std::size_t owner_count() const;
};

/// Decides a command. Errors: `forbidden` (caller disabled, not a member, or role too
/// low; auditors change nothing), `not_found` (no such project or member),
/// `already_exists`, `invalid_argument` (bad name, description or role),
/// `failed_precondition` (archived, or the last owner would go).
[[nodiscard]] result<std::vector<proposed_event>> decide(const project_state& state, const project_command& command,
                                                         const principal& actor);

/// Folds one event into the state (does not touch `version`).
[[nodiscard]] project_state evolve(project_state state, const project_event& event);

/// The stream id of a project: `project-<id>`.
[[nodiscard]] std::string project_stream(std::string_view project_id);

}  // namespace atrium
