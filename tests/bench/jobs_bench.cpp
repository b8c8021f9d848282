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
// Every HTTP request goes through the tests' blocking client (one TCP connection per
// request, tests/support/http_client.hpp), so no Beast here; the SSE stream is read over
// a plain socket (tests/support/raw_client.hpp). Missing pieces (an atriumd without the
// job options, a dispatcher that never starts a job, no result API) end the path with a
// clear message after a bounded wait, never a hang.
#include <sqlite3.h>

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

#include "tests/bench/bench.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/postgres.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_client.hpp"

namespace atrium::bench {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr const char* k_admin_password = "atrium-bench-admin-password";
const std::set<std::string> k_terminal{"job.succeeded", "job.failed", "job.cancelled", "job.timed_out"};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// Nearest-rank percentile of `samples` (seconds), in milliseconds.
double percentile_ms(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
  rank = std::clamp<std::size_t>(rank, 1, samples.size());
  return round_to(samples[rank - 1] * 1000.0, 2);
}

/// p50, p99 and max of `samples` (seconds) into `j` as `<prefix>_p50_ms` etc.
void put_latencies(ojson& j, const std::string& prefix, const std::vector<double>& samples) {
  j[prefix + "_p50_ms"] = percentile_ms(samples, 0.50);
  j[prefix + "_p99_ms"] = percentile_ms(samples, 0.99);
  j[prefix + "_max_ms"] = percentile_ms(samples, 1.0);
}

void print(const ojson& j) { std::cout << j.dump() << std::endl; }

/// A field of /proc/<pid>/status in MiB (VmRSS); 0 when unreadable.
double status_mib(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  return 0;
}

/// The job id of an event's stream `job-<id>`, or "".
std::string job_of(const json& e) {
  const auto s = e.value("stream", "");
  return s.rfind("job-", 0) == 0 ? s.substr(4) : "";
}

// ---------------------------------------------------------------------------------
// The SSE follower: every job event of the log, as it is committed.

/// A job event as the follower saw it.
struct seen {
  std::string type;
  json data;
  steady::time_point at;  ///< when the follower parsed it
};

/// Reads `GET /v1/events/stream?after=N` on a thread of its own and keeps every job
/// event by job id; callers wait for an event of some types on one job.
class sse_follower {
 public:
  sse_follower(const std::string& address, const std::string& token, std::uint64_t after) : sock_(address) {
    const auto req = test::raw_request("GET", "/v1/events/stream?after=" + std::to_string(after),
                                       {{"Authorization", "Bearer " + token}, {"Accept", "text/event-stream"}});
    if (!sock_.send_all(req)) throw std::runtime_error("event stream: could not send the request");
    reader_ = std::thread([this] { run(); });
  }
  ~sse_follower() {
    stop_ = true;
    reader_.join();
  }
  sse_follower(const sse_follower&) = delete;
  sse_follower& operator=(const sse_follower&) = delete;

  /// Waits up to `timeout` for an event of one of `types` on `job`; the first such event
  /// (already seen or to come), or nullopt. Throws when the stream has ended.
  std::optional<seen> wait(const std::string& job, const std::set<std::string>& types,
                           std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::optional<seen> found;
    cv_.wait_for(lock, timeout, [&] {
      if (auto it = jobs_.find(job); it != jobs_.end()) {
        for (const auto& s : it->second) {
          if (types.contains(s.type)) {
            found = s;
            return true;
          }
        }
      }
      return !failure_.empty();
    });
    if (!found && !failure_.empty()) throw std::runtime_error("event stream: " + failure_);
    return found;
  }

  /// Every event seen so far on `job`, in order.
  std::vector<seen> events_of(const std::string& job) {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job);
    return it == jobs_.end() ? std::vector<seen>{} : it->second;
  }

 private:
  void run() {
    std::string raw;
    bool header_done = false;
    bool chunked = false;
    std::string body;  // de-chunked bytes not parsed into events yet
    while (!stop_) {
      std::optional<test::raw_end> end;
      auto got = sock_.recv_some(std::chrono::milliseconds(100), &end);
      if (end) return fail(std::string("the server ended it (") + test::to_string(*end) + ")");
      if (got.empty()) continue;
      raw += got;
      if (!header_done) {
        const auto h = raw.find("\r\n\r\n");
        if (h == std::string::npos) continue;
        const auto head = raw.substr(0, h);
        if (head.rfind("HTTP/1.1 200", 0) != 0) return fail("status line " + head.substr(0, head.find('\r')));
        std::string lower = head;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        chunked = lower.find("transfer-encoding: chunked") != std::string::npos;
        raw.erase(0, h + 4);
        header_done = true;
      }
      if (chunked) {
        if (!dechunk(raw, body)) return fail("bad chunked encoding");
      } else {
        body += raw;
        raw.clear();
      }
      parse_events(body);
    }
  }

  /// Moves every complete chunk of `raw` into `body`; false on a malformed size line.
  static bool dechunk(std::string& raw, std::string& body) {
    while (true) {
      const auto eol = raw.find("\r\n");
      if (eol == std::string::npos) return true;
      std::size_t size = 0;
      try {
        size = std::stoul(raw.substr(0, raw.find_first_of(";\r")), nullptr, 16);
      } catch (const std::exception&) {
        return false;
      }
      if (raw.size() < eol + 2 + size + 2) return true;
      body.append(raw, eol + 2, size);
      raw.erase(0, eol + 2 + size + 2);
    }
  }

  /// Parses every complete `event:`/`data:` block (ended by a blank line) of `body`.
  void parse_events(std::string& body) {
    std::size_t start = 0;
    while (true) {
      const auto end = body.find("\n\n", start);
      if (end == std::string::npos) break;
      const auto block = body.substr(start, end - start);
      start = end + 2;
      const auto d = block.find("data: ");
      if (d == std::string::npos) continue;
      auto e = json::parse(block.substr(d + 6, block.find('\n', d) - d - 6), nullptr, false);
      if (e.is_discarded() || !e.is_object()) continue;
      if (block.rfind("event: error", 0) == 0) return fail("error event " + e.dump());
      const auto job = job_of(e);
      if (job.empty()) continue;
      const auto now = steady::now();
      {
        std::lock_guard lock(mu_);
        jobs_[job].push_back({e.value("type", ""), e.value("data", json::object()), now});
      }
      cv_.notify_all();
    }
    body.erase(0, start);
  }

  void fail(const std::string& why) {
    {
      std::lock_guard lock(mu_);
      failure_ = why;
    }
    cv_.notify_all();
  }

  test::raw_socket sock_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, std::vector<seen>> jobs_;
  std::string failure_;
  std::thread reader_;
};

// ---------------------------------------------------------------------------------
// The server under test.

/// atriumd with the job options, logged in as admin, with an SSE follower.
struct server {
  test::temp_dir dir;
  fs::path data = dir.path() / "data";
  fs::path sqlite_root = dir.path() / "sqlite";
  fs::path log = dir.path() / "atriumd.log";
  std::optional<test::child_process> proc;
  std::string address;
  std::string token;
  std::unique_ptr<sse_follower> follower;

  explicit server(const options& o) {
    fs::create_directories(sqlite_root);
    const std::string binary = o.atriumd_path.empty() ? std::string(ATRIUMD_PATH) : o.atriumd_path;
    std::vector<std::string> argv{binary,
                                  "--data-dir",
                                  data.string(),
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--sqlite-root",
                                  sqlite_root.string(),
                                  "--job-max-result-rows",
                                  std::to_string(std::max<std::uint64_t>(o.job_rows * 2, 1'000'000)),
                                  "--job-max-result-bytes",
                                  std::to_string(64ULL << 30),
                                  "--connection-allow",
                                  "127.0.0.1/32"};
    if (o.job_slots > 0) {
      argv.emplace_back("--job-slots");
      argv.push_back(std::to_string(o.job_slots));
    }
    if (!o.atriumd_log_level.empty()) {
      argv.emplace_back("--log-level");
      argv.push_back(o.atriumd_log_level);
    }
    std::string line;
    for (const auto& a : argv) line += " " + a;
    progress("jobs: starting" + line);
    proc.emplace(argv, std::map<std::string, std::string>{{"ATRIUM_ADMIN_PASSWORD", k_admin_password}}, log);
    const bool up = test::wait_until(
        [&] {
          if (!proc->running()) return true;
          std::ifstream f(data / "atriumd.addr");
          std::string a;
          if (!(f >> a)) return false;
          try {
            if (test::http_client(a).get("/readyz").status != 200) return false;
          } catch (const std::exception&) {
            return false;
          }
          address = a;
          return true;
        },
        std::chrono::seconds(60));
    if (!up || !proc->running()) {
      const auto text = slurp(log);
      std::string hint;
      if (text.find("--job-") != std::string::npos || text.find("--sqlite-root") != std::string::npos) {
        hint = " (this atriumd lacks the job dispatcher's options: is the `dispatch` branch merged?)";
      }
      throw std::runtime_error("atriumd did not start" + hint + "; its log ends with:\n" + tail(text, 1500));
    }
    auto login = client().post("/v1/auth/login", {{"username", "admin"}, {"password", k_admin_password}});
    if (login.status != 200) throw std::runtime_error("login: " + std::to_string(login.status) + " " + login.body);
    token = login.json.at("token").get<std::string>();
    auto head = client().get("/v1/events?limit=1");
    if (head.status != 200) throw std::runtime_error("GET /v1/events: " + std::to_string(head.status));
    follower = std::make_unique<sse_follower>(address, token, head.json.at("head").get<std::uint64_t>());
  }

  ~server() {
    follower.reset();
    if (proc && proc->running()) {
      const int status = proc->stop(SIGTERM);
      if (status != 0) progress("jobs: atriumd did not exit cleanly (status " + std::to_string(status) + ")");
    }
  }

  [[nodiscard]] pid_t pid() const { return proc->pid(); }

  [[nodiscard]] test::http_client client() const {
    test::http_client c(address);
    c.token(token);
    return c;
  }

  /// POST that must answer `want`; returns the JSON body.
  json must(const std::string& target, const json& body, unsigned want = 201) const {
    auto r = client().post(target, body);
    if (r.status != want) {
      throw std::runtime_error("POST " + target + ": " + std::to_string(r.status) + " " + r.body.substr(0, 500));
    }
    return r.json;
  }

  std::string project(const std::string& name) const {
    return must("/v1/projects", {{"name", name}, {"description", ""}}).at("id").get<std::string>();
  }

  std::string connection(const std::string& name, const std::string& driver, const json& params,
                         const json& credentials) const {
    return must("/v1/connections",
                {{"name", name}, {"driver", driver}, {"params", params}, {"credentials", credentials}})
        .at("id")
        .get<std::string>();
  }

  /// Submits an SQL job; its id.
  std::string submit(const std::string& project_id, const std::string& connection_id, const std::string& sql) const {
    auto r = client().post(
        "/v1/jobs", {{"project_id", project_id}, {"kind", "sql"}, {"connection_id", connection_id}, {"sql", sql}});
    if (r.status != 201) throw std::runtime_error("POST /v1/jobs: " + std::to_string(r.status) + " " + r.body);
    return r.json.at("id").get<std::string>();
  }

  /// Waits for the job's `job.started`; throws if it ended first or is not running after `timeout`.
  void started(const std::string& job, std::chrono::milliseconds timeout) const {
    auto s =
        follower->wait(job, {"job.started", "job.succeeded", "job.failed", "job.cancelled", "job.timed_out"}, timeout);
    if (s && s->type == "job.started") return;
    if (s) throw std::runtime_error("job " + job + " ended before it started: " + s->type + " " + s->data.dump());
    (void)terminal(job, std::chrono::milliseconds(1));  // throws with the job's status
    throw std::runtime_error("job " + job + " ended without job.started");
  }

  /// Waits for the job's terminal event; throws with what is known after `timeout`.
  seen terminal(const std::string& job, std::chrono::milliseconds timeout) const {
    if (auto s = follower->wait(job, k_terminal, timeout)) return *s;
    auto v = client().get("/v1/jobs/" + job);
    const auto status = v.json.is_object() ? v.json.value("status", "?") : "?";
    if (status == "queued") {
      throw std::runtime_error("job " + job + " stayed queued for " + std::to_string(timeout.count()) +
                               " ms: this atriumd runs no job dispatcher (is the `dispatch` branch merged?)");
    }
    throw std::runtime_error("job " + job + " not terminal after " + std::to_string(timeout.count()) + " ms (status " +
                             status + ")");
  }
};

/// Creates `path` with the sqlite3 C API: a one-row table.
void make_sqlite_file(const fs::path& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    const std::string err = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("sqlite open " + path.string() + ": " + err);
  }
  char* err = nullptr;
  const int rc = sqlite3_exec(db, "create table t(x integer); insert into t values (1);", nullptr, nullptr, &err);
  const std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("sqlite setup: " + msg);
}

/// Fails unless the job succeeded (its terminal event says why not).
void require_succeeded(const std::string& what, const seen& s) {
  if (s.type != "job.succeeded") throw std::runtime_error(what + ": " + s.type + " " + s.data.dump().substr(0, 500));
}

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
  server srv(o);
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
