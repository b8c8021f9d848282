// `atriumd worker`: see app/worker.hpp.
#include "app/worker.hpp"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "adapters/connectors/network_policy.hpp"
#include "adapters/connectors/postgres_executor.hpp"
#include "adapters/connectors/sqlite_executor.hpp"
#include "adapters/http/http_client.hpp"
#include "adapters/process/script_executor.hpp"
#include "adapters/results/file_result_store.hpp"
#include "adapters/results/result_format.hpp"
#include "app/log_format.hpp"
#include "events/text.hpp"

namespace atrium::app {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::uint64_t k_claim_wait_s = 20;
constexpr auto k_backoff_first = 200ms;
constexpr auto k_backoff_max = 30s;
constexpr std::size_t k_batch_rows = 5000;
constexpr std::size_t k_batch_bytes = 256 << 10;  // of cell text per upload (the server takes 1 MiB bodies)
constexpr std::size_t k_log_chunk = 256 << 10;
constexpr auto k_report_grace = 10s;     // after SIGTERM, reports are retried this long
constexpr auto k_withdraw_timeout = 3s;  // after SIGTERM, for the one call that withdraws the claims

/// A job this worker holds a lease on.
struct active_job {
  std::string lease_id;
  std::string job_id;
  std::uint32_t attempt = 1;
  std::chrono::milliseconds lease{30000};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point beat = std::chrono::steady_clock::now();
  ports::cancel_signal cancel;
  std::atomic<bool> lost{false};  // the server answered 410: another attempt owns the job
  std::mutex mu;
  ports::job_progress progress;
};

/// A back-off delay: doubles from 200 ms to 30 s, each wait drawn from [d/2, d].
class backoff {
 public:
  std::chrono::milliseconds next() {
    const auto d = current_;
    current_ = std::min<std::chrono::milliseconds>(current_ * 2, k_backoff_max);
    std::uniform_int_distribution<std::int64_t> pick(d.count() / 2, d.count());
    return std::chrono::milliseconds(pick(rng_));
  }
  void reset() { current_ = k_backoff_first; }

 private:
  std::chrono::milliseconds current_ = k_backoff_first;
  std::mt19937_64 rng_{std::random_device{}()};
};

/// Overwrites the strings of `j` (credentials) before they are freed.
void wipe(json& j) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    std::fill(s.begin(), s.end(), '\0');
  } else if (j.is_structured()) {
    for (auto& v : j) wipe(v);
  }
}

/// The longest prefix of `s` (at most `n` bytes) that does not split a UTF-8 sequence.
std::size_t utf8_cut(std::string_view s, std::size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n == 0 ? std::min(s.size(), std::size_t{1}) : n;
}

class worker {
 public:
  worker(std::string name, const worker_options& o, std::unique_ptr<http_adapter::blocking_http_client> claims,
         std::unique_ptr<http_adapter::blocking_http_client> reports,
         std::unique_ptr<results_adapter::file_result_store> results,
         std::map<std::string, ports::job_executor*> executors)
      : name_(std::move(name)),
        o_(o),
        claims_(std::move(claims)),
        reports_(std::move(reports)),
        results_(std::move(results)),
        executors_(std::move(executors)) {}

  void start() {
    claimer_ = std::thread([this] { claim_loop(); });
    beater_ = std::thread([this] { heartbeat_loop(); });
  }

  /// SIGTERM: no more claims; running jobs are interrupted and reported; waits for them.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      stop_deadline_ = std::chrono::steady_clock::now() + k_report_grace;
      for (auto& [lease, job] : active_) job->cancel.request();
    }
    cv_.notify_all();
    claims_->cancel_all();
    claimer_.join();
    withdraw();
    std::vector<std::thread> jobs;
    {
      std::lock_guard lock(mu_);
      jobs.swap(threads_);
    }
    for (auto& t : jobs) t.join();
    {
      std::lock_guard lock(mu_);
      beating_ = false;
    }
    cv_.notify_all();
    beater_.join();
  }

 private:
  /// Waits `d` or until stopping; true if stopping.
  bool sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return stopping_; });
  }

  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  /// True once reports must stop being retried (long after SIGTERM).
  bool past_grace() {
    std::lock_guard lock(mu_);
    return stopping_ && std::chrono::steady_clock::now() > stop_deadline_;
  }

  std::string lease_path(const active_job& j, const char* what) const {
    return "/v1/workers/leases/" + j.lease_id + "/" + what;
  }

  /// Sends a report about `job` until the server answers below 500 (retrying connection
  /// errors and 5xx with the back-off), the lease is lost, or the grace after SIGTERM
  /// ran out. Returns the answer, or nullopt when it gave up.
  std::optional<http_adapter::client_reply> report(active_job& job, const char* what, json body) {
    body["worker"] = name_;
    const auto text = body.dump(-1, ' ', false, json::error_handler_t::replace);
    backoff wait;
    for (;;) {
      if (job.lost) return std::nullopt;
      auto r = reports_->request("POST", lease_path(job, what), text, 30s);
      if (r && r->status < 500) {
        if (r->status == 410) {
          spdlog::warn("job_id={} lease_id={} lost its lease: {}", job.job_id, job.lease_id, log_escape(r->body));
          job.lost = true;
          job.cancel.request();
          return std::nullopt;
        }
        return std::move(*r);
      }
      if (past_grace()) return std::nullopt;
      const auto d = wait.next();
      spdlog::warn("job_id={} {} not delivered ({}); again in {} ms", job.job_id, what,
                   r ? "status " + std::to_string(r->status) : log_escape(r.error().message), d.count());
      std::this_thread::sleep_for(d);
    }
  }

  // ---- claiming ---------------------------------------------------------------------------

  /// After SIGTERM: tells the server this worker takes no more jobs (a claim with no free
  /// slot drops every claim of this name still waiting there), so no job is leased to a
  /// claim nobody reads. Tried once: the server also drops a claim whose connection
  /// closed (cancel_all closed ours), so this is the belt to those braces.
  void withdraw() {
    json body{{"worker", name_}, {"slots_free", 0}, {"slots", o_.slots}};
    auto r = reports_->request("POST", "/v1/workers/claim", body.dump(), k_withdraw_timeout);
    if (r && r->status == 204) {
      spdlog::info("claims withdrawn worker={}", log_escape(name_));
    } else {
      spdlog::warn("claims not withdrawn ({})", r ? "status " + std::to_string(r->status) + " " + log_escape(r->body)
                                                  : log_escape(r.error().message));
    }
  }

  void claim_loop() {
    backoff wait;
    while (!stopping()) {
      std::size_t free = 0;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || active_.size() < o_.slots; });
        if (stopping_) break;
        free = o_.slots - active_.size();
      }
      json body{{"worker", name_}, {"slots_free", free}, {"slots", o_.slots}, {"wait_s", k_claim_wait_s}};
      auto r = claims_->request("POST", "/v1/workers/claim", body.dump(), std::chrono::seconds(k_claim_wait_s + 20));
      if (r && r->status == 204) {
        wait.reset();
        continue;
      }
      if (r && r->status == 200) {
        wait.reset();
        take(json::parse(r->body, nullptr, false));
        continue;
      }
      if (stopping()) break;
      const auto d = wait.next();
      if (r && (r->status == 401 || r->status == 403)) {
        spdlog::error("the server refuses this worker's token (status {}): {}; again in {} ms", r->status,
                      log_escape(r->body), d.count());
      } else {
        spdlog::warn(
            "claim failed ({}); again in {} ms",
            r ? "status " + std::to_string(r->status) + " " + log_escape(r->body) : log_escape(r.error().message),
            d.count());
      }
      sleep_for(d);
    }
  }

  /// Starts the job of a claim answer on a thread of its own.
  void take(json answer) {
    if (!answer.is_object() || !answer.contains("job") || !answer["job"].is_object()) {
      spdlog::error("claim answer without a job");
      return;
    }
    auto job = std::make_shared<active_job>();
    job->lease_id = answer.value("lease_id", "");
    job->lease = std::chrono::milliseconds(std::max<std::int64_t>(answer.value("lease_ms", 30000), 300));
    job->job_id = answer["job"].value("id", "");
    job->attempt = answer["job"].value("attempt", 1U);
    spdlog::info("job claimed job_id={} attempt={} lease_id={}", job->job_id, job->attempt, job->lease_id);
    std::lock_guard lock(mu_);
    active_[job->lease_id] = job;
    threads_.emplace_back([this, job, answer = std::move(answer)]() mutable {
      run(*job, answer["job"]);
      wipe(answer);
      {
        std::lock_guard lock(mu_);
        active_.erase(job->lease_id);
      }
      cv_.notify_all();
    });
  }

  // ---- running --------------------------------------------------------------------------------

  /// Runs one leased job to its end and reports it.
  void run(active_job& job, json& j) {
    ports::job_spec spec;
    spec.job_id = job.job_id;
    spec.project_id = j.value("project_id", "");
    spec.kind = j.value("kind", "");
    spec.language = j.value("language", "");
    spec.source = j.value("source", "");
    spec.driver = j.value("driver", "");
    spec.params = j.value("params", json::object());
    if (j.contains("credentials") && j["credentials"].is_object()) spec.credentials = j["credentials"];
    spec.attempt = job.attempt;
    spec.timeout = std::chrono::seconds(j.value("timeout_s", 3600U));
    auto outcome = execute(job, spec);
    wipe(spec.credentials);
    if (job.lost) {
      (void)results_->remove(job.job_id);
      return;
    }
    upload_and_complete(job, outcome);
  }

  struct local_outcome {
    ports::job_outcome outcome;
    bool truncated = false;
  };

  local_outcome execute(active_job& job, const ports::job_spec& spec) {
    const auto key = spec.kind == "script" ? std::string("script") : spec.driver;
    auto it = executors_.find(key);
    auto writer = results_->create(spec.job_id, ports::result_limits{});
    if (!writer) return {ports::job_outcome::failed("the worker cannot keep the result: " + writer.error().message)};
    local_outcome r;
    if (it == executors_.end() || (spec.kind != "sql" && spec.kind != "script")) {
      r.outcome = ports::job_outcome::failed("no executor for " + key + " on worker " + name_);
    } else {
      const ports::progress_fn progress = [&job](const ports::job_progress& p) {
        std::lock_guard lock(job.mu);
        job.progress = p;
      };
      try {
        r.outcome = it->second->run(spec, **writer, progress, job.cancel);
      } catch (const std::exception& ex) {
        r.outcome = ports::job_outcome::failed(std::string("internal error: ") + ex.what());
      }
    }
    r.truncated = (*writer)->full();
    if (auto ok = (*writer)->commit(); !ok) {
      r.outcome = ports::job_outcome::failed("the worker could not keep the result: " + ok.error().message);
    }
    return r;
  }

  /// Uploads the committed local result in batches, then reports the outcome; removes the
  /// local copy once the server has it (or the lease is gone).
  void upload_and_complete(active_job& job, const local_outcome& r) {
    std::uint64_t seq = 0;
    auto reader = results_->open(job.job_id);
    if (reader) {
      if (!upload_rows(job, **reader, seq) || !upload_log(job, **reader, seq)) {
        if (job.lost) (void)results_->remove(job.job_id);
        return;  // kept locally: reported lost or given up after SIGTERM
      }
    }
    const auto& o = r.outcome;
    using status = ports::job_outcome::status;
    json body{{"outcome", o.state == status::succeeded ? "succeeded"
                          : o.state == status::failed  ? "failed"
                                                       : "interrupted"},
              {"batches", seq},
              {"truncated", r.truncated},
              {"duration_ms",
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - job.started)
                   .count()}};
    if (o.state == status::failed) {
      body["error"] = o.error;
      if (!o.sqlstate.empty()) body["sqlstate"] = o.sqlstate;
    }
    auto answer = report(job, "complete", std::move(body));
    if (answer && answer->status == 200) {
      spdlog::info("job reported job_id={} attempt={} succeeded={} batches={}", job.job_id, job.attempt,
                   o.state == status::succeeded, seq);
      (void)results_->remove(job.job_id);
    } else if (answer) {
      spdlog::error("job_id={} completion refused: status {} {}", job.job_id, answer->status, log_escape(answer->body));
      (void)results_->remove(job.job_id);
    }
  }

  /// Sends one batch; false when the lease is gone or the server refused it.
  bool send_batch(active_job& job, json body, std::uint64_t& seq) {
    body["seq"] = seq;
    auto answer = report(job, "result", std::move(body));
    if (!answer) return false;
    if (answer->status != 200) {
      spdlog::error("job_id={} result batch {} refused: status {} {}", job.job_id, seq, answer->status,
                    log_escape(answer->body));
      return false;
    }
    ++seq;
    return true;
  }

  /// The rows of the committed local result, read from its rows file (the cells' own text).
  bool upload_rows(active_job& job, ports::result_reader& reader, std::uint64_t& seq) {
    const auto& info = reader.info();
    if (!info.has_table) return true;
    json columns = json::array();
    for (const auto& c : info.columns) columns.push_back({{"name", c.name}, {"type", c.type}});
    auto dir = results_adapter::job_dir_name(job.job_id);
    if (!dir) return false;
    std::ifstream in(results_->root() / *dir / "rows", std::ios::binary);
    const std::string data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const char* pos = data.data();
    const char* end = pos + data.size();
    json rows = json::array();
    std::size_t bytes = 0;
    bool first = true;
    const auto flush = [&]() {
      json body{{"rows", std::move(rows)}};
      if (first) body["columns"] = columns;
      first = false;
      rows = json::array();
      bytes = 0;
      return send_batch(job, std::move(body), seq);
    };
    for (std::uint64_t r = 0; r < info.total_rows; ++r) {
      json row = json::array();
      for (std::size_t c = 0; c < info.columns.size(); ++c) {
        std::uint64_t h = 0;
        if (!results_adapter::decode_varint(&pos, end, &h) ||
            (h > 0 && h - 1 > static_cast<std::uint64_t>(end - pos))) {
          spdlog::error("job_id={} local result is corrupt at row {}", job.job_id, r);
          return false;
        }
        if (h == 0) {
          row.push_back(nullptr);
        } else {
          row.push_back(std::string(pos, h - 1));
          pos += h - 1;
          bytes += h - 1;
        }
      }
      rows.push_back(std::move(row));
      if ((rows.size() >= k_batch_rows || bytes >= k_batch_bytes) && !flush()) return false;
    }
    return (rows.empty() && !first) || flush();
  }

  /// The captured log, in chunks.
  bool upload_log(active_job& job, ports::result_reader& reader, std::uint64_t& seq) {
    auto log = reader.log(ports::result_limits{}.max_log_bytes + 4096);
    if (!log || log->empty()) return true;
    std::string_view rest = *log;
    while (!rest.empty()) {
      const auto n = utf8_cut(rest, k_log_chunk);
      if (!send_batch(job, json{{"log", std::string(rest.substr(0, n))}}, seq)) return false;
      rest.remove_prefix(n);
    }
    return true;
  }

  // ---- heartbeats -----------------------------------------------------------------------------

  void heartbeat_loop() {
    for (;;) {
      std::vector<std::shared_ptr<active_job>> due;
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, 100ms, [&] { return !beating_; });
        if (!beating_) return;
        const auto now = std::chrono::steady_clock::now();
        for (auto& [lease, job] : active_) {
          if (!job->lost && now - job->beat >= job->lease / 3) due.push_back(job);
        }
      }
      for (auto& job : due) beat(*job);
    }
  }

  void beat(active_job& job) {
    job.beat = std::chrono::steady_clock::now();
    json body{{"worker", name_}};
    {
      std::lock_guard lock(job.mu);
      body["rows"] = job.progress.rows;
      body["bytes"] = job.progress.bytes;
      if (job.progress.percent) body["percent"] = *job.progress.percent;
    }
    body["elapsed_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - job.started).count();
    auto r = reports_->request("POST", lease_path(job, "heartbeat"), body.dump(), job.lease / 2);
    if (!r || r->status >= 500) {
      spdlog::warn("job_id={} heartbeat not delivered ({})", job.job_id,
                   r ? std::to_string(r->status) : log_escape(r.error().message));
      return;  // the next beat tries again
    }
    if (r->status == 410) {
      spdlog::warn("job_id={} lease_id={} lost its lease; stopping it", job.job_id, job.lease_id);
      job.lost = true;
      job.cancel.request();
      return;
    }
    auto answer = json::parse(r->body, nullptr, false);
    if (r->status == 200 && answer.is_object() && answer.value("cancel", false) && !job.cancel.requested()) {
      spdlog::info("job_id={} cancelled by the server", job.job_id);
      job.cancel.request();
    }
  }

  std::string name_;
  const worker_options& o_;
  std::unique_ptr<http_adapter::blocking_http_client> claims_;   // cancelled at SIGTERM
  std::unique_ptr<http_adapter::blocking_http_client> reports_;  // heartbeats, uploads, completions
  std::unique_ptr<results_adapter::file_result_store> results_;
  std::map<std::string, ports::job_executor*> executors_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool beating_ = true;
  std::chrono::steady_clock::time_point stop_deadline_;
  std::map<std::string, std::shared_ptr<active_job>> active_;  // by lease id
  std::vector<std::thread> threads_;
  std::thread claimer_;
  std::thread beater_;
};

/// The first line of `file`, trimmed; empty when unreadable.
std::string read_token(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  const auto first = line.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return line.substr(first, line.find_last_not_of(" \t\r\n") - first + 1);
}

std::string default_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "worker");
  std::string name = std::string(host) + "-" + std::to_string(::getpid());
  for (auto& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') ch = '-';
  }
  return name.substr(0, 64);
}

}  // namespace

int run_worker(const worker_options& opts) {
  auto logger = std::make_shared<spdlog::logger>("atriumd-worker", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(escaped_formatter());
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(opts.log_level));
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const auto token = read_token(opts.token_file);
  if (token.empty()) {
    spdlog::critical("--token-file {}: no token in it (or unreadable)", log_escape(opts.token_file));
    return 1;
  }
  auto claims = http_adapter::blocking_http_client::make(opts.server, token, opts.ca_file);
  auto reports = http_adapter::blocking_http_client::make(opts.server, token, opts.ca_file);
  if (!claims || !reports) {
    spdlog::critical("--server: {}", claims ? reports.error().message : claims.error().message);
    return 1;
  }
  const fs::path work = opts.work_dir;
  std::error_code ec;
  fs::path sqlite_root = opts.sqlite_root.empty() ? work / "files" : fs::path(opts.sqlite_root);
  fs::create_directories(sqlite_root, ec);
  sqlite_root = fs::weakly_canonical(fs::absolute(sqlite_root), ec);
  auto results = results_adapter::file_result_store::open_dir(work / "results");
  if (!results) {
    spdlog::critical("result store: {}", results.error().message);
    return 1;
  }
  connectors_adapter::sqlite_executor sqlite(sqlite_root);
  auto policy = connectors_adapter::network_policy::make(opts.connection_allow, opts.connection_deny);
  connectors_adapter::postgres_executor postgres(std::move(*policy));
  process_adapter::script_executor_options so;
  so.work_root = work / "work";
  so.sandbox = opts.job_sandbox == "always"  ? process_adapter::sandbox_mode::always
               : opts.job_sandbox == "never" ? process_adapter::sandbox_mode::never
                                             : process_adapter::sandbox_mode::automatic;
  so.hidden_paths = {fs::absolute(work / "results", ec)};
  so.max_log_bytes = ports::result_limits{}.max_log_bytes;
  auto script = process_adapter::script_executor::create(std::move(so));
  if (!script) {
    spdlog::critical("script executor: {}", script.error().message);
    return 1;
  }
  const auto name = opts.name.empty() ? default_name() : opts.name;
  worker w(name, opts, std::move(*claims), std::move(*reports), std::move(*results),
           {{"sqlite", &sqlite}, {"postgres", &postgres}, {"script", script->get()}});
  spdlog::info("worker started name={} server={} slots={} work_dir={}", name, log_escape(opts.server), opts.slots,
               log_escape(work.string()));
  std::cout << "atriumd worker " << name << " serving " << opts.server << std::endl;
  w.start();
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("worker stopping signal={}", sig);
  w.stop();
  spdlog::info("worker stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace atrium::app
