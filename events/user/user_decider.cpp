#include "events/user/user_decider.hpp"

#include <algorithm>
#include <cctype>

#include "events/decide.hpp"
#include "events/exhaustive.hpp"
#include "events/text.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;

result<global_role> require_role(const std::string& name) {
  if (auto r = parse_global_role(name)) return *r;
  return fail(errc::invalid_argument, "role must be admin, member or auditor", {{"field", "role"}});
}

result<void> validate_email(const std::string& email) {
  const auto at = email.find('@');
  if (email.size() > 254 || at == std::string::npos || at == 0 || at + 1 == email.size() ||
      email.find('@', at + 1) != std::string::npos ||
      std::any_of(email.begin(), email.end(), [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); })) {
    return fail(errc::invalid_argument, "email must look like name@domain", {{"field", "email"}});
  }
  return {};
}

// decide: the user events the decider builds, one overload each (an event of another
// stream has none, so building it here fails to compile).
proposed_event emit(const user_registered& e) { return make_event(e); }
proposed_event emit(const user_role_granted& e) { return make_event(e); }
proposed_event emit(const user_role_revoked& e) { return make_event(e); }
proposed_event emit(const user_password_changed& e) { return make_event(e); }
proposed_event emit(const user_disabled& e) { return make_event(e); }
proposed_event emit(const user_service_account_created& e) { return make_event(e); }

struct decider {
  const user_state& state;
  const principal& actor;

  result<events> operator()(const register_user& c) const {
    if (!actor.is_admin()) return fail(errc::forbidden, "only admins register users");
    if (state.exists) return fail(errc::already_exists, "user already exists", {{"user_id", state.user_id}});
    if (c.user_id.empty()) return fail(errc::invalid_argument, "user id is empty");
    auto name = normalize_username(c.username);
    if (!name) return std::unexpected(name.error());
    if (auto ok = validate_email(c.email); !ok) return std::unexpected(ok.error());
    if (auto r = require_role(c.role); !r) return std::unexpected(r.error());
    if (c.password_hash.empty()) return fail(errc::invalid_argument, "password hash is empty");
    return events{emit(user_registered{c.user_id, *name, c.email, c.role, c.password_hash})};
  }

  result<events> operator()(const grant_role& c) const {
    if (!actor.is_admin()) return fail(errc::forbidden, "only admins grant roles");
    auto r = require_role(c.role);
    if (!r) return std::unexpected(r.error());
    if (state.roles.contains(*r)) return events{};
    return events{emit(user_role_granted{c.role})};
  }

  result<events> operator()(const revoke_role& c) const {
    if (!actor.is_admin()) return fail(errc::forbidden, "only admins revoke roles");
    auto r = require_role(c.role);
    if (!r) return std::unexpected(r.error());
    if (*r == global_role::admin && actor.user_id == state.user_id) {
      return fail(errc::failed_precondition, "an admin cannot revoke their own admin role");
    }
    if (!state.roles.contains(*r)) return events{};
    return events{emit(user_role_revoked{c.role})};
  }

  result<events> operator()(const change_password& c) const {
    if (!actor.is_admin() && actor.user_id != state.user_id) {
      return fail(errc::forbidden, "only the user or an admin changes a password");
    }
    if (actor.user_id == state.user_id && !c.current_password_verified) {
      return fail(errc::forbidden, "changing one's own password requires the current password",
                  {{"field", "current_password"}});
    }
    if (state.disabled) return fail(errc::failed_precondition, "user is disabled");
    if (state.is_service()) return fail(errc::failed_precondition, "a service account has no password");
    if (c.password_hash.empty()) return fail(errc::invalid_argument, "password hash is empty");
    return events{emit(user_password_changed{c.password_hash})};
  }

  result<events> operator()(const register_service_account& c) const {
    if (!actor.is_admin()) return fail(errc::forbidden, "only admins create service accounts");
    if (state.exists) return fail(errc::already_exists, "user already exists", {{"user_id", state.user_id}});
    if (c.user_id.empty()) return fail(errc::invalid_argument, "user id is empty");
    auto name = normalize_username(c.name);
    if (!name) {
      return fail(errc::invalid_argument, "name must be 3-32 characters of a-z, 0-9, '.', '_' or '-'",
                  {{"field", "name"}});
    }
    if (c.description.size() > 1000) {
      return fail(errc::invalid_argument, "description must be at most 1000 bytes", {{"field", "description"}});
    }
    if (auto ok = check_text(c.description, text_kind::multiline, "description"); !ok) {
      return std::unexpected(ok.error());
    }
    if (auto r = require_role(c.role); !r) return std::unexpected(r.error());
    return events{emit(user_service_account_created{c.user_id, *name, c.description, c.role})};
  }

  result<events> operator()(const disable_user& c) const {
    if (!actor.is_admin()) return fail(errc::forbidden, "only admins disable users");
    if (actor.user_id == state.user_id) return fail(errc::failed_precondition, "a user cannot disable themself");
    if (state.disabled) return events{};
    return events{emit(user_disabled{c.reason})};
  }
};

// evolve: one overload per user_event alternative (see user_decider.hpp).

void evolve(user_state& s, const user_registered& e) {
  s.exists = true;
  s.user_id = e.user_id;
  s.username = e.username;
  s.email = e.email;
  if (auto r = parse_global_role(e.role)) s.roles.insert(*r);
  s.password_hash = e.password_hash;
}

void evolve(user_state& s, const user_role_granted& e) {
  if (auto r = parse_global_role(e.role)) s.roles.insert(*r);
}

void evolve(user_state& s, const user_role_revoked& e) {
  if (auto r = parse_global_role(e.role)) s.roles.erase(*r);
}

void evolve(user_state& s, const user_password_changed& e) { s.password_hash = e.password_hash; }

void evolve(user_state& s, const user_disabled&) { s.disabled = true; }

void evolve(user_state& s, const user_service_account_created& e) {
  s.exists = true;
  s.user_id = e.user_id;
  s.username = e.name;
  s.kind = "service";
  s.description = e.description;
  if (auto r = parse_global_role(e.role)) s.roles.insert(*r);
}

/// The fallback: chosen only for a `user_event` alternative that has no overload above
/// (an exact non-template match beats it), and then it fails to compile.
template <class E>
void evolve(user_state&, const E&) {
  static_assert(no_handler_for<E>, "a user_event alternative has no evolve(user_state&, const E&) overload");
}

}  // namespace

result<std::vector<proposed_event>> decide(const user_state& state, const user_command& command,
                                           const principal& actor) {
  const bool registers =
      std::holds_alternative<register_user>(command) || std::holds_alternative<register_service_account>(command);
  return decide_admitted<decider>(state, command, actor, "user", state.exists, registers);
}

user_state evolve(user_state s, const user_event& event) {
  std::visit([&s](const auto& e) { evolve(s, e); }, event);
  return s;
}

result<std::string> normalize_username(std::string_view raw) {
  std::string name(raw);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool ok = name.size() >= 3 && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                  });
  if (!ok) {
    return fail(errc::invalid_argument, "username must be 3-32 characters of a-z, 0-9, '.', '_' or '-'",
                {{"field", "username"}});
  }
  return name;
}

std::string username_stream(std::string_view normalized) { return "username-" + std::string(normalized); }

std::string user_stream(std::string_view user_id) { return "user-" + std::string(user_id); }

}  // namespace atrium
