#pragma once
/// The log line format of atriumd, with the message escaped,
/// so that no byte a client sent (a path, a header, a name in an error message) can
/// start a new log line or hide part of one. Control characters (C0 and DEL) become
/// `\n`, `\r`, `\t` or `\xNN`; everything else, UTF-8 included, is written as is.

#include <spdlog/pattern_formatter.h>

#include <memory>
#include <string_view>

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
