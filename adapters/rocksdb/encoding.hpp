#pragma once
/// Internal to adapters/rocksdb: the byte encodings of keys and values shared by the role
/// stores, and the conversion of a RocksDB `Status` into an error value.

#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "events/error.hpp"

namespace atrium::rocksdb_adapter {

/// `v` as 8 bytes, big-endian (so keys sort by number).
inline std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

/// The big-endian u64 at `offset` of `s` (which must hold 8 bytes there).
inline std::uint64_t read_be64(std::string_view s, std::size_t offset = 0) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[offset + i]);
  return v;
}

/// A RocksDB slice over `s` (no copy).
inline rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

/// `unavailable` with RocksDB's message, prefixed by what was being done.
inline error storage_error(const rocksdb::Status& s, std::string_view what) {
  return error{errc::unavailable, std::string(what) + ": " + s.ToString(), nlohmann::json::object()};
}

}  // namespace atrium::rocksdb_adapter
