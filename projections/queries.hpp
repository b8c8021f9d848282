#pragma once
/// The read side's answer to the query port (ports/queries.hpp): every query the API
/// asks, read from the rows the projections of this folder write (projections.hpp
/// lists the tables) through the read-model store, and — for time travel — folded from
/// the event store with the aggregates' own `evolve` (history.hpp). Knows the tables
/// and the row forms so that no adapter has to.
///
/// Thread-safe as the stores are: it keeps no state of its own.

#include <memory>

#include "ports/event_store.hpp"
#include "ports/queries.hpp"
#include "ports/read_model_store.hpp"

namespace atrium {

/// The query port over `rows` and `events`; both must outlive the result.
[[nodiscard]] std::unique_ptr<ports::queries> make_queries(const ports::read_model_store& rows,
                                                           const ports::event_store& events);

/// True when `row` (an audit entry as stored or served) passes every filter of `f`.
[[nodiscard]] bool audit_matches(const ports::audit_filter& f, const nlohmann::json& row);

/// A walk over the audit entries (`ports::audit_queries::walk`) reading `rows`.
[[nodiscard]] std::unique_ptr<ports::audit_walk> make_audit_walk(const ports::read_model_store& rows,
                                                                 const ports::audit_filter& filter, bool backward,
                                                                 std::size_t batch);

}  // namespace atrium
