/// Jobs end to end against the real atriumd (issue 15): a SQLite job on a file under
/// the SQLite root, a PostgreSQL job of 200,000 rows read back from the result store,
/// and a script job running when atriumd is SIGKILLed, settled after the restart with
/// exactly one terminal event and its process group gone.
///
/// Also through the real atriumd: a PostgreSQL `pg_sleep` cancelled and gone from
/// `pg_stat_activity`, a `timeout_s` of 1 s ending in `job.timed_out`, a syntax error
/// failing with PostgreSQL's message and SQLSTATE, a Python script's log and
/// `result.csv`, and an endless script cancelled with its process group gone.

#include <catch2/catch.hpp>

#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"
#include "tests/support/postgres.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

std::string new_project(const http_client& admin) {
  return id_of(admin.post("/v1/projects", {{"name", "jobs"}, {"description", ""}}));
}

/// Process ids whose command line holds `needle` (as one argument).
std::vector<pid_t> processes_with_arg(const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream f(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    std::stringstream args(cmdline);
    for (std::string arg; std::getline(args, arg, '\0');) {
      if (arg == needle) {
        out.push_back(static_cast<pid_t>(std::stol(name)));
        break;
      }
    }
  }
  return out;
}

/// The process group of `pid` (from /proc/PID/stat), or nullopt if it is gone.
std::optional<pid_t> process_group(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return std::nullopt;
  const auto close = stat.rfind(')');
  std::istringstream rest(stat.substr(close + 2));
  std::string state;
  pid_t ppid = 0, pgrp = 0;
  rest >> state >> ppid >> pgrp;
  if (state == "Z") return std::nullopt;
  return pgrp;
}

/// Whether any live process is in group `pgrp`.
bool group_alive(pid_t pgrp) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    if (process_group(static_cast<pid_t>(std::stol(name))) == pgrp) return true;
  }
  return false;
}

/// How many sessions of the server at `conninfo` (other than this one) run `query` now,
/// per pg_stat_activity; -1 when the server cannot be asked.
int sessions_running(const std::string& conninfo, const std::string& query) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  int n = -1;
  if (PQstatus(c) == CONNECTION_OK) {
    const char* params[] = {query.c_str()};
    PGresult* r = PQexecParams(c,
                               "select count(*) from pg_stat_activity where query = $1 and state <> 'idle' and pid <> "
                               "pg_backend_pid()",
                               1, nullptr, params, nullptr, nullptr, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) n = std::stoi(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(c);
  return n;
}

/// The last event of a job's stream.
json last_event(const http_client& admin, const std::string& job) { return job_events(admin, job).back(); }

}  // namespace

TEST_CASE("jobs: a SQLite job under the SQLite root runs to success with its rows and columns", "[e2e][jobs]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "2"});
  const auto admin = server.admin();
  // atriumd created DATA_DIR/files (the default SQLite root); the file goes there.
  const auto db_path = server.data / "files" / "plates.sqlite";
  REQUIRE(std::filesystem::is_directory(server.data / "files"));
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "create table plates(id integer, name text, score real);"
                         "insert into plates values (1, 'alpha', 0.5), (2, 'beta', 1.5), (3, 'gamma', null);",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  const auto project = new_project(admin);
  const auto conn =
      id_of(admin.post("/v1/connections", {{"name", "plates"},
                                           {"driver", "sqlite"},
                                           {"params", {{"path", "plates.sqlite"}}},  // taken inside the root
                                           {"credentials", json::object()}}));
  const auto job = id_of(admin.post("/v1/jobs", {{"project_id", project},
                                                 {"kind", "sql"},
                                                 {"connection_id", conn},
                                                 {"sql", "select id, name, score from plates order by id"}}));
  REQUIRE(wait_status(admin, job, {"succeeded", "failed"}) == "succeeded");
  const auto events = job_events(admin, job);
  const auto types = types_of(events);
  CHECK(types.front() == "job.submitted");
  CHECK(std::ranges::find(types, "job.started") != types.end());
  CHECK(types.back() == "job.succeeded");
  CHECK(terminals(events) == 1);
  const auto& done = events.back().at("data");
  CHECK(done.at("rows") == 3);
  CHECK(done.at("truncated") == false);
  REQUIRE(done.at("columns").size() == 3);
  CHECK(done.at("columns")[0].at("name") == "id");
  CHECK(done.at("columns")[1].at("name") == "name");
  const auto view = admin.get("/v1/jobs/" + job).json;
  CHECK(view.at("rows") == 3);
  CHECK(view.at("attempt") == 1);

  SECTION("a SQLite file outside the root is refused when the connection is created") {
    const auto outside = dir.path() / "outside.sqlite";
    std::ofstream(outside).flush();
    auto r = admin.post("/v1/connections", {{"name", "outside"},
                                            {"driver", "sqlite"},
                                            {"params", {{"path", outside.string()}}},
                                            {"credentials", json::object()}});
    CHECK(r.status == 400);
  }
}

TEST_CASE("jobs: a PostgreSQL result of 200,000 rows is stored whole and reads back equal", "[e2e][jobs][postgres]") {
  const std::string secret = "Jobs-e2e-Pg-Secret-71c2";
  postgres_server pg({.user = "atrium", .password = secret});
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "1", "--connection-allow", "127.0.0.1"});
  const auto admin = server.admin();
  const auto project = new_project(admin);
  const auto conn = id_of(admin.post(
      "/v1/connections",
      {{"name", "warehouse"},
       {"driver", "postgres"},
       {"params", {{"host", pg.host()}, {"port", pg.port()}, {"database", "postgres"}, {"sslmode", "disable"}}},
       {"credentials", {{"user", "atrium"}, {"password", secret}}}}));
  const auto job = id_of(admin.post(
      "/v1/jobs", {{"project_id", project},
                   {"kind", "sql"},
                   {"connection_id", conn},
                   {"sql", "select g as n, 'row ' || g as label from generate_series(1, 200000) as g order by g"}}));
  const auto status = wait_status(admin, job, {"succeeded", "failed"}, std::chrono::seconds(120));
  INFO(admin.get("/v1/jobs/" + job).body);
  REQUIRE(status == "succeeded");
  const auto events = job_events(admin, job);
  CHECK(terminals(events) == 1);
  const auto& done = events.back().at("data");
  CHECK(done.at("rows") == 200000);
  CHECK(done.at("truncated") == false);

  // Read the result back through the API, page by page (following `next`) and as CSV.
  std::uint64_t mismatches = 0;
  std::uint64_t seen = 0;
  std::uint64_t pages = 0;
  for (json next = 0; !next.is_null(); ++pages) {
    auto page =
        admin.get("/v1/jobs/" + job + "/result?offset=" + std::to_string(next.get<std::uint64_t>()) + "&limit=10000");
    REQUIRE(page.status == 200);
    CHECK(page.json.at("total_rows") == 200000);
    CHECK(page.json.at("truncated") == false);
    REQUIRE(page.json.at("columns").size() == 2);
    CHECK(page.json.at("columns")[0] == json{{"name", "n"}, {"type", "int"}});
    CHECK(page.json.at("columns")[1] == json{{"name", "label"}, {"type", "text"}});
    for (const auto& row : page.json.at("rows")) {
      ++seen;
      if (row != json::array({seen, "row " + std::to_string(seen)})) ++mismatches;
    }
    next = page.json.at("next");
    REQUIRE(pages < 100);
  }
  CHECK(pages == 20);
  CHECK(seen == 200000);
  CHECK(mismatches == 0);

  auto csv = admin.get("/v1/jobs/" + job + "/result.csv");
  REQUIRE(csv.status == 200);
  CHECK(csv.headers["content-type"] == "text/csv; charset=utf-8");
  std::string expected = "n,label\r\n";
  expected.reserve(4'000'000);
  for (int n = 1; n <= 200000; ++n) expected += std::to_string(n) + ",row " + std::to_string(n) + "\r\n";
  CHECK(csv.body.size() == expected.size());
  CHECK(csv.body == expected);
  // No password anywhere in the events.
  CHECK(admin.get("/v1/streams/job-" + job + "?limit=1000").body.find(secret) == std::string::npos);
}

TEST_CASE("jobs: SIGKILL of atriumd with a script running, then a restart: one terminal event, no process left",
          "[e2e][jobs]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "2"});
  auto admin = server.admin();
  const auto project = new_project(admin);
  const std::string marker = "30.4217";  // `sleep 30.4217`: findable in /proc
  const auto once = id_of(admin.post(
      "/v1/jobs",
      {{"project_id", project}, {"kind", "script"}, {"language", "bash"}, {"script", "sleep " + marker + "\n"}}));
  const auto twice = id_of(admin.post("/v1/jobs", {{"project_id", project},
                                                   {"kind", "script"},
                                                   {"language", "bash"},
                                                   {"max_attempts", 2},
                                                   {"script", "sleep 0.2\necho second\n"}}));
  REQUIRE(wait_status(admin, once, {"running"}) == "running");
  std::vector<pid_t> sleepers;
  REQUIRE(wait_until(
      [&] {
        sleepers = processes_with_arg(marker);
        return !sleepers.empty();
      },
      std::chrono::seconds(10)));
  const auto group = process_group(sleepers.front());
  REQUIRE(group.has_value());
  // The second job ran alongside (2 slots) and finished: not affected by the kill.
  REQUIRE(wait_status(admin, twice, {"succeeded", "failed"}) == "succeeded");

  server.stop(SIGKILL);
  server.start();
  admin = server.admin();
  CHECK(wait_status(admin, once, {"failed", "succeeded", "cancelled", "timed_out"}) == "failed");
  const auto events = job_events(admin, once);
  CHECK(terminals(events) == 1);
  CHECK(events.back().at("type") == "job.failed");
  CHECK(events.back().at("data").at("error") == "interrupted by server restart");
  CHECK(wait_until([&] { return !group_alive(*group); }, std::chrono::seconds(10)));
  CHECK(processes_with_arg(marker).empty());
  CHECK(terminals(job_events(admin, twice)) == 1);
}

TEST_CASE("jobs: a job running when atriumd is SIGKILLed is requeued while attempts remain and runs again",
          "[e2e][jobs]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "1"});
  auto admin = server.admin();
  const auto project = new_project(admin);
  const auto job = id_of(admin.post("/v1/jobs", {{"project_id", project},
                                                 {"kind", "script"},
                                                 {"language", "bash"},
                                                 {"max_attempts", 2},
                                                 {"script", "echo attempt; sleep 30.4218\n"}}));
  REQUIRE(wait_status(admin, job, {"running"}) == "running");
  REQUIRE(wait_until([&] { return !processes_with_arg("30.4218").empty(); }, std::chrono::seconds(10)));
  server.stop(SIGKILL);
  server.start();
  admin = server.admin();
  // Requeued, started again as attempt 2 (which sleeps again): cancel it to end it.
  REQUIRE(wait_until(
      [&] {
        const auto types = types_of(job_events(admin, job));
        return std::ranges::count(types, "job.started") == 2;
      },
      std::chrono::seconds(30)));
  const auto types = types_of(job_events(admin, job));
  CHECK(std::ranges::count(types, "job.requeued") == 1);
  CHECK(admin.get("/v1/jobs/" + job).json.at("attempt") == 2);
  REQUIRE(admin.post("/v1/jobs/" + job + "/cancel", json::object()).status < 300);
  CHECK(wait_status(admin, job, {"cancelled", "failed", "succeeded", "timed_out"}) == "cancelled");
  CHECK(terminals(job_events(admin, job)) == 1);
  CHECK(wait_until([&] { return processes_with_arg("30.4218").empty(); }, std::chrono::seconds(10)));
}

TEST_CASE("jobs: PostgreSQL through atriumd: a cancelled pg_sleep leaves pg_stat_activity, a timeout, a syntax error",
          "[e2e][jobs][postgres]") {
  const std::string secret = "Jobs-e2e-Pg-Secret-9a41";
  postgres_server pg({.user = "atrium", .password = secret});
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "2", "--connection-allow", "127.0.0.1"});
  const auto admin = server.admin();
  const auto project = new_project(admin);
  const auto conn = id_of(admin.post(
      "/v1/connections",
      {{"name", "warehouse"},
       {"driver", "postgres"},
       {"params", {{"host", pg.host()}, {"port", pg.port()}, {"database", "postgres"}, {"sslmode", "disable"}}},
       {"credentials", {{"user", "atrium"}, {"password", secret}}}}));
  const auto submit = [&](const std::string& sql, int timeout_s) {
    return id_of(admin.post(
        "/v1/jobs",
        {{"project_id", project}, {"kind", "sql"}, {"connection_id", conn}, {"sql", sql}, {"timeout_s", timeout_s}}));
  };

  SECTION("cancel: the query is gone from pg_stat_activity within 2 s of the cancel") {
    const std::string sql = "select pg_sleep(60)";
    const auto job = submit(sql, 600);
    REQUIRE(wait_until([&] { return sessions_running(pg.conninfo(), sql) == 1; }, std::chrono::seconds(30)));
    REQUIRE(admin.post("/v1/jobs/" + job + "/cancel", {{"reason", "enough"}}).status == 200);
    CHECK(wait_until([&] { return sessions_running(pg.conninfo(), sql) == 0; }, std::chrono::seconds(2)));
    CHECK(wait_status(admin, job, {"cancelled", "failed", "succeeded", "timed_out"}) == "cancelled");
    CHECK(terminals(job_events(admin, job)) == 1);
  }
  SECTION("timeout_s 1 on a long query: job.timed_out, and the query stops on the server") {
    const std::string sql = "select pg_sleep(30)";
    const auto job = submit(sql, 1);
    CHECK(wait_status(admin, job, {"cancelled", "failed", "succeeded", "timed_out"}) == "timed_out");
    const auto events = job_events(admin, job);
    CHECK(terminals(events) == 1);
    CHECK(events.back().at("type") == "job.timed_out");
    CHECK(wait_until([&] { return sessions_running(pg.conninfo(), sql) == 0; }, std::chrono::seconds(10)));
  }
  SECTION("a syntax error fails the job with PostgreSQL's message and SQLSTATE") {
    const auto job = submit("selec 1", 60);
    CHECK(wait_status(admin, job, {"cancelled", "failed", "succeeded", "timed_out"}) == "failed");
    const auto failed = last_event(admin, job);
    CHECK(failed.at("type") == "job.failed");
    INFO(failed.dump());
    CHECK(failed.at("data").at("error").get<std::string>().find("syntax error at or near \"selec\"") !=
          std::string::npos);
    CHECK(failed.at("data").at("sqlstate") == "42601");
    const auto view = admin.get("/v1/jobs/" + job).json;
    CHECK(view.at("sqlstate") == "42601");
  }
}

TEST_CASE("jobs: scripts through atriumd: Python output and result.csv are served, an endless script is cancelled",
          "[e2e][jobs]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "2"});
  const auto admin = server.admin();
  const auto project = new_project(admin);

  SECTION("bad scripts are refused with 400 and nothing is recorded") {
    const auto listed = admin.get("/v1/jobs?project=" + project);
    REQUIRE(listed.status == 200);
    const auto before = listed.body;
    auto r =
        admin.post("/v1/jobs", {{"project_id", project}, {"kind", "script"}, {"language", "ruby"}, {"script", "1"}});
    CHECK(r.status == 400);
    CHECK(r.json["error"]["code"] == "invalid_argument");
    CHECK(r.json["error"]["message"] == "language must be python or bash");
    CHECK(r.json["error"]["details"]["field"] == "language");
    r = admin.post(
        "/v1/jobs",
        {{"project_id", project}, {"kind", "script"}, {"language", "bash"}, {"script", std::string(100001, '#')}});
    CHECK(r.status == 400);
    CHECK(r.json["error"]["details"]["field"] == "script");
    CHECK(admin.get("/v1/jobs?project=" + project).body == before);
  }
  SECTION("a Python script's output is its log and its result.csv its result") {
    const auto job = id_of(admin.post("/v1/jobs", {{"project_id", project},
                                                   {"kind", "script"},
                                                   {"language", "python"},
                                                   {"script",
                                                    "import csv\nprint('hello from python')\n"
                                                    "with open('result.csv', 'w', newline='') as f:\n"
                                                    "    w = csv.writer(f)\n    w.writerow(['n', 'square'])\n"
                                                    "    for n in range(1, 6): w.writerow([n, n * n])\n"}}));
    REQUIRE(wait_status(admin, job, {"succeeded", "failed", "cancelled", "timed_out"}) == "succeeded");
    const auto log = admin.get("/v1/jobs/" + job + "/log");
    CHECK(log.status == 200);
    CHECK(log.body == "hello from python\n");
    const auto result = admin.get("/v1/jobs/" + job + "/result");
    REQUIRE(result.status == 200);
    CHECK(result.json.at("total_rows") == 5);
    REQUIRE(result.json.at("columns").size() == 2);
    CHECK(result.json.at("columns")[0].at("name") == "n");
    CHECK(result.json.at("columns")[1].at("name") == "square");
    CHECK(result.json.at("rows")[4] == json::array({5, 25}));
    CHECK(last_event(admin, job).at("data").at("rows") == 5);
  }
  SECTION("an endless script is cancelled and no process of its group is left") {
    const std::string marker = "30.4219";
    const auto job =
        id_of(admin.post("/v1/jobs", {{"project_id", project},
                                      {"kind", "script"},
                                      {"language", "bash"},
                                      {"script", "sleep " + marker + " &\nwhile true; do sleep 0.1; done\n"}}));
    std::vector<pid_t> sleepers;
    REQUIRE(wait_until(
        [&] {
          sleepers = processes_with_arg(marker);
          return !sleepers.empty();
        },
        std::chrono::seconds(20)));
    const auto group = process_group(sleepers.front());
    REQUIRE(group.has_value());
    REQUIRE(admin.post("/v1/jobs/" + job + "/cancel", json::object()).status == 200);
    CHECK(wait_status(admin, job, {"cancelled", "failed", "succeeded", "timed_out"}) == "cancelled");
    CHECK(terminals(job_events(admin, job)) == 1);
    CHECK(wait_until([&] { return !group_alive(*group); }, std::chrono::seconds(10)));
    CHECK(processes_with_arg(marker).empty());
  }
}
