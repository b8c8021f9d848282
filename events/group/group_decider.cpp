#include "events/group/group_decider.hpp"

#include <algorithm>
#include <cctype>

#include "events/decide.hpp"
#include "events/exhaustive.hpp"
#include "events/validation.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;

/// Ids end up in projection keys of the form `<id>/<id>`, so a `/` (or a space or a
/// control character) would make a key ambiguous.
result<void> validate_id(const std::string& id, const char* field) {
  const bool bad_char =
      std::any_of(id.begin(), id.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f || c == '/'; });
  if (id.empty() || id.size() > 128 || bad_char) {
    return fail(errc::invalid_argument,
                std::string(field) + " must be 1-128 characters without '/', spaces or control characters",
                {{"field", field}});
  }
  return {};
}

result<void> validate_member_type(const std::string& t) {
  if (t != "user" && t != "group") {
    return fail(errc::invalid_argument, "member_type must be user or group", {{"field", "member_type"}});
  }
  return {};
}

// decide: the group events the decider builds, one overload each (an event of another
// stream has none, so building it here fails to compile).
proposed_event emit(const group_created& e) { return make_event(e); }
proposed_event emit(const group_member_added& e) { return make_event(e); }
proposed_event emit(const group_member_removed& e) { return make_event(e); }

struct decider {
  const group_state& state;
  const principal& actor;

  [[nodiscard]] result<void> require_manager() const {
    if (!state.manages(actor)) return fail(errc::forbidden, "only admins and the group's creator manage its members");
    return {};
  }

  [[nodiscard]] const std::set<std::string>& members_of(const std::string& type) const {
    return type == "user" ? state.users : state.groups;
  }

  result<events> operator()(const create_group& c) const {
    if (!actor.is_admin() && !actor.has(global_role::member)) {
      return fail(errc::forbidden, "only members and admins create groups");
    }
    if (state.exists) return fail(errc::already_exists, "group already exists");
    if (auto ok = validate_id(c.group_id, "group_id"); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_name(c.name); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_description(c.description); !ok) return std::unexpected(ok.error());
    // The creator is the group's first member, so it shows in their own group list.
    return events{emit(group_created{c.group_id, c.name, c.description, actor.user_id}),
                  emit(group_member_added{"user", actor.user_id})};
  }

  result<events> operator()(const add_group_member& c) const {
    if (auto ok = require_manager(); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_member_type(c.member_type); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_id(c.member_id, "member_id"); !ok) return std::unexpected(ok.error());
    if (c.member_type == "group") {
      if (c.member_id == state.group_id) return fail(errc::failed_precondition, "a group cannot contain itself");
      // This group inside X, plus X inside this group, would close a loop.
      if (c.member_subgroups.contains(state.group_id)) {
        return fail(errc::failed_precondition, "adding this group would create a cycle",
                    {{"cycle_through", c.member_id}});
      }
    }
    if (members_of(c.member_type).contains(c.member_id)) return events{};
    return events{emit(group_member_added{c.member_type, c.member_id})};
  }

  result<events> operator()(const remove_group_member& c) const {
    if (auto ok = require_manager(); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_member_type(c.member_type); !ok) return std::unexpected(ok.error());
    if (!members_of(c.member_type).contains(c.member_id)) {
      return fail(errc::not_found, "not a member", {{"member_type", c.member_type}, {"member_id", c.member_id}});
    }
    return events{emit(group_member_removed{c.member_type, c.member_id})};
  }
};

// evolve: one overload per group_event alternative (see group_decider.hpp).

void evolve(group_state& s, const group_created& e) {
  s.exists = true;
  s.group_id = e.group_id;
  s.name = e.name;
  s.description = e.description;
  s.created_by = e.created_by;
}

void evolve(group_state& s, const group_member_added& e) {
  if (e.member_type == "user") s.users.insert(e.member_id);
  if (e.member_type == "group") s.groups.insert(e.member_id);
}

void evolve(group_state& s, const group_member_removed& e) {
  if (e.member_type == "user") s.users.erase(e.member_id);
  if (e.member_type == "group") s.groups.erase(e.member_id);
}

/// The fallback: chosen only for a `group_event` alternative that has no overload above
/// (an exact non-template match beats it), and then it fails to compile.
template <class E>
void evolve(group_state&, const E&) {
  static_assert(no_handler_for<E>, "a group_event alternative has no evolve(group_state&, const E&) overload");
}

}  // namespace

bool group_state::manages(const principal& p) const { return p.is_admin() || (exists && p.user_id == created_by); }

result<std::vector<proposed_event>> decide(const group_state& state, const group_command& command,
                                           const principal& actor) {
  return decide_admitted<decider>(state, command, actor, "group", state.exists,
                                  std::holds_alternative<create_group>(command));
}

group_state evolve(group_state s, const group_event& event) {
  std::visit([&s](const auto& e) { evolve(s, e); }, event);
  return s;
}

std::string group_stream(std::string_view group_id) { return "group-" + std::string(group_id); }

}  // namespace atrium
