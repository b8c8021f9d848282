// The `process` container runtime (adapters/process/container_runtime.hpp) with real
// processes and its real supervisor (atrium-shim, ATRIUM_SHIM_PATH from the build) in
// temp dirs. Every test stops what it started, by pid, even when an assertion fails.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "adapters/process/container_cgroup.hpp"
#include "adapters/process/container_files.hpp"
#include "adapters/process/container_runtime.hpp"
#include "tests/support/process.hpp"

namespace fs = std::filesystem;
using namespace atrium;
using namespace atrium::process_adapter;
using rstate = ports::runtime_container::state;
using namespace std::chrono_literals;

namespace {

using atrium::test::free_port;

constexpr const char* k_cid = "0193a1c2-0000-7000-8000-00000000c001";

/// The processes of process group `pgid` still present in /proc, zombies (ended, their
/// parent has not reaped them: pid 1 of this machine reaps late) not counted.
std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    std::string state;
    long ppid = 0;
    long pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != "Z" && state != "X") out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

/// Collects watch events.
struct event_log {
  std::mutex m;
  std::condition_variable cv;
  std::vector<ports::runtime_event> events;
  void add(const ports::runtime_event& e) {
    std::lock_guard g(m);
    events.push_back(e);
    cv.notify_all();
  }
  /// Waits (deadline 30 s, not a timing assertion) for `n` events.
  bool wait_count(std::size_t n) {
    std::unique_lock g(m);
    return cv.wait_for(g, 30s, [&] { return events.size() >= n; });
  }
  /// Waits (deadline 30 s, not a timing assertion) for an event matching `pred`.
  std::optional<ports::runtime_event> wait_for(const std::function<bool(const ports::runtime_event&)>& pred) {
    std::unique_lock g(m);
    std::optional<ports::runtime_event> found;
    cv.wait_for(g, 30s, [&] {
      for (const auto& e : events)
        if (pred(e)) {
          found = e;
          return true;
        }
      return false;
    });
    return found;
  }
};

struct fixture {
  test::temp_dir tmp;
  process_runtime_options options;
  std::unique_ptr<ports::container_runtime> rt;
  std::set<std::pair<std::int64_t, std::uint64_t>> started;  // (pid, start ticks) to kill at the end

  fixture() {
    options.data_dir = tmp.path();
    // Unique per fixture, as DATA_DIR/instance_id is per installation: cgroups are named
    // by instance and container id, and tests run in parallel with the same container ids.
    options.instance = "test-" + tmp.path().filename().string();
    options.shim_path = ATRIUM_SHIM_PATH;
    rt = make_process_runtime(options);
  }
  ~fixture() {
    // Stop by pid whatever a failed test left running (its whole group).
    for (const auto& [pid, ticks] : started)
      if (process_alive(pid, ticks)) ::kill(static_cast<pid_t>(-pid), SIGKILL);
    for (const auto& [pid, ticks] : started) {
      (void)ticks;
      test::wait_until([&] { return group_members(static_cast<pid_t>(pid)).empty(); }, 10s);
    }
  }
  void reopen() {
    rt.reset();
    rt = make_process_runtime(options);
  }
  ports::container_spec spec(std::vector<std::string> command, std::string cid = k_cid) {
    ports::container_spec s;
    s.container_id = std::move(cid);
    s.name = "web";
    s.command = std::move(command);
    s.spec_version = 3;
    return s;
  }
  std::string create_and_start(const ports::container_spec& s) {
    auto id = rt->create(s);
    REQUIRE(id);
    auto started_ok = rt->start(*id);
    REQUIRE(started_ok);
    remember(*id);
    return *id;
  }
  void remember(const std::string& id) {
    auto c = rt->inspect(id);
    if (c && c->pid) started.insert({*c->pid, process_start_ticks(*c->pid).value_or(0)});
  }
  fs::path dir(const std::string& cid = k_cid) { return tmp.path() / "containers" / cid; }
  ports::runtime_container wait_exited(const std::string& id) {
    ports::runtime_container last;
    test::wait_until(
        [&] {
          auto c = rt->inspect(id);
          if (c) last = *c;
          return c && c->status == rstate::exited;
        },
        30s);
    return last;
  }
  std::vector<std::string> log_lines(const std::string& id, std::size_t tail = 10000) {
    std::vector<std::string> lines;
    std::atomic<bool> stop{false};
    auto r = rt->logs(
        id, {tail, false},
        [&](std::string_view l) {
          lines.emplace_back(l);
          return true;
        },
        stop);
    REQUIRE(r);
    return lines;
  }
};

}  // namespace

TEST_CASE("process runtime: an http.server is healthy, and kill -9 is reported as exited 137 killed",
          "[containers][process]") {
  fixture f;
  event_log events;
  auto watch = f.rt->watch([&](const ports::runtime_event& e) { events.add(e); });
  const int port = free_port();
  auto s = f.spec({"python3", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1"});
  s.ports = {port};
  const auto id = f.create_and_start(s);
  CHECK(id == std::string("proc-") + k_cid + "-1");
  auto c = f.rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == rstate::running);
  REQUIRE(c->pid);
  const auto pid = static_cast<pid_t>(*c->pid);
  CHECK(c->spec_version == 3);
  CHECK(c->container_id == k_cid);

  ports::health_probe http;
  http.type = ports::health_probe::kind::http;
  http.port = port;
  http.path = "/";
  http.timeout = 2s;
  bool healthy = test::wait_until(
      [&] {
        auto p = f.rt->probe(id, http);
        return p && p->healthy;
      },
      30s);
  CHECK(healthy);
  auto p = f.rt->probe(id, http);
  REQUIRE(p);
  CHECK(p->detail == "HTTP 200");
  http.path = "/no-such-file";
  p = f.rt->probe(id, http);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(p->detail == "HTTP 404");
  ports::health_probe tcp;
  tcp.type = ports::health_probe::kind::tcp;
  tcp.port = port;
  tcp.timeout = 2s;
  p = f.rt->probe(id, tcp);
  REQUIRE(p);
  CHECK(p->healthy);

  REQUIRE(::kill(pid, SIGKILL) == 0);
  auto e = events.wait_for([&](const auto& ev) { return ev.runtime_id == id; });
  REQUIRE(e);
  CHECK(e->type == ports::runtime_event::kind::exited);
  CHECK(e->container_id == k_cid);
  CHECK(e->exit_code == 137);
  CHECK(e->reason == "killed");
  c = f.rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == rstate::exited);
  CHECK(c->exit_code == 137);
  p = f.rt->probe(id, tcp);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(group_members(pid).empty());
}

TEST_CASE("process runtime: a command that exits 3 at once is exited 3, and it can start again",
          "[containers][process]") {
  fixture f;
  event_log events;
  auto watch = f.rt->watch([&](const ports::runtime_event& e) { events.add(e); });
  const auto id = f.create_and_start(f.spec({"sh", "-c", "echo bye; exit 3"}));
  auto e = events.wait_for([&](const auto& ev) { return ev.runtime_id == id; });
  REQUIRE(e);
  CHECK(e->type == ports::runtime_event::kind::exited);
  CHECK(e->exit_code == 3);
  CHECK(e->reason == "exited");
  auto c = f.wait_exited(id);
  CHECK(c.exit_code == 3);
  CHECK(c.reason == "exited");
  REQUIRE(f.rt->start(id));
  REQUIRE(events.wait_count(2));
  {
    std::lock_guard g(events.m);
    CHECK(events.events.back().exit_code == 3);
  }
  CHECK(f.log_lines(id) == std::vector<std::string>{"bye", "bye"});
}

TEST_CASE("process runtime: a missing executable fails start and is exited 127", "[containers][process]") {
  fixture f;
  auto id = f.rt->create(f.spec({"/nonexistent/program"}));
  REQUIRE(id);
  auto started = f.rt->start(*id);
  REQUIRE_FALSE(started);
  CHECK(started.error().code == errc::invalid_argument);
  auto c = f.rt->inspect(*id);
  REQUIRE(c);
  CHECK(c->status == rstate::exited);
  CHECK(c->exit_code == 127);
  auto empty = f.rt->create(f.spec({}));
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code == errc::invalid_argument);
  CHECK_FALSE(f.rt->create(f.spec({"true"}, "../escape")));
  CHECK(f.rt->inspect("proc-../../etc-1").error().code == errc::not_found);
  CHECK(f.rt->inspect("nonsense").error().code == errc::not_found);
}

TEST_CASE("process runtime: stop leaves no process of the group, also when SIGTERM is ignored",
          "[containers][process]") {
  fixture f;
  const auto polite = f.create_and_start(f.spec({"sh", "-c", "sleep 1000 & sleep 1000 & wait"}));
  const auto stubborn =
      f.create_and_start(f.spec({"sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000 & while true; do sleep 0.1; done"},
                                "0193a1c2-0000-7000-8000-00000000c002"));
  for (const auto& id : {polite, stubborn}) {
    auto c = f.rt->inspect(id);
    REQUIRE(c);
    REQUIRE(c->pid);
    const auto pgid = static_cast<pid_t>(*c->pid);
    test::wait_until([&] { return group_members(pgid).size() >= 3; }, 30s);
    CHECK(group_members(pgid).size() >= 3);
    REQUIRE(f.rt->stop(id, 1s));
    CHECK(group_members(pgid).empty());
    c = f.rt->inspect(id);
    REQUIRE(c);
    CHECK(c->status == rstate::exited);
    CHECK(c->reason == "killed");
    CHECK((c->exit_code == 143 || c->exit_code == 137));
    CHECK(f.rt->stop(id, 1s));  // stopping what does not run succeeds
  }
  CHECK(f.rt->inspect(stubborn)->exit_code == 137);
  REQUIRE(f.rt->remove(polite));
  CHECK(f.rt->inspect(polite).error().code == errc::not_found);
  CHECK(f.rt->remove(polite));
  CHECK(fs::exists(f.dir() / "log"));  // the dir and its log stay with the aggregate
}

TEST_CASE("process runtime: a new adapter on the same DATA_DIR adopts the running container", "[containers][process]") {
  fixture f;
  const auto id = f.create_and_start(f.spec({"sleep", "1000"}));
  const auto pid = f.rt->inspect(id)->pid;
  REQUIRE(pid);
  f.reopen();  // as after an atriumd restart: no state in memory
  auto all = f.rt->list();
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  CHECK(all->front().runtime_id == id);
  CHECK(all->front().status == rstate::running);
  CHECK(all->front().pid == pid);
  REQUIRE(f.rt->start(id));  // already running: never a second process
  CHECK(f.rt->inspect(id)->pid == pid);
  // Another instance's adapter on the same DATA_DIR sees nothing of it.
  auto other_options = f.options;
  other_options.instance = "other-instance";
  auto other = make_process_runtime(other_options);
  CHECK(other->list()->empty());
  CHECK(other->inspect(id).error().code == errc::not_found);
  REQUIRE(f.rt->stop(id, 5s));
  CHECK(group_members(static_cast<pid_t>(*pid)).empty());
  // create while running is refused; after the stop a new runtime container replaces it
  auto next = f.rt->create(f.spec({"true"}));
  REQUIRE(next);
  CHECK(*next == std::string("proc-") + k_cid + "-2");
  CHECK(f.rt->inspect(id).error().code == errc::not_found);
}

TEST_CASE("process runtime: the container outlives a SIGKILL of the process that started it", "[containers][process]") {
  fixture f;
  // A child process plays atriumd: it creates and starts the container, reports the
  // runtime id, and is SIGKILLed.
  int report[2];
  REQUIRE(::pipe(report) == 0);
  const pid_t daemon = ::fork();
  REQUIRE(daemon >= 0);
  if (daemon == 0) {
    ::close(report[0]);
    auto rt = make_process_runtime(f.options);
    auto id = rt->create(f.spec({"sleep", "1000"}));
    if (!id || !rt->start(*id)) ::_exit(1);
    const std::string line = *id + "\n";
    [[maybe_unused]] auto n = ::write(report[1], line.data(), line.size());
    ::pause();
    ::_exit(0);
  }
  ::close(report[1]);
  std::string id;
  char c = 0;
  while (::read(report[0], &c, 1) == 1 && c != '\n') id.push_back(c);
  ::close(report[0]);
  ::kill(daemon, SIGKILL);
  int status = 0;
  ::waitpid(daemon, &status, 0);
  REQUIRE_FALSE(id.empty());
  f.remember(id);
  auto all = f.rt->list();
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  CHECK(all->front().runtime_id == id);
  CHECK(all->front().status == ports::runtime_container::state::running);
  REQUIRE(all->front().pid);
  const auto pid = static_cast<pid_t>(*all->front().pid);
  REQUIRE(f.rt->start(id));
  CHECK(f.rt->inspect(id)->pid == pid);
  REQUIRE(f.rt->stop(id, 5s));
  CHECK(group_members(pid).empty());
}

TEST_CASE("process runtime: a killed shim leaves the container running and stoppable, removal is an event",
          "[containers][process]") {
  fixture f;
  event_log events;
  auto watch = f.rt->watch([&](const ports::runtime_event& e) { events.add(e); });
  const auto id = f.create_and_start(f.spec({"sleep", "1000"}));
  const auto state = decode_state(*read_file(f.dir() / "state.json", 65536));
  REQUIRE(state);
  REQUIRE(::kill(static_cast<pid_t>(state->shim_pid), SIGKILL) == 0);
  auto c = f.rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == rstate::running);
  CHECK(c->pid == state->pid);
  REQUIRE(f.rt->stop(id, 5s));
  CHECK(group_members(static_cast<pid_t>(state->pid)).empty());
  c = f.rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == rstate::exited);
  CHECK(c->exit_code == 143);
  for (const auto& d : state->cgroups) CHECK_FALSE(fs::exists(d));  // stop removed what the shim would have
  auto exited = events.wait_for([&](const auto& e) { return e.type == ports::runtime_event::kind::exited; });
  REQUIRE(exited);
  CHECK(exited->runtime_id == id);
  REQUIRE(f.rt->remove(id));
  auto removed = events.wait_for([&](const auto& e) { return e.type == ports::runtime_event::kind::removed; });
  REQUIRE(removed);
  CHECK(removed->runtime_id == id);
  CHECK(removed->container_id == k_cid);
}

TEST_CASE("process runtime: an exit while no adapter exists is reported by the next one", "[containers][process]") {
  fixture f;
  const auto id = f.create_and_start(f.spec({"sh", "-c", "while [ ! -e go ]; do sleep 0.05; done; exit 7"}));
  auto running = f.rt->create(f.spec({"true"}));
  REQUIRE_FALSE(running);  // it still runs
  f.rt.reset();            // atriumd is down
  std::ofstream(f.dir() / "go") << "now";
  REQUIRE(test::wait_until(
      [&] {
        auto text = read_file(f.dir() / "state.json", 65536);
        auto s = text ? decode_state(*text) : result<state_record>(std::unexpected(text.error()));
        return s && !s->running;
      },
      30s));
  f.reopen();
  auto c = f.rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == rstate::exited);
  CHECK(c->exit_code == 7);
  CHECK(c->reason == "exited");
}

TEST_CASE("process runtime: env, ports and the working directory are the spec's", "[containers][process]") {
  ::setenv("ATRIUM_TEST_SECRET", "must-not-leak", 1);
  fixture f;
  auto s = f.spec({"sh", "-c",
                   "echo cwd=$(pwd); echo PORT_8080=$PORT_8080; echo PORT_9090=$PORT_9090; echo PORTS=$PORTS; "
                   "echo FOO=$FOO; echo SECRET=${ATRIUM_TEST_SECRET:-unset}; echo HOME=$HOME; "
                   "read line; echo stdin=$? ; echo to-stderr >&2"});
  s.ports = {8080, 9090};
  s.env = {{"FOO", "bar baz"}};
  const auto id = f.create_and_start(s);
  auto c = f.wait_exited(id);
  CHECK(c.exit_code == 0);
  const auto dir = fs::canonical(f.dir()).string();
  CHECK(f.log_lines(id) == std::vector<std::string>{"cwd=" + dir, "PORT_8080=8080", "PORT_9090=9090", "PORTS=8080,9090",
                                                    "FOO=bar baz", "SECRET=unset", "HOME=" + f.dir().string(),
                                                    "stdin=1", "to-stderr"});
  CHECK(f.log_lines(id, 2) == std::vector<std::string>{"stdin=1", "to-stderr"});
  ::unsetenv("ATRIUM_TEST_SECRET");
}

TEST_CASE("process runtime: the log rotates within its cap, long lines are split, tail spans files",
          "[containers][process]") {
  fixture f;
  f.options.log_max_bytes = 4096;
  f.options.log_files = 4;
  f.reopen();
  const auto id = f.create_and_start(f.spec(
      {"python3", "-c",
       "import sys\nfor i in range(2000): print('line %04d ' % i + 'x' * 40)\nprint('y' * 40000)\nprint('end')"}));
  auto c = f.wait_exited(id);
  CHECK(c.exit_code == 0);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(f.dir()))
    if (e.path().filename().string().starts_with("log")) {
      files.push_back(e.path().filename().string());
      CHECK(fs::file_size(e.path()) <= max_log_line + 1 + 4096);
    }
  std::sort(files.begin(), files.end());
  // 2000 lines of 50 bytes rotate many times; each 16 KiB piece of the long line fills a file.
  CHECK(files == std::vector<std::string>{"log", "log.1", "log.2", "log.3", "log.4"});
  auto lines = f.log_lines(id, 5);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].starts_with("line 1999 "));
  CHECK(lines[1] == std::string(16384, 'y'));
  CHECK(lines[2] == std::string(16384, 'y'));
  CHECK(lines[3] == std::string(40000 - 2 * 16384, 'y'));
  CHECK(lines[4] == "end");
}

TEST_CASE("process runtime: logs follow across rotations without losing a line", "[containers][process]") {
  fixture f;
  f.options.log_max_bytes = 4096;
  f.options.log_files = 3;
  f.reopen();
  const auto id = f.create_and_start(
      f.spec({"python3", "-u", "-c",
              "import time\nfor i in range(600):\n  print('n%d ' % i + 'z' * 60)\n  time.sleep(0.005)"}));
  std::vector<std::string> got;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  // A deadline, not a timing assertion: should n599 never come, the follow still ends.
  std::thread watchdog([&] {
    for (int i = 0; i < 1200 && !done; ++i) std::this_thread::sleep_for(50ms);
    stop = true;
  });
  auto r = f.rt->logs(
      id, {0, true},
      [&](std::string_view l) {
        got.emplace_back(l);
        return !l.starts_with("n599 ");
      },
      stop);
  done = true;
  watchdog.join();
  stop = false;
  REQUIRE(r);
  REQUIRE_FALSE(got.empty());
  CHECK(got.back().starts_with("n599 "));
  // It started following at some line; from there every line, in order.
  const int first = std::stoi(got.front().substr(1));
  REQUIRE(got.size() == static_cast<std::size_t>(600 - first));
  for (std::size_t i = 0; i < got.size(); ++i)
    CHECK(got[i] == "n" + std::to_string(first + static_cast<int>(i)) + " " + std::string(60, 'z'));
  // The stop flag ends a follow of a quiet container.
  f.wait_exited(id);
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    stop = true;
  });
  auto quiet = f.rt->logs(
      id, {1, true}, [&](std::string_view) { return true; }, stop);
  stopper.join();
  CHECK(quiet);
}

TEST_CASE("process runtime: exec probes run in the container's dir and env, bounded by the timeout",
          "[containers][process]") {
  fixture f;
  auto s = f.spec({"sleep", "1000"});
  s.env = {{"MARK", "ready"}};
  const auto id = f.create_and_start(s);
  ports::health_probe exec;
  exec.type = ports::health_probe::kind::exec;
  exec.exec = {"sh", "-c", "test -e \"$MARK\""};
  exec.timeout = 5s;
  auto p = f.rt->probe(id, exec);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(p->detail == "exit 1");
  std::ofstream(f.dir() / "ready") << "";
  p = f.rt->probe(id, exec);
  REQUIRE(p);
  CHECK(p->healthy);
  exec.exec = {"sleep", "30"};
  exec.timeout = 200ms;
  p = f.rt->probe(id, exec);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(p->detail == "timed out");
  CHECK(f.rt->probe("proc-nobody-1", exec).error().code == errc::not_found);
  REQUIRE(f.rt->stop(id, 2s));
}

TEST_CASE("process runtime: without cgroups, memory_bytes is enforced as RLIMIT_AS", "[containers][process]") {
  fixture f;
  f.options.cgroups = false;
  f.reopen();
  auto s = f.spec({"python3", "-c", "b = bytearray(512 * 1024 * 1024)\nprint('allocated')"});
  s.limits.memory_bytes = 128ull * 1024 * 1024;
  const auto id = f.create_and_start(s);
  auto c = f.wait_exited(id);
  CHECK(c.exit_code == 1);
  CHECK(c.reason == "exited");
  const auto lines = f.log_lines(id);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.back() == "MemoryError");
  CHECK(decode_state(*read_file(f.dir() / "state.json", 65536))->limits_by == "rlimit");
}

TEST_CASE("process runtime: with a cgroup, memory (oom), pids and cpus are enforced and setsid does not escape",
          "[containers][process][cgroup]") {
  fixture f;
  // Which way limits go on this machine: the first start says it.
  auto probe_spec = f.spec({"sleep", "1000"}, "0193a1c2-0000-7000-8000-00000000c0c0");
  probe_spec.limits.cpus = 0.5;
  probe_spec.limits.pids = 8;
  const auto probe_id = f.create_and_start(probe_spec);
  const auto state = decode_state(*read_file(f.dir("0193a1c2-0000-7000-8000-00000000c0c0") / "state.json", 65536));
  REQUIRE(state);
  if (!state->limits_by.starts_with("cgroup")) {
    WARN("no writable cgroup hierarchy here (limits_by=" << state->limits_by << "): cgroup limits not tested");
    REQUIRE(f.rt->stop(probe_id, 1s));
    return;
  }
  REQUIRE_FALSE(state->cgroups.empty());
  bool cpu_seen = false;
  for (const auto& d : state->cgroups) {
    CHECK(valid_cgroup_path(d, "0193a1c2-0000-7000-8000-00000000c0c0"));
    if (auto q = read_file(fs::path(d) / "cpu.cfs_quota_us", 64)) {
      CHECK(*q == "50000\n");
      cpu_seen = true;
    }
    if (auto q = read_file(fs::path(d) / "cpu.max", 64)) {
      CHECK(*q == "50000 100000\n");
      cpu_seen = true;
    }
    if (auto q = read_file(fs::path(d) / "pids.max", 64)) CHECK(*q == "8\n");
  }
  CHECK(cpu_seen);
  REQUIRE(f.rt->stop(probe_id, 1s));
  for (const auto& d : state->cgroups) CHECK_FALSE(fs::exists(d));  // removed with the container's end

  SECTION("memory: the kernel OOM-kills it, reported as oom") {
    auto s = f.spec({"python3", "-c", "b = b'x' * (512 * 1024 * 1024)\nprint('allocated')"});
    s.limits.memory_bytes = 64ull * 1024 * 1024;
    const auto id = f.create_and_start(s);
    auto c = f.wait_exited(id);
    CHECK(c.exit_code == 137);
    CHECK(c.reason == "oom");
  }
  SECTION("pids: fork fails past the limit, for root too") {
    auto s = f.spec({"python3", "-c",
                     "import os, time\nn = 0\ntry:\n  for i in range(20):\n    if os.fork() == 0:\n"
                     "      time.sleep(1000)\n      os._exit(0)\n    n += 1\nexcept BlockingIOError:\n"
                     "  print('EAGAIN after', n)\n"});
    s.limits.pids = 4;
    const auto id = f.create_and_start(s);
    auto c = f.wait_exited(id);
    CHECK(c.exit_code == 0);
    CHECK(f.log_lines(id) == std::vector<std::string>{"EAGAIN after 3"});
  }
  SECTION("a process that left the group with setsid is stopped too") {
    const auto id = f.create_and_start(f.spec({"sh", "-c", "setsid sleep 1000 & sleep 1000 & wait"}));
    const auto st = decode_state(*read_file(f.dir() / "state.json", 65536));
    REQUIRE(st);
    cgroup_set set{cgroup_set::version::v1, st->cgroups};
    REQUIRE(test::wait_until([&] { return cgroup_pids(set).size() >= 3; }, 30s));
    const auto pids = cgroup_pids(set);
    std::vector<std::pair<pid_t, std::uint64_t>> members;
    for (const pid_t p : pids) members.emplace_back(p, process_start_ticks(p).value_or(0));
    REQUIRE(f.rt->stop(id, 2s));
    for (const auto& [p, ticks] : members) CHECK_FALSE(process_alive(p, ticks));
  }
}

TEST_CASE("process runtime: corrupt state and runtime files are reported, never a crash",
          "[containers][process][hostile]") {
  fixture f;
  auto id = f.rt->create(f.spec({"true"}));
  REQUIRE(id);
  for (const std::string& garbage :
       std::vector<std::string>{"", "{", "null", "[]", "{\"runtime_id\":1}", std::string(70000, 'x'),
                                "{\"runtime_id\":\"" + *id +
                                    "\",\"start\":1,\"status\":\"running\",\"shim_pid\":-5,\"pid\":1,"
                                    "\"pid_start\":0,\"started_at_ms\":0}"}) {
    std::ofstream(f.dir() / "state.json", std::ios::trunc) << garbage;
    auto c = f.rt->inspect(*id);
    REQUIRE(c);
    CHECK(c->status == rstate::exited);
    CHECK(c->reason == "lost");
    CHECK_FALSE(c->exit_code);
    auto all = f.rt->list();
    REQUIRE(all);
    CHECK(all->size() == 1);
  }
  // A running state whose pid is some other live process (pid reuse): not running.
  std::ofstream(f.dir() / "state.json", std::ios::trunc)
      << "{\"runtime_id\":\"" << *id << "\",\"start\":1,\"status\":\"running\",\"shim_pid\":2,\"pid\":" << ::getpid()
      << ",\"pid_start\":1,\"started_at_ms\":0}";
  auto c = f.rt->inspect(*id);
  REQUIRE(c);
  CHECK(c->status == rstate::exited);
  CHECK(c->reason == "lost");
  CHECK(f.rt->stop(*id, 1s));  // and stop never signals that process
  std::ofstream(f.dir() / "runtime.json", std::ios::trunc) << "{\"runtime_id\": [";
  CHECK(f.rt->inspect(*id).error().code == errc::not_found);
  CHECK(f.rt->list()->empty());
}

TEST_CASE("process runtime: the line splitter caps lines at 16 KiB", "[containers][process]") {
  line_splitter s;
  std::vector<std::string> out;
  const auto emit = [&](std::string_view l) { out.emplace_back(l); };
  s.feed("a\nb", emit);
  s.feed(std::string(max_log_line, 'c') + "\n", emit);
  s.feed(std::string(max_log_line + 1, 'd'), emit);
  s.flush(emit);
  REQUIRE(out.size() == 5);
  CHECK(out[0] == "a");
  CHECK(out[1] == "b" + std::string(max_log_line - 1, 'c'));
  CHECK(out[2] == "c");
  CHECK(out[3] == std::string(max_log_line, 'd'));
  CHECK(out[4] == "d");
}
