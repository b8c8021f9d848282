#pragma once
/// The checks every aggregate's `decide` makes before its decider sees a command (the
/// pattern of every events/<entity>/<entity>_decider.cpp), so that every entity answers
/// them with the same error:
///
///   1. a disabled actor cannot act: `forbidden` "disabled users cannot act";
///   2. a command on an entity that does not live — never created, or deleted/removed —
///      is `not_found` "no such <entity>", unless the command creates it (the decider
///      then answers `already_exists` for one that was created before).
///
/// Then the command goes to the decider: `std::visit(Decider{state, actor}, command)`.

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "events/envelope.hpp"
#include "events/error.hpp"
#include "events/principal.hpp"

namespace atrium {

/// `not_found` "no such <entity>" (`entity`: `project`, `job`, `schedule`, …), without
/// details.
[[nodiscard]] inline error no_such(std::string_view entity) {
  return error{errc::not_found, "no such " + std::string(entity)};
}

/// Checks 1 and 2 above for `actor` on an entity of kind `entity`; `live`: the entity
/// exists and was not deleted; `creates`: the command creates it.
[[nodiscard]] inline result<void> admit_command(const principal& actor, std::string_view entity, bool live,
                                                bool creates) {
  if (actor.disabled) return fail(errc::forbidden, "disabled users cannot act");
  if (!live && !creates) return std::unexpected(no_such(entity));
  return {};
}

/// `decide` for an aggregate whose `Decider` is `{const State& state; const principal&
/// actor;}` with one `operator()` per command alternative: `admit_command`, then the
/// decider's answer.
template <class Decider, class State, class Command>
[[nodiscard]] result<std::vector<proposed_event>> decide_admitted(const State& state, const Command& command,
                                                                  const principal& actor, std::string_view entity,
                                                                  bool live, bool creates) {
  if (auto ok = admit_command(actor, entity, live, creates); !ok) return std::unexpected(ok.error());
  return std::visit(Decider{state, actor}, command);
}

}  // namespace atrium
