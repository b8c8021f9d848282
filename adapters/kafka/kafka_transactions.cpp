// The exactly-once Kafka publisher: one Kafka transaction per batch of relayed events,
// run on the publisher's own thread so the relay actor never blocks, and the recovery
// of the newest committed event from the topic at start (kafka_publisher.hpp).
//
//   publish (relay thread) ─▶ queue ─▶ worker: begin · produce… · commit ─▶ delivered
//                                          └ abortable error: abort, produce again
//                                          └ fenced: every event fails, publisher stops
//                                          └ other fatal error: new producer (init
//                                            aborts what was open), skip what the topic
//                                            already holds, produce the rest again
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "adapters/kafka/kafka_common.hpp"

namespace atrium::kafka_adapter {
namespace detail {
namespace {

using namespace std::chrono_literals;

struct error_deleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using error_ptr = std::unique_ptr<rd_kafka_error_t, error_deleter>;

/// The position a message carries: the `ce_position` header (binary mode) or the
/// `position` attribute of a structured message; empty if neither.
std::optional<ports::published_event> position_of(const rd_kafka_message_t* m) {
  rd_kafka_headers_t* headers = nullptr;
  auto header = [&](const char* name) -> std::optional<std::string> {
    const void* value = nullptr;
    size_t size = 0;
    if (headers == nullptr || rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        value == nullptr) {
      return std::nullopt;
    }
    return std::string(static_cast<const char*>(value), size);
  };
  auto number = [](const std::string& s) -> std::optional<std::uint64_t> {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoull(s);
  };
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (auto p = header("ce_position"); p) {
      auto n = number(*p);
      if (!n) return std::nullopt;
      return ports::published_event{*n, header("ce_id").value_or("")};
    }
  }
  if (m->payload == nullptr) return std::nullopt;
  auto value = nlohmann::json::parse(static_cast<const char*>(m->payload),
                                     static_cast<const char*>(m->payload) + m->len, nullptr, false);
  if (!value.is_object() || !value.contains("position") || !value["position"].is_string()) return std::nullopt;
  auto n = number(value["position"].get<std::string>());
  if (!n) return std::nullopt;
  std::string id = value.contains("id") && value["id"].is_string() ? value["id"].get<std::string>() : "";
  return ports::published_event{*n, std::move(id)};
}

struct consumer_deleter {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
using consumer_ptr = std::unique_ptr<rd_kafka_t, consumer_deleter>;

}  // namespace
}  // namespace detail

result<std::optional<ports::published_event>> last_committed_event(const kafka_options& options,
                                                                   std::chrono::milliseconds timeout,
                                                                   const std::function<bool()>& cancelled) {
  using namespace detail;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [&] {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::clamp<std::int64_t>(left.count(), 1, 1000));  // 1 s slices: `cancelled` is heard
  };
  // Repeats a librdkafka call made with `left_ms()` while it times out, time is left
  // and nobody cancelled.
  auto patiently = [&](const auto& call) {
    for (;;) {
      const auto err = call();
      if (err != RD_KAFKA_RESP_ERR__TIMED_OUT || std::chrono::steady_clock::now() >= deadline ||
          (cancelled && cancelled())) {
        return err;
      }
    }
  };
  auto conf = make_conf(options, {{"group.id", "atriumd-relay-recovery"},
                                  {"isolation.level", "read_committed"},
                                  {"enable.partition.eof", "true"},
                                  {"enable.auto.commit", "false"},
                                  {"enable.auto.offset.store", "false"},
                                  {"client.id", "atriumd-relay-recovery"}});
  if (!conf) return std::unexpected(conf.error());
  char errstr[512];
  consumer_ptr rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof errstr));
  if (!rk) return fail(errc::unavailable, std::string("kafka consumer: ") + errstr);
  (void)conf->release();

  // How many partitions the topic has.
  int partitions = 0;
  {
    rd_kafka_topic_t* topic = rd_kafka_topic_new(rk.get(), options.topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    const auto err = patiently([&] { return rd_kafka_metadata(rk.get(), 0, topic, &md, left_ms()); });
    rd_kafka_topic_destroy(topic);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return fail(errc::unavailable, std::string("kafka metadata: ") + rd_kafka_err2str(err));
    }
    const auto topic_err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    partitions = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    if (topic_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::nullopt;  // nothing was ever published
    if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return fail(errc::unavailable, std::string("kafka metadata: ") + rd_kafka_err2str(topic_err));
    }
  }

  struct tail {
    std::int64_t low = 0, high = 0;
    std::int64_t window = 16;  // messages read back from the end
    bool done = false;
    std::optional<ports::published_event> best;
  };
  std::vector<tail> tails(static_cast<std::size_t>(partitions));
  for (int p = 0; p < partitions; ++p) {
    auto& t = tails[static_cast<std::size_t>(p)];
    const auto err = patiently([&] {
      return rd_kafka_query_watermark_offsets(rk.get(), options.topic.c_str(), p, &t.low, &t.high, left_ms());
    });
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return fail(errc::unavailable, std::string("kafka offsets: ") + rd_kafka_err2str(err));
    }
    t.done = t.high <= t.low;  // empty partition
  }

  // Each round reads every unfinished partition from `high - window` to its end (for a
  // read_committed consumer: the last stable offset); a partition whose window held no
  // positioned message (only aborted messages and transaction markers) widens it.
  while (std::any_of(tails.begin(), tails.end(), [](const tail& t) { return !t.done; })) {
    std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)> list(
        rd_kafka_topic_partition_list_new(partitions), &rd_kafka_topic_partition_list_destroy);
    std::map<int, bool> at_end;
    for (int p = 0; p < partitions; ++p) {
      const auto& t = tails[static_cast<std::size_t>(p)];
      if (t.done) continue;
      rd_kafka_topic_partition_list_add(list.get(), options.topic.c_str(), p)->offset =
          std::max(t.low, t.high - t.window);
      at_end[p] = false;
    }
    if (auto err = rd_kafka_assign(rk.get(), list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return fail(errc::unavailable, std::string("kafka assign: ") + rd_kafka_err2str(err));
    }
    std::size_t ended = 0;
    while (ended < at_end.size()) {
      if (std::chrono::steady_clock::now() >= deadline || (cancelled && cancelled())) {
        rd_kafka_assign(rk.get(), nullptr);
        return fail(errc::unavailable, "kafka: reading the topic's last committed event timed out");
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
      if (m == nullptr) continue;
      const int p = m->partition;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (auto it = at_end.find(p); it != at_end.end() && !it->second) {
          it->second = true;
          ++ended;
        }
      } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && p >= 0 && p < partitions) {
        if (auto e = position_of(m); e) {
          auto& best = tails[static_cast<std::size_t>(p)].best;
          if (!best || e->position > best->position) best = std::move(e);
        }
      } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::debug("kafka recovery: {}", rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk.get(), nullptr);
    for (auto& [p, _] : at_end) {
      auto& t = tails[static_cast<std::size_t>(p)];
      if (t.best || t.high - t.window <= t.low) {
        t.done = true;
      } else {
        t.window *= 16;
      }
    }
  }
  std::optional<ports::published_event> newest;
  for (auto& t : tails) {
    if (t.best && (!newest || t.best->position > newest->position)) newest = std::move(t.best);
  }
  return newest;
}

namespace detail {
namespace {

/// One event waiting to be produced, encoded already.
struct pending_event {
  std::uint64_t position = 0;
  std::string id;
  encoded_message message;
};

/// What became of one transaction.
enum class outcome {
  committed,  ///< every event of the batch is in the topic
  retry,      ///< aborted (or never begun): produce the batch again
  reinit,     ///< the producer failed for good: make a new one, then produce again
  fenced,     ///< another producer took our transactional.id: stop
  stopped,    ///< the publisher is being destroyed
};

class transactional_publisher final : public ports::event_publisher {
 public:
  explicit transactional_publisher(kafka_options options) : options_(std::move(options)) {}

  ~transactional_publisher() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (worker_.joinable()) worker_.join();
    // A transaction still open is aborted by the next producer's init_transactions (or
    // by the coordinator after transaction.timeout.ms); its events were not reported,
    // so the relay's checkpoint has not passed them.
    destroy_producer(rk_, topic_);
  }

  result<void> start() {
    // A setting librdkafka refuses is a start-up error, not something to retry.
    if (auto conf = producer_conf(); !conf) return std::unexpected(conf.error());
    worker_ = std::thread([this] { run(); });
    return {};
  }

  std::string describe() const override {
    return "kafka://" + options_.brokers + "/" + options_.topic + " (transactional.id=" + options_.transactional_id +
           ")";
  }

  void on_delivery(std::function<void(std::vector<ports::delivery>)> fn) override { report_ = std::move(fn); }

  result<void> publish(const envelope& e) override {
    pending_event p{e.position, e.id, encode_cloudevent(e, options_.mode, options_.source)};
    {
      std::lock_guard lock(mu_);
      if (!failure_.empty()) return fail(errc::unavailable, failure_);
      if (queue_.size() + in_batch_ >= options_.max_in_flight) return fail(errc::unavailable, "kafka: queue full");
      queue_.push_back(std::move(p));
    }
    wake_.notify_all();
    return {};
  }

  ports::publisher_recovery recovery() const override {
    std::lock_guard lock(mu_);
    return recovery_;
  }

  ports::publisher_health health() const override {
    std::lock_guard lock(mu_);
    return {connected_, !failure_.empty() ? failure_ : last_error_, queue_.size() + in_batch_};
  }

  void flush(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    idle_.wait_for(lock, timeout, [this] { return (queue_.empty() && in_batch_ == 0) || !failure_.empty(); });
  }

 private:
  result<conf_ptr> producer_conf() const {
    return make_conf(options_, {
                                   {"transactional.id", options_.transactional_id},
                                   {"enable.idempotence", "true"},
                                   {"linger.ms", "5"},
                                   {"compression.codec", k_default_compression},
                                   {"queue.buffering.max.messages", std::to_string(options_.max_in_flight)},
                                   {"client.id", "atriumd-relay"},
                               });
  }

  bool stopping() const {
    std::lock_guard lock(mu_);
    return stop_;
  }

  /// Sleeps `d` unless the publisher is being destroyed first.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, d, [this] { return stop_; });
  }

  void note(const std::string& what, bool connected) {
    std::lock_guard lock(mu_);
    last_error_ = what;
    connected_ = connected;
  }

  void note(const char* step, const rd_kafka_error_t* e) {
    const std::string what = std::string("kafka ") + step + ": " + rd_kafka_error_string(e);
    bool repeated = false;  // the same error again (a commit retried each second in an outage): logged once
    {
      std::lock_guard lock(mu_);
      repeated = what == last_error_;
    }
    if (!repeated) {
      spdlog::warn("relay: {} ({}{})", what, rd_kafka_error_name(e),
                   rd_kafka_error_is_fatal(e)             ? ", fatal"
                   : rd_kafka_error_txn_requires_abort(e) ? ", transaction aborted"
                   : rd_kafka_error_is_retriable(e)       ? ", retrying"
                                                          : "");
    }
    note(what, rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR__TIMED_OUT &&
                   rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR__TRANSPORT);
  }

  static void client_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<transactional_publisher*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    std::lock_guard lock(self->mu_);
    self->last_error_ = reason;
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->connected_ = false;
  }

  /// Creates the producer, initializes its transactions (which fences a predecessor
  /// with the same transactional.id and aborts what it left open) and reads what the
  /// topic already holds. False (producer destroyed) on failure: the caller retries.
  bool establish() {
    auto conf = producer_conf();
    if (!conf) {
      note(conf.error().message, true);
      return false;
    }
    rd_kafka_conf_set_opaque(conf->get(), this);
    rd_kafka_conf_set_error_cb(conf->get(), &transactional_publisher::client_error);
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof errstr);
    if (rk_ == nullptr) {
      note(std::string("kafka producer: ") + errstr, true);
      return false;
    }
    (void)conf->release();
    topic_ = rd_kafka_topic_new(rk_, options_.topic.c_str(), nullptr);
    for (;;) {
      if (stopping()) return false;
      error_ptr e(rd_kafka_init_transactions(rk_, 1000));
      if (!e) break;
      note("init_transactions", e.get());
      if (!rd_kafka_error_is_retriable(e.get())) {
        destroy_producer(rk_, topic_);
        return false;
      }
      rd_kafka_poll(rk_, 0);
    }
    auto last = last_committed_event(options_, std::chrono::seconds(10), [this] { return stopping(); });
    if (!last) {
      note(last.error().message, false);
      destroy_producer(rk_, topic_);
      return false;
    }
    if (*last) {
      spdlog::info("relay: newest committed event in {} is position={} id={}", options_.topic, (*last)->position,
                   (*last)->id);
    }
    std::lock_guard lock(mu_);
    recovery_ = {true, *last};
    connected_ = true;
    last_error_.clear();
    return true;
  }

  /// Takes the queued events (up to max_transaction_events) into `batch_`, waiting a
  /// little if there are none.
  void take() {
    std::unique_lock lock(mu_);
    if (queue_.empty()) {
      idle_.notify_all();
      wake_.wait_for(lock, 50ms, [this] { return stop_ || !queue_.empty(); });
    }
    while (!queue_.empty() && batch_.size() < options_.max_transaction_events) {
      batch_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    in_batch_ = batch_.size();
  }

  /// What a fatal error means: fenced (stop) or anything else (new producer).
  outcome fatal() {
    char why[512] = "";
    const auto code = rd_kafka_fatal_error(rk_, why, sizeof why);
    spdlog::error("relay: fatal producer error: {} ({})", why, rd_kafka_err2name(code));
    if (code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
        code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
      std::lock_guard lock(mu_);
      failure_ = "kafka: fenced by another producer with transactional.id " + options_.transactional_id + ": " + why;
      return outcome::fenced;
    }
    note(std::string("kafka: ") + why, true);
    return outcome::reinit;
  }

  outcome classify(const char* step, const rd_kafka_error_t* e) {
    note(step, e);
    if (rd_kafka_error_is_fatal(e)) return fatal();
    if (rd_kafka_error_txn_requires_abort(e)) return abort();
    return outcome::retry;
  }

  outcome abort() {
    for (;;) {
      error_ptr e(rd_kafka_abort_transaction(rk_, 1000));
      if (!e) return outcome::retry;
      note("abort_transaction", e.get());
      if (rd_kafka_error_is_fatal(e.get())) return fatal();
      if (!rd_kafka_error_is_retriable(e.get())) return outcome::reinit;
      if (stopping()) return outcome::stopped;
    }
  }

  /// One transaction holding every event of `batch_`.
  outcome transact() {
    if (error_ptr e(rd_kafka_begin_transaction(rk_)); e) return classify("begin_transaction", e.get());
    for (const auto& p : batch_) {
      for (;;) {
        const auto err = produce(rk_, topic_, p.message, nullptr);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          if (stopping()) return outcome::stopped;
          rd_kafka_poll(rk_, 10);
          continue;
        }
        note(std::string("kafka produce: ") + rd_kafka_err2str(err), true);
        if (err == RD_KAFKA_RESP_ERR__FATAL) return fatal();
        return abort();  // the transaction is in an error state
      }
    }
    for (;;) {
      error_ptr e(rd_kafka_commit_transaction(rk_, 1000));
      if (!e) return outcome::committed;
      if (rd_kafka_error_is_retriable(e.get())) {  // e.g. timed out: the same commit goes on
        note("commit_transaction", e.get());
        if (stopping()) return outcome::stopped;
        continue;
      }
      return classify("commit_transaction", e.get());
    }
  }

  void report(std::size_t count, const std::optional<error>& failure) {
    std::vector<ports::delivery> reports;
    for (std::size_t i = 0; i < count && i < batch_.size(); ++i) reports.push_back({batch_[i].position, failure});
    if (report_ && !reports.empty()) report_(std::move(reports));
    batch_.erase(batch_.begin(), batch_.begin() + static_cast<std::ptrdiff_t>(std::min(count, batch_.size())));
    {
      std::lock_guard lock(mu_);
      in_batch_ = batch_.size();
    }
    idle_.notify_all();
  }

  /// After a new producer: the events of the batch the topic already holds (a commit
  /// whose answer was lost completes in init_transactions) are reported, not repeated.
  void skip_committed() {
    const auto last = recovery().last;
    if (!last || batch_.empty() || last->position < batch_.front().position) return;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (batch_[i].position != last->position) continue;
      if (batch_[i].id != last->id) break;  // not ours: publish everything again
      spdlog::info("relay: positions {}..{} were committed before the producer failed", batch_.front().position,
                   last->position);
      report(i + 1, std::nullopt);
      return;
    }
    spdlog::warn("relay: the topic's newest event (position={}) is not one of the batch; producing it again",
                 last->position);
  }

  void run() {
    auto backoff = 100ms;
    while (!stopping()) {
      if (rk_ == nullptr) {
        if (!establish()) {
          pause(backoff);
          backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
          continue;
        }
        skip_committed();
      }
      if (batch_.empty()) take();
      rd_kafka_poll(rk_, 0);  // error callbacks
      if (batch_.empty()) continue;
      switch (transact()) {
        case outcome::committed:
          backoff = 100ms;
          {
            std::lock_guard lock(mu_);
            connected_ = true;
            last_error_.clear();
          }
          report(batch_.size(), std::nullopt);
          break;
        case outcome::retry:
          pause(backoff);
          backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
          break;
        case outcome::reinit:
          destroy_producer(rk_, topic_);
          pause(backoff);
          backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
          break;
        case outcome::fenced: {
          const error why{errc::unavailable, failure_message()};
          report(batch_.size(), why);
          std::deque<pending_event> rest;
          {
            std::lock_guard lock(mu_);
            rest.swap(queue_);
          }
          std::vector<ports::delivery> reports;
          for (const auto& p : rest) reports.push_back({p.position, why});
          if (report_ && !reports.empty()) report_(std::move(reports));
          idle_.notify_all();
          return;
        }
        case outcome::stopped:
          return;
      }
    }
  }

  std::string failure_message() const {
    std::lock_guard lock(mu_);
    return failure_;
  }

  kafka_options options_;
  rd_kafka_t* rk_ = nullptr;  // the worker's alone (and the destructor's after the join)
  rd_kafka_topic_t* topic_ = nullptr;
  std::vector<pending_event> batch_;  // the worker's: the transaction being produced
  std::thread worker_;
  std::function<void(std::vector<ports::delivery>)> report_;

  mutable std::mutex mu_;  // guards what follows
  std::condition_variable wake_;
  std::condition_variable idle_;
  bool stop_ = false;
  std::deque<pending_event> queue_;
  std::size_t in_batch_ = 0;
  ports::publisher_recovery recovery_{false, std::nullopt};
  bool connected_ = true;
  std::string last_error_;
  std::string failure_;  // set once fenced: the publisher is done
};

}  // namespace

result<std::unique_ptr<ports::event_publisher>> make_transactional_publisher(kafka_options options) {
  auto p = std::make_unique<transactional_publisher>(std::move(options));
  if (auto ok = p->start(); !ok) return std::unexpected(ok.error());
  return p;
}

}  // namespace detail
}  // namespace atrium::kafka_adapter
