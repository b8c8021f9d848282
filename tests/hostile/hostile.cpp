#include "tests/hostile/hostile.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace atrium::hostile {
namespace {

/// Totals over every campaign run in this process, printed at exit when more than one ran.
struct grand_total {
  std::size_t campaigns = 0, requests = 0, five_xx = 0, hangs = 0, unanswered = 0, wrong = 0;
  ~grand_total() {
    if (campaigns > 1) {
      std::cout << "hostile campaign (all " << campaigns << " groups): " << requests << " requests, " << five_xx
                << " 5xx, " << hangs << " hangs, " << unanswered << " unanswered, " << wrong << " wrong answers"
                << std::endl;
    }
  }
};
grand_total totals;

}  // namespace

bool is_error_shape(const json& j) {
  if (!j.is_object() || !j.contains("error")) return false;
  const auto& e = j["error"];
  return e.is_object() && e.contains("code") && e["code"].is_string() && e.contains("message") &&
         e["message"].is_string() && e.contains("details") && e["details"].is_object();
}

std::string excerpt(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > n) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

bool tally::judge(const std::string& what, const raw_result& r, expect e, bool may_close) {
  ++requests;
  if (r.end == raw_end::timeout && r.responses.empty()) {
    ++hangs;
    fail(what, "no answer within " + std::to_string(k_deadline.count()) + " ms (hang)");
    return false;
  }
  if (r.responses.empty()) {
    if (may_close && r.end == raw_end::closed) return true;
    ++unanswered;
    fail(what, std::string("no answer: ") + to_string(r.end));
    return false;
  }
  bool ok = true;
  for (std::size_t i = 0; i < r.responses.size(); ++i) {
    const auto& resp = r.responses[i];
    // Only the first response answers the case; later ones (the rest of a lying body
    // read as a next request) must merely be sane.
    const auto want = i == 0 ? e : expect::any;
    ok =
        verdict(what + (i == 0 ? "" : " (response " + std::to_string(i + 1) + ")"), resp.status, resp.json, want) && ok;
  }
  return ok;
}

bool tally::judge_status(const std::string& what, unsigned status, const json& body, expect e) {
  ++requests;
  return verdict(what, status, body, e);
}

bool tally::verdict(const std::string& what, unsigned status, const json& body, expect e) {
  if (status >= 500 && !k_allowed_5xx.contains(status)) {
    ++five_xx;
    fail(what, "answered " + std::to_string(status) + " " + excerpt(body.dump()));
    return false;
  }
  if (status >= 400 && !is_error_shape(body)) {
    ++wrong;
    fail(what, "answered " + std::to_string(status) + " without the error shape: " + excerpt(body.dump()));
    return false;
  }
  if (e == expect::reject && (status < 400 || status >= 500)) {
    ++wrong;
    fail(what, "invalid input accepted: " + std::to_string(status) + " " + excerpt(body.dump()));
    return false;
  }
  if (e == expect::success && (status < 200 || status >= 300)) {
    ++wrong;
    fail(what, "expected success, got " + std::to_string(status) + " " + excerpt(body.dump()));
    return false;
  }
  return true;
}

void tally::fail(const std::string& what, const std::string& why) { failures.push_back(what + ": " + why); }

std::string tally::summary() const {
  std::ostringstream s;
  s << "hostile campaign " << name << ": " << requests << " requests, " << five_xx << " 5xx, " << hangs << " hangs, "
    << unanswered << " unanswered, " << wrong << " wrong answers";
  return s.str();
}

void tally::report() {
  std::cout << summary() << std::endl;
  ++totals.campaigns;
  totals.requests += requests;
  totals.five_xx += five_xx;
  totals.hangs += hangs;
  totals.unanswered += unanswered;
  totals.wrong += wrong;
  std::string listing;
  for (std::size_t i = 0; i < failures.size() && i < 40; ++i) listing += "  " + failures[i] + "\n";
  if (failures.size() > 40) listing += "  ... and " + std::to_string(failures.size() - 40) + " more\n";
  INFO(summary() << "\n" << listing);
  CHECK(failures.empty());
}

// ---- world --------------------------------------------------------------------------

std::string token_of(const raw_result& r) {
  if (r.responses.empty() || r.responses[0].status != 200 || !r.responses[0].json.contains("token")) {
    FAIL_CHECK("login failed: " << (r.responses.empty() ? to_string(r.end) : excerpt(r.responses[0].body)));
    return "";
  }
  return r.responses[0].json["token"].get<std::string>();
}

raw_result world::call_raw(const std::string& method, const std::string& target, const std::string& token,
                           const std::string& body, header_list headers) const {
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  return test::raw_exchange(address(), test::raw_request(method, target, headers, body), {.deadline = k_deadline});
}

raw_result world::call(const std::string& method, const std::string& target, const std::string& token, const json& body,
                       header_list headers) const {
  return call_raw(method, target, token, body.is_null() ? std::string() : body.dump(), std::move(headers));
}

namespace {

/// The JSON of the first response of `r`, REQUIREd to have status `status`.
json must(const raw_result& r, unsigned status, const char* what) {
  INFO(what << ": " << test::to_string(r.end) << " "
            << (r.responses.empty() ? std::string()
                                    : std::to_string(r.responses[0].status) + " " + excerpt(r.responses[0].body, 400)));
  REQUIRE(!r.responses.empty());
  REQUIRE(r.responses[0].status == status);
  return r.responses[0].json;
}

}  // namespace

std::pair<std::string, std::string> world::make_member(const std::string& name, const std::string& password) {
  auto u =
      must(call("POST", "/v1/users", admin,
                {{"username", name}, {"email", name + "@example.org"}, {"password", password}, {"role", "member"}}),
           201, "create user");
  auto t = token_of(call("POST", "/v1/auth/login", "", {{"username", name}, {"password", password}}));
  return {u.at("id").get<std::string>(), t};
}

world::world(std::vector<std::string> args, bool entities) {
  // The world's job stays queued (as the cases against it expect) unless a test asks.
  // The campaign fails logins by the hundred from one address: unthrottled, so that its
  // valid logins are not refused 429 (the throttle has its own tests).
  if (std::ranges::find(args, "--no-login-throttle") == args.end()) args.emplace_back("--no-login-throttle");
  if (std::ranges::find(args, "--job-slots") == args.end()) {
    args.insert(args.end(), {"--job-slots", "0"});
  }
  server = std::make_unique<test::atriumd_server>(dir.path(), std::move(args));
  admin = token_of(call("POST", "/v1/auth/login", "", {{"username", "admin"}, {"password", test::k_admin_password}}));
  std::tie(alice_id, alice) = make_member("alice", "a.l.i.c.e-password");
  if (!entities) return;
  std::tie(bob_id, bob) = make_member("bob", "b.o.b-password");
  auto d = must(call("POST", "/v1/users", admin,
                     {{"username", "dave"}, {"email", "dave@example.org"}, {"password", "d.a.v.e-password"}}),
                201, "create dave");
  dave_id = d.at("id").get<std::string>();
  auto a = must(call("POST", "/v1/users", admin,
                     {{"username", "audrey"},
                      {"email", "audrey@example.org"},
                      {"password", "a.u.d.r.e.y-password"},
                      {"role", "auditor"}}),
                201, "create auditor");
  auditor_id = a.at("id").get<std::string>();
  auditor =
      token_of(call("POST", "/v1/auth/login", "", {{"username", "audrey"}, {"password", "a.u.d.r.e.y-password"}}));

  project = must(call("POST", "/v1/projects", alice, {{"name", "Assay QC"}, {"description", "plate reader"}}), 201,
                 "create project")
                .at("id")
                .get<std::string>();
  must(call("POST", "/v1/projects/" + project + "/members", alice, {{"user_id", bob_id}, {"role", "viewer"}}), 200,
       "share project");
  cell = must(call("POST", "/v1/projects/" + project + "/cells", alice, {{"kind", "sql"}, {"content", "select 1"}}),
              201, "add cell")
             .at("cell_id")
             .get<std::string>();
  group =
      must(call("POST", "/v1/groups", alice, {{"name", "chemists"}, {"description", "wet lab"}}), 201, "create group")
          .at("id")
          .get<std::string>();
  sqlite_path = (server->data / "files" / "warehouse.db").string();  // under the SQLite root
  connection = must(call("POST", "/v1/connections", alice,
                         {{"name", "warehouse"},
                          {"driver", "sqlite"},
                          {"params", {{"path", sqlite_path}}},
                          {"credentials", json::object()}}),
                    201, "create connection")
                   .at("id")
                   .get<std::string>();
  job = must(call("POST", "/v1/jobs", alice,
                  {{"project_id", project}, {"kind", "sql"}, {"connection_id", connection}, {"sql", "select 1"}}),
             201, "submit job")
            .at("id")
            .get<std::string>();
  schedule = must(call("POST", "/v1/schedules", alice,
                       {{"name", "nightly"},
                        {"project_id", project},
                        {"cron", "0 6 * * 1-5"},
                        {"time_zone", "Europe/Berlin"},
                        {"target", {{"kind", "sql"}, {"connection_id", connection}, {"sql", "select 1"}}}}),
                  201, "create schedule")
                 .at("id")
                 .get<std::string>();
  container = must(call("POST", "/v1/containers", admin,
                        {{"name", "notebook"}, {"image", "busybox"}, {"command", {"sleep", "0"}}}),
                   201, "declare container")
                  .at("id")
                  .get<std::string>();
}

std::string world::fill(std::string s) {
  const std::map<std::string, std::string> vars{
      {"{P}", project},   {"{C}", cell},
      {"{G}", group},     {"{K}", connection},
      {"{J}", job},       {"{S}", schedule},
      {"{X}", container}, {"{A}", alice_id},
      {"{B}", bob_id},    {"{D}", dave_id},
      {"{R}", "audit"},   {"{L}", "0193a1c2-0000-7000-8000-000000000000"}};  // a lease no worker holds
  for (const auto& [k, v] : vars) {
    for (auto at = s.find(k); at != std::string::npos; at = s.find(k, at + v.size())) s.replace(at, k.size(), v);
  }
  for (auto at = s.find("{N}"); at != std::string::npos; at = s.find("{N}")) {
    s.replace(at, 3, std::to_string(++serial));
  }
  return s;
}

json world::fill(const json& j) {
  if (j.is_string()) return fill(j.get<std::string>());
  if (j.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : j.items()) out[k] = fill(v);
    return out;
  }
  if (j.is_array()) {
    json out = json::array();
    for (const auto& v : j) out.push_back(fill(v));
    return out;
  }
  return j;
}

void world::prove_alive(const std::string& after) {
  INFO("after " << after << "; server log tail:\n"
                << [&] {
                     auto l = log();
                     return l.size() > 3000 ? l.substr(l.size() - 3000) : l;
                   }());
  REQUIRE(server->proc->running());
  auto h = call("GET", "/healthz");
  REQUIRE(!h.responses.empty());
  REQUIRE(h.responses[0].status == 200);
  auto w = call("POST", "/v1/projects", alice, {{"name", "alive " + std::to_string(++serial)}});
  INFO("POST /v1/projects: " << test::to_string(w.end) << " "
                             << (w.responses.empty() ? std::string() : excerpt(w.responses[0].body, 400)));
  REQUIRE(!w.responses.empty());
  REQUIRE(w.responses[0].status == 201);
  auto v = call("GET", "/v1/audit/verify", admin);
  INFO("GET /v1/audit/verify: " << (v.responses.empty() ? std::string() : excerpt(v.responses[0].body, 400)));
  REQUIRE(!v.responses.empty());
  REQUIRE(v.responses[0].status == 200);
  REQUIRE(v.responses[0].json.value("ok", false));
}

// ---- helpers ------------------------------------------------------------------------

std::string deep_array(std::size_t n) { return std::string(n, '[') + std::string(n, ']'); }

std::string deep_object(std::size_t n) {
  std::string out;
  out.reserve(n * 6 + 2);
  for (std::size_t i = 0; i < n; ++i) out += "{\"a\":";
  out += "1";
  out.append(n, '}');
  return out;
}

std::size_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  return 0;
}

std::uint64_t cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(all.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  // state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return utime + stime;
}

std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace atrium::hostile
