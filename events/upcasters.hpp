#pragma once
/// Schema evolution: upcasters turn a stored payload of an older schema into the payload
/// of the current schema when it is read. Stored bytes are never rewritten; every reader
/// (entity actors, projections, the offline tools) sees only current-schema payloads,
/// because `decode_event<Variant>(const envelope&)` upcasts before it decodes.
///
///   stored envelope {type: "x.y", schema: 1, data}
///        │ step (x.y, 1): schema 1 → 2
///        │ step (x.y, 2): schema 2 → 3        (one step per schema, applied in order)
///        ▼
///   data of the current schema (`event_type_info::schema`, i.e. the struct's `schema`)
///        │ decode_event
///        ▼
///   the event struct
///
/// The production steps are listed in `events/upcasters.cpp` (job.submitted, started,
/// progressed, succeeded and failed, container.declared and exited have a step from schema 1 to 2). The procedure for a
/// schema change is in docs/events.md, "Changing a payload schema"; tests/golden keeps one payload per type and schema
/// as the steps' inputs.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/error.hpp"

namespace atrium {

/// One upcast step of one event type: takes a payload of schema N and returns the same
/// event's payload in schema N + 1. It may throw `nlohmann::json::exception` on a payload
/// it cannot read; `upcaster_registry::upcast` reports that as `invalid_argument`.
using upcaster = std::function<nlohmann::json(nlohmann::json)>;

/// A table of event types, each with its current payload schema and the steps that lead
/// to it from every older schema. Immutable once built: `upcast` is safe to call from
/// any number of threads as long as no thread calls `add`.
class upcaster_registry {
 public:
  /// An empty registry (no steps) whose types and current schemas are those of the
  /// event-type registry, `event_types()`. This is the shape of `upcasters()`.
  upcaster_registry();

  /// An empty registry (no steps) with its own table of types, for tests and tools.
  /// Takes pairs (wire name, current schema ≥ 1); of a type listed twice the first pair
  /// counts.
  explicit upcaster_registry(const std::vector<std::pair<std::string, int>>& current_schemas);

  /// Registers the step of `type` from `from_schema` to `from_schema + 1`.
  /// Errors: `invalid_argument` when `type` is not in the table, `from_schema` is not in
  /// [1, current schema − 1], `step` is empty, or a step for (`type`, `from_schema`) is
  /// already registered.
  [[nodiscard]] result<void> add(std::string_view type, int from_schema, upcaster step);

  /// The current schema of `type` (≥ 1), or 0 when `type` is not in the table.
  [[nodiscard]] int current_schema(std::string_view type) const noexcept;

  /// Brings `data`, a payload of `type` in schema `schema`, to the current schema of
  /// `type` by applying the steps `schema` → `schema + 1` → … → current in order; a
  /// payload already at the current schema is returned unchanged (no step runs).
  /// Errors (all `invalid_argument`, details `{type, schema, current_schema}`): `type` is
  /// not in the table; `schema` is below 1 or newer than the current schema (written by
  /// a newer build); a step on the way is missing; a step threw on the payload.
  [[nodiscard]] result<nlohmann::json> upcast(std::string_view type, int schema, nlohmann::json data) const;

 private:
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct entry {
    int current = 1;
    std::vector<upcaster> steps;  ///< steps[n - 1] takes schema n to n + 1; size current − 1
  };
  std::unordered_map<std::string, entry, name_hash, std::equal_to<>> types_;
};

/// The process-wide registry that `decode_event(const envelope&)` uses: the types and
/// current schemas of `event_types()` and the production steps listed in
/// `events/upcasters.cpp`. Built on first use; never changes afterwards.
[[nodiscard]] const upcaster_registry& upcasters();

/// `upcasters().upcast(type, schema, data)`: takes a payload of `type` in schema
/// `schema` and returns it in the type's current schema (`event_type_info::schema`).
/// Errors: `invalid_argument` for an unknown type, a schema below 1 or newer than the
/// current one, a missing step, or a step that threw on the payload.
[[nodiscard]] result<nlohmann::json> upcast(std::string_view type, int schema, nlohmann::json data);

}  // namespace atrium
