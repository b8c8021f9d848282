#pragma once
/// The log line formats of atriumd (`--log-format text|json`). Text: the message escaped,
/// so that no byte a client sent (a path, a header, a name in an error message) can
/// start a new log line or hide part of one. Control characters (C0 and DEL) become
/// `\n`, `\r`, `\t` or `\xNN`; everything else, UTF-8 included, is written as is.

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atrium::app {

/// The `%*` flag: the message (`%v`) with control characters escaped.
class escaped_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char hex[] = "0123456789abcdef";
    const std::string_view text(msg.payload.data(), msg.payload.size());
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c >= 0x20 && c != 0x7F) {
        dest.push_back(ch);
        continue;
      }
      const char* esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : nullptr;
      if (esc != nullptr) {
        dest.append(esc, esc + 2);
      } else {
        const char buf[4] = {'\\', 'x', hex[c >> 4], hex[c & 0xF]};
        dest.append(buf, buf + 4);
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<escaped_message_flag>();
  }
};

/// atriumd's log line, `2026-11-21T04:45:59.123456Z info <message>` (UTC, RFC 3339),
/// with the message escaped.
[[nodiscard]] inline std::unique_ptr<spdlog::formatter> escaped_formatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<escaped_message_flag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %*");
  return f;
}

}  // namespace atrium::app

namespace atrium::app {

/// The `key=value` fields of a log line as atriumd's code writes them
/// (`http method=GET path=/v1/projects status=201 request_id=…`): `text` is the words
/// before the first field (`http`), `fields` each key (`[a-z_][a-z0-9_.]*`) with its value
/// as written (escaped by `log_escape`); a word without `=` after a field belongs to that
/// field's value (`error=disk full` → `disk full`).
struct parsed_line {
  std::string text;
  std::vector<std::pair<std::string, std::string>> fields;
};

/// Splits `line` into its text and fields (see `parsed_line`).
[[nodiscard]] inline parsed_line parse_log_line(std::string_view line) {
  parsed_line out;
  auto key_length = [](std::string_view word) -> std::size_t {
    const auto eq = word.find('=');
    if (eq == 0 || eq == std::string_view::npos || eq > 64) return 0;
    if (!(std::islower(static_cast<unsigned char>(word[0])) || word[0] == '_')) return 0;
    for (std::size_t i = 1; i < eq; ++i) {
      const auto ch = static_cast<unsigned char>(word[i]);
      if (!(std::islower(ch) || std::isdigit(ch) || ch == '_' || ch == '.')) return 0;
    }
    return eq;
  };
  std::size_t pos = 0;
  while (pos < line.size()) {
    const auto end = std::min(line.find(' ', pos), line.size());
    const auto word = line.substr(pos, end - pos);
    if (const auto k = key_length(word); k > 0) {
      out.fields.emplace_back(std::string(word.substr(0, k)), std::string(word.substr(k + 1)));
    } else if (!out.fields.empty()) {
      out.fields.back().second.append(" ").append(word);
    } else {
      if (!out.text.empty() || pos > 0) out.text.push_back(' ');
      out.text.append(word);
    }
    pos = end + 1;
  }
  while (!out.text.empty() && out.text.back() == ' ') out.text.pop_back();
  while (!out.text.empty() && out.text.front() == ' ') out.text.erase(0, 1);
  return out;
}

/// `--log-format json`: one JSON object per line,
/// `{"time":"2026-11-21T04:45:59.123Z","level":"info","message":"http","request_id":"…","fields":{"method":"GET",…}}`
/// with `time` in RFC 3339 UTC to the millisecond, `level` spdlog's name (`trace`,
/// `debug`, `info`, `warning`, `error`, `critical`), `message` the text before the
/// line's `key=value` fields (the whole line when it starts with a field), `request_id`
/// when the line is about a request (its `request_id` field), and `fields` the other
/// fields, every value a string. Serialized by nlohmann::json: control characters are
/// escaped and invalid UTF-8 replaced, so no byte from a client can break a line.
class json_log_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    auto parsed = parse_log_line(payload);
    nlohmann::ordered_json line;
    line["time"] = rfc3339_ms(msg.time);
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string_view(level.data(), level.size());
    line["message"] = parsed.text.empty() ? std::string(payload) : parsed.text;
    auto fields = nlohmann::ordered_json::object();
    for (auto& [k, v] : parsed.fields) {
      if (k == "request_id") {
        line["request_id"] = std::move(v);
      } else {
        fields[k] = std::move(v);
      }
    }
    line["fields"] = std::move(fields);
    const auto text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_log_formatter>();
  }

  /// `t` as `2026-11-21T04:45:59.123Z` (UTC, milliseconds).
  static std::string rfc3339_ms(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ms / 1000);
    auto rest = ms % 1000;
    if (rest < 0) {
      rest += 1000;
      --secs;
    }
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(rest));
    return buf;
  }
};

}  // namespace atrium::app
