// Fuzz target: CodeMirror change sets on cells (events/project/change_set.hpp), the
// parser and applier behind `POST /v1/projects/{id}/cells/{cell_id}/changes`.
//
// Input: a document, a NUL byte, then the change set's JSON text. The document is made
// valid UTF-8 first (repair_utf8) and must pass check_text (multiline), as cell content does. JSON nested deeper than
// 64 levels is skipped, as the API's edge refuses it before parsing (adapters/http/wire.hpp).
//
// Properties: parsing and applying never crash or throw; what applies is valid UTF-8 of
// `new_length` UTF-16 units, its replacement change set (`replace_all_change`) parses and
// turns the document into it, and a refusal of a change set whose length fits the
// document names a surrogate pair.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "events/project/change_set.hpp"
#include "events/text.hpp"

namespace {

[[noreturn]] void finding(const char* what, std::string_view in) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input: %.*s\n", what, static_cast<int>(in.size()), in.data());
  std::abort();
}

/// True when `text` opens more than `limit` arrays or objects at once (outside strings).
bool too_deep(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\')
        ++i;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > limit) return true;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto nul = in.find('\0');
  if (nul == std::string_view::npos) return -1;  // not a usable input: keep it out of the corpus
  const auto doc = atrium::repair_utf8(in.substr(0, nul));
  // Cell content never holds control characters other than tab, CR and LF.
  if (!atrium::check_text(doc, atrium::text_kind::multiline, "doc")) return -1;
  const auto text = in.substr(nul + 1);
  if (too_deep(text, 64)) return -1;
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;

  const auto cs = atrium::parse_change_set(json);
  if (!cs) {
    if (cs.error().message.empty()) finding("an error without a message", in);
    return 0;
  }
  (void)atrium::change_set_bytes(json);
  const auto out = atrium::apply_change_set(doc, *cs);
  if (!out) {
    if (cs->length == atrium::utf16_length(doc) && out.error().message.find("surrogate") == std::string::npos) {
      finding("a change set of the document's length refused for another reason than a surrogate pair", in);
    }
    return 0;
  }
  if (!atrium::valid_utf8(*out)) finding("the result is not valid UTF-8", in);
  if (atrium::utf16_length(*out) != cs->new_length) finding("the result's length is not new_length", in);
  const auto back = atrium::parse_change_set(atrium::replace_all_change(doc, *out));
  if (!back) finding("a replacement change set does not parse", in);
  const auto again = atrium::apply_change_set(doc, *back);
  if (!again || *again != *out) finding("the replacement change set does not produce the result", in);
  return 0;
}
