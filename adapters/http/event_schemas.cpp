#include "adapters/http/event_schemas.hpp"

#include <string>

#include "adapters/http/call.hpp"
#include "events/text.hpp"

namespace atrium::http_adapter {
namespace {

using json = nlohmann::json;

result<json> build_document() {
  json files = json::object();
  for (const auto& f : embedded_event_schema_files()) {
    auto parsed = json::parse(f.text, nullptr, false);
    if (parsed.is_discarded())
      return fail(errc::internal, "embedded event schema " + std::string(f.name) + " is not JSON");
    files[std::string(f.name)] = std::move(parsed);
  }
  if (!files.contains("catalog.json") || !files.contains("envelope.schema.json")) {
    return fail(errc::internal, "embedded event schemas lack catalog.json or envelope.schema.json");
  }
  json events = json::object();
  for (const auto& [type, versions] : files["catalog.json"].items()) {
    if (!versions.is_object()) return fail(errc::internal, "catalog.json: " + type + " is not an object");
    for (const auto& [n, entry] : versions.items()) {
      const auto ref = entry.is_object() ? entry.value("$ref", json()) : json();
      if (!ref.is_string()) {
        events[type][n] = entry;  // an inline schema
        continue;
      }
      const auto it = files.find(ref.get<std::string>());
      if (it == files.end())
        return fail(errc::internal, "catalog.json: " + type + " " + n + " names no file " + ref.get<std::string>());
      events[type][n] = *it;
    }
  }
  return json{{"envelope", files["envelope.schema.json"]}, {"events", std::move(events)}};
}

void serve(const call_ptr& c) {
  const auto& doc = event_schema_document();
  if (!doc) return send_error(c, doc.error());
  const auto type = c->query.find("type");
  if (type == c->query.end()) return send(c, 200, *doc);
  const auto& events = (*doc)["events"];
  const auto found = events.find(type->second);
  if (type->second.empty() || found == events.end()) {
    const auto shown = truncate_utf8(repair_utf8(type->second), 128);
    return send_error(
        c, error{errc::invalid_argument, "unknown event type: " + shown, json{{"parameter", "type"}, {"type", shown}}});
  }
  send(c, 200, json{{"envelope", (*doc)["envelope"]}, {"events", json{{found.key(), *found}}}});
}

}  // namespace

const result<json>& event_schema_document() {
  static const result<json> doc = build_document();
  return doc;
}

void add_event_schema_routes(route_table& t) {
  // Any session; API tokens that read events (`events:read`) or hold `admin`.
  t.add({"GET", "/v1/schemas/events", [](auto& c, auto&, auto&) { serve(c); }, route_access::authenticated,
         access::route_class::event_read})
      .query = {"type"};
}

}  // namespace atrium::http_adapter
