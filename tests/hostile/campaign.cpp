#include "tests/hostile/campaign.hpp"

#include <optional>

namespace atrium::hostile {
namespace {

using fk = field_kind;
using pk = param_kind;
using test::raw_exchange;
using test::raw_options;
using test::raw_request;

std::string hex(std::size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx", n);
  return buf;
}

/// Splits "/v1/a/{P}" into segments ("v1", "a", "{P}").
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t at = 1;
  while (at <= path.size()) {
    auto next = path.find('/', at);
    if (next == std::string::npos) next = path.size();
    out.push_back(path.substr(at, next - at));
    at = next + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& segs) {
  std::string out;
  for (const auto& s : segs) out += "/" + s;
  return out;
}

/// Path segment values that name nothing and must be refused (400 or 404).
const std::vector<std::pair<std::string, std::string>>& bad_segments() {
  static const std::vector<std::pair<std::string, std::string>> v{
      {"%FF (invalid UTF-8)", "%FF"},
      {"%FF%FE", "%FF%FE"},
      {"%C3%28 (bad continuation)", "%C3%28"},
      {"%C3 (truncated UTF-8)", "x%C3"},
      {"%C0%AF (overlong)", "%C0%AF"},
      {"%ED%A0%80 (surrogate)", "%ED%A0%80"},
      {"%F4%90%80%80 (beyond U+10FFFF)", "%F4%90%80%80"},
      {"%00 (NUL)", "%00"},
      {"a%00b", "a%00b"},
      {"a%0Ab (LF)", "a%0Ab"},
      {"%0D%0A (CRLF)", "%0D%0AX-Injected:%201"},
      {"%1B (escape)", "%1B%5B31m"},
      {"%7F (DEL)", "%7F"},
      {"%E2%80%AE (U+202E)", "%E2%80%AEevil"},
      {"bare %", "%"},
      {"bad escape %G1", "%G1"},
      {"..", ".."},
      {"%2E%2E", "%2E%2E"},
      {"%2F (encoded slash)", "a%2Fb"},
      {"4096-byte segment", std::string(4096, 'a')},
      {"raw byte 0xFF", "\xFF"},
      {"raw UTF-8 é", "\xC3\xA9"},
  };
  return v;
}

/// Query values no parameter may hold (invalid UTF-8, control characters).
const std::vector<std::pair<std::string, std::string>>& bad_query_values() {
  static const std::vector<std::pair<std::string, std::string>> v{
      {"%FF", "%FF"},       {"%C3%28", "%C3%28"}, {"%ED%A0%80 (surrogate)", "%ED%A0%80"},
      {"%00", "%00"},       {"a%00b", "a%00b"},   {"%0A", "a%0Ab"},
      {"%0D%0A", "%0D%0A"}, {"%1B", "%1B%5B2J"},  {"raw 0xFF", "\xFF"},
  };
  return v;
}

/// Values that are not a non-negative integer.
/// Hostile bodies of `POST …/cells/{C}/changes` (change sets: events/project/change_set.hpp):
/// huge and negative lengths, lengths over 2^53, wrong types, deep nesting, surrogate
/// cuts, 100,000 tiny items, 257 updates. Each must be refused with a 4xx (a 409 when the
/// fixture cell has moved on is one).
std::vector<body_case> collab_bodies() {
  auto with = [](json changes, std::uint64_t version = 1) {
    return json{
        {"version", version}, {"client_id", "h"}, {"updates", json::array({{{"changes", std::move(changes)}}})}};
  };
  json deep = json::array({0});
  for (int i = 0; i < 60; ++i) deep = json::array({std::move(deep)});
  json tiny = json::array();
  for (int i = 0; i < 100000; ++i) tiny.push_back(0);
  json many = json::array();
  for (int i = 0; i < 257; ++i) many.push_back({{"changes", {8}}});
  return {
      {"changes: a negative length", with({-1})},
      {"changes: a length over 2^53", with({9007199254740993ULL})},
      {"changes: lengths adding up over 2^53", with({9007199254740991ULL, 9007199254740991ULL})},
      {"changes: 2^64-1", with({18446744073709551615ULL})},
      {"changes: 1e308", with(json::parse("[1e308]"))},
      {"changes: a float length", with({1.5})},
      {"changes: a negative replacement length", with(json::parse(R"([[-3, "x"]])"))},
      {"changes: an empty section", with(json::parse("[[]]"))},
      {"changes: a line as a number", with(json::parse("[[8, 1]]"))},
      {"changes: a line holding LF", with(json::parse(R"([[8, "a\nb"]])"))},
      {"changes: a line holding NUL", with(json::parse(R"([[8, "a\u0000b"]])"))},
      {"changes: a line holding ESC", with(json::parse(R"([[8, "a\u001bb"]])"))},
      {"changes: an object", with(json::object({{"from", 0}}))},
      {"changes: a string", with("[8]")},
      {"changes: null", with(nullptr)},
      {"changes: 60 levels deep", with(deep)},
      {"changes: a length that is not the document's", with({7})},
      {"changes: an emoji, then a cut through its surrogate pair",
       {{"version", 1},
        {"client_id", "h"},
        {"updates", json::array({{{"changes", json::parse(R"([[8, "😀"]])")}}, {{"changes", json::parse("[1, 1]")}}})}}},
      {"changes: 100,000 tiny items", with(tiny)},
      {"changes: 257 updates", {{"version", 1}, {"client_id", "h"}, {"updates", many}}},
      {"changes: no updates", {{"version", 1}, {"client_id", "h"}, {"updates", json::array()}}},
      {"changes: updates as an object", {{"version", 1}, {"client_id", "h"}, {"updates", {{"changes", {8}}}}}},
      {"changes: an update without changes",
       {{"version", 1}, {"client_id", "h"}, {"updates", json::array({json::object()})}}},
      {"changes: an update with an extra member",
       {{"version", 1}, {"client_id", "h"}, {"updates", json::array({{{"changes", {8}}, {"x", 1}}})}}},
      {"changes: client_id of 65 characters",
       {{"version", 1}, {"client_id", std::string(65, 'c')}, {"updates", json::array({{{"changes", {8}}}})}}},
      {"changes: client_id missing", {{"version", 1}, {"updates", json::array({{{"changes", {8}}}})}}},
      {"changes: version 2^64-1", with({8}, 18446744073709551615ULL)},
      {"changes: version over 2^64",
       json::parse(R"({"version":18446744073709551616,"client_id":"h","updates":[{"changes":[8]}]})")},
  };
}

const std::vector<std::string>& bad_numbers() {
  static const std::vector<std::string> v{"-1", "1e3", "0x10", "99999999999999999999999", "",         "%201", "1%20",
                                          "+1", "abc", "1.5",  "18446744073709551616",    "%EF%BC%91"};
  return v;
}

header_list auth(const std::string& token) {
  if (token.empty()) return {};
  return {{"Authorization", "Bearer " + token}};
}

bool mutating(const std::string& method) { return method == "POST" || method == "PATCH" || method == "DELETE"; }

/// Sends `bytes` and judges the answer.
void send_case(world& w, tally& t, const std::string& label, const std::string& bytes, expect e, raw_options o = {},
               bool may_close = false) {
  o.deadline = k_deadline;
  t.judge(label, raw_exchange(w.address(), bytes, o), e, may_close);
}

std::string body_of(world& w, const route_spec& r) { return r.body.is_null() ? std::string() : w.fill(r.body).dump(); }

header_list base_headers(world& w, const route_spec& r) {
  auto h = auth(token_for(w, r));
  if (!r.body.is_null()) h.emplace_back("Content-Type", "application/json");
  if (r.if_match) h.emplace_back("If-Match", "1");
  return h;
}

}  // namespace

const std::string& token_for(const world& w, const route_spec& r) {
  static const std::string none;
  if (r.as == "admin") return w.admin;
  if (r.as == "alice") return w.alice;
  if (r.as == "auditor") return w.auditor;
  return none;
}

// ---- the routes ---------------------------------------------------------------------

std::vector<route_family> http_families() {
  const std::map<std::string, pk> page{{"limit", pk::number}, {"after", pk::text}};
  const std::map<std::string, pk> as_of{{"as_of", pk::as_of}};
  const std::map<std::string, pk> audit_filters{
      {"actor", pk::text}, {"stream", pk::text},  {"entity", pk::text},   {"type", pk::text},    {"since", pk::time},
      {"until", pk::time}, {"after", pk::number}, {"before", pk::number}, {"order", pk::choice}, {"limit", pk::number}};
  auto with = [](std::map<std::string, pk> m, std::initializer_list<std::pair<const std::string, pk>> more) {
    m.insert(more);
    return m;
  };
  const std::vector<body_case> params_cases{
      {"params as a string", json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", "x"}}},
      {"params as an array", json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", json::array()}}},
      {"params as a number", json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", 1}}},
      {"params.path as a number", json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"path", 1}}}}},
      {"params.path with NUL",
       json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"path", std::string("/tmp/a\0b", 8)}}}}},
      // A relative path is taken inside --sqlite-root; one that climbs out of it is refused.
      {"params.path leaving the SQLite root",
       json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"path", "../../x.db"}}}}},
      {"params.path outside the SQLite root",
       json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"path", "/etc/x.db"}}}}},
      // (A relative path is valid: it is taken inside --sqlite-root.)
      {"params.path empty", json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"path", ""}}}}},
      {"params with an unknown key", json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"zz", 1}}}}},
      {"credentials as a string",
       json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"path", "/tmp/x.db"}}}, {"credentials", "pw"}}},
      {"credentials as an array",
       json{{"name", "c {N}"}, {"driver", "sqlite"}, {"params", {{"path", "/tmp/x.db"}}}, {"credentials", {1}}}},
      {"postgres port as a string",
       json{{"name", "c {N}"},
            {"driver", "postgres"},
            {"params", {{"host", "db.example.org"}, {"port", "5432"}, {"database", "x"}}}}},
      {"postgres port 70000", json{{"name", "c {N}"},
                                   {"driver", "postgres"},
                                   {"params", {{"host", "db.example.org"}, {"port", 70000}, {"database", "x"}}}}},
      {"postgres host with CRLF", json{{"name", "c {N}"},
                                       {"driver", "postgres"},
                                       {"params", {{"host", "db\r\nexample"}, {"port", 5432}, {"database", "x"}}}}},
  };
  const json container{{"name", "box{N}"}, {"image", "busybox"}, {"command", {"sh"}}, {"ports", {8080}}};
  auto container_with = [&](const char* key, json v) {
    json b = container;
    b[key] = std::move(v);
    return b;
  };
  const std::vector<body_case> container_cases{
      {"command as a string", container_with("command", "sh")},
      {"command with a number", container_with("command", {1})},
      {"command nested", container_with("command", {json::array()})},
      {"command with NUL", container_with("command", {std::string("sh\0", 3)})},
      {"env as an array", container_with("env", json::array())},
      {"env with a number", container_with("env", {{"A", 1}})},
      {"env key with NUL", container_with("env", {{std::string("A\0B", 3), "x"}})},
      {"env key with '='", container_with("env", {{"A=B", "x"}}), expect::any},
      {"ports as a string", container_with("ports", "80")},
      {"ports with a string", container_with("ports", {"80"})},
      {"ports with -1", container_with("ports", {-1})},
      {"ports with 70000", container_with("ports", {70000})},
      {"ports with 1.5", container_with("ports", {1.5})},
      {"ports nested", container_with("ports", {{80}})},
      {"ports as an object", container_with("ports", {{"a", 80}})},
      {"runtime as a number", container_with("runtime", 1)},
      {"unknown runtime", container_with("runtime", "kubernetes")},
      {"limits as an array", container_with("limits", json::array())},
      {"negative memory", container_with("limits", {{"memory_bytes", -1}})},
      {"huge memory", container_with("limits", {{"memory_bytes", 18446744073709551615ull}})},
      {"cpus as a string", container_with("limits", {{"cpus", "1"}})},
      {"cpus 1e308", container_with("limits", {{"cpus", 1e308}})},
      {"pids 1.5", container_with("limits", {{"pids", 1.5}})},
      {"restart as a number", container_with("restart", 3)},
      {"health as a string", container_with("health", "http")},
      {"health with two kinds", container_with("health", {{"tcp", {{"port", 8080}}}, {"exec", {"true"}}})},
      {"health port undeclared", container_with("health", {{"tcp", {{"port", 9}}}})},
      {"health port 1e10", container_with("health", {{"tcp", {{"port", 10000000000ll}}}})},
      {"health interval huge", container_with("health", {{"tcp", {{"port", 8080}}}, {"interval_s", 1ll << 40}})},
      {"health exec with a number", container_with("health", {{"exec", {1}}})},
      {"health path with NUL", container_with("health", {{"http", {{"port", 8080}, {"path", std::string("/\0", 2)}}}})},
  };

  return {
      {"auth/login",
       {{.method = "POST",
         .path = "/v1/auth/login",
         .as = "",
         .body = {{"username", "alice"}, {"password", "w.r.o.n.g-password"}},
         .fields = {{"username", fk::name}, {"password", fk::text}},
         .costly = true,
         .base = expect::reject}}},
      {"users",
       {{.method = "POST",
         .path = "/v1/users",
         .as = "admin",
         .body = {{"username", "user{N}"},
                  {"email", "u{N}@example.org"},
                  {"password", "hostile-pass-{N}"},
                  {"role", "member"}},
         .fields = {{"username", fk::name}, {"email", fk::text}, {"password", fk::text}, {"role", fk::name}},
         .costly = true},
        {.method = "GET", .path = "/v1/users", .as = "admin", .params = page}}},
      {"users/{id}",
       {{.method = "GET", .path = "/v1/users/{D}", .as = "admin", .params = as_of},
        {.method = "PATCH",
         .path = "/v1/users/{D}",
         .as = "admin",
         .body = {{"grant_role", "auditor"}},
         .fields = {{"grant_role", fk::name}, {"revoke_role", fk::name}},
         .extra = {{"disabled as a string", {{"disabled", "true"}}},
                   {"disabled false", {{"disabled", false}}},
                   {"disabled as an array", {{"disabled", {true}}}}}},
        {.method = "POST", .path = "/v1/users/{D}/disable", .as = "admin", .destructive = true}}},
      {"projects",
       {{.method = "POST",
         .path = "/v1/projects",
         .as = "alice",
         .body = {{"name", "project {N}"}, {"description", "d"}},
         .fields = {{"name", fk::name}, {"description", fk::text}}},
        {.method = "GET", .path = "/v1/projects", .as = "alice", .params = page}}},
      {"projects/{id}",
       {{.method = "GET", .path = "/v1/projects/{P}", .as = "alice", .params = as_of},
        {.method = "PATCH",
         .path = "/v1/projects/{P}",
         .as = "alice",
         .body = {{"name", "renamed {N}"}},
         .fields = {{"name", fk::name}, {"description", fk::text}},
         .if_match = true,
         .base = expect::any},
        {.method = "DELETE", .path = "/v1/projects/{P}", .as = "alice", .destructive = true}}},
      {"cells",
       {{.method = "POST",
         .path = "/v1/projects/{P}/cells",
         .as = "alice",
         .body = {{"kind", "markdown"}, {"content", "# notes {N}"}},
         .fields = {{"kind", fk::name},
                    {"content", fk::text},
                    {"after", fk::name},
                    {"cell_id", fk::name},
                    {"connection_id", fk::name}}},
        {.method = "GET", .path = "/v1/projects/{P}/cells", .as = "alice", .params = as_of},
        {.method = "GET", .path = "/v1/projects/{P}/cells/{C}", .as = "alice", .params = as_of},
        {.method = "PATCH",
         .path = "/v1/projects/{P}/cells/{C}",
         .as = "alice",
         .body = {{"content", "select {N}"}, {"base_version", 1}, {"op_id", "op-{N}"}},
         .fields = {{"content", fk::text}, {"op_id", fk::text}},
         .numeric_fields = {"base_version"},
         .extra = {{"connection_id as a number", {{"connection_id", 1}}},
                   {"connection_id as an object", {{"connection_id", {{"id", "{K}"}}}}},
                   {"connection_id with an edit", {{"connection_id", "{K}"}, {"content", "x"}}},
                   {"connection_id naming nothing", {{"connection_id", "no-such-connection"}}}},
         .base = expect::any},
        // The fixture cell has no connection: the run is refused after the policy (400),
        // which is the point here; tests/e2e/cells_e2e_test.cpp runs cells for real.
        {.method = "POST",
         .path = "/v1/projects/{P}/cells/{C}/run",
         .as = "alice",
         .body = {{"timeout_s", 5}},
         .numeric_fields = {"timeout_s", "max_attempts"},
         .body_optional = true,
         .base = expect::any},
        // Co-editing (docs/realtime.md, "Co-editing"): the fixture cell's version moves
        // with the PATCH variants above, so the valid request may be a 409 (any).
        {.method = "POST",
         .path = "/v1/projects/{P}/cells/{C}/changes",
         .as = "alice",
         .body = {{"version", 1}, {"client_id", "hostile-{N}"}, {"updates", json::array({{{"changes", {8}}}})}},
         .fields = {{"client_id", fk::name}},
         .numeric_fields = {"version"},
         .extra = collab_bodies(),
         .base = expect::any},
        {.method = "GET",
         .path = "/v1/projects/{P}/cells/{C}/updates",
         .as = "alice",
         .params = {{"since", param_kind::number}},
         .base = expect::any},
        {.method = "DELETE", .path = "/v1/projects/{P}/cells/{C}", .as = "alice", .destructive = true}}},
      {"members",
       {{.method = "POST",
         .path = "/v1/projects/{P}/members",
         .as = "alice",
         .body = {{"user_id", "{B}"}, {"role", "viewer"}},
         .fields = {{"user_id", fk::name}, {"role", fk::name}}},
        {.method = "DELETE", .path = "/v1/projects/{P}/members/{B}", .as = "alice", .destructive = true}}},
      {"groups",
       {{.method = "POST",
         .path = "/v1/groups",
         .as = "alice",
         .body = {{"name", "group {N}"}, {"description", "d"}},
         .fields = {{"name", fk::name}, {"description", fk::text}}},
        {.method = "GET", .path = "/v1/groups", .as = "alice", .params = page},
        {.method = "GET", .path = "/v1/groups/{G}", .as = "alice"},
        {.method = "POST",
         .path = "/v1/groups/{G}/members",
         .as = "alice",
         .body = {{"user_id", "{B}"}},
         .fields = {{"user_id", fk::name}},
         .base = expect::any},
        {.method = "DELETE", .path = "/v1/groups/{G}/members/{B}", .as = "alice", .destructive = true}}},
      {"connections",
       {{.method = "POST",
         .path = "/v1/connections",
         .as = "alice",
         .body = {{"name", "conn {N}"}, {"driver", "sqlite"}, {"params", {{"path", "/tmp/atrium-hostile.db"}}}},
         .fields = {{"name", fk::name}, {"driver", fk::name}},
         .extra = params_cases,
         .base = expect::any},
        {.method = "GET", .path = "/v1/connections", .as = "alice", .params = page},
        {.method = "GET", .path = "/v1/connections/{K}", .as = "alice", .params = as_of},
        {.method = "PATCH",
         .path = "/v1/connections/{K}",
         .as = "alice",
         .body = {{"name", "warehouse {N}"}},
         .fields = {{"name", fk::name}},
         .extra = {{"params as a string", {{"params", "x"}}},
                   {"params.path as a number", {{"params", {{"path", 1}}}}},
                   {"credentials as a string", {{"credentials", "pw"}}}}},
        {.method = "POST", .path = "/v1/connections/{K}/test", .as = "alice", .reads_body = false, .base = expect::any},
        {.method = "POST",
         .path = "/v1/connections/{K}/members",
         .as = "alice",
         .body = {{"user_id", "{B}"}, {"role", "user"}},
         .fields = {{"user_id", fk::name}, {"role", fk::name}}},
        {.method = "DELETE", .path = "/v1/connections/{K}", .as = "alice", .destructive = true}}},
      {"jobs",
       {{.method = "POST",
         .path = "/v1/jobs",
         .as = "alice",
         .body = {{"project_id", "{P}"},
                  {"kind", "sql"},
                  {"connection_id", "{K}"},
                  {"sql", "select {N}"},
                  {"timeout_s", 5}},
         .fields = {{"project_id", fk::name},
                    {"kind", fk::name},
                    {"connection_id", fk::name},
                    {"sql", fk::text},
                    {"script", fk::text}},
         .numeric_fields = {"timeout_s"}},
        {.method = "GET",
         .path = "/v1/jobs",
         .as = "alice",
         .params = with(page, {{"status", pk::text}, {"project", pk::text}})},
        {.method = "GET", .path = "/v1/jobs/{J}", .as = "alice", .params = as_of},
        // A finished job's output; {J} has not finished (409), so only refusals are sure.
        {.method = "GET",
         .path = "/v1/jobs/{J}/result",
         .as = "alice",
         .params = {{"offset", pk::number}, {"limit", pk::number}},
         .base = expect::any},
        {.method = "GET", .path = "/v1/jobs/{J}/result.csv", .as = "alice", .base = expect::any},
        {.method = "GET", .path = "/v1/jobs/{J}/log", .as = "alice", .base = expect::any},
        {.method = "POST",
         .path = "/v1/jobs/{J}/cancel",
         .as = "alice",
         .body = {{"reason", "enough"}},
         .fields = {{"reason", fk::text}},
         .body_optional = true,
         .base = expect::any}}},
      {"schedules",
       {{.method = "POST",
         .path = "/v1/schedules",
         .as = "alice",
         .body = {{"name", "nightly {N}"},
                  {"project_id", "{P}"},
                  {"cron", "*/15 6-18 * * MON-FRI"},
                  {"time_zone", "America/New_York"},
                  {"target", {{"kind", "sql"}, {"connection_id", "{K}"}, {"sql", "select {N}"}, {"timeout_s", 5}}},
                  {"catch_up", "last"}},
         .fields = {{"name", fk::name},
                    {"project_id", fk::name},
                    {"cron", fk::text},
                    {"time_zone", fk::name},
                    {"catch_up", fk::name}},
         .extra = {{"target as a string", {{"target", "x"}}},
                   {"target.run_cells as a string", {{"target", {{"run_cells", "yes"}}}}},
                   {"target.timeout_s negative", {{"target", {{"kind", "sql"}, {"timeout_s", -1}}}}},
                   {"cron with 6 fields", {{"cron", "* * * * * *"}}},
                   {"cron @every 0s", {{"cron", "@every 0s"}}},
                   {"time zone with ..", {{"time_zone", "../../etc/passwd"}}}}},
        {.method = "GET", .path = "/v1/schedules", .as = "alice", .params = with(page, {{"project_id", pk::text}})},
        {.method = "GET", .path = "/v1/schedules/{S}", .as = "alice", .params = as_of},
        {.method = "GET", .path = "/v1/schedules/{S}/runs", .as = "alice", .params = page},
        {.method = "PATCH",
         .path = "/v1/schedules/{S}",
         .as = "alice",
         .body = {{"name", "nightly {N}"}, {"cron", "0 {N} * * *"}},
         .fields = {{"name", fk::name}, {"cron", fk::text}, {"time_zone", fk::name}},
         .base = expect::any},
        {.method = "POST",
         .path = "/v1/schedules/{S}/pause",
         .as = "alice",
         .body = {{"reason", "holiday"}},
         .fields = {{"reason", fk::text}},
         .body_optional = true},
        {.method = "POST", .path = "/v1/schedules/{S}/resume", .as = "alice", .reads_body = false},
        {.method = "DELETE", .path = "/v1/schedules/{S}", .as = "alice", .destructive = true}}},
      {"containers",
       {{.method = "POST",
         .path = "/v1/containers",
         .as = "admin",
         .body =
             {{"name", "box{N}"}, {"image", "busybox"}, {"command", {"sh"}}, {"env", {{"A", "b"}}}, {"ports", {8080}}},
         .fields = {{"name", fk::name}, {"image", fk::name}},
         .extra = container_cases},
        {.method = "GET", .path = "/v1/containers", .as = "admin", .params = page},
        {.method = "GET", .path = "/v1/containers/{X}", .as = "admin", .params = as_of},
        {.method = "POST", .path = "/v1/containers/{X}/start", .as = "admin", .destructive = true},
        {.method = "POST", .path = "/v1/containers/{X}/stop", .as = "admin", .destructive = true},
        {.method = "PATCH",
         .path = "/v1/containers/{X}",
         .as = "admin",
         .body = {{"env", {{"A", "c"}}}, {"restart", "never"}},
         .fields = {{"restart", fk::name}},
         .extra = container_cases},
        {.method = "GET",
         .path = "/v1/containers/{X}/logs",
         .as = "admin",
         .params = {{"tail", pk::number}, {"follow", pk::text}},
         .base = expect::any},
        {.method = "DELETE", .path = "/v1/containers/{X}", .as = "admin", .destructive = true}}},
      // Remote workers: a claim with no free slot answers 204 at once; {L} is a lease no
      // worker holds (410), so only refusals are sure on the lease routes.
      {"workers",
       {{.method = "POST",
         .path = "/v1/workers/claim",
         .as = "admin",
         .body = {{"worker", "hostile-{N}"}, {"slots_free", 0}, {"slots", 2}, {"wait_s", 0}},
         .fields = {{"worker", fk::name}},
         .numeric_fields = {"slots_free", "slots", "wait_s"},
         .extra = {{"wait_s beyond 30", {{"worker", "w"}, {"slots_free", 0}, {"wait_s", 31}}},
                   {"slots_free beyond 1024", {{"worker", "w"}, {"slots_free", 1025}}}}},
        {.method = "GET", .path = "/v1/workers", .as = "admin"},
        {.method = "POST",
         .path = "/v1/workers/leases/{L}/heartbeat",
         .as = "admin",
         .body = {{"worker", "hostile"}, {"rows", 1}, {"bytes", 2}, {"elapsed_ms", 3}, {"percent", 4}},
         .fields = {{"worker", fk::name}},
         .numeric_fields = {"rows", "bytes", "elapsed_ms", "percent"},
         .extra = {{"percent beyond 100", {{"worker", "w"}, {"percent", 101}}}},
         .base = expect::any},
        {.method = "POST",
         .path = "/v1/workers/leases/{L}/result",
         .as = "admin",
         .body = {{"worker", "hostile"},
                  {"seq", 0},
                  {"columns", json::array({json{{"name", "a"}, {"type", "int"}}})},
                  {"rows", json::array({json::array({"1"}), json::array({nullptr})})},
                  {"log", "text"}},
         .fields = {{"worker", fk::name}, {"log", fk::text}},
         .numeric_fields = {"seq"},
         .extra =
             {{"rows of objects",
               {{"worker", "w"}, {"seq", 0}, {"rows", json::array({json::array({json{{"a", 1}}})})}}},
              {"ragged rows",
               {{"worker", "w"}, {"seq", 0}, {"rows", json::array({json::array({"1"}), json::array({"1", "2"})})}}},
              {"a cell as a number", {{"worker", "w"}, {"seq", 0}, {"rows", json::array({json::array({1})})}}},
              {"columns empty", {{"worker", "w"}, {"seq", 0}, {"columns", json::array()}}},
              {"a column without a type",
               {{"worker", "w"}, {"seq", 0}, {"columns", json::array({json{{"name", "a"}}})}}}},
         .base = expect::any},
        {.method = "POST",
         .path = "/v1/workers/leases/{L}/complete",
         .as = "admin",
         .body = {{"worker", "hostile"},
                  {"outcome", "failed"},
                  {"error", "boom"},
                  {"sqlstate", "42601"},
                  {"batches", 0},
                  {"truncated", false},
                  {"duration_ms", 5}},
         .fields = {{"worker", fk::name}, {"outcome", fk::name}, {"error", fk::text}, {"sqlstate", fk::text}},
         .numeric_fields = {"batches", "duration_ms"},
         .extra = {{"outcome unknown", {{"worker", "w"}, {"outcome", "maybe"}}},
                   {"truncated as a string", {{"worker", "w"}, {"outcome", "failed"}, {"truncated", "no"}}}},
         .base = expect::any}}},
      {"audit",
       {{.method = "GET", .path = "/v1/audit", .as = "auditor", .params = audit_filters},
        {.method = "GET", .path = "/v1/audit/verify", .as = "admin"}}},
      {"audit/export",
       {{.method = "GET",
         .path = "/v1/audit/export",
         .as = "auditor",
         .params =
             [&] {
               auto m = with(audit_filters, {{"format", pk::choice}});
               m.erase("limit");  // the export has no limit
               return m;
             }()}}},
      {"events",
       {{.method = "GET",
         .path = "/v1/events",
         .as = "admin",
         .params = {{"after", pk::number}, {"limit", pk::number}, {"types", pk::list}, {"streams", pk::list}}},
        {.method = "GET",
         .path = "/v1/events/stream",
         .as = "admin",
         .params = {{"after", pk::number}, {"types", pk::list}, {"streams", pk::list}, {"event_names", pk::choice}},
         .streaming = true},
        // The project feeds (issue 21), for a member of the project.
        {.method = "GET",
         .path = "/v1/projects/{P}/events",
         .as = "alice",
         .params = {{"after", pk::number}, {"limit", pk::number}, {"types", pk::list}, {"streams", pk::list}}},
        {.method = "GET",
         .path = "/v1/projects/{P}/events/stream",
         .as = "alice",
         .params = {{"after", pk::number}, {"types", pk::list}, {"streams", pk::list}, {"event_names", pk::choice}},
         .streaming = true}}},
      // The event JSON Schemas (issue 21): `type` must name a registered event type.
      {"schemas/events",
       {{.method = "GET",
         .path = "/v1/schemas/events",
         .as = "alice",
         .params = {{"type", pk::choice}},
         .reads_body = false}}},
      {"streams/{s}",
       {{.method = "GET",
         .path = "/v1/streams/project-{P}",
         .as = "alice",
         .params = {{"from_version", pk::number}, {"limit", pk::number}, {"as_of", pk::as_of}}}}},
      {"admin/projections",
       {{.method = "GET", .path = "/v1/admin/projections", .as = "admin"},
        {.method = "POST", .path = "/v1/admin/projections/{R}/rebuild", .as = "admin", .destructive = true}}},
      // Online backups: each accepted POST takes one (a copy of the store), so only path
      // variants of it are sent.
      {"admin/backups",
       {{.method = "GET", .path = "/v1/admin/backups", .as = "admin"},
        {.method = "GET", .path = "/v1/admin/backups/1", .as = "admin", .base = expect::any},
        {.method = "POST", .path = "/v1/admin/backups", .as = "admin", .destructive = true}}},
      // Service accounts and API tokens. {A} (alice, a person) is no service account and
      // no token: those requests are refused (404) whatever their path variant.
      {"service-accounts",
       {{.method = "POST",
         .path = "/v1/service-accounts",
         .as = "admin",
         .body = {{"name", "svc{N}"}, {"description", "runs {N}"}, {"role", "member"}},
         .fields = {{"name", fk::name}, {"description", fk::text}, {"role", fk::name}}},
        {.method = "GET", .path = "/v1/service-accounts", .as = "admin", .params = page},
        {.method = "GET", .path = "/v1/service-accounts/{A}", .as = "admin", .params = as_of, .base = expect::reject},
        {.method = "GET", .path = "/v1/service-accounts/{A}/tokens", .as = "admin", .base = expect::reject},
        {.method = "POST",
         .path = "/v1/service-accounts/{A}/tokens",
         .as = "admin",
         .body = {{"name", "t{N}"}, {"scopes", {"jobs:work"}}},
         .base = expect::reject},
        {.method = "POST",
         .path = "/v1/service-accounts/{A}/disable",
         .as = "admin",
         .destructive = true,
         .base = expect::reject}}},
      {"tokens",
       {// Each accepted request stores a token (an owner holds at most 100): like a
        // password hash, no parser-level variants of it.
        {.method = "POST",
         .path = "/v1/tokens",
         .as = "alice",
         .body = {{"name", "t{N}"}, {"scopes", {"events:read"}}, {"expires_in_s", 3600}},
         .fields = {{"name", fk::name}},
         .numeric_fields = {"expires_in_s"},
         .extra = {{"scopes empty", {{"name", "x"}, {"scopes", json::array()}}},
                   {"scopes as a string", {{"name", "x"}, {"scopes", "admin"}}},
                   {"scopes with an unknown scope", {{"name", "x"}, {"scopes", {"events:write"}}}},
                   {"scopes with a number", {{"name", "x"}, {"scopes", {1}}}},
                   {"scopes nested", {{"name", "x"}, {"scopes", {json::array({"admin"})}}}},
                   {"scopes with NUL", {{"name", "x"}, {"scopes", {std::string("admin\0", 6)}}}},
                   {"scopes of 10000", {{"name", "x"}, {"scopes", json(std::vector<std::string>(10000, "admin"))}}},
                   {"expires_in_s zero", {{"name", "x"}, {"scopes", {"admin"}}, {"expires_in_s", 0}}},
                   {"expires_in_s beyond ten years", {{"name", "x"}, {"scopes", {"admin"}}, {"expires_in_s", 4e8}}},
                   {"no scopes", {{"name", "x"}}}},
         .costly = true},
        {.method = "GET", .path = "/v1/tokens", .as = "alice"},
        {.method = "DELETE", .path = "/v1/tokens/{A}", .as = "alice", .destructive = true, .base = expect::reject}}},
  };
}

// ---- variants -----------------------------------------------------------------------

std::vector<target_case> path_variants(world& w, const route_spec& r) {
  std::vector<target_case> out;
  const auto segs = segments(r.path);
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const bool placeholder = segs[i].find('{') != std::string::npos;
    // Placeholders, and the last fixed segment (a route name), get every bad value.
    const bool last_fixed = !placeholder && [&] {
      for (std::size_t j = i + 1; j < segs.size(); ++j) {
        if (segs[j].find('{') == std::string::npos) return false;
      }
      return i > 0;
    }();
    if (!placeholder && !last_fixed) continue;
    for (const auto& [label, value] : bad_segments()) {
      auto s = segs;
      for (auto& x : s) x = w.fill(x);
      s[i] = placeholder ? value : segs[i] + value;
      out.push_back({"segment " + std::to_string(i) + " = " + label, join(s), expect::reject});
    }
  }
  return out;
}

std::vector<body_variant> body_variants(world& w, const route_spec& r, bool json_safe) {
  std::vector<body_variant> out;
  if (r.body.is_null() && r.reads_body) return out;
  const auto e = r.reads_body ? expect::reject : expect::any;
  // Malformed documents.
  const std::vector<std::pair<std::string, std::string>> malformed{
      {"'{'", "{"},
      {"'}'", "}"},
      {"'['", "["},
      {"missing value", R"({"a":})"},
      {"single quotes", "{'a':1}"},
      {"trailing comma", R"({"a":1,})"},
      {"two documents", "{} {}"},
      {"'nul'", "nul"},
      {"escaped lone surrogate", R"({"a":"\ud800"})"},
      {"escaped lone low surrogate", R"({"a":"\udc00x"})"},
      {"short \\u escape", R"({"a":"\u00"})"},
      {"bad escape \\x", R"({"a":"\x41"})"},
      {"an array", "[1,2]"},
      {"a string", R"("str")"},
      {"a number", "42"},
      {"null", "null"},
      {"true", "true"},
      {"number overflow", R"({"a":1e999999})"},
      {"lone minus", R"({"a":-})"},
      {"leading zero", R"({"a":01})"},
      {"a comment", "/* c */{}"},
      {"NaN", R"({"a":NaN})"},
      {"unterminated string", R"({"a":"abc)"},
      {"deep array 100000", deep_array(100000)},
      {"deep object 100000", deep_object(100000)},
      {"deep array 1000", deep_array(1000)},
  };
  for (const auto& [label, body] : malformed) out.push_back({"body " + label, body, e});
  if (!json_safe) {
    out.push_back({"body raw 0xFF 0xFE", "\xFF\xFE", e});
    out.push_back({"body raw NUL in a string", std::string("{\"a\":\"x\0y\"}", 11), e});
    out.push_back({"body raw invalid UTF-8 in a string", "{\"a\":\"\xC3\x28\"}", e});
    out.push_back({"body raw CR in a string", "{\"a\":\"x\ry\"}", e});
  }
  if (!r.body_optional && r.reads_body) out.push_back({"empty body", "", expect::reject});
  if (r.body.is_null()) return out;

  const json base = w.fill(r.body);
  auto with = [&](const std::string& key, json v) {
    json b = base;
    b[key] = std::move(v);
    return b.dump();
  };
  // A valid body with a bad extra member.
  out.push_back({"extra member 100000 deep",
                 base.dump().substr(0, base.dump().size() - 1) + R"(,"zz":)" + deep_array(100000) + "}",
                 expect::reject});
  out.push_back({"extra member 1000 deep objects",
                 base.dump().substr(0, base.dump().size() - 1) + R"(,"zz":)" + deep_object(1000) + "}",
                 expect::reject});
  out.push_back({"body over 1 MiB", with("zz", std::string(1100 * 1024, 'x')), expect::reject});
  out.push_back(
      {"duplicate keys", base.dump().substr(0, base.dump().size() - 1) + "," + base.dump().substr(1), expect::any});

  // Every string field: wrong types, then bad contents.
  const std::vector<std::pair<std::string, json>> wrong{
      {"number", 123},
      {"negative", -1},
      {"float", 1.5},
      {"true", true},
      {"false", false},
      {"empty array", json::array()},
      {"empty object", json::object()},
      {"array of string", {"x"}},
      {"object", {{"x", "y"}}},
      {"huge number", 1e308},
  };
  for (const auto& [field, kind] : r.fields) {
    for (const auto& [label, v] : wrong) out.push_back({field + " as " + label, with(field, v), expect::reject});
    const auto name_only = kind == field_kind::name ? expect::reject : expect::any;
    const std::vector<std::tuple<std::string, std::string, expect>> contents{
        {"NUL inside", std::string("a\0b", 3), name_only},
        {"only NUL", std::string("\0", 1), name_only},
        {"CRLF", "a\r\nb", name_only},
        {"LF", "a\nFORGED level=error", name_only},
        {"\\u0001", "a\x01", name_only},
        {"ANSI escape", "\x1b[31mred", name_only},
        {"U+202E",
         "\xE2\x80\xAE"
         "evil",
         name_only},
        {"U+2066",
         "\xE2\x81\xA6"
         "x",
         expect::any},
        {"DEL", "a\x7F", expect::any},
        {"C1 NEL", "a\xC2\x85", expect::any},
        {"100 KB", std::string(100 * 1024, 'n'), name_only},
        {"empty", "", expect::any},
        {"=cmd formula", "=cmd|' /C calc'!A0", expect::any},
        {"emoji", "\xF0\x9F\x98\x80", expect::any},
    };
    for (const auto& [label, v, want] : contents) {
      // Where every valid request costs a password hash, the tolerated contents are left out.
      if (r.costly && want == expect::any) continue;
      out.push_back({field + " " + label, with(field, v), want});
    }
    out.push_back({field + " 100000-deep array",
                   base.dump().substr(0, base.dump().size() - 1) + ",\"" + field + "\":" + deep_array(100000) + "}",
                   expect::reject});
    out.push_back({field + " 100000-deep object",
                   base.dump().substr(0, base.dump().size() - 1) + ",\"" + field + "\":" + deep_object(100000) + "}",
                   expect::reject});
    if (!json_safe) {
      // Raw bytes JSON cannot carry: the document is invalid, whatever the field.
      auto raw = base;
      raw[field] = "@@RAW@@";
      auto text = raw.dump();
      auto at = text.find("@@RAW@@");
      out.push_back(
          {field + " raw invalid UTF-8", text.substr(0, at) + "\xC3\x28\xFF" + text.substr(at + 7), expect::reject});
      out.push_back(
          {field + " raw NUL byte", text.substr(0, at) + std::string("a\0b", 3) + text.substr(at + 7), expect::reject});
    }
  }
  for (const auto& field : r.numeric_fields) {
    const std::vector<std::pair<std::string, json>> bad{
        {"string", "1"},          {"negative", -1},
        {"float", 1.5},           {"true", true},
        {"array", json::array()}, {"object", json::object()},
        {"1e30", 1e30},           {"2^64", json::parse("18446744073709551616")},
    };
    for (const auto& [label, v] : bad) out.push_back({field + " as " + label, with(field, v), expect::reject});
  }
  for (const auto& c : r.extra) out.push_back({c.label, w.fill(c.body).dump(), c.want});
  return out;
}

namespace {

void run_path(world& w, tally& t, const route_spec& r) {
  const auto body = body_of(w, r);
  for (const auto& c : path_variants(w, r)) {
    send_case(w, t, r.method + " " + r.path + " " + c.label, raw_request(r.method, c.target, base_headers(w, r), body),
              c.want);
  }
}

void run_query(world& w, tally& t, const route_spec& r) {
  const auto target = w.fill(r.path);
  const auto h = base_headers(w, r);
  auto one = [&](const std::string& label, const std::string& query, expect e) {
    if (r.streaming && e != expect::reject) return;
    send_case(w, t, r.method + " " + r.path + "?" + label, raw_request(r.method, target + "?" + query, h), e);
  };
  auto params = r.params;
  params["zz"] = param_kind::text;  // a parameter the route does not read
  for (const auto& [name, kind] : params) {
    for (const auto& [label, v] : bad_query_values()) one(name + "=" + label, name + "=" + v, expect::reject);
    one(name + "=10 KB", name + "=" + std::string(10240, 'q'), kind == param_kind::text ? expect::any : expect::reject);
    const bool free_text = kind == param_kind::text || kind == param_kind::list;
    one(name + "=U+202E", name + "=%E2%80%AEx", free_text ? expect::any : expect::reject);
    one(name + " twice", name + "=1&" + name + "=2", expect::any);
    switch (kind) {
      case param_kind::number:
        for (const auto& v : bad_numbers()) one(name + "=" + v, name + "=" + v, expect::reject);
        break;
      case param_kind::choice:
        for (const auto& v : {"x", "ASC", "", "csv%00"})
          one(name + "=" + v, name + "=" + std::string(v), expect::reject);
        break;
      case param_kind::time:
        for (const auto& v : {"yesterday", "2026-13-45T00:00:00Z", "2026-11-21T04:45:59", "2026-11-21T25:00:00Z",
                              "99999-01-01T00:00:00Z", "2026-11-21T04:45:59%2B99:00", ""}) {
          one(name + "=" + v, name + "=" + std::string(v), expect::reject);
        }
        one(name + "=long fraction", name + "=2026-11-21T04:45:59.99999999999999999999999999Z", expect::any);
        break;
      case param_kind::as_of:
        for (const auto& v : {"abc", "-1", "99999999999999999999", "2026-13-45T00:00:00Z", ""}) {
          one(name + "=" + v, name + "=" + std::string(v), expect::reject);
        }
        break;
      case param_kind::list: {
        std::string many;
        for (int i = 0; i < 65; ++i) many += (i ? ",t" : "t") + std::to_string(i);
        for (const auto& v : {std::string(","), std::string("a,,b"), std::string("a,"), std::string(",a"),
                              std::string("*a"), std::string("a*b"), std::string("**"), std::string("%2C"),
                              std::string("a,") + std::string(257, 'x'), many}) {
          one(name + "=" + v.substr(0, 24), name + "=" + v, expect::reject);
        }
        one(name + "=64 entries", name + "=" + many.substr(0, many.rfind(',')), expect::any);
        one(name + "=spaces", name + "=a%20b,%20", expect::any);
        break;
      }
      case param_kind::text:
        break;
    }
  }
  one("key %FF", "%FF=1", expect::reject);
  one("key %00", "a%00=1", expect::reject);
  one(
      "1000 parameters",
      [] {
        std::string q;
        for (int i = 0; i < 1000; ++i) q += (i ? "&p" : "p") + std::to_string(i) + "=1";
        return q;
      }(),
      expect::any);
}

/// `full`: every variant; otherwise only those of headers the route gives a meaning
/// (the rest exercise the parser, the same for every route of a family).
void run_headers(world& w, tally& t, const route_spec& r, bool full) {
  const auto target = w.fill(r.path);
  const auto body = body_of(w, r);
  const auto& token = token_for(w, r);
  auto plain = base_headers(w, r);
  auto without_auth = plain;
  std::erase_if(without_auth, [](const auto& h) { return h.first == "Authorization"; });
  auto one = [&](const std::string& label, header_list h, expect e) {
    if (r.streaming && e != expect::reject) return;
    if (!full && !label.starts_with("Authorization") && !label.starts_with("Idempotency") &&
        !label.starts_with("If-Match") && !label.starts_with("Content-Type ")) {
      return;
    }
    send_case(w, t, r.method + " " + r.path + " header " + label, raw_request(r.method, target, h, body), e);
  };
  auto plus = [&](std::string k, std::string v) {
    auto h = plain;
    h.emplace_back(std::move(k), std::move(v));
    return h;
  };
  auto auth_as = [&](std::string v) {
    auto h = without_auth;
    h.emplace_back("Authorization", std::move(v));
    return h;
  };
  const auto auth_expect = r.as.empty() ? expect::any : expect::reject;
  one("Authorization token + 0xFF", auth_as("Bearer " + token + "\xFF"), auth_expect);
  one("Authorization 0xFF 0xFE", auth_as("Bearer \xFF\xFE"), auth_expect);
  one("Authorization without token", auth_as("Bearer"), auth_expect);
  one("Authorization Bearer and spaces", auth_as("Bearer    "), auth_expect);
  one("Authorization Basic", auth_as("Basic YWRtaW46eA=="), auth_expect);
  one("Authorization 8 KB token", auth_as("Bearer " + std::string(8000, 'a')), auth_expect);
  one("Authorization token with NUL", auth_as("Bearer " + token.substr(0, 10) + std::string(1, '\0')), expect::reject);
  {
    auto h = plain;
    h.emplace_back("Authorization", "Bearer not-a-token");
    one("two Authorization headers", h, expect::any);
  }
  one("User-Agent invalid UTF-8", plus("User-Agent", "\xFF\xFE\xC3\x28"), expect::any);
  one("User-Agent 16 KB", plus("User-Agent", std::string(16000, 'u')), expect::any);
  one("User-Agent formula", plus("User-Agent", "=cmd|' /C calc'!A0"), expect::any);
  one("User-Agent U+202E",
      plus("User-Agent",
           "\xE2\x80\xAE"
           "evil"),
      expect::any);
  one("X-Request-Id invalid UTF-8", plus("X-Request-Id", "\xFF"), expect::any);
  one("X-Request-Id 5 KB", plus("X-Request-Id", std::string(5000, 'r')), expect::any);
  one("Idempotency-Key invalid UTF-8", plus("Idempotency-Key", "\xFF\xFE"),
      mutating(r.method) ? expect::reject : expect::any);
  one("Idempotency-Key 4 KB", plus("Idempotency-Key", std::string(4096, 'k')),
      mutating(r.method) ? expect::reject : expect::any);
  {
    auto h = plain;
    std::erase_if(h, [](const auto& x) { return x.first == "If-Match"; });
    h.emplace_back("If-Match", "\xFF");
    one("If-Match invalid UTF-8", h, r.if_match ? expect::reject : expect::any);
    h.back().second = "99999999999999999999999";
    one("If-Match overflow", h, r.if_match ? expect::reject : expect::any);
    h.back().second = "W/";
    one("If-Match W/", h, r.if_match ? expect::reject : expect::any);
  }
  one("Content-Type invalid UTF-8", plus("Content-Type", "\xFF/\xFE"), expect::any);
  // Issue 21 (HTTP semantics): a body that is not JSON is 415 before the route runs.
  if (!body.empty()) {
    auto typed = [&](std::optional<std::string> v) {
      auto h = plain;
      std::erase_if(h, [](const auto& x) { return x.first == "Content-Type"; });
      if (v) h.emplace_back("Content-Type", std::move(*v));
      return h;
    };
    one("Content-Type text/plain", typed("text/plain"), expect::reject);
    one("Content-Type form", typed("application/x-www-form-urlencoded"), expect::reject);
    one("Content-Type application/jsonx", typed("application/jsonx"), expect::reject);
    one("Content-Type empty", typed(""), expect::reject);
    one("Content-Type 4 KB of parameters", typed("application/json;" + std::string(4096, 'p')), expect::any);
    one("Content-Type missing", typed(std::nullopt), expect::reject);
  }
  {
    std::string codings;
    for (int i = 0; i < 1000; ++i) codings += "x-coding-" + std::to_string(i) + ";q=0.5, ";
    one("Accept-Encoding of 1000 codings", plus("Accept-Encoding", codings + "gzip;q=0"), expect::any);
    one("Accept-Encoding q overflow", plus("Accept-Encoding", "gzip;q=" + std::string(500, '9')), expect::any);
    std::string tags;
    for (int i = 0; i < 2000; ++i) tags += "\"" + std::to_string(i) + "\", ";
    one("If-None-Match of 2000 tags", plus("If-None-Match", tags + "*"), expect::any);
    one("If-None-Match unquoted junk", plus("If-None-Match", "W/W/\"\"\",,,*x"), expect::any);
    one("Origin unlisted", plus("Origin", "http://evil.example"), expect::any);
    one("Origin null", plus("Origin", "null"), expect::any);
    one("Origin 4 KB", plus("Origin", "http://" + std::string(4096, 'o') + ".example"), expect::any);
  }
  one("custom header invalid UTF-8", plus("X-Custom", "\xC3\x28\xA0\xA1"), expect::any);
  one("custom header control byte", plus("X-Custom", "a\x01z"), expect::reject);
  one("custom header NUL", plus("X-Custom", std::string("a\0b", 3)), expect::reject);
  one("custom header bare CR", plus("X-Custom", "a\rb"), expect::reject);
  one("header name with 0xFF", plus("X\xFFName", "1"), expect::reject);
  one("header name with a space", plus("X Name", "1"), expect::reject);
  one("empty header name", plus("", "x"), expect::reject);
  one("obs-fold", plus("X-Fold", "a\r\n b"), expect::any);
  one("Host twice", plus("Host", "evil.example"), expect::any);
  {
    auto h = plain;
    for (int i = 0; i < 180; ++i) h.emplace_back("X-Pad-" + std::to_string(i), std::string(300, 'p'));
    one("180 headers of 300 bytes (under 64 KiB)", h, expect::any);
    for (int i = 180; i < 300; ++i) h.emplace_back("X-Pad-" + std::to_string(i), std::string(300, 'p'));
    one("300 headers of 300 bytes (over 64 KiB)", h, expect::reject);
  }
  one("one 70 KB header", plus("X-Big", std::string(70000, 'b')), expect::reject);
  one(
      "5000 empty headers",
      [&] {
        auto h = plain;
        for (int i = 0; i < 5000; ++i) h.emplace_back("X" + std::to_string(i), "");
        return h;
      }(),
      expect::any);
}

/// Chunked-encoding abuse, duplicate and conflicting framing headers, lying lengths.
/// `full`: every variant; otherwise the few that depend on the route's body.
void run_framing(world& w, tally& t, const route_spec& r, bool full) {
  const auto target = w.fill(r.path);
  const std::string body = r.body.is_null() ? std::string("{}") : body_of(w, r);
  const auto first = r.body.is_null() || !r.reads_body ? expect::any : r.base;
  auto h = base_headers(w, r);
  auto with = [&](header_list more) {
    auto x = h;
    x.insert(x.end(), more.begin(), more.end());
    return x;
  };
  const header_list chunked{{"Transfer-Encoding", "chunked"}};
  auto head = [&](header_list more) { return raw_request(r.method, target, with(std::move(more)), {}, false); };
  const auto n = hex(body.size());
  auto one = [&](const std::string& label, const std::string& bytes, expect e, raw_options o = {},
                 bool may_close = false) {
    if (!full && !label.starts_with("well-formed") && !label.starts_with("Content-Length shorter") &&
        !label.starts_with("Content-Length longer") && !label.starts_with("two different")) {
      return;
    }
    send_case(w, t, r.method + " " + r.path + " framing " + label, bytes, e, o, may_close);
  };
  const raw_options half{.half_close = true};

  one("well-formed chunked", head(chunked) + n + "\r\n" + body + "\r\n0\r\n\r\n",
      first == expect::reject ? expect::any : first);
  one("chunk size not hex", head(chunked) + "zz\r\n" + body + "\r\n0\r\n\r\n", expect::reject);
  one("chunk size overflowing 64 bits", head(chunked) + "FFFFFFFFFFFFFFFFFFFF\r\n" + body + "\r\n0\r\n\r\n",
      expect::reject);
  one("chunk size 2^64-1", head(chunked) + "FFFFFFFFFFFFFFFF\r\n" + body + "\r\n0\r\n\r\n", expect::reject);
  one("chunk size over the body limit", head(chunked) + "7FFFFFFF\r\n" + body, expect::reject, half);
  one("negative chunk size", head(chunked) + "-1\r\n" + body + "\r\n0\r\n\r\n", expect::reject);
  one("chunk size with spaces", head(chunked) + " " + n + " \r\n" + body + "\r\n0\r\n\r\n", expect::any, half);
  one("70 KB chunk extension", head(chunked) + n + ";e=" + std::string(70000, 'x') + "\r\n" + body + "\r\n0\r\n\r\n",
      expect::any);
  one("70 KB trailer (F1)", head(chunked) + n + "\r\n" + body + "\r\n0\r\nX-T: " + std::string(70000, 'a') + "\r\n\r\n",
      expect::any);
  {
    std::string trailers;
    for (int i = 0; i < 2000; ++i) trailers += "X-T" + std::to_string(i) + ": " + std::string(40, 't') + "\r\n";
    one("2000 trailers", head(chunked) + n + "\r\n" + body + "\r\n0\r\n" + trailers + "\r\n", expect::any);
  }
  one("trailer with NUL", head(chunked) + n + "\r\n" + body + "\r\n0\r\nX-T: a" + std::string(1, '\0') + "\r\n\r\n",
      expect::any);
  one("missing CRLF after chunk data", head(chunked) + n + "\r\n" + body + "XX0\r\n\r\n", expect::reject);
  one("missing last CRLF (then EOF)", head(chunked) + n + "\r\n" + body + "\r\n0\r\n", expect::reject, half);
  one("missing last chunk (then EOF)", head(chunked) + n + "\r\n" + body + "\r\n", expect::reject, half);
  one("truncated chunk data (then EOF)", head(chunked) + hex(body.size() + 10) + "\r\n" + body, expect::reject, half);
  one("bare LF chunk lines", head(chunked) + n + "\n" + body + "\n0\n\n", expect::any, half);
  one(
      "100000 one-byte chunks",
      [&] {
        std::string b = head(chunked);
        std::string padded = body + std::string(100000 - std::min<std::size_t>(body.size(), 99999), ' ');
        for (char c : padded) b += std::string("1\r\n") + c + "\r\n";
        return b + "0\r\n\r\n";
      }(),
      expect::any);
  one("Transfer-Encoding chunked, gzip",
      head({{"Transfer-Encoding", "chunked, gzip"}}) + n + "\r\n" + body + "\r\n0\r\n\r\n", expect::reject);
  one("Transfer-Encoding gzip", head({{"Transfer-Encoding", "gzip"}}) + body, expect::reject, half);
  one("Transfer-Encoding xchunked", head({{"Transfer-Encoding", "xchunked"}}) + body, expect::reject, half);
  one("Transfer-Encoding twice",
      head({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}) + n + "\r\n" + body + "\r\n0\r\n\r\n",
      expect::any, half);
  one("Transfer-Encoding and Content-Length",
      head({{"Transfer-Encoding", "chunked"}, {"Content-Length", std::to_string(body.size() + 5)}}) + n + "\r\n" +
          body + "\r\n0\r\n\r\n",
      expect::any, half);
  one("two different Content-Length",
      head({{"Content-Length", std::to_string(body.size())}, {"Content-Length", std::to_string(body.size() + 1)}}) +
          body + " ",
      expect::reject);
  one("Content-Length list with different values",
      head({{"Content-Length", std::to_string(body.size()) + ", " + std::to_string(body.size() + 1)}}) + body + " ",
      expect::reject);
  one("two equal Content-Length",
      head({{"Content-Length", std::to_string(body.size())}, {"Content-Length", std::to_string(body.size())}}) + body,
      expect::any, half);
  for (const auto& v : {"abc", "-1", "+5", "99999999999999999999999", "0x10", "1 2"}) {
    one(std::string("Content-Length ") + v, head({{"Content-Length", v}}) + body, expect::reject, half);
  }
  if (body.size() > 2) {
    const raw_options two{.responses = 2, .half_close = true};
    one("Content-Length shorter than the body", head({{"Content-Length", std::to_string(body.size() / 2)}}) + body,
        r.reads_body && !r.body.is_null() ? expect::reject : expect::any, two);
  }
  one("Content-Length longer than the body (then EOF)",
      head({{"Content-Length", std::to_string(body.size() + 100)}}) + body, expect::reject, half);
  one("Content-Length longer than the body (then close)",
      head({{"Content-Length", std::to_string(body.size() + 100)}}) + body, expect::any,
      raw_options{.abort_after_send = true}, true);
  one("body without framing headers", head({}) + body, expect::any, raw_options{.responses = 2, .half_close = true});
  one("Expect: 100-continue", raw_request(r.method, target, with({{"Expect", "100-continue"}}), body), expect::any);
  one(
      "HTTP/1.0 with chunked",
      [&] {
        auto b = head(chunked) + n + "\r\n" + body + "\r\n0\r\n\r\n";
        b.replace(b.find("HTTP/1.1"), 8, "HTTP/1.0");
        return b;
      }(),
      expect::any, half);
}

/// Issue 21: OPTIONS on every route's path (204 with Allow listing the route's method,
/// HEAD where GET is, OPTIONS; 404 for an unknown one); HEAD then GET pipelined on one
/// connection for a GET route (the header without a body, then the GET's full answer:
/// the connection stays usable); a preflight with a hostile Access-Control-Request-Method.
void run_methods(world& w, tally& t, const route_spec& r) {
  const auto target = w.fill(r.path);
  const auto label = r.method + " " + r.path;
  auto options = raw_exchange(w.address(), raw_request("OPTIONS", target, {}), {.deadline = k_deadline});
  ++t.requests;
  if (options.responses.empty()) {
    t.fail(label + " OPTIONS", "no answer");
  } else {
    const auto& o = options.responses[0];
    const auto allow = o.headers.contains("allow") ? o.headers.at("allow") : std::string();
    if (o.status != 204 || allow.find(r.method) == std::string::npos || allow.find("OPTIONS") == std::string::npos ||
        (r.method == "GET" && allow.find("HEAD") == std::string::npos)) {
      t.fail(label + " OPTIONS", "status " + std::to_string(o.status) + " Allow: " + allow);
    }
  }
  send_case(w, t, label + " OPTIONS preflight with a hostile method",
            raw_request("OPTIONS", target,
                        {{"Origin", "http://evil.example"},
                         {"Access-Control-Request-Method", std::string(4096, 'M')},
                         {"Access-Control-Request-Headers", std::string(8000, ',')}}),
            expect::success);
  send_case(w, t, label + " OPTIONS with a body", raw_request("OPTIONS", target, {}, "{\"x\":1}"), expect::any);
  if (r.method != "GET") return;
  const auto h = base_headers(w, r);
  if (r.streaming) {
    // HEAD of a stream: its header, never the stream.
    auto only =
        raw_exchange(w.address(), raw_request("HEAD", target, h), {.deadline = k_deadline, .head_responses = 1});
    ++t.requests;
    if (only.responses.empty() || only.responses[0].status >= 500) t.fail(label + " HEAD", "no answer or a 5xx");
    return;
  }
  const auto bytes = raw_request("HEAD", target, h) + raw_request("GET", target, h);
  auto both = raw_exchange(w.address(), bytes, {.deadline = k_deadline, .responses = 2, .head_responses = 1});
  t.requests += 2;
  if (both.responses.size() < 2) {
    t.fail(label + " HEAD then GET", "answers: " + std::to_string(both.responses.size()));
    return;
  }
  const auto& head = both.responses[0];
  const auto& get = both.responses[1];
  if (head.status != get.status || head.status >= 500) {
    t.fail(label + " HEAD then GET", "HEAD " + std::to_string(head.status) + ", GET " + std::to_string(get.status));
  } else if (head.headers.contains("content-length") && get.status != 304 &&
             head.headers.at("content-length") != std::to_string(get.body.size())) {
    t.fail(label + " HEAD",
           "Content-Length " + head.headers.at("content-length") + ", GET body " + std::to_string(get.body.size()));
  }
}

}  // namespace

void run_family(world& w, tally& t, const route_family& f) {
  bool full = true;  // the first route that takes every variant
  for (const auto& r : f.routes) {
    const auto name = r.method + " " + r.path;
    const auto h = base_headers(w, r);
    if (!r.destructive && !r.streaming) {
      // The valid request first: the variants below differ from it in one thing.
      send_case(w, t, name + " (valid)", raw_request(r.method, w.fill(r.path), h, body_of(w, r)), r.base);
    }
    run_path(w, t, r);
    w.prove_alive(name + " path variants");
    run_methods(w, t, r);
    w.prove_alive(name + " HEAD and OPTIONS");
    if (r.destructive) continue;
    if (!r.params.empty() || r.method == "GET") {
      run_query(w, t, r);
      w.prove_alive(name + " query variants");
    }
    const bool route_full = full && !r.costly;
    run_headers(w, t, r, route_full && !r.streaming);
    w.prove_alive(name + " header variants");
    if (!r.streaming) {
      for (const auto& v : body_variants(w, r, false)) {
        auto hh = h;
        if (r.body.is_null()) hh.emplace_back("Content-Type", "application/json");
        send_case(w, t, name + " " + v.label, raw_request(r.method, w.fill(r.path), hh, v.body), v.want);
      }
      w.prove_alive(name + " body variants");
      run_framing(w, t, r, route_full);
      w.prove_alive(name + " framing variants");
      if (!r.costly) full = false;
    }
  }
}

void run_request_syntax(world& w, tally& t) {
  auto one = [&](const std::string& label, const std::string& bytes, expect e, raw_options o = {},
                 bool may_close = false) {
    o.deadline = k_deadline;
    t.judge("request " + label, raw_exchange(w.address(), bytes, o), e, may_close);
  };
  const raw_options half{.half_close = true};
  const std::string host = "Host: 127.0.0.1\r\n";
  one("garbage line", "GARBAGE\r\n\r\n", expect::reject);
  one("method only", "GET\r\n\r\n", expect::reject);
  one("HTTP/9.9", "GET /healthz HTTP/9.9\r\n" + host + "\r\n", expect::reject);
  one("HTTP/1.1 plus a word", "GET /healthz HTTP/1.1 extra\r\n" + host + "\r\n", expect::reject);
  one("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", expect::reject);
  one("TLS ClientHello", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) + std::string(160, '\x01'),
      expect::reject, half);
  one("lowercase method", "get /healthz HTTP/1.1\r\n" + host + "\r\n", expect::any);
  one("unknown method", "BREW /healthz HTTP/1.1\r\n" + host + "\r\n", expect::any);
  one("10 KB method", std::string(10000, 'A') + " /healthz HTTP/1.1\r\n" + host + "\r\n", expect::any);
  one("NUL in method", std::string("G\0T /healthz HTTP/1.1\r\n", 23) + host + "\r\n", expect::reject);
  one("asterisk target", "GET * HTTP/1.1\r\n" + host + "\r\n", expect::any);
  one("absolute-form target", "GET http://127.0.0.1/healthz HTTP/1.1\r\n" + host + "\r\n", expect::any);
  one("target without a slash", "GET healthz HTTP/1.1\r\n" + host + "\r\n", expect::reject);
  one("70 KB target", "GET /healthz?" + std::string(70000, 'a') + " HTTP/1.1\r\n" + host + "\r\n", expect::reject);
  one("NUL in target", std::string("GET /heal\0thz HTTP/1.1\r\n", 24) + host + "\r\n", expect::reject);
  one("space in target", "GET /a b HTTP/1.1\r\n" + host + "\r\n", expect::reject);
  one("raw 0xFF in target", "GET /v1/projects/\xFF HTTP/1.1\r\n" + host + "\r\n", expect::reject);
  one("raw UTF-8 in target", "GET /v1/\xC3\xA9 HTTP/1.1\r\n" + host + "\r\n", expect::reject);
  one("empty lines before the request", "\r\n\r\nGET /healthz HTTP/1.1\r\n" + host + "\r\n", expect::any, half);
  one("bare LF line ends", "GET /healthz HTTP/1.1\nHost: x\n\n", expect::any, half);
  one("header without a colon", "GET /healthz HTTP/1.1\r\n" + host + "NoColon\r\n\r\n", expect::reject);
  one("space before the colon", "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", expect::reject);
  one("empty header name", "GET /healthz HTTP/1.1\r\n" + host + ": x\r\n\r\n", expect::reject);
  one("fold as the first header line", "GET /healthz HTTP/1.1\r\n folded\r\n" + host + "\r\n", expect::reject);
  one("no Host", "GET /healthz HTTP/1.1\r\n\r\n", expect::any);
  one("only CRLFs (then EOF)", "\r\n\r\n\r\n", expect::any, half, true);
  one("half a request line (then EOF)", "GET /hea", expect::reject, half);
  one("headers cut short (then EOF)", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b", expect::reject, half);
  one("connect and close", "", expect::any, raw_options{.abort_after_send = true}, true);
  {
    std::string many;
    for (int i = 0; i < 100; ++i) many += "GET /healthz HTTP/1.1\r\n" + host + "\r\n";
    auto r = raw_exchange(w.address(), many, {.deadline = k_deadline, .responses = 100});
    t.judge("request 100 pipelined", r, expect::success);
    if (r.responses.size() != 100) t.fail("request 100 pipelined", std::to_string(r.responses.size()) + " answers");
  }
  {
    std::string b = "GET /healthz HTTP/1.1\r\n" + host + "\r\nGARBAGE\r\n\r\n";
    one("pipelined then garbage", b, expect::any, raw_options{.responses = 2});
  }
}

}  // namespace atrium::hostile
