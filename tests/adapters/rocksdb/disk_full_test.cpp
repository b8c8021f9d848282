// The RocksDB store on a full disk (issue 13, F4): a real RocksDB on a small tmpfs that
// the test fills with a ballast file. Appends are refused with `unavailable`, reads keep
// working, and once the ballast is removed writing resumes without reopening the store
// by hand; nothing acknowledged is lost and the hash chain verifies. Also: text that is
// not valid UTF-8 is refused with `invalid_argument`, never thrown (F2).
//
// Mounting needs root (CAP_SYS_ADMIN); without it the disk-full tests say so and pass.

#include <catch2/catch.hpp>

#include <sys/mount.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/rocksdb/rocksdb_store.hpp"
#include "tests/support/process.hpp"

namespace {

using atrium::errc;
using atrium::proposed_event;
using atrium::ports::expected_version;
using atrium::ports::stream_append;
using atrium::rocksdb_adapter::rocksdb_store;
using atrium::rocksdb_adapter::store_options;

/// An 8 MiB tmpfs mounted on a fresh temp dir, unmounted (lazily) at scope exit.
class small_tmpfs {
 public:
  small_tmpfs() {
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=8m") == 0) {
      mounted_ = true;
    } else {
      why_ = std::strerror(errno);
    }
  }
  ~small_tmpfs() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;

  [[nodiscard]] bool mounted() const { return mounted_; }
  [[nodiscard]] const std::string& why() const { return why_; }
  [[nodiscard]] std::filesystem::path path() const { return dir_.path(); }

  /// Writes a ballast file until the file system is full (ENOSPC).
  void fill() {
    std::FILE* f = std::fopen((path() / "ballast").c_str(), "a");
    REQUIRE(f != nullptr);
    std::setvbuf(f, nullptr, _IONBF, 0);
    const std::string chunk(4096, 'b');
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) {
    }
    std::fclose(f);
  }
  /// Removes the ballast.
  void free() { std::filesystem::remove(path() / "ballast"); }

 private:
  atrium::test::temp_dir dir_;
  bool mounted_ = false;
  std::string why_;
};

const std::vector<std::string> k_projections{"users"};

std::unique_ptr<rocksdb_store> open_store(const std::string& dir, store_options options = {}) {
  auto r = rocksdb_store::open(dir, k_projections, options);
  if (!r) FAIL("open: " << r.error().message);
  return std::move(*r);
}

/// One event of about 2 KiB on stream `s`.
stream_append event_on(const std::string& s, int n) {
  proposed_event e;
  e.type = "test.happened";
  e.data = {{"n", n}, {"pad", std::string(2048, 'p')}};
  e.actor = "user-test";
  return {s, expected_version::any(), {e}};
}

/// Appends until one fails (at most `limit` times). Returns the number acknowledged;
/// `failure` receives the error of the failed append.
int append_until_failure(rocksdb_store& store, const std::string& stream, int first, int limit,
                         std::optional<atrium::error>& failure) {
  int acked = 0;
  for (int i = 0; i < limit; ++i) {
    auto r = store.events().append({event_on(stream, first + i)});
    if (!r) {
      failure = r.error();
      return acked;
    }
    ++acked;
  }
  return acked;
}

void check_log(rocksdb_store& store, std::uint64_t acked) {
  CHECK(store.events().head_position() == acked);
  auto chain = store.events().verify_chain();
  REQUIRE(chain.has_value());
  CHECK(chain->ok);
  CHECK(chain->count == acked);
  auto all = store.events().read_all(0, 100000);
  REQUIRE(all.has_value());
  CHECK(all->size() == acked);
}

}  // namespace

TEST_CASE("a full disk refuses appends with unavailable, reads go on, writes resume once space is freed",
          "[rocksdb][disk-full]") {
  small_tmpfs disk;
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs here (" << disk.why() << "); run as root to test a full disk");
    return;
  }
  const auto dir = (disk.path() / "db").string();
  std::uint64_t acked = 0;
  {
    auto store = open_store(dir);
    for (int i = 0; i < 20; ++i) REQUIRE(store->events().append({event_on("stream-a", i)}).has_value());
    acked = 20;
    CHECK_FALSE(store->events().write_fault().has_value());

    disk.fill();
    // The store keeps a reserve free: it refuses before RocksDB meets the full disk.
    auto refused = store->events().append({event_on("stream-a", 99)});
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::unavailable);
    CHECK_THAT(refused.error().message, Catch::Contains("disk full"));
    auto fault = store->events().write_fault();
    REQUIRE(fault.has_value());
    CHECK(fault->code == errc::unavailable);
    // Other writes are refused the same way; reads work.
    CHECK_FALSE(store->read_models().save_checkpoint("relay:test", 5).has_value());
    auto stream = store->events().read_stream("stream-a", 1, 100);
    REQUIRE(stream.has_value());
    CHECK(stream->size() == 20);
    check_log(*store, acked);

    disk.free();
    REQUIRE(
        atrium::test::wait_until([&] { return !store->events().write_fault().has_value(); }, std::chrono::seconds(10)));
    auto again = store->events().append({event_on("stream-a", 100)});
    REQUIRE(again.has_value());
    ++acked;
    check_log(*store, acked);
  }
  // Nothing acknowledged is lost across a reopen.
  auto reopened = open_store(dir);
  check_log(*reopened, acked);
}

TEST_CASE("when RocksDB itself fails a write on a full disk, the store recovers by reopening, without an abort",
          "[rocksdb][disk-full]") {
  small_tmpfs disk;
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs here (" << disk.why() << "); run as root to test a full disk");
    return;
  }
  const auto dir = (disk.path() / "db").string();
  store_options options;
  options.reserve_free_bytes = 0;  // no guard: RocksDB's WAL write meets ENOSPC itself
  options.recovery_interval = std::chrono::milliseconds(100);
  std::uint64_t acked = 0;
  {
    auto store = open_store(dir, options);
    for (int i = 0; i < 20; ++i) REQUIRE(store->events().append({event_on("stream-b", i)}).has_value());
    acked = 20;

    disk.fill();
    std::optional<atrium::error> failure;
    acked += static_cast<std::uint64_t>(append_until_failure(*store, "stream-b", 20, 5000, failure));
    REQUIRE(failure.has_value());
    CHECK(failure->code == errc::unavailable);
    INFO(failure->message);
    // The store now refuses every write until it has recovered; reads work.
    REQUIRE(store->events().write_fault().has_value());
    auto refused = store->events().append({event_on("stream-b", -1)});
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::unavailable);
    CHECK_THAT(refused.error().message, Catch::Contains("cannot write"));
    check_log(*store, acked);
    CHECK(store->db().recoveries() == 0);

    disk.free();
    REQUIRE(
        atrium::test::wait_until([&] { return !store->events().write_fault().has_value(); }, std::chrono::seconds(20)));
    CHECK(store->db().recoveries() >= 1);
    for (int i = 0; i < 10; ++i) {
      auto r = store->events().append({event_on("stream-b", 1000 + i)});
      INFO((r ? std::string("ok") : r.error().message));
      REQUIRE(r.has_value());
      ++acked;
    }
    check_log(*store, acked);
    auto stream = store->events().read_stream("stream-b", 1, 100000);
    REQUIRE(stream.has_value());
    CHECK(stream->size() == acked);
  }
  auto reopened = open_store(dir, options);
  check_log(*reopened, acked);
}

TEST_CASE("text that is not valid UTF-8 is refused as invalid_argument, and the store keeps writing", "[rocksdb]") {
  atrium::test::temp_dir dir;
  auto store = open_store((dir.path() / "db").string());
  auto bad_data = event_on("stream-c", 1);
  bad_data.events[0].data["name"] = std::string("a") + "\xC3";  // cut inside a 2-byte character
  auto r = store->events().append({bad_data});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::invalid_argument);
  CHECK_THAT(r.error().message, Catch::Contains("UTF-8"));

  auto bad_stream = event_on(std::string("stream-\xFF"), 1);
  auto r2 = store->events().append({bad_stream});
  REQUIRE_FALSE(r2.has_value());
  CHECK(r2.error().code == errc::invalid_argument);

  auto bad_id = event_on("stream-c", 2);
  bad_id.events[0].id = std::string("id-\xFE");
  auto r3 = store->events().append({bad_id});
  REQUIRE_FALSE(r3.has_value());
  CHECK(r3.error().code == errc::invalid_argument);

  auto bad_snapshot = store->events().save_snapshot("stream-c", {1, 1, {{"name", std::string("\xC3")}}});
  REQUIRE_FALSE(bad_snapshot.has_value());
  CHECK(bad_snapshot.error().code == errc::invalid_argument);

  REQUIRE(store->events().append({event_on("stream-c", 3)}).has_value());
  check_log(*store, 1);
}
