// Fuzz target: the stored bytes of a projection row (adapters/rocksdb/row_codec.hpp),
// MessagePack or JSON text told apart by the first byte, as the read-model store reads
// them back from the `proj_*` families.
// Properties: decoding never crashes or throws; a decoded row re-encodes (never throws,
// whatever its strings hold) to bytes that decode again; unless its strings needed
// U+FFFD, to an equal row.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/rocksdb/row_codec.hpp"

namespace {

[[noreturn]] void finding(const char* what, std::string_view in) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input (%zu bytes)\n", what, in.size());
  std::abort();
}

/// `j` as JSON text for comparison (NaN and infinities become null on both sides).
std::string text(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace atrium::rocksdb_adapter;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    auto row = decode_row(in);
    if (!row) {
      if (!row.error().message.starts_with("corrupt row")) finding("an error that is not 'corrupt row'", in);
      return 0;
    }
    std::string bytes;
    const auto format = encode_row(*row, bytes);
    if (format == row_format::msgpack && !is_msgpack_row(bytes)) finding("MessagePack not recognised as such", in);
    if (format != row_format::msgpack && is_msgpack_row(bytes)) finding("JSON text taken for MessagePack", in);
    auto again = decode_row(bytes);
    if (!again) finding("a re-encoded row does not decode", in);
    if (format != row_format::replaced && text(*again) != text(*row)) finding("round trip changed the row", in);
    if (format == row_format::replaced) (void)again->dump();  // valid UTF-8 now: must not throw
  } catch (const std::exception& ex) {
    finding(ex.what(), in);
  }
  return 0;
}
