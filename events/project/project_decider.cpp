#include "events/project/project_decider.hpp"

#include <algorithm>
#include <cctype>

#include "events/validation.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;

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
    return events{make_event(project_created{c.project_id, c.name, c.description, actor.user_id}),
                  make_event(project_member_added{actor.user_id, "owner"})};
  }

  result<events> operator()(const update_project& c) const {
    if (auto ok = require(project_role::editor, "editors and owners edit"); !ok) return std::unexpected(ok.error());
    events out;
    if (c.name && *c.name != state.name) {
      if (auto ok = validate_name(*c.name); !ok) return std::unexpected(ok.error());
      out.push_back(make_event(project_renamed{*c.name}));
    }
    if (c.description && *c.description != state.description) {
      if (auto ok = validate_description(*c.description); !ok) return std::unexpected(ok.error());
      out.push_back(make_event(project_described{*c.description}));
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
    return events{make_event(project_member_added{c.user_id, c.role})};
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
    return events{make_event(project_member_removed{c.user_id})};
  }

  result<events> operator()(const add_group& c) const {
    if (auto ok = require(project_role::owner, "owners share a project"); !ok) return std::unexpected(ok.error());
    if (c.group_id.empty()) return fail(errc::invalid_argument, "group_id is empty", {{"field", "group_id"}});
    const auto role = parse_project_role(c.role);
    if (!role) return fail(errc::invalid_argument, "role must be owner, editor or viewer", {{"field", "role"}});
    if (auto it = state.groups.find(c.group_id); it != state.groups.end() && it->second == *role) return events{};
    return events{make_event(project_group_added{c.group_id, c.role})};
  }

  result<events> operator()(const remove_group& c) const {
    if (auto ok = require(project_role::owner, "owners remove groups"); !ok) return std::unexpected(ok.error());
    if (!state.groups.contains(c.group_id)) {
      return fail(errc::not_found, "the group has no role here", {{"group_id", c.group_id}});
    }
    return events{make_event(project_group_removed{c.group_id})};
  }

  result<events> operator()(const archive_project& c) const {
    if (state.archived && state.role_of(actor) == project_role::owner) return events{};
    if (auto ok = require(project_role::owner, "owners archive a project"); !ok) return std::unexpected(ok.error());
    return events{make_event(project_archived{c.reason})};
  }
};

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

std::size_t project_state::owner_count() const {
  return static_cast<std::size_t>(
      std::count_if(members.begin(), members.end(), [](const auto& m) { return m.second == project_role::owner; }));
}

result<std::vector<proposed_event>> decide(const project_state& state, const project_command& command,
                                           const principal& actor) {
  if (actor.disabled) return fail(errc::forbidden, "disabled users cannot act");
  if (!state.exists && !std::holds_alternative<create_project>(command)) {
    return fail(errc::not_found, "no such project");
  }
  return std::visit(decider{state, actor}, command);
}

project_state evolve(project_state s, const project_event& event) {
  std::visit(
      [&]<class E>(const E& e) {
        if constexpr (std::is_same_v<E, project_created>) {
          s.exists = true;
          s.project_id = e.project_id;
          s.name = e.name;
          s.description = e.description;
          s.created_by = e.created_by;
        } else if constexpr (std::is_same_v<E, project_renamed>) {
          s.name = e.name;
        } else if constexpr (std::is_same_v<E, project_described>) {
          s.description = e.description;
        } else if constexpr (std::is_same_v<E, project_member_added>) {
          if (auto r = parse_project_role(e.role)) s.members[e.user_id] = *r;
        } else if constexpr (std::is_same_v<E, project_member_removed>) {
          s.members.erase(e.user_id);
        } else if constexpr (std::is_same_v<E, project_archived>) {
          s.archived = true;
        } else if constexpr (std::is_same_v<E, project_group_added>) {
          if (auto r = parse_project_role(e.role)) s.groups[e.group_id] = *r;
        } else if constexpr (std::is_same_v<E, project_group_removed>) {
          s.groups.erase(e.group_id);
        }
      },
      event);
  return s;
}

std::string project_stream(std::string_view project_id) { return "project-" + std::string(project_id); }

}  // namespace atrium
