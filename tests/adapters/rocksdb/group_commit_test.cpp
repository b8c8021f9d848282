// Group commit and the hash chain of the RocksDB event store, on a real RocksDB in a
// temp dir.
#include <catch2/catch.hpp>

#include <openssl/sha.h>
#include <rocksdb/db.h>

#include <atomic>
#include <future>
#include <thread>

#include "adapters/rocksdb/rocksdb_store.hpp"
#include "tests/support/process.hpp"

using namespace atrium;
using atrium::ports::expected_version;
using atrium::rocksdb_adapter::rocksdb_store;

namespace {

std::unique_ptr<rocksdb_store> open_store(const std::filesystem::path& dir) {
  auto r = rocksdb_store::open(dir.string(), {"audit"});
  REQUIRE(r.has_value());
  return std::move(*r);
}

ports::stream_append one(std::string stream, expected_version expected, std::string type = "thing.happened") {
  proposed_event e;
  e.type = std::move(type);
  e.data = {{"payload", std::string(100, 'x')}};
  e.actor = "system";
  return {std::move(stream), expected, {std::move(e)}};
}

std::string sha256_hex(std::string_view prev_hex, std::string_view bytes) {
  std::string input;
  for (std::size_t i = 0; i < prev_hex.size(); i += 2) {
    input.push_back(static_cast<char>(std::stoi(std::string(prev_hex.substr(i, 2)), nullptr, 16)));
  }
  input.append(bytes);
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), d);
  char hex[65];
  for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", d[i]);
  return std::string(hex, 64);
}

}  // namespace

TEST_CASE("concurrent appends are committed together, each acknowledged after its batch", "[rocksdb][group]") {
  test::temp_dir dir;
  auto store = open_store(dir.path());
  constexpr int writers = 64;
  constexpr int per_writer = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) {
        auto r = store->events().append({one("s-" + std::to_string(w), expected_version::exact(i))});
        if (!r || r->size() != 1 || r->front().version != static_cast<std::uint64_t>(i + 1)) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(store->events().head_position() == writers * per_writer);
  // Fewer synced writes than appends: concurrent appends shared batches.
  CHECK(store->events().commit_count() < static_cast<std::uint64_t>(writers * per_writer));
  auto all = store->events().read_all(0, writers * per_writer + 1);
  REQUIRE(all.has_value());
  REQUIRE(all->size() == writers * per_writer);
  for (std::size_t i = 0; i < all->size(); ++i) CHECK((*all)[i].position == i + 1);
}

TEST_CASE("expected versions stay exact inside one batch", "[rocksdb][group]") {
  test::temp_dir dir;
  auto store = open_store(dir.path());
  // Queue many appends before the commit thread can take them: half of them race for
  // the same version of one stream; exactly one of those may win.
  constexpr int n = 40;
  std::vector<std::promise<result<std::vector<envelope>>>> done(n);
  for (int i = 0; i < n; ++i) {
    auto stream = i % 2 == 0 ? std::string("contested") : "free-" + std::to_string(i);
    store->events().append_async({one(stream, expected_version::no_stream())},
                                 [&done, i](result<std::vector<envelope>> r) { done[i].set_value(std::move(r)); });
  }
  int won = 0;
  int conflicts = 0;
  for (int i = 0; i < n; ++i) {
    auto r = done[i].get_future().get();
    if (i % 2 == 1) {
      CHECK(r.has_value());
      continue;
    }
    if (r) {
      ++won;
    } else {
      CHECK(r.error().code == errc::version_conflict);
      CHECK(r.error().details.at("current_version") == 1);
      ++conflicts;
    }
  }
  CHECK(won == 1);
  CHECK(conflicts == n / 2 - 1);
  CHECK(store->events().stream_version("contested").value() == 1);
  CHECK(store->events().head_position() == n / 2 + 1);
}

TEST_CASE("a retried append inside the same batch is answered with the staged events", "[rocksdb][group]") {
  test::temp_dir dir;
  auto store = open_store(dir.path());
  std::promise<result<std::vector<envelope>>> a, b;
  auto with_id = [] {
    auto x = one("s", expected_version::any());
    x.events[0].id = "client-op-1";
    return x;
  };
  store->events().append_async({with_id()}, [&a](auto r) { a.set_value(std::move(r)); });
  store->events().append_async({with_id()}, [&b](auto r) { b.set_value(std::move(r)); });
  auto ra = a.get_future().get();
  auto rb = b.get_future().get();
  REQUIRE(ra.has_value());
  REQUIRE(rb.has_value());
  CHECK(ra->front().position == rb->front().position);
  CHECK(store->events().head_position() == 1);
}

TEST_CASE("every event carries the SHA-256 chain over its canonical bytes", "[rocksdb][chain]") {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path());
    for (int i = 0; i < 5; ++i) REQUIRE(store->events().append({one("s", expected_version::any())}).has_value());
  }
  auto store = open_store(dir.path());  // the chain continues across a reopen
  REQUIRE(store->events().append({one("t", expected_version::any())}).has_value());
  auto all = store->events().read_all(0, 100);
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 6);
  std::string prev(genesis_hash);
  for (const auto& e : *all) {
    // Independently recomputed with OpenSSL's one-shot SHA256, as an auditor would.
    CHECK(e.hash == sha256_hex(prev, canonical_bytes(e)));
    prev = e.hash;
  }
  auto report = store->events().verify_chain();
  REQUIRE(report.has_value());
  CHECK(report->ok);
  CHECK(report->count == 6);
  CHECK(report->last_hash == prev);
}

TEST_CASE("verify names the first position whose stored bytes were edited in place", "[rocksdb][chain]") {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path());
    for (int i = 0; i < 4; ++i) REQUIRE(store->events().append({one("s", expected_version::any())}).has_value());
  }
  SECTION("a payload edit") {
    // Tamper with position 3 behind the store's back, with the raw RocksDB API.
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    std::vector<std::string> names;
    REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir.path().string(), &names).ok());
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), dir.path().string(), cfs, &handles, &raw).ok());
    rocksdb::ColumnFamilyHandle* events = nullptr;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "events") events = handles[i];
    }
    REQUIRE(events != nullptr);
    const std::string key("\0\0\0\0\0\0\0\3", 8);
    std::string value;
    REQUIRE(raw->Get(rocksdb::ReadOptions(), events, key, &value).ok());
    const auto at = value.find("xxxx");
    REQUIRE(at != std::string::npos);
    value[at] = 'y';
    REQUIRE(raw->Put(rocksdb::WriteOptions(), events, key, value).ok());
    for (auto* h : handles) REQUIRE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;

    auto store = open_store(dir.path());
    auto report = store->events().verify_chain();
    REQUIRE(report.has_value());
    CHECK_FALSE(report->ok);
    CHECK(report->broken_at == 3);
    CHECK(report->count == 2);
    CHECK(report->reason.find("hash mismatch") != std::string::npos);
  }
}

TEST_CASE("records are stored in canonical form whatever the strings hold", "[rocksdb][chain]") {
  test::temp_dir dir;
  auto store = open_store(dir.path());
  proposed_event e;
  e.id = "client \"id\" \\ é";
  e.type = "odd.\"typed\"";
  e.actor = "user-\t\u0001ü";
  e.correlation_id = "line\nbreak";
  e.causation_id = "€ / ✓";
  e.data = {{"nested", {{"z", 1}, {"a", "\x1f"}}}, {"text", "quote \" backslash \\ slash /"}, {"n", -5}};
  auto r = store->events().append({{"stream \"x\"", expected_version::any(), {e}}});
  REQUIRE(r.has_value());
  auto back = store->events().read_stream("stream \"x\"", 1, 10);
  REQUIRE(back.has_value());
  REQUIRE(back->size() == 1);
  const auto& got = back->front();
  CHECK(got.id == e.id);
  CHECK(got.actor == e.actor);
  CHECK(got.correlation_id == e.correlation_id);
  CHECK(got.data == e.data);
  CHECK(got.hash == r->front().hash);
  auto report = store->events().verify_chain();
  REQUIRE(report.has_value());
  CHECK(report->ok);  // verify re-serializes each record: any byte difference would show
}

TEST_CASE("blocked appenders of one group each get their own outcome, conflicts included", "[rocksdb][group]") {
  // event_log::append wakes all callers of a committed group at once: every caller must
  // still see exactly its own result (success with its event, or its own conflict).
  test::temp_dir dir;
  auto store = open_store(dir.path());
  constexpr int writers = 48;
  for (int w = 0; w < writers; ++w)
    REQUIRE(store->events().append({one("g-" + std::to_string(w), expected_version::no_stream())}));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      const auto stream = "g-" + std::to_string(w);
      for (int i = 0; i < 10; ++i) {
        // Odd writers name a stale version every time: a conflict naming their stream.
        const bool stale = w % 2 == 1;
        auto r = store->events().append({one(stream, expected_version::exact(stale ? 0 : i + 1))});
        if (stale) {
          if (r || r.error().code != errc::version_conflict || r.error().details.value("stream", "") != stream) ++wrong;
        } else if (!r || r->size() != 1 || r->front().stream != stream ||
                   r->front().version != static_cast<std::uint64_t>(i + 2)) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  CHECK(store->events().head_position() == writers + (writers / 2) * 10);
}

TEST_CASE("server-made event ids increase with position, within and across groups", "[rocksdb][group]") {
  // They are made by one monotonic UUIDv7 generator on the commit thread, so the
  // `event_ids` index is written in key order.
  test::temp_dir dir;
  auto store = open_store(dir.path());
  std::vector<std::thread> threads;
  for (int w = 0; w < 16; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 20; ++i)
        (void)store->events().append({one("m-" + std::to_string(w), expected_version::any())});
    });
  }
  for (auto& t : threads) t.join();
  auto all = store->events().read_all(0, 1000);
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 320);
  for (std::size_t i = 1; i < all->size(); ++i) {
    INFO((*all)[i - 1].id << " then " << (*all)[i].id);
    CHECK((*all)[i - 1].id < (*all)[i].id);
    CHECK(is_uuid_v7((*all)[i].id));
  }
}
