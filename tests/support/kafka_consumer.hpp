#pragma once
/// Test support: reads a Kafka topic from the beginning with librdkafka's consumer
/// (partitions assigned explicitly, no consumer group), so tests can check what the
/// relay produced.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace atrium::test {

/// One consumed message.
struct kafka_message {
  int partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;  ///< last value per header name
};

/// Reads `topic` (partitions 0..partitions-1) from the beginning until `enough` returns
/// true for the messages read so far, or `timeout` passes; returns what was read, in
/// partition order then offset order per partition as they arrived.
std::vector<kafka_message> consume_topic(const std::string& brokers, const std::string& topic, int partitions,
                                         const std::function<bool(const std::vector<kafka_message>&)>& enough,
                                         std::chrono::milliseconds timeout);

/// The number of offsets `topic` holds (sum over partitions 0..partitions-1 of high
/// minus low watermark): the message count on a cluster without transaction markers
/// such as the embedded one. Throws std::runtime_error if the cluster does not answer.
std::int64_t topic_end_offsets(const std::string& brokers, const std::string& topic, int partitions);

}  // namespace atrium::test
