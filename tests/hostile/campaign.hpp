#pragma once
/// The generated HTTP campaign: the API's routes as data (route families), and the
/// hostile variants generated from each route — bad path segments, bad query values, bad
/// headers, malformed and wrongly typed bodies, NUL / invalid UTF-8 / control characters
/// / bidi overrides in every string field, oversized and deeply nested values, chunked
/// encoding abuse, duplicate and conflicting framing headers, lying Content-Length — each
/// with the answer it must get (docs/hostile.md lists the expectations).

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/hostile/hostile.hpp"

namespace atrium::hostile {

/// How strictly a string field's content is checked.
enum class field_kind {
  name,  ///< names, identifiers, enumerations: control characters, NUL, bidi overrides and huge values are refused
  text,  ///< free text (descriptions, content, SQL, passwords): may hold such characters, never a 5xx
};

/// How a query parameter is read.
/// `list`: a comma-separated list of names, `*` ending an entry at most (`?types=`,
/// `?streams=`).
enum class param_kind { number, text, choice, time, as_of, list };

/// A body the route must refuse (or tolerate), beyond the generated ones.
struct body_case {
  std::string label;
  json body;
  expect want = expect::reject;
};

/// One route of the API with a valid request for it.
struct route_spec {
  std::string method;
  std::string path;                          ///< segments holding `{…}` placeholders are the ones mutated
  std::string as;                            ///< "admin", "alice", "auditor" or "" (no token)
  json body;                                 ///< a valid body (placeholders filled), or null for none
  std::map<std::string, field_kind> fields;  ///< the body's string fields
  std::vector<std::string> numeric_fields;   ///< the body's integer fields
  std::map<std::string, param_kind> params;  ///< query parameters it reads
  std::vector<body_case> extra;              ///< route-specific bodies
  bool reads_body = true;                    ///< false: the route ignores any body
  bool body_optional = false;                ///< an empty body is fine
  bool destructive = false;       ///< the valid request would destroy a fixture: only path mutations are sent
  bool if_match = false;          ///< reads If-Match
  bool streaming = false;         ///< a valid request opens a stream: only refused variants are sent
  bool costly = false;            ///< a valid request costs a password hash: no parser-level header/framing variants
  expect base = expect::success;  ///< what the valid request gets
};

/// A group of routes that share a path prefix ("projects/{id}").
struct route_family {
  std::string name;
  std::vector<route_spec> routes;
};

/// Every route family of the HTTP API.
std::vector<route_family> http_families();

/// Runs every generated variant of the family's routes against `w`, judging each into
/// `t`, with `w.prove_alive` after each group of variants.
void run_family(world& w, tally& t, const route_family& f);

/// The request-line and header-syntax variants that do not depend on a route.
void run_request_syntax(world& w, tally& t);

/// The hostile variants of a route's target, for reuse over WebSocket commands:
/// `(label, target, expectation)`.
struct target_case {
  std::string label;
  std::string target;
  expect want;
};
std::vector<target_case> path_variants(world& w, const route_spec& r);
/// The hostile bodies of a route as strings (malformed JSON, wrong types, bad strings,
/// deep values), for reuse over WebSocket commands. `wire_only` ones (raw invalid UTF-8,
/// raw control bytes) cannot travel inside a JSON text frame and are left out when
/// `json_safe` is true.
struct body_variant {
  std::string label;
  std::string body;
  expect want;
};
std::vector<body_variant> body_variants(world& w, const route_spec& r, bool json_safe);

/// The token a route is called with.
const std::string& token_for(const world& w, const route_spec& r);

}  // namespace atrium::hostile
