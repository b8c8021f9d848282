// Tests of the RocksDB adapter (event store, read-model store, token store) on a real
// RocksDB database in a fresh temporary directory per test.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <rocksdb/db.h>

#include <algorithm>

#include "adapters/rocksdb/rocksdb_store.hpp"
#include "tests/support/process.hpp"

namespace {

using atrium::envelope;
using atrium::errc;
using atrium::mutation;
using atrium::proposed_event;
using atrium::row_delete;
using atrium::row_put;
using atrium::ports::expected_version;
using atrium::ports::stream_append;
using atrium::rocksdb_adapter::rocksdb_store;

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class temp_dir : public atrium::test::temp_dir {
 public:
  [[nodiscard]] std::string str() const { return path().string(); }
};

const std::vector<std::string> k_projections{"users", "audit"};

template <class R>
std::string error_text(const R& r) {
  if (r.has_value()) return "ok";
  return std::string(atrium::to_string(r.error().code)) + ": " + r.error().message + " " + r.error().details.dump();
}

#define REQUIRE_OK(expr)           \
  do {                             \
    const auto& req_ok_r = (expr); \
    INFO(error_text(req_ok_r));    \
    REQUIRE(req_ok_r.has_value()); \
  } while (false)

std::unique_ptr<rocksdb_store> open_store(const temp_dir& dir) {
  auto r = rocksdb_store::open(dir.str(), k_projections);
  INFO(error_text(r));
  REQUIRE(r.has_value());
  REQUIRE(*r != nullptr);
  return std::move(*r);
}

proposed_event ev(std::string type, nlohmann::json data = nlohmann::json::object(), std::string id = {}) {
  proposed_event e;
  e.id = std::move(id);
  e.type = std::move(type);
  e.data = std::move(data);
  e.actor = "system";
  return e;
}

stream_append to(std::string stream, expected_version expected, std::vector<proposed_event> events) {
  return stream_append{std::move(stream), expected, std::move(events)};
}

std::vector<envelope> append_ok(rocksdb_store& store, std::vector<stream_append> appends) {
  auto r = store.events().append(std::move(appends));
  INFO(error_text(r));
  REQUIRE(r.has_value());
  return std::move(*r);
}

std::vector<envelope> all_events(const rocksdb_store& store) {
  auto r = store.events().read_all(0, 1'000'000);
  INFO(error_text(r));
  REQUIRE(r.has_value());
  return std::move(*r);
}

std::vector<envelope> stream_events(const rocksdb_store& store, std::string_view stream) {
  auto r = store.events().read_stream(stream, 1, 1'000'000);
  INFO(error_text(r));
  REQUIRE(r.has_value());
  return std::move(*r);
}

std::uint64_t version_of(const rocksdb_store& store, std::string_view stream) {
  auto r = store.events().stream_version(stream);
  INFO(error_text(r));
  REQUIRE(r.has_value());
  return *r;
}

std::vector<std::string> keys_of(const std::vector<atrium::ports::row>& rows) {
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(r.key);
  return out;
}

using strings = std::vector<std::string>;

const std::regex k_rfc3339{R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$)"};
const std::regex k_uuid_v7{R"(^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$)"};

}  // namespace

// ---------------------------------------------------------------------------------------
// Event store: append
// ---------------------------------------------------------------------------------------

TEST_CASE("a fresh store is empty", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  CHECK(store->events().head_position() == 0);
  CHECK(all_events(*store).empty());
  CHECK(version_of(*store, "user-1") == 0);
  CHECK(stream_events(*store, "user-1").empty());
}

TEST_CASE("append to a new stream with no_stream assigns position, version, time and id", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);

  const auto out = append_ok(*store, {to("user-1", expected_version::no_stream(),
                                         {ev("user.registered", {{"username", "alice"}}), ev("user.renamed")})});
  REQUIRE(out.size() == 2);
  CHECK(out[0].position == 1);
  CHECK(out[1].position == 2);
  CHECK(out[0].version == 1);
  CHECK(out[1].version == 2);
  for (const auto& e : out) {
    CHECK(e.stream == "user-1");
    CHECK(std::regex_match(e.time, k_rfc3339));
    CHECK(std::regex_match(e.id, k_uuid_v7));
  }
  CHECK(out[0].id != out[1].id);
  CHECK(out[0].type == "user.registered");
  CHECK(out[1].type == "user.renamed");
  CHECK(out[0].data == nlohmann::json{{"username", "alice"}});

  CHECK(store->events().head_position() == 2);
  CHECK(version_of(*store, "user-1") == 2);

  // What was returned is what is stored.
  const auto stored = stream_events(*store, "user-1");
  REQUIRE(stored.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(stored[i].position == out[i].position);
    CHECK(stored[i].version == out[i].version);
    CHECK(stored[i].id == out[i].id);
    CHECK(stored[i].time == out[i].time);
    CHECK(stored[i].type == out[i].type);
    CHECK(stored[i].data == out[i].data);
  }
}

TEST_CASE("positions are gapless from 1 across appends and streams, versions are per stream", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);

  const auto a = append_ok(*store, {to("user-1", expected_version::no_stream(), {ev("user.registered")})});
  const auto b = append_ok(
      *store, {to("project-1", expected_version::no_stream(), {ev("project.created"), ev("project.renamed")})});
  const auto c = append_ok(*store, {to("user-1", expected_version::exact(1), {ev("user.renamed")})});
  const auto d = append_ok(*store, {to("project-1", expected_version::exact(2), {ev("project.archived")}),
                                    to("user-2", expected_version::no_stream(), {ev("user.registered")})});

  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 2);
  REQUIRE(c.size() == 1);
  REQUIRE(d.size() == 2);
  CHECK(a[0].position == 1);
  CHECK(b[0].position == 2);
  CHECK(b[1].position == 3);
  CHECK(c[0].position == 4);
  CHECK(d[0].position == 5);
  CHECK(d[1].position == 6);

  CHECK(a[0].version == 1);
  CHECK(b[0].version == 1);
  CHECK(b[1].version == 2);
  CHECK(c[0].version == 2);
  CHECK(d[0].stream == "project-1");
  CHECK(d[0].version == 3);
  CHECK(d[1].stream == "user-2");
  CHECK(d[1].version == 1);

  CHECK(store->events().head_position() == 6);
  CHECK(version_of(*store, "user-1") == 2);
  CHECK(version_of(*store, "project-1") == 3);
  CHECK(version_of(*store, "user-2") == 1);

  const auto all = all_events(*store);
  REQUIRE(all.size() == 6);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].position == i + 1);
  CHECK(strings{all[0].stream, all[1].stream, all[2].stream, all[3].stream, all[4].stream, all[5].stream} ==
        strings{"user-1", "project-1", "project-1", "user-1", "project-1", "user-2"});

  const auto user1 = stream_events(*store, "user-1");
  REQUIRE(user1.size() == 2);
  CHECK(user1[0].version == 1);
  CHECK(user1[0].position == 1);
  CHECK(user1[1].version == 2);
  CHECK(user1[1].position == 4);
}

TEST_CASE("a client-supplied event id is kept and metadata is stored", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);

  proposed_event given =
      ev("project.created", {{"name", "Atrium"}, {"tags", {"a", "b"}}}, "01930000-0000-7000-8000-000000000001");
  given.schema = 2;
  given.actor = "user-42";
  given.correlation_id = "req-7";
  given.causation_id = "cmd-9";
  proposed_event generated = ev("project.renamed", {{"name", "Atrium 2"}});
  generated.actor = "user-42";
  generated.correlation_id = "req-7";
  generated.causation_id = "cmd-9";

  const auto out = append_ok(*store, {to("project-1", expected_version::any(), {given, generated})});
  REQUIRE(out.size() == 2);
  CHECK(out[0].id == "01930000-0000-7000-8000-000000000001");
  CHECK(std::regex_match(out[1].id, k_uuid_v7));

  const auto stored = stream_events(*store, "project-1");
  REQUIRE(stored.size() == 2);
  const auto& e = stored[0];
  CHECK(e.id == "01930000-0000-7000-8000-000000000001");
  CHECK(e.type == "project.created");
  CHECK(e.schema == 2);
  CHECK(e.actor == "user-42");
  CHECK(e.correlation_id == "req-7");
  CHECK(e.causation_id == "cmd-9");
  CHECK(e.data == nlohmann::json{{"name", "Atrium"}, {"tags", {"a", "b"}}});
  CHECK(std::regex_match(e.time, k_rfc3339));

  CHECK(stored[1].id == out[1].id);
  CHECK(stored[1].schema == 1);
  CHECK(stored[1].actor == "user-42");
  CHECK(stored[1].correlation_id == "req-7");
  CHECK(stored[1].causation_id == "cmd-9");
  CHECK(stored[1].data == nlohmann::json{{"name", "Atrium 2"}});
}

// ---------------------------------------------------------------------------------------
// Event store: expected version
// ---------------------------------------------------------------------------------------

TEST_CASE("expected version: exact, no_stream and any", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  append_ok(*store, {to("user-1", expected_version::no_stream(), {ev("user.registered"), ev("user.renamed")})});
  REQUIRE(version_of(*store, "user-1") == 2);
  REQUIRE(store->events().head_position() == 2);

  SECTION("an exact match appends") {
    const auto out = append_ok(*store, {to("user-1", expected_version::exact(2), {ev("user.renamed")})});
    REQUIRE(out.size() == 1);
    CHECK(out[0].version == 3);
    CHECK(out[0].position == 3);
    CHECK(version_of(*store, "user-1") == 3);
  }

  SECTION("exact(0) matches a new stream") {
    const auto out = append_ok(*store, {to("user-2", expected_version::exact(0), {ev("user.registered")})});
    REQUIRE(out.size() == 1);
    CHECK(out[0].version == 1);
    CHECK(out[0].position == 3);
  }

  SECTION("a stale exact version is a version_conflict carrying the current version") {
    auto r = store->events().append({to("user-1", expected_version::exact(1), {ev("user.renamed")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::version_conflict);
    CHECK(r.error().details.value("current_version", std::uint64_t{999}) == 2);
    CHECK(r.error().details.value("stream", std::string{}) == "user-1");
    CHECK(r.error().details.value("expected", nlohmann::json{}) == nlohmann::json(1));
  }

  SECTION("an exact version ahead of the stream is a version_conflict") {
    auto r = store->events().append({to("user-1", expected_version::exact(5), {ev("user.renamed")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::version_conflict);
    CHECK(r.error().details.value("current_version", std::uint64_t{999}) == 2);
  }

  SECTION("no_stream on an existing stream is a version_conflict") {
    auto r = store->events().append({to("user-1", expected_version::no_stream(), {ev("user.registered")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::version_conflict);
    CHECK(r.error().details.value("current_version", std::uint64_t{999}) == 2);
    CHECK(r.error().details.value("stream", std::string{}) == "user-1");
  }

  SECTION("any appends to an existing and to a new stream") {
    const auto a = append_ok(*store, {to("user-1", expected_version::any(), {ev("user.renamed")})});
    const auto b = append_ok(*store, {to("user-3", expected_version::any(), {ev("user.registered")})});
    REQUIRE(a.size() == 1);
    REQUIRE(b.size() == 1);
    CHECK(a[0].version == 3);
    CHECK(a[0].position == 3);
    CHECK(b[0].version == 1);
    CHECK(b[0].position == 4);
  }
}

TEST_CASE("a failed append writes nothing and the next append takes the next gapless position", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  append_ok(*store, {to("user-1", expected_version::no_stream(), {ev("user.registered")})});

  auto r = store->events().append({to("user-1", expected_version::exact(7), {ev("user.renamed"), ev("user.renamed")})});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::version_conflict);

  CHECK(store->events().head_position() == 1);
  CHECK(version_of(*store, "user-1") == 1);
  CHECK(all_events(*store).size() == 1);
  CHECK(stream_events(*store, "user-1").size() == 1);

  const auto next = append_ok(*store, {to("user-1", expected_version::exact(1), {ev("user.renamed")})});
  REQUIRE(next.size() == 1);
  CHECK(next[0].position == 2);
  CHECK(next[0].version == 2);
  CHECK(store->events().head_position() == 2);
  const auto all = all_events(*store);
  REQUIRE(all.size() == 2);
  CHECK(all[0].position == 1);
  CHECK(all[1].position == 2);
}

// ---------------------------------------------------------------------------------------
// Event store: multi-stream atomic append
// ---------------------------------------------------------------------------------------

TEST_CASE("a multi-stream append commits all streams together or none", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);

  const auto first = append_ok(
      *store, {to("user-1", expected_version::no_stream(), {ev("user.registered", {{"username", "alice"}})}),
               to("username-alice", expected_version::no_stream(), {ev("username.claimed", {{"user", "user-1"}})})});
  REQUIRE(first.size() == 2);
  CHECK(first[0].stream == "user-1");
  CHECK(first[0].position == 1);
  CHECK(first[0].version == 1);
  CHECK(first[1].stream == "username-alice");
  CHECK(first[1].position == 2);
  CHECK(first[1].version == 1);
  CHECK(first[0].time == first[1].time);
  CHECK(store->events().head_position() == 2);

  SECTION("a claim of a taken name fails and writes nothing to the other stream") {
    auto r = store->events().append(
        {to("user-2", expected_version::no_stream(), {ev("user.registered", {{"username", "alice"}})}),
         to("username-alice", expected_version::no_stream(), {ev("username.claimed", {{"user", "user-2"}})})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::version_conflict);
    CHECK(r.error().details.value("stream", std::string{}) == "username-alice");
    CHECK(r.error().details.value("current_version", std::uint64_t{999}) == 1);

    CHECK(version_of(*store, "user-2") == 0);
    CHECK(stream_events(*store, "user-2").empty());
    CHECK(version_of(*store, "username-alice") == 1);
    CHECK(store->events().head_position() == 2);
    CHECK(all_events(*store).size() == 2);

    // The next successful append continues at position 3.
    const auto next =
        append_ok(*store, {to("user-2", expected_version::no_stream(), {ev("user.registered", {{"username", "bob"}})}),
                           to("username-bob", expected_version::no_stream(), {ev("username.claimed")})});
    REQUIRE(next.size() == 2);
    CHECK(next[0].position == 3);
    CHECK(next[0].version == 1);
    CHECK(next[1].position == 4);
    CHECK(next[1].version == 1);
  }

  SECTION("a conflict on the first stream also writes nothing to the second") {
    auto r = store->events().append({to("user-1", expected_version::no_stream(), {ev("user.registered")}),
                                     to("username-carol", expected_version::no_stream(), {ev("username.claimed")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::version_conflict);
    CHECK(r.error().details.value("stream", std::string{}) == "user-1");
    CHECK(version_of(*store, "username-carol") == 0);
    CHECK(stream_events(*store, "username-carol").empty());
    CHECK(store->events().head_position() == 2);
  }
}

// ---------------------------------------------------------------------------------------
// Event store: invalid input
// ---------------------------------------------------------------------------------------

TEST_CASE("invalid appends are rejected with invalid_argument and write nothing", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  append_ok(*store, {to("user-1", expected_version::no_stream(), {ev("user.registered")})});

  SECTION("empty stream id") {
    auto r = store->events().append({to("", expected_version::any(), {ev("user.registered")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
  }
  SECTION("empty stream id next to a valid stream") {
    auto r = store->events().append({to("user-2", expected_version::any(), {ev("user.registered")}),
                                     to("", expected_version::any(), {ev("user.registered")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(version_of(*store, "user-2") == 0);
  }
  SECTION("the same stream twice") {
    auto r = store->events().append({to("user-2", expected_version::any(), {ev("user.registered")}),
                                     to("user-2", expected_version::any(), {ev("user.renamed")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(version_of(*store, "user-2") == 0);
  }
  SECTION("a NUL byte in a stream id") {
    // It would make the `streams` keys of two streams overlap (stream, 0x00, version).
    auto r =
        store->events().append({to(std::string("user-2\0x", 8), expected_version::any(), {ev("user.registered")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
  }
  SECTION("no appends at all") {
    auto r = store->events().append({});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
  }
  SECTION("streams without events") {
    auto r = store->events().append({to("user-2", expected_version::any(), {})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
  }

  CHECK(store->events().head_position() == 1);
  CHECK(all_events(*store).size() == 1);
}

// ---------------------------------------------------------------------------------------
// Event store: idempotency by event id
// ---------------------------------------------------------------------------------------

TEST_CASE("re-appending stored event ids returns the stored envelopes and writes nothing", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  append_ok(*store, {to("user-1", expected_version::no_stream(), {ev("user.registered")})});

  const auto original = append_ok(
      *store, {to("project-1", expected_version::no_stream(),
                  {ev("project.created", {{"name", "A"}}, "evt-1"), ev("project.renamed", {{"name", "B"}}, "evt-2")}),
               to("user-1", expected_version::exact(1), {ev("user.joined", {{"p", 1}}, "evt-3")})});
  REQUIRE(original.size() == 3);
  REQUIRE(store->events().head_position() == 4);

  // A retry of the same request (its expected versions no longer hold, which is the point).
  const auto retry = append_ok(
      *store, {to("project-1", expected_version::no_stream(),
                  {ev("project.created", {{"name", "A"}}, "evt-1"), ev("project.renamed", {{"name", "B"}}, "evt-2")}),
               to("user-1", expected_version::exact(1), {ev("user.joined", {{"p", 1}}, "evt-3")})});
  REQUIRE(retry.size() == 3);
  for (std::size_t i = 0; i < retry.size(); ++i) {
    CHECK(retry[i].id == original[i].id);
    CHECK(retry[i].position == original[i].position);
    CHECK(retry[i].stream == original[i].stream);
    CHECK(retry[i].version == original[i].version);
    CHECK(retry[i].time == original[i].time);
    CHECK(retry[i].type == original[i].type);
    CHECK(retry[i].data == original[i].data);
  }
  CHECK(store->events().head_position() == 4);
  CHECK(all_events(*store).size() == 4);
  CHECK(version_of(*store, "project-1") == 2);
  CHECK(version_of(*store, "user-1") == 2);

  SECTION("a partial overlap is already_exists and writes nothing") {
    auto r = store->events().append({to("project-1", expected_version::any(),
                                        {ev("project.renamed", {}, "evt-2"), ev("project.renamed", {}, "evt-new")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::already_exists);
    CHECK(store->events().head_position() == 4);
    CHECK(version_of(*store, "project-1") == 2);
  }

  SECTION("a stored id next to an event without id is already_exists") {
    auto r = store->events().append(
        {to("project-1", expected_version::any(), {ev("project.renamed", {}, "evt-1"), ev("project.renamed")})});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::already_exists);
    CHECK(store->events().head_position() == 4);
  }

  SECTION("new ids append normally after the retry, at the next position") {
    const auto next = append_ok(
        *store, {to("project-1", expected_version::exact(2), {ev("project.renamed", {{"name", "C"}}, "evt-4")})});
    REQUIRE(next.size() == 1);
    CHECK(next[0].position == 5);
    CHECK(next[0].version == 3);
    CHECK(next[0].id == "evt-4");
  }
}

// ---------------------------------------------------------------------------------------
// Event store: reads
// ---------------------------------------------------------------------------------------

TEST_CASE("read_stream, read_all and stream_version", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  // user-1 gets versions 1..5 at positions 1,3,5,7,9; user-10 (a stream id extending
  // "user-1") gets versions 1..4 at positions 2,4,6,8.
  for (int i = 0; i < 9; ++i) {
    const bool first = i % 2 == 0;
    append_ok(*store, {to(first ? "user-1" : "user-10", expected_version::any(), {ev("user.renamed", {{"n", i}})})});
  }
  REQUIRE(store->events().head_position() == 9);

  SECTION("stream_version") {
    CHECK(version_of(*store, "user-1") == 5);
    CHECK(version_of(*store, "user-10") == 4);
    CHECK(version_of(*store, "user-") == 0);
    CHECK(version_of(*store, "nobody") == 0);
  }

  SECTION("read_stream from a version with a limit") {
    auto r = store->events().read_stream("user-1", 2, 3);
    REQUIRE_OK(r);
    REQUIRE(r->size() == 3);
    CHECK((*r)[0].version == 2);
    CHECK((*r)[1].version == 3);
    CHECK((*r)[2].version == 4);
    CHECK((*r)[0].position == 3);
    CHECK((*r)[1].position == 5);
    CHECK((*r)[2].position == 7);
    for (const auto& e : *r) CHECK(e.stream == "user-1");
  }

  SECTION("read_stream to the end of the stream does not leak into a longer stream id") {
    auto r = store->events().read_stream("user-1", 4, 100);
    REQUIRE_OK(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].version == 4);
    CHECK((*r)[1].version == 5);
    CHECK((*r)[1].data == nlohmann::json{{"n", 8}});
    for (const auto& e : *r) CHECK(e.stream == "user-1");
  }

  SECTION("read_stream from version 0 starts at the first event") {
    auto r = store->events().read_stream("user-10", 0, 100);
    REQUIRE_OK(r);
    REQUIRE(r->size() == 4);
    for (std::size_t i = 0; i < r->size(); ++i) {
      CHECK((*r)[i].version == i + 1);
      CHECK((*r)[i].stream == "user-10");
    }
  }

  SECTION("read_stream past the last version is empty") {
    auto r = store->events().read_stream("user-1", 6, 100);
    REQUIRE_OK(r);
    CHECK(r->empty());
  }

  SECTION("read_stream with limit 0 is empty") {
    auto r = store->events().read_stream("user-1", 1, 0);
    REQUIRE_OK(r);
    CHECK(r->empty());
  }

  SECTION("read_stream of an unknown stream is empty") {
    auto r = store->events().read_stream("project-404", 1, 100);
    REQUIRE_OK(r);
    CHECK(r->empty());
    auto prefix_only = store->events().read_stream("user-", 1, 100);
    REQUIRE_OK(prefix_only);
    CHECK(prefix_only->empty());
  }

  SECTION("read_all after a position with a limit, in position order") {
    auto r = store->events().read_all(3, 4);
    REQUIRE_OK(r);
    REQUIRE(r->size() == 4);
    for (std::size_t i = 0; i < r->size(); ++i) {
      CHECK((*r)[i].position == 4 + i);
      CHECK((*r)[i].data == nlohmann::json{{"n", 3 + i}});
    }
  }

  SECTION("read_all pages through the whole log") {
    std::vector<std::uint64_t> seen;
    std::uint64_t after = 0;
    for (;;) {
      auto page = store->events().read_all(after, 4);
      REQUIRE_OK(page);
      if (page->empty()) break;
      CHECK(page->size() <= 4);
      for (const auto& e : *page) seen.push_back(e.position);
      after = page->back().position;
    }
    CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  }

  SECTION("read_all at or beyond the head is empty") {
    auto at_head = store->events().read_all(9, 10);
    REQUIRE_OK(at_head);
    CHECK(at_head->empty());
    auto beyond = store->events().read_all(100, 10);
    REQUIRE_OK(beyond);
    CHECK(beyond->empty());
  }
}

// ---------------------------------------------------------------------------------------
// Event store: durability across reopen
// ---------------------------------------------------------------------------------------

TEST_CASE("a reopened store keeps events, stream versions and the head position", "[rocksdb]") {
  temp_dir dir;
  std::vector<envelope> before;
  {
    auto store = open_store(dir);
    append_ok(*store, {to("user-1", expected_version::no_stream(), {ev("user.registered", {{"u", "alice"}})}),
                       to("username-alice", expected_version::no_stream(), {ev("username.claimed")})});
    append_ok(*store, {to("user-1", expected_version::exact(1), {ev("user.renamed"), ev("user.renamed")})});
    REQUIRE_OK(store->read_models().commit("users", {row_put{"by_id", "user-1", {{"name", "alice"}}}}, 4));
    before = all_events(*store);
    REQUIRE(before.size() == 4);
    REQUIRE(store->events().head_position() == 4);
  }  // closed here

  auto store = open_store(dir);
  CHECK(store->events().head_position() == 4);
  CHECK(version_of(*store, "user-1") == 3);
  CHECK(version_of(*store, "username-alice") == 1);

  const auto after = all_events(*store);
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].position == before[i].position);
    CHECK(after[i].stream == before[i].stream);
    CHECK(after[i].version == before[i].version);
    CHECK(after[i].id == before[i].id);
    CHECK(after[i].time == before[i].time);
    CHECK(after[i].type == before[i].type);
    CHECK(after[i].data == before[i].data);
  }

  // The projection's rows and checkpoint survived too.
  auto cp = store->read_models().checkpoint("users");
  REQUIRE_OK(cp);
  CHECK(*cp == 4);
  auto row = store->read_models().get("users", "by_id", "user-1");
  REQUIRE_OK(row);
  REQUIRE(row->has_value());
  CHECK(**row == nlohmann::json{{"name", "alice"}});

  // Expected versions see the stored heads, and positions continue gaplessly.
  auto conflict =
      store->events().append({to("username-alice", expected_version::no_stream(), {ev("username.claimed")})});
  REQUIRE_FALSE(conflict.has_value());
  CHECK(conflict.error().code == errc::version_conflict);

  const auto next = append_ok(*store, {to("user-1", expected_version::exact(3), {ev("user.renamed")})});
  REQUIRE(next.size() == 1);
  CHECK(next[0].position == 5);
  CHECK(next[0].version == 4);
  CHECK(store->events().head_position() == 5);

  // Idempotency survives a reopen as well.
  const auto retry_id = before[0].id;
  proposed_event same = ev("user.registered", {{"u", "alice"}}, retry_id);
  const auto retry = append_ok(*store, {to("user-1", expected_version::no_stream(), {same})});
  REQUIRE(retry.size() == 1);
  CHECK(retry[0].position == 1);
  CHECK(store->events().head_position() == 5);
}

/// Runs `fn(db, family)` on the raw RocksDB database in `dir` (the store closed), with
/// the handle of column family `family`.
template <class F>
void with_raw_family(const temp_dir& dir, const std::string& family, F fn) {
  rocksdb::Options options;
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(options, dir.str(), &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(options, dir.str(), descriptors, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  const auto it = std::find(names.begin(), names.end(), family);
  REQUIRE(it != names.end());
  fn(*db, handles[static_cast<std::size_t>(it - names.begin())]);
  for (auto* h : handles) REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
  REQUIRE(db->Close().ok());
}

TEST_CASE("stream heads come from the streams index, also in a data dir with the old stream_heads family",
          "[rocksdb]") {
  // Since issue 19 the store writes no `stream_heads` record per append: a stream's head
  // is its last `streams` key. Data dirs written before hold a `stream_heads` family;
  // it is neither read nor trusted (here it is made to lie).
  temp_dir dir;
  {
    auto store = open_store(dir);
    // Stream ids that are prefixes of one another must not see each other's versions.
    append_ok(*store, {to("a", expected_version::no_stream(), {ev("thing.happened"), ev("thing.happened")})});
    append_ok(*store, {to("ab", expected_version::no_stream(), {ev("thing.happened")})});
    append_ok(*store, {to("a-b", expected_version::no_stream(),
                          {ev("thing.happened"), ev("thing.happened"), ev("thing.happened")})});
  }
  {
    // What a pre-issue-19 store left behind, with wrong values.
    with_raw_family(dir, "stream_heads", [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* heads) {
      const std::string ninety_nine("\0\0\0\0\0\0\0\x63\0\0\0\0\0\0\0\x63", 16);
      for (const char* stream : {"a", "ab", "a-b", "never"}) {
        REQUIRE(db.Put(rocksdb::WriteOptions(), heads, stream, ninety_nine).ok());
      }
    });
  }
  auto store = open_store(dir);
  CHECK(version_of(*store, "a") == 2);
  CHECK(version_of(*store, "ab") == 1);
  CHECK(version_of(*store, "a-b") == 3);
  CHECK(version_of(*store, "never") == 0);
  CHECK(version_of(*store, "a-") == 0);
  // Expected versions are checked against the same heads (the head cache is empty after a reopen).
  auto stale = store->events().append({to("a", expected_version::exact(1), {ev("thing.happened")})});
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error().code == errc::version_conflict);
  CHECK(stale.error().details.at("current_version") == 2);
  auto exists = store->events().append({to("never", expected_version::exact(99), {ev("thing.happened")})});
  REQUIRE_FALSE(exists.has_value());
  CHECK(exists.error().code == errc::version_conflict);
  const auto next = append_ok(*store, {to("ab", expected_version::exact(1), {ev("thing.happened")}),
                                       to("never", expected_version::no_stream(), {ev("thing.happened")})});
  REQUIRE(next.size() == 2);
  CHECK(next[0].version == 2);
  CHECK(next[1].version == 1);
  CHECK(next[1].position == 8);
  CHECK(store->events().verify_chain()->ok);
}

TEST_CASE("a reopened store still serves a projection family that is no longer listed", "[rocksdb]") {
  temp_dir dir;
  {
    auto store = open_store(dir);
    REQUIRE_OK(store->read_models().commit("audit", {row_put{"log", "1", {{"x", 1}}}}, 1));
  }
  auto reopened = rocksdb_store::open(dir.str(), {"users"});
  REQUIRE_OK(reopened);
  auto row = (*reopened)->read_models().get("audit", "log", "1");
  REQUIRE_OK(row);
  REQUIRE(row->has_value());
  CHECK(**row == nlohmann::json{{"x", 1}});
}

// ---------------------------------------------------------------------------------------
// Read-model store
// ---------------------------------------------------------------------------------------

TEST_CASE("read-model commit writes rows and checkpoint, get and row_delete", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);

  auto cp0 = store->read_models().checkpoint("users");
  REQUIRE_OK(cp0);
  CHECK(*cp0 == 0);

  std::vector<mutation> batch{row_put{"by_id", "user-1", {{"name", "alice"}}},
                              row_put{"by_id", "user-2", {{"name", "bob"}}},
                              row_put{"by_name", "alice", {{"id", "user-1"}}}};
  REQUIRE_OK(store->read_models().commit("users", batch, 7));

  auto cp = store->read_models().checkpoint("users");
  REQUIRE_OK(cp);
  CHECK(*cp == 7);
  auto other_cp = store->read_models().checkpoint("audit");
  REQUIRE_OK(other_cp);
  CHECK(*other_cp == 0);

  auto alice = store->read_models().get("users", "by_id", "user-1");
  REQUIRE_OK(alice);
  REQUIRE(alice->has_value());
  CHECK(**alice == nlohmann::json{{"name", "alice"}});
  auto by_name = store->read_models().get("users", "by_name", "alice");
  REQUIRE_OK(by_name);
  REQUIRE(by_name->has_value());
  CHECK(**by_name == nlohmann::json{{"id", "user-1"}});

  // Absent rows: unknown key, key of another table, same key in another projection.
  auto missing = store->read_models().get("users", "by_id", "user-3");
  REQUIRE_OK(missing);
  CHECK_FALSE(missing->has_value());
  auto wrong_table = store->read_models().get("users", "by_name", "user-1");
  REQUIRE_OK(wrong_table);
  CHECK_FALSE(wrong_table->has_value());
  auto wrong_projection = store->read_models().get("audit", "by_id", "user-1");
  REQUIRE_OK(wrong_projection);
  CHECK_FALSE(wrong_projection->has_value());

  // Replace one row, delete another (and a row that never existed), advance the checkpoint.
  REQUIRE_OK(store->read_models().commit("users",
                                         {row_put{"by_id", "user-1", {{"name", "alice2"}}},
                                          row_delete{"by_id", "user-2"}, row_delete{"by_id", "never-there"}},
                                         9));
  auto cp2 = store->read_models().checkpoint("users");
  REQUIRE_OK(cp2);
  CHECK(*cp2 == 9);
  auto alice2 = store->read_models().get("users", "by_id", "user-1");
  REQUIRE_OK(alice2);
  REQUIRE(alice2->has_value());
  CHECK(**alice2 == nlohmann::json{{"name", "alice2"}});
  auto bob = store->read_models().get("users", "by_id", "user-2");
  REQUIRE_OK(bob);
  CHECK_FALSE(bob->has_value());

  // A commit with no mutations only advances the checkpoint.
  REQUIRE_OK(store->read_models().commit("users", {}, 12));
  auto cp3 = store->read_models().checkpoint("users");
  REQUIRE_OK(cp3);
  CHECK(*cp3 == 12);
  auto still = store->read_models().get("users", "by_id", "user-1");
  REQUIRE_OK(still);
  CHECK(still->has_value());
}

TEST_CASE("read-model operations on an unknown projection are not_found", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);

  auto g = store->read_models().get("nope", "t", "k");
  REQUIRE_FALSE(g.has_value());
  CHECK(g.error().code == errc::not_found);

  auto s = store->read_models().scan("nope", "t", "", "", 10, false);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == errc::not_found);

  auto c = store->read_models().commit("nope", {row_put{"t", "k", {{"a", 1}}}}, 3);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().code == errc::not_found);
  // The failed commit did not set a checkpoint.
  auto cp = store->read_models().checkpoint("nope");
  REQUIRE_OK(cp);
  CHECK(*cp == 0);
}

TEST_CASE("read-model scan: prefix, paging, reverse and isolation", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);

  std::vector<mutation> rows;
  for (const char* k : {"a1", "a2", "a3", "a4", "b1", "b2", "c1"}) {
    rows.emplace_back(row_put{"items", k, {{"k", k}}});
  }
  // Neighbouring tables whose names sort just before and just after "items", and a
  // table whose name extends it.
  rows.emplace_back(row_put{"item", "a0", {{"k", "item/a0"}}});
  rows.emplace_back(row_put{"items2", "a9", {{"k", "items2/a9"}}});
  rows.emplace_back(row_put{"itemz", "a5", {{"k", "itemz/a5"}}});
  REQUIRE_OK(store->read_models().commit("users", rows, 1));
  // Same table and keys in another projection.
  REQUIRE_OK(
      store->read_models().commit("audit",
                                  {row_put{"items", "a0", {{"k", "audit"}}}, row_put{"items", "a5", {{"k", "audit"}}},
                                   row_put{"items", "z9", {{"k", "audit"}}}},
                                  1));

  auto scan = [&](std::string_view table, std::string_view prefix, std::string_view after, std::size_t limit,
                  bool reverse) {
    auto r = store->read_models().scan("users", table, prefix, after, limit, reverse);
    INFO(error_text(r));
    REQUIRE(r.has_value());
    return *r;
  };

  SECTION("the whole table in key order, with values") {
    const auto r = scan("items", "", "", 100, false);
    CHECK(keys_of(r) == strings{"a1", "a2", "a3", "a4", "b1", "b2", "c1"});
    REQUIRE(r.size() == 7);
    CHECK(r[0].value == nlohmann::json{{"k", "a1"}});
    CHECK(r[6].value == nlohmann::json{{"k", "c1"}});
  }

  SECTION("a prefix") {
    CHECK(keys_of(scan("items", "a", "", 100, false)) == strings{"a1", "a2", "a3", "a4"});
    CHECK(keys_of(scan("items", "b", "", 100, false)) == strings{"b1", "b2"});
    CHECK(keys_of(scan("items", "c", "", 100, false)) == strings{"c1"});
    CHECK(keys_of(scan("items", "a3", "", 100, false)) == strings{"a3"});
    CHECK(scan("items", "d", "", 100, false).empty());
    CHECK(scan("items", "0", "", 100, false).empty());
  }

  SECTION("a limit") {
    CHECK(keys_of(scan("items", "a", "", 2, false)) == strings{"a1", "a2"});
    CHECK(scan("items", "a", "", 0, false).empty());
  }

  SECTION("paging forward with after") {
    std::vector<std::string> seen;
    std::string after;
    for (int guard = 0; guard < 10; ++guard) {
      const auto page = scan("items", "a", after, 3, false);
      if (page.empty()) break;
      for (const auto& r : page) seen.push_back(r.key);
      after = page.back().key;
    }
    CHECK(seen == strings{"a1", "a2", "a3", "a4"});
    CHECK(keys_of(scan("items", "a", "a2", 100, false)) == strings{"a3", "a4"});
    CHECK(keys_of(scan("items", "", "a4", 100, false)) == strings{"b1", "b2", "c1"});
    // after need not be a stored key.
    CHECK(keys_of(scan("items", "", "a25", 100, false)) == strings{"a3", "a4", "b1", "b2", "c1"});
    CHECK(keys_of(scan("items", "b", "a", 100, false)) == strings{"b1", "b2"});
    CHECK(scan("items", "a", "a4", 100, false).empty());
    CHECK(scan("items", "a", "zz", 100, false).empty());
  }

  SECTION("reverse from the end") {
    CHECK(keys_of(scan("items", "", "", 100, true)) == strings{"c1", "b2", "b1", "a4", "a3", "a2", "a1"});
    CHECK(keys_of(scan("items", "a", "", 100, true)) == strings{"a4", "a3", "a2", "a1"});
    CHECK(keys_of(scan("items", "b", "", 100, true)) == strings{"b2", "b1"});
    CHECK(keys_of(scan("items", "a", "", 2, true)) == strings{"a4", "a3"});
    CHECK(scan("items", "d", "", 100, true).empty());
  }

  SECTION("reverse before a key, paging backwards") {
    CHECK(keys_of(scan("items", "a", "a3", 100, true)) == strings{"a2", "a1"});
    CHECK(keys_of(scan("items", "", "b1", 2, true)) == strings{"a4", "a3"});
    CHECK(keys_of(scan("items", "", "a35", 100, true)) == strings{"a3", "a2", "a1"});
    CHECK(keys_of(scan("items", "a", "z", 100, true)) == strings{"a4", "a3", "a2", "a1"});
    CHECK(scan("items", "a", "a1", 100, true).empty());
    CHECK(scan("items", "b", "a9", 100, true).empty());

    std::vector<std::string> seen;
    std::string after;
    for (int guard = 0; guard < 10; ++guard) {
      const auto page = scan("items", "", after, 3, true);
      if (page.empty()) break;
      for (const auto& r : page) seen.push_back(r.key);
      after = page.back().key;
    }
    CHECK(seen == strings{"c1", "b2", "b1", "a4", "a3", "a2", "a1"});
  }

  SECTION("no rows of another table leak in") {
    CHECK(keys_of(scan("item", "", "", 100, false)) == strings{"a0"});
    CHECK(keys_of(scan("item", "", "", 100, true)) == strings{"a0"});
    CHECK(keys_of(scan("items2", "", "", 100, false)) == strings{"a9"});
    CHECK(keys_of(scan("items2", "", "", 100, true)) == strings{"a9"});
    CHECK(keys_of(scan("itemz", "a", "", 100, true)) == strings{"a5"});
    CHECK(scan("other", "", "", 100, false).empty());
    CHECK(scan("other", "", "", 100, true).empty());
    for (const auto& r : scan("items", "", "", 100, false)) CHECK(r.value.at("k") == r.key);
    for (const auto& r : scan("items", "", "", 100, true)) CHECK(r.value.at("k") == r.key);
  }

  SECTION("no rows of another projection leak in") {
    auto audit = store->read_models().scan("audit", "items", "", "", 100, false);
    REQUIRE_OK(audit);
    CHECK(keys_of(*audit) == strings{"a0", "a5", "z9"});
    auto audit_rev = store->read_models().scan("audit", "items", "a", "", 100, true);
    REQUIRE_OK(audit_rev);
    CHECK(keys_of(*audit_rev) == strings{"a5", "a0"});
  }
}

std::string row_bytes(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h, const std::string& table,
                      const std::string& key) {
  std::string value;
  REQUIRE(db.Get(rocksdb::ReadOptions(), h, table + '\0' + key, &value).ok());
  return value;
}

TEST_CASE("read-model rows are stored as MessagePack and read back equal", "[rocksdb]") {
  temp_dir dir;
  const nlohmann::json row = {
      {"name", "Zoë – 名前 🚀"},
      {"empty", ""},
      {"n", 42},
      {"neg", -7},
      {"big", std::uint64_t{18446744073709551615ULL}},
      {"small", std::int64_t{-9223372036854775807LL - 1}},
      {"pi", 3.141592653589793},
      {"half", 0.5},
      {"yes", true},
      {"none", nullptr},
      {"list", {1, "two", {{"three", 3}}, nlohmann::json::array()}},
      {"obj", nlohmann::json::object()},
  };
  const nlohmann::json array_row = {"a", 1, nullptr};
  {
    auto store = open_store(dir);
    REQUIRE_OK(store->read_models().commit("users",
                                           {row_put{"t", "object", row}, row_put{"t", "array", array_row},
                                            row_put{"t", "string", "just text"}, row_put{"t", "number", 5}},
                                           1));
    auto got = store->read_models().get("users", "t", "object");
    REQUIRE_OK(got);
    REQUIRE(got->has_value());
    CHECK(**got == row);
    CHECK((*got)->dump() == row.dump());
    auto rows = store->read_models().scan("users", "t", "", "", 10, false);
    REQUIRE_OK(rows);
    REQUIRE(rows->size() == 4);
    CHECK((*rows)[0].key == "array");
    CHECK((*rows)[0].value == array_row);
    CHECK((*rows)[1].value == 5);
    CHECK((*rows)[2].value == row);
    CHECK((*rows)[3].value == "just text");
  }
  with_raw_family(dir, "proj_users", [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
    // Objects and arrays as MessagePack (a map / array marker first), scalars as JSON text.
    CHECK(row_bytes(db, h, "t", "object") == [&] {
      std::string b;
      for (auto c : nlohmann::json::to_msgpack(row)) b.push_back(static_cast<char>(c));
      return b;
    }());
    CHECK(static_cast<unsigned char>(row_bytes(db, h, "t", "array").front()) == 0x93);
    CHECK(row_bytes(db, h, "t", "string") == "\"just text\"");
    CHECK(row_bytes(db, h, "t", "number") == "5");
  });
}

TEST_CASE("read-model rows written as JSON text (before MessagePack) stay readable", "[rocksdb]") {
  temp_dir dir;
  { auto store = open_store(dir); }
  // What a data dir written by earlier code holds: every row as JSON text.
  const std::vector<std::pair<std::string, std::string>> old_rows{
      {"a-object", R"({"name":"Zoë","n":3,"tags":["x","y"],"deep":{"ok":true,"none":null}})"},
      {"b-spaced", " \n\t{\"k\": \"v\"}"},
      {"c-array", R"([1,2,{"three":3}])"},
      {"d-string", R"("text")"},
      {"e-number", "-12.5"},
      {"f-true", "true"},
      {"g-null", "null"},
      {"h-escaped", R"({"s":"caf\u00e9 \ud83d\ude80 \"q\""})"},
  };
  with_raw_family(dir, "proj_users", [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
    for (const auto& [k, v] : old_rows)
      REQUIRE(db.Put(rocksdb::WriteOptions(), h, std::string("old") + '\0' + k, v).ok());
  });
  auto store = open_store(dir);
  for (const auto& [k, v] : old_rows) {
    INFO(k);
    auto got = store->read_models().get("users", "old", k);
    REQUIRE_OK(got);
    REQUIRE(got->has_value());
    CHECK(**got == nlohmann::json::parse(v));
  }
  // New rows (MessagePack) next to old ones (JSON) in one scan.
  REQUIRE_OK(store->read_models().commit("users", {row_put{"old", "a-new", {{"fresh", 1}}}}, 1));
  auto rows = store->read_models().scan("users", "old", "", "", 100, false);
  REQUIRE_OK(rows);
  REQUIRE(rows->size() == old_rows.size() + 1);
  CHECK((*rows)[0].key == "a-new");
  CHECK((*rows)[0].value == nlohmann::json{{"fresh", 1}});
  CHECK((*rows)[1].value.at("tags") == nlohmann::json{"x", "y"});
  CHECK((*rows)[8].value.at("s") == "café 🚀 \"q\"");
  // An old row rewritten is stored in the new format and still reads back.
  REQUIRE_OK(store->read_models().commit("users", {row_put{"old", "b-spaced", {{"k", "w"}}}}, 2));
  auto rewritten = store->read_models().get("users", "old", "b-spaced");
  REQUIRE_OK(rewritten);
  CHECK(**rewritten == nlohmann::json{{"k", "w"}});
}

TEST_CASE("a read-model row with invalid UTF-8 is stored with replacement characters", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  const nlohmann::json bad = {{"name", std::string("cut \xe2\x82")}, {"list", {std::string("\xff")}}};
  const nlohmann::json bad_key = {{std::string("k\xc3"), 1}};
  REQUIRE_OK(store->read_models().commit(
      "users", {row_put{"t", "bad", bad}, row_put{"t", "bad-key", bad_key}, row_put{"t", "ok", {{"a", 1}}}}, 1));
  auto got = store->read_models().get("users", "t", "bad");
  REQUIRE_OK(got);
  REQUIRE(got->has_value());
  CHECK((*got)->at("name") == "cut \xef\xbf\xbd");
  CHECK((*got)->at("list").at(0) == "\xef\xbf\xbd");
  CHECK_NOTHROW((*got)->dump());
  auto key = store->read_models().get("users", "t", "bad-key");
  REQUIRE_OK(key);
  CHECK(**key == nlohmann::json{{"k\xef\xbf\xbd", 1}});
  // The projection moved on: the checkpoint is the commit's, the valid row is there.
  CHECK(store->read_models().checkpoint("users").value() == 1);
  CHECK(store->read_models().get("users", "t", "ok").value() == nlohmann::json{{"a", 1}});
}

TEST_CASE("a corrupt read-model row is an internal error, not a crash", "[rocksdb]") {
  temp_dir dir;
  { auto store = open_store(dir); }
  with_raw_family(dir, "proj_users", [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
    // A map of one entry cut short, a JSON object cut short, an empty value, trailing bytes.
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"a", "\x81\xa1k"}, {"b", "{\"k\":"}, {"c", ""}, {"d", std::string("\x80\x00", 2)}}) {
      REQUIRE(db.Put(rocksdb::WriteOptions(), h, std::string("t") + '\0' + k, v).ok());
    }
  });
  auto store = open_store(dir);
  for (const char* k : {"a", "b", "c", "d"}) {
    INFO(k);
    auto got = store->read_models().get("users", "t", k);
    REQUIRE_FALSE(got.has_value());
    CHECK(got.error().code == errc::internal);
    CHECK(got.error().message.starts_with("corrupt row"));
  }
  auto rows = store->read_models().scan("users", "t", "", "", 10, false);
  REQUIRE_FALSE(rows.has_value());
  CHECK(rows.error().code == errc::internal);
}

// ---------------------------------------------------------------------------------------
// Token store
// ---------------------------------------------------------------------------------------

TEST_CASE("token store: put, get, erase", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  atrium::ports::token_store& tokens = store->kv();

  const std::string hash_a(64, 'a');
  const std::string hash_b(64, 'b');

  auto unknown = tokens.get(hash_a);
  REQUIRE_OK(unknown);
  CHECK_FALSE(unknown->has_value());

  REQUIRE_OK(tokens.put(hash_a, atrium::ports::session_record{"user-1", 1'700'000'000, 1'700'086'400}));
  REQUIRE_OK(tokens.put(hash_b, atrium::ports::session_record{"user-2", 1'800'000'000, 4'102'444'800}));

  auto a = tokens.get(hash_a);
  REQUIRE_OK(a);
  REQUIRE(a->has_value());
  CHECK((*a)->user_id == "user-1");
  CHECK((*a)->issued_at == 1'700'000'000);
  CHECK((*a)->expires_at == 1'700'086'400);

  auto b = tokens.get(hash_b);
  REQUIRE_OK(b);
  REQUIRE(b->has_value());
  CHECK((*b)->user_id == "user-2");
  CHECK((*b)->expires_at == 4'102'444'800);

  // Overwrite.
  REQUIRE_OK(tokens.put(hash_a, atrium::ports::session_record{"user-1", 10, 20}));
  auto a2 = tokens.get(hash_a);
  REQUIRE_OK(a2);
  REQUIRE(a2->has_value());
  CHECK((*a2)->issued_at == 10);
  CHECK((*a2)->expires_at == 20);

  REQUIRE_OK(tokens.erase(hash_a));
  auto gone = tokens.get(hash_a);
  REQUIRE_OK(gone);
  CHECK_FALSE(gone->has_value());
  auto kept = tokens.get(hash_b);
  REQUIRE_OK(kept);
  CHECK(kept->has_value());

  // Erasing an absent token is fine.
  REQUIRE_OK(tokens.erase(hash_a));
  REQUIRE_OK(tokens.erase(std::string(64, 'c')));

  // Tokens are not events, and survive a reopen.
  CHECK(store->events().head_position() == 0);
  store.reset();
  auto reopened = open_store(dir);
  auto b2 = reopened->kv().get(hash_b);
  REQUIRE_OK(b2);
  REQUIRE(b2->has_value());
  CHECK((*b2)->user_id == "user-2");
  auto a3 = reopened->kv().get(hash_a);
  REQUIRE_OK(a3);
  CHECK_FALSE(a3->has_value());
}

TEST_CASE("token store: erase_user ends one user's sessions, keeping one if asked", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  atrium::ports::token_store& tokens = store->kv();
  const std::string a1(64, '1'), a2(64, '2'), a3(64, '3'), b1(64, '4');
  for (const auto& h : {a1, a2, a3})
    REQUIRE_OK(tokens.put(h, atrium::ports::session_record{"user-a", 1, 4'102'444'800}));
  REQUIRE_OK(tokens.put(b1, atrium::ports::session_record{"user-b", 1, 4'102'444'800}));

  auto kept = tokens.erase_user("user-a", a2);
  REQUIRE_OK(kept);
  CHECK(*kept == 2);
  auto present = [&](const std::string& h) {
    auto s = tokens.get(h);
    REQUIRE_OK(s);
    return s->has_value();
  };
  CHECK_FALSE(present(a1));
  CHECK(present(a2));
  CHECK_FALSE(present(a3));
  CHECK(present(b1));

  auto all = tokens.erase_user("user-a", "");
  REQUIRE_OK(all);
  CHECK(*all == 1);
  CHECK_FALSE(present(a2));
  CHECK(present(b1));
  auto none = tokens.erase_user("user-nobody", "");
  REQUIRE_OK(none);
  CHECK(*none == 0);
}

TEST_CASE("token store: API tokens are listed by owner, found by id, touched, kept by erase_user", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  atrium::ports::token_store& tokens = store->kv();
  auto api = [](std::string user, std::string id, std::int64_t issued, std::int64_t expires) {
    atrium::ports::session_record r{std::move(user), issued, expires};
    r.kind = atrium::ports::token_kind::api;
    r.token_id = std::move(id);
    r.name = "token " + r.token_id;
    r.scopes = {"events:read", "jobs:work"};
    r.created_by = "admin-1";
    return r;
  };
  const std::string s1(64, 's'), t1(64, 'a'), t2(64, 'b'), t3(64, 'c');
  REQUIRE_OK(tokens.put(s1, atrium::ports::session_record{"user-a", 1, 4'102'444'800}));
  REQUIRE_OK(tokens.put(t1, api("user-a", "tok-2", 20, 0)));
  REQUIRE_OK(tokens.put(t2, api("user-a", "tok-1", 10, 30)));
  REQUIRE_OK(tokens.put(t3, api("user-b", "tok-3", 5, 0)));

  auto of_a = tokens.api_tokens_of("user-a");
  REQUIRE_OK(of_a);
  REQUIRE(of_a->size() == 2);                    // the session is not an API token
  CHECK((*of_a)[0].record.token_id == "tok-1");  // oldest first
  CHECK((*of_a)[0].token_hash == t2);
  CHECK((*of_a)[1].record.token_id == "tok-2");
  CHECK((*of_a)[1].record.scopes == std::vector<std::string>{"events:read", "jobs:work"});
  CHECK((*of_a)[1].record.created_by == "admin-1");
  CHECK((*of_a)[0].record.expired(30));
  CHECK_FALSE((*of_a)[0].record.expired(29));
  CHECK_FALSE((*of_a)[1].record.expired(std::int64_t{1} << 40));  // 0 never expires

  auto found = tokens.api_token("tok-3");
  REQUIRE_OK(found);
  REQUIRE(found->has_value());
  CHECK((*found)->record.user_id == "user-b");
  auto missing = tokens.api_token("tok-9");
  REQUIRE_OK(missing);
  CHECK_FALSE(missing->has_value());

  REQUIRE_OK(tokens.touch(t1, 12345));
  auto touched = tokens.get(t1);
  REQUIRE_OK(touched);
  REQUIRE(touched->has_value());
  CHECK((*touched)->last_used_at == 12345);
  CHECK((*touched)->kind == atrium::ports::token_kind::api);
  // Touching a revoked token never brings it back.
  REQUIRE_OK(tokens.erase(t3));
  REQUIRE_OK(tokens.touch(t3, 99));
  auto gone = tokens.get(t3);
  REQUIRE_OK(gone);
  CHECK_FALSE(gone->has_value());

  // Ending a user's sessions keeps their API tokens.
  auto ended = tokens.erase_user("user-a", "");
  REQUIRE_OK(ended);
  CHECK(*ended == 1);
  auto kept = tokens.api_tokens_of("user-a");
  REQUIRE_OK(kept);
  CHECK(kept->size() == 2);

  // Everything survives a reopen.
  store.reset();
  auto reopened = open_store(dir);
  auto again = reopened->kv().api_token("tok-2");
  REQUIRE_OK(again);
  REQUIRE(again->has_value());
  CHECK((*again)->record.last_used_at == 12345);
  CHECK((*again)->record.name == "token tok-2");
}

// ---------------------------------------------------------------------------------------
// Locking
// ---------------------------------------------------------------------------------------

TEST_CASE("a second open of a directory in use fails with unavailable", "[rocksdb]") {
  temp_dir dir;
  auto first = open_store(dir);
  append_ok(*first, {to("user-1", expected_version::no_stream(), {ev("user.registered")})});

  auto second = rocksdb_store::open(dir.str(), k_projections);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code == errc::unavailable);

  // The first store is unaffected.
  CHECK(first->events().head_position() == 1);
  append_ok(*first, {to("user-1", expected_version::exact(1), {ev("user.renamed")})});
  CHECK(first->events().head_position() == 2);

  // Once the first is closed the directory opens again with everything in it.
  first.reset();
  auto third = open_store(dir);
  CHECK(third->events().head_position() == 2);
  CHECK(version_of(*third, "user-1") == 2);
}

// ---------------------------------------------------------------------------------------
// Edge cases found while writing these tests (regressions of fixed bugs).
// ---------------------------------------------------------------------------------------

TEST_CASE("an append naming the same event id twice is rejected", "[rocksdb]") {
  // Both events would be written with id "dup" and a retry would return the second twice.
  temp_dir dir;
  auto store = open_store(dir);
  auto r = store->events().append(
      {to("s-1", expected_version::any(), {ev("a.happened", {{"n", 1}}, "dup"), ev("b.happened", {{"n", 2}}, "dup")})});
  CHECK_FALSE(r.has_value());
  if (!r.has_value()) CHECK(r.error().code == errc::invalid_argument);
  CHECK(store->events().head_position() == 0);
}

TEST_CASE("read_all after the largest position is empty", "[rocksdb]") {
  // be64(after + 1) wraps to 0 for UINT64_MAX and would return the whole log.
  temp_dir dir;
  auto store = open_store(dir);
  append_ok(*store, {to("s-1", expected_version::any(), {ev("a.happened"), ev("b.happened")})});
  auto r = store->events().read_all(UINT64_MAX, 10);
  REQUIRE_OK(r);
  CHECK(r->empty());
}

TEST_CASE("read-model reset drops every row and the checkpoint of one projection only", "[rocksdb]") {
  temp_dir dir;
  auto store = open_store(dir);
  // Rows in several tables, including keys with bytes a fixed upper bound could miss.
  REQUIRE_OK(store->read_models().commit(
      "users",
      {row_put{"by_id", "user-1", {{"name", "alice"}}}, row_put{"by_id", "user-2", {{"n", 2}}},
       row_put{"by_name", "alice", {{"id", "user-1"}}}, row_put{"zz", std::string("\xff\xff", 2), {{"edge", true}}},
       row_put{"", "empty-table", {{"edge", true}}}},
      7));
  REQUIRE_OK(store->read_models().commit("audit", {row_put{"entries", "00000000000000000001", {{"position", 1}}}}, 5));

  REQUIRE_OK(store->read_models().reset("users"));

  auto cp = store->read_models().checkpoint("users");
  REQUIRE_OK(cp);
  CHECK(*cp == 0);
  for (const auto& table : {"by_id", "by_name", "zz", ""}) {
    auto rows = store->read_models().scan("users", table, "", "", 100, false);
    REQUIRE_OK(rows);
    CHECK(rows->empty());
  }
  auto gone = store->read_models().get("users", "zz", std::string("\xff\xff", 2));
  REQUIRE_OK(gone);
  CHECK_FALSE(gone->has_value());

  // The other projection keeps its rows and checkpoint.
  auto audit_cp = store->read_models().checkpoint("audit");
  REQUIRE_OK(audit_cp);
  CHECK(*audit_cp == 5);
  auto entry = store->read_models().get("audit", "entries", "00000000000000000001");
  REQUIRE_OK(entry);
  CHECK(entry->has_value());

  // The projection is rebuilt on top of the reset, and a reset of an empty one is fine.
  REQUIRE_OK(store->read_models().commit("users", {row_put{"by_id", "user-3", {{"n", 3}}}}, 1));
  auto rebuilt = store->read_models().scan("users", "by_id", "", "", 100, false);
  REQUIRE_OK(rebuilt);
  CHECK(keys_of(*rebuilt) == strings{"user-3"});
  REQUIRE_OK(store->read_models().reset("users"));
  REQUIRE_OK(store->read_models().reset("users"));

  // An unknown projection is not_found; the reset survives a reopen.
  auto unknown = store->read_models().reset("nope");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().code == errc::not_found);
  store.reset();
  auto reopened = open_store(dir);
  auto after_cp = reopened->read_models().checkpoint("users");
  REQUIRE_OK(after_cp);
  CHECK(*after_cp == 0);
  auto after_rows = reopened->read_models().scan("users", "by_id", "", "", 100, false);
  REQUIRE_OK(after_rows);
  CHECK(after_rows->empty());
  auto audit_after = reopened->read_models().checkpoint("audit");
  REQUIRE_OK(audit_after);
  CHECK(*audit_after == 5);
}

TEST_CASE("one memory budget: the block cache is charged with the memtables, and every write survives",
          "[rocksdb][memory]") {
  // Issue 19, point 5: memtables and blocks share `memory_budget_bytes` (the block cache
  // is charged with the memtables). Small budgets force many flushes of the memtables.
  temp_dir dir;
  atrium::rocksdb_adapter::store_options options;
  options.memory_budget_bytes = 8u << 20;
  options.memtable_budget_bytes = 2u << 20;
  options.reserve_free_bytes = 0;
  auto opened = rocksdb_store::open(dir.str(), k_projections, options);
  REQUIRE_OK(opened);
  auto store = std::move(*opened);

  const auto fresh = store->db().memory();
  CHECK(fresh.budget == options.memory_budget_bytes);

  // Before any flush nothing was read from a table file, so whatever the cache holds is
  // the memtables' reservation.
  const std::string filler(1000, 'x');
  append_ok(*store, {to("first", expected_version::no_stream(), {ev("thing.made", {{"filler", filler}})})});
  const auto charged = store->db().memory();
  CHECK(charged.sst_files == 0);
  CHECK(charged.memtables > 0);
  CHECK(charged.block_cache >= charged.memtables / 2);
  CHECK(charged.block_cache > 0);

  // 8,000 events of ~1 KiB: about 4 times the memtable budget, so flushes happen and
  // table files are read back through the same cache.
  constexpr int streams = 400;
  constexpr int rounds = 20;
  for (int round = 0; round < rounds; ++round) {
    std::vector<stream_append> appends;
    for (int s = 0; s < streams; ++s) {
      appends.push_back(to("s" + std::to_string(s),
                           round == 0 ? expected_version::no_stream() : expected_version::exact(round),
                           {ev("thing.changed", {{"round", round}, {"filler", filler}})}));
    }
    append_ok(*store, std::move(appends));
  }
  const auto after = store->db().memory();
  CHECK(after.budget == options.memory_budget_bytes);
  CHECK(after.sst_files > 0);

  // Every acknowledged event is there, in order, before and after a reopen.
  auto check_all = [&](rocksdb_store& s) {
    for (int i = 0; i < streams; i += 37) {
      auto got = s.events().read_stream("s" + std::to_string(i), 1, 100);
      REQUIRE_OK(got);
      REQUIRE(got->size() == static_cast<std::size_t>(rounds));
      for (int round = 0; round < rounds; ++round) CHECK((*got)[round].data.at("round") == round);
    }
    auto head = s.events().read_all(0, 1);
    REQUIRE_OK(head);
    REQUIRE(head->size() == 1);
    CHECK(head->front().stream == "first");
  };
  check_all(*store);
  store.reset();
  auto again = rocksdb_store::open(dir.str(), k_projections, options);
  REQUIRE_OK(again);
  check_all(**again);
}
