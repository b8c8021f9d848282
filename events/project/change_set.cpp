#include "events/project/change_set.hpp"

#include "events/text.hpp"

namespace atrium {
namespace {

/// A section length: a JSON integer in [0, k_max_change_length] (parsed non-negative
/// numbers are unsigned; JSON built in code may hold them signed).
bool valid_length(const nlohmann::json& j) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>() <= k_max_change_length;
  if (!j.is_number_integer()) return false;
  const auto v = j.get<std::int64_t>();
  return v >= 0 && static_cast<std::uint64_t>(v) <= k_max_change_length;
}

std::unexpected<error> bad_item(std::size_t index, const std::string& what) {
  return fail(errc::invalid_argument, "change set item " + std::to_string(index) + ": " + what, {{"item", index}});
}

/// Bytes of the UTF-8 sequence led by `lead` (valid input assumed; a stray continuation
/// byte counts 1 so that the walk always advances).
std::size_t sequence_bytes(unsigned char lead) noexcept {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

}  // namespace

std::uint64_t utf16_length(std::string_view utf8) noexcept {
  std::uint64_t n = 0;
  for (const char ch : utf8) {
    const auto b = static_cast<unsigned char>(ch);
    if ((b & 0xC0) != 0x80) ++n;  // one unit per code point …
    if (b >= 0xF0) ++n;           // … and a second for those above U+FFFF
  }
  return n;
}

result<change_set> parse_change_set(const nlohmann::json& json) {
  if (!json.is_array()) return fail(errc::invalid_argument, "a change set must be a JSON array");
  change_set out;
  out.sections.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto& item = json[i];
    change_section s;
    if (item.is_number()) {
      if (!valid_length(item)) return bad_item(i, "a length must be an integer from 0 to 2^53-1");
      s.length = item.get<std::uint64_t>();
    } else if (item.is_array()) {
      if (item.empty() || !valid_length(item[0])) {
        return bad_item(i, "a replacement must start with a length, an integer from 0 to 2^53-1");
      }
      s.length = item[0].get<std::uint64_t>();
      s.replaces = true;
      for (std::size_t k = 1; k < item.size(); ++k) {
        const auto& line = item[k];
        if (!line.is_string()) return bad_item(i, "inserted lines must be strings");
        const auto& text = line.get_ref<const std::string&>();
        if (text.find('\n') != std::string::npos) return bad_item(i, "an inserted line must not contain \"\\n\"");
        if (auto ok = check_text(text, text_kind::multiline, "inserted text"); !ok) {
          return bad_item(i, ok.error().message);
        }
        if (k > 1) s.inserted += '\n';
        s.inserted += text;
      }
    } else {
      return bad_item(i, "must be a length or an array [length, line…]");
    }
    if (s.length > k_max_change_length - out.length) {
      return fail(errc::invalid_argument, "the change set's lengths add up to more than 2^53-1", {{"item", i}});
    }
    out.length += s.length;
    // new_length is bounded by the input (lengths) plus the inserted bytes, so it cannot overflow.
    out.new_length += s.replaces ? utf16_length(s.inserted) : s.length;
    out.sections.push_back(std::move(s));
  }
  return out;
}

result<std::string> apply_change_set(std::string_view doc, const change_set& changes) {
  const auto doc_length = utf16_length(doc);
  if (changes.length != doc_length) {
    return fail(errc::invalid_argument,
                "the change set is for a document of " + std::to_string(changes.length) +
                    " UTF-16 code units; the cell has " + std::to_string(doc_length),
                {{"expected_length", changes.length}, {"document_length", doc_length}});
  }
  std::string out;
  out.reserve(doc.size());
  std::size_t at = 0;       // byte offset in doc
  std::uint64_t units = 0;  // UTF-16 offset in doc
  for (const auto& s : changes.sections) {
    const auto start = at;
    for (std::uint64_t left = s.length; left > 0;) {
      // The lengths add up to doc_length, so the walk never runs past the end.
      const auto bytes = sequence_bytes(static_cast<unsigned char>(doc[at]));
      const std::uint64_t width = bytes == 4 ? 2 : 1;
      if (width > left) {
        return fail(errc::invalid_argument,
                    "the change set cuts a surrogate pair at position " + std::to_string(units + left),
                    {{"position", units + left}});
      }
      left -= width;
      units += width;
      at += bytes;
    }
    if (s.replaces) {
      out += s.inserted;
    } else {
      out.append(doc.substr(start, at - start));
    }
  }
  return out;
}

nlohmann::json replace_all_change(std::string_view old_doc, std::string_view new_doc) {
  auto section = nlohmann::json::array({utf16_length(old_doc)});
  if (!new_doc.empty()) {
    for (std::size_t from = 0;;) {
      const auto nl = new_doc.find('\n', from);
      section.push_back(std::string(new_doc.substr(from, nl == std::string_view::npos ? nl : nl - from)));
      if (nl == std::string_view::npos) break;
      from = nl + 1;
    }
  }
  return nlohmann::json::array({std::move(section)});
}

std::size_t change_set_bytes(const nlohmann::json& json) noexcept {
  // Two levels at most (sections, then a replacement's lines): never recurses on input.
  std::size_t n = 8;
  if (!json.is_array()) return n;
  for (const auto& item : json) {
    n += 8;
    if (!item.is_array()) continue;
    for (const auto& line : item) n += line.is_string() ? line.get_ref<const std::string&>().size() + 3 : 8;
  }
  return n;
}

}  // namespace atrium
