#pragma once
/// The stable identifier of an event payload's JSON Schema: the `$id` of
/// docs/schemas/events/<type>.v<N>.schema.json (docs/events.md, "Event schemas"), and the
/// CloudEvents `dataschema` attribute of every Kafka message (docs/integrations.md).

#include <string>
#include <string_view>

namespace atrium {

/// The base every event schema `$id` starts with.
inline constexpr std::string_view event_schema_base = "https://atrium.dev/schemas/events/";

/// `https://atrium.dev/schemas/events/<type>.v<schema>.schema.json` for the payload of
/// `type` (a wire name, e.g. `job.submitted`) in payload schema `schema` (≥ 1). Pure
/// string building: it does not check that the type is registered.
[[nodiscard]] inline std::string event_schema_uri(std::string_view type, int schema) {
  std::string out(event_schema_base);
  out.append(type).append(".v").append(std::to_string(schema)).append(".schema.json");
  return out;
}

}  // namespace atrium
