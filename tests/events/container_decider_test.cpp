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
                             {"declared_by", "admin-1"}});
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
      {"empty image", [](declare_container& c) { c.image = ""; }, "image"},
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
    c.env.clear();
    c.ports = {1};
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
  CHECK((*r)[0].data == json{{"exit_code", 2}});
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

TEST_CASE("restart back-off doubles from 1 s to a 5 min cap and resets on healthy", "[container][backoff]") {
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
  SECTION("a healthy report resets the count") {
    s = fold_in(s, *decide(s, report_started{"d"}, runtime));
    s = fold_in(s, *decide(s, report_health{"healthy"}, runtime));
    CHECK(s.restarts == 0);
    s = fold_in(s, *decide(s, report_exited{1}, runtime));
    CHECK(decide(s, report_restarted{}, runtime)->at(0).data == json{{"attempt", 1}, {"backoff_ms", 1000}});
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

TEST_CASE("container events encode and decode; empty payloads are {}", "[container][codec]") {
  const std::vector<container_event> all{web,
                                         container_start_requested{},
                                         container_started{"docker-1"},
                                         container_health_changed{"healthy"},
                                         container_exited{-1},
                                         container_restarted{3, 4000},
                                         container_stop_requested{},
                                         container_stopped{},
                                         container_removed{}};
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
