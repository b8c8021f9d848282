#include "events/text.hpp"

#include <algorithm>
#include <cstdio>

namespace atrium {
namespace {

/// Decodes one code point at `s[i]` (RFC 3629 §4). Returns its length in bytes and sets
/// `cp`, or returns 0 for an ill-formed sequence (then `bad` is the length of its
/// maximal ill-formed subpart, at least 1).
std::size_t decode(std::string_view s, std::size_t i, char32_t& cp, std::size_t& bad) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto n = s.size() - i;
  const unsigned char c = b(0);
  bad = 1;
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < len; ++k) {
    if (k >= n) return 0;
    const unsigned char t = b(k);
    if (t < (k == 1 ? lo : 0x80) || t > (k == 1 ? hi : 0xBF)) return 0;
    cp = (cp << 6) | (t & 0x3F);
    bad = k + 1;
  }
  return len;
}

bool is_control(char32_t cp) noexcept { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F); }

bool is_bidi_control(char32_t cp) noexcept {
  return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

bool refused(char32_t cp, text_kind kind) noexcept {
  if (kind == text_kind::label) return is_control(cp) || is_bidi_control(cp);
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return cp < 0x20 || cp == 0x7F;
}

}  // namespace

bool valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    std::size_t bad = 0;
    const auto len = decode(s, i, cp, bad);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string repair_utf8(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    std::size_t bad = 0;
    const auto len = decode(s, i, cp, bad);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      i += bad;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string truncate_utf8(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;  // not mid-character
  return std::string(s.substr(0, end));
}

long first_refused(std::string_view s, text_kind kind) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    std::size_t bad = 0;
    const auto len = decode(s, i, cp, bad);
    if (len == 0) return 0xFFFD;
    if (refused(cp, kind)) return static_cast<long>(cp);
    i += len;
  }
  return -1;
}

result<void> check_text(std::string_view s, text_kind kind, std::string_view field) {
  const std::string name(field);
  if (!valid_utf8(s)) return fail(errc::invalid_argument, name + " is not valid UTF-8", {{"field", name}});
  const auto cp = first_refused(s, kind);
  if (cp < 0) return {};
  if (is_bidi_control(static_cast<char32_t>(cp))) {
    return fail(errc::invalid_argument, name + " must not contain bidirectional control characters", {{"field", name}});
  }
  return fail(errc::invalid_argument,
              name + (kind == text_kind::label ? " must not contain control characters"
                                               : " must not contain control characters other than tab, CR and LF"),
              {{"field", name}});
}

std::string log_escape(std::string_view s, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes) + 2);
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    if (out.size() >= max_bytes) {
      out += "\xE2\x80\xA6";  // …
      break;
    }
    char32_t cp = 0;
    std::size_t bad = 0;
    const auto len = decode(s, i, cp, bad);
    if (len == 0) {
      for (std::size_t k = 0; k < bad; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        out += "\\x";
        out += hex[b >> 4];
        out += hex[b & 0xF];
      }
      i += bad;
      continue;
    }
    if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '"') {
      out += "\\\"";
    } else if (is_control(cp) || is_bidi_control(cp) || cp == 0x2028 || cp == 0x2029) {
      // Code points, not bytes, so a C1 or bidi control shows as what it is.
      char buf[12];
      const int n = cp <= 0xFF ? std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp))
                               : std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      out.append(buf, static_cast<std::size_t>(n));
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

}  // namespace atrium
