/// The job decider as given events / when command / then events or error.
///
/// The "given" state is built by folding events with `evolve`. The cast: `alice` (a
/// member who submits, editor of the project), `bob` (another member), `admin-1`
/// (global admin), `auditor-1`, and the runner, which is `principal::system()`.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/job/job_decider.hpp"
#include "events/registry.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::require_error;
using test::types_of;

job_state given(const std::vector<job_event>& events) { return test::fold<job_state>(events); }

principal member(std::string id) { return principal{std::move(id), {global_role::member}, false, {}}; }
const principal alice = member("alice");
const principal bob = member("bob");
const principal admin{"admin-1", {global_role::admin}, false, {}};
const principal auditor{"auditor-1", {global_role::auditor}, false, {}};
const principal runner = principal::system();

const job_submitted sql_job{"j-1", "p-1", "sql", "c-1", "select 1", "", 3600, "alice"};

/// A sql job submitted by alice as an editor, with a usable connection.
submit_job sql_submission() {
  return submit_job{"j-1", "p-1", "sql", "c-1", "select 1", "", std::nullopt, project_role::editor, true};
}

/// A script job submitted by alice as an editor, without a connection.
submit_job script_submission() {
  return submit_job{"j-1", "p-1", "script", "", "", "echo hi", std::nullopt, project_role::editor, false, "bash"};
}

/// The named histories of a job, one per status it can be in.
std::vector<job_event> history(const std::string& name) {
  std::vector<job_event> h{sql_job};
  if (name == "submitted") return h;
  h.push_back(job_queued{});
  if (name == "queued") return h;
  if (name == "cancelled before start") {
    h.push_back(job_cancel_requested{"alice", ""});
    h.push_back(job_cancelled{});
    return h;
  }
  h.push_back(job_started{"runner-1"});
  h.push_back(job_progressed{0, 0, 40, 0, "reading"});
  if (name == "running") return h;
  if (name == "succeeded") h.push_back(job_succeeded{1, 0, {}, 0, false});
  if (name == "failed") h.push_back(job_failed{"syntax error"});
  if (name == "timed_out") h.push_back(job_timed_out{3600});
  if (name == "cancel requested" || name == "cancelled") h.push_back(job_cancel_requested{"alice", "too slow"});
  if (name == "cancelled") h.push_back(job_cancelled{});
  return h;
}

const std::vector<std::string> all_histories{"submitted", "queued", "running",   "cancel requested",
                                             "succeeded", "failed", "cancelled", "cancelled before start",
                                             "timed_out"};
const std::vector<std::string> terminal_histories{"succeeded", "failed", "cancelled", "cancelled before start",
                                                  "timed_out"};

template <class T>
void require_no_events(const result<T>& r) {
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

/// Requires a failed_precondition naming the job's current status.
template <class T>
void require_illegal(const result<T>& r, const std::string& status) {
  require_error(r, errc::failed_precondition);
  CHECK(r.error().details.at("status") == status);
}

/// One command of every kind a runner or user sends after submission, with the actor
/// allowed to send it.
struct attempt {
  std::string name;
  job_command command;
  principal actor;
};

std::vector<attempt> every_transition_command() {
  return {{"request_cancel", request_cancel{"stop", project_role::editor}, alice},
          {"start_job", start_job{"runner-1"}, runner},
          {"report_progress", report_progress{0, 0, 50, 0, "half"}, runner},
          {"complete_job", complete_job{2, 0, {}, 0, false}, runner},
          {"fail_job", fail_job{"boom"}, runner},
          {"time_out_job", time_out_job{60}, runner},
          {"confirm_cancel", confirm_cancel{}, runner}};
}

/// Folds decided events into a state, as the actor does after an append.
job_state fold_in(job_state s, const std::vector<proposed_event>& events) {
  for (const auto& p : events) {
    auto e = decode_event<job_event>(p.type, p.data);
    REQUIRE(e.has_value());
    s = evolve(std::move(s), *e);
    ++s.version;
  }
  return s;
}

bool is_terminal_type(const std::string& type) {
  return type == "job.succeeded" || type == "job.failed" || type == "job.cancelled" || type == "job.timed_out";
}

}  // namespace

// --- submit -----------------------------------------------------------------------

TEST_CASE("an editor submits a sql job: submitted then queued in one decision", "[job][submit]") {
  const auto r = decide(job_state{}, sql_submission(), alice);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"job.submitted", "job.queued"});
  CHECK((*r)[0].data == json{{"job_id", "j-1"},
                             {"project_id", "p-1"},
                             {"kind", "sql"},
                             {"connection_id", "c-1"},
                             {"sql", "select 1"},
                             {"script", ""},
                             {"timeout_s", 3600},
                             {"submitted_by", "alice"},
                             {"language", ""},
                             {"max_attempts", 1},
                             {"cell_id", ""}});
  CHECK((*r)[1].data == json::object());

  const auto s = fold_in(job_state{}, *r);
  CHECK(s.exists);
  CHECK(s.status == "queued");
  CHECK(s.submitted_by == "alice");
  CHECK(s.timeout_s == 3600);
  CHECK_FALSE(s.terminal());
  CHECK_FALSE(s.cancel_requested);
}

TEST_CASE("script jobs, owners, admins and explicit timeouts", "[job][submit]") {
  SECTION("a script job needs no connection") {
    const auto r = decide(job_state{}, script_submission(), alice);
    REQUIRE(r.has_value());
    CHECK((*r)[0].data.at("kind") == "script");
    CHECK((*r)[0].data.at("connection_id") == "");
    CHECK((*r)[0].data.at("script") == "echo hi");
  }
  SECTION("a script job may name a connection it may use") {
    auto c = script_submission();
    c.connection_id = "c-2";
    c.connection_usable = true;
    const auto r = decide(job_state{}, c, alice);
    REQUIRE(r.has_value());
    CHECK((*r)[0].data.at("connection_id") == "c-2");
  }
  SECTION("owners submit") {
    auto c = sql_submission();
    c.submitter_role = project_role::owner;
    CHECK(decide(job_state{}, c, alice).has_value());
  }
  SECTION("admins act as owners even without a resolved role") {
    auto c = sql_submission();
    c.submitter_role = std::nullopt;
    const auto r = decide(job_state{}, c, admin);
    REQUIRE(r.has_value());
    CHECK((*r)[0].data.at("submitted_by") == "admin-1");
  }
  SECTION("timeouts of 1 and 86400 seconds are kept") {
    for (std::uint32_t t : {1u, 60u, 86400u}) {
      auto c = sql_submission();
      c.timeout_s = t;
      const auto r = decide(job_state{}, c, alice);
      REQUIRE(r.has_value());
      CHECK((*r)[0].data.at("timeout_s") == t);
    }
  }
}

TEST_CASE("only editors and owners submit, never auditors or disabled users", "[job][submit][permissions]") {
  SECTION("viewers and non-members") {
    for (auto role : {std::optional(project_role::viewer), std::optional<project_role>()}) {
      auto c = sql_submission();
      c.submitter_role = role;
      const auto r = decide(job_state{}, c, alice);
      require_error(r, errc::forbidden);
      CHECK(r.error().message == "only editors and owners run jobs");
    }
  }
  SECTION("auditors, even with an editor role") {
    require_error(decide(job_state{}, sql_submission(), auditor), errc::forbidden);
  }
  SECTION("users without a global role") {
    require_error(decide(job_state{}, sql_submission(), principal{"nobody", {}, false, {}}), errc::forbidden);
  }
  SECTION("disabled members and admins") {
    require_error(decide(job_state{}, sql_submission(), principal{"alice", {global_role::member}, true, {}}),
                  errc::forbidden);
    require_error(decide(job_state{}, sql_submission(), principal{"admin-1", {global_role::admin}, true, {}}),
                  errc::forbidden);
  }
  SECTION("a connection the submitter may not use") {
    auto c = sql_submission();
    c.connection_usable = false;
    const auto r = decide(job_state{}, c, alice);
    require_error(r, errc::forbidden);
    CHECK(r.error().details.at("connection_id") == "c-1");

    auto s = script_submission();
    s.connection_id = "c-2";
    s.connection_usable = false;
    require_error(decide(job_state{}, s, alice), errc::forbidden);
  }
}

TEST_CASE("job submissions are validated", "[job][submit][validation]") {
  struct bad_case {
    const char* what;
    std::function<void(submit_job&)> change;
    const char* field;
  };
  const std::vector<bad_case> cases{
      {"unknown kind", [](submit_job& c) { c.kind = "python"; }, "kind"},
      {"empty kind", [](submit_job& c) { c.kind = ""; }, "kind"},
      {"sql without connection", [](submit_job& c) { c.connection_id = ""; }, "connection_id"},
      {"empty sql", [](submit_job& c) { c.sql = ""; }, "sql"},
      {"blank sql", [](submit_job& c) { c.sql = " \n\t"; }, "sql"},
      {"sql over 100000 bytes", [](submit_job& c) { c.sql = std::string(100001, 's'); }, "sql"},
      {"sql with a script", [](submit_job& c) { c.script = "echo"; }, "script"},
      {"script job with empty script",
       [](submit_job& c) {
         c.kind = "script";
         c.language = "python";
         c.sql = "";
       },
       "script"},
      {"script over 100000 bytes",
       [](submit_job& c) {
         c.kind = "script";
         c.language = "bash";
         c.sql = "";
         c.script = std::string(100001, 'x');
       },
       "script"},
      {"script job with sql",
       [](submit_job& c) {
         c.kind = "script";
         c.language = "bash";
         c.script = "echo";
       },
       "sql"},
      {"timeout 0", [](submit_job& c) { c.timeout_s = 0; }, "timeout_s"},
      {"timeout over a day", [](submit_job& c) { c.timeout_s = 86401; }, "timeout_s"},
      {"empty job id", [](submit_job& c) { c.job_id = ""; }, "job_id"},
      {"empty project id", [](submit_job& c) { c.project_id = ""; }, "project_id"},
  };
  for (const auto& bad : cases) {
    INFO(bad.what);
    auto c = sql_submission();
    bad.change(c);
    const auto r = decide(job_state{}, c, alice);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == bad.field);
  }

  SECTION("sources of exactly 100000 bytes pass") {
    auto c = sql_submission();
    c.sql = std::string(100000, 's');
    CHECK(decide(job_state{}, c, alice).has_value());
    auto s = script_submission();
    s.script = std::string(100000, 'x');
    CHECK(decide(job_state{}, s, alice).has_value());
  }
}

TEST_CASE("submitting an existing job is already_exists", "[job][submit]") {
  for (const auto& name : all_histories) {
    INFO("history: " << name);
    require_error(decide(given(history(name)), sql_submission(), alice), errc::already_exists);
  }
}

TEST_CASE("commands on a missing job are not_found", "[job][not_found]") {
  for (const auto& a : every_transition_command()) {
    INFO("command: " << a.name);
    require_error(decide(job_state{}, a.command, a.actor), errc::not_found);
    require_error(decide(job_state{}, a.command, admin), errc::not_found);
  }
}

// --- runner transitions -----------------------------------------------------------

TEST_CASE("the runner drives a job from queued to succeeded", "[job][runner]") {
  auto s = given(history("queued"));

  auto r = decide(s, start_job{"runner-1"}, runner);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"job.started"});
  CHECK((*r)[0].data == json{{"runner", "runner-1"}, {"attempt", 1}});
  s = fold_in(s, *r);
  CHECK(s.status == "running");
  CHECK(s.attempt == 1);

  r = decide(s, report_progress{0, 0, 25, 0, "loading"}, runner);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"job.progressed"});
  CHECK((*r)[0].data == json{{"rows", 0}, {"bytes", 0}, {"percent", 25}, {"elapsed_ms", 0}, {"message", "loading"}});
  s = fold_in(s, *r);
  CHECK(s.progress == 25);
  CHECK(s.progress_message == "loading");
  CHECK(s.status == "running");

  r = decide(s, complete_job{7, 70, {{"n", "int"}}, 12, true}, runner);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"job.succeeded"});
  CHECK((*r)[0].data == json{{"rows", 7},
                             {"bytes", 70},
                             {"columns", {{{"name", "n"}, {"type", "int"}}}},
                             {"duration_ms", 12},
                             {"truncated", true}});
  s = fold_in(s, *r);
  CHECK(s.status == "succeeded");
  CHECK(s.rows == 7);
  CHECK(s.bytes == 70);
  CHECK(s.columns == std::vector<job_column>{{"n", "int"}});
  CHECK(s.truncated);
  CHECK(s.progress == 100);
  CHECK(s.terminal());
}

TEST_CASE("the runner fails, times out or confirms a cancel of a running job", "[job][runner]") {
  const auto running = given(history("running"));
  SECTION("fail_job") {
    const auto r = decide(running, fail_job{"relation does not exist"}, runner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"job.failed"});
    CHECK((*r)[0].data == json{{"error", "relation does not exist"}, {"sqlstate", ""}});
    const auto s = fold_in(running, *r);
    CHECK(s.status == "failed");
    CHECK(s.error == "relation does not exist");
    CHECK(s.terminal());
  }
  SECTION("time_out_job") {
    const auto r = decide(running, time_out_job{3600}, runner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"job.timed_out"});
    CHECK((*r)[0].data == json{{"after_s", 3600}});
    const auto s = fold_in(running, *r);
    CHECK(s.status == "timed_out");
    CHECK(s.error == "timed out after 3600 s");
    CHECK(s.terminal());
  }
  SECTION("confirm_cancel after a cancel request") {
    const auto requested = given(history("cancel requested"));
    CHECK(requested.status == "running");
    CHECK(requested.cancel_requested);
    const auto r = decide(requested, confirm_cancel{}, runner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"job.cancelled"});
    CHECK((*r)[0].data == json::object());
    const auto s = fold_in(requested, *r);
    CHECK(s.status == "cancelled");
    CHECK(s.terminal());
  }
  SECTION("confirm_cancel without a request is refused") {
    require_illegal(decide(running, confirm_cancel{}, runner), "running");
  }
  SECTION("a job whose cancel was requested may still finish on its own") {
    const auto requested = given(history("cancel requested"));
    CHECK(decide(requested, complete_job{}, runner).has_value());
    CHECK(decide(requested, fail_job{"x"}, runner).has_value());
    CHECK(decide(requested, report_progress{0, 0, 90, 0, ""}, runner).has_value());
  }
}

TEST_CASE("runner commands are for the system principal only", "[job][runner][permissions]") {
  const std::vector<std::pair<std::string, job_command>> commands{
      {"queued", start_job{"runner-1"}}, {"running", report_progress{0, 0, 1, 0, ""}},
      {"running", complete_job{}},       {"running", fail_job{"x"}},
      {"running", time_out_job{1}},      {"cancel requested", confirm_cancel{}},
      {"running", release_job{"x"}}};
  const principal others[] = {admin, alice, bob, auditor, principal{"system-2", {global_role::admin}, false, {}}};
  for (const auto& [status, command] : commands) {
    const auto s = given(history(status));
    CHECK(decide(s, command, runner).has_value());
    for (const auto& who : others) {
      INFO("actor " << who.user_id << " in " << status);
      require_error(decide(s, command, who), errc::forbidden);
    }
    require_error(decide(s, command, principal{"system", {global_role::admin}, true, {}}), errc::forbidden);
  }
}

TEST_CASE("runner command arguments are validated", "[job][runner][validation]") {
  const auto running = given(history("running"));
  for (int bad : {-1, 101, 1000}) {
    const auto r = decide(running, report_progress{0, 0, bad, 0, ""}, runner);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "percent");
  }
  CHECK(decide(running, report_progress{0, 0, 0, 0, ""}, runner).has_value());
  CHECK(decide(running, report_progress{0, 0, 100, 0, ""}, runner).has_value());

  CHECK(decide(running, report_progress{5, 10, std::nullopt, 30, ""}, runner).has_value());
  {
    complete_job wide;
    wide.columns.resize(10001, job_column{"c", "text"});
    const auto r = decide(running, wide, runner);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "columns");
  }
  for (const auto& bad : {"4260", "42p01", "426011", "42 01"}) {
    const auto r = decide(running, fail_job{"x", bad}, runner);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "sqlstate");
  }
  {
    // A runner's error text is stored repaired and bounded, never refused.
    const auto r =
        decide(running, fail_job{std::string("bad \xff byte\x01") + std::string(20000, 'e'), "42601"}, runner);
    REQUIRE(r.has_value());
    const auto error = (*r)[0].data.at("error").get<std::string>();
    CHECK(error.size() <= 10000);
    CHECK(error.rfind("bad \xef\xbf\xbd byte ", 0) == 0);
  }

  const auto r = decide(given(history("queued")), start_job{""}, runner);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "runner");
}

TEST_CASE("each runner command is legal only in its statuses", "[job][runner][transitions]") {
  // status → the runner commands legal there.
  const std::map<std::string, std::set<std::string>> legal{
      {"submitted", {}},
      {"queued", {"start_job"}},
      {"running", {"report_progress", "complete_job", "fail_job", "time_out_job"}},
      {"cancel requested", {"report_progress", "complete_job", "fail_job", "time_out_job", "confirm_cancel"}},
      {"succeeded", {}},
      {"failed", {}},
      {"cancelled", {}},
      {"cancelled before start", {}},
      {"timed_out", {}}};
  for (const auto& name : all_histories) {
    const auto s = given(history(name));
    for (const auto& a : every_transition_command()) {
      if (a.name == "request_cancel") continue;
      INFO(a.name << " in " << name);
      const auto r = decide(s, a.command, a.actor);
      if (legal.at(name).contains(a.name)) {
        REQUIRE(r.has_value());
        CHECK(r->size() == 1);
      } else {
        require_illegal(r, s.status);
      }
    }
  }
}

// --- cancel -----------------------------------------------------------------------

TEST_CASE("cancel in each status", "[job][cancel]") {
  const request_cancel cancel{"no longer needed", project_role::editor};
  SECTION("submitted and queued jobs are cancelled at once") {
    for (const char* name : {"submitted", "queued"}) {
      INFO(name);
      const auto s = given(history(name));
      const auto r = decide(s, cancel, alice);
      REQUIRE(r.has_value());
      REQUIRE(types_of(*r) == std::vector<std::string>{"job.cancel_requested", "job.cancelled"});
      CHECK((*r)[0].data == json{{"requested_by", "alice"}, {"reason", "no longer needed"}});
      CHECK((*r)[1].data == json::object());
      const auto after = fold_in(s, *r);
      CHECK(after.status == "cancelled");
      CHECK(after.cancel_requested);
      CHECK(after.terminal());
    }
  }
  SECTION("a running job only records the request; the runner confirms later") {
    const auto s = given(history("running"));
    const auto r = decide(s, cancel, alice);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"job.cancel_requested"});
    const auto after = fold_in(s, *r);
    CHECK(after.status == "running");
    CHECK(after.cancel_requested);
    CHECK_FALSE(after.terminal());
  }
  SECTION("a second request is a no-op") {
    require_no_events(decide(given(history("cancel requested")), cancel, alice));
  }
  SECTION("cancelling a cancelled job is a no-op") {
    require_no_events(decide(given(history("cancelled")), cancel, alice));
    require_no_events(decide(given(history("cancelled before start")), cancel, admin));
  }
  SECTION("other finished jobs refuse") {
    for (const char* name : {"succeeded", "failed", "timed_out"}) {
      INFO(name);
      const auto s = given(history(name));
      const auto r = decide(s, cancel, alice);
      require_illegal(r, s.status);
      CHECK(r.error().message == "job already finished");
    }
  }
  SECTION("reasons are at most 1000 bytes") {
    const auto s = given(history("running"));
    CHECK(decide(s, request_cancel{std::string(1000, 'r'), std::nullopt}, alice).has_value());
    const auto r = decide(s, request_cancel{std::string(1001, 'r'), std::nullopt}, alice);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "reason");
  }
}

TEST_CASE("who may cancel a job", "[job][cancel][permissions]") {
  const auto s = given(history("running"));
  SECTION("the submitter, even without a role on the project any more") {
    CHECK(decide(s, request_cancel{"", std::nullopt}, alice).has_value());
  }
  SECTION("admins and the system principal") {
    const auto r = decide(s, request_cancel{"", std::nullopt}, admin);
    REQUIRE(r.has_value());
    CHECK((*r)[0].data.at("requested_by") == "admin-1");
    CHECK(decide(s, request_cancel{"", std::nullopt}, runner).has_value());
  }
  SECTION("editors and owners of the project") {
    CHECK(decide(s, request_cancel{"", project_role::editor}, bob).has_value());
    CHECK(decide(s, request_cancel{"", project_role::owner}, bob).has_value());
  }
  SECTION("viewers, non-members, auditors and disabled users may not") {
    require_error(decide(s, request_cancel{"", project_role::viewer}, bob), errc::forbidden);
    require_error(decide(s, request_cancel{"", std::nullopt}, bob), errc::forbidden);
    require_error(decide(s, request_cancel{"", project_role::editor}, auditor), errc::forbidden);
    require_error(decide(s, request_cancel{"", std::nullopt}, principal{"alice", {global_role::member}, true, {}}),
                  errc::forbidden);
  }
}

// --- exactly one terminal event ---------------------------------------------------

TEST_CASE("after a terminal event every command is refused or a no-op", "[job][terminal]") {
  for (const auto& name : terminal_histories) {
    const auto s = given(history(name));
    REQUIRE(s.terminal());
    for (const auto& a : every_transition_command()) {
      for (const auto& who : {a.actor, admin}) {
        INFO(a.name << " by " << who.user_id << " after " << name);
        const auto r = decide(s, a.command, who);
        if (r.has_value()) {
          CHECK(r->empty());
        } else {
          CHECK((r.error().code == errc::failed_precondition || r.error().code == errc::forbidden));
        }
      }
    }
    require_error(decide(s, sql_submission(), alice), errc::already_exists);
  }
}

TEST_CASE("every sequence of commands decides at most one terminal event", "[job][terminal][property]") {
  // Depth-first over every sequence of up to 5 commands from a queued job: along each
  // path at most one terminal event is decided, and nothing is decided after it.
  const auto commands = every_transition_command();
  std::size_t paths = 0;
  std::size_t violations = 0;
  std::string first_violation;
  std::function<void(const job_state&, int, int, std::string)> walk = [&](const job_state& s, int depth, int terminals,
                                                                          std::string path) {
    ++paths;
    if (depth == 5) return;
    for (const auto& a : commands) {
      const auto r = decide(s, a.command, a.actor);
      if (!r) continue;
      int t = terminals;
      for (const auto& e : *r) t += is_terminal_type(e.type) ? 1 : 0;
      const bool after_terminal = s.terminal() && !r->empty();
      if (t > 1 || after_terminal) {
        if (violations++ == 0) first_violation = path + " " + a.name;
      }
      walk(fold_in(s, *r), depth + 1, t, path + " " + a.name);
    }
  };
  walk(given(history("queued")), 0, 0, "queued:");
  INFO("first violation: " << first_violation);
  CHECK(violations == 0);
  CHECK(paths > 50);  // the walk reached many distinct histories
}

// --- evolve, codec, registry -------------------------------------------------------

TEST_CASE("evolve folds a job's history", "[job][evolve]") {
  const auto s = given(history("cancel requested"));
  CHECK(s.exists);
  CHECK(s.job_id == "j-1");
  CHECK(s.project_id == "p-1");
  CHECK(s.kind == "sql");
  CHECK(s.connection_id == "c-1");
  CHECK(s.sql == "select 1");
  CHECK(s.script.empty());
  CHECK(s.timeout_s == 3600);
  CHECK(s.submitted_by == "alice");
  CHECK(s.status == "running");
  CHECK(s.cancel_requested);
  CHECK(s.progress == 40);
  CHECK(s.progress_message == "reading");
  CHECK(s.error.empty());
  CHECK(s.columns.empty());
  CHECK(s.attempt == 1);
  CHECK(s.version == 5);
  CHECK(given(history("submitted")).status == "submitted");
  CHECK(job_state{}.status.empty());
  CHECK_FALSE(job_state{}.terminal());
}

TEST_CASE("job events encode and decode, empty payloads are {}", "[job][codec]") {
  const std::vector<job_event> all{sql_job,
                                   job_queued{},
                                   job_started{"runner-1"},
                                   job_progressed{0, 0, 50, 0, "half"},
                                   job_progressed{1, 2, std::nullopt, 3, ""},
                                   job_succeeded{3, 30, {{"a", "int"}, {"b", "text"}}, 5, true},
                                   job_failed{"boom", "42601"},
                                   job_cancel_requested{"alice", "why"},
                                   job_cancelled{},
                                   job_timed_out{60},
                                   job_requeued{1, "interrupted by server restart"},
                                   job_requeued{1, "worker w went away before the lease reached it", false},
                                   job_result_expired{}};
  for (const auto& event : all) {
    const auto p = std::visit([](const auto& e) { return make_event(e); }, event);
    INFO(p.type << " " << p.data.dump());
    CHECK(p.data.is_object());
    const auto back = decode_event<job_event>(p.type, p.data);
    REQUIRE(back.has_value());
    CHECK(back->index() == event.index());
    CHECK(std::visit([](const auto& e) { return make_event(e); }, *back).data == p.data);
  }
  CHECK(make_event(job_queued{}).data.dump() == "{}");
  CHECK(make_event(job_cancelled{}).data.dump() == "{}");
  // A newer schema's extra fields are ignored; a non-object is malformed.
  CHECK(decode_event<job_event>("job.cancelled", json{{"by", "x"}}).has_value());
  require_error(decode_event<job_event>("job.queued", json::array()), errc::invalid_argument);
  require_error(decode_event<job_event>("job.cancelled", json("x")), errc::invalid_argument);
  require_error(decode_event<job_event>("job.started", json::object()), errc::invalid_argument);
  require_error(decode_event<job_event>("job.deleted", json::object()), errc::invalid_argument);
}

TEST_CASE("job streams are named job-<id>", "[job]") { CHECK(job_stream("j-1") == "job-j-1"); }

// --- attempts and result expiry (issue 15) ---------------------------------------------

TEST_CASE("a lost attempt is requeued while attempts remain, then numbered on", "[job][runner][attempts]") {
  auto submitted = sql_job;
  submitted.max_attempts = 2;
  auto s = given({submitted, job_queued{}, job_started{"r", 1}});
  CHECK(s.attempt == 1);
  auto r = decide(s, requeue_job{"interrupted by server restart"}, runner);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"job.requeued"});
  CHECK((*r)[0].data == json{{"attempt", 1}, {"reason", "interrupted by server restart"}, {"counted", true}});
  s = fold_in(s, *r);
  CHECK(s.status == "queued");
  r = decide(s, start_job{"r"}, runner);
  REQUIRE(r.has_value());
  CHECK((*r)[0].data.at("attempt") == 2);
  s = fold_in(s, *r);
  CHECK(s.attempt == 2);
  // The last attempt is not requeued: the runner fails the job instead.
  require_illegal(decide(s, requeue_job{"again"}, runner), "running");
  // Only the runner requeues, and only a running job.
  require_error(decide(s, requeue_job{"x"}, admin), errc::forbidden);
  require_illegal(decide(given(history("queued")), requeue_job{"x"}, runner), "queued");
  // The default is one attempt.
  require_illegal(decide(given(history("running")), requeue_job{"x"}, runner), "running");
}

TEST_CASE("an attempt that never reached its runner is released without counting", "[job][runner][attempts]") {
  // One attempt only: a released first attempt still leaves it.
  auto s = given(history("running"));
  CHECK(s.attempt == 1);
  auto r = decide(s, release_job{"worker w-1 went away before the lease reached it"}, runner);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"job.requeued"});
  CHECK((*r)[0].data ==
        json{{"attempt", 1}, {"reason", "worker w-1 went away before the lease reached it"}, {"counted", false}});
  s = fold_in(s, *r);
  CHECK(s.status == "queued");
  CHECK(s.attempt == 0);
  r = decide(s, start_job{"w-2"}, runner);
  REQUIRE(r.has_value());
  CHECK((*r)[0].data.at("attempt") == 1);  // the same number again
  s = fold_in(s, *r);
  CHECK(s.attempt == 1);
  // Only the runner releases, only a running job, with a bounded reason.
  require_error(decide(s, release_job{"x"}, admin), errc::forbidden);
  require_illegal(decide(given(history("queued")), release_job{"x"}, runner), "queued");
  require_error(decide(s, release_job{std::string(1001, 'x')}, runner), errc::invalid_argument);
}

TEST_CASE("submissions take a language for scripts and 1-10 attempts", "[job][submit][validation]") {
  auto c = script_submission();
  c.language = "ruby";
  auto r = decide(job_state{}, c, alice);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "language");
  c.language = "";
  require_error(decide(job_state{}, c, alice), errc::invalid_argument);
  c.language = "python";
  c.max_attempts = 3;
  c.cell_id = "cell-1";
  r = decide(job_state{}, c, alice);
  REQUIRE(r.has_value());
  CHECK((*r)[0].data.at("language") == "python");
  CHECK((*r)[0].data.at("max_attempts") == 3);
  CHECK((*r)[0].data.at("cell_id") == "cell-1");
  for (std::uint32_t bad : {0U, 11U}) {
    c.max_attempts = bad;
    r = decide(job_state{}, c, alice);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "max_attempts");
  }
  auto q = sql_submission();
  q.language = "python";
  r = decide(job_state{}, q, alice);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "language");
}

TEST_CASE("a finished job's result expires once", "[job][runner][expiry]") {
  for (const auto& name : terminal_histories) {
    INFO(name);
    auto s = given(history(name));
    auto r = decide(s, expire_result{}, runner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"job.result_expired"});
    s = fold_in(s, *r);
    CHECK(s.result_expired);
    require_no_events(decide(s, expire_result{}, runner));
    require_error(decide(s, expire_result{}, admin), errc::forbidden);
  }
  require_illegal(decide(given(history("running")), expire_result{}, runner), "running");
}
