/// The jobs and containers projections, driven with hand-built envelopes over the
/// in-memory read model of tests/support/read_model.hpp; and the round trips of the
/// job and container row forms.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/read_model.hpp"

#include "events/container/container_decider.hpp"
#include "events/job/job_decider.hpp"
#include "events/project/project_events.hpp"
#include "projections/ops_views.hpp"
#include "projections/projections.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::committed;
using test::feed;
using test::memory_rows;

const std::string job_s = "job-j-1";
const job_submitted report_job{"j-1", "p-1", "sql", "c-1", "select 1", "", 600, "alice"};
const std::string ctr_s = "container-c-1";
const container_declared web{"c-1", "web", "nginx:1.27", {"nginx"}, {{"MODE", "prod"}}, {80}, "admin-1"};

const std::string& table_of(const mutation& m) {
  return std::visit([](const auto& x) -> const std::string& { return x.table; }, m);
}

/// The row without the times the projection adds.
json without_times(json row, std::initializer_list<const char*> keys) {
  for (const char* k : keys) row.erase(k);
  return row;
}

/// A job submitted and queued at positions 1 and 2.
void submit(const projection& jobs, memory_rows& rows) {
  feed(jobs, rows, committed(1, job_s, 1, report_job, "user-alice"));
  feed(jobs, rows, committed(2, job_s, 2, job_queued{}, "user-alice"));
}

}  // namespace

// --- jobs -------------------------------------------------------------------------

TEST_CASE("jobs: a submitted job gets a row and a project index entry", "[projections][jobs]") {
  const auto jobs = make_jobs_projection();
  CHECK(jobs->name() == "jobs");
  memory_rows rows;
  const auto out = feed(*jobs, rows, committed(1, job_s, 1, report_job, "user-alice"));
  // The row, the index entry, its status count and (at position 1) the counts' marker.
  CHECK(out.size() == 4);
  CHECK(rows.row("job_counts", "submitted") == json{{"count", 1}});
  CHECK(rows.get("job_counts", "_complete") != nullptr);
  CHECK(rows.row("project_jobs", "p-1/j-1") == json{{"status", "submitted"}});

  feed(*jobs, rows, committed(2, job_s, 2, job_queued{}, "user-alice"));
  const auto row = rows.get("jobs", "j-1");
  REQUIRE(row != nullptr);
  CHECK(*row == json{{"id", "j-1"},
                     {"project_id", "p-1"},
                     {"kind", "sql"},
                     {"language", ""},
                     {"connection_id", "c-1"},
                     {"cell_id", ""},
                     {"sql", "select 1"},
                     {"script", ""},
                     {"timeout_s", 600},
                     {"max_attempts", 1},
                     {"attempt", 0},
                     {"submitted_by", "alice"},
                     {"status", "queued"},
                     {"cancel_requested", false},
                     {"progress", 0},
                     {"progress_message", ""},
                     {"rows", 0},
                     {"bytes", 0},
                     {"elapsed_ms", 0},
                     {"columns", json::array()},
                     {"truncated", false},
                     {"error", ""},
                     {"sqlstate", ""},
                     {"result_expired", false},
                     {"version", 2},
                     {"submitted_at", "2026-01-01T00:00:01.000000Z"},
                     {"updated_at", "2026-01-01T00:00:02.000000Z"},
                     {"finished_at", nullptr}});
  CHECK(rows.row("project_jobs", "p-1/j-1") == json{{"status", "queued"}});
}

TEST_CASE("jobs: the row follows a run to success", "[projections][jobs]") {
  const auto jobs = make_jobs_projection();
  memory_rows rows;
  submit(*jobs, rows);
  feed(*jobs, rows, committed(3, job_s, 3, job_started{"runner-1"}, "system"));
  CHECK(rows.get("jobs", "j-1")->at("status") == "running");
  CHECK(rows.get("project_jobs", "p-1/j-1")->at("status") == "running");

  // Progress changes the job row only; the index keeps its status.
  const auto out = feed(*jobs, rows, committed(4, job_s, 4, job_progressed{0, 0, 60, 0, "copying"}, "system"));
  REQUIRE(out.size() == 1);
  CHECK(table_of(out[0]) == "jobs");
  auto row = *rows.get("jobs", "j-1");
  CHECK(row.at("progress") == 60);
  CHECK(row.at("progress_message") == "copying");
  CHECK(row.at("finished_at").is_null());

  feed(*jobs, rows, committed(7, job_s, 5, job_succeeded{42, 0, {}, 0, false}, "system"));
  row = *rows.get("jobs", "j-1");
  CHECK(row.at("status") == "succeeded");
  CHECK(row.at("rows") == 42);
  CHECK(row.at("progress") == 100);
  CHECK(row.at("version") == 5);
  CHECK(row.at("submitted_at") == "2026-01-01T00:00:01.000000Z");
  CHECK(row.at("updated_at") == "2026-01-01T00:00:07.000000Z");
  CHECK(row.at("finished_at") == "2026-01-01T00:00:07.000000Z");
  CHECK(rows.row("project_jobs", "p-1/j-1") == json{{"status", "succeeded"}});
  // One job, counted once under its status now (the counts it passed through are gone).
  CHECK(rows.row("job_counts", "succeeded") == json{{"count", 1}});
  CHECK(rows.get("job_counts", "running") == nullptr);
  CHECK(rows.get("job_counts", "queued") == nullptr);
}

TEST_CASE("jobs: failures, time-outs and cancels finish the row", "[projections][jobs]") {
  const auto jobs = make_jobs_projection();
  memory_rows rows;
  submit(*jobs, rows);
  SECTION("cancelled while queued") {
    feed(*jobs, rows, committed(3, job_s, 3, job_cancel_requested{"alice", "oops"}, "user-alice"));
    feed(*jobs, rows, committed(4, job_s, 4, job_cancelled{}, "user-alice"));
    const auto row = *rows.get("jobs", "j-1");
    CHECK(row.at("status") == "cancelled");
    CHECK(row.at("cancel_requested") == true);
    CHECK(row.at("finished_at") == "2026-01-01T00:00:04.000000Z");
    CHECK(rows.get("project_jobs", "p-1/j-1")->at("status") == "cancelled");
  }
  SECTION("cancelled while running, confirmed by the runner") {
    feed(*jobs, rows, committed(3, job_s, 3, job_started{"runner-1"}, "system"));
    const auto out = feed(*jobs, rows, committed(4, job_s, 4, job_cancel_requested{"bob", ""}, "user-bob"));
    CHECK(out.size() == 1);  // still running
    auto row = *rows.get("jobs", "j-1");
    CHECK(row.at("status") == "running");
    CHECK(row.at("cancel_requested") == true);
    CHECK(row.at("finished_at").is_null());
    feed(*jobs, rows, committed(9, job_s, 5, job_cancelled{}, "system"));
    row = *rows.get("jobs", "j-1");
    CHECK(row.at("status") == "cancelled");
    CHECK(row.at("finished_at") == "2026-01-01T00:00:09.000000Z");
  }
  SECTION("failed") {
    feed(*jobs, rows, committed(3, job_s, 3, job_started{"runner-1"}, "system"));
    feed(*jobs, rows, committed(5, job_s, 4, job_failed{"syntax error"}, "system"));
    const auto row = *rows.get("jobs", "j-1");
    CHECK(row.at("status") == "failed");
    CHECK(row.at("error") == "syntax error");
    CHECK(row.at("finished_at") == "2026-01-01T00:00:05.000000Z");
  }
  SECTION("timed out") {
    feed(*jobs, rows, committed(3, job_s, 3, job_started{"runner-1"}, "system"));
    feed(*jobs, rows, committed(6, job_s, 4, job_timed_out{600}, "system"));
    const auto row = *rows.get("jobs", "j-1");
    CHECK(row.at("status") == "timed_out");
    CHECK(row.at("error") == "timed out after 600 s");
    CHECK(row.at("finished_at") == "2026-01-01T00:00:06.000000Z");
    CHECK(rows.get("project_jobs", "p-1/j-1")->at("status") == "timed_out");
  }
}

TEST_CASE("jobs: each project indexes its own jobs", "[projections][jobs]") {
  const auto jobs = make_jobs_projection();
  memory_rows rows;
  submit(*jobs, rows);
  feed(*jobs, rows,
       committed(3, "job-j-2", 1, job_submitted{"j-2", "p-2", "script", "", "", "echo", 60, "bob"}, "user-bob"));
  feed(*jobs, rows,
       committed(4, "job-j-3", 1, job_submitted{"j-3", "p-1", "script", "", "", "ls", 60, "alice"}, "user-alice"));
  CHECK(rows.keys("jobs") == std::vector<std::string>{"j-1", "j-2", "j-3"});
  CHECK(rows.keys("project_jobs") == std::vector<std::string>{"p-1/j-1", "p-1/j-3", "p-2/j-2"});
  CHECK(rows.get("project_jobs", "p-1/j-3")->at("status") == "submitted");
}

TEST_CASE("jobs: other streams, unknown types, malformed and orphan events are ignored", "[projections][jobs]") {
  const auto jobs = make_jobs_projection();
  memory_rows rows;
  // (Position 1 would write the counts' marker: these start later.)
  CHECK(feed(*jobs, rows, committed(11, "project-p-1", 1, project_created{"p-1", "A", "", "u"})).empty());
  CHECK(feed(*jobs, rows, committed(2, "jobs-j-1", 1, report_job)).empty());
  CHECK(feed(*jobs, rows, committed(3, "container-c-1", 1, web)).empty());
  auto unknown = committed(4, job_s, 1, job_queued{});
  unknown.type = "job.paused";
  CHECK(feed(*jobs, rows, unknown).empty());
  auto malformed = committed(5, job_s, 1, report_job);
  malformed.data = json::array();
  CHECK(feed(*jobs, rows, malformed).empty());
  // An event of a job whose submission the projection never saw has nothing to show.
  CHECK(feed(*jobs, rows, committed(6, job_s, 3, job_started{"runner-1"})).empty());
  CHECK(rows.size() == 0);
}

TEST_CASE("job rows round-trip every field the decider uses", "[projections][jobs][views]") {
  job_state s;
  s.exists = true;
  s.job_id = "j-9";
  s.project_id = "p-9";
  s.kind = "script";
  s.connection_id = "c-9";
  s.sql = "";
  s.script = "echo \"hi\"\n";
  s.timeout_s = 86400;
  s.submitted_by = "alice";
  s.status = "running";
  s.cancel_requested = true;
  s.progress = 99;
  s.progress_message = "almost";
  s.error = "";
  s.language = "bash";
  s.max_attempts = 3;
  s.attempt = 2;
  s.cell_id = "cell-9";
  s.rows = 5;
  s.bytes = 50;
  s.elapsed_ms = 700;
  s.columns = {{"a", "int"}, {"b", "text"}};
  s.truncated = true;
  s.sqlstate = "57014";
  s.result_expired = true;
  s.version = 12;

  const auto row = job_row(s);
  CHECK(row == job_view(s));
  const auto back = job_from_row(row);
  CHECK(back.exists);
  CHECK(job_row(back) == row);
  CHECK(back.job_id == s.job_id);
  CHECK(back.project_id == s.project_id);
  CHECK(back.kind == s.kind);
  CHECK(back.connection_id == s.connection_id);
  CHECK(back.sql == s.sql);
  CHECK(back.script == s.script);
  CHECK(back.timeout_s == s.timeout_s);
  CHECK(back.submitted_by == s.submitted_by);
  CHECK(back.status == s.status);
  CHECK(back.cancel_requested == s.cancel_requested);
  CHECK(back.progress == s.progress);
  CHECK(back.progress_message == s.progress_message);
  CHECK(back.error == s.error);
  CHECK(back.columns == s.columns);
  CHECK(back.attempt == s.attempt);
  CHECK(back.max_attempts == s.max_attempts);
  CHECK(back.result_expired == s.result_expired);
  CHECK(back.version == s.version);
  CHECK(back.terminal() == s.terminal());

  SECTION("the projection's row decodes too (its times are ignored)") {
    const auto jobs = make_jobs_projection();
    memory_rows rows;
    submit(*jobs, rows);
    const auto stored = *rows.get("jobs", "j-1");
    const auto state = job_from_row(stored);
    CHECK(job_row(state) == without_times(stored, {"submitted_at", "updated_at", "finished_at"}));
  }
  SECTION("a malformed row throws") { CHECK_THROWS_AS(job_from_row(json{{"id", "j"}}), nlohmann::json::exception); }
}

// --- containers -------------------------------------------------------------------

TEST_CASE("containers: the row follows desired and observed state", "[projections][containers]") {
  const auto containers = make_containers_projection();
  CHECK(containers->name() == "containers");
  memory_rows rows;
  feed(*containers, rows, committed(1, ctr_s, 1, web));
  auto row = *rows.get("containers", "c-1");
  CHECK(row == json{{"id", "c-1"},
                    {"name", "web"},
                    {"image", "nginx:1.27"},
                    {"command", {"nginx"}},
                    {"env", {{"MODE", "prod"}}},
                    {"ports", {80}},
                    {"runtime", "process"},
                    {"spec",
                     {{"image", "nginx:1.27"},
                      {"command", {"nginx"}},
                      {"env", {{"MODE", "prod"}}},
                      {"ports", {80}},
                      {"runtime", "process"},
                      {"limits", {{"memory_bytes", nullptr}, {"cpus", nullptr}, {"pids", nullptr}}},
                      {"restart", "on-failure"},
                      {"health", nullptr}}},
                    {"spec_version", 1},
                    {"declared_by", "admin-1"},
                    {"desired", "stopped"},
                    {"observed", "declared"},
                    {"health", ""},
                    {"runtime_id", ""},
                    {"exit_code", nullptr},
                    {"exit_reason", nullptr},
                    {"restarts", 0},
                    {"next_restart_at", nullptr},
                    {"version", 1},
                    {"removed", false},
                    {"limits_raw", {{"memory_bytes", nullptr}, {"millicpus", nullptr}, {"pids", nullptr}}},
                    {"health_raw", nullptr},
                    {"created_at", "2026-01-01T00:00:01.000000Z"},
                    {"updated_at", "2026-01-01T00:00:01.000000Z"}});

  feed(*containers, rows, committed(2, ctr_s, 2, container_start_requested{}));
  feed(*containers, rows, committed(3, ctr_s, 3, container_started{"docker-1"}, "system"));
  feed(*containers, rows, committed(4, ctr_s, 4, container_health_changed{"unhealthy"}, "system"));
  row = *rows.get("containers", "c-1");
  CHECK(row.at("desired") == "running");
  CHECK(row.at("observed") == "running");
  CHECK(row.at("health") == "unhealthy");
  CHECK(row.at("runtime_id") == "docker-1");

  feed(*containers, rows, committed(5, ctr_s, 5, container_exited{137}, "system"));
  feed(*containers, rows, committed(6, ctr_s, 6, container_restarted{1, 1000}, "system"));
  row = *rows.get("containers", "c-1");
  CHECK(row.at("observed") == "starting");
  CHECK(row.at("exit_code") == 137);
  CHECK(row.at("restarts") == 1);
  CHECK(row.at("health") == "");
  CHECK(row.at("exit_reason") == "exited");
  // The restart's commit time (00:00:06) plus its 1 s back-off.
  CHECK(row.at("next_restart_at") == "2026-01-01T00:00:07Z");

  feed(*containers, rows, committed(7, ctr_s, 7, container_started{"docker-2"}, "system"));
  feed(*containers, rows, committed(8, ctr_s, 8, container_health_changed{"healthy"}, "system"));
  feed(*containers, rows, committed(9, ctr_s, 9, container_stop_requested{}));
  feed(*containers, rows, committed(10, ctr_s, 10, container_stopped{}, "system"));
  row = *rows.get("containers", "c-1");
  CHECK(row.at("restarts") == 1);  // only a start request or a 10-minute run resets it
  CHECK(row.at("next_restart_at").is_null());
  CHECK(row.at("desired") == "stopped");
  CHECK(row.at("observed") == "stopped");
  CHECK(row.at("version") == 10);
  CHECK(row.at("created_at") == "2026-01-01T00:00:01.000000Z");
  CHECK(row.at("updated_at") == "2026-01-01T00:00:10.000000Z");
}

TEST_CASE("containers: a removed container's row is deleted", "[projections][containers]") {
  const auto containers = make_containers_projection();
  memory_rows rows;
  feed(*containers, rows, committed(1, ctr_s, 1, web));
  feed(*containers, rows,
       committed(2, "container-c-2", 1, container_declared{"c-2", "db", "postgres:16", {}, {}, {5432}, "admin-1"}));
  CHECK(rows.keys("containers") == std::vector<std::string>{"c-1", "c-2"});

  CHECK(rows.row("container_counts", "stopped/declared") == json{{"count", 2}});
  const auto out = feed(*containers, rows, committed(3, ctr_s, 2, container_removed{}));
  // Its state's count, then its row.
  REQUIRE(out.size() == 2);
  REQUIRE(std::holds_alternative<row_delete>(out[1]));
  CHECK(std::get<row_delete>(out[1]).table == "containers");
  CHECK(std::get<row_delete>(out[1]).key == "c-1");
  CHECK(rows.keys("containers") == std::vector<std::string>{"c-2"});
  CHECK(rows.row("container_counts", "stopped/declared") == json{{"count", 1}});
  CHECK(rows.get("container_counts", "_complete") != nullptr);
}

TEST_CASE("containers: other streams, unknown types and orphan events are ignored", "[projections][containers]") {
  const auto containers = make_containers_projection();
  memory_rows rows;
  CHECK(feed(*containers, rows, committed(6, job_s, 1, report_job)).empty());
  CHECK(feed(*containers, rows, committed(2, "containers-c-1", 1, web)).empty());
  auto unknown = committed(3, ctr_s, 1, container_stopped{});
  unknown.type = "container.paused";
  CHECK(feed(*containers, rows, unknown).empty());
  CHECK(feed(*containers, rows, committed(4, ctr_s, 2, container_started{"d"})).empty());
  CHECK(feed(*containers, rows, committed(5, ctr_s, 3, container_removed{})).empty());
  CHECK(rows.size() == 0);
}

TEST_CASE("container rows round-trip every field the decider uses", "[projections][containers][views]") {
  container_state s;
  s.exists = true;
  s.container_id = "c-9";
  s.name = "api";
  s.image = "ghcr.io/x/api@sha256:abc";
  s.command = {"serve", "--port", "8080", ""};
  s.env = {{"A", "1"}, {"_B", "two words"}};
  s.ports = {8080, 9090};
  s.declared_by = "admin-1";
  s.desired = "running";
  s.observed = "exited";
  s.health = "";
  s.runtime_id = "docker-9";
  s.version = 33;
  s.restarts = 4;

  for (const auto code : {std::optional<int>(), std::optional<int>(0), std::optional<int>(-9)}) {
    for (const bool removed : {false, true}) {
      s.exit_code = code;
      s.removed = removed;
      const auto row = container_row(s);
      CHECK_FALSE(container_view(s).contains("removed"));
      const auto back = container_from_row(row);
      CHECK(container_row(back) == row);
      CHECK(back.exists);
      CHECK(back.removed == s.removed);
      CHECK(back.container_id == s.container_id);
      CHECK(back.name == s.name);
      CHECK(back.image == s.image);
      CHECK(back.command == s.command);
      CHECK(back.env == s.env);
      CHECK(back.ports == s.ports);
      CHECK(back.declared_by == s.declared_by);
      CHECK(back.desired == s.desired);
      CHECK(back.observed == s.observed);
      CHECK(back.health == s.health);
      CHECK(back.runtime_id == s.runtime_id);
      CHECK(back.exit_code == s.exit_code);
      CHECK(back.restarts == s.restarts);
      CHECK(back.version == s.version);
    }
  }
  // A view (no `removed`) decodes as not removed.
  CHECK_FALSE(container_from_row(container_view(s)).removed);
}

TEST_CASE("ops projections write only their own tables", "[projections]") {
  const std::map<std::string, std::set<std::string>> own{{"jobs", {"jobs", "project_jobs", "job_counts"}},
                                                         {"containers", {"containers", "container_counts"}}};
  const std::vector<envelope> log{
      committed(1, job_s, 1, report_job),
      committed(2, job_s, 2, job_queued{}),
      committed(3, ctr_s, 1, web),
      committed(4, job_s, 3, job_cancel_requested{"alice", ""}),
      committed(5, job_s, 4, job_cancelled{}),
      committed(6, ctr_s, 2, container_removed{}),
      committed(7, "project-p-1", 1, project_created{"p-1", "A", "", "u"}),
  };
  std::vector<std::unique_ptr<projection>> ops;
  ops.push_back(make_jobs_projection());
  ops.push_back(make_containers_projection());
  for (const auto& p : ops) {
    memory_rows rows;
    std::size_t writes = 0;
    for (const auto& e : log) {
      for (const auto& m : feed(*p, rows, e)) {
        ++writes;
        INFO("projection " << p->name() << " wrote table " << table_of(m));
        CHECK(own.at(std::string(p->name())).contains(table_of(m)));
      }
    }
    CHECK(writes > 0);
  }
}
