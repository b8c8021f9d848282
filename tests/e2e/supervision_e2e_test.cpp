// A full disk against the real atriumd (issue 13, F4): its data dir on an 8 MiB tmpfs
// that the test fills with a ballast file. Writes answer 503 `unavailable` with a clear
// message, /healthz and /readyz answer 503, reads keep working; once the ballast is
// removed, writing resumes without a restart and the hash chain verifies.
//
// Mounting needs root (CAP_SYS_ADMIN); without it the test says so and passes.
#include <catch2/catch.hpp>

#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "tests/support/atriumd.hpp"

using atrium::test::temp_dir;
using atrium::test::wait_until;
using nlohmann::json;

namespace {

/// An 8 MiB tmpfs on a fresh temp dir, unmounted (lazily) at scope exit.
struct small_tmpfs {
  temp_dir dir;
  bool mounted = false;
  std::string why;
  small_tmpfs() {
    if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=8m") == 0) {
      mounted = true;
    } else {
      why = std::strerror(errno);
    }
  }
  ~small_tmpfs() {
    if (mounted) ::umount2(dir.path().c_str(), MNT_DETACH);
  }
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;

  /// Writes a ballast file until the file system is full.
  void fill() const {
    std::FILE* f = std::fopen((dir.path() / "ballast").c_str(), "a");
    REQUIRE(f != nullptr);
    std::setvbuf(f, nullptr, _IONBF, 0);
    const std::string chunk(4096, 'b');
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) {
    }
    std::fclose(f);
  }
  void free() const { std::filesystem::remove(dir.path() / "ballast"); }
};

}  // namespace

TEST_CASE("a full disk: writes answer 503, health is down, reads work, and writing resumes without a restart",
          "[e2e][supervision][disk-full]") {
  small_tmpfs disk;
  if (!disk.mounted) {
    WARN("skipped: cannot mount a tmpfs here (" << disk.why << "); run as root to test a full disk");
    return;
  }
  // The data dir on the tmpfs (through a symlink), the server's log beside it on the
  // ordinary disk, where the test can still read it.
  temp_dir srv;
  std::filesystem::create_directories(disk.dir.path() / "data");
  std::filesystem::create_directory_symlink(disk.dir.path() / "data", srv.path() / "data");
  atrium::test::atriumd_server d(srv.path());
  const auto admin = d.admin();
  auto before = admin.post("/v1/projects", {{"name", "Before the disk filled"}});
  REQUIRE(before.status == 201);
  const auto kept = before.json.at("id").get<std::string>();
  REQUIRE(d.client().get("/healthz").status == 200);

  disk.fill();

  auto refused = admin.post("/v1/projects", {{"name", "While full"}});
  INFO(refused.body);
  CHECK(refused.status == 503);
  CHECK(refused.json["error"]["code"] == "unavailable");
  CHECK_THAT(refused.json["error"]["message"].get<std::string>(), Catch::Contains("disk full"));

  auto health = d.client().get("/healthz");
  INFO(health.body);
  CHECK(health.status == 503);
  CHECK(health.json["status"] == "unhealthy");
  CHECK_THAT(health.json["store"]["message"].get<std::string>(), Catch::Contains("disk full"));
  CHECK(d.client().get("/readyz").status == 503);

  // Reads keep working.
  auto one = admin.get("/v1/projects/" + kept);
  CHECK(one.status == 200);
  auto list = admin.get("/v1/projects");
  CHECK(list.status == 200);
  CHECK(admin.get("/v1/audit/verify").status == 200);

  disk.free();

  // No restart: the server answers 201 again by itself.
  std::string created;
  const bool resumed = wait_until(
      [&] {
        auto r = admin.post("/v1/projects", {{"name", "After space was freed"}});
        if (r.status != 201) return false;
        created = r.json.at("id").get<std::string>();
        return true;
      },
      std::chrono::seconds(20));
  if (!resumed) FAIL("writes did not resume; log:\n" << atrium::test::atriumd_server::slurp(d.log));
  REQUIRE(wait_until([&] { return d.client().get("/healthz").status == 200; }, std::chrono::seconds(10)));
  CHECK(admin.get("/v1/projects/" + created).status == 200);
  CHECK(admin.get("/v1/projects/" + kept).status == 200);
  auto verified = admin.get("/v1/audit/verify");
  INFO(verified.body);
  REQUIRE(verified.status == 200);
  CHECK(verified.json["ok"] == true);

  // A clean stop, not an abort.
  CHECK(d.stop() == 0);
}
