// The `docker` container runtime (adapters/docker) against a real Docker Engine: each
// test process starts its own dockerd as root on a socket in a temp dir
// (tests/support/dockerd.hpp) and imports an image made from Debian's busybox-static.
// Where dockerd cannot run, the tests print why and exit 77 (CTest: skipped).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "adapters/docker/docker_runtime.hpp"
#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"

namespace {

using atrium::test::free_port;

using namespace std::chrono_literals;
using atrium::errc;
using atrium::ports::runtime_container;
using atrium::ports::runtime_event;
using nlohmann::json;

constexpr const char* k_image = "atrium-busybox:1";

// The process's daemon, started once, stopped at exit.
atrium::test::dockerd& daemon() {
  static std::unique_ptr<atrium::test::dockerd> d = [] {
    std::string why;
    auto started = atrium::test::dockerd::start(&why);
    if (!started) atrium::test::skip_test(why);
    if (!started->import_busybox_image(k_image, &why)) {
      started->stop();
      FAIL("cannot import the busybox image: " << why);
    }
    return started;
  }();
  return *d;
}

std::unique_ptr<atrium::ports::container_runtime> runtime(const std::string& instance) {
  atrium::docker_adapter::docker_runtime_options o;
  o.host = daemon().host();
  o.instance = instance;
  o.pull_timeout = 30s;
  auto rt = atrium::docker_adapter::make_docker_runtime(o);
  if (!rt) FAIL("make_docker_runtime: " << rt.error().message);
  return std::move(*rt);
}

// What a watch reported.
struct collector {
  std::mutex mu;
  std::vector<runtime_event> events;
  void operator()(const runtime_event& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  }
  std::optional<runtime_event> find(runtime_event::kind k, const std::string& id) {
    std::lock_guard lock(mu);
    for (const auto& e : events) {
      if (e.type == k && e.runtime_id == id) return e;
    }
    return std::nullopt;
  }
  void clear() {
    std::lock_guard lock(mu);
    events.clear();
  }
};

atrium::ports::container_spec httpd_spec(const std::string& container_id, int port) {
  atrium::ports::container_spec s;
  s.container_id = container_id;
  s.name = "web";
  s.image = k_image;
  s.command = {"/bin/busybox", "httpd", "-f", "-p", std::to_string(port), "-h", "/www"};
  s.env = {{"GREETING", "hi"}};
  s.ports = {port};
  s.limits.memory_bytes = 64ull << 20;
  s.limits.cpus = 0.5;
  s.limits.pids = 64;
  s.spec_version = 3;
  return s;
}

runtime_container::state state_of(atrium::ports::container_runtime& rt, const std::string& id) {
  auto c = rt.inspect(id);
  REQUIRE(c);
  return c->status;
}

// Joins a thread that runs until `stop`, also when a REQUIRE fails before the join.
struct joiner {
  std::thread& thread;
  std::atomic<bool>& stop;
  ~joiner() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

bool contains(const std::vector<runtime_container>& list, const std::string& id) {
  return std::any_of(list.begin(), list.end(), [&](const auto& c) { return c.runtime_id == id; });
}

}  // namespace

TEST_CASE("docker runtime: busybox httpd is created, probed, killed, restarted, adopted, stopped and removed",
          "[docker]") {
  auto& d = daemon();
  auto rt = runtime("instance-a");
  collector seen;
  auto watch = rt->watch([&](const runtime_event& e) { seen(e); });

  const int port = free_port();
  const auto spec = httpd_spec("c0ffee00-1111-4222-8333-444455556666", port);
  auto created = rt->create(spec);
  REQUIRE(created);
  const std::string id = *created;

  // What the daemon was asked to run.
  const auto raw = d.api("GET", "/v1.41/containers/" + id + "/json");
  REQUIRE(raw.status == 200);
  const auto doc = json::parse(raw.body);
  CHECK(doc["Name"] == "/atrium-web-c0ffee00");
  CHECK(doc["Config"]["Labels"]["atrium.container_id"] == spec.container_id);
  CHECK(doc["Config"]["Labels"]["atrium.instance"] == "instance-a");
  CHECK(doc["Config"]["Labels"]["atrium.spec_version"] == "3");
  CHECK(doc["HostConfig"]["NetworkMode"] == "host");
  CHECK(doc["HostConfig"]["Memory"] == 64 << 20);
  CHECK(doc["HostConfig"]["NanoCpus"] == 500000000);
  CHECK(doc["HostConfig"]["PidsLimit"] == 64);
  CHECK(doc["HostConfig"]["RestartPolicy"]["Name"] == "no");
  CHECK(std::find(doc["Config"]["Env"].begin(), doc["Config"]["Env"].end(), "GREETING=hi") !=
        doc["Config"]["Env"].end());

  auto c = rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == runtime_container::state::created);
  CHECK(c->container_id == spec.container_id);
  CHECK(c->spec_version == 3);

  REQUIRE(rt->start(id));
  c = rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == runtime_container::state::running);
  CHECK(c->pid.has_value());
  CHECK(c->started_at.has_value());
  REQUIRE(rt->start(id));  // already running: fine

  // Health probes from the host (the container shares its network).
  atrium::ports::health_probe http;
  http.type = atrium::ports::health_probe::kind::http;
  http.port = port;
  http.path = "/index.html";
  http.timeout = 2s;
  CHECK(atrium::test::wait_until(
      [&] {
        auto p = rt->probe(id, http);
        return p && p->healthy;
      },
      10s));
  auto bad_path = http;
  bad_path.path = "/missing";
  auto p = rt->probe(id, bad_path);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(p->detail == "HTTP 404");
  atrium::ports::health_probe tcp;
  tcp.type = atrium::ports::health_probe::kind::tcp;
  tcp.port = port;
  tcp.timeout = 2s;
  p = rt->probe(id, tcp);
  REQUIRE(p);
  CHECK(p->healthy);
  atrium::ports::health_probe exec;
  exec.type = atrium::ports::health_probe::kind::exec;
  exec.exec = {"/bin/sh", "-c", "test \"$GREETING\" = hi"};
  exec.timeout = 5s;
  p = rt->probe(id, exec);
  REQUIRE(p);
  CHECK(p->healthy);
  exec.exec = {"/bin/sh", "-c", "exit 3"};
  p = rt->probe(id, exec);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(p->detail == "exit code 3");
  exec.exec = {"/bin/sleep", "30"};
  exec.timeout = 300ms;
  p = rt->probe(id, exec);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(p->detail.find("timed out") != std::string::npos);
  exec.exec = {"/no/such/program"};
  exec.timeout = 5s;
  p = rt->probe(id, exec);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);

  // Killed behind our back: the watch reports the exit, inspect the code.
  REQUIRE(d.api("POST", "/v1.41/containers/" + id + "/kill?signal=KILL").status == 204);
  REQUIRE(atrium::test::wait_until([&] { return seen.find(runtime_event::kind::exited, id).has_value(); }, 20s));
  const auto died = seen.find(runtime_event::kind::exited, id);
  CHECK(died->exit_code == 137);
  CHECK(died->reason == "killed");
  CHECK(died->container_id == spec.container_id);
  c = rt->inspect(id);
  REQUIRE(c);
  CHECK(c->status == runtime_container::state::exited);
  CHECK(c->exit_code == 137);
  CHECK(c->reason == "killed");
  CHECK_FALSE(c->pid.has_value());
  p = rt->probe(id, tcp);
  REQUIRE(p);
  CHECK_FALSE(p->healthy);
  CHECK(p->detail == "not running");

  // Started again.
  REQUIRE(rt->start(id));
  CHECK(state_of(*rt, id) == runtime_container::state::running);
  CHECK(atrium::test::wait_until(
      [&] {
        auto again = rt->probe(id, http);
        return again && again->healthy;
      },
      10s));

  // Adoption: a second runtime object of the same instance finds it by label.
  {
    auto adopter = runtime("instance-a");
    auto list = adopter->list();
    REQUIRE(list);
    REQUIRE(list->size() == 1);
    CHECK(list->front().runtime_id == id);
    CHECK(list->front().container_id == spec.container_id);
    CHECK(list->front().spec_version == 3);
    CHECK(list->front().status == runtime_container::state::running);
  }
  // Another instance's runtime neither sees nor touches it.
  {
    auto other = runtime("instance-b");
    auto list = other->list();
    REQUIRE(list);
    CHECK_FALSE(contains(*list, id));
    auto i = other->inspect(id);
    REQUIRE_FALSE(i);
    CHECK(i.error().code == errc::not_found);
    auto s = other->stop(id, 1s);
    REQUIRE_FALSE(s);
    CHECK(s.error().code == errc::not_found);
    CHECK(other->remove(id));  // not ours: as if absent
    CHECK(state_of(*rt, id) == runtime_container::state::running);
  }

  // Stop: SIGTERM (busybox httpd ends on it), then exited.
  seen.clear();
  REQUIRE(rt->stop(id, 5s));
  CHECK(state_of(*rt, id) == runtime_container::state::exited);
  REQUIRE(rt->stop(id, 5s));  // not running: fine
  CHECK(atrium::test::wait_until([&] { return seen.find(runtime_event::kind::exited, id).has_value(); }, 20s));

  // Remove: the watch reports it, nothing is left.
  REQUIRE(rt->remove(id));
  CHECK(atrium::test::wait_until([&] { return seen.find(runtime_event::kind::removed, id).has_value(); }, 20s));
  auto gone = rt->inspect(id);
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == errc::not_found);
  REQUIRE(rt->remove(id));  // again: fine
  auto s = rt->start(id);
  REQUIRE_FALSE(s);
  CHECK(s.error().code == errc::not_found);
  const auto all = d.api("GET", "/v1.41/containers/json?all=1");
  REQUIRE(all.status == 200);
  CHECK(json::parse(all.body).empty());
  auto list = rt->list();
  REQUIRE(list);
  CHECK(list->empty());
}

TEST_CASE("docker runtime: a missing image or a bad spec is a clear invalid_argument", "[docker]") {
  auto& d = daemon();
  auto rt = runtime("instance-a");
  auto spec = httpd_spec("d00d0000-1111-4222-8333-444455556666", free_port());
  spec.image = "atrium-missing:nope";
  auto r = rt->create(spec);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_argument);
  INFO(r.error().message);
  CHECK(r.error().message.find("atrium-missing:nope") != std::string::npos);
  CHECK(r.error().message.find("cannot be pulled") != std::string::npos);

  spec.image = k_image;
  spec.name = "Bad Name";
  r = rt->create(spec);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_argument);

  spec.name = "web";
  spec.limits.memory_bytes = 1024;
  r = rt->create(spec);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_argument);
  // Within the port's range but under the daemon's minimum: its 400, its message.
  spec.limits.memory_bytes = 5ull << 20;
  r = rt->create(spec);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_argument);
  INFO(r.error().message);
  CHECK(r.error().message.find("6MB") != std::string::npos);

  // An unknown runtime id, or one that is not an id at all.
  for (const std::string& id : std::vector<std::string>{"0123456789ab", "../../etc", "", std::string(300, 'a')}) {
    auto i = rt->inspect(id);
    REQUIRE_FALSE(i);
    CHECK(i.error().code == errc::not_found);
  }
  const auto all = d.api("GET", "/v1.41/containers/json?all=1");
  CHECK(json::parse(all.body).empty());

  // Hosts other than unix:// are refused with the supported form named.
  atrium::docker_adapter::docker_runtime_options o;
  o.instance = "x";
  o.host = "tcp://127.0.0.1:2375";
  auto bad = atrium::docker_adapter::make_docker_runtime(o);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == errc::invalid_argument);
  CHECK(bad.error().message.find("unix://") != std::string::npos);
  // A socket nobody listens on.
  o.host = "unix://" + (d.dir() / "nobody.sock").string();
  bad = atrium::docker_adapter::make_docker_runtime(o);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == errc::unavailable);
}

TEST_CASE("docker runtime: logs, tail and follow", "[docker]") {
  auto& d = daemon();
  auto rt = runtime("instance-a");
  atrium::ports::container_spec spec;
  spec.container_id = "10900000-1111-4222-8333-444455556666";
  spec.name = "talker";
  spec.image = k_image;
  // Three lines, one 40000-byte line (cut at 16 KiB), then a tick every 100 ms.
  spec.command = {"/bin/sh", "-c",
                  "echo one; echo two 1>&2; echo three; head -c 40000 /dev/zero | tr '\\0' a; echo; "
                  "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done"};
  auto id = rt->create(spec);
  REQUIRE(id);
  REQUIRE(rt->start(*id));
  std::atomic<bool> never{false};

  std::vector<std::string> lines;
  auto collect = [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  };
  // Tail: wait until the first ticks are logged, then read the last lines.
  REQUIRE(atrium::test::wait_until(
      [&] {
        lines.clear();
        atrium::ports::log_request all{10000, false};
        return rt->logs(*id, all, collect, never) && lines.size() >= 9;
      },
      20s));
  REQUIRE(lines.size() >= 9);
  CHECK(std::count(lines.begin(), lines.end(), "one") == 1);
  CHECK(std::count(lines.begin(), lines.end(), "two") == 1);
  CHECK(std::count(lines.begin(), lines.end(), "three") == 1);
  const auto big = std::find(lines.begin(), lines.end(), std::string(16384, 'a'));
  REQUIRE(big != lines.end());
  REQUIRE(big + 2 < lines.end());
  CHECK(*(big + 1) == std::string(16384, 'a'));
  CHECK(*(big + 2) == std::string(40000 - 2 * 16384, 'a'));
  for (const auto& l : lines) CHECK(l.size() <= 16384);

  lines.clear();
  REQUIRE(rt->logs(*id, {2, false}, collect, never));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].starts_with("tick"));
  CHECK(lines[1].starts_with("tick"));

  // Follow: new lines as they come, until the sink says stop.
  lines.clear();
  REQUIRE(rt->logs(
      *id, {1, true},
      [&](std::string_view l) {
        lines.emplace_back(l);
        return lines.size() < 4;
      },
      never));
  REQUIRE(lines.size() == 4);
  for (const auto& l : lines) CHECK(l.starts_with("tick"));
  const auto n0 = std::stoi(lines[0].substr(4));
  CHECK(std::stoi(lines[3].substr(4)) == n0 + 3);

  // Follow ends when `stop` becomes true, and when the container is removed.
  std::atomic<bool> stop{false};
  std::atomic<int> got{0};
  std::optional<atrium::result<void>> followed;
  std::thread follower([&] {
    followed = rt->logs(
        *id, {0, true},
        [&](std::string_view) {
          ++got;
          return true;
        },
        stop);
  });
  joiner join_follower{follower, stop};
  REQUIRE(atrium::test::wait_until([&] { return got.load() >= 2; }, 10s));
  stop = true;
  follower.join();
  REQUIRE(followed.has_value());
  CHECK(followed->has_value());

  // Follow goes on across a stop and a start (the script starts again with "one"), and
  // ends when the container is removed.
  followed.reset();
  std::mutex mu;
  std::vector<std::string> followed_lines;
  auto followed_has = [&](const std::string& l) {
    std::lock_guard lock(mu);
    return std::find(followed_lines.begin(), followed_lines.end(), l) != followed_lines.end();
  };
  std::atomic<bool> not_stopped{false};
  std::thread until_removed([&] {
    followed = rt->logs(
        *id, {0, true},
        [&](std::string_view l) {
          std::lock_guard lock(mu);
          followed_lines.emplace_back(l);
          return true;
        },
        not_stopped);
  });
  joiner join_until_removed{until_removed, not_stopped};
  REQUIRE(atrium::test::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return !followed_lines.empty();
      },
      10s));
  CHECK_FALSE(followed_has("one"));
  REQUIRE(rt->stop(*id, 5s));
  REQUIRE(rt->start(*id));
  CHECK(atrium::test::wait_until([&] { return followed_has("one") && followed_has("tick1"); }, 20s));
  REQUIRE(rt->remove(*id));
  until_removed.join();
  REQUIRE(followed.has_value());
  CHECK(followed->has_value());

  auto missing = rt->logs(*id, {10, false}, collect, never);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == errc::not_found);
  CHECK(json::parse(d.api("GET", "/v1.41/containers/json?all=1").body).empty());
}

TEST_CASE("docker runtime: the watch reconnects after the daemon restarts, and stops promptly", "[docker]") {
  auto& d = daemon();
  auto rt = runtime("instance-a");
  collector seen;
  auto watch = rt->watch([&](const runtime_event& e) { seen(e); });

  atrium::ports::container_spec spec;
  spec.container_id = "5ee00000-1111-4222-8333-444455556666";
  spec.name = "sleeper";
  spec.image = k_image;
  spec.command = {"/bin/sleep", "1000"};
  auto id = rt->create(spec);
  REQUIRE(id);

  std::string why;
  REQUIRE(d.restart(&why));
  // The daemon is back: an exit after the restart reaches the same watch.
  REQUIRE(rt->start(*id));
  REQUIRE(d.api("POST", "/v1.41/containers/" + *id + "/kill?signal=KILL").status == 204);
  REQUIRE(atrium::test::wait_until([&] { return seen.find(runtime_event::kind::exited, *id).has_value(); }, 30s));
  CHECK(seen.find(runtime_event::kind::exited, *id)->exit_code == 137);

  REQUIRE(rt->remove(*id));
  REQUIRE(atrium::test::wait_until([&] { return seen.find(runtime_event::kind::removed, *id).has_value(); }, 20s));
  // Destroying the handle closes the stream and joins its thread (a hang here is the
  // test's timeout).
  watch.reset();
}
