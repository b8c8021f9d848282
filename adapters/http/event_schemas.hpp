#pragma once
/// `GET /v1/schemas/events`: the JSON Schemas (draft 2020-12) of the event envelope and
/// of every event type's payload in every schema version, as kept in
/// docs/schemas/events (normative; docs/events.md, "Event schemas"). The files are
/// embedded at build time (cmake/embed_text.cmake writes
/// `embedded_event_schema_files()`), so the server answers exactly the repository's
/// files of the commit it was built from.

#include <span>
#include <string_view>

#include <nlohmann/json.hpp>

#include "adapters/http/router.hpp"
#include "events/error.hpp"

namespace atrium::http_adapter {

/// One embedded file: its name in docs/schemas/events and its bytes.
struct embedded_file {
  std::string_view name;  ///< e.g. `job.submitted.v2.schema.json`, `envelope.schema.json`, `catalog.json`
  std::string_view text;  ///< the file's content (UTF-8 JSON)
};

/// Every `*.json` file of docs/schemas/events, sorted by name (generated source).
[[nodiscard]] std::span<const embedded_file> embedded_event_schema_files();

/// The served document, built once from the embedded files:
/// `{"envelope": <envelope.schema.json>, "events": {"<type>": {"<N>": <schema>, …}, …}}`,
/// each schema inlined where catalog.json has `{"$ref": "<file>"}`. Errors
/// (`internal`): a file is not JSON, catalog.json or envelope.schema.json is missing, or
/// a `$ref` names no embedded file (a build from an inconsistent tree; the
/// `api: event schemas` test catches it first).
[[nodiscard]] const result<nlohmann::json>& event_schema_document();

/// Adds `GET /v1/schemas/events` to `t`: authenticated (any session; tokens with
/// `events:read` or `admin`). `?type=<event type>` narrows `events` to that type (400
/// `invalid_argument`, details `{"parameter": "type", "type": <given>}`, for an unknown
/// or empty one). Answers 200 with `event_schema_document()`.
void add_event_schema_routes(route_table& t);

}  // namespace atrium::http_adapter
