// Fuzz target: every command's JSON body parser, through `api::handle` on the real
// dependencies (tests/fuzz/harness.hpp). The input picks a route and its variations; the
// rest is the request body:
//
//   byte 0      route (index into k_routes, modulo)
//   byte 1      bit 0: as the member (@MTOKEN@) instead of the admin
//               bit 1: with an Idempotency-Key
//               bits 2-3: If-Match: 0 the project's version, 1 none, 2 W/"version",
//                         3 the body's first line (up to '\n') as the header's value
//   bytes 2..   the body (placeholders such as @USER@ replaced)
//
// This reaches `parse_object`, `string_field`, `named_body`, `parse_if_match` and
// `parse_u64` on every route that reads a body, and the deciders behind them.
#include <cstdint>
#include <string>

#include "tests/fuzz/harness.hpp"

namespace {

struct route {
  const char* method;
  const char* target;
};

constexpr route k_routes[] = {
    {"POST", "/v1/auth/login"},
    {"POST", "/v1/users"},
    {"PATCH", "/v1/users/@USER@"},
    {"POST", "/v1/users/@USER@/disable"},
    {"POST", "/v1/projects"},
    {"PATCH", "/v1/projects/@PROJECT@"},
    {"POST", "/v1/projects/@PROJECT@/members"},
    {"POST", "/v1/projects/@PROJECT@/cells"},
    {"PATCH", "/v1/projects/@PROJECT@/cells/@CELL@"},
    {"POST", "/v1/groups"},
    {"POST", "/v1/groups/@GROUP@/members"},
    {"POST", "/v1/connections"},
    {"PATCH", "/v1/connections/@CONN@"},
    {"POST", "/v1/connections/@CONN@/members"},
    {"POST", "/v1/connections/@CONN@/test"},
    {"POST", "/v1/jobs"},
    {"POST", "/v1/jobs/@JOB@/cancel"},
    {"POST", "/v1/containers"},
    {"POST", "/v1/containers/@CONTAINER@/start"},
    {"POST", "/v1/projects/@PROJECT@/cells/@CELL@/run"},
    {"POST", "/v1/schedules"},
    {"PATCH", "/v1/schedules/@SCHEDULE@"},
    {"POST", "/v1/schedules/@SCHEDULE@/pause"},
    {"POST", "/v1/service-accounts"},
    {"POST", "/v1/tokens"},
    {"POST", "/v1/service-accounts/@USER@/tokens"},  // a person: refused after the body is parsed
    // Remote workers (a lease no worker holds: the body is parsed, then 410 or 503).
    {"POST", "/v1/workers/claim"},
    {"POST", "/v1/workers/leases/0193a1c2-0000-7000-8000-000000000000/heartbeat"},
    {"POST", "/v1/workers/leases/0193a1c2-0000-7000-8000-000000000000/result"},
    {"POST", "/v1/workers/leases/0193a1c2-0000-7000-8000-000000000000/complete"},
    // Co-editing (CodeMirror change sets on the fixture cell, "select 1" at first).
    {"POST", "/v1/projects/@PROJECT@/cells/@CELL@/changes"},
    // Containers (issue 18): a spec change, the runtime's limits and health parsers.
    {"PATCH", "/v1/containers/@CONTAINER@"},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return -1;  // not a usable input: keep it out of the corpus
  auto& w = atrium::fuzz::world::get();
  w.note_input(data, size);
  const auto& r = k_routes[data[0] % std::size(k_routes)];
  const auto flags = data[1];
  std::string body(reinterpret_cast<const char*>(data) + 2, size - 2);

  atrium::http_adapter::http_request req;
  req.method = r.method;
  req.target = w.substitute(r.target);
  req.headers["authorization"] = "Bearer " + ((flags & 1) != 0 ? w.member_token() : w.admin_token());
  req.headers["content-type"] = "application/json";
  req.headers["user-agent"] = "atrium-fuzz";
  if ((flags & 2) != 0) req.headers["idempotency-key"] = "fuzz-" + std::to_string(size);
  switch ((flags >> 2) & 3) {
    case 0:
      req.headers["if-match"] = w.substitute("\"@PVER@\"");
      break;
    case 2:
      req.headers["if-match"] = w.substitute("W/\"@PVER@\"");
      break;
    case 3: {
      const auto nl = body.find('\n');
      req.headers["if-match"] = body.substr(0, nl);
      body = nl == std::string::npos ? std::string() : body.substr(nl + 1);
      break;
    }
    default:
      break;
  }
  req.body = w.substitute(std::move(body));
  req.remote = "127.0.0.1:40000";
  (void)w.call(std::move(req));
  w.after_input();
  return 0;
}
