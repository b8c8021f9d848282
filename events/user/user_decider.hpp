#pragma once
/// The user aggregate as pure code: `decide` checks a command against the state and
/// the acting principal and returns the events to append (possibly none: an
/// idempotent no-op) or a domain error; `evolve` folds one event into the state.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/registry.hpp"
#include "events/user/user_commands.hpp"
#include "events/user/user_events.hpp"

namespace atrium {

/// The folded state of one user.
struct user_state {
  bool exists = false;
  std::string user_id;
  std::string username;
  std::string email;
  std::set<global_role> roles;
  std::string password_hash;
  bool disabled = false;
  /// `person` (registered with a password) or `service` (a service account: no password,
  /// acts only through API tokens).
  std::string kind = "person";
  std::string description;    ///< a service account's description ("" for people)
  std::uint64_t version = 0;  ///< stream version of the last folded event

  [[nodiscard]] bool is_service() const { return kind == "service"; }
};

/// Decides a command. Errors: `forbidden` (caller disabled or lacks the role; a user
/// changing their own password without `current_password_verified`),
/// `not_found` (no such user), `already_exists` (id taken), `invalid_argument`
/// (bad username, email, role or hash), `failed_precondition` (self-lockout).
[[nodiscard]] result<std::vector<proposed_event>> decide(const user_state& state, const user_command& command,
                                                         const principal& actor);

/// Folds one event into the state (does not touch `version`).
///
/// Exhaustive by construction (events/exhaustive.hpp): user_decider.cpp has one overload
/// `evolve(user_state&, const <event>&)` per `user_event` alternative, dispatched with
/// `std::visit`, and a `static_assert` fallback template, so an alternative added to
/// `user_event` without its overload fails to compile. `decide` builds each event through
/// `emit(const <event>&)`, so `git grep "<event>&"` finds where it is decided and folded.
[[nodiscard]] user_state evolve(user_state state, const user_event& event);

/// Checks a username's form: 3–32 characters of [a-z0-9._-] after lowercasing.
[[nodiscard]] result<std::string> normalize_username(std::string_view raw);

/// The uniqueness-claim stream of a normalized username: `username-<name>`.
[[nodiscard]] std::string username_stream(std::string_view normalized);

/// The stream id of a user: `user-<id>`.
[[nodiscard]] std::string user_stream(std::string_view user_id);

}  // namespace atrium
