// atrium-bench: the real atriumd set up for job scenarios; see jobs_server.hpp.
#include "tests/bench/jobs_server.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <iostream>

namespace atrium::bench {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

/// The aggregate id of an event on a job's or a container's stream (`job-<id>`,
/// `container-<id>`), or "".
std::string aggregate_of(const json& e) {
  const auto s = e.value("stream", "");
  for (const std::string prefix : {"job-", "container-"}) {
    if (s.starts_with(prefix)) return s.substr(prefix.size());
  }
  return "";
}

}  // namespace

const std::set<std::string>& terminal_job_events() {
  static const std::set<std::string> t{"job.succeeded", "job.failed", "job.cancelled", "job.timed_out"};
  return t;
}

double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double percentile_ms(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
  rank = std::clamp<std::size_t>(rank, 1, samples.size());
  return round_to(samples[rank - 1] * 1000.0, 2);
}

void print_json(const nlohmann::ordered_json& j) { std::cout << j.dump() << std::endl; }

// ---------------------------------------------------------------------------------
// The SSE follower.

sse_follower::sse_follower(const std::string& address, const std::string& token, std::uint64_t after) : sock_(address) {
  const auto req = test::raw_request("GET", "/v1/events/stream?after=" + std::to_string(after),
                                     {{"Authorization", "Bearer " + token}, {"Accept", "text/event-stream"}});
  if (!sock_.send_all(req)) throw std::runtime_error("event stream: could not send the request");
  reader_ = std::thread([this] { run(); });
}

sse_follower::~sse_follower() {
  stop_ = true;
  reader_.join();
}

std::optional<seen> sse_follower::wait(const std::string& job, const std::set<std::string>& types,
                                       std::chrono::milliseconds timeout, std::size_t nth) {
  std::unique_lock lock(mu_);
  std::optional<seen> found;
  cv_.wait_for(lock, timeout, [&] {
    if (auto it = jobs_.find(job); it != jobs_.end()) {
      std::size_t n = 0;
      for (const auto& s : it->second) {
        if (types.contains(s.type) && ++n == nth) {
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

std::vector<seen> sse_follower::events_of(const std::string& job) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job);
  return it == jobs_.end() ? std::vector<seen>{} : it->second;
}

void sse_follower::run() {
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

bool sse_follower::dechunk(std::string& raw, std::string& body) {
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

void sse_follower::parse_events(std::string& body) {
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
    const auto job = aggregate_of(e);
    if (job.empty()) continue;
    const auto now = steady::now();
    {
      std::lock_guard lock(mu_);
      jobs_[job].push_back({e.value("type", ""), e.value("data", json::object()), e.value("time", ""), now});
    }
    cv_.notify_all();
  }
  body.erase(0, start);
}

void sse_follower::fail(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    failure_ = why;
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------
// The server under test.

std::string job_server::binary(const options& o) {
  return o.atriumd_path.empty() ? std::string(ATRIUMD_PATH) : o.atriumd_path;
}

job_server::job_server(const options& o, const std::vector<std::string>& extra_args, std::string label_)
    : label(std::move(label_)) {
  fs::create_directories(sqlite_root);
  std::vector<std::string> argv{binary(o),
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
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  if (!o.atriumd_log_level.empty()) {
    argv.emplace_back("--log-level");
    argv.push_back(o.atriumd_log_level);
  }
  std::string line;
  for (const auto& a : argv) line += " " + a;
  progress(label + ": starting" + line);
  proc.emplace(argv, std::map<std::string, std::string>{{"ATRIUM_ADMIN_PASSWORD", k_bench_admin_password}}, log);
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
      hint = " (this atriumd lacks the job dispatcher's or the workers' options: is it older than the bench?)";
    }
    throw std::runtime_error("atriumd did not start" + hint + "; its log ends with:\n" + tail(text, 1500));
  }
  auto login = client().post("/v1/auth/login", {{"username", "admin"}, {"password", k_bench_admin_password}});
  if (login.status != 200) throw std::runtime_error("login: " + std::to_string(login.status) + " " + login.body);
  token = login.json.at("token").get<std::string>();
  auto head = client().get("/v1/events?limit=1");
  if (head.status != 200) throw std::runtime_error("GET /v1/events: " + std::to_string(head.status));
  follower = std::make_unique<sse_follower>(address, token, head.json.at("head").get<std::uint64_t>());
}

job_server::~job_server() {
  follower.reset();
  if (proc && proc->running()) {
    const int status = proc->stop(SIGTERM);
    if (status != 0) progress(label + ": atriumd did not exit cleanly (status " + std::to_string(status) + ")");
  }
}

test::http_client job_server::client() const {
  test::http_client c(address);
  c.token(token);
  return c;
}

json job_server::must(const std::string& target, const json& body, unsigned want) const {
  auto r = client().post(target, body);
  if (r.status != want) {
    throw std::runtime_error("POST " + target + ": " + std::to_string(r.status) + " " + r.body.substr(0, 500));
  }
  return r.json;
}

std::string job_server::project(const std::string& name) const {
  return must("/v1/projects", {{"name", name}, {"description", ""}}).at("id").get<std::string>();
}

std::string job_server::connection(const std::string& name, const std::string& driver, const json& params,
                                   const json& credentials) const {
  return must("/v1/connections", {{"name", name}, {"driver", driver}, {"params", params}, {"credentials", credentials}})
      .at("id")
      .get<std::string>();
}

std::string job_server::submit(const std::string& project_id, const std::string& connection_id, const std::string& sql,
                               unsigned max_attempts) const {
  json body{{"project_id", project_id}, {"kind", "sql"}, {"connection_id", connection_id}, {"sql", sql}};
  if (max_attempts > 0) body["max_attempts"] = max_attempts;
  auto r = client().post("/v1/jobs", body);
  if (r.status != 201) throw std::runtime_error("POST /v1/jobs: " + std::to_string(r.status) + " " + r.body);
  return r.json.at("id").get<std::string>();
}

void job_server::started(const std::string& job, std::chrono::milliseconds timeout) const {
  auto s =
      follower->wait(job, {"job.started", "job.succeeded", "job.failed", "job.cancelled", "job.timed_out"}, timeout);
  if (s && s->type == "job.started") return;
  if (s) throw std::runtime_error("job " + job + " ended before it started: " + s->type + " " + s->data.dump());
  (void)terminal(job, std::chrono::milliseconds(1));  // throws with the job's status
  throw std::runtime_error("job " + job + " ended without job.started");
}

seen job_server::terminal(const std::string& job, std::chrono::milliseconds timeout) const {
  if (auto s = follower->wait(job, terminal_job_events(), timeout)) return *s;
  auto v = client().get("/v1/jobs/" + job);
  const auto status = v.json.is_object() ? v.json.value("status", "?") : "?";
  if (status == "queued") {
    throw std::runtime_error("job " + job + " stayed queued for " + std::to_string(timeout.count()) +
                             " ms: nothing runs jobs (no local slot and no worker, or no dispatcher)");
  }
  throw std::runtime_error("job " + job + " not terminal after " + std::to_string(timeout.count()) + " ms (status " +
                           status + ")");
}

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

void require_succeeded(const std::string& what, const seen& s) {
  if (s.type != "job.succeeded") throw std::runtime_error(what + ": " + s.type + " " + s.data.dump().substr(0, 500));
}

}  // namespace atrium::bench
