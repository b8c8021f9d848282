/// The container decider as given events / when command / then events or error.
///
/// The "given" state is built by folding events with `evolve`. The cast: `admin-1`
/// (global admin, changes the desired state), the runtime (`principal::system()`,
/// reports the observed state), `alice` (a member) and `auditor-1`.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/container/container_decider.hpp"
#include "events/registry.hpp"
#include "events/upcasters.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::require_error;
using test::types_of;

container_state given(const std::vector<container_event>& events) { return test::fold<container_state>(events); }

const principal admin{"admin-1", {global_role::admin}, false, {}};
const principal runtime = principal::system();
const principal alice{"alice", {global_role::member}, false, {}};
const principal auditor{"auditor-1", {global_role::auditor}, false, {}};

const container_declared web{"c-1",     "web",    "nginx:1.27", {"nginx", "-g", "daemon off;"}, {{"MODE", "prod"}},
                             {80, 443}, "admin-1"};

declare_container declaration() {
  return declare_container{"c-1", "web", "nginx:1.27", {"nginx", "-g", "daemon off;"}, {{"MODE", "prod"}}, {80, 443}};
}

/// Histories by (observed, desired) after the declaration.
std::vector<container_event> history(const std::string& name) {
  std::vector<container_event> h{web};
  if (name == "declared/stopped") return h;
  h.push_back(container_start_requested{});
  if (name == "declared/running") return h;
  h.push_back(container_started{"docker-1"});
  if (name == "running/running") return h;
  if (name == "running/stopped") {
    h.push_back(container_stop_requested{});
    return h;
  }
  h.push_back(container_exited{137});
  if (name == "exited/running") return h;
  if (name == "exited/stopped") {
    h.push_back(container_stop_requested{});
    return h;
  }
  if (name == "starting/running") {
    h.push_back(container_restarted{1, 1000});
    return h;
  }
  if (name == "starting/stopped") {
    h.push_back(container_restarted{1, 1000});
    h.push_back(container_stop_requested{});
    return h;
  }
  h.push_back(container_stop_requested{});
  h.push_back(container_stopped{});
  if (name == "stopped/stopped") return h;
  h.push_back(container_start_requested{});
  if (name == "stopped/running") return h;
  h.push_back(container_removed{});
  return h;  // "removed"
}

const std::vector<std::string> live_histories{
    "declared/stopped", "declared/running", "starting/running", "starting/stopped", "running/running",
    "running/stopped",  "exited/running",   "exited/stopped",   "stopped/stopped",  "stopped/running"};

template <class T>
void require_no_events(const result<T>& r) {
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

/// Requires a failed_precondition naming the observed and desired states.
template <class T>
void require_illegal(const result<T>& r, const container_state& s) {
  require_error(r, errc::failed_precondition);
  CHECK(r.error().details == json{{"observed", s.observed}, {"desired", s.desired}});
}

container_state fold_in(container_state s, const std::vector<proposed_event>& events) {
  for (const auto& p : events) {
    auto e = decode_event<container_event>(p.type, p.data);
    REQUIRE(e.has_value());
    s = evolve(std::move(s), *e);
    ++s.version;
  }
  return s;
}

struct attempt {
  std::string name;
  container_command command;
  principal actor;
};

std::vector<attempt> runtime_commands() {
  return {{"report_started", report_started{"docker-2"}, runtime},
          {"report_health", report_health{"unhealthy"}, runtime},
          {"report_exited", report_exited{1}, runtime},
          {"report_restarted", report_restarted{}, runtime},
          {"report_stopped", report_stopped{}, runtime}};
}

std::vector<attempt> admin_commands() {
  return {{"request_start", request_start{}, admin},
          {"request_stop", request_stop{}, admin},
          {"remove_container", remove_container{}, admin}};
}

}  // namespace

// --- declare ----------------------------------------------------------------------

TEST_CASE("an admin declares a container: desired stopped, observed declared", "[container][declare]") {
  const auto r = decide(container_state{}, declaration(), admin);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"container.declared"});
  CHECK((*r)[0].data == json{{"container_id", "c-1"},
                             {"name", "web"},
                             {"image", "nginx:1.27"},
                             {"command", {"nginx", "-g", "daemon off;"}},
                             {"env", {{"MODE", "prod"}}},
                             {"ports", {80, 443}},
                             {"declared_by", "admin-1"},
                             {"runtime", "process"},
                             {"limits", {{"memory_bytes", nullptr}, {"millicpus", nullptr}, {"pids", nullptr}}},
                             {"restart", "on-failure"},
                             {"health", nullptr}});
  const auto s = fold_in(container_state{}, *r);
  CHECK(s.exists);
  CHECK_FALSE(s.removed);
  CHECK(s.desired == "stopped");
  CHECK(s.observed == "declared");
  CHECK(s.health.empty());
  CHECK_FALSE(s.exit_code.has_value());
  CHECK(s.restarts == 0);
  CHECK(s.declared_by == "admin-1");
  CHECK(s.ports == std::vector<int>{80, 443});
}

TEST_CASE("container declarations are validated", "[container][declare][validation]") {
  struct bad_case {
    const char* what;
    std::function<void(declare_container&)> change;
    const char* field;
  };
  std::map<std::string, std::string> many_env;
  for (int i = 0; i < 129; ++i) many_env["V" + std::to_string(i)] = "x";
  std::vector<int> many_ports;
  for (int i = 1; i <= 33; ++i) many_ports.push_back(i);
  const std::vector<bad_case> cases{
      {"empty id", [](declare_container& c) { c.container_id = ""; }, "container_id"},
      {"empty name", [](declare_container& c) { c.name = ""; }, "name"},
      {"upper case name", [](declare_container& c) { c.name = "Web"; }, "name"},
      {"name starting with -", [](declare_container& c) { c.name = "-web"; }, "name"},
      {"name starting with _", [](declare_container& c) { c.name = "_web"; }, "name"},
      {"name starting with .", [](declare_container& c) { c.name = ".web"; }, "name"},
      {"name with a slash", [](declare_container& c) { c.name = "a/b"; }, "name"},
      {"name with a space", [](declare_container& c) { c.name = "a b"; }, "name"},
      {"name of 64 characters", [](declare_container& c) { c.name = std::string(64, 'a'); }, "name"},
      {"empty image (docker)",
       [](declare_container& c) {
         c.runtime = "docker";
         c.image = "";
       },
       "image"},
      {"image with a space", [](declare_container& c) { c.image = "nginx latest"; }, "image"},
      {"image with a tab", [](declare_container& c) { c.image = "nginx\t"; }, "image"},
      {"image of 256 bytes", [](declare_container& c) { c.image = std::string(256, 'i'); }, "image"},
      {"65 arguments", [](declare_container& c) { c.command.assign(65, "x"); }, "command"},
      {"an argument of 4097 bytes", [](declare_container& c) { c.command = {std::string(4097, 'a')}; }, "command"},
      {"129 variables", [&](declare_container& c) { c.env = many_env; }, "env"},
      {"env key starting with a digit",
       [](declare_container& c) {
         c.env = {{"1A", "x"}};
       },
       "env"},
      {"env key with a dash",
       [](declare_container& c) {
         c.env = {{"A-B", "x"}};
       },
       "env"},
      {"empty env key",
       [](declare_container& c) {
         c.env = {{"", "x"}};
       },
       "env"},
      {"env value of 32769 bytes",
       [](declare_container& c) {
         c.env = {{"A", std::string(32769, 'v')}};
       },
       "env"},
      {"33 ports", [&](declare_container& c) { c.ports = many_ports; }, "ports"},
      {"port 0", [](declare_container& c) { c.ports = {0}; }, "ports"},
      {"port -1", [](declare_container& c) { c.ports = {-1}; }, "ports"},
      {"port 65536", [](declare_container& c) { c.ports = {65536}; }, "ports"},
      {"a duplicate port",
       [](declare_container& c) {
         c.ports = {80, 443, 80};
       },
       "ports"},
  };
  for (const auto& bad : cases) {
    INFO(bad.what);
    auto c = declaration();
    bad.change(c);
    const auto r = decide(container_state{}, c, admin);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == bad.field);
  }

  SECTION("the limits themselves pass") {
    auto c = declaration();
    c.name = "a";
    CHECK(decide(container_state{}, c, admin).has_value());
    c.name = "0" + std::string(62, 'z');
    CHECK(decide(container_state{}, c, admin).has_value());
    c.name = "web-1.prod_x";
    c.image = std::string(255, 'i');
    c.command.assign(64, std::string(4096, 'a'));
    c.env.clear();
    for (int i = 0; i < 127; ++i) c.env["V_" + std::to_string(i)] = "x";
    c.env["_x"] = std::string(32768, 'v');
    c.ports.clear();
    for (int i = 0; i < 31; ++i) c.ports.push_back(1000 + i);
    c.ports.push_back(65535);
    CHECK(decide(container_state{}, c, admin).has_value());
    c.command.clear();
    c.runtime = "docker";  // docker runs the image's default command
    c.env.clear();
    c.ports = {1};
    CHECK(decide(container_state{}, c, admin).has_value());
    c.runtime = "process";  // the process runtime ignores the image
    c.image.clear();
    c.command = {"sleep", "1"};
    CHECK(decide(container_state{}, c, admin).has_value());
  }
}

TEST_CASE("only admins change a container's desired state", "[container][permissions]") {
  const principal non_admins[] = {alice, auditor, principal{"nobody", {}, false, {}}};
  for (const auto& who : non_admins) {
    INFO(who.user_id);
    require_error(decide(container_state{}, declaration(), who), errc::forbidden);
    const auto s = given(history("exited/running"));
    require_error(decide(s, request_start{}, who), errc::forbidden);
    require_error(decide(s, request_stop{}, who), errc::forbidden);
    require_error(decide(s, remove_container{}, who), errc::forbidden);
  }
  const principal disabled_admin{"admin-1", {global_role::admin}, true, {}};
  require_error(decide(container_state{}, declaration(), disabled_admin), errc::forbidden);
  require_error(decide(given(history("declared/stopped")), request_start{}, disabled_admin), errc::forbidden);
  // The system principal holds the admin role.
  CHECK(decide(container_state{}, declaration(), runtime).has_value());
}

TEST_CASE("only the system principal reports observed state", "[container][permissions]") {
  const principal others[] = {admin, alice, auditor, principal{"runtime-1", {global_role::admin}, false, {}}};
  // Each runtime command in a state where it is legal.
  const std::vector<std::pair<std::string, container_command>> legal{{"declared/running", report_started{"d-1"}},
                                                                     {"running/running", report_health{"healthy"}},
                                                                     {"running/running", report_exited{0}},
                                                                     {"exited/running", report_restarted{}},
                                                                     {"running/stopped", report_stopped{}}};
  for (const auto& [name, command] : legal) {
    const auto s = given(history(name));
    CHECK(decide(s, command, runtime).has_value());
    for (const auto& who : others) {
      INFO(who.user_id << " in " << name);
      require_error(decide(s, command, who), errc::forbidden);
    }
    require_error(decide(s, command, principal{"system", {global_role::admin}, true, {}}), errc::forbidden);
  }
}

TEST_CASE("declaring an existing or removed container is already_exists", "[container][declare]") {
  for (const auto& name : live_histories) {
    INFO(name);
    require_error(decide(given(history(name)), declaration(), admin), errc::already_exists);
  }
  require_error(decide(given(history("removed")), declaration(), admin), errc::already_exists);
}

TEST_CASE("commands on a missing or removed container are not_found", "[container][not_found]") {
  auto all = admin_commands();
  for (auto& a : runtime_commands()) all.push_back(a);
  const auto removed = given(history("removed"));
  CHECK(removed.removed);
  CHECK(removed.observed == "removed");
  CHECK(removed.desired == "removed");
  for (const auto& a : all) {
    INFO(a.name);
    require_error(decide(container_state{}, a.command, a.actor), errc::not_found);
    require_error(decide(removed, a.command, a.actor), errc::not_found);
    require_error(decide(removed, a.command, admin), errc::not_found);
  }
}

// --- desired state ------------------------------------------------------------------

TEST_CASE("request_start and request_stop set the desired state once", "[container][desired]") {
  auto s = given(history("declared/stopped"));
  auto r = decide(s, request_start{}, admin);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"container.start_requested"});
  CHECK((*r)[0].data == json::object());
  s = fold_in(s, *r);
  CHECK(s.desired == "running");
  CHECK(s.observed == "declared");
  require_no_events(decide(s, request_start{}, admin));

  r = decide(s, request_stop{}, admin);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"container.stop_requested"});
  CHECK((*r)[0].data == json::object());
  s = fold_in(s, *r);
  CHECK(s.desired == "stopped");
  require_no_events(decide(s, request_stop{}, admin));

  // Desired state is independent of the observed one.
  for (const auto& name : live_histories) {
    INFO(name);
    const auto h = given(history(name));
    const auto start = decide(h, request_start{}, admin);
    const auto stop = decide(h, request_stop{}, admin);
    REQUIRE(start.has_value());
    REQUIRE(stop.has_value());
    CHECK(start->size() == (h.desired == "running" ? 0u : 1u));
    CHECK(stop->size() == (h.desired == "stopped" ? 0u : 1u));
  }
}

TEST_CASE("a container is removed only when not running or starting", "[container][remove]") {
  for (const auto& name : live_histories) {
    INFO(name);
    const auto s = given(history(name));
    const auto r = decide(s, remove_container{}, admin);
    if (s.observed == "running" || s.observed == "starting") {
      require_illegal(r, s);
    } else {
      REQUIRE(r.has_value());
      REQUIRE(types_of(*r) == std::vector<std::string>{"container.removed"});
      CHECK((*r)[0].data == json::object());
      const auto after = fold_in(s, *r);
      CHECK(after.removed);
      CHECK(after.desired == "removed");
      CHECK(after.observed == "removed");
    }
  }
}

// --- observed state -----------------------------------------------------------------

TEST_CASE("runtime reports are legal only in their states", "[container][observed][transitions]") {
  // (observed, desired) → the runtime commands that decide one event there.
  const std::map<std::string, std::set<std::string>> legal{
      {"declared/stopped", {}},
      {"declared/running", {"report_started"}},
      {"starting/running", {"report_started", "report_exited", "report_stopped"}},
      {"starting/stopped", {"report_exited", "report_stopped"}},
      {"running/running", {"report_health", "report_exited", "report_stopped"}},
      {"running/stopped", {"report_health", "report_exited", "report_stopped"}},
      {"exited/running", {"report_started", "report_restarted", "report_stopped"}},
      {"exited/stopped", {"report_stopped"}},
      {"stopped/stopped", {}},
      {"stopped/running", {"report_started"}}};
  for (const auto& name : live_histories) {
    const auto s = given(history(name));
    for (const auto& a : runtime_commands()) {
      INFO(a.name << " in " << name);
      const auto r = decide(s, a.command, a.actor);
      if (legal.at(name).contains(a.name)) {
        REQUIRE(r.has_value());
        CHECK(r->size() == 1);
      } else if (a.name == "report_stopped" && s.observed == "stopped") {
        require_no_events(r);  // stopping a stopped container changes nothing
      } else {
        require_illegal(r, s);
      }
    }
  }
}

TEST_CASE("the runtime starts, exits and stops a container", "[container][observed]") {
  auto s = given(history("declared/running"));
  auto r = decide(s, report_started{"docker-1"}, runtime);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"container.started"});
  CHECK((*r)[0].data == json{{"runtime_id", "docker-1"}});
  s = fold_in(s, *r);
  CHECK(s.observed == "running");
  CHECK(s.runtime_id == "docker-1");

  r = decide(s, report_health{"starting"}, runtime);
  REQUIRE(r.has_value());
  CHECK((*r)[0].data == json{{"health", "starting"}});
  s = fold_in(s, *r);
  CHECK(s.health == "starting");
  require_no_events(decide(s, report_health{"starting"}, runtime));

  r = decide(s, report_exited{2}, runtime);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"container.exited"});
  CHECK((*r)[0].data == json{{"exit_code", 2}, {"reason", "exited"}, {"ran_ms", 0}});
  s = fold_in(s, *r);
  CHECK(s.observed == "exited");
  CHECK(s.exit_code == 2);
  CHECK(s.health.empty());

  r = decide(s, report_stopped{}, runtime);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"container.stopped"});
  CHECK((*r)[0].data == json::object());
  s = fold_in(s, *r);
  CHECK(s.observed == "stopped");
  CHECK(s.exit_code == 2);  // the last exit code stays
}

TEST_CASE("runtime report arguments are validated", "[container][observed][validation]") {
  const auto running = given(history("running/running"));
  for (const char* bad : {"", "ok", "Healthy", "dead"}) {
    INFO(bad);
    const auto r = decide(running, report_health{bad}, runtime);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "health");
  }
  const auto r = decide(given(history("declared/running")), report_started{""}, runtime);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "runtime_id");
}

// --- restart back-off ---------------------------------------------------------------

TEST_CASE("restart back-off doubles from 1 s to a 5 min cap and resets after 10 min of running",
          "[container][backoff]") {
  auto s = given(history("exited/running"));
  const std::vector<std::uint64_t> expected{1000,  2000,   4000,   8000,   16000,  32000,
                                            64000, 128000, 256000, 300000, 300000, 300000};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("restart " << i + 1);
    const auto r = decide(s, report_restarted{}, runtime);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"container.restarted"});
    CHECK((*r)[0].data == json{{"attempt", i + 1}, {"backoff_ms", expected[i]}});
    s = fold_in(s, *r);
    CHECK(s.observed == "starting");
    CHECK(s.restarts == i + 1);
    // Sometimes it starts and crashes, sometimes it fails to start at all.
    if (i % 2 == 0) s = fold_in(s, *decide(s, report_started{"d"}, runtime));
    const auto exited = decide(s, report_exited{1}, runtime);
    REQUIRE(exited.has_value());
    s = fold_in(s, *exited);
  }

  SECTION("an unhealthy container does not reset the count") {
    s = fold_in(s, *decide(s, report_started{"d"}, runtime));
    s = fold_in(s, *decide(s, report_health{"unhealthy"}, runtime));
    s = fold_in(s, *decide(s, report_exited{1}, runtime));
    CHECK(decide(s, report_restarted{}, runtime)->at(0).data.at("attempt") == 13);
  }
  SECTION("a healthy report does not reset the count (CrashLoopBackOff counts runs, not probes)") {
    s = fold_in(s, *decide(s, report_started{"d"}, runtime));
    s = fold_in(s, *decide(s, report_health{"healthy"}, runtime));
    CHECK(s.restarts == 12);
    s = fold_in(s, *decide(s, report_exited{1, "exited", 599999}, runtime));
    CHECK(decide(s, report_restarted{}, runtime)->at(0).data.at("attempt") == 13);
  }
  SECTION("an exit after 10 min of running resets the count") {
    s = fold_in(s, *decide(s, report_started{"d"}, runtime));
    s = fold_in(s, *decide(s, report_exited{1, "killed", 600000}, runtime));
    CHECK(s.restarts == 0);
    CHECK(decide(s, report_restarted{}, runtime)->at(0).data == json{{"attempt", 1}, {"backoff_ms", 1000}});
  }
  SECTION("a start request resets the count") {
    s = fold_in(s, *decide(s, request_stop{}, admin));
    s = fold_in(s, *decide(s, report_stopped{}, runtime));
    s = fold_in(s, *decide(s, request_start{}, admin));
    CHECK(s.restarts == 0);
  }
  SECTION("no restart once the container should stop") {
    s = fold_in(s, *decide(s, request_stop{}, admin));
    require_illegal(decide(s, report_restarted{}, runtime), s);
  }
}

TEST_CASE("restart_backoff_ms never overflows", "[container][backoff]") {
  CHECK(restart_backoff_ms(1) == 1000);
  CHECK(restart_backoff_ms(9) == 256000);
  CHECK(restart_backoff_ms(10) == 300000);
  CHECK(restart_backoff_ms(64) == 300000);
  CHECK(restart_backoff_ms(65) == 300000);
  CHECK(restart_backoff_ms(4294967295u) == 300000);
}

// --- codec, registry --------------------------------------------------------------

TEST_CASE("container events encode and decode, empty payloads are {}", "[container][codec]") {
  const std::vector<container_event> all{
      web,
      container_start_requested{},
      container_started{"docker-1"},
      container_health_changed{"healthy"},
      container_exited{-1},
      container_restarted{3, 4000},
      container_stop_requested{},
      container_stopped{},
      container_removed{},
      container_spec_changed{"",
                             {"sleep", "9"},
                             {},
                             {8080},
                             "process",
                             container_limits_spec{64 << 20, 500, std::nullopt},
                             "always",
                             container_health_spec{"http", 8080, "/h", {}, 1, 2, 3, 4},
                             "admin-1"}};
  for (const auto& event : all) {
    const auto p = std::visit([](const auto& e) { return make_event(e); }, event);
    INFO(p.type << " " << p.data.dump());
    CHECK(p.data.is_object());
    const auto back = decode_event<container_event>(p.type, p.data);
    REQUIRE(back.has_value());
    CHECK(back->index() == event.index());
    CHECK(std::visit([](const auto& e) { return make_event(e); }, *back).data == p.data);
  }
  for (const char* empty :
       {"container.start_requested", "container.stop_requested", "container.stopped", "container.removed"}) {
    INFO(empty);
    CHECK(decode_event<container_event>(empty, json::object()).has_value());
    require_error(decode_event<container_event>(empty, json::array()), errc::invalid_argument);
  }
  CHECK(make_event(container_removed{}).data.dump() == "{}");
  require_error(decode_event<container_event>("container.declared", json{{"name", 1}}), errc::invalid_argument);
}

TEST_CASE("container streams are named container-<id>", "[container]") {
  CHECK(container_stream("c-1") == "container-c-1");
}

// --- issue 18: runtime, limits, restart, health; spec changes; policies --------------

TEST_CASE("the runtime-specific spec is validated with the field named", "[container][declare][validation]") {
  struct bad_case {
    const char* what;
    std::function<void(declare_container&)> change;
    const char* field;
  };
  const std::vector<bad_case> cases{
      {"unknown runtime", [](declare_container& c) { c.runtime = "kubernetes"; }, "runtime"},
      {"empty runtime", [](declare_container& c) { c.runtime = ""; }, "runtime"},
      {"process without a command", [](declare_container& c) { c.command.clear(); }, "command"},
      {"process with an empty argv[0]",
       [](declare_container& c) {
         c.command = {"", "x"};
       },
       "command"},
      {"negative memory", [](declare_container& c) { c.limits.memory_bytes = -1; }, "limits.memory_bytes"},
      {"memory under 4 MiB", [](declare_container& c) { c.limits.memory_bytes = 4194303; }, "limits.memory_bytes"},
      {"memory over 1 TiB", [](declare_container& c) { c.limits.memory_bytes = (1ll << 40) + 1; },
       "limits.memory_bytes"},
      {"negative cpus", [](declare_container& c) { c.limits.millicpus = -500; }, "limits.cpus"},
      {"cpus under 0.01", [](declare_container& c) { c.limits.millicpus = 9; }, "limits.cpus"},
      {"zero pids", [](declare_container& c) { c.limits.pids = 0; }, "limits.pids"},
      {"negative pids", [](declare_container& c) { c.limits.pids = -3; }, "limits.pids"},
      {"unknown restart policy", [](declare_container& c) { c.restart = "sometimes"; }, "restart"},
      {"health port not declared",
       [](declare_container& c) { c.health = container_health_spec{"http", 8080, "/", {}, 30, 30, 3, 0}; },
       "health.port"},
      {"tcp health port not declared",
       [](declare_container& c) { c.health = container_health_spec{"tcp", 81, "/", {}, 30, 30, 3, 0}; }, "health.port"},
      {"health path without /",
       [](declare_container& c) { c.health = container_health_spec{"http", 80, "health", {}, 30, 30, 3, 0}; },
       "health.path"},
      {"health path with a space",
       [](declare_container& c) { c.health = container_health_spec{"http", 80, "/a b", {}, 30, 30, 3, 0}; },
       "health.path"},
      {"empty exec", [](declare_container& c) { c.health = container_health_spec{"exec", 0, "/", {}, 30, 30, 3, 0}; },
       "health.exec"},
      {"unknown health kind",
       [](declare_container& c) { c.health = container_health_spec{"grpc", 80, "/", {}, 30, 30, 3, 0}; }, "health"},
      {"interval 0", [](declare_container& c) { c.health = container_health_spec{"tcp", 80, "/", {}, 0, 30, 3, 0}; },
       "health.interval_s"},
      {"negative timeout",
       [](declare_container& c) { c.health = container_health_spec{"tcp", 80, "/", {}, 30, -1, 3, 0}; },
       "health.timeout_s"},
      {"retries 0", [](declare_container& c) { c.health = container_health_spec{"tcp", 80, "/", {}, 30, 30, 0, 0}; },
       "health.retries"},
      {"negative start period",
       [](declare_container& c) { c.health = container_health_spec{"tcp", 80, "/", {}, 30, 30, 3, -1}; },
       "health.start_period_s"},
  };
  for (const auto& bad : cases) {
    INFO(bad.what);
    auto c = declaration();
    bad.change(c);
    const auto r = decide(container_state{}, c, admin);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == bad.field);
  }
  SECTION("the edges pass and the spec is folded") {
    auto c = declaration();
    c.limits = {4194304, 10, 1};
    c.restart = "always";
    c.health = container_health_spec{"exec", 0, "/", {"true"}, 1, 1, 1, 0};
    const auto r = decide(container_state{}, c, admin);
    REQUIRE(r.has_value());
    const auto s = fold_in(container_state{}, *r);
    CHECK(s.runtime == "process");
    CHECK(s.limits == container_limits_spec{4194304, 10, 1});
    CHECK(s.restart == "always");
    REQUIRE(s.health_check.has_value());
    CHECK(s.health_check->exec == std::vector<std::string>{"true"});
    CHECK(s.spec_version == 1);
  }
}

TEST_CASE("an admin changes the spec: the whole new spec is recorded", "[container][spec]") {
  auto s = given(history("running/running"));
  change_spec cmd;
  cmd.command = std::vector<std::string>{"nginx", "-g", "daemon on;"};
  cmd.health = container_health_spec{"http", 80, "/healthz", {}, 5, 2, 3, 0};
  auto r = decide(s, cmd, admin);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"container.spec_changed"});
  CHECK((*r)[0].data.at("image") == "nginx:1.27");  // unchanged members are carried over
  CHECK((*r)[0].data.at("ports") == json{80, 443});
  CHECK((*r)[0].data.at("changed_by") == "admin-1");
  CHECK((*r)[0].data.at("health").at("path") == "/healthz");
  const auto before = s.version;
  s = fold_in(s, *r);
  CHECK(s.command == std::vector<std::string>{"nginx", "-g", "daemon on;"});
  CHECK(s.spec_version == before + 1);
  CHECK(s.observed == "running");  // the reconciler rolls it
  CHECK(s.desired == "running");

  SECTION("the same spec again decides nothing") { require_no_events(decide(s, cmd, admin)); }
  SECTION("health null removes the check") {
    change_spec off;
    off.health = std::optional<container_health_spec>{};
    auto r2 = decide(s, off, admin);
    REQUIRE(r2.has_value());
    CHECK(r2->at(0).data.at("health").is_null());
  }
  SECTION("the runtime cannot change") {
    change_spec other;
    other.runtime = "docker";
    auto r2 = decide(s, other, admin);
    require_error(r2, errc::invalid_argument);
    CHECK(r2.error().details.at("field") == "runtime");
    other.runtime = "process";
    require_no_events(decide(s, other, admin));
  }
  SECTION("the merged spec is validated") {
    change_spec bad;
    bad.ports = std::vector<int>{8080};  // the health check's port 80 is no longer declared
    auto r2 = decide(s, bad, admin);
    require_error(r2, errc::invalid_argument);
    CHECK(r2.error().details.at("field") == "health.port");
    change_spec empty;
    empty.command = std::vector<std::string>{};
    require_error(decide(s, empty, admin), errc::invalid_argument);
  }
  SECTION("only admins change it, and never after removal") {
    require_error(decide(s, cmd, alice), errc::forbidden);
    require_error(decide(s, cmd, auditor), errc::forbidden);
    require_error(decide(given(history("removed")), cmd, admin), errc::not_found);
  }
}

TEST_CASE("the restart policy decides whether an exit is restarted", "[container][policy]") {
  const auto exited_with = [](const std::string& policy, int code, const std::string& reason) {
    auto h = history("running/running");
    auto& d = std::get<container_declared>(h.front());
    d.restart = policy;
    h.push_back(container_exited{code, reason, 10});
    return given(h);
  };
  struct row {
    std::string policy;
    int code;
    std::string reason;
    bool restarts;
  };
  const std::vector<row> table{
      {"always", 0, "exited", true},        {"always", 1, "exited", true},     {"always", 137, "killed", true},
      {"on-failure", 0, "exited", false},   {"on-failure", 3, "exited", true}, {"on-failure", 137, "killed", true},
      {"on-failure", 0, "unhealthy", true}, {"on-failure", -1, "lost", true},  {"never", 1, "exited", false},
      {"never", 137, "killed", false},      {"always", 143, "rolled", false},  {"on-failure", 143, "rolled", false},
  };
  for (const auto& t : table) {
    INFO(t.policy << " " << t.code << " " << t.reason);
    const auto s = exited_with(t.policy, t.code, t.reason);
    CHECK(restart_due(s) == t.restarts);
    const auto r = decide(s, report_restarted{}, runtime);
    if (t.restarts) {
      REQUIRE(r.has_value());
      CHECK(types_of(*r) == std::vector<std::string>{"container.restarted"});
    } else {
      require_illegal(r, s);
    }
  }
}

TEST_CASE("exits carry a reason and how long the container ran", "[container][observed][validation]") {
  const auto running = given(history("running/running"));
  const auto r = decide(running, report_exited{137, "killed", 1234}, runtime);
  REQUIRE(r.has_value());
  CHECK(r->at(0).data == json{{"exit_code", 137}, {"reason", "killed"}, {"ran_ms", 1234}});
  const auto s = fold_in(running, *r);
  CHECK(s.exit_reason == "killed");
  for (const char* bad : {"", "Killed", "out-of-memory", "a b"}) {
    INFO(bad);
    auto e = decide(running, report_exited{1, bad, 0}, runtime);
    require_error(e, errc::invalid_argument);
    CHECK(e.error().details.at("field") == "reason");
  }
  auto e = decide(running, report_exited{1, "exited", -1}, runtime);
  require_error(e, errc::invalid_argument);
  CHECK(e.error().details.at("field") == "ran_ms");
}

TEST_CASE("schema-1 container events upcast and still fold", "[container][codec][upcast]") {
  const json declared_v1{{"container_id", "c-9"},    {"name", "old"},         {"image", "postgres:16"},
                         {"command", json::array()}, {"env", json::object()}, {"ports", {5432}},
                         {"declared_by", "admin-1"}};
  auto up = upcast("container.declared", 1, declared_v1);
  REQUIRE(up.has_value());
  auto d = decode_event<container_event>("container.declared", *up);
  REQUIRE(d.has_value());
  const auto& decl = std::get<container_declared>(*d);
  CHECK(decl.runtime == "docker");
  CHECK(decl.restart == "on-failure");
  CHECK_FALSE(decl.health.has_value());
  CHECK(decl.limits == container_limits_spec{});
  auto up_exit = upcast("container.exited", 1, json{{"exit_code", 3}});
  REQUIRE(up_exit.has_value());
  auto x = decode_event<container_event>("container.exited", *up_exit);
  REQUIRE(x.has_value());
  CHECK(std::get<container_exited>(*x).reason == "exited");
  CHECK(std::get<container_exited>(*x).ran_ms == 0);
  auto s = evolve(container_state{}, *d);
  s = evolve(std::move(s), container_start_requested{});
  s = evolve(std::move(s), container_started{"r"});
  s = evolve(std::move(s), *x);
  CHECK(s.observed == "exited");
  CHECK(restart_due(s));
}
