// Fuzz target: the result.csv reader of script jobs (`csv_reader`,
// adapters/process/csv_reader.hpp, over libcsv in strict mode). Properties:
// - split invariance: the input fed whole and fed in two pieces (split at a point the
//   first byte picks, then byte by byte for short inputs) is accepted or refused alike,
//   with the same header and cells;
// - shape: every complete row has the header's number of cells, all valid UTF-8;
// - round trip: an accepted table re-encoded as RFC 4180 (every non-NULL field quoted,
//   NULL as an empty unquoted field, CRLF) parses back to the same header and cells.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/process/csv_reader.hpp"
#include "events/text.hpp"

namespace {

using atrium::process_adapter::csv_reader;

struct parsed {
  bool ok = false;
  std::optional<std::vector<std::string>> header;
  std::vector<std::optional<std::string>> cells;
};

parsed parse(std::string_view in, std::size_t split) {
  csv_reader reader;
  parsed p;
  auto ok = reader.feed(in.substr(0, split));
  if (ok) ok = reader.feed(in.substr(split));
  if (ok) ok = reader.finish();
  p.ok = ok.has_value();
  p.header = reader.header();
  p.cells = reader.batch().cells;
  return p;
}

[[noreturn]] void finding(const char* what, std::string_view in) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input (%zu bytes): %.*s\n", what, in.size(),
               static_cast<int>(in.size()), in.data());
  std::abort();
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const parsed whole = parse(in, in.size());
  const parsed halves = parse(in, size == 0 ? 0 : data[0] % (size + 1));
  if (whole.ok != halves.ok) finding("acceptance depends on the split", in);
  if (!whole.ok) return 0;
  if (whole.header != halves.header || whole.cells != halves.cells) finding("rows depend on the split", in);
  if (size <= 256) {
    csv_reader bytewise;
    bool ok = true;
    for (std::size_t i = 0; i < size && ok; ++i) ok = bytewise.feed(in.substr(i, 1)).has_value();
    if (ok) ok = bytewise.finish().has_value();
    if (!ok || bytewise.header() != whole.header || bytewise.batch().cells != whole.cells)
      finding("byte-by-byte feeding differs", in);
  }
  if (!whole.header) {
    if (!whole.cells.empty()) finding("rows without a header", in);
    return 0;
  }
  const std::size_t columns = whole.header->size();
  if (columns == 0 || whole.cells.size() % columns != 0) finding("a row with the wrong number of cells", in);
  std::string again;
  for (std::size_t c = 0; c < columns; ++c) again += (c ? "," : "") + quote((*whole.header)[c]);
  again += "\r\n";
  for (std::size_t i = 0; i < whole.cells.size(); ++i) {
    const auto& cell = whole.cells[i];
    if (cell && !atrium::valid_utf8(*cell)) finding("a cell is not valid UTF-8", in);
    if (cell) again += quote(*cell);
    again += (i + 1) % columns == 0 ? "\r\n" : ",";
  }
  const parsed round = parse(again, again.size());
  if (!round.ok || round.header != whole.header || round.cells != whole.cells) finding("re-encoded table differs", in);
  return 0;
}
