// Crash safety: concurrent writers against the real atriumd, SIGKILL mid-load, restart,
// and check that nothing acknowledged is lost or doubled, positions are gapless, the
// hash chain verifies and the projections catch up with the log.
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <set>
#include <sys/wait.h>
#include <thread>

#include "tests/support/atriumd.hpp"

using atrium::test::child_process;
using atrium::test::http_client;
using atrium::test::temp_dir;
using nlohmann::json;

TEST_CASE("SIGKILL mid-load loses no acknowledged write and leaves a verifiable log", "[e2e][crash]") {
  temp_dir dir;
  atrium::test::atriumd_server d(dir.path(), {"--snapshot-every", "5"});
  const auto admin = d.admin();

  // Writers create projects (2 events each) and rename one project of their own
  // (If-Match chains) until the server dies under them.
  constexpr int writers = 8;
  std::mutex mu;
  std::set<std::string> acked_projects;            // ids answered 201
  std::map<std::string, std::string> acked_names;  // project id -> last acknowledged name
  std::atomic<int> acks{0};
  std::atomic<bool> dead{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::string mine;
      std::uint64_t version = 0;
      for (int i = 0; !dead; ++i) {
        try {
          if (mine.empty() || i % 2 == 0) {
            auto r = admin.post("/v1/projects", {{"name", "w" + std::to_string(w) + "-" + std::to_string(i)}});
            if (r.status != 201) continue;
            std::lock_guard lock(mu);
            acked_projects.insert(r.json.at("id").get<std::string>());
            if (mine.empty()) {
              mine = r.json.at("id").get<std::string>();
              version = r.json.at("version").get<std::uint64_t>();
            }
          } else {
            const auto name = "renamed-" + std::to_string(w) + "-" + std::to_string(i);
            auto r = admin.request("PATCH", "/v1/projects/" + mine, json{{"name", name}}.dump(),
                                   {{"If-Match", std::to_string(version)}});
            if (r.status != 200) continue;
            version = r.json.at("version").get<std::uint64_t>();
            std::lock_guard lock(mu);
            acked_names[mine] = name;
          }
          ++acks;
        } catch (const std::exception&) {
          return;  // the server is gone
        }
      }
    });
  }
  REQUIRE(atrium::test::wait_until([&] { return acks >= 400; }, std::chrono::seconds(60)));
  const int status = d.proc->stop(SIGKILL);
  dead = true;
  for (auto& t : threads) t.join();
  CHECK(WIFSIGNALED(status));
  INFO("acknowledged writes before the kill: " << acks.load());

  d.start();
  const auto after = d.admin();

  // The whole log: gapless positions from 1, each event id once.
  std::vector<json> events;
  for (std::uint64_t next = 0;;) {
    auto page = after.get("/v1/events?after=" + std::to_string(next) + "&limit=1000");
    REQUIRE(page.status == 200);
    for (const auto& e : page.json.at("events")) events.push_back(e);
    if (page.json.at("events").empty()) break;
    next = page.json.at("next").get<std::uint64_t>();
  }
  REQUIRE_FALSE(events.empty());
  std::set<std::string> ids;
  std::map<std::string, int> created;
  for (std::size_t i = 0; i < events.size(); ++i) {
    CHECK(events[i].at("position").get<std::uint64_t>() == i + 1);
    CHECK(ids.insert(events[i].at("id").get<std::string>()).second);
    if (events[i].at("type") == "project.created") ++created[events[i].at("data").at("project_id").get<std::string>()];
  }

  // Every acknowledged create is there exactly once, with every acknowledged rename.
  for (const auto& id : acked_projects) {
    INFO("project " << id);
    CHECK(created[id] == 1);
    auto p = after.get("/v1/projects/" + id);
    CHECK(p.status == 200);
  }
  for (const auto& [id, name] : acked_names) {
    auto p = after.get("/v1/projects/" + id);
    REQUIRE(p.status == 200);
    // The last acknowledged name, or a later one whose answer the kill swallowed.
    const auto now = p.json.at("name").get<std::string>();
    // Names are "renamed-<writer>-<i>" with i growing: an older one would be a lost write.
    auto seq = [](const std::string& n) { return std::stoi(n.substr(n.rfind('-') + 1)); };
    REQUIRE(now.starts_with(name.substr(0, name.rfind('-') + 1)));
    CHECK(seq(now) >= seq(name));
  }

  // Projections caught up with the log: the audit log has an entry per event, and the
  // projects list holds every created project.
  auto audit = after.get("/v1/audit?limit=1000&order=desc");
  REQUIRE(audit.status == 200);
  CHECK(audit.json.at("entries")[0].at("position").get<std::uint64_t>() == events.size());
  std::size_t listed = 0;
  for (std::string next;;) {
    auto page = after.get("/v1/projects?limit=1000" + (next.empty() ? "" : "&after=" + next));
    REQUIRE(page.status == 200);
    listed += page.json.at("projects").size();
    if (page.json.at("next").is_null()) break;
    next = page.json.at("next").get<std::string>();
  }
  CHECK(listed == created.size());

  // The hash chain verifies online and offline.
  auto verified = after.get("/v1/audit/verify");
  REQUIRE(verified.status == 200);
  CHECK(verified.json.at("ok") == true);
  CHECK(verified.json.at("count") == events.size());
  CHECK(d.proc->stop(SIGTERM) == 0);
  const auto out = dir.path() / "verify.out";
  child_process verify({ATRIUMD_PATH, "verify", "--data-dir", d.data.string()}, {}, out);
  REQUIRE(atrium::test::wait_until([&] { return !verify.running(); }, std::chrono::seconds(60)));
  CHECK(verify.stop(SIGTERM) == 0);
  std::ifstream f(out);
  std::string line;
  std::getline(f, line);
  auto report = json::parse(line, nullptr, false);
  REQUIRE_FALSE(report.is_discarded());
  CHECK(report.at("ok") == true);
  CHECK(report.at("count") == events.size());
}
