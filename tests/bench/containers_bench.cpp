// (containers) The container reconciler and the process runtime (issue 18), against the
// real atriumd on 127.0.0.1:0 over a temp data dir:
//
//   bench ──POST /v1/containers/{id}/start──▶ atriumd ──▶ container reconciler ──▶ atrium-shim ──▶ sleep
//     ▲                                          │
//     └── SSE follower ◀── container.started ────┘ (recorded once the runtime reports it running)
//
//  baseline: --container-starts times, posix_spawn of `sleep` and the wait for its exec
//      (glibc's posix_spawn returns once the child has exec'd): what one process start
//      costs this machine, measured in the same run.
//  (a) containers_start_sequential: --container-starts containers (`sleep`, restart
//      never) started one at a time: the start command's answer and the start request to
//      the follower seeing `container.started` (observed running), p50/p99/max.
//  (b) containers_start_burst: the rest up to --container-count started at once from
//      --job-clients clients: the same latencies under load, and starts per second.
//  (c) containers_idle: with --container-count containers running, atriumd's CPU (user +
//      system) over --container-idle-s seconds and its resident memory, against the same
//      window with no container declared (measured first); the supervisors' and the
//      containers' own memory (RSS and PSS: the cost per container outside atriumd).
//  (d) containers_stop: every container stopped at once from the same clients: the time
//      until the follower has seen every `container.stopped`, and that no process is left.
//
// One JSON line per scenario; every process is started and stopped by its PID (the
// containers outlive a clean atriumd stop by design, so the bench stops them through
// the API and SIGKILLs whatever is left by its marker, the data dir's path).
#include <dirent.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/bench/jobs_server.hpp"

extern char** environ;

namespace atrium::bench {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr const char* k_sleep_seconds = "1000000";

/// The processes of the containers under `root` (the data dir's `containers`): the
/// supervisors carry it in their argv, the containers run in a directory below it.
struct container_processes {
  std::vector<pid_t> shims;
  std::vector<pid_t> children;
};

container_processes processes_under(const fs::path& root) {
  container_processes out;
  const std::string marker = root.string();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (auto* ent = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(ent->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const std::string base = std::string("/proc/") + ent->d_name;
    std::ifstream f(base + "/cmdline");
    const std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmdline.find(marker) != std::string::npos) {
      out.shims.push_back(static_cast<pid_t>(pid));
      continue;
    }
    std::error_code ec;
    const auto cwd = fs::read_symlink(base + "/cwd", ec).string();
    if (!ec && cwd.starts_with(marker + "/")) out.children.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  return out;
}

/// Memory of `pids` together, MiB: `VmRSS` (each process's resident pages, shared ones
/// counted in every process) and `Pss` from /proc/<pid>/smaps_rollup (shared pages split
/// between the processes that map them: what they cost the machine together).
struct memory_mib {
  double rss = 0;
  double pss = 0;
};

memory_mib memory_of(const std::vector<pid_t>& pids) {
  std::uint64_t rss = 0;
  std::uint64_t pss = 0;
  for (pid_t p : pids) {
    rss += proc_status_kib(p, "VmRSS");
    std::ifstream f("/proc/" + std::to_string(p) + "/smaps_rollup");
    for (std::string line; std::getline(f, line);) {
      if (line.starts_with("Pss:")) {
        pss += std::stoull(line.substr(4));
        break;
      }
    }
  }
  return {static_cast<double>(rss) / 1024.0, static_cast<double>(pss) / 1024.0};
}

/// SIGKILLs every container process under `root` until none is left (3 rounds).
void kill_leftovers(const fs::path& root) {
  for (int round = 0; round < 3; ++round) {
    const auto left = processes_under(root);
    if (left.shims.empty() && left.children.empty()) return;
    for (pid_t p : left.shims) ::kill(p, SIGKILL);
    for (pid_t p : left.children) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(milliseconds(100));
  }
}

void put_latency(ojson& j, const std::string& prefix, const std::vector<double>& samples_s) {
  j[prefix + "_p50_ms"] = round_to(percentile_ms(samples_s, 0.50), 2);
  j[prefix + "_p99_ms"] = round_to(percentile_ms(samples_s, 0.99), 2);
  j[prefix + "_max_ms"] = round_to(percentile_ms(samples_s, 1.0), 2);
}

/// posix_spawn of `sleep`: the machine's cost of starting one process, `n` samples (s).
std::vector<double> spawn_baseline(std::size_t n) {
  std::vector<double> samples;
  std::vector<pid_t> pids;
  std::string prog = "/bin/sleep";
  std::string arg = k_sleep_seconds;
  char* argv[] = {prog.data(), arg.data(), nullptr};
  for (std::size_t i = 0; i < n; ++i) {
    pid_t pid = 0;
    const auto t0 = steady::now();
    const int rc = ::posix_spawn(&pid, prog.c_str(), nullptr, nullptr, argv, environ);
    const auto t1 = steady::now();
    if (rc != 0) throw std::runtime_error("posix_spawn sleep: " + std::string(std::strerror(rc)));
    samples.push_back(seconds_between(t0, t1));
    pids.push_back(pid);
  }
  for (pid_t p : pids) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
  return samples;
}

/// One container as the bench drives it.
struct bench_container {
  std::string id;
  steady::time_point start_sent;
  double command_s = 0;  ///< POST …/start to its answer
  double running_s = 0;  ///< POST …/start to container.started seen
};

class container_bench {
 public:
  explicit container_bench(const options& o) : o_(o), srv_(o, {}, "containers") {
    root_ = srv_.data / "containers";
    leftovers_.root = root_;
  }
  container_bench(const container_bench&) = delete;
  /// The server's log from its first error (or its end), at most 3,000 bytes.
  [[nodiscard]] std::string log_tail() const {
    const auto text = slurp(srv_.log);
    const auto first = text.find(" error ");
    return first == std::string::npos ? tail(text, 3000) : text.substr(text.rfind('\n', first) + 1, 3000);
  }
  container_bench& operator=(const container_bench&) = delete;

  int run() {
    int failed = 0;
    const auto baseline = spawn_baseline(o_.container_starts);
    progress("containers: posix_spawn baseline p50 " + std::to_string(percentile_ms(baseline, 0.5)) + " ms");

    // (c, before) atriumd idle with no container, the window the idle figure compares to.
    const auto idle0 = idle_window();

    // (a) one at a time.
    std::vector<bench_container> seq(o_.container_starts);
    for (std::size_t i = 0; i < seq.size(); ++i) seq[i].id = declare("seq-" + std::to_string(i));
    const auto seq_t0 = steady::now();
    for (auto& c : seq) start(srv_.client(), c);
    const double seq_s = seconds_between(seq_t0, steady::now());
    {
      ojson j{{"scenario", "containers_start_sequential"}, {"path", "containers"}, {"containers", seq.size()}};
      put_latency(j, "spawn_baseline", baseline);
      report_starts(j, seq, seq_s);
      print_json(j);
    }

    // (b) the rest at once.
    const std::size_t total = std::max(o_.container_count, seq.size());
    std::vector<bench_container> burst(total - seq.size());
    for (std::size_t i = 0; i < burst.size(); ++i) burst[i].id = declare("burst-" + std::to_string(i));
    progress("containers: starting " + std::to_string(burst.size()) + " at once from " +
             std::to_string(o_.job_clients) + " clients");
    const double burst_s = in_parallel(burst, [&](const test::http_client& c, bench_container& b) { start(c, b); });
    if (!burst.empty()) {
      ojson j{{"scenario", "containers_start_burst"},
              {"path", "containers"},
              {"containers", burst.size()},
              {"clients", o_.job_clients},
              {"already_running", seq.size()}};
      report_starts(j, burst, burst_s);
      print_json(j);
    }

    // (c) idle with every container running.
    const auto running = processes_under(root_);
    const auto shims = memory_of(running.shims);
    const auto children = memory_of(running.children);
    const auto idle1 = idle_window();
    {
      ojson j{{"scenario", "containers_idle"},
              {"path", "containers"},
              {"containers", total},
              {"window_s", o_.container_idle_s},
              {"atriumd_cpu_percent", round_to(idle1.cpu_percent, 2)},
              {"atriumd_cpu_percent_without", round_to(idle0.cpu_percent, 2)},
              {"atriumd_rss_mib", round_to(idle1.rss_mib, 1)},
              {"atriumd_rss_mib_without", round_to(idle0.rss_mib, 1)},
              {"atriumd_rss_kib_per_container",
               round_to((idle1.rss_mib - idle0.rss_mib) * 1024.0 / static_cast<double>(total), 1)},
              {"supervisors", running.shims.size()},
              {"supervisors_rss_mib", round_to(shims.rss, 1)},
              {"supervisors_pss_mib", round_to(shims.pss, 1)},
              {"container_processes", running.children.size()},
              {"container_processes_rss_mib", round_to(children.rss, 1)},
              {"container_processes_pss_mib", round_to(children.pss, 1)}};
      if (running.shims.size() != total || running.children.size() != total) {
        ++failed;
        j["failed"] = "expected " + std::to_string(total) + " supervisors and containers";
      }
      print_json(j);
    }

    // (d) stop every one at once.
    std::vector<bench_container> all = std::move(seq);
    all.insert(all.end(), burst.begin(), burst.end());
    const auto stop_t0 = steady::now();
    std::size_t not_stopped = 0;  // counted on this thread only
    in_parallel(all, [&](const test::http_client& c, bench_container& b) {
      auto r = c.post("/v1/containers/" + b.id + "/stop", json::object());
      if (r.status != 200) throw std::runtime_error("stop " + b.id + ": " + std::to_string(r.status) + " " + r.body);
    });
    for (auto& b : all) {
      if (!srv_.follower->wait(b.id, {"container.stopped"}, std::chrono::seconds(60))) ++not_stopped;
    }
    const double stop_s = seconds_between(stop_t0, steady::now());
    bool gone = test::wait_until(
        [&] {
          const auto p = processes_under(root_);
          return p.shims.empty() && p.children.empty();
        },
        std::chrono::seconds(30));
    {
      ojson j{{"scenario", "containers_stop"},
              {"path", "containers"},
              {"containers", all.size()},
              {"seconds", round_to(stop_s, 3)},
              {"stops_per_s", round_to(static_cast<double>(all.size()) / stop_s, 1)},
              {"not_stopped", not_stopped},
              {"processes_left", !gone}};
      if (not_stopped > 0 || !gone) {
        ++failed;
        j["failed"] = "some containers were not stopped or left processes";
      }
      print_json(j);
    }
    return failed;
  }

 private:
  struct window {
    double cpu_percent = 0;
    double rss_mib = 0;
  };

  /// atriumd's CPU share over --container-idle-s seconds and its RSS at the end.
  window idle_window() const {
    progress("containers: measuring atriumd idle for " + std::to_string(o_.container_idle_s) + " s");
    const double c0 = proc_cpu_seconds(srv_.pid());
    const auto t0 = steady::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(o_.container_idle_s));
    const double cpu = proc_cpu_seconds(srv_.pid()) - c0;
    return {100.0 * cpu / seconds_between(t0, steady::now()),
            static_cast<double>(proc_status_kib(srv_.pid(), "VmRSS")) / 1024.0};
  }

  std::string declare(const std::string& name) const {
    return srv_.must("/v1/containers", {{"name", name}, {"command", {"sleep", k_sleep_seconds}}, {"restart", "never"}})
        .at("id")
        .get<std::string>();
  }

  /// Starts `c` and waits for its `container.started`; throws on anything else.
  void start(const test::http_client& client, bench_container& c) const {
    c.start_sent = steady::now();
    auto r = client.post("/v1/containers/" + c.id + "/start", json::object());
    c.command_s = seconds_between(c.start_sent, steady::now());
    if (r.status != 200) throw std::runtime_error("start " + c.id + ": " + std::to_string(r.status) + " " + r.body);
    auto s = srv_.follower->wait(c.id, {"container.started", "container.exited"}, std::chrono::seconds(60));
    if (!s) throw std::runtime_error("container " + c.id + " not running after 60 s");
    if (s->type != "container.started") {
      throw std::runtime_error("container " + c.id + ": " + s->type + " " + s->data.dump());
    }
    c.running_s = seconds_between(c.start_sent, s->at);
  }

  /// Runs `fn` on every item from --job-clients threads (one client each); the wall time
  /// in seconds. The first exception is rethrown once all threads are done.
  template <class Fn>
  double in_parallel(std::vector<bench_container>& items, Fn fn) const {
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::exception_ptr first;
    const auto t0 = steady::now();
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < std::max<std::size_t>(o_.job_clients, 1); ++t) {
      threads.emplace_back([&] {
        const auto client = srv_.client();
        for (std::size_t i = next++; i < items.size(); i = next++) {
          try {
            fn(client, items[i]);
          } catch (...) {
            std::lock_guard lock(mu);
            if (!first) first = std::current_exception();
            next = items.size();
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    if (first) std::rethrow_exception(first);
    return seconds_between(t0, steady::now());
  }

  static void report_starts(ojson& j, const std::vector<bench_container>& cs, double wall_s) {
    std::vector<double> command, running;
    for (const auto& c : cs) {
      command.push_back(c.command_s);
      running.push_back(c.running_s);
    }
    put_latency(j, "start_command", command);
    put_latency(j, "start_to_running", running);
    j["seconds"] = round_to(wall_s, 3);
    j["starts_per_s"] = round_to(static_cast<double>(cs.size()) / wall_s, 1);
  }

  /// A clean atriumd stop leaves containers running (docs/containers.md): once the
  /// server is gone (members go in reverse order), whatever the API did not stop is killed.
  struct leftovers_guard {
    fs::path root;
    ~leftovers_guard() {
      if (!root.empty()) kill_leftovers(root);
    }
  };

  const options& o_;
  leftovers_guard leftovers_;
  job_server srv_;
  fs::path root_;
};

}  // namespace

int run_containers(const options& o) {
  container_bench bench(o);
  try {
    return bench.run();
  } catch (const std::exception&) {
    progress("containers: atriumd's log ends with:\n" + bench.log_tail());
    throw;
  }
}

}  // namespace atrium::bench
