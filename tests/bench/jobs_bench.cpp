// (jobs) Job execution (issue 15) against the real atriumd on 127.0.0.1:0 over a temp
// data dir, with a throwaway PostgreSQL (tests/support/postgres.hpp) where installed:
//
//   atrium-bench ──POST /v1/jobs, POST …/cancel, GET /v1/jobs/{id}──▶ atriumd ──▶ SQLite file / PostgreSQL
//        ▲                                                              │
//        └──── one SSE follower: GET /v1/events/stream?after=head ◀─────┘ job.started / job.<terminal>
//
// Terminal events are seen on the Server-Sent Events stream (one connection, read by a
// thread of its own, events matched to jobs by stream id), not by polling; each time is
// taken when the follower parses the event.
//
//  (a) jobs_sqlite_trivial: `select 1` on a small SQLite file under --sqlite-root, C client
//      threads (one project each), each submitting a job and waiting for its terminal
//      event, for --seconds: jobs/s and submit-to-terminal p50/p99. Baseline in the same
//      run: the same threads doing plain HTTP round trips (GET /v1/jobs/{id}).
//  (b) jobs_postgres_stream: a --job-rows row result (default 5,000,000) streamed into the
//      result store; rows/s from job.started to job.succeeded as seen on the stream (and
//      submit to succeeded) against `psql --csv -X -c "<same query>" > /dev/null` on the
//      same server; atriumd's VmRSS sampled every 50 ms (before, peak, growth).
//  (c) jobs_cancel_{postgres,sqlite}: `select pg_sleep(60)` and an endless recursive CTE,
//      cancelled --cancel-runs times once started: POST cancel to job.cancelled p50/p99.
//
// The server, the SSE follower and the SQLite file are shared with `--paths workers`
// (jobs_server.hpp). Every HTTP request goes through the tests' blocking client (one TCP connection per
// request, tests/support/http_client.hpp), so no Beast here; the SSE stream is read over
// a plain socket (tests/support/raw_client.hpp). Missing pieces (an atriumd without the
// job options, a dispatcher that never starts a job, no result API) end the path with a
// clear message after a bounded wait, never a hang.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "tests/bench/jobs_server.hpp"
#include "tests/support/postgres.hpp"

namespace atrium::bench {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

/// p50, p99 and max of `samples` (seconds) into `j` as `<prefix>_p50_ms` etc.
void put_latencies(ojson& j, const std::string& prefix, const std::vector<double>& samples) {
  j[prefix + "_p50_ms"] = percentile_ms(samples, 0.50);
  j[prefix + "_p99_ms"] = percentile_ms(samples, 0.99);
  j[prefix + "_max_ms"] = percentile_ms(samples, 1.0);
}

void print(const ojson& j) { print_json(j); }

/// A field of /proc/<pid>/status in MiB (VmRSS); 0 when unreadable.
double status_mib(pid_t pid, const std::string& field) {
  return static_cast<double>(proc_status_kib(pid, field)) / 1024.0;
}

using server = job_server;

// ---------------------------------------------------------------------------------
// (a) trivial SQLite jobs.

void run_trivial(const options& o, server& srv, const std::string& sqlite_conn) {
  const std::size_t clients = o.job_clients;
  std::vector<std::string> projects;
  for (std::size_t i = 0; i < clients; ++i) projects.push_back(srv.project("bench jobs " + std::to_string(i)));

  const auto probe = srv.submit(projects[0], sqlite_conn, "select 1");  // warm-up; the baseline reads it
  require_succeeded("warm-up job", srv.terminal(probe, std::chrono::seconds(15)));

  progress("jobs (a): " + std::to_string(clients) + " clients submitting `select 1` for " + std::to_string(o.seconds) +
           " s");
  std::mutex mu;
  std::vector<double> latencies;
  std::map<std::string, std::uint64_t> outcomes;
  std::uint64_t errors = 0;
  std::string first_error;
  run_control ctl(o.seconds, o.events);
  std::vector<std::thread> threads;
  std::vector<steady::time_point> finished(clients, ctl.start());
  for (std::size_t i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      while (ctl.next()) {
        try {
          const auto t0 = steady::now();
          const auto id = srv.submit(projects[i], sqlite_conn, "select 1");
          const auto end = srv.terminal(id, std::chrono::seconds(30));
          std::lock_guard lock(mu);
          latencies.push_back(seconds_between(t0, end.at));
          ++outcomes[end.type];
          finished[i] = std::max(finished[i], end.at);
        } catch (const std::exception& ex) {
          std::lock_guard lock(mu);
          if (errors++ == 0) first_error = ex.what();
          break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto end = *std::max_element(finished.begin(), finished.end());
  const double secs = seconds_between(ctl.start(), end);

  ojson j;
  j["scenario"] = "jobs_sqlite_trivial";
  j["path"] = "jobs";
  j["clients"] = clients;
  j["jobs"] = latencies.size();
  j["seconds"] = round_to(secs, 3);
  j["jobs_per_s"] = round_to(secs > 0 ? static_cast<double>(latencies.size()) / secs : 0, 1);
  put_latencies(j, "submit_to_terminal", latencies);
  j["succeeded"] = outcomes["job.succeeded"];
  j["not_succeeded"] = latencies.size() - outcomes["job.succeeded"];
  j["errors"] = errors;
  if (!first_error.empty()) j["first_error"] = first_error;
  j["terminal_seen_by"] = "sse /v1/events/stream";
  print(j);

  // Baseline: the same clients doing plain HTTP round trips (one connection each, as above).
  progress("jobs (a) baseline: " + std::to_string(clients) + " clients doing GET /v1/jobs/{id}");
  std::vector<double> rtt;
  std::uint64_t rtt_errors = 0;
  run_control ctl2(o.seconds, o.events);
  threads.clear();
  for (std::size_t i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      const auto c = srv.client();
      while (ctl2.next()) {
        const auto t0 = steady::now();
        try {
          if (c.get("/v1/jobs/" + probe).status != 200) throw std::runtime_error("status");
        } catch (const std::exception&) {
          std::lock_guard lock(mu);
          ++rtt_errors;
          break;
        }
        mine.push_back(seconds_between(t0, steady::now()));
      }
      std::lock_guard lock(mu);
      rtt.insert(rtt.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double secs2 = seconds_between(ctl2.start(), steady::now());
  ojson b;
  b["scenario"] = "jobs_baseline_http_get";
  b["path"] = "jobs";
  b["clients"] = clients;
  b["requests"] = rtt.size();
  b["seconds"] = round_to(secs2, 3);
  b["requests_per_s"] = round_to(secs2 > 0 ? static_cast<double>(rtt.size()) / secs2 : 0, 1);
  put_latencies(b, "round_trip", rtt);
  b["errors"] = rtt_errors;
  print(b);
}

// ---------------------------------------------------------------------------------
// (b) a large PostgreSQL result into the result store.

/// `psql --csv -X -c sql > /dev/null`, timed; seconds, or throws.
double time_psql(const test::postgres_server& pg, const std::string& sql) {
  const auto conninfo = "host=127.0.0.1 port=" + std::to_string(pg.port()) + " user=" + pg.user() + " dbname=postgres";
  const auto cmd = "psql --csv -X -q -d '" + conninfo + "' -c \"" + sql + "\" > /dev/null";
  const auto t0 = steady::now();
  const auto out = test::run_process({"sh", "-c", cmd}, std::chrono::minutes(10));
  const auto secs = seconds_between(t0, steady::now());
  if (out.exit_code != 0) throw std::runtime_error("psql failed: " + tail(out.err, 500));
  return secs;
}

void run_stream(const options& o, server& srv, const test::postgres_server& pg, const std::string& project,
                const std::string& pg_conn) {
  const auto rows = o.job_rows;
  const auto sql = "select g, g*2, 'row '||g, now() from generate_series(1," + std::to_string(rows) + ") g";
  progress("jobs (b): psql --csv over " + std::to_string(rows) + " rows");
  const double psql_before = time_psql(pg, sql);

  progress("jobs (b): the same query as an atriumd job");
  const auto pid = srv.pid();
  const double rss_before = status_mib(pid, "VmRSS");
  std::atomic<bool> sampling{true};
  double rss_peak = rss_before;
  std::uint64_t samples = 0;
  std::thread sampler([&] {
    while (sampling) {
      rss_peak = std::max(rss_peak, status_mib(pid, "VmRSS"));
      ++samples;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const auto t0 = steady::now();
  std::optional<seen> end;
  std::string id;
  try {
    id = srv.submit(project, pg_conn, sql);
    srv.started(id, std::chrono::seconds(60));
    end = srv.terminal(id, std::chrono::minutes(10));
  } catch (...) {
    sampling = false;
    sampler.join();
    throw;
  }
  sampling = false;
  sampler.join();
  const double rss_after = status_mib(pid, "VmRSS");
  require_succeeded("5M-row job", *end);
  const auto started = srv.follower->wait(id, {"job.started"}, std::chrono::seconds(1));
  std::uint64_t progressed = 0;
  for (const auto& e : srv.follower->events_of(id)) progressed += e.type == "job.progressed" ? 1 : 0;

  progress("jobs (b): psql again");
  const double psql_after = time_psql(pg, sql);
  const double psql_best = std::min(psql_before, psql_after);

  // The result API (branch `api`): the stored row count, if the route exists.
  json result_total = nullptr;
  auto r = srv.client().get("/v1/jobs/" + id + "/result?offset=0&limit=1");
  if (r.status == 200 && r.json.is_object()) result_total = r.json.value("total_rows", json(nullptr));

  const double run_s = started ? seconds_between(started->at, end->at) : 0;
  const double submit_s = seconds_between(t0, end->at);
  const double stored_rows = end->data.value("rows", 0.0);
  ojson j;
  j["scenario"] = "jobs_postgres_stream";
  j["path"] = "jobs";
  j["rows"] = end->data.value("rows", json(nullptr));
  j["bytes"] = end->data.value("bytes", json(nullptr));
  j["truncated"] = end->data.value("truncated", json(nullptr));
  j["result_total_rows"] = result_total;
  j["result_api"] = r.status == 200 ? "ok" : "status " + std::to_string(r.status);
  j["started_to_succeeded_s"] = round_to(run_s, 3);
  j["submit_to_succeeded_s"] = round_to(submit_s, 3);
  j["duration_ms_reported"] = end->data.value("duration_ms", json(nullptr));
  j["rows_per_s"] = round_to(run_s > 0 ? stored_rows / run_s : 0, 0);
  j["rows_per_s_submit"] = round_to(submit_s > 0 ? stored_rows / submit_s : 0, 0);
  j["psql_s"] = {round_to(psql_before, 3), round_to(psql_after, 3)};
  j["psql_rows_per_s"] = round_to(static_cast<double>(rows) / psql_best, 0);
  j["ratio_to_psql"] = round_to(run_s > 0 ? psql_best / run_s : 0, 3);
  j["progressed_events"] = progressed;
  j["rss_before_mib"] = round_to(rss_before, 1);
  j["rss_peak_mib"] = round_to(rss_peak, 1);
  j["rss_after_mib"] = round_to(rss_after, 1);
  j["rss_growth_mib"] = round_to(rss_peak - rss_before, 1);
  j["rss_samples"] = samples;
  print(j);
}

// ---------------------------------------------------------------------------------
// (c) cancel latency.

void run_cancel(const options& o, server& srv, const std::string& project, const std::string& conn,
                const std::string& name, const std::string& sql) {
  progress("jobs (c): cancelling " + std::to_string(o.cancel_runs) + " runs of " + sql);
  std::vector<double> to_cancelled, post_rtt;
  std::map<std::string, std::uint64_t> outcomes;
  for (std::size_t i = 0; i < o.cancel_runs; ++i) {
    const auto id = srv.submit(project, conn, sql);
    srv.started(id, std::chrono::seconds(15));
    // Let the statement reach the database before cancelling it.
    std::this_thread::sleep_for(std::chrono::milliseconds(o.cancel_after_ms));
    const auto t0 = steady::now();
    auto r = srv.client().post("/v1/jobs/" + id + "/cancel", json::object());
    const auto t1 = steady::now();
    if (r.status / 100 != 2) throw std::runtime_error("cancel: " + std::to_string(r.status) + " " + r.body);
    const auto end = srv.terminal(id, std::chrono::seconds(30));
    ++outcomes[end.type];
    to_cancelled.push_back(seconds_between(t0, end.at));
    post_rtt.push_back(seconds_between(t0, t1));
  }
  ojson j;
  j["scenario"] = "jobs_cancel_" + name;
  j["path"] = "jobs";
  j["runs"] = o.cancel_runs;
  j["cancelled"] = outcomes["job.cancelled"];
  j["other_terminal"] = o.cancel_runs - outcomes["job.cancelled"];
  put_latencies(j, "cancel_to_cancelled", to_cancelled);
  put_latencies(j, "cancel_post", post_rtt);
  j["cancel_after_started_ms"] = o.cancel_after_ms;
  print(j);
}

}  // namespace

int run_jobs(const options& o) {
  int failed = 0;
  std::optional<test::postgres_server> pg;
  if (test::find_postgres_bin_dir()) {
    progress("jobs: starting a throwaway PostgreSQL");
    pg.emplace();
  } else {
    progress("jobs: PostgreSQL is not installed; (b) and the PostgreSQL half of (c) are skipped");
  }
  std::vector<std::string> slots;
  if (o.job_slots > 0) slots = {"--job-slots", std::to_string(o.job_slots)};
  server srv(o, slots, "jobs");
  const auto sqlite_file = srv.sqlite_root / "bench.db";
  make_sqlite_file(sqlite_file);
  const auto sqlite_conn = srv.connection("bench sqlite", "sqlite", {{"path", sqlite_file.string()}}, json::object());
  std::string pg_conn;
  if (pg) {
    pg_conn =
        srv.connection("bench postgres", "postgres",
                       {{"host", "127.0.0.1"}, {"port", pg->port()}, {"database", "postgres"}, {"sslmode", "disable"}},
                       {{"user", pg->user()}});
  }
  const auto project = srv.project("bench jobs big");
  // The missing-dispatcher check: one job must end within 15 s, or nothing else runs.
  try {
    require_succeeded("probe job",
                      srv.terminal(srv.submit(project, sqlite_conn, "select 1"), std::chrono::seconds(15)));
  } catch (const std::exception& ex) {
    progress(std::string("jobs: ") + ex.what());
    print_failed("jobs", "jobs", ex.what());
    return 1;
  }
  const auto guarded = [&](const std::string& scenario, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& ex) {
      ++failed;
      progress("jobs: " + scenario + " failed: " + ex.what());
      print_failed(scenario, "jobs", ex.what());
    }
  };
  guarded("jobs_sqlite_trivial", [&] { run_trivial(o, srv, sqlite_conn); });
  if (pg) {
    guarded("jobs_postgres_stream", [&] { run_stream(o, srv, *pg, project, pg_conn); });
    guarded("jobs_cancel_postgres", [&] { run_cancel(o, srv, project, pg_conn, "postgres", "select pg_sleep(60)"); });
  } else {
    print_skipped("jobs_postgres_stream", "jobs", "PostgreSQL is not installed");
    print_skipped("jobs_cancel_postgres", "jobs", "PostgreSQL is not installed");
  }
  guarded("jobs_cancel_sqlite", [&] {
    run_cancel(o, srv, project, sqlite_conn, "sqlite",
               "with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) from r");
  });
  return failed;
}

}  // namespace atrium::bench
