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

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/ports/event_publisher.hpp"
#include "events/error.hpp"

namespace atrium::kafka_adapter {

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
};

/// Creates the producer and its delivery-report thread. Errors: `invalid_argument` for
/// an empty broker list or a setting librdkafka refuses (the message names it),
/// `unavailable` if the client cannot be created.
[[nodiscard]] result<std::unique_ptr<ports::event_publisher>> make_kafka_publisher(kafka_options options);

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
  /// Brokers in the cluster.
  [[nodiscard]] int brokers() const { return brokers_; }

  struct impl;

 private:
  embedded_cluster(std::unique_ptr<impl> p, int brokers);
  std::unique_ptr<impl> impl_;
  int brokers_;
};

}  // namespace atrium::kafka_adapter
