/// CodeMirror change sets on UTF-8 documents (events/project/change_set.hpp): parsing
/// `ChangeSet.toJSON()` arrays, applying them with UTF-16 positions, and the change set
/// of a whole-document replacement. The expected values are what @codemirror/state
/// 6.x computes for the same JSON on the same document (tests/ws/collab.test.mjs checks
/// the two agree on random edits against the real server).

#include <string>

#include <catch2/catch.hpp>

#include "events/project/change_set.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;

/// Parses and applies `changes` to `doc`; requires both to succeed.
std::string applied(const std::string& doc, const json& changes) {
  auto cs = parse_change_set(changes);
  INFO(changes.dump() << ": " << (cs ? std::string("ok") : cs.error().message));
  REQUIRE(cs.has_value());
  auto out = apply_change_set(doc, *cs);
  INFO((out ? std::string("ok") : out.error().message));
  REQUIRE(out.has_value());
  return *out;
}

/// The error of parsing-then-applying `changes` to `doc`; requires one.
error refused(const std::string& doc, const json& changes) {
  auto cs = parse_change_set(changes);
  if (!cs) return cs.error();
  auto out = apply_change_set(doc, *cs);
  REQUIRE_FALSE(out.has_value());
  return out.error();
}

}  // namespace

TEST_CASE("change sets: UTF-16 length of UTF-8 text", "[change_set]") {
  CHECK(utf16_length("") == 0);
  CHECK(utf16_length("abc") == 3);
  CHECK(utf16_length("Größe") == 5);        // 2-byte sequences count 1
  CHECK(utf16_length("日本語") == 3);       // 3-byte sequences count 1
  CHECK(utf16_length("a😀b") == 4);          // a 4-byte sequence is a surrogate pair
  CHECK(utf16_length("👩‍💻") == 5);  // woman, ZWJ, laptop: 2 + 1 + 2
  CHECK(utf16_length("x\ny\r\n") == 5);     // line breaks are units like any other
}

TEST_CASE("change sets: ASCII keeps, inserts, deletes and replacements", "[change_set]") {
  CHECK(applied("hello world", json::parse(R"([5, [0, ","], 6])")) == "hello, world");
  CHECK(applied("hello world", json::parse(R"([[5], 6])")) == " world");                // delete
  CHECK(applied("hello world", json::parse(R"([6, [5, "there"]])")) == "hello there");  // replace
  CHECK(applied("hello", json::parse(R"([5])")) == "hello");                            // keep all
  CHECK(applied("", json::parse(R"([[0, "new"]])")) == "new");
  CHECK(applied("abc", json::parse(R"([[3]])")) == "");
  CHECK(applied("", json::parse("[]")) == "");  // the empty change set of an empty document
  // `[n, ""]` inserts an empty line: the same as a deletion (Text.of([""]) is empty).
  CHECK(applied("abc", json::parse(R"([1, [1, ""], 1])")) == "ac");
  // Pure insertions next to each other, as CodeMirror writes them.
  CHECK(applied("ac", json::parse(R"([1, [0, "b"], [0, "B"], 1])")) == "abBc");
}

TEST_CASE("change sets: multi-line inserts join their lines with LF", "[change_set]") {
  CHECK(applied("select 1", json::parse(R"([6, [1, "", "  "], 1])")) == "select\n  1");
  CHECK(applied("a", json::parse(R"([1, [0, "", ""]])")) == "a\n");
  CHECK(applied("a\nb", json::parse(R"([1, [1], 1])")) == "ab");  // deleting a line break
  // CR is part of a line (clients use lineSeparator "\n"), counted as one unit.
  CHECK(applied("a\r\nb", json::parse(R"([2, [1, "", "x"], 1])")) == "a\r\nxb");
}

TEST_CASE("change sets: positions count UTF-16 units in non-ASCII text", "[change_set]") {
  // "Größe" is 5 units: insert after "Grö" (3 units, 4 bytes).
  CHECK(applied("Größe", json::parse(R"([3, [0, "-"], 2])")) == "Grö-ße");
  CHECK(applied("日本語", json::parse(R"([1, [1, "本本"], 1])")) == "日本本語");
  CHECK(applied("ça va", json::parse(R"([[1, "Ç"], 4])")) == "Ça va");
}

TEST_CASE("change sets: emoji are surrogate pairs of two units", "[change_set]") {
  // "a😀b": a(1) 😀(2) b(1).
  CHECK(applied("a😀b", json::parse(R"([3, [0, "!"], 1])")) == "a😀!b");
  CHECK(applied("a😀b", json::parse(R"([1, [2], 1])")) == "ab");
  CHECK(applied("a😀b", json::parse(R"([1, [2, "🎉🎉"], 1])")) == "a🎉🎉b");
  CHECK(applied("😀😀", json::parse(R"([2, [0, "x"], 2])")) == "😀x😀");
  CHECK(applied("", json::parse(R"([[0, "👩‍💻 ok"]])")) == "👩‍💻 ok");
}

TEST_CASE("change sets: a boundary inside a surrogate pair is refused", "[change_set]") {
  const auto keep = refused("a😀b", json::parse(R"([2, [0, "x"], 2])"));
  CHECK(keep.code == errc::invalid_argument);
  CHECK(keep.message.find("surrogate") != std::string::npos);
  CHECK(keep.details.at("position") == 2);
  CHECK(refused("a😀b", json::parse(R"([1, [1], 2])")).code == errc::invalid_argument);  // deletes half
  CHECK(refused("😀", json::parse(R"([[1, "x"], 1])")).code == errc::invalid_argument);  // replaces half
  CHECK(refused("😀", json::parse(R"([1, 1])")).code == errc::invalid_argument);         // keep splits it
}

TEST_CASE("change sets: a length that is not the document's is refused", "[change_set]") {
  const auto shorter = refused("hello", json::parse("[4]"));
  CHECK(shorter.code == errc::invalid_argument);
  CHECK(shorter.details.at("expected_length") == 4);
  CHECK(shorter.details.at("document_length") == 5);
  CHECK(refused("hello", json::parse("[6]")).code == errc::invalid_argument);
  CHECK(refused("a😀b", json::parse("[3]")).code == errc::invalid_argument);  // counted in bytes/code points, not units
  CHECK(refused("a😀b", json::parse("[6]")).code == errc::invalid_argument);
  CHECK(refused("", json::parse("[1]")).code == errc::invalid_argument);
  CHECK(refused("x", json::parse("[]")).code == errc::invalid_argument);
}

TEST_CASE("change sets: malformed JSON shapes are refused", "[change_set]") {
  for (const auto* text : {R"({"a":1})",
                           R"("x")",
                           "5",
                           "null",
                           R"([-1])",
                           R"([1.5])",
                           R"([[]])",
                           R"([["a"]])",
                           R"([[1, 2]])",
                           R"([[1, "a", null]])",
                           R"([true])",
                           R"([{"len":1}])",
                           R"([[-3, "x"]])",
                           R"([9007199254740992])",
                           R"([[9007199254740992, "x"]])",
                           R"([9007199254740991, 9007199254740991])",
                           R"([18446744073709551615])",
                           R"([[0, "a\nb"]])",
                           R"([[0, "bell\u0007"]])",
                           R"([[0, "nul\u0000"]])",
                           R"([1e3])"}) {
    INFO(text);
    const auto cs = parse_change_set(json::parse(text));
    REQUIRE_FALSE(cs.has_value());
    CHECK(cs.error().code == errc::invalid_argument);
  }
  // Deep nesting inside a section is a wrong type, found without recursing.
  json deep = json::array({0});
  for (int i = 0; i < 100; ++i) deep = json::array({std::move(deep)});
  CHECK_FALSE(parse_change_set(deep).has_value());
}

TEST_CASE("change sets: lengths up to 2^53-1 parse, and then do not fit the document", "[change_set]") {
  const auto cs = parse_change_set(json::parse("[9007199254740991]"));
  REQUIRE(cs.has_value());
  CHECK(cs->length == k_max_change_length);
  CHECK_FALSE(apply_change_set("abc", *cs).has_value());
}

TEST_CASE("change sets: updates compose in order", "[change_set]") {
  // Two updates based one on the other, as a client sends them: the second's
  // positions are in the document the first produced.
  std::string doc = "select 1";
  doc = applied(doc, json::parse(R"([7, [1, "42"]])"));                // "select 42"
  doc = applied(doc, json::parse(R"([[0, "-- ünïcode 😀", ""], 9])"));  // prefix a comment line
  CHECK(doc == "-- ünïcode 😀\nselect 42");
  doc = applied(doc, json::parse(R"([11, [2], 10])"));  // delete the emoji (units 11-12)
  CHECK(doc == "-- ünïcode \nselect 42");
  // The same two changes in the other order do not fit: the first's length is stale.
  CHECK(refused("select 1", json::parse(R"([[0, "-- ünïcode 😀", ""], 9])")).code == errc::invalid_argument);
}

TEST_CASE("change sets: a whole-document replacement, as CodeMirror writes it", "[change_set]") {
  CHECK(replace_all_change("old 😀", "new\ntext") == json::parse(R"([[6, "new", "text"]])"));
  CHECK(replace_all_change("", "x") == json::parse(R"([[0, "x"]])"));
  CHECK(replace_all_change("abc", "") == json::parse(R"([[3]])"));
  CHECK(replace_all_change("a", "x\n") == json::parse(R"([[1, "x", ""]])"));
  CHECK(applied("old 😀", replace_all_change("old 😀", "new\ntext")) == "new\ntext");
  CHECK(applied("abc", replace_all_change("abc", "")) == "");
}

TEST_CASE("change sets: 100,000 tiny sections apply in one pass", "[change_set]") {
  std::string doc(100000, 'a');
  json changes = json::array();
  for (int i = 0; i < 100000; ++i) changes.push_back(i % 2 == 0 ? json(1) : json::array({1, "b"}));
  const auto out = applied(doc, changes);
  CHECK(out.size() == 100000);
  CHECK(out.substr(0, 4) == "abab");
  CHECK(change_set_bytes(changes) > 100000);
}
