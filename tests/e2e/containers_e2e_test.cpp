/// Containers run (issue 18), end to end against the real atriumd with the `process`
/// runtime: a `python3 -m http.server` container with an HTTP health check becomes started
/// and healthy; `kill -9` of its process → exited → restarted after its back-off; a
/// command that exits at once shows the growing back-off (1 s, 2 s, 4 s); PATCH rolls it;
/// logs as a tail and followed over SSE; stop leaves no process; after a SIGKILL (and a
/// clean stop) of atriumd the container is adopted and exactly one such process runs;
/// bad specs are clear 4xx.
///
/// Container processes are found by a /proc scan for a marker in their argv (the test's
/// temp dir); the `process_guard` SIGKILLs every process carrying it when the test ends,
/// also after a failure (tests stop by pid what they start).

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "events/schedule/cron.hpp"
#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"
#include "tests/support/raw_client.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;
using std::chrono::seconds;

/// Pids of the processes whose command line contains `marker` (never this process).
std::vector<pid_t> processes_with(const std::string& marker) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const pid_t pid = std::stoi(name);
    if (pid == getpid()) continue;
    std::ifstream f(entry.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(marker) == std::string::npos) continue;
    // A zombie has no command line; one that is stopping may still show it: skip zombies.
    std::ifstream st(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') continue;
    out.push_back(pid);
  }
  return out;
}

/// Pids whose argv[0] is `program` and that carry `marker` (the container's own process,
/// not its supervisor).
std::vector<pid_t> containers_with(const std::string& program, const std::string& marker) {
  std::vector<pid_t> out;
  for (pid_t pid : processes_with(marker)) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
    std::string argv0;
    std::getline(f, argv0, '\0');
    if (std::filesystem::path(argv0).filename() == program) out.push_back(pid);
  }
  return out;
}

/// SIGKILLs every process carrying `marker` when destroyed (after the server stopped).
struct process_guard {
  std::string marker;
  ~process_guard() {
    for (int round = 0; round < 3; ++round) {
      for (pid_t pid : processes_with(marker)) ::kill(pid, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
};

json view_of(const http_client& as, const std::string& id) {
  auto r = as.get("/v1/containers/" + id);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json;
}

/// Waits (up to `limit`) until the container's view satisfies `pred`; fails with the view.
template <class Pred>
json wait_view(const http_client& as, const std::string& id, Pred pred, std::chrono::milliseconds limit = seconds(30)) {
  json last;
  const bool ok = wait_until(
      [&] {
        last = view_of(as, id);
        return pred(last);
      },
      limit);
  INFO("view: " << last.dump());
  REQUIRE(ok);
  return last;
}

/// Milliseconds between two event times (RFC 3339 with microseconds).
std::int64_t ms_between(const json& a, const json& b) {
  const auto parse = [](const std::string& t) {
    auto whole = atrium::parse_utc(t);
    REQUIRE(whole.has_value());
    std::int64_t us = 0;
    if (auto dot = t.find('.'); dot != std::string::npos) {
      std::string frac = t.substr(dot + 1, t.find('Z') - dot - 1);
      frac.resize(6, '0');
      us = std::stoll(frac);
    }
    return std::chrono::duration_cast<std::chrono::microseconds>(whole->time_since_epoch()).count() + us;
  };
  return (parse(b.get<std::string>()) - parse(a.get<std::string>())) / 1000;
}

json events_of(const http_client& as, const std::string& id) { return stream_events(as, "container-" + id); }

std::vector<json> of_type(const json& events, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : events) {
    if (e.at("type") == type) out.push_back(e);
  }
  return out;
}

json http_server_spec(const std::string& name, const std::filesystem::path& www, int port) {
  std::filesystem::create_directories(www);
  std::ofstream(www / "index.html") << "ok\n";
  return {{"name", name},
          {"command",
           {"python3", "-u", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1", "--directory",
            www.string()}},
          {"ports", {port}},
          {"restart", "on-failure"},
          {"health", {{"http", {{"port", port}, {"path", "/"}}}, {"interval_s", 1}, {"timeout_s", 2}, {"retries", 2}}}};
}

}  // namespace

TEST_CASE("a process container with an HTTP health check runs, heals, rolls, logs and stops", "[e2e][containers]") {
  temp_dir dir;
  process_guard guard{dir.path().string()};
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto www = dir.path() / "www";
  const int port = free_port();

  auto declared = admin.post("/v1/containers", http_server_spec("web", www, port));
  INFO(declared.body);
  REQUIRE(declared.status == 201);
  const auto id = id_of(declared);
  CHECK(declared.json.at("runtime") == "process");
  CHECK(declared.json.at("spec").at("health").at("http").at("port") == port);
  REQUIRE(admin.post("/v1/containers/" + id + "/start", json::object()).status == 200);

  // started, then healthy
  auto v =
      wait_view(admin, id, [](const json& c) { return c.at("observed") == "running" && c.at("health") == "healthy"; });
  const auto first_runtime_id = v.at("runtime_id").get<std::string>();
  CHECK_FALSE(first_runtime_id.empty());
  // The served view has the spec in the API's shape, not the row's internal fields.
  for (const auto& served : {v, admin.get("/v1/containers").json.at("containers").at(0)}) {
    CHECK_FALSE(served.contains("limits_raw"));
    CHECK_FALSE(served.contains("health_raw"));
    CHECK_FALSE(served.contains("removed"));
  }
  auto pids = containers_with("python3", www.string());
  REQUIRE(pids.size() == 1);
  const pid_t first = pids.front();
  auto ev = events_of(admin, id);
  CHECK(count_of(ev, "container.started") == 1);
  const auto health = of_type(ev, "container.health_changed");
  REQUIRE(health.size() >= 2);
  CHECK(health.front().at("data").at("health") == "starting");
  CHECK(health.back().at("data").at("health") == "healthy");
  CHECK(ev.back().at("actor") == "system");

  // kill -9 → exited (killed, 137) → restarted after 1 s → started again
  REQUIRE(::kill(first, SIGKILL) == 0);
  v = wait_view(admin, id, [&](const json& c) {
    return c.at("observed") == "running" && c.at("restarts") == 1 && c.at("health") == "healthy";
  });
  pids = containers_with("python3", www.string());
  REQUIRE(pids.size() == 1);
  CHECK(pids.front() != first);
  ev = events_of(admin, id);
  const auto exited = of_type(ev, "container.exited");
  REQUIRE(exited.size() == 1);
  CHECK(exited[0].at("data").at("exit_code") == 137);
  CHECK(exited[0].at("data").at("reason") == "killed");
  const auto restarted = of_type(ev, "container.restarted");
  REQUIRE(restarted.size() == 1);
  CHECK(restarted[0].at("data") == json{{"attempt", 1}, {"backoff_ms", 1000}});
  const auto started = of_type(ev, "container.started");
  REQUIRE(started.size() == 2);
  // The back-off was waited: the second start is recorded at least 1 s after the restart.
  CHECK(ms_between(restarted[0].at("time"), started[1].at("time")) >= 1000);

  SECTION("logs: a tail as text, and followed as Server-Sent Events") {
    // The health checks make http.server log a request line each second.
    REQUIRE(wait_until(
        [&] { return admin.get("/v1/containers/" + id + "/logs?tail=5").body.find("GET / ") != std::string::npos; },
        seconds(10)));
    auto tail = admin.get("/v1/containers/" + id + "/logs?tail=3");
    CHECK(tail.status == 200);
    CHECK(tail.headers.at("content-type").starts_with("text/plain"));
    CHECK(std::count(tail.body.begin(), tail.body.end(), '\n') <= 3);
    const auto token = server.login("admin", k_admin_password);
    const auto follow =
        raw_exchange(server.address,
                     "GET /v1/containers/" + id +
                         "/logs?tail=1&follow=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n",
                     raw_options{.deadline = std::chrono::milliseconds(3500)});
    INFO(follow.leftover);
    CHECK(follow.end == raw_end::timeout);  // it streams until the client goes
    CHECK(follow.leftover.find("text/event-stream") != std::string::npos);
    // The tail line plus new request lines from the health checks while following.
    std::size_t data_lines = 0;
    for (std::size_t at = 0; (at = follow.leftover.find("data: ", at)) != std::string::npos; ++at) ++data_lines;
    CHECK(data_lines >= 2);
    // Bad input
    CHECK(admin.get("/v1/containers/" + id + "/logs?tail=10001").status == 400);
    CHECK(admin.get("/v1/containers/" + id + "/logs?follow=maybe").status == 400);
  }

  SECTION("PATCH changes the spec and rolls the container") {
    auto patched = admin.request("PATCH", "/v1/containers/" + id, json{{"env", {{"ROLLED", "1"}}}}.dump());
    INFO(patched.body);
    REQUIRE(patched.status == 200);
    v = wait_view(admin, id, [&](const json& c) {
      return c.at("observed") == "running" && c.at("runtime_id") != started[1].at("data").at("runtime_id") &&
             c.at("env").contains("ROLLED");
    });
    ev = events_of(admin, id);
    CHECK(count_of(ev, "container.spec_changed") == 1);
    CHECK(of_type(ev, "container.exited").back().at("data").at("reason") == "rolled");
    REQUIRE(wait_until([&] { return containers_with("python3", www.string()).size() == 1; }, seconds(5)));
    const auto now = containers_with("python3", www.string());
    REQUIRE(now.size() == 1);
    std::ifstream env("/proc/" + std::to_string(now.front()) + "/environ");
    std::string environ((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
    CHECK(environ.find("ROLLED=1") != std::string::npos);
    // A bad change is refused and changes nothing.
    auto bad = admin.request("PATCH", "/v1/containers/" + id, json{{"ports", {port + 1}}}.dump());
    CHECK(bad.status == 400);
    CHECK(bad.json.at("error").at("details").at("field") == "health.port");
  }

  // stop → stopped, and no process left
  REQUIRE(admin.post("/v1/containers/" + id + "/stop", json::object()).status == 200);
  wait_view(admin, id, [](const json& c) { return c.at("observed") == "stopped"; });
  CHECK(wait_until([&] { return containers_with("python3", www.string()).empty(); }, seconds(5)));
  server.stop();
}

TEST_CASE("a command that exits at once is restarted with a growing back-off", "[e2e][containers]") {
  temp_dir dir;
  process_guard guard{dir.path().string()};
  atriumd_server server(dir.path());
  auto admin = server.admin();
  auto declared =
      admin.post("/v1/containers", {{"name", "crasher"}, {"command", {"sh", "-c", "exit 3", dir.path().string()}}});
  REQUIRE(declared.status == 201);
  const auto id = id_of(declared);
  REQUIRE(admin.post("/v1/containers/" + id + "/start", json::object()).status == 200);
  // 1 s + 2 s + 4 s of back-off: the third restart is started after about 7 s.
  auto v = wait_view(
      admin, id, [](const json& c) { return c.at("restarts") >= 3; }, seconds(30));
  CHECK(v.at("exit_code") == 3);
  const auto ev = events_of(admin, id);
  const auto restarted = of_type(ev, "container.restarted");
  REQUIRE(restarted.size() >= 3);
  CHECK(restarted[0].at("data").at("backoff_ms") == 1000);
  CHECK(restarted[1].at("data").at("backoff_ms") == 2000);
  CHECK(restarted[2].at("data").at("backoff_ms") == 4000);
  for (const auto& e : of_type(ev, "container.exited")) {
    CHECK(e.at("data").at("exit_code") == 3);
    CHECK(e.at("data").at("reason") == "exited");
  }
  // Each start after a restart waited its back-off.
  const auto started = of_type(ev, "container.started");
  REQUIRE(started.size() >= 3);
  for (std::size_t i = 0; i + 1 < started.size() && i < 2; ++i) {
    CHECK(ms_between(restarted[i].at("time"), started[i + 1].at("time")) >= restarted[i].at("data").at("backoff_ms"));
  }
  REQUIRE(admin.post("/v1/containers/" + id + "/stop", json::object()).status == 200);
  wait_view(admin, id, [](const json& c) { return c.at("observed") == "stopped"; });

  SECTION("restart never leaves it exited") {
    auto once =
        admin.post("/v1/containers",
                   {{"name", "once"}, {"restart", "never"}, {"command", {"sh", "-c", "exit 4", dir.path().string()}}});
    REQUIRE(once.status == 201);
    const auto once_id = id_of(once);
    REQUIRE(admin.post("/v1/containers/" + once_id + "/start", json::object()).status == 200);
    auto w = wait_view(admin, once_id, [](const json& c) { return c.at("observed") == "exited"; });
    CHECK(w.at("exit_code") == 4);
    std::this_thread::sleep_for(seconds(2));  // nothing follows: no restart under `never`
    CHECK(count_of(events_of(admin, once_id), "container.restarted") == 0);
  }
  server.stop();
}

TEST_CASE("after a SIGKILL or a clean stop of atriumd the container is adopted, never duplicated",
          "[e2e][containers]") {
  temp_dir dir;
  process_guard guard{dir.path().string()};
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const auto marker = (dir.path() / "adopt-me").string();
  auto declared =
      admin.post("/v1/containers", {{"name", "sleeper"},
                                    {"restart", "always"},
                                    {"command", {"python3", "-c", "import time\nwhile True: time.sleep(1)", marker}}});
  REQUIRE(declared.status == 201);
  const auto id = id_of(declared);
  REQUIRE(admin.post("/v1/containers/" + id + "/start", json::object()).status == 200);
  auto v = wait_view(admin, id, [](const json& c) { return c.at("observed") == "running"; });
  const auto runtime_id = v.at("runtime_id");
  REQUIRE(wait_until([&] { return containers_with("python3", marker).size() == 1; }, seconds(5)));
  const pid_t pid = containers_with("python3", marker).front();

  for (int sig : {SIGKILL, SIGTERM}) {
    INFO("atriumd stopped with signal " << sig);
    server.stop(sig);
    CHECK(containers_with("python3", marker) == std::vector<pid_t>{pid});  // it outlives atriumd
    server.start();
    admin = server.admin();
    // The reconciler lists the runtime and adopts: same runtime id, same process, no start.
    REQUIRE(wait_until(
        [&] { return atriumd_server::slurp(server.log).find("adopted container_id=" + id) != std::string::npos; },
        seconds(15)));
    std::this_thread::sleep_for(seconds(2));  // a duplicate would have been started by now
    v = view_of(admin, id);
    CHECK(v.at("observed") == "running");
    CHECK(v.at("runtime_id") == runtime_id);
    CHECK(containers_with("python3", marker) == std::vector<pid_t>{pid});
    CHECK(count_of(events_of(admin, id), "container.started") == 1);
    std::filesystem::rename(server.log, server.log.string() + "." + std::to_string(sig));
  }

  SECTION("a container gone while atriumd was down is started again, as an event") {
    server.stop(SIGKILL);
    ::kill(pid, SIGKILL);
    REQUIRE(wait_until([&] { return containers_with("python3", marker).empty(); }, seconds(5)));
    server.start();
    admin = server.admin();
    v = wait_view(admin, id, [&](const json& c) { return c.at("observed") == "running" && c.at("restarts") == 1; });
    const auto ev = events_of(admin, id);
    const auto exited = of_type(ev, "container.exited");
    REQUIRE(exited.size() == 1);
    CHECK(exited[0].at("data").at("reason") == "killed");  // the shim recorded it while atriumd was down
    REQUIRE(wait_until([&] { return containers_with("python3", marker).size() == 1; }, seconds(5)));
  }

  REQUIRE(admin.post("/v1/containers/" + id + "/stop", json::object()).status == 200);
  wait_view(admin, id, [](const json& c) { return c.at("observed") == "stopped"; });
  CHECK(wait_until([&] { return containers_with("python3", marker).empty(); }, seconds(5)));
  REQUIRE(admin.request("DELETE", "/v1/containers/" + id).status == 200);
  server.stop();
}

TEST_CASE("bad container specs are refused with a clear 4xx naming the field", "[e2e][containers][hostile]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();
  const json ok{{"name", "x"}, {"command", {"sleep", "1"}}, {"ports", {8080}}};
  const auto with = [&](const json& patch) {
    auto body = ok;
    body.merge_patch(patch);
    return body;
  };
  struct bad_case {
    const char* what;
    json body;
    const char* field;
  };
  const std::vector<bad_case> cases{
      {"empty command", with({{"command", json::array()}}), "command"},
      {"no command (process)", json{{"name", "x"}}, "command"},
      {"unknown runtime", with({{"runtime", "kubernetes"}}), "runtime"},
      {"docker without an image", with({{"runtime", "docker"}}), "image"},
      {"negative memory", with({{"limits", {{"memory_bytes", -1}}}}), "limits.memory_bytes"},
      {"negative cpus", with({{"limits", {{"cpus", -0.5}}}}), "limits.cpus"},
      {"fractional pids", with({{"limits", {{"pids", 1.5}}}}), "limits.pids"},
      {"unknown limit", with({{"limits", {{"disk", 1}}}}), "limits.disk"},
      {"limits not an object", with({{"limits", 5}}), "limits"},
      {"health port not declared", with({{"health", {{"http", {{"port", 9090}, {"path", "/"}}}}}}), "health.port"},
      {"health with two kinds", with({{"health", {{"tcp", {{"port", 8080}}}, {"exec", {"true"}}}}}), "health"},
      {"health with no kind", with({{"health", {{"interval_s", 5}}}}), "health"},
      {"health interval 0", with({{"health", {{"tcp", {{"port", 8080}}}, {"interval_s", 0}}}}), "health.interval_s"},
      {"health timeout as a string", with({{"health", {{"tcp", {{"port", 8080}}}, {"timeout_s", "5"}}}}),
       "health.timeout_s"},
      {"negative start period", with({{"health", {{"tcp", {{"port", 8080}}}, {"start_period_s", -1}}}}),
       "health.start_period_s"},
      {"unknown restart", with({{"restart", "sometimes"}}), "restart"},
  };
  for (const auto& c : cases) {
    INFO(c.what << ": " << c.body.dump());
    auto r = admin.post("/v1/containers", c.body);
    INFO(r.body);
    CHECK(r.status == 400);
    CHECK(r.json.at("error").at("code") == "invalid_argument");
    CHECK(r.json.at("error").at("details").at("field") == c.field);
  }
  auto made = admin.post("/v1/containers", ok);
  REQUIRE(made.status == 201);
  const auto id = id_of(made);
  auto r = admin.request("PATCH", "/v1/containers/" + id, R"({"runtime":"docker"})");
  CHECK(r.status == 400);
  CHECK(r.json.at("error").at("details").at("field") == "runtime");
  r = admin.request("PATCH", "/v1/containers/" + id, R"({"name":"y"})");
  CHECK(r.status == 400);
  r = admin.request("PATCH", "/v1/containers/" + id, "[1]");
  CHECK(r.status == 400);
  CHECK(admin.request("PATCH", "/v1/containers/nope", R"({"env":{}})").status == 404);
  // logs of a container that never ran
  CHECK(admin.get("/v1/containers/" + id + "/logs").status == 404);
  server.stop();
}
