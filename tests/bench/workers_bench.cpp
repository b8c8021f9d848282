// (workers) Remote workers (issue 16) against the real atriumd on 127.0.0.1:0 over temp
// data dirs, with real `atriumd worker` processes on this machine:
//
//   clients ──POST /v1/jobs──▶ atriumd ──lease──▶ in-process slots (--job-slots N)
//      ▲                          │       └─────▶ atriumd worker ×W (--slots N/W), long-poll claims
//      └── SSE follower ◀─────────┘ job.started / job.succeeded (jobs_server.hpp)
//
//  (a) workers_throughput: --worker-jobs trivial SQLite jobs (`select 1`) from
//      --job-clients closed-loop clients (one project each: submit, wait for the terminal
//      event, again), per configuration on a fresh server: in-process (`--job-slots
//      --worker-slots`), then W = each of --worker-counts workers with --worker-slots / W
//      slots each against `--job-slots 0`, then in-process again (drift of a shared
//      machine shows as a difference between the two). Timed from the first submit to
//      the last terminal event as the follower saw it: jobs/s, submit-to-succeeded
//      p50/p95/max, ratio to the mean of the two in-process runs, jobs per runner.
//  (b) workers_lease_rerun: `--job-lease --worker-lease`s; --lease-runs times: a worker
//      with one slot takes an endless SQLite query (max_attempts 2), a second worker is
//      started and waits with a claim, the first is SIGKILLed once it has run for two
//      leases plus a random part of its heartbeat interval (lease/3), so the kill falls
//      at a random phase of the steady state; from the SIGKILL (wall
//      clock) to the job's `job.requeued` and attempt-2 `job.started` (their `time`, read
//      from GET /v1/streams/job-<id>), and to the follower seeing it; then the job is
//      cancelled and the second worker stopped.
//
// Workers authenticate with a `jobs:work` token of a service account (role admin), as a
// fleet would. Every process is started and stopped by its PID (tests/support/process),
// every temp dir removed, every port picked by the kernel.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <csignal>
#include <ctime>
#include <fstream>
#include <sstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/bench/jobs_server.hpp"

namespace atrium::bench {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;
using wall = std::chrono::system_clock;

/// Runs forever on SQLite (one core), until cancelled or its worker dies.
constexpr const char* k_endless_sql =
    "with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) from r";

/// An RFC 3339 UTC time as the envelope carries it (`2026-11-21T04:45:59.123456Z`);
/// nullopt if it is not one.
std::optional<wall::time_point> parse_time(const std::string& s) {
  std::tm tm{};
  int frac_at = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &frac_at) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto t = wall::from_time_t(::timegm(&tm));
  std::int64_t micros = 0;
  int digits = 0;
  auto i = static_cast<std::size_t>(frac_at);
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      if (digits < 6) {
        micros = micros * 10 + (s[i] - '0');
        ++digits;
      }
    }
  }
  for (; digits < 6; ++digits) micros *= 10;
  return t + std::chrono::microseconds(micros);
}

double ms_between(wall::time_point a, wall::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// min, median and max of `v` (milliseconds) into `j` as `<prefix>_min_ms` etc.
void put_spread(ojson& j, const std::string& prefix, std::vector<double> v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  j[prefix + "_min_ms"] = round_to(v.front(), 1);
  j[prefix + "_median_ms"] = round_to(median, 1);
  j[prefix + "_max_ms"] = round_to(v.back(), 1);
}

// ---------------------------------------------------------------------------------
// The fleet: `atriumd worker` processes of one server.

class fleet {
 public:
  fleet(const options& o, const job_server& srv) : o_(o), srv_(srv) {
    // A service account with the admin role and a token scoped to jobs:work alone (docs/jobs.md).
    const auto account = srv.must("/v1/service-accounts", {{"name", "bench-workers"}, {"role", "admin"}});
    const auto token = srv.must("/v1/service-accounts/" + account.at("id").get<std::string>() + "/tokens",
                                {{"name", "bench"}, {"scopes", json::array({"jobs:work"})}});
    token_file_ = srv.dir.path() / "worker.token";
    std::ofstream(token_file_) << token.at("token").get<std::string>() << "\n";
  }
  ~fleet() {
    for (auto& [name, p] : procs_) stop(name);
  }

  /// The PIDs of the workers still running.
  [[nodiscard]] std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const auto& [name, p] : procs_) {
      if (p) out.push_back(p->pid());
    }
    return out;
  }
  fleet(const fleet&) = delete;
  fleet& operator=(const fleet&) = delete;

  /// Starts worker `name` with `slots` slots and its own work dir and log.
  void start(const std::string& name, std::size_t slots) {
    std::vector<std::string> argv{job_server::binary(o_),
                                  "worker",
                                  "--server",
                                  "http://" + srv_.address,
                                  "--token-file",
                                  token_file_.string(),
                                  "--slots",
                                  std::to_string(slots),
                                  "--name",
                                  name,
                                  "--work-dir",
                                  (srv_.dir.path() / name).string(),
                                  "--sqlite-root",
                                  srv_.sqlite_root.string(),
                                  "--job-sandbox",
                                  "never"};
    if (!o_.atriumd_log_level.empty()) {
      argv.emplace_back("--log-level");
      argv.push_back(o_.atriumd_log_level);
    }
    procs_[name] = std::make_unique<test::child_process>(argv, std::map<std::string, std::string>{},
                                                         srv_.dir.path() / (name + ".log"));
  }

  /// Waits up to 30 s until every one of `names` is idle with a claim waiting (GET
  /// /v1/workers lists it with a free slot and no lease); throws with the first missing
  /// one's log otherwise.
  void wait_waiting(const std::vector<std::string>& names) const {
    std::string missing;
    const bool ok = test::wait_until(
        [&] {
          auto r = srv_.client().get("/v1/workers");
          if (r.status != 200 || !r.json.is_object()) return false;
          std::set<std::string> waiting;
          for (const auto& w : r.json.value("workers", json::array())) {
            const auto leases = w.value("leases", json::array());
            if (w.value("slots_free", 0) > 0 && leases.empty()) waiting.insert(w.value("name", ""));
          }
          for (const auto& n : names) {
            if (!waiting.contains(n)) {
              missing = n;
              return false;
            }
          }
          return true;
        },
        std::chrono::seconds(30));
    if (!ok) {
      throw std::runtime_error("worker " + missing + " never claimed; its log ends with:\n" +
                               tail(slurp(srv_.dir.path() / (missing + ".log")), 1500));
    }
  }

  /// Sends `signal` to worker `name` (by its PID) and reaps it; the wait status.
  int stop(const std::string& name, int signal = SIGTERM) {
    auto it = procs_.find(name);
    if (it == procs_.end() || !it->second) return 0;
    int status = 0;
    if (it->second->running()) status = it->second->stop(signal);
    if (signal == SIGTERM && status != 0) {
      progress("workers: worker " + name + " did not exit cleanly (status " + std::to_string(status) + ")");
    }
    it->second.reset();
    return status;
  }

 private:
  const options& o_;
  const job_server& srv_;
  fs::path token_file_;
  std::map<std::string, std::unique_ptr<test::child_process>> procs_;
};

// ---------------------------------------------------------------------------------
// (a) throughput of trivial SQLite jobs.

/// One configuration: `workers` 0 is the in-process dispatcher.
struct config {
  std::string name;
  std::size_t workers = 0;
  std::size_t slots_per_worker = 0;  ///< the server's --job-slots when in-process
};

/// What one configuration measured.
struct figures_of {
  config cfg;
  double jobs_per_s = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double max_ms = 0;
  std::uint64_t jobs = 0;
  std::uint64_t not_succeeded = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  std::map<std::string, std::uint64_t> runners;
  std::string first_error;
  double server_cpu_s = 0;   ///< atriumd's CPU time during the measured run
  double workers_cpu_s = 0;  ///< all workers' CPU time during it
  double bench_cpu_s = 0;    ///< this process's (the clients and the follower)
};

/// CPU seconds of the server, the workers and this process, for the difference over a run.
struct cpu_sample {
  double server = 0;
  double workers = 0;
  double bench = 0;
};

cpu_sample sample_cpu(pid_t server, const std::vector<pid_t>& workers) {
  cpu_sample c{proc_cpu_seconds(server), 0, proc_cpu_seconds(::getpid())};
  for (auto p : workers) c.workers += proc_cpu_seconds(p);
  return c;
}

/// The closed-loop clients: each submits `select 1` in its own project and waits for the
/// job's terminal event, until `o.worker_jobs` have been submitted in all.
figures_of drive(const options& o, const job_server& srv, const std::vector<std::string>& projects,
                 const std::string& conn) {
  figures_of f;
  std::mutex mu;
  std::vector<double> latencies;
  std::vector<std::string> ids;
  std::atomic<std::uint64_t> submitted{0};
  const auto start = steady::now();
  auto last = start;
  std::vector<std::thread> threads;
  for (const auto& project : projects) {
    threads.emplace_back([&, project] {
      while (submitted.fetch_add(1) < o.worker_jobs) {
        try {
          const auto t0 = steady::now();
          const auto id = srv.submit(project, conn, "select 1");
          const auto end = srv.terminal(id, std::chrono::seconds(60));
          std::lock_guard lock(mu);
          ids.push_back(id);
          if (end.type == "job.succeeded") {
            latencies.push_back(seconds_between(t0, end.at));
          } else {
            ++f.not_succeeded;
          }
          last = std::max(last, end.at);
        } catch (const std::exception& ex) {
          std::lock_guard lock(mu);
          if (f.errors++ == 0) f.first_error = ex.what();
          break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  f.jobs = ids.size();
  f.seconds = seconds_between(start, last);
  f.jobs_per_s = f.seconds > 0 ? static_cast<double>(f.jobs) / f.seconds : 0;
  f.p50_ms = percentile_ms(latencies, 0.50);
  f.p95_ms = percentile_ms(latencies, 0.95);
  f.max_ms = percentile_ms(latencies, 1.0);
  for (const auto& id : ids) {
    for (const auto& e : srv.follower->events_of(id)) {
      if (e.type == "job.started") ++f.runners[e.data.value("runner", "?")];
    }
  }
  return f;
}

/// A fresh server (and fleet) for `c`, a warm-up, then `drive`.
figures_of run_config(const options& o, const config& c) {
  const auto total = c.workers == 0 ? c.slots_per_worker : c.workers * c.slots_per_worker;
  const auto slots = c.workers == 0 ? std::to_string(c.slots_per_worker) : std::string("0");
  job_server srv(o, {"--job-slots", slots}, "workers");
  const auto file = srv.sqlite_root / "bench.db";
  make_sqlite_file(file);
  const auto conn = srv.connection("bench sqlite", "sqlite", {{"path", file.string()}}, json::object());
  std::vector<std::string> projects;
  for (std::size_t i = 0; i < o.job_clients; ++i) projects.push_back(srv.project("bench workers " + std::to_string(i)));

  std::optional<fleet> workers;
  if (c.workers > 0) {
    workers.emplace(o, srv);
    std::vector<std::string> names;
    for (std::size_t i = 1; i <= c.workers; ++i) {
      names.push_back("bench-w" + std::to_string(i));
      workers->start(names.back(), c.slots_per_worker);
    }
    workers->wait_waiting(names);
  }
  // Warm-up: two jobs per slot, at once, so every runner has run a job before the clock starts.
  std::vector<std::string> warm;
  for (std::size_t i = 0; i < 2 * total; ++i)
    warm.push_back(srv.submit(projects[i % projects.size()], conn, "select 1"));
  for (const auto& id : warm) require_succeeded("warm-up job", srv.terminal(id, std::chrono::seconds(30)));

  progress("workers (a) " + c.name + ": " + std::to_string(o.worker_jobs) + " jobs from " +
           std::to_string(o.job_clients) + " clients over " + std::to_string(total) + " slots");
  const auto pids = workers ? workers->pids() : std::vector<pid_t>{};
  const auto before = sample_cpu(srv.pid(), pids);
  auto f = drive(o, srv, projects, conn);
  const auto after = sample_cpu(srv.pid(), pids);
  f.server_cpu_s = after.server - before.server;
  f.workers_cpu_s = after.workers - before.workers;
  f.bench_cpu_s = after.bench - before.bench;
  f.cfg = c;
  return f;
}

void print_config(const figures_of& f, const options& o, double baseline) {
  const auto& c = f.cfg;
  ojson j;
  j["scenario"] = "workers_throughput";
  j["path"] = "workers";
  j["config"] = c.name;
  j["workers"] = c.workers;
  j["slots_per_worker"] = c.workers == 0 ? json(nullptr) : json(c.slots_per_worker);
  j["total_slots"] = c.workers == 0 ? c.slots_per_worker : c.workers * c.slots_per_worker;
  j["clients"] = o.job_clients;
  j["jobs"] = f.jobs;
  j["seconds"] = round_to(f.seconds, 3);
  j["jobs_per_s"] = round_to(f.jobs_per_s, 1);
  j["submit_to_succeeded_p50_ms"] = f.p50_ms;
  j["submit_to_succeeded_p95_ms"] = f.p95_ms;
  j["submit_to_succeeded_max_ms"] = f.max_ms;
  j["ratio_to_inprocess"] = baseline > 0 ? json(round_to(f.jobs_per_s / baseline, 3)) : json(nullptr);
  const double per_job = f.jobs > 0 ? 1000.0 / static_cast<double>(f.jobs) : 0;
  j["cpu_ms_per_job_server"] = round_to(f.server_cpu_s * per_job, 2);
  j["cpu_ms_per_job_workers"] = round_to(f.workers_cpu_s * per_job, 2);
  j["cpu_ms_per_job_bench"] = round_to(f.bench_cpu_s * per_job, 2);
  j["cpu_cores_busy"] = f.seconds > 0 ? round_to((f.server_cpu_s + f.workers_cpu_s + f.bench_cpu_s) / f.seconds, 2) : 0;
  j["runners"] = f.runners;
  j["not_succeeded"] = f.not_succeeded;
  j["errors"] = f.errors;
  if (!f.first_error.empty()) j["first_error"] = f.first_error;
  print_json(j);
}

/// Runs every configuration, prints one line each and a table on stderr; failures.
int run_throughput(const options& o) {
  std::vector<config> configs{{"inprocess", 0, o.worker_slots}};
  for (auto n : o.worker_counts) {
    const auto per = std::max<std::size_t>(1, (o.worker_slots + n - 1) / n);
    configs.push_back({"workers_" + std::to_string(n), n, per});
  }
  configs.push_back({"inprocess_again", 0, o.worker_slots});
  int failed = 0;
  std::vector<figures_of> done;
  for (const auto& c : configs) {
    try {
      done.push_back(run_config(o, c));
      if (done.back().errors > 0 || done.back().not_succeeded > 0) ++failed;
    } catch (const std::exception& ex) {
      ++failed;
      progress("workers (a) " + c.name + " failed: " + ex.what());
      print_failed("workers_throughput_" + c.name, "workers", ex.what());
    }
  }
  double sum = 0;
  int n = 0;
  for (const auto& f : done) {
    if (f.cfg.workers == 0) sum += f.jobs_per_s, ++n;
  }
  const double baseline = n > 0 ? sum / n : 0;
  for (const auto& f : done) print_config(f, o, baseline);
  progress("workers (a): config            slots  jobs/s   p50 ms   p95 ms   ratio  cpu ms/job (server+workers)");
  for (const auto& f : done) {
    char line[160];
    const auto total = f.cfg.workers == 0 ? f.cfg.slots_per_worker : f.cfg.workers * f.cfg.slots_per_worker;
    const double cpu = f.jobs > 0 ? (f.server_cpu_s + f.workers_cpu_s) * 1000.0 / static_cast<double>(f.jobs) : 0;
    std::snprintf(line, sizeof line, "workers (a): %-17s %5zu %7.1f %8.2f %8.2f %7.3f %7.2f", f.cfg.name.c_str(), total,
                  f.jobs_per_s, f.p50_ms, f.p95_ms, baseline > 0 ? f.jobs_per_s / baseline : 0.0, cpu);
    progress(line);
  }
  return failed;
}

// ---------------------------------------------------------------------------------
// (b) lease expiry to rerun.

/// What one SIGKILL measured, in milliseconds from the SIGKILL.
struct rerun {
  double heartbeat_age_ms = -1;  ///< since the victim's last renewal (GET /v1/workers: expires_at − lease)
  double to_requeued_ms = 0;     ///< job.requeued's time
  double to_started_ms = 0;      ///< attempt-2 job.started's time
  double seen_ms = 0;            ///< the follower parsing that job.started
};

/// One measurement on `srv`: `victim` (running, one slot, its claim waiting) takes an
/// endless job, `rescuer` is started and waits with a claim, `victim` is SIGKILLed; the
/// job's attempt 2 on `rescuer` is then cancelled, which leaves `rescuer` waiting again
/// for the next run. (A worker stopped while its claim waits leaves that claim at the
/// server until its wait ends, so the chain never stops a waiting worker mid-run.)
rerun one_rerun(const job_server& srv, fleet& workers, const std::string& project, const std::string& conn,
                const std::string& victim, const std::string& rescuer, std::int64_t lease_ms) {
  const auto job = srv.submit(project, conn, k_endless_sql, 2);
  const auto first = srv.follower->wait(job, {"job.started"}, std::chrono::seconds(30));
  if (!first) throw std::runtime_error("job " + job + " did not start on " + victim);
  if (first->data.value("runner", "") != victim) throw std::runtime_error("attempt 1 ran on " + first->data.dump());
  workers.start(rescuer, 1);
  workers.wait_waiting({rescuer});
  // Kill in the steady state, after several heartbeats (one every lease/3), at a random
  // phase between two of them: a kill before the first heartbeat measures the claim's age.
  static std::mt19937_64 rng{std::random_device{}()};
  const auto lease = std::chrono::milliseconds(lease_ms);
  std::uniform_int_distribution<std::int64_t> phase(0, lease_ms / 3);
  std::this_thread::sleep_until(first->at + 2 * lease + std::chrono::milliseconds(phase(rng)));
  std::optional<wall::time_point> renewed;
  auto listed = srv.client().get("/v1/workers");
  for (const auto& w : listed.json.value("workers", json::array())) {
    for (const auto& l : w.value("leases", json::array())) {
      if (l.value("job_id", "") != job) continue;
      if (auto at = parse_time(l.value("expires_at", ""))) renewed = *at - lease;
    }
  }

  const auto kill_wall = wall::now();
  const auto kill_steady = steady::now();
  workers.stop(victim, SIGKILL);
  const auto second = srv.follower->wait(job, {"job.started"}, std::chrono::seconds(60), 2);
  if (!second) throw std::runtime_error("job " + job + " was not started again within 60 s of the SIGKILL");
  if (second->data.value("runner", "") != rescuer || second->data.value("attempt", 0) != 2) {
    throw std::runtime_error("the second job.started is not attempt 2 on " + rescuer + ": " + second->data.dump());
  }
  rerun r;
  if (renewed) r.heartbeat_age_ms = ms_between(*renewed, kill_wall);
  r.seen_ms = seconds_between(kill_steady, second->at) * 1000.0;
  // The times as the server recorded them, read back from the job's own stream.
  auto events = srv.client().get("/v1/streams/job-" + job + "?limit=1000");
  if (events.status != 200) throw std::runtime_error("GET /v1/streams/job-" + job + ": " + events.body);
  std::size_t started = 0;
  for (const auto& e : events.json.at("events")) {
    const auto type = e.value("type", "");
    const auto at = parse_time(e.value("time", ""));
    if (!at) continue;
    if (type == "job.requeued") r.to_requeued_ms = ms_between(kill_wall, *at);
    if (type == "job.started" && ++started == 2) r.to_started_ms = ms_between(kill_wall, *at);
  }
  if (started != 2) throw std::runtime_error("the job's stream has " + std::to_string(started) + " job.started");

  auto cancel = srv.client().post("/v1/jobs/" + job + "/cancel", json::object());
  if (cancel.status / 100 != 2) throw std::runtime_error("cancel: " + std::to_string(cancel.status) + cancel.body);
  (void)srv.terminal(job, std::chrono::seconds(30));
  workers.wait_waiting({rescuer});
  return r;
}

int run_lease(const options& o) {
  const auto lease = std::to_string(o.worker_lease_s) + "s";
  job_server srv(o, {"--job-slots", "0", "--job-lease", lease}, "workers");
  const auto file = srv.sqlite_root / "bench.db";
  make_sqlite_file(file);
  const auto conn = srv.connection("bench sqlite", "sqlite", {{"path", file.string()}}, json::object());
  const auto project = srv.project("bench lease");
  fleet workers(o, srv);
  workers.start("lease-w0", 1);
  workers.wait_waiting({"lease-w0"});
  std::vector<double> requeued, started, seen_ms, ages;
  for (std::size_t i = 1; i <= o.lease_runs; ++i) {
    progress("workers (b): run " + std::to_string(i) + " of " + std::to_string(o.lease_runs) + ", --job-lease " +
             lease);
    const auto r = one_rerun(srv, workers, project, conn, "lease-w" + std::to_string(i - 1),
                             "lease-w" + std::to_string(i), static_cast<std::int64_t>(o.worker_lease_s * 1000));
    requeued.push_back(r.to_requeued_ms);
    started.push_back(r.to_started_ms);
    seen_ms.push_back(r.seen_ms);
    if (r.heartbeat_age_ms >= 0) ages.push_back(r.heartbeat_age_ms);
    progress("workers (b): last heartbeat " + std::to_string(r.heartbeat_age_ms) +
             " ms before the SIGKILL; SIGKILL to job.requeued " + std::to_string(r.to_requeued_ms) +
             " ms, to attempt-2 job.started " + std::to_string(r.to_started_ms) + " ms");
  }
  ojson j;
  j["scenario"] = "workers_lease_rerun";
  j["path"] = "workers";
  j["job_lease_ms"] = o.worker_lease_s * 1000;
  j["runs"] = o.lease_runs;
  put_spread(j, "heartbeat_age_at_kill", ages);
  put_spread(j, "kill_to_requeued", requeued);
  put_spread(j, "kill_to_attempt2_started", started);
  put_spread(j, "kill_to_attempt2_seen", seen_ms);
  std::vector<double> rounded;
  for (auto v : started) rounded.push_back(round_to(v, 1));
  j["kill_to_attempt2_started_ms"] = rounded;
  j["times_from"] = "event time of GET /v1/streams/job-<id> vs the bench's wall clock at SIGKILL";
  print_json(j);
  return 0;
}

}  // namespace

int run_workers(const options& o) {
  int failed = run_throughput(o);
  if (o.lease_runs > 0) {
    try {
      failed += run_lease(o);
    } catch (const std::exception& ex) {
      ++failed;
      progress(std::string("workers (b) failed: ") + ex.what());
      print_failed("workers_lease_rerun", "workers", ex.what());
    }
  }
  return failed;
}

}  // namespace atrium::bench
