/// The schedule decider as given events / when command / then events or error. The
/// cast: `alice` (member, editor of the project), `bob` (member, viewer), `admin-1`,
/// `auditor-1` and the scheduler, `principal::system()`.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/access/policy.hpp"
#include "events/envelope.hpp"
#include "events/registry.hpp"
#include "events/schedule/cron.hpp"
#include "events/schedule/schedule_decider.hpp"

namespace {

using namespace atrium;
using test::require_error;
using test::types_of;

schedule_state given(const std::vector<schedule_event>& events) { return test::fold<schedule_state>(events); }

principal member(std::string id) { return principal{std::move(id), {global_role::member}, false, {}}; }
const principal alice = member("alice");
const principal bob = member("bob");
const principal admin{"admin-1", {global_role::admin}, false, {}};
const principal auditor{"auditor-1", {global_role::auditor}, false, {}};
const principal scheduler = principal::system();

std::chrono::sys_seconds at(const char* t) { return *parse_utc(t); }

schedule_target sql_target() { return schedule_target{false, "sql", "c-1", "select 1", "", "", 60}; }

create_schedule creation() {
  create_schedule c;
  c.schedule_id = "s-1";
  c.project_id = "p-1";
  c.name = "Nightly QC";
  c.cron = "0 6 * * 1-5";
  c.time_zone = "Europe/Berlin";
  c.target = sql_target();
  c.catch_up = "last";
  c.creator_role = project_role::editor;
  c.time_zone_known = true;
  c.connection_usable = true;
  c.now = at("2026-05-05T10:00:00Z");
  return c;
}

const schedule_created created{"s-1",        "p-1",  "Nightly QC", "0 6 * * 1-5",         "Europe/Berlin",
                               sql_target(), "last", "alice",      "2026-05-05T10:00:00Z"};

}  // namespace

TEST_CASE("schedule: editors create, the creator owns it, defaults fill in", "[schedule][decider]") {
  auto r = decide(schedule_state{}, creation(), alice);
  REQUIRE(r);
  REQUIRE(types_of(*r) == std::vector<std::string>{"schedule.created"});
  const auto e = r->front().data.get<schedule_created>();
  CHECK(e.created_by == "alice");
  CHECK(e.anchor == "2026-05-05T10:00:00Z");
  auto d = creation();
  d.time_zone = "";
  d.catch_up = "";
  d.target = schedule_target{true};
  auto r2 = decide(schedule_state{}, d, admin);
  REQUIRE(r2);
  const auto e2 = r2->front().data.get<schedule_created>();
  CHECK(e2.time_zone == "UTC");
  CHECK(e2.catch_up == "none");
  CHECK(e2.target.run_cells);
  CHECK(r2->front().data["target"] == nlohmann::json{{"run_cells", true}});
  const auto s = given({created});
  CHECK(s.status == "active");
  CHECK(s.owner == "alice");
}

TEST_CASE("schedule: viewers, outsiders, auditors and disabled users do not manage schedules", "[schedule][decider]") {
  auto c = creation();
  c.creator_role = project_role::viewer;
  require_error(decide(schedule_state{}, c, bob), errc::forbidden);
  c.creator_role = std::nullopt;
  require_error(decide(schedule_state{}, c, bob), errc::forbidden);
  c.creator_role = project_role::owner;
  require_error(decide(schedule_state{}, c, auditor), errc::forbidden);
  auto disabled = alice;
  disabled.disabled = true;
  require_error(decide(schedule_state{}, creation(), disabled), errc::forbidden);
  const auto s = given({created});
  require_error(decide(s, pause_schedule{"", project_role::viewer}, bob), errc::forbidden);
  require_error(decide(s, delete_schedule{std::nullopt}, bob), errc::forbidden);
  require_error(
      decide(s, update_schedule{.name = "x", .editor_role = project_role::viewer, .time_zone_known = true}, bob),
      errc::forbidden);
  require_error(decide(s, fire_schedule{at("2026-05-06T04:00:00Z")}, alice), errc::forbidden);
  require_error(decide(s, fire_schedule{at("2026-05-06T04:00:00Z")}, admin), errc::forbidden);
  auto unusable = creation();
  unusable.connection_usable = false;
  require_error(decide(schedule_state{}, unusable, alice), errc::forbidden);
  require_error(decide(s, creation(), alice), errc::already_exists);
}

TEST_CASE("schedule: bad settings are invalid_argument naming the field", "[schedule][decider]") {
  struct bad_case {
    const char* what;
    std::function<void(create_schedule&)> change;
    const char* field;
  };
  const std::vector<bad_case> cases = {
      {"bad cron", [](auto& c) { c.cron = "61 * * * *"; }, "cron"},
      {"empty cron", [](auto& c) { c.cron = ""; }, "cron"},
      {"unknown zone", [](auto& c) { c.time_zone_known = false; }, "time_zone"},
      {"bad catch_up", [](auto& c) { c.catch_up = "all"; }, "catch_up"},
      {"blank name", [](auto& c) { c.name = "  "; }, "name"},
      {"bad kind", [](auto& c) { c.target.kind = "spark"; }, "target.kind"},
      {"sql without connection", [](auto& c) { c.target.connection_id = ""; }, "target.connection_id"},
      {"empty sql", [](auto& c) { c.target.sql = " "; }, "target.sql"},
      {"timeout 0", [](auto& c) { c.target.timeout_s = 0; }, "target.timeout_s"},
      {"script without language", [](auto& c) { c.target = schedule_target{false, "script", "", "", "echo", "", 60}; },
       "target.language"},
  };
  for (const auto& b : cases) {
    INFO(b.what);
    auto c = creation();
    b.change(c);
    auto r = decide(schedule_state{}, c, alice);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.value("field", "") == b.field);
  }
}

TEST_CASE("schedule: update keeps absent fields, moves the anchor only when the timing changes",
          "[schedule][decider]") {
  const auto s = given({created});
  update_schedule u;
  u.name = "Morning QC";
  u.editor_role = project_role::editor;
  u.time_zone_known = true;
  u.now = at("2026-05-07T00:00:00Z");
  auto r = decide(s, u, alice);
  REQUIRE(r);
  auto e = r->front().data.get<schedule_updated>();
  CHECK(e.name == "Morning QC");
  CHECK(e.cron == "0 6 * * 1-5");
  CHECK(e.anchor == "2026-05-05T10:00:00Z");
  u.cron = "@every 30s";
  r = decide(s, u, alice);
  REQUIRE(r);
  e = r->front().data.get<schedule_updated>();
  CHECK(e.anchor == "2026-05-07T00:00:00Z");
  const auto s2 = given({created, e});
  CHECK(s2.cron == "@every 30s");
  CHECK(s2.fire_after() == at("2026-05-07T00:00:00Z"));
  u.cron = "* * *";
  require_error(decide(s, u, alice), errc::invalid_argument);
}

TEST_CASE("schedule: pause, resume and delete follow the status table", "[schedule][decider]") {
  const auto s = given({created});
  auto p = decide(s, pause_schedule{"holiday", project_role::editor}, alice);
  REQUIRE(p);
  CHECK(types_of(*p) == std::vector<std::string>{"schedule.paused"});
  const auto paused = given({created, schedule_paused{"holiday", "alice"}});
  CHECK(paused.status == "paused");
  CHECK(paused.pause_reason == "holiday");
  CHECK(decide(paused, pause_schedule{"again", project_role::editor}, alice)->empty());
  CHECK(decide(s, resume_schedule{project_role::editor, at("2026-05-06T00:00:00Z")}, alice)->empty());
  require_error(decide(paused, fire_schedule{at("2026-05-06T04:00:00Z")}, scheduler), errc::failed_precondition);
  auto r = decide(paused, resume_schedule{project_role::owner, at("2026-05-08T00:00:00Z")}, alice);
  REQUIRE(r);
  const auto resumed = given({created, schedule_paused{"holiday", "alice"}, r->front().data.get<schedule_resumed>()});
  CHECK(resumed.status == "active");
  CHECK(resumed.fire_after() == at("2026-05-08T00:00:00Z"));
  // The scheduler pauses a schedule whose owner lost access, without a project role.
  CHECK(types_of(*decide(s, pause_schedule{"owner lost access", std::nullopt}, scheduler)) ==
        std::vector<std::string>{"schedule.paused"});
  require_error(decide(s, pause_schedule{std::string(1001, 'x'), project_role::editor}, alice), errc::invalid_argument);
  auto d = decide(s, delete_schedule{project_role::editor}, alice);
  REQUIRE(d);
  const auto deleted = given({created, schedule_deleted{"alice"}});
  CHECK(deleted.status == "deleted");
  require_error(decide(deleted, delete_schedule{project_role::editor}, alice), errc::not_found);
  require_error(decide(deleted, fire_schedule{at("2026-05-06T04:00:00Z")}, scheduler), errc::not_found);
  require_error(decide(schedule_state{}, pause_schedule{"", project_role::editor}, alice), errc::not_found);
}

TEST_CASE("schedule: one instant fires once, in increasing order, with a deterministic event id",
          "[schedule][decider]") {
  const auto s = given({created});
  auto r = decide(s, fire_schedule{at("2026-05-06T04:00:00Z"), {"j-1"}, false}, scheduler);
  REQUIRE(r);
  REQUIRE(types_of(*r) == std::vector<std::string>{"schedule.fired"});
  CHECK(r->front().id == schedule_fire_event_id("s-1", at("2026-05-06T04:00:00Z")));
  const auto e = r->front().data.get<schedule_fired>();
  CHECK(e.fire_time == "2026-05-06T04:00:00Z");
  CHECK(e.job_ids == std::vector<std::string>{"j-1"});
  const auto fired = given({created, e});
  CHECK(fired.last_fired == "2026-05-06T04:00:00Z");
  CHECK(fired.fired_count == 1);
  CHECK(fired.fire_after() == at("2026-05-06T04:00:00Z"));
  auto again = decide(fired, fire_schedule{at("2026-05-06T04:00:00Z"), {"j-2"}, false}, scheduler);
  require_error(again, errc::failed_precondition);
  CHECK(again.error().details.value("last_fired", "") == "2026-05-06T04:00:00Z");
  require_error(decide(fired, fire_schedule{at("2026-05-05T04:00:00Z")}, scheduler), errc::failed_precondition);
  CHECK(decide(fired, fire_schedule{at("2026-05-07T04:00:00Z"), {}, true}, scheduler));
  // The same decision taken on a stale state carries the same id: the store keeps one.
  auto stale = decide(s, fire_schedule{at("2026-05-06T04:00:00Z"), {"j-1"}, false}, scheduler);
  REQUIRE(stale);
  CHECK(stale->front().id == r->front().id);
}

TEST_CASE("schedule: name-based ids are UUIDv8, stable and distinct", "[schedule][decider]") {
  const auto a = schedule_fire_event_id("s-1", at("2026-05-06T04:00:00Z"));
  // Pinned: SHA-256 over the namespace bytes and the name (events/schedule/schedule_decider.hpp);
  // a change here changes every stored fired event's id.
  // Expected value from Python's hashlib (tests/events/schedule_decider_test.cpp's comment):
  // sha256(bytes.fromhex(namespace) + b"schedule.fired\ns-1\n2026-05-06T04:00:00Z").
  CHECK(a == "b3ede062-c428-8d7e-9c64-01a3bc7958a9");
  CHECK(a.size() == 36);
  CHECK(a[14] == '8');
  CHECK(std::string("89ab").find(a[19]) != std::string::npos);
  CHECK(a == schedule_fire_event_id("s-1", at("2026-05-06T04:00:00Z")));
  CHECK(a != schedule_fire_event_id("s-1", at("2026-05-06T04:00:01Z")));
  CHECK(a != schedule_fire_event_id("s-2", at("2026-05-06T04:00:00Z")));
  CHECK(schedule_job_id("s-1", at("2026-05-06T04:00:00Z"), 0) != schedule_job_id("s-1", at("2026-05-06T04:00:00Z"), 1));
  CHECK(schedule_job_id("s-1", at("2026-05-06T04:00:00Z"), 0) != a);
  CHECK(schedule_stream("s-1") == "schedule-s-1");
}

TEST_CASE("schedule: the policy decision point (schedule.create/list/read/manage)", "[schedule][policy]") {
  using access::authorize;
  using access::operation;
  const access::facts editor{.role = project_role::editor};
  const access::facts viewer{.role = project_role::viewer};
  const access::facts outsider{};
  for (auto op : {operation::schedule_create, operation::schedule_manage}) {
    INFO(access::to_string(op));
    CHECK(authorize(alice, op, editor).allowed);
    CHECK(authorize(admin, op, outsider).allowed);
    CHECK(authorize(bob, op, viewer).code == errc::forbidden);
    CHECK(authorize(bob, op, outsider).code == errc::not_found);
    CHECK(authorize(auditor, op, viewer).code == errc::forbidden);
    CHECK_FALSE(authorize(alice, op, {.role = project_role::editor, .uses_connection = true}).allowed);
    CHECK(
        authorize(alice, op, {.role = project_role::editor, .connection_user = true, .uses_connection = true}).allowed);
  }
  CHECK(authorize(bob, operation::schedule_read, viewer).allowed);
  CHECK(authorize(auditor, operation::schedule_read, outsider).allowed);
  CHECK(authorize(bob, operation::schedule_read, outsider).code == errc::not_found);
  CHECK(authorize(bob, operation::schedule_list, outsider).allowed);
  auto disabled = alice;
  disabled.disabled = true;
  CHECK_FALSE(authorize(disabled, operation::schedule_read, editor).allowed);
  CHECK(access::to_string(operation::schedule_manage) == "schedule.manage");
}
