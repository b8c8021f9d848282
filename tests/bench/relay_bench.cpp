// Kafka relay (issue 7, point 7): how fast the relay moves the log into Kafka, and
// how far behind it is under a steady append load. Against librdkafka's mock cluster
// in this process (the `--kafka embedded` cluster). Not part of the default paths:
//   atrium-bench --paths relay [--events 200000] [--seconds 10] [--writers 16]
//                [--kafka-codecs none,gzip,snappy,lz4,zstd]
//
//   setup:     rocksdb_store ◀─ N events (1,000 per append, 100 streams each)
//   baseline:  kafka_publisher alone: the same N envelopes (read once, in memory)
//              published in a tight loop until every delivery report is back — the
//              client's and the cluster's limit, with the relay's producer settings
//              (and once per codec of --kafka-codecs: `compression.codec` compared)
//   relay:     actor_runtime with the publisher ─▶ relay from position 0 until its
//              checkpoint is the head (events/s, × baseline)
//   under load: W writers append one event per synced append for --seconds while the
//              relay follows; per event, commit time (envelope `time`) → delivery
//              report: p50/p99/max lag; then the relay's catch-up after the load stops
//   _txn:      relay and under load again with the exactly-once publisher (one Kafka
//              transaction per batch), to a topic of its own, from position 0
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/runtime.hpp"
#include "adapters/kafka/kafka_publisher.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "tests/bench/bench.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {
namespace {

constexpr std::uint64_t k_default_events = 200'000;
constexpr int k_partitions = 4;

void line(nlohmann::json j) { std::cout << j.dump() << std::endl; }

void note(const std::string& s) { std::cerr << "atrium-bench: relay: " << s << std::endl; }

/// Wraps the Kafka publisher: remembers each event's commit time and, on its delivery
/// report, records commit → acknowledgement in milliseconds.
class timing_publisher final : public ports::event_publisher {
 public:
  explicit timing_publisher(std::unique_ptr<ports::event_publisher> inner) : inner_(std::move(inner)) {}
  std::string describe() const override { return inner_->describe(); }
  void on_delivery(std::function<void(std::vector<ports::delivery>)> fn) override {
    inner_->on_delivery([this, fn = std::move(fn)](std::vector<ports::delivery> reports) {
      {
        std::lock_guard lock(mu_);
        for (const auto& d : reports) {
          if (d.failure) continue;
          if (auto it = times_.find(d.position); it != times_.end()) {
            if (recording_) lags_ms_.push_back(static_cast<double>(milliseconds_since(it->second)));
            times_.erase(it);
          }
        }
      }
      fn(std::move(reports));
    });
  }
  result<void> publish(const envelope& e) override {
    {
      std::lock_guard lock(mu_);
      times_[e.position] = e.time;
    }
    return inner_->publish(e);
  }
  ports::publisher_recovery recovery() const override { return inner_->recovery(); }
  ports::publisher_health health() const override { return inner_->health(); }
  void flush(std::chrono::milliseconds timeout) override { inner_->flush(timeout); }

  void record(bool on) {
    std::lock_guard lock(mu_);
    recording_ = on;
  }
  std::vector<double> lags() {
    std::lock_guard lock(mu_);
    return lags_ms_;
  }

 private:
  std::unique_ptr<ports::event_publisher> inner_;
  std::mutex mu_;
  std::unordered_map<std::uint64_t, std::string> times_;
  std::vector<double> lags_ms_;
  bool recording_ = false;
};

/// A publisher to `topic` of `cluster`; `codec`: its `compression.codec` ("" : the
/// relay's default).
std::unique_ptr<ports::event_publisher> publisher_for(const kafka_adapter::embedded_cluster& cluster,
                                                      const std::string& topic, bool transactions = false,
                                                      const std::string& codec = "") {
  kafka_adapter::kafka_options k;
  k.brokers = cluster.bootstraps();
  k.topic = topic;
  if (!codec.empty()) k.settings.emplace_back("compression.codec", codec);
  if (transactions) k.transactional_id = "atrium-bench-" + topic;
  auto p = kafka_adapter::make_kafka_publisher(k);
  if (!p) throw std::runtime_error("publisher: " + p.error().message);
  return std::move(*p);
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1)];
}

ports::relay_info relay_status(actor_runtime& runtime) {
  std::promise<ports::projections_report> p;
  auto f = p.get_future();
  runtime.report([&p](ports::projections_report r) { p.set_value(std::move(r)); });
  auto r = f.get();
  if (!r.relay) throw std::runtime_error("no relay in the report");
  return *r.relay;
}

/// Waits until the relay's checkpoint reaches `head`; returns the seconds it took.
double wait_relayed(actor_runtime& runtime, std::uint64_t head, steady::time_point since) {
  const auto deadline = steady::now() + std::chrono::minutes(10);
  while (relay_status(runtime).checkpoint < head) {
    if (steady::now() > deadline) throw std::runtime_error("the relay did not reach the head in 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return std::chrono::duration<double>(steady::now() - since).count();
}

}  // namespace

void run_relay(const options& o) {
  // stdout carries only the JSON lines: the runtime's and the relay's logs go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("relay-bench"));
  const std::uint64_t n = o.events > 0 ? o.events : k_default_events;
  const double load_seconds = o.seconds > 0 ? o.seconds : 10.0;
  const std::size_t writers = o.writers.empty() ? 16 : o.writers.back();
  test::temp_dir dir;
  auto opened = rocksdb_adapter::rocksdb_store::open((dir.path() / "db").string(), {});
  if (!opened) throw std::runtime_error("open store: " + opened.error().message);
  auto& store = (*opened)->events();
  auto baseline_cluster = kafka_adapter::embedded_cluster::start(1, "bench-baseline", k_partitions);
  if (!baseline_cluster) throw std::runtime_error(baseline_cluster.error().message);

  note("storing " + std::to_string(n) + " events");
  for (std::uint64_t done = 0, call = 0; done < n; ++call) {
    std::vector<ports::stream_append> appends;
    for (int s = 0; s < 100 && done < n; ++s) {
      ports::stream_append a{"project-b" + std::to_string(call * 100 + s), ports::expected_version::any(), {}};
      for (int k = 0; k < 10 && done < n; ++k, ++done) {
        proposed_event e;
        e.type = "project.renamed";
        e.data = {{"name", "bench project " + std::to_string(done)}};
        e.actor = "user-00000000-0000-7000-9000-000000000001";
        e.correlation_id = e.causation_id = new_uuid_v7();
        e.metadata = {{"client_address", "10.0.0.7:51234"}, {"user_agent", "atrium-bench"}};
        a.events.push_back(std::move(e));
      }
      appends.push_back(std::move(a));
    }
    if (auto r = store.append(std::move(appends)); !r) throw std::runtime_error("append: " + r.error().message);
  }
  const auto head = store.head_position();

  // Baseline: the publisher alone, the envelopes already in memory; once per codec of
  // --kafka-codecs (each to a topic of its own), then with the relay's default.
  double baseline_rate = 0;
  std::vector<envelope> all;
  for (std::uint64_t after = 0; after < head;) {
    auto page = store.read_all(after, 10'000);
    if (!page || page->empty()) throw std::runtime_error("read_all");
    after = page->back().position;
    for (auto& e : *page) all.push_back(std::move(e));
  }
  std::vector<std::string> codecs = o.kafka_codecs;
  codecs.emplace_back();  // the default, last: the baseline of the relay's figures
  for (const auto& codec : codecs) {
    const std::string topic = codec.empty() ? "bench-baseline" : "bench-codec-" + codec;
    auto codec_cluster =
        codec.empty() ? nullptr : kafka_adapter::embedded_cluster::start(1, topic, k_partitions).value_or(nullptr);
    if (!codec.empty() && !codec_cluster) throw std::runtime_error("cluster for codec " + codec);
    auto pub = publisher_for(codec.empty() ? **baseline_cluster : *codec_cluster, topic, false, codec);
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t acked = 0, failed = 0;
    pub->on_delivery([&](std::vector<ports::delivery> reports) {
      std::lock_guard lock(mu);
      for (const auto& d : reports) ++(d.failure ? failed : acked);
      cv.notify_all();
    });
    const auto t0 = steady::now();
    for (const auto& e : all) {
      while (!pub->publish(e)) std::this_thread::sleep_for(std::chrono::microseconds(200));  // local queue full
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return acked + failed == all.size(); });
    const double s = std::chrono::duration<double>(steady::now() - t0).count();
    line({{"scenario", "publisher_only"},
          {"path", "relay"},
          {"codec", codec.empty() ? std::string(kafka_adapter::k_default_compression) : codec},
          {"events", all.size()},
          {"seconds", s},
          {"events_per_s", static_cast<double>(all.size()) / s},
          {"failed", failed}});
    baseline_rate = static_cast<double>(all.size()) / s;
  }
  all.clear();

  // The relay from position 0, then under load; at least once, then in transactions.
  struct mode_result {
    double rate = 0;
    std::vector<double> lags;
  };
  auto run_mode = [&](bool transactions) {
    const std::string topic = transactions ? "bench-relay-txn" : "bench-relay";
    const std::string suffix = transactions ? "_txn" : "";
    auto mode_cluster = kafka_adapter::embedded_cluster::start(1, topic, k_partitions);
    if (!mode_cluster) throw std::runtime_error(mode_cluster.error().message);
    auto timed = std::make_unique<timing_publisher>(publisher_for(**mode_cluster, topic, transactions));
    runtime_config config;
    config.publisher = timed.get();
    config.relay_checkpoint = "relay:" + topic;
    const auto backlog = store.head_position();
    const auto t0 = steady::now();
    auto started = actor_runtime::start(store, (*opened)->read_models(), {}, config);
    if (!started) throw std::runtime_error("runtime: " + started.error().message);
    auto& runtime = **started;
    const double relay_s = wait_relayed(runtime, backlog, t0);
    const double relay_rate = static_cast<double>(backlog) / relay_s;
    line({{"scenario", "relay_backlog" + suffix},
          {"path", "relay"},
          {"events", backlog},
          {"seconds", relay_s},
          {"events_per_s", relay_rate},
          {"ratio_vs_publisher_only", relay_rate / baseline_rate}});

    // Under load: W writers, one event per synced append each, while the relay follows.
    note("load" + suffix + ": " + std::to_string(writers) + " writers for " + std::to_string(load_seconds) + " s");
    timed->record(true);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> appended{0};
    std::vector<std::thread> threads;
    for (std::size_t w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        for (std::uint64_t k = 0; !stop.load(); ++k) {
          proposed_event e;
          e.type = "project.renamed";
          e.data = {{"name", "load " + std::to_string(k)}};
          e.actor = "system";
          auto r = store.append({{"project-load" + std::to_string(w), ports::expected_version::any(), {std::move(e)}}});
          if (r) appended.fetch_add(1);
        }
      });
    }
    std::vector<double> lag_positions;
    const auto load_start = steady::now();
    while (std::chrono::duration<double>(steady::now() - load_start).count() < load_seconds) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      lag_positions.push_back(static_cast<double>(relay_status(runtime).lag_positions));
    }
    stop.store(true);
    for (auto& t : threads) t.join();
    const double load_s = std::chrono::duration<double>(steady::now() - load_start).count();
    const auto stop_at = steady::now();
    const double drain_s = wait_relayed(runtime, store.head_position(), stop_at);
    timed->record(false);
    auto lags = timed->lags();
    line({{"scenario", "relay_under_load" + suffix},
          {"path", "relay"},
          {"writers", writers},
          {"seconds", load_s},
          {"appended_events_per_s", static_cast<double>(appended.load()) / load_s},
          {"delivered", lags.size()},
          {"lag_p50_ms", percentile(lags, 0.50)},
          {"lag_p99_ms", percentile(lags, 0.99)},
          {"lag_max_ms", percentile(lags, 1.0)},
          {"lag_positions_p50", percentile(lag_positions, 0.50)},
          {"lag_positions_max", percentile(lag_positions, 1.0)},
          {"drain_seconds_after_load", drain_s}});
    started->reset();  // the runtime stops before its publisher and cluster go
    return mode_result{relay_rate, std::move(lags)};
  };
  const auto plain = run_mode(false);
  const auto txn = run_mode(true);
  const double relay_rate = plain.rate;
  const auto& lags = plain.lags;
  note("publisher only " + std::to_string(static_cast<long>(baseline_rate)) + " events/s, relay " +
       std::to_string(static_cast<long>(relay_rate)) + " events/s; under load lag p50 " +
       std::to_string(percentile(lags, 0.5)) + " ms, p99 " + std::to_string(percentile(lags, 0.99)) +
       " ms; in transactions " + std::to_string(static_cast<long>(txn.rate)) + " events/s, lag p50 " +
       std::to_string(percentile(txn.lags, 0.5)) + " ms, p99 " + std::to_string(percentile(txn.lags, 0.99)) + " ms");
}

}  // namespace atrium::bench
