#include "adapters/connectors/sql_split.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace atrium::connectors_adapter {
namespace {

bool word_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Leading keywords of statements that never return rows (unless RETURNING appears).
bool returns_no_rows(std::string_view first) {
  static constexpr std::array<std::string_view, 45> words{
      "attach",   "detach",    "replace",  "abort",    "alter",      "analyze",  "begin",    "checkpoint", "close",
      "cluster",  "comment",   "commit",   "create",   "deallocate", "declare",  "delete",   "discard",    "do",
      "drop",     "end",       "grant",    "import",   "insert",     "listen",   "load",     "lock",       "merge",
      "move",     "notify",    "prepare",  "reassign", "refresh",    "reindex",  "release",  "reset",      "revoke",
      "rollback", "savepoint", "security", "set",      "start",      "truncate", "unlisten", "update",     "vacuum"};
  const auto w = lowercase(first);
  return std::find(words.begin(), words.end(), w) != words.end();
}

/// The end of a dollar-quote opening tag at `i` (`$tag$`, `$$`), or npos.
std::size_t dollar_tag_end(std::string_view sql, std::size_t i) {
  std::size_t j = i + 1;
  if (j < sql.size() && word_start(sql[j])) {
    while (j < sql.size() && word_char(sql[j]) && sql[j] != '$') ++j;
  }
  return j < sql.size() && sql[j] == '$' ? j + 1 : std::string_view::npos;
}

/// Scans the statement text from `i` past one quoted or commented span (or one char).
std::size_t skip_span(std::string_view sql, std::size_t i) {
  const char c = sql[i];
  const auto n = sql.size();
  if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
    const auto nl = sql.find('\n', i);
    return nl == std::string_view::npos ? n : nl + 1;
  }
  if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
    int depth = 0;
    while (i < n) {
      if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
        ++depth;
        i += 2;
      } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
        i += 2;
        if (--depth == 0) return i;
      } else {
        ++i;
      }
    }
    return n;
  }
  if (c == '\'' || c == '"') {
    const bool escapes =
        c == '\'' && i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E') && (i < 2 || !word_char(sql[i - 2]));
    for (++i; i < n; ++i) {
      if (escapes && sql[i] == '\\') {
        ++i;
      } else if (sql[i] == c) {
        if (i + 1 < n && sql[i + 1] == c) {
          ++i;
        } else {
          return i + 1;
        }
      }
    }
    return n;
  }
  if (c == '$' && (i == 0 || !word_char(sql[i - 1]))) {
    if (const auto tag_end = dollar_tag_end(sql, i); tag_end != std::string_view::npos) {
      const auto tag = sql.substr(i, tag_end - i);
      const auto close = sql.find(tag, tag_end);
      return close == std::string_view::npos ? n : close + tag.size();
    }
  }
  return i + 1;
}

}  // namespace

std::vector<sql_statement> split_sql(std::string_view sql) {
  std::vector<sql_statement> out;
  std::size_t start = 0, i = 0;
  int depth = 0;
  std::string_view first;
  bool returning = false;
  auto finish = [&](std::size_t end) {
    if (!first.empty()) {
      out.push_back({sql.substr(start, end - start), returning || !returns_no_rows(first)});
    }
    first = {};
    returning = false;
  };
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == ';' && depth == 0) {
      finish(i);
      start = ++i;
      continue;
    }
    if (c == '(') ++depth;
    if (c == ')' && depth > 0) --depth;
    if (word_start(c) && (i == 0 || !word_char(sql[i - 1]))) {
      std::size_t j = i;
      while (j < sql.size() && word_char(sql[j])) ++j;
      const auto word = sql.substr(i, j - i);
      // `E'…'`: the quote right after the E is a string with escapes (skip_span sees it).
      if (first.empty()) first = word;
      if (word.size() == 9 && lowercase(word) == "returning") returning = true;
      i = j;
      continue;
    }
    i = skip_span(sql, i);
  }
  finish(sql.size());
  return out;
}

}  // namespace atrium::connectors_adapter
