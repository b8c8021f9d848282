// The Kafka relay against librdkafka's mock cluster (real Kafka protocol over
// loopback TCP): the CloudEvents encoding, the relay publishing a real RocksDB log
// keyed and ordered per stream, a broker outage mid-stream, and a restart mid-relay.
#include <catch2/catch.hpp>

#include <future>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/runtime.hpp"
#include "adapters/kafka/kafka_publisher.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/projections.hpp"
#include "tests/support/kafka_consumer.hpp"
#include "tests/support/process.hpp"
#include "tests/support/store.hpp"

using namespace atrium;
using nlohmann::json;

namespace {

constexpr const char* k_topic = "atrium.events";
constexpr int k_partitions = 4;

envelope sample() {
  envelope e;
  e.position = 42;
  e.stream = "user-u1";
  e.version = 3;
  e.id = "0193a000-0000-7000-8000-000000000001";
  e.type = "user.registered";
  e.time = "2026-11-21T10:00:00.000001Z";
  e.actor = "system";
  e.data = {{"user_id", "u1"}, {"username", "alice"}, {"password_hash", "$argon2id$secret"}};
  return e;
}

/// A store, an embedded cluster, and (while `start` was called) a runtime relaying to it.
struct relay_fixture {
  test::temp_dir dir;
  std::unique_ptr<rocksdb_adapter::rocksdb_store> store;
  std::shared_ptr<kafka_adapter::embedded_cluster> cluster;
  std::string transactional_id;  ///< set: the relay produces in Kafka transactions
  std::unique_ptr<ports::event_publisher> publisher;
  std::unique_ptr<actor_runtime> runtime;
  std::uint64_t appended_streams = 0;
  std::string stream_prefix = "project-p";

  explicit relay_fixture(std::shared_ptr<kafka_adapter::embedded_cluster> shared = nullptr) {
    auto opened = test::open_store(dir.path() / "db");
    store = std::move(opened.store);
    auto projections = std::move(opened.projections);
    if (shared) {
      cluster = std::move(shared);
      return;
    }
    auto c = kafka_adapter::embedded_cluster::start(1, k_topic, k_partitions);
    REQUIRE(c.has_value());
    cluster = std::move(*c);
  }

  void start(std::vector<std::pair<std::string, std::string>> settings = {}) {
    kafka_adapter::kafka_options o;
    o.brokers = cluster->bootstraps();
    o.settings = std::move(settings);
    o.transactional_id = transactional_id;
    auto p = kafka_adapter::make_kafka_publisher(o);
    REQUIRE(p.has_value());
    publisher = std::move(*p);
    runtime_config config;
    config.publisher = publisher.get();
    auto r = actor_runtime::start(store->events(), store->read_models(), {}, config);
    REQUIRE(r.has_value());
    runtime = std::move(*r);
  }

  /// Stops the relay (its checkpoint is saved as it stands), then destroys the
  /// producer as atriumd does at shutdown: what it still had in flight is purged, never
  /// acknowledged, so the next relay publishes it again.
  void stop() {
    runtime.reset();
    publisher.reset();
  }

  /// Appends `streams` new streams of `per_stream` events each (project.renamed
  /// payloads; the relay does not care what they mean).
  void append(std::uint64_t streams, std::uint64_t per_stream) {
    for (std::uint64_t i = 0; i < streams; ++i, ++appended_streams) {
      std::vector<proposed_event> events;
      for (std::uint64_t v = 1; v <= per_stream; ++v) {
        proposed_event e;
        e.type = "project.renamed";
        e.data = {{"name", "n" + std::to_string(v)}};
        e.actor = "system";
        events.push_back(std::move(e));
      }
      auto r = store->events().append({{stream_prefix + std::to_string(appended_streams),
                                        ports::expected_version::no_stream(), std::move(events)}});
      REQUIRE(r.has_value());
    }
  }

  ports::relay_info relay() {
    std::promise<ports::projections_report> p;
    auto f = p.get_future();
    runtime->report([&p](ports::projections_report r) { p.set_value(std::move(r)); });
    auto r = f.get();
    REQUIRE(r.relay.has_value());
    return *r.relay;
  }

  /// Waits until `pred(relay())` or 30 s; returns the last status.
  ports::relay_info wait_for(const std::function<bool(const ports::relay_info&)>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto info = relay();
    while (!pred(info) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      info = relay();
    }
    return info;
  }

  /// Every message of the topic, once at least one per position up to the head arrived.
  std::vector<test::kafka_message> consume_all() {
    const auto head = store->events().head_position();
    return test::consume_topic(
        cluster->bootstraps(), k_topic, k_partitions,
        // Incremental: the predicate runs after every message, so it only looks at the
        // new ones. (It used to rebuild the set from all messages each time: quadratic,
        // which under ASan on a loaded machine ran out the 30 s before 4,000 positions
        // were read — the "unreadable tail" once listed under known issues.)
        [head, positions = std::set<std::string>(),
         seen = std::size_t{0}](const std::vector<test::kafka_message>& got) mutable {
          for (; seen < got.size(); ++seen) {
            const auto& m = got[seen];
            positions.insert(m.headers.count("ce_position") ? m.headers.at("ce_position") : "");
          }
          return positions.size() >= head;
        },
        std::chrono::seconds(30));
  }
};

/// Every message the topic holds now (it reads until it has as many as the topic's
/// offsets: the embedded cluster writes no transaction markers).
std::vector<test::kafka_message> consume_everything(const relay_fixture& f) {
  const auto total = test::topic_end_offsets(f.cluster->bootstraps(), k_topic, k_partitions);
  return test::consume_topic(
      f.cluster->bootstraps(), k_topic, k_partitions,
      [total](const std::vector<test::kafka_message>& got) { return static_cast<std::int64_t>(got.size()) >= total; },
      std::chrono::seconds(30));
}

/// How many copies of each position the messages hold.
std::map<std::uint64_t, int> copies(const std::vector<test::kafka_message>& got) {
  std::map<std::uint64_t, int> n;
  for (const auto& m : got) ++n[std::stoull(m.headers.at("ce_position"))];
  return n;
}

/// Checks that every position 1..head arrived, each message keyed by its stream with
/// its CloudEvents headers, and that per stream the versions arrive in order.
void check_complete(const std::vector<test::kafka_message>& got, const ports::event_store& store) {
  const auto head = store.head_position();
  std::set<std::uint64_t> positions;
  std::map<std::string, std::vector<std::uint64_t>> versions;  // per key, in arrival order
  std::map<std::string, int> partition_of;
  for (const auto& m : got) {
    REQUIRE(m.headers.count("ce_position") == 1);
    positions.insert(std::stoull(m.headers.at("ce_position")));
    CHECK(m.headers.at("ce_specversion") == "1.0");
    CHECK(m.headers.at("ce_subject") == m.key);
    CHECK(m.headers.at("content-type") == "application/json");
    versions[m.key].push_back(std::stoull(m.headers.at("ce_version")));
    if (auto [it, fresh] = partition_of.emplace(m.key, m.partition); !fresh) CHECK(it->second == m.partition);
  }
  CHECK(positions.size() == head);
  CHECK((positions.empty() || (*positions.begin() == 1 && *positions.rbegin() == head)));
  for (const auto& [key, seen] : versions) {
    INFO("stream " << key);
    // At least once: a version may repeat after a retry, never go backwards past one
    // already seen, and none is missing.
    std::uint64_t highest = 0;
    for (auto v : seen) {
      CHECK(v <= highest + 1);
      highest = std::max(highest, v);
    }
    auto stored = store.stream_version(key);
    REQUIRE(stored.has_value());
    CHECK(highest == *stored);
  }
}

}  // namespace

TEST_CASE("a CloudEvents binary message carries the public payload and every attribute as ce_ headers", "[kafka]") {
  const auto m = kafka_adapter::encode_cloudevent(sample(), kafka_adapter::content_mode::binary, "/atrium");
  CHECK(m.key == "user-u1");
  const std::vector<std::pair<std::string, std::string>> want{
      {"ce_specversion", "1.0"},
      {"ce_id", "0193a000-0000-7000-8000-000000000001"},
      {"ce_source", "/atrium"},
      {"ce_type", "atrium.user.registered"},
      {"ce_subject", "user-u1"},
      {"ce_time", "2026-11-21T10:00:00.000001Z"},
      {"ce_position", "42"},
      {"ce_version", "3"},
      {"ce_dataschema", "https://atrium.dev/schemas/events/user.registered.v1.schema.json"},
      {"content-type", "application/json"}};
  CHECK(m.headers == want);
  const auto value = json::parse(m.value);
  CHECK(value == json{{"user_id", "u1"}, {"username", "alice"}});  // the password hash is redacted
}

TEST_CASE("a CloudEvents structured message is one JSON object with the attributes and the data", "[kafka]") {
  const auto m = kafka_adapter::encode_cloudevent(sample(), kafka_adapter::content_mode::structured, "/atrium");
  CHECK(m.key == "user-u1");
  REQUIRE(m.headers.size() == 1);
  CHECK(m.headers[0] == std::pair<std::string, std::string>{"content-type", "application/cloudevents+json"});
  const auto value = json::parse(m.value);
  CHECK(value["specversion"] == "1.0");
  CHECK(value["id"] == "0193a000-0000-7000-8000-000000000001");
  CHECK(value["type"] == "atrium.user.registered");
  CHECK(value["subject"] == "user-u1");
  CHECK(value["position"] == "42");
  CHECK(value["version"] == "3");
  CHECK(value["dataschema"] == "https://atrium.dev/schemas/events/user.registered.v1.schema.json");
  CHECK(value["datacontenttype"] == "application/json");
  CHECK(value["data"] == json{{"user_id", "u1"}, {"username", "alice"}});
}

TEST_CASE("a publisher refuses an empty broker list and a bad librdkafka setting", "[kafka]") {
  kafka_adapter::kafka_options o;
  auto none = kafka_adapter::make_kafka_publisher(o);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code == errc::invalid_argument);
  o.brokers = "127.0.0.1:9";
  o.settings = {{"no.such.setting", "1"}};
  auto bad = kafka_adapter::make_kafka_publisher(o);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == errc::invalid_argument);
  CHECK(bad.error().message.find("no.such.setting") != std::string::npos);
}

TEST_CASE("the relay publishes every event keyed by stream and in order per stream", "[kafka][relay]") {
  relay_fixture f;
  f.append(50, 4);  // before the relay starts: it begins at position 1
  f.start();
  f.append(50, 4);  // while it runs
  const auto head = f.store->events().head_position();
  REQUIRE(head == 400);
  const auto info = f.wait_for([head](const ports::relay_info& r) { return r.checkpoint == head; });
  CHECK(info.checkpoint == head);
  CHECK(info.lag_positions == 0);
  CHECK(info.status == "live");
  CHECK(info.destination.find(k_topic) != std::string::npos);
  const auto got = f.consume_all();
  check_complete(got, f.store->events());
  // Exactly once here: no failure happened, and the idempotent producer never duplicates.
  CHECK(got.size() == head);
}

TEST_CASE("a broker outage mid-stream delays events but loses none", "[kafka][relay]") {
  relay_fixture f;
  SECTION("at least once") {}
  SECTION("in transactions") { f.transactional_id = "atrium-test-relay"; }
  f.start();
  f.append(20, 5);
  REQUIRE(f.wait_for([&](const ports::relay_info& r) { return r.checkpoint == 100; }).checkpoint == 100);

  REQUIRE(f.cluster->set_broker_down(1).has_value());
  f.append(20, 5);  // the log keeps accepting events while Kafka is away
  const auto down = f.wait_for([](const ports::relay_info& r) { return r.status == "degraded" && r.lag_seconds > 0; });
  CHECK(down.status == "degraded");
  CHECK(down.lag_seconds > 0);  // the oldest unacknowledged event's age
  CHECK_FALSE(down.error.empty());
  CHECK(down.checkpoint < f.store->events().head_position());
  CHECK(down.lag_positions > 0);

  REQUIRE(f.cluster->set_broker_up(1).has_value());
  f.append(10, 5);
  const auto head = f.store->events().head_position();
  const auto up = f.wait_for([head](const ports::relay_info& r) { return r.checkpoint == head && r.status == "live"; });
  CHECK(up.checkpoint == head);
  CHECK(up.status == "live");
  check_complete(f.consume_all(), f.store->events());
}

TEST_CASE("a relay stopped mid-stream resumes from its checkpoint without a gap", "[kafka][relay]") {
  relay_fixture f;
  f.append(400, 10);  // 4,000 events
  const auto head = f.store->events().head_position();
  // Slow acknowledgements and small batches (5 requests of 50 in flight per 100 ms):
  // the relay needs over a second for the 4,000 events, so the stop lands mid-stream.
  REQUIRE(f.cluster->set_broker_rtt(1, std::chrono::milliseconds(100)).has_value());
  f.start({{"batch.num.messages", "50"}});
  const auto first = f.wait_for([](const ports::relay_info& r) { return r.checkpoint > 0; });
  f.stop();
  auto saved = f.store->read_models().checkpoint("relay:atrium.events");
  REQUIRE(saved.has_value());
  INFO("checkpoint saved at stop: " << *saved << " of " << head);
  CHECK(*saved >= first.checkpoint);
  CHECK(*saved < head);  // stopped mid-relay

  REQUIRE(f.cluster->set_broker_rtt(1, std::chrono::milliseconds(0)).has_value());
  f.start();
  const auto done = f.wait_for([head](const ports::relay_info& r) { return r.checkpoint == head; });
  CHECK(done.checkpoint == head);
  const auto got = f.consume_all();
  check_complete(got, f.store->events());
}

// --- exactly once: Kafka transactions -------------------------------------------------

TEST_CASE("with transactions the relay publishes every event once, keyed and in order", "[kafka][relay][txn]") {
  relay_fixture f;
  f.transactional_id = "atrium-test-relay";
  f.append(50, 4);
  f.start();
  f.append(50, 4);
  const auto head = f.store->events().head_position();
  const auto info = f.wait_for([head](const ports::relay_info& r) { return r.checkpoint == head; });
  CHECK(info.checkpoint == head);
  CHECK(info.status == "live");
  CHECK(info.destination.find("transactional.id=atrium-test-relay") != std::string::npos);
  const auto got = consume_everything(f);
  check_complete(got, f.store->events());
  CHECK(got.size() == head);
}

TEST_CASE("a transactional relay whose checkpoint was lost resumes after what the topic holds", "[kafka][relay][txn]") {
  // The server committed 300 events to Kafka, then stopped before its checkpoint passed
  // 100 (a crash between the transaction's commit and the checkpoint's write).
  relay_fixture f;
  f.transactional_id = "atrium-test-relay";
  f.append(30, 10);
  f.start();
  REQUIRE(f.wait_for([](const ports::relay_info& r) { return r.checkpoint == 300; }).checkpoint == 300);
  f.stop();
  REQUIRE(f.store->read_models().save_checkpoint("relay:atrium.events", 100).has_value());

  kafka_adapter::kafka_options o;
  o.brokers = f.cluster->bootstraps();
  auto last = kafka_adapter::last_committed_event(o, std::chrono::seconds(10));
  REQUIRE(last.has_value());
  REQUIRE(last->has_value());
  CHECK((*last)->position == 300);
  auto at_300 = f.store->events().read_all(299, 1);
  REQUIRE(at_300.has_value());
  CHECK((*last)->id == at_300->front().id);

  f.start();
  f.append(10, 10);
  const auto head = f.store->events().head_position();
  REQUIRE(f.wait_for([head](const ports::relay_info& r) { return r.checkpoint == head; }).checkpoint == head);
  const auto got = consume_everything(f);
  check_complete(got, f.store->events());
  for (const auto& [position, n] : copies(got)) {
    INFO("position " << position);
    CHECK(n == 1);
  }
  CHECK(got.size() == head);
}

TEST_CASE("without transactions a lost checkpoint publishes the events again (at least once)", "[kafka][relay]") {
  // The same scenario as above, at-least-once: what the checkpoint had not passed is
  // published a second time (consumers de-duplicate on ce_id).
  relay_fixture f;
  f.append(30, 10);
  f.start();
  REQUIRE(f.wait_for([](const ports::relay_info& r) { return r.checkpoint == 300; }).checkpoint == 300);
  f.stop();
  REQUIRE(f.store->read_models().save_checkpoint("relay:atrium.events", 100).has_value());
  f.start();
  REQUIRE(f.wait_for([](const ports::relay_info& r) { return r.checkpoint == 300; }).checkpoint == 300);
  const auto got = consume_everything(f);
  check_complete(got, f.store->events());
  const auto n = copies(got);
  CHECK(n.at(100) == 1);
  CHECK(n.at(101) == 2);
  CHECK(n.at(300) == 2);
  CHECK(got.size() == 500);
}

TEST_CASE("a topic holding another log's events does not make the relay skip this log's", "[kafka][relay][txn]") {
  std::shared_ptr<kafka_adapter::embedded_cluster> cluster;
  {
    relay_fixture other;
    other.transactional_id = "atrium-test-relay";
    other.stream_prefix = "project-other";
    other.append(10, 5);
    other.start();
    REQUIRE(other.wait_for([](const ports::relay_info& r) { return r.checkpoint == 50; }).checkpoint == 50);
    other.stop();
    cluster = other.cluster;
  }
  relay_fixture f(cluster);  // a fresh log whose positions 1..50 are other events
  f.transactional_id = "atrium-test-relay";
  f.append(8, 10);
  f.start();
  REQUIRE(f.wait_for([](const ports::relay_info& r) { return r.checkpoint == 80; }).checkpoint == 80);
  const auto got = consume_everything(f);
  REQUIRE(got.size() == 130);
  auto ours = f.store->events().read_all(0, 1000);
  REQUIRE(ours.has_value());
  std::set<std::string> ids;
  for (const auto& m : got) ids.insert(m.headers.at("ce_id"));
  for (const auto& e : *ours) {
    INFO("position " << e.position);
    CHECK(ids.count(e.id) == 1);
  }
}

/// A transactional relay publishes 50 events; then the next request of Kafka API
/// `api_key` fails with `error`, 50 more events are appended, and the relay is given
/// time to publish them all. Returns its status then.
ports::relay_info relay_through_failure(relay_fixture& f, int api_key, int error) {
  f.transactional_id = "atrium-test-relay";
  f.start();
  f.append(10, 5);
  REQUIRE(f.wait_for([](const ports::relay_info& r) { return r.checkpoint == 50; }).checkpoint == 50);
  f.cluster->inject_errors(api_key, {error});
  f.append(10, 5);
  const auto head = f.store->events().head_position();
  const auto info = f.wait_for([head](const ports::relay_info& r) { return r.checkpoint == head; });
  CHECK(info.checkpoint == head);
  return info;
}

TEST_CASE("a failed produce inside a transaction aborts it and the batch is produced again", "[kafka][relay][txn]") {
  relay_fixture f;
  // The next produce request is refused for good (MESSAGE_TOO_LARGE, Kafka error 10):
  // its messages fail, the transaction can only be aborted.
  relay_through_failure(f, 0, 10);
  // The embedded cluster keeps an aborted transaction's other messages visible (it has
  // no transaction markers), so copies are not counted here: every event arrived.
  check_complete(consume_everything(f), f.store->events());
}

TEST_CASE("a producer failing for good mid-transaction is replaced and nothing is lost or repeated",
          "[kafka][relay][txn]") {
  relay_fixture f;
  // The coordinator answers the next commit (EndTxn, API 26) with INVALID_TXN_STATE
  // (Kafka error 48): a fatal error that is not fencing. The publisher makes a new
  // producer, whose init_transactions settles the transaction, reads back what the
  // topic holds, and produces only the rest.
  CHECK(relay_through_failure(f, 26, 48).status == "live");
  const auto got = consume_everything(f);
  check_complete(got, f.store->events());
  for (const auto& [position, n] : copies(got)) {
    INFO("position " << position);
    CHECK(n == 1);
  }
}

TEST_CASE("a second producer with the relay's transactional.id fences it: the relay reports degraded",
          "[kafka][relay][txn]") {
  relay_fixture f;
  f.transactional_id = "atrium-test-relay";
  f.start();
  f.append(5, 2);
  REQUIRE(f.wait_for([](const ports::relay_info& r) { return r.checkpoint == 10; }).checkpoint == 10);

  // Another server started with the same transactional.id: the coordinator answers the
  // relay's next commit with PRODUCER_FENCED (Kafka error 90). (The embedded cluster
  // does not fence by itself: it gives each init_transactions a new producer id.)
  f.cluster->inject_errors(26, {90});
  f.append(5, 2);
  const auto info = f.wait_for([](const ports::relay_info& r) { return r.status == "degraded"; });
  CHECK(info.status == "degraded");
  CHECK(info.error.find("fenced") != std::string::npos);
  CHECK(info.checkpoint == 10);
  // It stays stopped: nothing more is published, and the events wait in the log.
  f.append(1, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto later = f.relay();
  CHECK(later.status == "degraded");
  CHECK(later.checkpoint == 10);
  CHECK(later.lag_positions == 11);
  f.stop();
}
