#pragma once
/// Kafka adapter (librdkafka 2.0): the `event_publisher` that writes committed events to
/// a topic as CloudEvents 1.0 messages, and an embedded development cluster.
///
/// Message format (CloudEvents Kafka protocol binding 1.0,
/// https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md):
///
/// * key: the event's stream id (`project-0193…`), so one entity's events share a
///   partition and keep their order;
/// * binary content mode (default): value = the event's `data` as JSON (public form:
///   redacted fields removed), headers `ce_specversion` = `1.0`, `ce_id` (event id),
///   `ce_source`, `ce_type` = `atrium.<type>`, `ce_subject` (stream), `ce_time` (commit
///   time, RFC 3339), extensions `ce_position` and `ce_version` (decimal), and
///   `content-type: application/json`;
/// * structured content mode: value = one JSON object with the same attributes
///   (`specversion`, `id`, `source`, `type`, `subject`, `time`, `position`, `version`,
///   `datacontenttype`, `data`), header `content-type: application/cloudevents+json`.
///
/// Delivery: idempotent producer (`enable.idempotence=true`, hence acks=all and ordered
/// retries), `message.timeout.ms=0` (a message is retried until delivered however long
/// the brokers are away), so a failed delivery report only comes from a permanent error.
///
/// Exactly-once option (`kafka_options::transactional_id` set; Kafka transactions, KIP-98,
/// https://cwiki.apache.org/confluence/display/KAFKA/KIP-98+-+Exactly+Once+Delivery+and+Transactional+Messaging):
/// the publisher's own thread takes the events queued so far (up to
/// `max_transaction_events`) as one transaction: begin, produce, commit, and only then
/// reports them delivered. A transaction that fails is aborted and produced again; a
/// producer fenced by another with the same `transactional.id` stops for good. At start
/// (after `init_transactions`, which aborts what a crashed predecessor left open) it
/// reads the newest committed event from the topic (`last_committed_event`) and offers
/// it as `recovery()`, so the relay resumes after it even if its own checkpoint is older:
/// consumers reading with `isolation.level=read_committed` see each event exactly once.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ports/event_publisher.hpp"
#include "events/error.hpp"

namespace atrium::kafka_adapter {

/// The relay's `compression.codec` unless a setting overrides it: gzip, the one codec
/// every mainstream Kafka client decodes without a plugin (kafkajs reads only gzip
/// natively; librdkafka, the Java client, Sarama and franz-go read all). The trade-off
/// against lz4, zstd, snappy and none is measured in docs/integrations.md.
inline constexpr const char* k_default_compression = "gzip";

/// CloudEvents content mode of the messages.
enum class content_mode { binary, structured };

/// Settings of the publisher.
struct kafka_options {
  std::string brokers;                  ///< `bootstrap.servers`: `host:port,...` (required)
  std::string topic = "atrium.events";  ///< the topic every event goes to
  content_mode mode = content_mode::binary;
  std::string source = "/atrium";  ///< `ce_source` (a URI reference)
  /// librdkafka settings passed through as given (`security.protocol`, `sasl.*`,
  /// `ssl.*`, ...), applied after Atrium's own, so they may override them.
  std::vector<std::pair<std::string, std::string>> settings;
  /// Events published and not yet reported, at most (`publish` answers `unavailable`
  /// beyond; librdkafka's `queue.buffering.max.messages` is set to match).
  std::size_t max_in_flight = 100'000;
  /// Non-empty: produce in Kafka transactions under this `transactional.id` (stable
  /// across restarts of the same server; unique per server writing to the cluster).
  std::string transactional_id;
  /// Events per transaction, at most (exactly-once mode).
  std::size_t max_transaction_events = 10'000;
};

/// Creates the producer and its delivery-report thread. Errors: `invalid_argument` for
/// an empty broker list or a setting librdkafka refuses (the message names it),
/// `unavailable` if the client cannot be created.
[[nodiscard]] result<std::unique_ptr<ports::event_publisher>> make_kafka_publisher(kafka_options options);

/// The newest event in `options.topic` that a `read_committed` consumer sees (aborted
/// and still-open transactions are invisible to it): for each partition, reads back from
/// the end (16 messages, then 16× more) until a message carrying a position is found,
/// and returns the one with the highest `ce_position` (binary mode header, or the
/// `position` attribute of a structured message). Empty if the topic holds none or does
/// not exist. Errors: `unavailable` if the cluster does not answer within `timeout` or
/// `cancelled` (checked about once a second) returns true; `invalid_argument` for a
/// setting librdkafka refuses.
[[nodiscard]] result<std::optional<ports::published_event>> last_committed_event(
    const kafka_options& options, std::chrono::milliseconds timeout, const std::function<bool()>& cancelled = {});

/// The Kafka headers and value of one event as the publisher sends them (for tests and
/// documentation): headers in order, then the value.
struct encoded_message {
  std::string key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string value;
};
[[nodiscard]] encoded_message encode_cloudevent(const envelope& e, content_mode mode, const std::string& source);

/// An in-process Kafka cluster for development and tests: librdkafka's mock cluster,
/// which speaks the Kafka protocol on 127.0.0.1 ports, so any client (kcat, a JVM
/// consumer) can connect to `bootstraps()`. Data lives in memory only.
class embedded_cluster {
 public:
  /// Starts `brokers` brokers and creates `topic` with `partitions` partitions.
  /// `unavailable` if the cluster cannot start.
  [[nodiscard]] static result<std::unique_ptr<embedded_cluster>> start(int brokers, const std::string& topic,
                                                                       int partitions);
  ~embedded_cluster();
  embedded_cluster(const embedded_cluster&) = delete;
  embedded_cluster& operator=(const embedded_cluster&) = delete;

  /// The bootstrap address list, e.g. `127.0.0.1:39241,127.0.0.1:40113`.
  [[nodiscard]] std::string bootstraps() const;
  /// Takes broker `id` (1-based) down or up again (tests of outages).
  [[nodiscard]] result<void> set_broker_down(int id);
  [[nodiscard]] result<void> set_broker_up(int id);
  /// Delays every answer of broker `id` by `rtt` (tests of slow brokers).
  [[nodiscard]] result<void> set_broker_rtt(int id, std::chrono::milliseconds rtt);
  /// Makes the next requests of Kafka API `api_key` (0 Produce, 26 EndTxn, ... as in
  /// the Kafka protocol) fail with `errors` (Kafka error codes), one per request, in
  /// order (tests of failing transactions).
  void inject_errors(int api_key, const std::vector<int>& errors);
  /// Brokers in the cluster.
  [[nodiscard]] int brokers() const { return brokers_; }

  struct impl;

 private:
  embedded_cluster(std::unique_ptr<impl> p, int brokers);
  std::unique_ptr<impl> impl_;
  int brokers_;
};

}  // namespace atrium::kafka_adapter
