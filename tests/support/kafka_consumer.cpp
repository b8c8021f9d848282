#include "tests/support/kafka_consumer.hpp"

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <stdexcept>

namespace atrium::test {

std::vector<kafka_message> consume_topic(const std::string& brokers, const std::string& topic, int partitions,
                                         const std::function<bool(const std::vector<kafka_message>&)>& enough,
                                         std::chrono::milliseconds timeout) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const char* v) {
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) throw std::runtime_error(errstr);
  };
  set("bootstrap.servers", brokers.c_str());
  set("group.id", "atrium-tests");  // required by the consumer API; no group join with assign()
  set("enable.auto.commit", "false");
  set("enable.partition.eof", "false");
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) throw std::runtime_error(errstr);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);

  std::vector<kafka_message> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!enough(out) && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      kafka_message k;
      k.partition = m->partition;
      k.offset = m->offset;
      if (m->key != nullptr) k.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) k.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
          k.headers[name] = value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string();
        }
      }
      out.push_back(std::move(k));
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      std::fprintf(stderr, "consume_topic: partition %d offset %lld: %s\n", static_cast<int>(m->partition),
                   static_cast<long long>(m->offset), rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

std::int64_t topic_end_offsets(const std::string& brokers, const std::string& topic, int partitions) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    throw std::runtime_error(errstr);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) throw std::runtime_error(errstr);
  std::int64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    std::int64_t low = 0, high = 0;
    const auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 10'000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_destroy(rk);
      throw std::runtime_error(std::string("watermarks: ") + rd_kafka_err2str(err));
    }
    total += high - low;
  }
  rd_kafka_destroy(rk);
  return total;
}

}  // namespace atrium::test
