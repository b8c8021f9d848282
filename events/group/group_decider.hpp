#pragma once
/// The group aggregate as pure code. A group has users and other groups as direct
/// members; a user belongs to a group transitively through nested groups (the adapter
/// resolves that set into `principal::groups`). Invariants: only admins and the creator
/// manage a group's members (the creator is also its first member); nesting never forms a cycle (a group is never
/// inside itself, directly or through other groups); a disabled user cannot act.
///
///   add_group_member{group, X, member_subgroups = groups inside X}
///        │ X == this group, or this group ∈ member_subgroups  → failed_precondition
///        ▼
///   group.member_added{group, X}

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"
#include "events/group/group_commands.hpp"
#include "events/group/group_events.hpp"
#include "events/principal.hpp"
#include "events/registry.hpp"

namespace atrium {

/// The folded state of one group.
struct group_state {
  bool exists = false;
  std::string group_id;
  std::string name;
  std::string description;
  std::string created_by;        ///< user id of the creator
  std::set<std::string> users;   ///< direct user members (bare user ids)
  std::set<std::string> groups;  ///< direct group members (group ids)
  std::uint64_t version = 0;     ///< stream version of the last folded event

  /// True when the principal may change the members: admins and the creator.
  [[nodiscard]] bool manages(const principal& p) const;
};

/// Decides a command. Errors: `forbidden` (caller disabled, an auditor or role-less user
/// creating, or not a manager), `not_found` (no such group; removing a non-member),
/// `already_exists` (creating an existing group), `invalid_argument` (bad id, name,
/// description, member type or member id; details name the `field`),
/// `failed_precondition` (a group added to itself, or an addition that would create a
/// cycle; details `{"cycle_through": <group id>}`). Adding an existing member decides no
/// events.
[[nodiscard]] result<std::vector<proposed_event>> decide(const group_state& state, const group_command& command,
                                                         const principal& actor);

/// Folds one event into the state (does not touch `version`).
///
/// Exhaustive by construction (events/exhaustive.hpp): group_decider.cpp has one overload
/// `evolve(group_state&, const <event>&)` per `group_event` alternative, dispatched with
/// `std::visit`, and a `static_assert` fallback template, so an alternative added to
/// `group_event` without its overload fails to compile. `decide` builds each event through
/// `emit(const <event>&)`, so `git grep "<event>&"` finds where it is decided and folded.
[[nodiscard]] group_state evolve(group_state state, const group_event& event);

/// The stream id of a group: `group-<id>`.
[[nodiscard]] std::string group_stream(std::string_view group_id);

}  // namespace atrium
