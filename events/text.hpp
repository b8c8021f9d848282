#pragma once
/// Text from the outside world: UTF-8 validity, character-aware truncation, and the
/// characters a field may hold. Used at the HTTP/WebSocket edge (every string from the
/// wire) and by the deciders (names), so that no event ever holds bytes that cannot be
/// encoded as JSON, a control character that forges a log line, or a bidirectional
/// override that disguises a name (the "Trojan Source" class, CVE-2021-42574).
///
/// UTF-8 is checked as RFC 3629 §4 defines it: no overlong forms, no surrogates
/// (U+D800–U+DFFF), nothing above U+10FFFF.

#include <cstddef>
#include <string>
#include <string_view>

#include "events/error.hpp"

namespace atrium {

/// True when `s` is well-formed UTF-8 (RFC 3629).
[[nodiscard]] bool valid_utf8(std::string_view s) noexcept;

/// `s` with every ill-formed sequence replaced by U+FFFD (one per maximal ill-formed
/// subpart, as Unicode §3.9 recommends). Valid input is returned unchanged.
[[nodiscard]] std::string repair_utf8(std::string_view s);

/// The longest prefix of `s` of at most `max_bytes` bytes that does not split a UTF-8
/// sequence. For valid UTF-8 input the result is valid UTF-8.
[[nodiscard]] std::string truncate_utf8(std::string_view s, std::size_t max_bytes);

/// Which characters a text field may hold.
enum class text_kind {
  /// A single-line label (names, identifiers shown to people): no control character at
  /// all (C0, DEL, C1) and no bidirectional formatting character (U+061C, U+200E,
  /// U+200F, U+202A–U+202E, U+2066–U+2069).
  label,
  /// Free text (descriptions, cell content, scripts): tab, LF and CR allowed; no other
  /// C0 control, no DEL, no NUL.
  multiline,
};

/// Checks that `s` is valid UTF-8 holding only what `kind` allows. Errors:
/// `invalid_argument` naming `field` in its details (`{"field": field}`) with a message
/// that says what is wrong ("… is not valid UTF-8", "… must not contain control
/// characters", "… must not contain bidirectional control characters").
[[nodiscard]] result<void> check_text(std::string_view s, text_kind kind, std::string_view field);

/// The first code point of `s` that `kind` refuses, or -1 when there is none; `s` must
/// be valid UTF-8.
[[nodiscard]] long first_refused(std::string_view s, text_kind kind) noexcept;

/// `s` made safe to put in one key=value log field: valid UTF-8, control characters,
/// backslash and double quote written as `\n`, `\t`, `\\`, `\"` or `\xNN`, cut to at
/// most `max_bytes` bytes (followed by `…` when cut). No output ever holds a newline.
[[nodiscard]] std::string log_escape(std::string_view s, std::size_t max_bytes = 512);

}  // namespace atrium
