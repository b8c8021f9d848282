// Online backup and offline restore (issue 20, point 2) through the real binary: a backup
// taken while 16 writers rename projects, `atriumd restore` into a new data dir, and a
// server started on it that serves every write acknowledged before the backup was asked.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/atriumd.hpp"

using atrium::test::atriumd_server;
using atrium::test::run_atriumd;
using atrium::test::temp_dir;
using nlohmann::json;

TEST_CASE("backup: taken under a 16-writer load, restored into a new data dir, served", "[e2e][backup]") {
  temp_dir dir;
  const auto backup_dir = dir.path() / "backups";
  atriumd_server d(dir.path(), {"--backup-dir", backup_dir.string(), "--include-master-key"});
  const auto token = d.login("admin", atrium::test::k_admin_password);
  const auto admin = d.client(token);

  constexpr int k_writers = 16;
  std::vector<std::string> ids;
  std::vector<std::uint64_t> acked;  // per project: the last version acknowledged before the backup was asked
  for (int i = 0; i < k_writers; ++i) {
    auto r = admin.post("/v1/projects", {{"name", "p" + std::to_string(i)}});
    REQUIRE(r.status == 201);
    ids.push_back(r.json.at("id").get<std::string>());
    acked.push_back(r.json.at("version").get<std::uint64_t>());
  }

  // Each writer renames its project again and again; `acked[i]` becomes the last
  // version whose answer arrived before the backup was asked for.
  std::atomic<bool> asked{false};
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::string failure;  // the first refused write's answer (set once, before `failures`)
  std::vector<std::atomic<std::uint64_t>> writes(k_writers);
  std::vector<std::thread> writers;
  struct joiner {  // the writers stop and are joined however this test ends
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~joiner() {
      stop = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } join_writers{stop, writers};
  for (int i = 0; i < k_writers; ++i) {
    writers.emplace_back([&, i] {
      auto client = d.client(token);
      std::uint64_t version = acked[i];
      while (!stop.load()) {
        auto r = client.request("PATCH", "/v1/projects/" + ids[i],
                                json{{"name", "p" + std::to_string(i) + "-" + std::to_string(version)}}.dump(),
                                {{"If-Match", std::to_string(version)}});
        if (r.status != 200) {
          if (failures.fetch_add(1) == 0) failure = std::to_string(r.status) + " " + r.body;
          return;
        }
        version = r.json.at("version").get<std::uint64_t>();
        ++writes[i];
        if (!asked.load()) acked[i] = version;
      }
    });
  }
  // The writers run until each has a few writes acknowledged.
  REQUIRE(atrium::test::wait_until(
      [&] {
        if (failures.load() > 0) return true;
        for (const auto& w : writes)
          if (w.load() < 3) return false;
        return true;
      },
      std::chrono::seconds(60)));
  asked = true;
  auto taken = admin.post("/v1/admin/backups", json::object());
  // More writes after the backup: they may or may not be in it.
  REQUIRE(atrium::test::wait_until(
      [&] {
        if (failures.load() > 0) return true;
        for (const auto& w : writes)
          if (w.load() < 6) return false;
        return true;
      },
      std::chrono::seconds(60)));
  stop = true;
  for (auto& t : writers) t.join();
  INFO(failure);
  REQUIRE(failures.load() == 0);
  INFO(taken.body);
  REQUIRE(taken.status == 201);
  const auto id = taken.json.at("id").get<std::uint32_t>();
  const auto position = taken.json.at("position").get<std::uint64_t>();
  const auto chain_head = taken.json.at("chain_head").get<std::string>();
  CHECK(id == 1);
  CHECK(position >= k_writers * 4);
  CHECK(chain_head.size() == 64);
  CHECK(taken.json.at("size_bytes").get<std::uint64_t>() > 0);
  CHECK(taken.json.at("files").get<std::uint32_t>() > 0);
  CHECK(taken.json.at("master_key_included") == true);
  CHECK(taken.headers.at("location") == "/v1/admin/backups/1");

  // Listed, fetched by id, recorded in the `admin` stream (read-your-writes).
  auto listed = admin.get("/v1/admin/backups");
  REQUIRE(listed.status == 200);
  REQUIRE(listed.json.at("backups").size() == 1);
  CHECK(listed.json["backups"][0].at("position") == position);
  CHECK(admin.get("/v1/admin/backups/1").json.at("chain_head") == chain_head);
  CHECK(admin.get("/v1/admin/backups/2").status == 404);
  CHECK(admin.get("/v1/admin/backups/x1").status == 404);
  CHECK(admin.get("/v1/admin/backups/99999999999").status == 404);
  auto recorded = admin.get("/v1/streams/admin");
  REQUIRE(recorded.status == 200);
  REQUIRE(recorded.json.at("events").size() == 1);
  const auto& event = recorded.json["events"][0];
  CHECK(event.at("type") == "admin.backup_taken");
  CHECK(event.at("data").at("backup_id") == 1);
  CHECK(event.at("data").at("position") == position);
  CHECK(event.at("data").at("chain_head") == chain_head);

  // Only admins take or list backups.
  REQUIRE(admin
              .post("/v1/users", {{"username", "mallory"},
                                  {"email", "mallory@example.org"},
                                  {"password", "m.a.l.l.o.r.y-password"},
                                  {"role", "member"}})
              .status == 201);
  const auto member = d.client(d.login("mallory", "m.a.l.l.o.r.y-password"));
  CHECK(member.post("/v1/admin/backups", json::object()).status == 403);
  CHECK(member.get("/v1/admin/backups").status == 403);
  REQUIRE(d.stop() == 0);

  // Restore into a new data dir: the chain verifies and the backup's head is in it.
  temp_dir other;
  const auto restored_data = other.path() / "data";
  auto restored = run_atriumd({"restore", "--from", backup_dir.string(), "--data-dir", restored_data.string()});
  INFO(restored.err);
  REQUIRE(restored.exit_code == 0);
  const auto report = json::parse(restored.out);
  CHECK(report.at("backup_id") == 1);
  CHECK(report.at("position") == position);
  CHECK(report.at("head").get<std::uint64_t>() >= position);
  CHECK(report.at("chain").at("ok") == true);
  CHECK(report.at("chain_head_matches") == true);
  CHECK(report.at("master_key_restored") == true);
  CHECK(atriumd_server::slurp(restored_data / "master.key") == atriumd_server::slurp(d.data / "master.key"));
  CHECK((std::filesystem::status(restored_data / "master.key").permissions() & std::filesystem::perms::group_all) ==
        std::filesystem::perms::none);

  // A second restore into the same data dir is refused; so is a directory with no backup.
  auto again = run_atriumd({"restore", "--from", backup_dir.string(), "--data-dir", restored_data.string()});
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("already holds a store") != std::string::npos);
  temp_dir empty;
  auto none = run_atriumd({"restore", "--from", empty.path().string(), "--data-dir", (empty.path() / "d").string()});
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("no backups") != std::string::npos);
  auto missing = run_atriumd(
      {"restore", "--from", backup_dir.string(), "--backup-id", "7", "--data-dir", (empty.path() / "e").string()});
  CHECK(missing.exit_code == 1);
  CHECK(run_atriumd({"restore", "--data-dir", (empty.path() / "f").string()}).exit_code == 2);  // --from is required

  // A server on the restored data dir serves every write acknowledged before the backup.
  atriumd_server back(other.path());
  const auto admin2 = back.admin();
  for (int i = 0; i < k_writers; ++i) {
    auto p = admin2.get("/v1/projects/" + ids[i]);
    REQUIRE(p.status == 200);
    CHECK(p.json.at("version").get<std::uint64_t>() >= acked[i]);
  }
  auto verified = admin2.get("/v1/audit/verify");
  REQUIRE(verified.status == 200);
  CHECK(verified.json.at("ok") == true);
  CHECK(back.stop() == 0);
}
