#include "adapters/rocksdb/row_codec.hpp"

#include <cstdint>
#include <cstring>

#include <simdjson.h>

namespace atrium::rocksdb_adapter {
namespace {

/// True if `s` is valid UTF-8. Most row strings are short and ASCII: those are checked
/// 8 bytes at a time here, the rest by simdjson's validator.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, s.data() + i, 8);
    if ((word & 0x8080808080808080ULL) != 0) return simdjson::validate_utf8(s.data(), s.size());
  }
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0x80) != 0) return simdjson::validate_utf8(s.data(), s.size());
  }
  return true;
}

/// True if every string and object key inside `j` is valid UTF-8 (what `dump` checks).
bool all_utf8(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::string:
      return valid_utf8(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::object:
      for (const auto& [k, v] : j.get_ref<const nlohmann::json::object_t&>()) {
        if (!valid_utf8(k) || !all_utf8(v)) return false;
      }
      return true;
    case nlohmann::json::value_t::array:
      for (const auto& v : j) {
        if (!all_utf8(v)) return false;
      }
      return true;
    default:
      return true;
  }
}

/// Appends to a std::string (nlohmann's output adapter for `to_msgpack` into a string).
using string_out = nlohmann::detail::output_adapter<char, std::string>;

}  // namespace

bool is_msgpack_row(std::string_view bytes) {
  if (bytes.empty()) return false;
  const auto b = static_cast<unsigned char>(bytes.front());
  return (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
}

row_format encode_row(const nlohmann::json& value, std::string& out) {
  out.clear();
  if (!value.is_structured()) {
    if (all_utf8(value)) {
      out = value.dump();
      return row_format::json;
    }
    out = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return row_format::replaced;
  }
  if (!all_utf8(value)) {
    out = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return row_format::replaced;
  }
  nlohmann::json::to_msgpack(value, string_out(out));
  return row_format::msgpack;
}

result<nlohmann::json> decode_row(std::string_view bytes) {
  try {
    if (is_msgpack_row(bytes)) return nlohmann::json::from_msgpack(bytes.begin(), bytes.end());
    return nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::internal, std::string("corrupt row: ") + ex.what());
  }
}

}  // namespace atrium::rocksdb_adapter
