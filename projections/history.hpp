#pragma once
/// History: the state of one entity folded from its stream's events, as the API serves
/// it. Pure (no storage calls): the caller reads the events — a whole stream for
/// `atriumd inspect`, or a prefix of it up to a position or time for time travel — and
/// this folds them with the aggregate's own `evolve`, exactly as an entity actor
/// hydrates:
///
///   stream id ──prefix──▶ aggregate (user-, project-, group-, connection-, job-, container-)
///   events ──decode_event──▶ evolve ─▶ … ─▶ state (version = last envelope's) ─▶ API view

#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/envelope.hpp"
#include "events/error.hpp"

namespace atrium {

/// Folds `events` (one stream's events in version order, possibly only its first ones)
/// into the entity they describe and returns its API view: `user_view` (never the
/// password hash), `project_view`, `group_view`, `connection_view` (never the vault
/// reference), `job_view` or `container_view`, chosen by the prefix of `stream`
/// (`user-`, `project-`, `group-`, `connection-`, `job-`, `container-`). The view's
/// `version` is the version of the last envelope folded.
///
/// Returns nullopt for streams of other kinds (e.g. `security-…`, `username-…`) and
/// when the events do not bring the entity into existence (no events, or none that
/// creates it). Errors: `invalid_argument` when an event does not decode into the
/// aggregate's events (unknown type or malformed payload); the message and the details
/// `{"position","type"}` name the event.
[[nodiscard]] result<std::optional<nlohmann::json>> fold_view(std::string_view stream,
                                                              const std::vector<envelope>& events);

}  // namespace atrium
