#pragma once
/// CodeMirror 6 change sets on the server: parsing their JSON form, applying them to a
/// cell's UTF-8 content, and building the change set of a whole-document replacement.
///
/// The JSON form is exactly `ChangeSet.toJSON()` of @codemirror/state 6.x
/// (https://codemirror.net/docs/ref/#state.ChangeSet.toJSON): an array of sections, each
///
///   n                          keep the next n code units
///   [n]                        delete the next n code units
///   [n, "line0", "line1", …]   replace the next n code units by the lines joined with "\n"
///
/// Lengths count UTF-16 code units, as JavaScript strings and CodeMirror do; the cell is
/// stored as UTF-8, so applying walks the UTF-8 bytes and counts 1 unit per code point
/// below U+10000 and 2 (a surrogate pair) above. A position that falls between the two
/// halves of a pair cuts it and is refused.
///
///   JSON ──parse_change_set──▶ change_set ──apply_change_set(doc)──▶ new doc (UTF-8)
///                               (shape only)   (length must equal utf16_length(doc))
///
/// Standard library and nlohmann_json only (events/ rules). No function here throws on
/// bad input: errors are `invalid_argument` values whose message says what is wrong.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/error.hpp"

namespace atrium {

/// The largest length a section may give: 2^53 - 1, JavaScript's largest safe integer
/// (`Number.MAX_SAFE_INTEGER`); larger ones (and sums above it) are refused.
inline constexpr std::uint64_t k_max_change_length = (std::uint64_t{1} << 53) - 1;

/// One section of a change set.
struct change_section {
  std::uint64_t length = 0;  ///< UTF-16 code units of the input it covers
  bool replaces = false;     ///< false: kept as it is; true: replaced by `inserted`
  std::string inserted;      ///< UTF-8 text put in its place (the lines joined with "\n"); replacing sections only
};

/// A parsed change set: its sections in document order.
struct change_set {
  std::vector<change_section> sections;
  std::uint64_t length = 0;      ///< UTF-16 length of the document it applies to (sum of section lengths)
  std::uint64_t new_length = 0;  ///< UTF-16 length of the document it produces
};

/// Parses the JSON form (above). Checks the shape only: an array; each item a
/// non-negative integer or an array whose first item is one, followed by strings; each
/// inserted line valid UTF-8 without "\n" and with no control character but tab and CR;
/// lengths and their sum at most `k_max_change_length`. Errors: `invalid_argument`
/// ("change set item 3: …").
[[nodiscard]] result<change_set> parse_change_set(const nlohmann::json& json);

/// The UTF-16 length of UTF-8 text `utf8` (assumed valid: a 4-byte sequence counts 2,
/// every other sequence 1).
[[nodiscard]] std::uint64_t utf16_length(std::string_view utf8) noexcept;

/// Applies `changes` to `doc` (valid UTF-8) and returns the new document. Errors:
/// `invalid_argument` when `changes.length` differs from `utf16_length(doc)` (details
/// `expected_length`, `document_length`) or when a section boundary falls inside a
/// surrogate pair (details `position`, in UTF-16 units).
[[nodiscard]] result<std::string> apply_change_set(std::string_view doc, const change_set& changes);

/// The change set replacing all of `old_doc` by `new_doc`, in the JSON form CodeMirror
/// writes: `[[utf16_length(old_doc), line0, line1, …]]` (`new_doc` split on "\n"), or
/// `[[utf16_length(old_doc)]]` when `new_doc` is empty.
[[nodiscard]] nlohmann::json replace_all_change(std::string_view old_doc, std::string_view new_doc);

/// A rough size of a change set's JSON in bytes (string bytes plus 8 per item), used to
/// bound how much history a cell keeps. Looks two levels deep at most; never throws.
[[nodiscard]] std::size_t change_set_bytes(const nlohmann::json& json) noexcept;

}  // namespace atrium
