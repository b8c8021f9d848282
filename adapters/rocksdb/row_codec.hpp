#pragma once
/// Internal to adapters/rocksdb: the byte encoding of a projection row (the values of the
/// `proj_*` families; docs/design.md, "Storage layout").
///
/// A row that is a JSON object or array is stored as MessagePack (nlohmann's
/// `to_msgpack`, https://msgpack.org/): its first byte is then a map (0x80–0x8f, 0xde,
/// 0xdf) or an array (0x90–0x9f, 0xdc, 0xdd) marker, a byte no JSON text starts with. Any
/// other row (a bare string, number, boolean or null) and any row with a string that is
/// not valid UTF-8 is stored as JSON text, as every row was before (data dirs written
/// then stay readable without a rebuild). `decode_row` tells the two apart by that
/// first byte.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "events/error.hpp"

namespace atrium::rocksdb_adapter {

/// How `encode_row` stored a row.
enum class row_format {
  msgpack,   ///< MessagePack (an object or array with valid UTF-8 strings throughout)
  json,      ///< JSON text (a scalar row)
  replaced,  ///< JSON text with U+FFFD for each invalid UTF-8 sequence of its strings
};

/// `value`'s stored bytes, appended to `out` (which is cleared first), and which format
/// they are in. Never throws for a JSON value: a string that is not valid UTF-8 (e.g. cut
/// mid-character by a projection) is stored with U+FFFD in its place, since a row is
/// derived data and must not stall its projection (the caller logs `replaced`).
row_format encode_row(const nlohmann::json& value, std::string& out);

/// True if the stored bytes `bytes` are MessagePack (by their first byte), false if JSON text.
[[nodiscard]] bool is_msgpack_row(std::string_view bytes);

/// The row stored as `bytes` (either format). `internal` ("corrupt row: ...") if the
/// bytes are neither a complete MessagePack value nor JSON text.
[[nodiscard]] result<nlohmann::json> decode_row(std::string_view bytes);

}  // namespace atrium::rocksdb_adapter
