#pragma once
/// Field checks shared by the deciders (names and descriptions of projects, groups and
/// connections). Lengths are in bytes of UTF-8.

#include <algorithm>
#include <cctype>
#include <string>

#include "events/error.hpp"
#include "events/text.hpp"

namespace atrium {

/// True when `s` is empty or only whitespace.
[[nodiscard]] inline bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

/// A display name: 1–200 bytes of UTF-8, not blank, a single-line label (no control or
/// bidirectional control character: events/text.hpp). `invalid_argument` with
/// `{"field":"name"}`.
[[nodiscard]] inline result<void> validate_name(const std::string& name) {
  if (is_blank(name) || name.size() > 200) {
    return fail(errc::invalid_argument, "name must be 1-200 characters and not blank", {{"field", "name"}});
  }
  return check_text(name, text_kind::label, "name");
}

/// A description: at most 10,000 bytes of UTF-8, free text (tab, CR and LF are the only
/// control characters allowed). `invalid_argument` with `{"field":"description"}`.
[[nodiscard]] inline result<void> validate_description(const std::string& d) {
  if (d.size() > 10000) {
    return fail(errc::invalid_argument, "description must be at most 10000 characters", {{"field", "description"}});
  }
  return check_text(d, text_kind::multiline, "description");
}

}  // namespace atrium
