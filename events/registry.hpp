#pragma once
/// The registry of event types: wire name, payload schema version, owning entity and
/// which payload fields are secret (removed from every API response).
///
/// Each event is one struct with `static constexpr std::string_view type` (wire name),
/// `static constexpr int schema`, and nlohmann to_json/from_json. A stream's events form
/// a `std::variant`; `decode_event<Variant>` turns an envelope into it, upcasting a
/// payload of an older schema first (events/upcasters.hpp).

#include <span>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "events/envelope.hpp"
#include "events/upcasters.hpp"

namespace atrium {

/// One registered event type.
struct event_type_info {
  std::string_view type;                   ///< wire name, e.g. `user.registered`
  int schema = 1;                          ///< current payload schema
  std::string_view entity;                 ///< the part before the dot, e.g. `user`
  std::vector<std::string_view> redacted;  ///< payload fields never served by the API
};

/// Every registered event type, in catalog order (see docs/events.md).
[[nodiscard]] const std::vector<event_type_info>& event_types();

/// The registry entry for a wire name, or nullptr if unknown.
[[nodiscard]] const event_type_info* find_event_type(std::string_view type);

namespace detail {
template <class T>
concept has_redacted = requires {
  T::redacted;
};
}  // namespace detail

/// Registry entry for an event struct.
template <class T>
event_type_info make_type_info() {
  event_type_info info{T::type, T::schema, T::type.substr(0, T::type.find('.')), {}};
  if constexpr (detail::has_redacted<T>) {
    for (auto f : T::redacted) info.redacted.push_back(f);
  }
  return info;
}

/// Builds the proposed event for a payload struct (metadata is filled in by the actor).
template <class T>
[[nodiscard]] proposed_event make_event(const T& payload) {
  proposed_event e;
  e.type = std::string(T::type);
  e.schema = T::schema;
  e.data = payload;
  return e;
}

/// Decodes a payload of the *current* schema of `type` into the event variant of its
/// stream; no upcasting (use the envelope overload for stored events). Takes the wire
/// name and the payload object; returns the alternative whose `T::type` is `type`.
/// Reports `invalid_argument` when the type is not one of the variant's alternatives or
/// the payload is malformed.
template <class Variant>
[[nodiscard]] result<Variant> decode_event(std::string_view type, const nlohmann::json& data) {
  result<Variant> out = fail(errc::invalid_argument, "unknown event type: " + std::string(type));
  auto try_one = [&]<class T>(std::type_identity<T>) {
    if (out || type != T::type) return;
    try {
      out = Variant{data.get<T>()};
    } catch (const nlohmann::json::exception& ex) {
      out = fail(errc::invalid_argument, std::string(type) + ": malformed payload: " + ex.what());
    }
  };
  [&]<class... Ts>(std::type_identity<std::variant<Ts...>>) {
    (try_one(std::type_identity<Ts>{}), ...);
  }(std::type_identity<Variant>{});
  return out;
}

/// Decodes a stored event into the event variant of its stream: takes the envelope's
/// `type`, `schema` and `data`, brings `data` from `e.schema` to the current schema with
/// `upcasters` (default: the process-wide `upcasters()`), then decodes it as above.
/// A payload already at the current schema is decoded in place, without a copy.
/// Reports `invalid_argument` when the type is unknown to `upcasters`, the schema is
/// newer than the current one (written by a newer build) or has no upcaster path, an
/// upcaster fails, the type is not one of the variant's alternatives, or the payload
/// is malformed.
template <class Variant>
[[nodiscard]] result<Variant> decode_event(const envelope& e,
                                           const upcaster_registry& upcasters = atrium::upcasters()) {
  if (e.schema == upcasters.current_schema(e.type)) return decode_event<Variant>(e.type, e.data);
  auto data = upcasters.upcast(e.type, e.schema, e.data);
  if (!data) return std::unexpected(std::move(data.error()));
  return decode_event<Variant>(e.type, *data);
}

}  // namespace atrium
