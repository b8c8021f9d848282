#include "adapters/results/result_format.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

namespace atrium::results_adapter {

namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool equals_lower(std::string_view text, std::string_view lower) noexcept {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != lower[i]) return false;
  }
  return true;
}

std::optional<bool> parse_bool(std::string_view text) noexcept {
  static constexpr std::array<std::string_view, 6> yes{"t", "true", "1", "y", "yes", "on"};
  static constexpr std::array<std::string_view, 6> no{"f", "false", "0", "n", "no", "off"};
  for (auto word : yes) {
    if (equals_lower(text, word)) return true;
  }
  for (auto word : no) {
    if (equals_lower(text, word)) return false;
  }
  return std::nullopt;
}

/// The length of the valid UTF-8 sequence at `p` (RFC 3629 §4: no overlongs, no
/// surrogates, nothing above U+10FFFF), or 0 if it is not one.
std::size_t utf8_sequence(const unsigned char* p, std::size_t left) noexcept {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (left < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  }
  return n;
}

}  // namespace

json_kind json_kind_of(std::string_view column_type) noexcept {
  if (column_type == "int" || column_type == "float" || column_type == "numeric") return json_kind::number;
  if (column_type == "bool") return json_kind::boolean;
  return json_kind::string;
}

bool is_json_number(std::string_view text) noexcept {
  std::size_t i = 0, n = text.size();
  if (i < n && text[i] == '-') ++i;
  if (i >= n) return false;
  if (text[i] == '0') {
    ++i;
  } else if (text[i] >= '1' && text[i] <= '9') {
    while (i < n && is_digit(text[i])) ++i;
  } else {
    return false;
  }
  if (i < n && text[i] == '.') {
    ++i;
    if (i >= n || !is_digit(text[i])) return false;
    while (i < n && is_digit(text[i])) ++i;
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (i >= n || !is_digit(text[i])) return false;
    while (i < n && is_digit(text[i])) ++i;
  }
  return i == n;
}

nlohmann::json render_json(json_kind kind, std::string_view text) {
  if (kind == json_kind::number && is_json_number(text)) {
    const char* first = text.data();
    const char* last = first + text.size();
    bool integral = text.find_first_of(".eE") == std::string_view::npos;
    if (integral) {
      std::int64_t i = 0;
      if (auto [p, ec] = std::from_chars(first, last, i); ec == std::errc{} && p == last) return i;
      std::uint64_t u = 0;
      if (auto [p, ec] = std::from_chars(first, last, u); ec == std::errc{} && p == last) return u;
    }
    double d = 0;
    if (auto [p, ec] = std::from_chars(first, last, d); ec == std::errc{} && p == last && std::isfinite(d)) return d;
    // Out of a double's range: keep the exact text rather than inventing infinity.
  }
  if (kind == json_kind::boolean) {
    if (auto b = parse_bool(text)) return *b;
  }
  return valid_utf8(text);
}

std::string valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  // Fast path: most cells are valid; copy them once.
  while (i < n) {
    std::size_t len = utf8_sequence(p + i, n - i);
    if (len == 0) break;
    i += len;
  }
  if (i == n) return std::string(text);
  std::string out(text.substr(0, i));
  while (i < n) {
    std::size_t len = utf8_sequence(p + i, n - i);
    if (len == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

void append_csv_field(std::string& out, std::string_view text) {
  if (text.empty()) {
    out += "\"\"";
    return;
  }
  if (text.find_first_of("\",\r\n") == std::string_view::npos) {
    out.append(text);
    return;
  }
  out += '"';
  std::size_t start = 0;
  for (std::size_t q = text.find('"'); q != std::string_view::npos; q = text.find('"', start)) {
    out.append(text.substr(start, q + 1 - start));
    out += '"';
    start = q + 1;
  }
  out.append(text.substr(start));
  out += '"';
}

}  // namespace atrium::results_adapter
