#pragma once
/// The encodings of the embedded result store (adapters/results): how cells are kept in
/// a result's `rows` file and how they are rendered for readers. Plain functions, no I/O.
///
/// Rows file. Rows are written one after another, each as its cells in column order;
/// a cell is a LEB128 varint `h` followed by `h - 1` bytes of the cell's text, and
/// `h = 0` is SQL NULL. The text is kept exactly as the database printed it, so the CSV
/// rendering is the database's own text and the JSON rendering (by column type) is
/// decided when a page is read. Writing a row costs a varint and a copy per cell.
///
/// Renderings follow the "Values" paragraph of ports/result_store.hpp:
///   JSON: `int`/`float`/`numeric` → a number when the text matches RFC 8259 §6's
///         number grammar and fits a double (else the text as a string, e.g. `NaN`);
///         `bool` → true for `t`/`true`/`1`/`y`/`yes`/`on`, false for
///         `f`/`false`/`0`/`n`/`no`/`off` (any case), else the text as a string;
///         everything else → a string (invalid UTF-8 replaced by U+FFFD so the value can
///         always be serialized); NULL → null.
///   CSV:  RFC 4180: a field holding `"`, `,`, CR or LF is quoted with `"` doubled;
///         NULL is an empty field; an empty string is `""` (as `psql --csv` prints it,
///         so the two stay distinguishable).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace atrium::results_adapter {

/// How a column's cells render as JSON (from `result_column::type`).
enum class json_kind { number, boolean, string };

/// The JSON rendering of a column type: `int`, `float`, `numeric` → number; `bool` →
/// boolean; anything else (including unknown types) → string.
[[nodiscard]] json_kind json_kind_of(std::string_view column_type) noexcept;

/// True if `text` matches RFC 8259 §6's `number` grammar exactly
/// (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, nothing before or after).
[[nodiscard]] bool is_json_number(std::string_view text) noexcept;

/// The JSON value of one non-NULL cell of a column rendered as `kind` (see the header
/// comment). Integers that fit int64/uint64 stay exact; other numbers become doubles.
[[nodiscard]] nlohmann::json render_json(json_kind kind, std::string_view text);

/// `text` with every invalid UTF-8 sequence (RFC 3629) replaced by U+FFFD.
[[nodiscard]] std::string valid_utf8(std::string_view text);

/// Appends `text` as one RFC 4180 field to `out` (quoted only when it must be, and
/// `""` for an empty string). NULL fields are appended by the caller as nothing.
void append_csv_field(std::string& out, std::string_view text);

/// Appends the rows-file encoding of one cell (see the header comment) to `out`.
inline void append_cell(std::string& out, const std::optional<std::string>& cell) {
  std::uint64_t h = cell ? cell->size() + 1 : 0;
  char buf[10];
  std::size_t n = 0;
  do {
    auto byte = static_cast<unsigned char>(h & 0x7f);
    h >>= 7;
    if (h != 0) byte |= 0x80;
    buf[n++] = static_cast<char>(byte);
  } while (h != 0);
  out.append(buf, n);
  if (cell) out.append(*cell);
}

/// Decodes a LEB128 varint from `[*pos, end)`: on success advances `*pos` past it,
/// stores the value and returns true; returns false if the bytes end first or the
/// varint is longer than 10 bytes (the caller tells "need more" from "corrupt" by
/// how many bytes it had).
[[nodiscard]] inline bool decode_varint(const char** pos, const char* end, std::uint64_t* value) noexcept {
  std::uint64_t v = 0;
  const char* p = *pos;
  for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
    auto byte = static_cast<unsigned char>(*p++);
    v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *pos = p;
      *value = v;
      return true;
    }
  }
  return false;
}

}  // namespace atrium::results_adapter
