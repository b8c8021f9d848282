#pragma once
/// atrium-bench: what the scenarios share. Each write path is measured the same way:
/// N writers, each with one command or append in flight on its own stream, run until a
/// deadline or an event budget; every completed operation is a latency sample.
///
///   bench_main ─▶ run_raw ─┐ (the machine's limit, measured first)
///              ─▶ run_store, run_actors, run_http, run_postgres
///                          └─▶ one JSON line per (path, writers) on stdout; ratio to raw
///
/// This header is plain C++ (no RocksDB, CAF, Beast or libpq), so each scenario's .cpp
/// links only the library it drives.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/envelope.hpp"

namespace atrium::bench {

using steady = std::chrono::steady_clock;

/// Command-line settings.
struct options {
  std::vector<std::size_t> writers{1, 16, 256};     ///< for raw, store, actors, postgres
  std::vector<std::size_t> connections{1, 16, 64};  ///< for http
  double seconds = 5.0;                             ///< per measured point; 0: no time limit
  std::uint64_t events = 0;                         ///< per measured point; 0: no count limit (rebuild: 1000000)
  std::vector<std::string> paths{"raw", "store", "actors", "http", "postgres"};
  std::string atriumd_path;            ///< http: the server binary; "" for the one built with the bench
  std::string atriumd_log_level;       ///< http: atriumd's --log-level; "" for its default (info)
  std::string pg_bin;                  ///< postgres: dir of initdb/pg_ctl; "" to search /usr/lib/postgresql
  std::uint64_t entities = 1'000'000;  ///< passivation: distinct entities to touch
  std::size_t max_live = 10'000;       ///< passivation: the registry's bound on live entity actors
  std::vector<std::size_t> subscribers{1'000, 10'000};  ///< push: WebSocket subscribers per point
  double push_rate = 20;                                ///< push: commands per second the driver sends
  std::size_t push_projects = 100;                      ///< push: projects the spread scenario uses
  std::vector<std::string> kafka_codecs;  ///< relay: also the publisher alone with each `compression.codec`
  std::size_t push_idle = 0;            ///< push: also hold this many idle subscribers (memory only; 0: no such point)
  std::size_t job_clients = 16;         ///< jobs (a): clients submitting trivial SQLite jobs
  std::uint64_t job_rows = 5'000'000;   ///< jobs (b): rows of the PostgreSQL result
  std::size_t cancel_runs = 20;         ///< jobs (c): cancels per database
  std::uint64_t cancel_after_ms = 200;  ///< jobs (c): wait after job.started before the cancel
  std::size_t job_slots = 0;            ///< jobs: atriumd's --job-slots; 0 for its default (the cores)
  std::uint64_t worker_jobs = 500;      ///< workers: trivial SQLite jobs per configuration
  std::vector<std::size_t> worker_counts{1, 2, 4};  ///< workers: `atriumd worker` processes per configuration
  std::size_t worker_slots = 4;                     ///< workers: job slots in total per configuration
  std::size_t lease_runs = 5;                       ///< workers: SIGKILL-to-rerun measurements
  std::uint64_t worker_lease_s = 2;                 ///< workers: the server's --job-lease for those, seconds
  std::size_t container_starts = 100;               ///< containers: started one at a time
  std::size_t container_count = 1'000;              ///< containers: running at once
  double container_idle_s = 30;                     ///< containers: the idle CPU window, seconds
};

/// The writer counts raw RocksDB and PostgreSQL are measured at: every count another
/// path uses, so each path has a baseline at its own concurrency.
[[nodiscard]] std::vector<std::size_t> baseline_writers(const options& o);

/// Decides when a measured point ends: at the deadline or once `events` operations have
/// been started, whichever comes first. Thread-safe.
class run_control {
 public:
  run_control(double seconds, std::uint64_t max_ops);
  /// True if the caller may start one more operation (and counts it).
  [[nodiscard]] bool next();
  /// When the point started.
  [[nodiscard]] steady::time_point start() const { return start_; }

 private:
  steady::time_point start_;
  std::optional<steady::time_point> deadline_;
  std::uint64_t max_ops_;
  std::atomic<std::uint64_t> started_{0};
  std::atomic<bool> stopped_{false};
};

/// The figures of one measured point.
struct measurement {
  std::string scenario;
  std::string path;  ///< raw, store, actors, http, postgres
  std::size_t writers = 0;
  std::uint64_t events = 0;                ///< durable events written
  std::uint64_t commands = 0;              ///< operations completed (appends, commands, requests)
  std::uint64_t errors = 0;                ///< operations that failed (the writer stops)
  double seconds = 0;                      ///< from the first operation started to the last one completed
  std::vector<std::int64_t> latencies_ns;  ///< one sample per completed operation
  std::map<std::string, double> extra;     ///< path-specific figures (e.g. http's connections)
};

/// What the summary at the end needs of one measured point.
struct summary {
  double events_per_s = 0;
  double commands_per_s = 0;
  double p99_us = 0;
};

/// Prints `r` as one JSON line on stdout: scenario, path, writers, events, seconds,
/// events_per_s, p50_us, p99_us, p999_us (from all samples, sorted), ratio_to_raw
/// (null without a raw figure at the same writer count), errors, then `r.extra` and,
/// for http, commands_per_s.
summary print_measurement(measurement& r, std::optional<double> raw_events_per_s);

/// Prints `{"scenario":..,"path":..,"skipped":reason}` on stdout.
void print_skipped(const std::string& scenario, const std::string& path, const std::string& reason);
/// Prints `{"scenario":..,"path":..,"failed":reason}` on stdout.
void print_failed(const std::string& scenario, const std::string& path, const std::string& reason);

/// Progress and diagnostics on stderr (stdout carries only figures).
void progress(const std::string& line);

/// The bootstrap admin's password of every atriumd a bench starts.
inline constexpr const char* k_bench_admin_password = "atrium-bench-root-passphrase";

/// The whole file at `p` ("" if unreadable).
[[nodiscard]] std::string slurp(const std::filesystem::path& p);
/// The last `n` bytes of `s`.
[[nodiscard]] std::string tail(const std::string& s, std::size_t n);

/// A field of /proc/<pid>/status in KiB (for example "VmRSS", "VmHWM"); 0 if unreadable.
[[nodiscard]] std::uint64_t proc_status_kib(int pid, const std::string& field);
/// CPU seconds (user + system) process `pid` has used so far, from /proc/<pid>/stat
/// (fields 14 and 15); 0 if unreadable.
[[nodiscard]] double proc_cpu_seconds(int pid);

/// An ETag or version header as a number: `"7"`, `W/"7"` or `7` → 7; nullopt if not a number.
[[nodiscard]] std::optional<std::uint64_t> parse_etag(std::string_view v);

/// The event every path writes: `project.renamed` with a fixed-width name and the
/// metadata the entity actors add (actor, correlation and causation ids), so every
/// path stores the same bytes. `seq` only changes digits, never the size.
[[nodiscard]] proposed_event make_renamed(std::uint64_t seq);
/// The project name of `make_renamed(seq)` (fixed width).
[[nodiscard]] std::string renamed_name(std::uint64_t seq);
/// The stream of writer `w` (fixed width, like `project-<uuid>`).
[[nodiscard]] std::string writer_stream(std::size_t w);

/// The bytes one event costs in the store: every key and value its append writes, per
/// column family, measured on a real `rocksdb_store` (see raw_bench.cpp).
struct write_set {
  struct entry {
    std::string family;
    std::string key;
    std::string value;
  };
  std::vector<entry> entries;
  [[nodiscard]] std::size_t bytes() const;
};

// The scenarios. Each prints its own lines and returns its figures per writer count.
using figures = std::map<std::size_t, summary>;

/// The raw figure at `writers`, if measured.
[[nodiscard]] std::optional<double> raw_at(const figures& raw, std::size_t writers);
/// Measures the store's write set of one event (a scratch store in a temp dir).
[[nodiscard]] write_set measure_write_set();
/// (raw) synced WriteBatches of N events' write sets at N writers, plain RocksDB.
figures run_raw(const options& o, const write_set& ws);
/// (a) N threads appending through `ports::event_store::append` into `rocksdb_store`.
figures run_store(const options& o, const figures& raw);
/// (b) N projects renamed in a loop through `actor_runtime`.
figures run_actors(const options& o, const figures& raw);
/// (c) PATCH /v1/projects/{id} over keep-alive connections to a real atriumd.
figures run_http(const options& o, const figures& raw);
/// (reads, issue 19) against a fresh atriumd with one project per connection: for each
/// of `o.connections`, `GET /healthz` (the baseline), `GET /v1/projects/{id}` and
/// `GET /v1/projects` looped over that many keep-alive connections for `o.seconds`
/// each (one JSON line per point: requests_per_s, p50/p99/p99.9, ratio_to_healthz);
/// then, where `wrk` is on PATH, the same three requests through wrk at the largest
/// connection count (one JSON line each, `"tool":"wrk"`). Not in the default paths.
void run_reads(const options& o);
/// (postgres) the peer baseline: INSERTs into an append-only events table.
figures run_postgres(const options& o, const figures& raw);
/// Passivation: touches `o.entities` distinct entities once each and prints resident
/// memory every 10% and at the end (JSON lines); not in the default paths.
void run_passivation(const options& o);
/// Projection rebuild (issue 5): stores `o.events` project events (default 1000000),
/// reads them raw (RocksDB iterator) and through `read_all`, then rebuilds `projects`,
/// `audit` and both from position 0 and prints one JSON line per measurement with its
/// ratio to the raw read (goal: at most 3); not in the default paths.
void run_rebuild(const options& o);
/// Kafka relay (issue 7): throughput from the log to acknowledged in an embedded cluster
/// against the publisher alone, and commit-to-acknowledgement lag under `writers`
/// appending writers for `seconds`; not in the default paths.
void run_relay(const options& o);
/// Real-time delivery (issue 6): for each of `o.subscribers` (and a 1-subscriber
/// baseline), a fresh atriumd, N WebSocket connections subscribed to one project or
/// spread over `o.push_projects`, renames at `o.push_rate` per second for `o.seconds`;
/// prints commit-to-delivery p50/p99/p99.9/max and memory per idle connection, one
/// JSON line per point. Returns the number of points where some subscriber did not get
/// exactly its events (or a connection failed). Not in the default paths.
int run_push(const options& o);
/// Job execution (issue 15), against a fresh atriumd (and a throwaway PostgreSQL where
/// installed): (a) `o.job_clients` clients running trivial SQLite jobs for `o.seconds`,
/// jobs/s and submit-to-terminal p50/p99, with plain HTTP round trips as the baseline;
/// (b) a `o.job_rows`-row PostgreSQL result into the result store, rows/s against psql
/// and atriumd's resident memory growth; (c) cancel-to-cancelled p50/p99 over
/// `o.cancel_runs` runs on PostgreSQL and SQLite. One JSON line per scenario; returns
/// the number of scenarios that failed. Not in the default paths.
int run_jobs(const options& o);
/// Remote workers (issue 16), against fresh atriumd servers: (a) `o.worker_jobs` trivial
/// SQLite jobs from `o.job_clients` clients through the in-process dispatcher
/// (`--job-slots o.worker_slots`), then through each of `o.worker_counts` local
/// `atriumd worker` processes (`--slots o.worker_slots / count` each) against a server
/// with `--job-slots 0`, then in-process again: jobs/s from the first submit to the last
/// terminal event, submit-to-succeeded p50/p95, ratio to the in-process mean; (b)
/// `o.lease_runs` times, SIGKILL of a worker running a long job with a second worker
/// waiting, under `--job-lease o.worker_lease_s`: SIGKILL to `job.requeued` and to the
/// attempt-2 `job.started` (event times), min/median/max. One JSON line per
/// configuration and one per lease summary; returns the number of scenarios that failed.
/// Not in the default paths.
int run_workers(const options& o);
/// Containers (issue 18), against a fresh atriumd with the process runtime: a posix_spawn
/// baseline, then `o.container_starts` `sleep` containers started one at a time and the
/// rest up to `o.container_count` at once from `o.job_clients` clients (start request to
/// `container.started` seen, p50/p99), atriumd's CPU and RSS over `o.container_idle_s`
/// seconds with all of them running against the same window with none, and the time to
/// stop them all. One JSON line per scenario; returns the number that failed. Not in the
/// default paths.
int run_containers(const options& o);

}  // namespace atrium::bench
