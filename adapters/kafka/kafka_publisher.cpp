#include "adapters/kafka/kafka_publisher.hpp"

#include "adapters/kafka/kafka_common.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "events/schema_uri.hpp"

namespace atrium::kafka_adapter {
namespace detail {

void log_line(const rd_kafka_t*, int level, const char* facility, const char* line) {
  const auto lvl = level <= 3   ? spdlog::level::err
                   : level == 4 ? spdlog::level::warn
                   : level <= 6 ? spdlog::level::info
                                : spdlog::level::debug;
  spdlog::log(lvl, "kafka {}: {}", facility, line);
}

result<conf_ptr> make_conf(const kafka_options& options, const std::vector<std::pair<std::string, std::string>>& ours) {
  if (options.brokers.empty()) return fail(errc::invalid_argument, "kafka: no brokers given");
  conf_ptr conf(rd_kafka_conf_new());
  auto set = [&](const std::string& key, const std::string& value) -> result<void> {
    char errstr[512];
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      return fail(errc::invalid_argument, "kafka setting " + key + ": " + errstr);
    }
    return {};
  };
  if (auto ok = set("bootstrap.servers", options.brokers); !ok) return std::unexpected(ok.error());
  for (const auto& [k, v] : ours) {
    if (auto ok = set(k, v); !ok) return std::unexpected(ok.error());
  }
  for (const auto& [k, v] : options.settings) {
    if (auto ok = set(k, v); !ok) return std::unexpected(ok.error());
  }
  rd_kafka_conf_set_log_cb(conf.get(), &log_line);
  return conf;
}

rd_kafka_resp_err_t produce(rd_kafka_t* rk, rd_kafka_topic_t* topic, const encoded_message& m, void* opaque) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(m.headers.size());
  for (const auto& [name, value] : m.headers) {
    rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
  }
  const auto err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_KEY(m.key.data(), m.key.size()),
                                     RD_KAFKA_V_VALUE(const_cast<char*>(m.value.data()), m.value.size()),  // copied
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                     RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(headers);  // not taken over on failure
  return err;
}

void destroy_producer(rd_kafka_t*& rk, rd_kafka_topic_t*& topic) {
  if (topic != nullptr) rd_kafka_topic_destroy(topic);
  topic = nullptr;
  if (rk == nullptr) return;
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
  rd_kafka_poll(rk, 0);
  rd_kafka_destroy(rk);
  rk = nullptr;
}

}  // namespace detail

namespace {

constexpr const char* k_json = "application/json";
constexpr const char* k_cloudevents_json = "application/cloudevents+json";

class kafka_publisher final : public ports::event_publisher {
 public:
  explicit kafka_publisher(kafka_options options) : options_(std::move(options)) {}

  ~kafka_publisher() override {
    stop_.store(true);
    if (poller_.joinable()) poller_.join();
    // Whatever was never delivered is dropped here; the relay's checkpoint has not
    // passed it, so the next run publishes it again (at least once).
    closing_.store(true);
    detail::destroy_producer(rk_, topic_);
  }

  result<void> start() {
    auto conf =
        detail::make_conf(options_, {
                                        {"enable.idempotence", "true"},
                                        // retry until delivered: an outage delays, never drops
                                        {"message.timeout.ms", "0"},
                                        {"linger.ms", "5"},
                                        {"compression.codec", k_default_compression},
                                        {"queue.buffering.max.messages", std::to_string(options_.max_in_flight)},
                                        {"client.id", "atriumd-relay"},
                                    });
    if (!conf) return std::unexpected(conf.error());
    rd_kafka_conf_set_opaque(conf->get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &kafka_publisher::delivered);
    rd_kafka_conf_set_error_cb(conf->get(), &kafka_publisher::client_error);
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof errstr);
    if (rk_ == nullptr) return fail(errc::unavailable, std::string("kafka producer: ") + errstr);
    (void)conf->release();  // rd_kafka_new owns it now
    topic_ = rd_kafka_topic_new(rk_, options_.topic.c_str(), nullptr);
    if (topic_ == nullptr) return fail(errc::invalid_argument, "kafka topic " + options_.topic);
    poller_ = std::thread([this] {
      while (!stop_.load()) {
        rd_kafka_poll(rk_, 50);
        report_collected();
      }
    });
    return {};
  }

  std::string describe() const override { return "kafka://" + options_.brokers + "/" + options_.topic; }

  void on_delivery(std::function<void(std::vector<ports::delivery>)> fn) override { report_ = std::move(fn); }

  result<void> publish(const envelope& e) override {
    const auto m = encode_cloudevent(e, options_.mode, options_.source);
    const auto err = detail::produce(rk_, topic_, m, reinterpret_cast<void*>(static_cast<std::uintptr_t>(e.position)));
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return fail(errc::unavailable, "kafka: local queue full");
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return fail(errc::unavailable, std::string("kafka: ") + rd_kafka_err2str(err));
    in_flight_.fetch_add(1);
    return {};
  }

  ports::publisher_health health() const override {
    std::lock_guard lock(mu_);
    return {connected_.load(), last_error_, in_flight_.load()};
  }

  void flush(std::chrono::milliseconds timeout) override {
    if (rk_ != nullptr) rd_kafka_flush(rk_, static_cast<int>(timeout.count()));
    report_collected();
  }

 private:
  /// Hands the reports collected during the last poll to `report_`, as one batch.
  void report_collected() {
    std::vector<ports::delivery> batch;
    {
      std::lock_guard lock(reports_mu_);
      batch.swap(collected_);
    }
    if (!batch.empty() && report_ && !closing_.load()) report_(std::move(batch));
  }

  static void delivered(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<kafka_publisher*>(opaque);
    self->in_flight_.fetch_sub(1);
    if (self->closing_.load()) return;
    ports::delivery d;
    d.position = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(m->_private));
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      d.failure = error{errc::unavailable, std::string("kafka delivery: ") + rd_kafka_err2str(m->err)};
      std::lock_guard lock(self->mu_);
      self->last_error_ = d.failure->message;
    } else {
      self->connected_.store(true);
    }
    std::lock_guard lock(self->reports_mu_);
    self->collected_.push_back(std::move(d));  // reported when the poll returns
  }

  static void client_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<kafka_publisher*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->connected_.store(false);
    {
      std::lock_guard lock(self->mu_);
      self->last_error_ = reason;
    }
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512];
      rd_kafka_fatal_error(rk, why, sizeof why);
      spdlog::error("kafka relay: fatal producer error: {}", why);
    } else {
      spdlog::warn("kafka relay: {} ({})", reason, rd_kafka_err2name(code));
    }
  }

  kafka_options options_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* topic_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closing_{false};
  std::function<void(std::vector<ports::delivery>)> report_;
  std::mutex reports_mu_;
  std::vector<ports::delivery> collected_;  // reports of the current poll
  std::atomic<bool> connected_{true};
  std::atomic<std::uint64_t> in_flight_{0};
  mutable std::mutex mu_;
  std::string last_error_;
};

}  // namespace

encoded_message encode_cloudevent(const envelope& e, content_mode mode, const std::string& source) {
  encoded_message m;
  m.key = e.stream;
  auto pub = to_public_json(e);  // redacted payload, as the API serves it
  // The CloudEvents attributes, in the order the binary mode's headers carry them.
  const std::vector<std::pair<std::string, std::string>> attributes{{"specversion", "1.0"},
                                                                    {"id", e.id},
                                                                    {"source", source},
                                                                    {"type", "atrium." + e.type},
                                                                    {"subject", e.stream},
                                                                    {"time", e.time},
                                                                    {"position", std::to_string(e.position)},
                                                                    {"version", std::to_string(e.version)},
                                                                    {"dataschema", event_schema_uri(e.type, e.schema)}};
  if (mode == content_mode::binary) {
    for (const auto& [name, value] : attributes) m.headers.emplace_back("ce_" + name, value);
    m.headers.emplace_back("content-type", k_json);
    m.value = pub["data"].dump();
  } else {
    m.headers = {{"content-type", k_cloudevents_json}};
    nlohmann::json event = nlohmann::json::object();
    for (const auto& [name, value] : attributes) event[name] = value;
    event["datacontenttype"] = k_json;
    event["data"] = pub["data"];
    m.value = event.dump();
  }
  return m;
}

result<std::unique_ptr<ports::event_publisher>> make_kafka_publisher(kafka_options options) {
  if (!options.transactional_id.empty()) return detail::make_transactional_publisher(std::move(options));
  auto p = std::make_unique<kafka_publisher>(std::move(options));
  if (auto ok = p->start(); !ok) return std::unexpected(ok.error());
  return p;
}

// --- embedded cluster ---------------------------------------------------------------

struct embedded_cluster::impl {
  rd_kafka_t* rk = nullptr;  // the handle the mock cluster runs under
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~impl() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
};

embedded_cluster::embedded_cluster(std::unique_ptr<impl> p, int brokers) : impl_(std::move(p)), brokers_(brokers) {}
embedded_cluster::~embedded_cluster() = default;

result<std::unique_ptr<embedded_cluster>> embedded_cluster::start(int brokers, const std::string& topic,
                                                                  int partitions) {
  auto state = std::make_unique<impl>();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  // The handle only hosts the cluster's thread; it never connects anywhere.
  rd_kafka_conf_set(conf, "client.id", "atriumd-embedded-kafka", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);  // not its "no bootstrap.servers" notice
  rd_kafka_conf_set_log_cb(conf, &detail::log_line);
  state->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (state->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return fail(errc::unavailable, std::string("embedded kafka: ") + errstr);
  }
  state->cluster = rd_kafka_mock_cluster_new(state->rk, brokers);
  if (state->cluster == nullptr) return fail(errc::unavailable, "embedded kafka: the mock cluster did not start");
  const auto replication = std::min(brokers, 3);
  if (auto err = rd_kafka_mock_topic_create(state->cluster, topic.c_str(), partitions, replication);
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return fail(errc::unavailable, std::string("embedded kafka: create topic: ") + rd_kafka_err2str(err));
  }
  return std::unique_ptr<embedded_cluster>(new embedded_cluster(std::move(state), brokers));
}

std::string embedded_cluster::bootstraps() const { return rd_kafka_mock_cluster_bootstraps(impl_->cluster); }

void embedded_cluster::inject_errors(int api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, static_cast<std::int16_t>(api_key), codes.size(),
                                          codes.data());
}

result<void> embedded_cluster::set_broker_down(int id) {
  if (auto err = rd_kafka_mock_broker_set_down(impl_->cluster, id); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return fail(errc::invalid_argument, std::string("broker down: ") + rd_kafka_err2str(err));
  }
  return {};
}

result<void> embedded_cluster::set_broker_up(int id) {
  if (auto err = rd_kafka_mock_broker_set_up(impl_->cluster, id); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return fail(errc::invalid_argument, std::string("broker up: ") + rd_kafka_err2str(err));
  }
  return {};
}

result<void> embedded_cluster::set_broker_rtt(int id, std::chrono::milliseconds rtt) {
  if (auto err = rd_kafka_mock_broker_set_rtt(impl_->cluster, id, static_cast<int>(rtt.count()));
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return fail(errc::invalid_argument, std::string("broker rtt: ") + rd_kafka_err2str(err));
  }
  return {};
}

}  // namespace atrium::kafka_adapter
