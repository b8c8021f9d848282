#include "projections/history.hpp"

#include <string>
#include <utility>

#include "events/connection/connection_decider.hpp"
#include "events/container/container_decider.hpp"
#include "events/group/group_decider.hpp"
#include "events/job/job_decider.hpp"
#include "events/schedule/schedule_decider.hpp"
#include "projections/schedule_views.hpp"
#include "events/project/project_decider.hpp"
#include "events/registry.hpp"
#include "events/user/user_decider.hpp"
#include "projections/access_views.hpp"
#include "projections/ops_views.hpp"
#include "projections/views.hpp"

namespace atrium {
namespace {

/// Folds the events into `State` with `evolve`, as an entity actor hydrates (the
/// version comes from each envelope, since `evolve` leaves it alone), then renders it.
template <class State, class Event, class View>
result<std::optional<nlohmann::json>> fold(const std::vector<envelope>& events, View view) {
  State state;
  for (const auto& e : events) {
    auto event = decode_event<Event>(e);
    if (!event) {
      return fail(errc::invalid_argument,
                  "event at position " + std::to_string(e.position) + " (type " + e.type +
                      ") cannot be folded: " + event.error().message,
                  {{"position", e.position}, {"type", e.type}});
    }
    state = evolve(std::move(state), *event);
    state.version = e.version;
  }
  if (!state.exists) return std::optional<nlohmann::json>{};
  return std::optional<nlohmann::json>{view(state)};
}

}  // namespace

result<std::optional<nlohmann::json>> fold_view(std::string_view stream, const std::vector<envelope>& events) {
  // Prefixes end with '-', so `username-…` is not a user stream.
  if (stream.starts_with("user-")) {
    return fold<user_state, user_event>(events, [](const user_state& s) { return user_view(s); });
  }
  if (stream.starts_with("project-")) {
    return fold<project_state, project_event>(events, [](const project_state& s) { return project_view(s); });
  }
  if (stream.starts_with("group-")) {
    return fold<group_state, group_event>(events, [](const group_state& s) { return group_view(s); });
  }
  if (stream.starts_with("connection-")) {
    return fold<connection_state, connection_event>(events,
                                                    [](const connection_state& s) { return connection_view(s); });
  }
  if (stream.starts_with("job-")) {
    return fold<job_state, job_event>(events, [](const job_state& s) { return job_view(s); });
  }
  if (stream.starts_with("schedule-")) {
    return fold<schedule_state, schedule_event>(events, [](const schedule_state& s) { return schedule_view(s); });
  }
  if (stream.starts_with("container-")) {
    return fold<container_state, container_event>(events, [](const container_state& s) { return container_view(s); });
  }
  return std::optional<nlohmann::json>{};
}

}  // namespace atrium
