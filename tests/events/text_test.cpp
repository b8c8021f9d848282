// events/text.hpp: UTF-8 validity, character-aware truncation, text kinds, log escaping.
#include <catch2/catch.hpp>

#include "events/text.hpp"
#include "events/validation.hpp"

using namespace atrium;

TEST_CASE("valid_utf8 follows RFC 3629", "[text]") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
  CHECK_FALSE(valid_utf8("\xFF"));
  CHECK_FALSE(valid_utf8("a\xC3"));              // cut sequence
  CHECK_FALSE(valid_utf8("\xC0\xAF"));           // overlong '/'
  CHECK_FALSE(valid_utf8("\xE0\x80\xAF"));       // overlong
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));       // surrogate U+D800
  CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));   // above U+10FFFF
  CHECK(valid_utf8(std::string_view("\0", 1)));  // NUL is valid UTF-8 (kinds refuse it)
}

TEST_CASE("truncate_utf8 never splits a character", "[text]") {
  const std::string s = std::string(63, 'a') + "\xC3\xA9";  // 65 bytes, é at 63-64
  const auto cut = truncate_utf8(s, 64);
  CHECK(cut == std::string(63, 'a'));
  CHECK(valid_utf8(cut));
  CHECK(truncate_utf8("short", 64) == "short");
  const std::string emoji = "\xF0\x9F\x98\x80\xF0\x9F\x98\x80";
  for (std::size_t n = 0; n <= emoji.size(); ++n) CHECK(valid_utf8(truncate_utf8(emoji, n)));
}

TEST_CASE("repair_utf8 replaces ill-formed sequences with U+FFFD", "[text]") {
  CHECK(repair_utf8("ok") == "ok");
  CHECK(repair_utf8("a\xFF"
                    "b") ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(valid_utf8(repair_utf8("\xED\xA0\x80\xC3")));
}

TEST_CASE("check_text refuses control and bidi characters by kind", "[text]") {
  CHECK(check_text("Assay QC", text_kind::label, "name"));
  CHECK(check_text("line 1\nline 2\ttab\r\n", text_kind::multiline, "content"));
  const auto nul = check_text(std::string_view("a\0b", 3), text_kind::multiline, "content");
  REQUIRE_FALSE(nul);
  CHECK(nul.error().code == errc::invalid_argument);
  CHECK(nul.error().details.at("field") == "content");
  CHECK_FALSE(check_text("a\nb", text_kind::label, "name"));
  CHECK_FALSE(check_text("a\x7F", text_kind::label, "name"));
  CHECK_FALSE(check_text("a\xC2\x85", text_kind::label, "name"));                       // C1 NEL
  const auto rlo = check_text("invoice\xE2\x80\xAEgpj.exe", text_kind::label, "name");  // U+202E
  REQUIRE_FALSE(rlo);
  CHECK(rlo.error().message.find("bidirectional") != std::string::npos);
  CHECK(check_text("invoice\xE2\x80\xAEgpj", text_kind::multiline, "content"));  // free text may hold it
  CHECK_FALSE(check_text("\xFF", text_kind::multiline, "content"));
}

TEST_CASE("names refuse NUL, CR/LF and bidi overrides", "[text]") {
  CHECK(validate_name("Plate reader"));
  CHECK_FALSE(validate_name(std::string("a\0b", 3)));
  CHECK_FALSE(validate_name("a\r\nb"));
  CHECK_FALSE(validate_name("a\xE2\x80\xAE"));
  CHECK(validate_description("multi\nline"));
  CHECK_FALSE(validate_description(std::string("a\0", 2)));
}

TEST_CASE("log_escape keeps every field on one line", "[text]") {
  CHECK(log_escape("/v1/projects") == "/v1/projects");
  CHECK(log_escape("/v1/x\nFAKE level=error") == "/v1/x\\nFAKE level=error");
  CHECK(log_escape("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(log_escape("\xFF") == "\\xff");
  CHECK(log_escape("a\xE2\x80\xAE") == "a\\u202e");
  CHECK(log_escape("caf\xC3\xA9") == "caf\xC3\xA9");
  const auto long_one = log_escape(std::string(1000, 'x'), 16);
  CHECK(long_one.size() < 24);
  CHECK(long_one.find('\n') == std::string::npos);
}
