// atrium-bench: durable appends per second and p50/p99/p99.9 latency of every write
// path of Atrium, against the machine's limit measured in the same run (raw RocksDB
// synced WriteBatches of the same bytes) and, where PostgreSQL is installed, against
// the peer baseline (an append-only events table). One JSON line per measured point on
// stdout; progress on stderr. Not a test: nothing here asserts a timing.
//
//   atrium-bench [--paths raw,store,actors,http,postgres] [--writers 1,16,256]
//                [--connections 1,16,64] [--seconds S] [--events N]
//   atrium-bench --paths rebuild [--events 1000000]   (projection rebuild, issue 5)
//   atrium-bench --paths relay [--events 200000] [--seconds 10] [--writers 16]   (Kafka relay, issue 7)
//   atrium-bench --paths push [--subscribers 1000,10000] [--push-rate 20] [--push-projects 100]
//                [--seconds 5]                      (real-time delivery, issue 6)
//   atrium-bench --paths jobs [--seconds 10] [--job-clients 16] [--job-rows 5000000]
//                [--cancel-runs 20] [--job-slots N]   (job execution, issue 15)
//   atrium-bench --paths workers [--worker-jobs 500] [--job-clients 16] [--worker-counts 1,2,4]
//                [--worker-slots 4] [--lease-runs 5] [--worker-lease 2]   (remote workers, issue 16)
//   atrium-bench --paths reads [--connections 1,16,64] [--seconds 5]   (reads and wrk, issue 19)
//   atrium-bench --paths containers [--container-starts 100] [--container-count 1000]
//                [--container-idle-s 30] [--job-clients 16]   (containers, issue 18)
#include <sys/statfs.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <set>
#include <sstream>

#include "tests/bench/bench.hpp"

namespace {

using namespace atrium::bench;

constexpr const char* k_usage =
    "usage: atrium-bench [options]\n"
    "  --paths LIST          which paths to run, comma-separated (default raw,store,actors,http,postgres;\n"
    "                        also: passivation, touching --entities N (1000000) entities with --max-live M (10000);\n"
    "                        rebuild, rebuilding the projects and audit projections over --events N (1000000);\n"
    "                        relay, the Kafka relay over --events N (200000), then --seconds S under the last\n"
    "                        --writers count of appending writers;\n"
    "                        push, WebSocket delivery latency and memory per connection (issue 6);\n"
    "                        jobs, trivial SQLite jobs from --job-clients clients for --seconds, a --job-rows\n"
    "                        PostgreSQL result against psql, and cancel latency over --cancel-runs runs (issue 15);\n"
    "                        workers, --worker-jobs trivial SQLite jobs from --job-clients clients through the\n"
    "                        in-process dispatcher and through each of --worker-counts `atriumd worker` processes,\n"
    "                        then SIGKILL-of-a-worker-to-rerun time under --worker-lease, --lease-runs times (issue "
    "16);\n"
    "                        reads, GET /healthz, GET /v1/projects/{id} and GET /v1/projects over each of\n"
    "                        --connections keep-alive connections, then the same through wrk if installed (issue 19);\n"
    "                        containers, --container-starts process containers started one at a time, the rest\n"
    "                        up to --container-count at once from --job-clients clients, atriumd's CPU and RSS\n"
    "                        over --container-idle-s s with all running, then all stopped (issue 18))\n"
    "  --writers LIST        concurrent writers for raw, store, actors, postgres (default 1,16,256)\n"
    "  --connections LIST    keep-alive connections for http (default 1,16,64)\n"
    "  --seconds S           length of each measured point (default 5; 0: no limit)\n"
    "  --events N            stop each point after N operations (default 0: no limit)\n"
    "  --atriumd PATH        the server binary for http (default: the one built with the bench)\n"
    "  --atriumd-log-level L atriumd's --log-level (default: its own, info)\n"
    "  --subscribers LIST    push: WebSocket subscribers per point (default 1000,10000)\n"
    "  --push-rate R         push: renames per second during each point (default 20)\n"
    "  --push-projects P     push: projects the spread scenario uses (default 100)\n"
    "  --kafka-codecs LIST   relay: also the publisher alone with each compression.codec (none,gzip,...)\n"
    "  --push-idle N         push: also open N idle subscribers over --push-projects projects and report\n"
    "                        atriumd's memory only (from 127.0.0.1-127.0.0.K; raises the open-file limit)\n"
    "  --job-clients N       jobs: clients submitting trivial SQLite jobs (default 16)\n"
    "  --job-rows N          jobs: rows of the streamed PostgreSQL result (default 5000000)\n"
    "  --cancel-runs N       jobs: cancels per database (default 20)\n"
    "  --cancel-after-ms MS  jobs: wait after job.started before cancelling (default 200)\n"
    "  --job-slots N         jobs: atriumd's --job-slots (default: atriumd's own, the number of cores)\n"
    "  --worker-jobs N       workers: jobs per configuration (default 500)\n"
    "  --worker-counts LIST  workers: worker processes per configuration (default 1,2,4)\n"
    "  --worker-slots N      workers: job slots in total per configuration, split over the workers (default 4)\n"
    "  --lease-runs N        workers: SIGKILL-to-rerun measurements (default 5; 0: none)\n"
    "  --worker-lease S      workers: the server's --job-lease in seconds for those (default 2)\n"
    "  --pg-bin DIR          PostgreSQL's bin dir (default: newest /usr/lib/postgresql/*/bin)\n"
    "Raw RocksDB and PostgreSQL run at every writer count another selected path uses.\n"
    "Temp dirs go under $TMPDIR (default /tmp); it must be on the disk you mean to measure.\n"
    "stdout: one JSON line per measured point; stderr: progress and a summary against the targets.\n";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::size_t> parse_counts(const std::string& flag, const std::string& s) {
  std::vector<std::size_t> out;
  for (const auto& item : split(s)) {
    std::size_t used = 0;
    const auto v = std::stoul(item, &used);
    if (used != item.size() || v == 0) throw std::invalid_argument(flag + ": bad count " + item);
    out.push_back(v);
  }
  return out;
}

options parse_args(int argc, char** argv) {
  options o;
  const std::set<std::string> known{"raw",   "store", "actors", "http",    "postgres",   "passivation", "rebuild",
                                    "relay", "push",  "jobs",   "workers", "containers", "reads"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << k_usage;
      std::exit(0);
    } else if (a == "--paths" || a == "--scenarios") {
      o.paths = split(value());
      for (const auto& p : o.paths) {
        if (!known.contains(p)) throw std::invalid_argument("unknown path: " + p);
      }
    } else if (a == "--writers") {
      o.writers = parse_counts(a, value());
    } else if (a == "--connections") {
      o.connections = parse_counts(a, value());
    } else if (a == "--seconds") {
      o.seconds = std::stod(value());
      if (o.seconds < 0) throw std::invalid_argument("--seconds must be >= 0");
    } else if (a == "--events") {
      o.events = std::stoull(value());
    } else if (a == "--atriumd") {
      o.atriumd_path = value();
    } else if (a == "--atriumd-log-level") {
      o.atriumd_log_level = value();
    } else if (a == "--pg-bin") {
      o.pg_bin = value();
    } else if (a == "--entities") {
      o.entities = std::stoull(value());
    } else if (a == "--subscribers") {
      o.subscribers = parse_counts(a, value());
    } else if (a == "--push-rate") {
      o.push_rate = std::stod(value());
      if (o.push_rate <= 0) throw std::invalid_argument("--push-rate must be > 0");
    } else if (a == "--kafka-codecs") {
      o.kafka_codecs = split(value());
    } else if (a == "--push-idle") {
      o.push_idle = parse_counts(a, value()).at(0);
    } else if (a == "--push-projects") {
      o.push_projects = parse_counts(a, value()).at(0);
    } else if (a == "--job-clients") {
      o.job_clients = parse_counts(a, value()).at(0);
    } else if (a == "--job-rows") {
      o.job_rows = parse_counts(a, value()).at(0);
    } else if (a == "--cancel-runs") {
      o.cancel_runs = parse_counts(a, value()).at(0);
    } else if (a == "--cancel-after-ms") {
      o.cancel_after_ms = std::stoull(value());
    } else if (a == "--job-slots") {
      o.job_slots = parse_counts(a, value()).at(0);
    } else if (a == "--worker-jobs") {
      o.worker_jobs = parse_counts(a, value()).at(0);
    } else if (a == "--worker-counts") {
      o.worker_counts = parse_counts(a, value());
    } else if (a == "--worker-slots") {
      o.worker_slots = parse_counts(a, value()).at(0);
    } else if (a == "--lease-runs") {
      o.lease_runs = std::stoull(value());
    } else if (a == "--worker-lease") {
      o.worker_lease_s = parse_counts(a, value()).at(0);
    } else if (a == "--container-starts") {
      o.container_starts = parse_counts(a, value()).at(0);
    } else if (a == "--container-count") {
      o.container_count = parse_counts(a, value()).at(0);
    } else if (a == "--container-idle-s") {
      o.container_idle_s = std::stod(value());
      if (o.container_idle_s <= 0) throw std::invalid_argument("--container-idle-s must be > 0");
    } else if (a == "--max-live") {
      o.max_live = std::stoull(value());
    } else {
      throw std::invalid_argument("unknown argument: " + a);
    }
  }
  if (o.seconds == 0 && o.events == 0) throw std::invalid_argument("--seconds 0 needs --events N");
  return o;
}

bool wants(const options& o, const std::string& path) {
  return std::find(o.paths.begin(), o.paths.end(), path) != o.paths.end();
}

/// Warns when the temp dir is on tmpfs, where fsync costs nothing and every figure lies.
void check_temp_dir() {
  const auto tmp = std::filesystem::temp_directory_path();
  struct statfs fs {};
  if (::statfs(tmp.c_str(), &fs) == 0 && static_cast<unsigned long>(fs.f_type) == 0x01021994UL) {
    progress("WARNING: " + tmp.string() + " is tmpfs; synced writes cost nothing there. Set TMPDIR to a disk.");
  }
  progress("temp dirs under " + tmp.string() + "; " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs");
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(3);
  s << std::fixed << v;
  return s.str();
}

/// Where each path stands against the targets of issue 3 (stderr only).
void summarize(const figures& raw, const figures& store, const figures& actors, const figures& http,
               const figures& postgres) {
  progress("summary against the targets (benchmarks, not tests):");
  if (auto it = store.find(256); it != store.end() && raw.contains(256)) {
    const double ratio = it->second.events_per_s / raw.at(256).events_per_s;
    progress("  (a) store at 256 writers: " + fmt(ratio) + " of raw (target >= 0.5) " +
             (ratio >= 0.5 ? "MET" : "MISSED"));
  }
  if (auto it = actors.find(256); it != actors.end()) {
    const double eps = it->second.events_per_s;
    progress("  (b) actors at 256 writers: " + fmt(eps) + " events/s (target >= 100000) " +
             (eps >= 100000 ? "MET" : "MISSED"));
  }
  if (auto it = http.find(64); it != http.end()) {
    const auto& s = it->second;
    const bool met = s.commands_per_s >= 20000 && s.p99_us < 10000;
    progress("  (c) http over 64 connections: " + fmt(s.commands_per_s) + " commands/s, p99 " + fmt(s.p99_us) +
             " us (target >= 20000/s, p99 < 10000 us) " + (met ? "MET" : "MISSED"));
  }
  auto ahead = [&](const char* name, const figures& f) {
    for (const auto& [n, s] : f) {
      if (auto pg = postgres.find(n); pg != postgres.end()) {
        const double x = pg->second.events_per_s > 0 ? s.events_per_s / pg->second.events_per_s : 0;
        progress(std::string("  ") + name + " at " + std::to_string(n) + ": " + fmt(x) + "x PostgreSQL " +
                 (x > 1 ? "(ahead)" : "(BEHIND)"));
      }
    }
  };
  ahead("store", store);
  ahead("actors", actors);
  ahead("http", http);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse_args(argc, argv);
  } catch (const std::exception& ex) {
    std::cerr << "atrium-bench: " << ex.what() << "\n" << k_usage;
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const auto started = steady::now();
  check_temp_dir();

  int failed = 0;
  // A scenario that throws is reported and the others still run.
  auto guarded = [&](const std::string& path, auto&& fn) -> figures {
    if (!wants(o, path)) return {};
    try {
      return fn();
    } catch (const std::exception& ex) {
      ++failed;
      progress(path + " failed: " + ex.what());
      print_failed(path, path, ex.what());
      return {};
    }
  };

  const figures raw = guarded("raw", [&] {
    const auto ws = measure_write_set();
    std::string families;
    for (const auto& e : ws.entries) {
      families += " " + e.family + "(" + std::to_string(e.key.size()) + "+" + std::to_string(e.value.size()) + ")";
    }
    progress("one store append of one event writes " + std::to_string(ws.bytes()) + " bytes:" + families);
    return run_raw(o, ws);
  });
  const figures store = guarded("store", [&] { return run_store(o, raw); });
  const figures actors = guarded("actors", [&] { return run_actors(o, raw); });
  const figures http = guarded("http", [&] { return run_http(o, raw); });
  const figures postgres = guarded("postgres", [&] { return run_postgres(o, raw); });
  guarded("reads", [&] {
    run_reads(o);
    return figures{};
  });
  guarded("passivation", [&] {
    run_passivation(o);
    return figures{};
  });
  guarded("rebuild", [&] {
    run_rebuild(o);
    return figures{};
  });
  guarded("relay", [&] {
    run_relay(o);
    return figures{};
  });

  guarded("push", [&] {
    if (run_push(o) > 0) {
      ++failed;
      print_failed("push", "push", "some subscribers did not get exactly their events; see stderr");
    }
    return figures{};
  });

  guarded("jobs", [&] {
    failed += run_jobs(o);
    return figures{};
  });

  guarded("workers", [&] {
    failed += run_workers(o);
    return figures{};
  });

  guarded("containers", [&] {
    failed += run_containers(o);
    return figures{};
  });

  summarize(raw, store, actors, http, postgres);
  progress("done in " + fmt(std::chrono::duration<double>(steady::now() - started).count()) + " s");
  return failed == 0 ? 0 : 1;
}
