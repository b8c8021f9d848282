#pragma once
/// Internal to adapters/kafka: librdkafka plumbing shared by the at-least-once publisher
/// (kafka_publisher.cpp) and the exactly-once one (kafka_transactions.cpp).

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapters/kafka/kafka_publisher.hpp"
#include "events/error.hpp"

namespace atrium::kafka_adapter::detail {

/// librdkafka's log lines (syslog levels 0–7) into the server's log (spdlog).
void log_line(const rd_kafka_t* rk, int level, const char* facility, const char* line);

/// An owned librdkafka configuration (released once `rd_kafka_new` takes it).
struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

/// A configuration holding `ours` then `options.settings` (the operator's pass-through
/// settings, applied last so they may override ours), with `bootstrap.servers` set and
/// librdkafka's log routed to spdlog. Errors: `invalid_argument` for an empty broker
/// list or naming the setting librdkafka refused.
[[nodiscard]] result<conf_ptr> make_conf(const kafka_options& options,
                                         const std::vector<std::pair<std::string, std::string>>& ours);

/// Queues one encoded message on `topic` (copied; `opaque` comes back in its delivery
/// report). Returns librdkafka's error (`RD_KAFKA_RESP_ERR__QUEUE_FULL` when the local
/// queue is full); the headers are freed on failure.
[[nodiscard]] rd_kafka_resp_err_t produce(rd_kafka_t* rk, rd_kafka_topic_t* topic, const encoded_message& m,
                                          void* opaque);

/// Destroys a producer and its topic handle, dropping whatever it has not delivered.
void destroy_producer(rd_kafka_t*& rk, rd_kafka_topic_t*& topic);

/// The exactly-once publisher (kafka_transactions.cpp); `options.transactional_id` set.
[[nodiscard]] result<std::unique_ptr<ports::event_publisher>> make_transactional_publisher(kafka_options options);

}  // namespace atrium::kafka_adapter::detail
