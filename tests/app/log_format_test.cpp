/// atriumd's log formats (app/log_format.hpp): `--log-format json` writes one JSON object
/// per line with time, level, message, request_id and fields, whatever bytes the message
/// holds.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "app/log_format.hpp"

namespace {

/// `text` at `level` as the formatter writes it.
std::string line_of(spdlog::formatter& f, std::string_view text,
                    spdlog::level::level_enum level = spdlog::level::info) {
  spdlog::details::log_msg msg(spdlog::source_loc{}, "atriumd", level, text);
  msg.time =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1795236359123));  // 2026-11-21T04:45:59.123Z
  spdlog::memory_buf_t out;
  f.format(msg, out);
  return std::string(out.data(), out.size());
}

}  // namespace

TEST_CASE("log format: a line's text and key=value fields", "[app][logs]") {
  const auto p = atrium::app::parse_log_line("http method=GET path=/v1/x status=200 request_id=abc");
  CHECK(p.text == "http");
  REQUIRE(p.fields.size() == 4);
  CHECK(p.fields[0] == std::pair<std::string, std::string>{"method", "GET"});
  CHECK(p.fields[3] == std::pair<std::string, std::string>{"request_id", "abc"});
  // A value runs on to the next field.
  const auto q = atrium::app::parse_log_line("cannot open store: disk full error=no space left key=v");
  CHECK(q.text == "cannot open store: disk full");
  REQUIRE(q.fields.size() == 2);
  CHECK(q.fields[0].second == "no space left");
  CHECK(atrium::app::parse_log_line("stopped").fields.empty());
  CHECK(atrium::app::parse_log_line("a =b C=d").fields.empty());  // not keys
}

TEST_CASE("log format: json lines parse and carry time, level, message, request_id and fields", "[app][logs]") {
  atrium::app::json_log_formatter f;
  const auto text = line_of(f, "http method=POST path=/v1/projects status=201 request_id=r-1 user=admin");
  REQUIRE(text.back() == '\n');
  CHECK(text.find('\n') == text.size() - 1);
  const auto j = nlohmann::json::parse(text);
  CHECK(j.at("time") == "2026-11-21T04:45:59.123Z");
  CHECK(j.at("level") == "info");
  CHECK(j.at("message") == "http");
  CHECK(j.at("request_id") == "r-1");
  CHECK(j.at("fields") ==
        nlohmann::json{{"method", "POST"}, {"path", "/v1/projects"}, {"status", "201"}, {"user", "admin"}});

  const auto warn = nlohmann::json::parse(line_of(f, "no fields here", spdlog::level::warn));
  CHECK(warn.at("level") == "warning");
  CHECK(warn.at("message") == "no fields here");
  CHECK(warn.at("fields").empty());
  CHECK_FALSE(warn.contains("request_id"));

  // Control characters, quotes and invalid UTF-8 from a client stay inside one line.
  const std::string hostile = std::string("bad path=/\n\r\"\\\x01\xff end request_id=x\ny");
  const auto h = line_of(f, hostile, spdlog::level::err);
  CHECK(h.find('\n') == h.size() - 1);
  const auto hj = nlohmann::json::parse(h);
  CHECK(hj.at("level") == "error");
  CHECK(hj.at("request_id") == "x\ny");
}
