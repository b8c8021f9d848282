#include "events/envelope.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include <simdjson.h>

#include "events/registry.hpp"

namespace atrium {

void to_json(nlohmann::json& j, const envelope& e) {
  j = nlohmann::json{{"position", e.position},
                     {"stream", e.stream},
                     {"version", e.version},
                     {"id", e.id},
                     {"type", e.type},
                     {"schema", e.schema},
                     {"time", e.time},
                     {"actor", e.actor},
                     {"correlation_id", e.correlation_id},
                     {"causation_id", e.causation_id},
                     {"data", e.data}};
  // Left out when empty: events from before metadata existed keep their canonical bytes.
  if (!e.metadata.empty()) j["metadata"] = e.metadata;
  if (!e.hash.empty()) j["hash"] = e.hash;
}

std::string canonical_bytes(const envelope& e) {
  envelope copy = e;
  copy.hash.clear();
  return nlohmann::json(copy).dump();
}

void from_json(const nlohmann::json& j, envelope& e) {
  // nlohmann converts between number kinds silently (-1 → 2^64-1, 1.7 → 1); an envelope
  // with such fields is corrupt, not to be guessed at.
  const auto& position = j.at("position");
  const auto& version = j.at("version");
  const auto& schema = j.at("schema");
  if (!position.is_number_unsigned() || !version.is_number_unsigned()) {
    throw nlohmann::json::type_error::create(302, "position and version must be unsigned integers", &j);
  }
  if (!schema.is_number_integer() || schema.get<std::int64_t>() < 1 || schema.get<std::int64_t>() > 1'000'000) {
    throw nlohmann::json::type_error::create(302, "schema must be an integer from 1", &j);
  }
  if (!j.at("data").is_object()) throw nlohmann::json::type_error::create(302, "data must be an object", &j);
  const auto metadata = j.find("metadata");
  if (metadata != j.end() && !metadata->is_object()) {
    throw nlohmann::json::type_error::create(302, "metadata must be an object", &j);
  }
  position.get_to(e.position);
  j.at("stream").get_to(e.stream);
  version.get_to(e.version);
  j.at("id").get_to(e.id);
  j.at("type").get_to(e.type);
  e.schema = static_cast<int>(schema.get<std::int64_t>());
  j.at("time").get_to(e.time);
  j.at("actor").get_to(e.actor);
  e.correlation_id = j.value("correlation_id", "");
  e.causation_id = j.value("causation_id", "");
  e.data = j.at("data");
  e.metadata = metadata != j.end() ? *metadata : nlohmann::json::object();
  e.hash = j.value("hash", "");
}

namespace {

/// A simdjson DOM value as nlohmann::json, with nlohmann's own number typing (a
/// non-negative integer is `number_unsigned`, a negative one `number_integer`), so a
/// payload decodes exactly as `nlohmann::json::parse` would have given it.
nlohmann::json to_nlohmann(simdjson::dom::element v) {
  using simdjson::dom::element_type;
  switch (v.type()) {
    case element_type::OBJECT: {
      nlohmann::json out = nlohmann::json::object();
      for (auto field : simdjson::dom::object(v)) out[std::string(field.key)] = to_nlohmann(field.value);
      return out;
    }
    case element_type::ARRAY: {
      nlohmann::json out = nlohmann::json::array();
      for (auto item : simdjson::dom::array(v)) out.push_back(to_nlohmann(item));
      return out;
    }
    case element_type::STRING:
      return std::string(std::string_view(v));
    case element_type::INT64: {
      const auto n = std::int64_t(v);
      return n >= 0 ? nlohmann::json(static_cast<std::uint64_t>(n)) : nlohmann::json(n);
    }
    case element_type::UINT64:
      return std::uint64_t(v);
    case element_type::DOUBLE:
      return double(v);
    case element_type::BOOL:
      return bool(v);
    case element_type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

struct malformed {
  std::string why;
};

/// The string field `key` of `obj`; "" when absent and `required` is false.
void string_field(simdjson::dom::object obj, std::string_view key, std::string& out, bool required) {
  auto field = obj.at_key(key);
  if (field.error() == simdjson::NO_SUCH_FIELD && !required) {
    out.clear();
    return;
  }
  std::string_view text;
  if (field.get_string().get(text) != simdjson::SUCCESS) {
    throw malformed{std::string(key) + (field.error() ? " is missing" : " must be a string")};
  }
  out.assign(text);
}

std::uint64_t unsigned_field(simdjson::dom::object obj, std::string_view key) {
  std::uint64_t n = 0;
  // A negative or fractional number is not converted (nlohmann would silently wrap or
  // truncate it): such an envelope is corrupt.
  if (obj.at_key(key).get_uint64().get(n) != simdjson::SUCCESS) {
    throw malformed{std::string(key) + " must be an unsigned integer"};
  }
  return n;
}

}  // namespace

result<envelope> parse_envelope(std::string_view bytes) {
  envelope e;
  // One parser per thread: its buffers are reused across calls. The parser copies the input into its own padded
  // buffer, so `bytes` needs no SIMDJSON_PADDING.
  thread_local simdjson::dom::parser parser;
  try {
    simdjson::dom::object obj;
    if (auto error = parser.parse(bytes.data(), bytes.size()).get_object().get(obj)) {
      return fail(errc::invalid_argument, std::string("malformed envelope: ") + simdjson::error_message(error));
    }
    e.position = unsigned_field(obj, "position");
    e.version = unsigned_field(obj, "version");
    std::int64_t schema = 0;
    if (obj.at_key("schema").get_int64().get(schema) != simdjson::SUCCESS || schema < 1 || schema > 1'000'000) {
      throw malformed{"schema must be an integer from 1"};
    }
    e.schema = static_cast<int>(schema);
    string_field(obj, "stream", e.stream, true);
    string_field(obj, "id", e.id, true);
    string_field(obj, "type", e.type, true);
    string_field(obj, "time", e.time, true);
    string_field(obj, "actor", e.actor, true);
    string_field(obj, "correlation_id", e.correlation_id, false);
    string_field(obj, "causation_id", e.causation_id, false);
    string_field(obj, "hash", e.hash, false);
    simdjson::dom::element data;
    if (obj.at_key("data").get(data) != simdjson::SUCCESS || !data.is_object()) {
      throw malformed{"data must be an object"};
    }
    e.data = to_nlohmann(data);
    auto metadata = obj.at_key("metadata");
    if (metadata.error() == simdjson::NO_SUCH_FIELD) {
      e.metadata = nlohmann::json::object();
    } else {
      simdjson::dom::element meta;
      if (metadata.get(meta) != simdjson::SUCCESS || !meta.is_object()) throw malformed{"metadata must be an object"};
      e.metadata = to_nlohmann(meta);
    }
    return e;
  } catch (const malformed& m) {
    return fail(errc::invalid_argument, "malformed envelope: " + m.why);
  } catch (const simdjson::simdjson_error& ex) {
    return fail(errc::invalid_argument, std::string("malformed envelope: ") + ex.what());
  }
}

std::string serialize_envelope(const envelope& e) { return nlohmann::json(e).dump(); }

nlohmann::json to_public_json(const envelope& e) {
  nlohmann::json j = e;
  if (const auto* info = find_event_type(e.type); info != nullptr && j["data"].is_object()) {
    for (auto field : info->redacted) j["data"].erase(std::string(field));
  }
  return j;
}

std::string now_rfc3339() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto secs = time_point_cast<seconds>(now);
  const auto micros = duration_cast<microseconds>(now - secs).count();
  const std::time_t t = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros));
  return buf;
}

std::int64_t milliseconds_since(const std::string& time) {
  std::tm tm{};
  int micros = 0;
  if (std::sscanf(time.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &micros) < 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm)) + std::chrono::microseconds(micros);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() - at);
  return std::max<std::int64_t>(0, ms.count());
}

namespace {

/// The 16 bytes of a UUIDv7 as text: lowercase hex, dashes after bytes 4, 6, 8 and 10.
std::string uuid_text(const std::uint8_t (&b)[16]) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(hex[b[i] >> 4]);
    out.push_back(hex[b[i] & 0x0F]);
  }
  return out;
}

}  // namespace

std::string new_uuid_v7() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::uint8_t b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  const std::uint64_t r1 = rng();
  const std::uint64_t r2 = rng();
  for (int i = 6; i < 16; ++i) b[i] = static_cast<std::uint8_t>((i < 11 ? r1 : r2) >> (8 * (i % 8)));
  b[6] = static_cast<std::uint8_t>(0x70 | (b[6] & 0x0F));  // version 7
  b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));  // variant 10
  return uuid_text(b);
}

namespace {

/// splitmix64 (Steele, Lea, Flood 2014): a fast 64-bit mix for the generator's bits.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string uuid_v7_generator::next() {
  if (seed_ == 0) {
    std::random_device rd;
    seed_ = (static_cast<std::uint64_t>(rd()) << 32 | rd()) | 1;
  }
  const auto now = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  constexpr std::uint64_t lo_max = (1ULL << 62) - 1;
  constexpr std::uint64_t hi_max = (1ULL << 12) - 1;
  if (now > ms_) {
    ms_ = now;
    const auto r = splitmix64(seed_);
    hi_ = (r >> 52) & 0x7FF;  // top bit of the 74-bit counter clear
    lo_ = splitmix64(seed_) & lo_max;
  } else if (lo_ < lo_max) {
    ++lo_;  // same millisecond (or the clock went back): the next counter value
  } else {
    lo_ = 0;
    if (hi_ < hi_max) {
      ++hi_;
    } else {
      hi_ = 0;
      ++ms_;  // the counter is exhausted: borrow the next millisecond (RFC 9562 §6.2)
    }
  }
  std::uint8_t b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms_ >> (8 * (5 - i)));
  b[6] = static_cast<std::uint8_t>(0x70 | (hi_ >> 8));
  b[7] = static_cast<std::uint8_t>(hi_ & 0xFF);
  b[8] = static_cast<std::uint8_t>(0x80 | ((lo_ >> 56) & 0x3F));
  for (int i = 9; i < 16; ++i) b[i] = static_cast<std::uint8_t>(lo_ >> (8 * (15 - i)));
  return uuid_text(b);
}

bool is_uuid_v7(std::string_view id) noexcept {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char ch = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-') return false;
    } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
      return false;
    }
  }
  return id[14] == '7' && (id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
}

}  // namespace atrium
