#pragma once
/// atrium-bench: the real atriumd set up for job scenarios, shared by `--paths jobs`
/// (jobs_bench.cpp, issue 15) and `--paths workers` (workers_bench.cpp, issue 16).
///
///   bench ──POST /v1/jobs, GET /v1/jobs/{id}──▶ atriumd (127.0.0.1:0, temp data dir)
///     ▲                                            │
///     └── sse_follower: GET /v1/events/stream ◀────┘ job.started / job.<terminal>
///
/// The server is started by PID on a free port over a fresh temp dir (removed when the
/// `job_server` goes), logged in as the bootstrap admin, with one Server-Sent Events
/// follower that keeps every job event with the time it was parsed, so a scenario waits
/// for events instead of polling. HTTP goes through the tests' blocking client
/// (tests/support/http_client.hpp, one connection per request); the SSE stream is read
/// over a plain socket (tests/support/raw_client.hpp).

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/bench/bench.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_client.hpp"

namespace atrium::bench {

/// The password the bench bootstraps every atriumd's admin with.

/// The terminal job event types.
[[nodiscard]] const std::set<std::string>& terminal_job_events();

/// `v` rounded to `digits` decimals.
[[nodiscard]] double round_to(double v, int digits);
/// Seconds from `a` to `b`.
[[nodiscard]] double seconds_between(steady::time_point a, steady::time_point b);
/// Nearest-rank percentile `p` (0..1) of `samples` (seconds), in milliseconds; 0 when empty.
[[nodiscard]] double percentile_ms(std::vector<double> samples, double p);
/// Prints `j` as one line on stdout.
void print_json(const nlohmann::ordered_json& j);

/// A job or container event as the follower saw it.
struct seen {
  std::string type;
  nlohmann::json data;
  std::string time;       ///< the envelope's `time` (RFC 3339, the server's wall clock)
  steady::time_point at;  ///< when the follower parsed it
};

/// Reads `GET /v1/events/stream?after=N` on a thread of its own and keeps every job and
/// container event by the aggregate's id (the stream's UUID); callers wait for an event
/// of some types on one job or container.
class sse_follower {
 public:
  /// Connects to `address` ("host:port") with `token` and follows from position `after`.
  /// Throws std::runtime_error if the request cannot be sent.
  sse_follower(const std::string& address, const std::string& token, std::uint64_t after);
  ~sse_follower();
  sse_follower(const sse_follower&) = delete;
  sse_follower& operator=(const sse_follower&) = delete;

  /// Waits up to `timeout` for the `nth` (from 1) event of one of `types` on `job`
  /// (already seen or to come), or nullopt. Throws when the stream has ended.
  std::optional<seen> wait(const std::string& job, const std::set<std::string>& types,
                           std::chrono::milliseconds timeout, std::size_t nth = 1);

  /// Every event seen so far on `job`, in order.
  std::vector<seen> events_of(const std::string& job);

 private:
  void run();
  static bool dechunk(std::string& raw, std::string& body);
  void parse_events(std::string& body);
  void fail(const std::string& why);

  test::raw_socket sock_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, std::vector<seen>> jobs_;
  std::string failure_;
  std::thread reader_;
};

/// atriumd with the job options (`--sqlite-root`, generous result bounds, loopback
/// connections allowed) plus `extra_args`, logged in as admin, with an SSE follower.
/// Stopped with SIGTERM by its PID on destruction; its temp dir is removed.
struct job_server {
  test::temp_dir dir;
  std::filesystem::path data = dir.path() / "data";
  std::filesystem::path sqlite_root = dir.path() / "sqlite";
  std::filesystem::path log = dir.path() / "atriumd.log";
  std::string label;  ///< the progress prefix ("jobs", "workers")
  std::optional<test::child_process> proc;
  std::string address;
  std::string token;
  std::unique_ptr<sse_follower> follower;

  /// Starts it and waits up to 60 s for /readyz; throws with the log's tail if it fails.
  job_server(const options& o, const std::vector<std::string>& extra_args, std::string label);
  ~job_server();
  job_server(const job_server&) = delete;
  job_server& operator=(const job_server&) = delete;

  /// The server's binary (`--atriumd` or the one built with the bench).
  [[nodiscard]] static std::string binary(const options& o);
  [[nodiscard]] pid_t pid() const { return proc->pid(); }
  /// A client with the admin's token.
  [[nodiscard]] test::http_client client() const;
  /// POST that must answer `want`; returns the JSON body. Throws otherwise.
  nlohmann::json must(const std::string& target, const nlohmann::json& body, unsigned want = 201) const;
  /// Creates a project; its id.
  std::string project(const std::string& name) const;
  /// Creates a connection; its id.
  std::string connection(const std::string& name, const std::string& driver, const nlohmann::json& params,
                         const nlohmann::json& credentials) const;
  /// Submits an SQL job (`max_attempts` 0: the server's default); its id.
  std::string submit(const std::string& project_id, const std::string& connection_id, const std::string& sql,
                     unsigned max_attempts = 0) const;
  /// Waits for the job's `job.started`; throws if it ended first or is not running after `timeout`.
  void started(const std::string& job, std::chrono::milliseconds timeout) const;
  /// Waits for the job's terminal event; throws with what is known after `timeout`.
  seen terminal(const std::string& job, std::chrono::milliseconds timeout) const;
};

/// Creates `path` with the sqlite3 C API: a one-row table. Throws on failure.
void make_sqlite_file(const std::filesystem::path& path);

/// Fails unless the job succeeded (its terminal event says why not).
void require_succeeded(const std::string& what, const seen& s);

}  // namespace atrium::bench
