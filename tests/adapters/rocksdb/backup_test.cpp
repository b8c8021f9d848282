// Online backups on a real RocksDB store in a temp dir (issue 20, point 2): a backup taken
// while the store is open holds every event appended before it, `restore` rebuilds a
// store from it (with the master key when asked), and the refusals are domain errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "adapters/rocksdb/backups.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "tests/support/process.hpp"

namespace {

namespace fs = std::filesystem;
using atrium::errc;
using atrium::result;
using atrium::ports::backup_info;
using atrium::ports::expected_version;
using atrium::ports::stream_append;
using atrium::rocksdb_adapter::backups;
using atrium::rocksdb_adapter::restore;
using atrium::rocksdb_adapter::rocksdb_store;
using atrium::test::temp_dir;

stream_append append_to(const std::string& stream, int n) {
  atrium::proposed_event e;
  e.type = "test.happened";
  e.data = {{"n", n}};
  return {stream, expected_version::any(), {e}};
}

result<backup_info> take(backups& b) {
  std::promise<result<backup_info>> p;
  b.take([&p](result<backup_info> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

/// A store in `data`/rocksdb (`data` made first, as atriumd does).
auto open_store(const fs::path& data) {
  fs::create_directories(data);
  return rocksdb_store::open((data / "rocksdb").string(), {});
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("backups: a backup of an open store restores to a store with every event before it", "[backup]") {
  temp_dir dir;
  const auto data = dir.path() / "data";
  const auto bdir = dir.path() / "backups";
  const auto key = dir.path() / "master.key";
  { std::ofstream(key, std::ios::binary) << std::string(32, 'k'); }
  auto store = open_store(data);
  REQUIRE(store.has_value());
  backups b((*store)->db(), (*store)->events(), bdir, key);
  REQUIRE(b.list().value().empty());  // nothing taken: nothing listed, no directory made

  for (int i = 0; i < 50; ++i) REQUIRE((*store)->events().append({append_to("s-" + std::to_string(i % 5), i)}));
  auto first = take(b);
  REQUIRE(first.has_value());
  CHECK(first->id == 1);
  CHECK(first->position == 50);
  CHECK(first->chain_head == (*store)->events().read_all(49, 1).value().front().hash);
  CHECK(first->master_key_included);
  CHECK(first->files > 0);
  for (int i = 50; i < 80; ++i) REQUIRE((*store)->events().append({append_to("s-1", i)}));
  auto second = take(b);
  REQUIRE(second.has_value());
  CHECK(second->id == 2);
  CHECK(second->position == 80);
  auto listed = b.list();
  REQUIRE(listed.has_value());
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].position == 50);
  CHECK((*listed)[1].chain_head == second->chain_head);

  SECTION("the first backup restores to exactly its 50 events, and its key") {
    const auto target = dir.path() / "restored";
    auto report = restore(bdir, target, 1);
    REQUIRE(report.has_value());
    CHECK(report->backup.id == 1);
    CHECK(report->master_key_restored);
    CHECK(slurp(target / "master.key") == std::string(32, 'k'));
    CHECK((fs::status(target / "master.key").permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
          fs::perms::none);
    auto restored = rocksdb_store::open((target / "rocksdb").string(), {});
    REQUIRE(restored.has_value());
    CHECK((*restored)->events().head_position() == 50);
    CHECK((*restored)->events().read_all(49, 1).value().front().hash == first->chain_head);
    auto chain = (*restored)->events().verify_chain();
    REQUIRE(chain.has_value());
    CHECK(chain->ok);
    CHECK(chain->count == 50);
    // The restored store takes appends where the backup ended.
    REQUIRE((*restored)->events().append({append_to("s-9", 99)}));
    CHECK((*restored)->events().head_position() == 51);
  }
  SECTION("without an id the newest is restored; a used data dir and a missing backup are refused") {
    const auto target = dir.path() / "newest";
    auto report = restore(bdir, target, std::nullopt);
    REQUIRE(report.has_value());
    CHECK(report->backup.id == 2);
    auto again = restore(bdir, target, std::nullopt);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().code == errc::failed_precondition);
    auto missing = restore(bdir, dir.path() / "other", 7);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().code == errc::not_found);
    auto nothing = restore(dir.path() / "no-backups-here", dir.path() / "third", std::nullopt);
    REQUIRE_FALSE(nothing.has_value());
    CHECK(nothing.error().code == errc::not_found);
  }
}

TEST_CASE("backups: a master key that cannot be copied fails the backup, which is dropped", "[backup]") {
  temp_dir dir;
  auto store = open_store(dir.path() / "data");
  REQUIRE(store.has_value());
  REQUIRE((*store)->events().append({append_to("s-1", 1)}));
  backups b((*store)->db(), (*store)->events(), dir.path() / "backups", dir.path() / "no-such.key");
  auto taken = take(b);
  REQUIRE_FALSE(taken.has_value());
  CHECK(taken.error().code == errc::unavailable);
  auto listed = b.list();
  REQUIRE(listed.has_value());
  CHECK(listed->empty());
  // Without a key to copy, the next one succeeds.
  backups plain((*store)->db(), (*store)->events(), dir.path() / "backups2", std::nullopt);
  auto ok = take(plain);
  REQUIRE(ok.has_value());
  CHECK_FALSE(ok->master_key_included);
}

TEST_CASE("backups: one at a time, a second take while one runs is refused", "[backup]") {
  temp_dir dir;
  auto store = open_store(dir.path() / "data");
  REQUIRE(store.has_value());
  for (int i = 0; i < 20; ++i) REQUIRE((*store)->events().append({append_to("s-1", i)}));
  backups b((*store)->db(), (*store)->events(), dir.path() / "backups", std::nullopt);
  std::promise<result<backup_info>> first;
  b.take([&first](result<backup_info> r) { first.set_value(std::move(r)); });
  // `take` marks the backup running before it returns; this one (opening the engine,
  // copying and syncing files) is still running when the next call comes.
  auto second = take(b);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code == errc::failed_precondition);
  auto done = first.get_future().get();
  REQUIRE(done.has_value());
  CHECK(done->position == 20);
  // Once it ended, the next one is taken.
  CHECK(take(b).has_value());
}
