// The docker runtime end to end (issue 18, point 4): the real atriumd with
// `--container-runtime docker --docker-host unix://…` against a dockerd of the test's own
// (tests/support/dockerd.hpp), running `busybox httpd` from an image imported from Debian's
// busybox-static, with an HTTP health check: started and healthy; killed behind atriumd's
// back and restarted under its policy; adopted after an atriumd restart (still exactly one
// labelled container, running); stopped and removed with nothing left in the daemon.
// Where dockerd cannot run, the test says why and exits 77 (skipped).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/dockerd.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;
using std::chrono::seconds;

constexpr const char* k_image = "atrium-busybox:e2e";

dockerd& daemon() {
  static std::unique_ptr<dockerd> d = [] {
    std::string why;
    auto started = dockerd::start(&why);
    if (!started) skip_test(why);
    if (!started->import_busybox_image(k_image, &why)) {
      started->stop();
      FAIL("cannot import the busybox image: " << why);
    }
    return started;
  }();
  return *d;
}

/// The daemon's containers labelled with `container_id` (all states), as `/containers/json`.
json labelled(const std::string& container_id) {
  const std::string filters = R"({"label":["atrium.container_id=)" + container_id + R"("]})";
  std::string escaped;
  for (char ch : filters) {
    if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_') {
      escaped += ch;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(ch));
      escaped += buf;
    }
  }
  auto r = daemon().api("GET", "/v1.41/containers/json?all=1&filters=" + escaped);
  INFO(r.error << r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

template <class Pred>
json wait_view(const http_client& as, const std::string& id, Pred pred, std::chrono::seconds limit = seconds(60)) {
  json last;
  const bool ok = wait_until(
      [&] {
        auto r = as.get("/v1/containers/" + id);
        if (r.status != 200) return false;
        last = r.json;
        return pred(last);
      },
      limit);
  INFO("view: " << last.dump());
  REQUIRE(ok);
  return last;
}

}  // namespace

TEST_CASE("docker containers through atriumd: healthy, restarted after a kill, adopted, stopped and removed",
          "[e2e][containers][docker]") {
  auto& d = daemon();
  temp_dir dir;
  const int port = free_port();
  auto server = std::make_unique<atriumd_server>(
      dir.path(), std::vector<std::string>{"--container-runtime", "docker", "--docker-host", d.host()});
  auto admin = server->admin();

  auto declared = admin.post(
      "/v1/containers",
      {{"name", "web"},
       {"image", k_image},
       {"command", {"/bin/busybox", "httpd", "-f", "-p", std::to_string(port), "-h", "/www"}},
       {"ports", {port}},
       {"restart", "always"},
       {"limits", {{"memory_bytes", 64 * 1024 * 1024}, {"pids", 64}}},
       {"health", {{"http", {{"port", port}, {"path", "/"}}}, {"interval_s", 1}, {"timeout_s", 2}, {"retries", 2}}}});
  INFO(declared.body);
  REQUIRE(declared.status == 201);
  CHECK(declared.json.at("runtime") == "docker");
  const auto id = declared.json.at("id").get<std::string>();
  REQUIRE(admin.post("/v1/containers/" + id + "/start", json::object()).status == 200);

  auto v =
      wait_view(admin, id, [](const json& c) { return c.at("observed") == "running" && c.at("health") == "healthy"; });
  const auto runtime_id = v.at("runtime_id").get<std::string>();
  auto found = labelled(id);
  REQUIRE(found.size() == 1);
  CHECK(found[0].at("Id") == runtime_id);
  CHECK(found[0].at("State") == "running");
  CHECK(found[0].at("Labels").contains("atrium.instance"));

  // Killed behind atriumd's back: exited, then restarted under "always".
  REQUIRE(d.api("POST", "/v1.41/containers/" + runtime_id + "/kill").status == 204);
  v = wait_view(admin, id, [](const json& c) {
    return c.at("observed") == "running" && c.at("restarts").get<int>() >= 1 && c.at("health") == "healthy";
  });
  CHECK_FALSE(v.at("exit_code").is_null());

  // atriumd restarts (SIGKILL): the running container is adopted, never duplicated.
  server->stop(SIGKILL);
  server->start();
  admin = server->admin();
  v = wait_view(admin, id, [](const json& c) { return c.at("observed") == "running"; });
  found = labelled(id);
  REQUIRE(found.size() == 1);
  CHECK(found[0].at("State") == "running");
  CHECK(found[0].at("Id") == v.at("runtime_id"));

  // Stop, remove: nothing of it is left in the daemon.
  REQUIRE(admin.post("/v1/containers/" + id + "/stop", json::object()).status == 200);
  wait_view(admin, id, [](const json& c) { return c.at("observed") == "stopped"; });
  auto removed = admin.request("DELETE", "/v1/containers/" + id);
  INFO(removed.body);
  REQUIRE(removed.status < 300);
  CHECK(wait_until([&] { return labelled(id).empty(); }, seconds(30)));
  CHECK(server->stop() == 0);
}
