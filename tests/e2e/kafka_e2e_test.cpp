/// The Kafka relay end to end: the real atriumd relays to a cluster (its own embedded
/// one, or one this test runs), and `kcat` (Debian's Kafka client) consumes the topic
/// over TCP: every event of the log arrives, keyed, in order per stream, with its
/// CloudEvents headers; an outage degrades /readyz's relay without stopping commands;
/// a crash mid-relay leaves no gap.

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include "adapters/kafka/kafka_publisher.hpp"
#include "tests/support/atriumd.hpp"

namespace {
using namespace atrium::test;
using nlohmann::json;

constexpr const char* k_topic = "atrium.events";

/// One message as kcat prints it with `-f '%k\t%p\t%o\t%h\t%s\n'`.
struct consumed {
  std::string key;
  int partition = 0;
  long offset = 0;
  std::map<std::string, std::string> headers;
  std::string value;
};

/// Reads the whole topic with kcat (from the beginning, exiting at the end of every
/// partition) at the given isolation level. kcat prints headers as `name=value,name=value`.
std::vector<consumed> kcat_all(const std::string& brokers, const std::string& isolation = "read_uncommitted") {
  auto out = run_process({"kcat", "-b", brokers, "-X", "isolation.level=" + isolation, "-C", "-t", k_topic, "-o",
                          "beginning", "-e", "-q", "-f", "%k\t%p\t%o\t%h\t%s\n"},
                         std::chrono::seconds(60));
  INFO("kcat stderr: " << out.err);
  REQUIRE(out.exit_code == 0);
  std::vector<consumed> all;
  std::istringstream lines(out.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cols;
    std::size_t start = 0;
    for (int i = 0; i < 4; ++i) {
      const auto tab = line.find('\t', start);
      REQUIRE(tab != std::string::npos);
      cols.push_back(line.substr(start, tab - start));
      start = tab + 1;
    }
    consumed m;
    m.key = cols[0];
    m.partition = std::stoi(cols[1]);
    m.offset = std::stol(cols[2]);
    std::istringstream hs(cols[3]);
    std::string h;
    while (std::getline(hs, h, ',')) {
      const auto eq = h.find('=');
      if (eq != std::string::npos) m.headers[h.substr(0, eq)] = h.substr(eq + 1);
    }
    m.value = line.substr(start);
    all.push_back(std::move(m));
  }
  return all;
}

/// Waits (up to 30 s) until the relay has every event of the log acknowledged.
json wait_relayed(const atriumd_server& server) {
  auto admin = server.admin();
  json relay;
  const bool done = wait_until(
      [&] {
        auto r = admin.get("/v1/admin/projections");
        if (r.status != 200 || r.json.at("relay").is_null()) return false;
        relay = r.json.at("relay");
        return relay.at("checkpoint") == r.json.at("head") && relay.at("status") == "live";
      },
      std::chrono::seconds(30));
  INFO("relay: " << relay.dump());
  REQUIRE(done);
  return relay;
}

/// Checks the consumed messages against the log: every position once at least, keyed
/// by stream, each with the event's id, type, subject, time and version, the public
/// payload as value, one partition per stream and versions in order within it.
void check_against_log(const std::vector<consumed>& got, const atriumd_server& server, const json& relayed) {
  // Up to the relay's checkpoint as `wait_relayed` saw it (logging in to read the log
  // appends one more event, which may not have reached Kafka yet).
  const auto head = relayed.at("checkpoint").get<std::uint64_t>();
  auto log = server.admin().get("/v1/events?after=0&limit=1000");
  REQUIRE(log.status == 200);
  std::map<std::uint64_t, json> events;
  for (const auto& e : log.json.at("events")) events[e.at("position").get<std::uint64_t>()] = e;
  REQUIRE(events.size() >= head);
  // `ce_source` names the deployment: /atrium/<the id atriumd made in DATA_DIR/instance_id>.
  std::string instance;
  std::ifstream(server.data / "instance_id") >> instance;
  REQUIRE(instance.size() == 36);
  const auto source = "/atrium/" + instance;

  std::set<std::uint64_t> seen;
  std::map<std::string, int> partition_of;
  std::map<std::string, std::vector<std::pair<long, std::uint64_t>>> by_stream;  // offset, version
  for (const auto& m : got) {
    REQUIRE(m.headers.count("ce_position") == 1);
    const auto position = std::stoull(m.headers.at("ce_position"));
    if (position > head) continue;  // appended after the checkpoint we check against
    const auto& e = events.at(position);
    INFO("position " << position);
    CHECK(m.key == e.at("stream"));
    CHECK(m.headers.at("ce_specversion") == "1.0");
    CHECK(m.headers.at("ce_id") == e.at("id"));
    CHECK(m.headers.at("ce_type") == "atrium." + e.at("type").get<std::string>());
    CHECK(m.headers.at("ce_subject") == e.at("stream"));
    CHECK(m.headers.at("ce_time") == e.at("time"));
    CHECK(m.headers.at("ce_source") == source);
    CHECK(m.headers.at("ce_version") == std::to_string(e.at("version").get<std::uint64_t>()));
    // The payload's JSON Schema (docs/schemas/events), by its $id.
    CHECK(m.headers.at("ce_dataschema") == "https://atrium.dev/schemas/events/" + e.at("type").get<std::string>() +
                                               ".v" + std::to_string(e.at("schema").get<int>()) + ".schema.json");
    CHECK(m.headers.at("content-type") == "application/json");
    CHECK(json::parse(m.value) == e.at("data"));
    seen.insert(position);
    if (auto [it, fresh] = partition_of.emplace(m.key, m.partition); !fresh) CHECK(it->second == m.partition);
    by_stream[m.key].emplace_back(m.offset, std::stoull(m.headers.at("ce_version")));
  }
  CHECK(seen.size() == head);  // nothing missing
  for (auto& [stream, list] : by_stream) {
    INFO("stream " << stream);
    std::sort(list.begin(), list.end());  // partition order
    std::uint64_t highest = 0;
    for (const auto& [offset, version] : list) {
      CHECK(version <= highest + 1);  // in order; a repeat (at least once) never skips ahead
      highest = std::max(highest, version);
    }
  }
}

void make_projects(const http_client& admin, int n, const std::string& prefix) {
  for (int i = 0; i < n; ++i) {
    // project.created + project.member_added: two events of one stream per project.
    REQUIRE(admin.post("/v1/projects", {{"name", prefix + std::to_string(i)}}).status == 201);
  }
}

}  // namespace

TEST_CASE("kcat reads every event from the embedded cluster keyed and ordered with CloudEvents headers",
          "[e2e][kafka]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--kafka", "embedded"});
  make_projects(server.admin(), 10, "k");
  const auto relayed = wait_relayed(server);

  std::ifstream f(server.data / "kafka.bootstrap");
  std::string brokers;
  REQUIRE(f >> brokers);
  CHECK(atriumd_server::slurp(server.log).find("embedded kafka bootstrap=" + brokers) != std::string::npos);
  check_against_log(kcat_all(brokers), server, relayed);

  auto ready = server.client().get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.json.at("relay").at("status") == "live");
  auto metrics = server.client().get("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("atrium_relay_lag_positions ") != std::string::npos);
  CHECK(metrics.body.find("atrium_relay_up 1") != std::string::npos);
  CHECK(metrics.body.find("atrium_projection_lag_positions{projection=\"audit\"}") != std::string::npos);

  REQUIRE(server.stop() == 0);
  CHECK_FALSE(std::filesystem::exists(server.data / "kafka.bootstrap"));
}

TEST_CASE("a broker outage degrades the relay on readyz while commands go on and nothing is lost", "[e2e][kafka]") {
  auto cluster = atrium::kafka_adapter::embedded_cluster::start(1, k_topic, 4);
  REQUIRE(cluster.has_value());
  const auto brokers = (*cluster)->bootstraps();
  temp_dir dir;
  atriumd_server server(dir.path(), {"--kafka-brokers", brokers});
  make_projects(server.admin(), 3, "before");
  wait_relayed(server);

  REQUIRE((*cluster)->set_broker_down(1).has_value());
  make_projects(server.admin(), 3, "during");  // the API keeps accepting commands
  json relay;
  const bool degraded = wait_until(
      [&] {
        auto r = server.client().get("/readyz");
        if (r.status != 200) return false;
        relay = r.json.at("relay");
        return relay.at("status") == "degraded" && relay.at("lag_positions").get<std::uint64_t>() > 0;
      },
      std::chrono::seconds(30));
  INFO("relay: " << relay.dump());
  CHECK(degraded);
  CHECK_FALSE(relay.at("error").get<std::string>().empty());
  CHECK(server.client().get("/metrics").body.find("atrium_relay_up 0") != std::string::npos);

  REQUIRE((*cluster)->set_broker_up(1).has_value());
  make_projects(server.admin(), 2, "after");
  const auto relayed = wait_relayed(server);
  check_against_log(kcat_all(brokers), server, relayed);
}

TEST_CASE("atriumd killed mid-relay resumes from its checkpoint and leaves no gap", "[e2e][kafka]") {
  auto cluster = atrium::kafka_adapter::embedded_cluster::start(1, k_topic, 4);
  REQUIRE(cluster.has_value());
  const auto brokers = (*cluster)->bootstraps();
  temp_dir dir;
  atriumd_server server(dir.path(), {"--kafka-brokers", brokers, "--kafka-option", "batch.num.messages=5"});
  // Every answer of the broker takes 1 s from now on: the relay falls behind at once.
  REQUIRE((*cluster)->set_broker_rtt(1, std::chrono::milliseconds(1000)).has_value());
  make_projects(server.admin(), 20, "crash");
  auto report = server.admin().get("/v1/admin/projections");
  REQUIRE(report.status == 200);
  INFO("before the kill: " << report.body);
  CHECK(report.json.at("relay").at("checkpoint").get<std::uint64_t>() < report.json.at("head").get<std::uint64_t>());

  server.stop(SIGKILL);  // a crash: nothing is flushed, the checkpoint is what was saved
  REQUIRE((*cluster)->set_broker_rtt(1, std::chrono::milliseconds(0)).has_value());
  server.start();
  make_projects(server.admin(), 2, "restarted");
  const auto relayed = wait_relayed(server);
  check_against_log(kcat_all(brokers), server, relayed);
}

/// Counts the copies of every position up to the relay's checkpoint.
std::map<std::uint64_t, int> copies_up_to(const std::vector<consumed>& got, const json& relayed) {
  const auto head = relayed.at("checkpoint").get<std::uint64_t>();
  std::map<std::uint64_t, int> n;
  for (const auto& m : got) {
    const auto position = std::stoull(m.headers.at("ce_position"));
    if (position <= head) ++n[position];
  }
  return n;
}

TEST_CASE("with --kafka-transactions a read_committed consumer gets every event exactly once, across a restart",
          "[e2e][kafka]") {
  auto cluster = atrium::kafka_adapter::embedded_cluster::start(1, k_topic, 4);
  REQUIRE(cluster.has_value());
  const auto brokers = (*cluster)->bootstraps();
  temp_dir dir;
  atriumd_server server(dir.path(), {"--kafka-brokers", brokers, "--kafka-transactions"});
  make_projects(server.admin(), 10, "txn");
  auto relayed = wait_relayed(server);
  CHECK(relayed.at("destination").get<std::string>().find("transactional.id=atriumd-relay-atrium.events") !=
        std::string::npos);

  REQUIRE(server.stop() == 0);
  server.start();  // the relay recovers what the topic holds and goes on after it
  make_projects(server.admin(), 5, "again");
  relayed = wait_relayed(server);
  CHECK(atriumd_server::slurp(server.log).find("newest committed event in atrium.events is position=") !=
        std::string::npos);

  const auto got = kcat_all(brokers, "read_committed");
  check_against_log(got, server, relayed);
  for (const auto& [position, n] : copies_up_to(got, relayed)) {
    INFO("position " << position);
    CHECK(n == 1);
  }
}

TEST_CASE("atriumd refuses --kafka-transactions without a cluster", "[e2e][kafka]") {
  temp_dir dir;
  auto out = run_process(
      {ATRIUMD_PATH, "--data-dir", (dir.path() / "data").string(), "--listen", "127.0.0.1:0", "--kafka-transactions"},
      std::chrono::seconds(30));
  CHECK(out.exit_code != 0);
  CHECK(out.err.find("--kafka-transactions needs --kafka-brokers or --kafka embedded") != std::string::npos);
}
