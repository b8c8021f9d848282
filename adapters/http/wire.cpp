#include "adapters/http/wire.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>

#include "events/text.hpp"

namespace atrium::http_adapter {
namespace {

using nlohmann::json;

/// True when a string or key of `j` holds a NUL; recursion is bounded by the depth
/// check that ran before.
bool holds_nul(const json& j) {
  switch (j.type()) {
    case json::value_t::string:
      return j.get_ref<const std::string&>().find('\0') != std::string::npos;
    case json::value_t::array:
      return std::any_of(j.begin(), j.end(), [](const json& v) { return holds_nul(v); });
    case json::value_t::object:
      for (const auto& [k, v] : j.items()) {
        if (k.find('\0') != std::string::npos || holds_nul(v)) return true;
      }
      return false;
    default:
      return false;
  }
}

bool is_tchar(unsigned char c) {
  // RFC 9110 §5.6.2: tchar.
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

result<void> check_part(std::string_view s, std::size_t max, const char* what) {
  if (s.size() > max) {
    return fail(errc::invalid_argument, std::string(what) + " is too long", {{"field", what}, {"limit_bytes", max}});
  }
  return check_text(s, text_kind::label, what);
}

}  // namespace

std::size_t json_depth(std::string_view text, std::size_t limit) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return limit + 1;
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

result<json> parse_json(std::string_view text, std::size_t max_depth) {
  if (json_depth(text, max_depth) > max_depth) {
    return fail(errc::invalid_argument, "JSON is nested too deeply (at most " + std::to_string(max_depth) + " levels)",
                {{"limit", max_depth}});
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(errc::invalid_argument, "not valid JSON (or not valid UTF-8)");
  if (holds_nul(j)) return fail(errc::invalid_argument, "JSON strings must not contain NUL characters");
  return j;
}

result<parsed_target> parse_target(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return fail(errc::invalid_argument, "malformed request target");
  parsed_target out;
  try {
    for (auto seg : url->segments()) {
      std::string s(seg);
      if (auto ok = check_part(s, k_max_segment_bytes, "path segment"); !ok) return std::unexpected(ok.error());
      out.path.push_back(std::move(s));
    }
    while (!out.path.empty() && out.path.back().empty()) out.path.pop_back();  // tolerate a trailing slash
    if (url->params().size() > k_max_query_params) {
      return fail(errc::invalid_argument, "too many query parameters", {{"limit", k_max_query_params}});
    }
    for (auto param : url->params()) {
      std::string key(param.key), value(param.value);
      if (auto ok = check_part(key, k_max_query_bytes, "query parameter name"); !ok) {
        return std::unexpected(ok.error());
      }
      if (auto ok = check_part(value, k_max_query_bytes, "query parameter value"); !ok) {
        auto e = ok.error();
        e.details["parameter"] = repair_utf8(truncate_utf8(key, 64));
        return std::unexpected(std::move(e));
      }
      out.query.emplace_back(std::move(key), std::move(value));
    }
  } catch (const std::exception&) {
    return fail(errc::invalid_argument, "malformed request target");
  }
  return out;
}

result<void> check_request(const http_request& req) {
  if (req.method.empty() || req.method.size() > 32 ||
      !std::all_of(req.method.begin(), req.method.end(), [](unsigned char c) { return is_tchar(c); })) {
    return fail(errc::invalid_argument, "malformed method");
  }
  if (req.headers.size() > k_max_headers) {
    return fail(errc::invalid_argument, "too many headers", {{"limit", k_max_headers}});
  }
  for (const auto& [name, value] : req.headers) {
    if (name.empty() || name.size() > 256 ||
        !std::all_of(name.begin(), name.end(), [](unsigned char c) { return is_tchar(c) && !std::isupper(c); })) {
      return fail(errc::invalid_argument, "malformed header name", {{"header", repair_utf8(truncate_utf8(name, 64))}});
    }
    if (value.size() > k_max_header_bytes) {
      return fail(errc::invalid_argument, "header " + name + " is too long",
                  {{"header", name}, {"limit_bytes", k_max_header_bytes}});
    }
    if (!valid_utf8(value)) {
      return fail(errc::invalid_argument, "header " + name + " is not valid UTF-8", {{"header", name}});
    }
    // Tab is the only control character a field value may hold (RFC 9110 §5.5).
    if (std::any_of(value.begin(), value.end(), [](unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7F; })) {
      return fail(errc::invalid_argument, "header " + name + " must not contain control characters",
                  {{"header", name}});
    }
  }
  return {};
}

std::optional<std::string> normalize_rfc3339(std::string_view s) {
  auto number = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
  const auto hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::int64_t micros = 0;
  bool finer = false;  // nonzero digits beyond the sixth
  if (at < s.size() && s[at] == '.') {
    const auto start = ++at;
    for (; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at) {
      if (at - start < 6) {
        micros = micros * 10 + (s[at] - '0');
      } else if (s[at] != '0') {
        finer = true;
      }
    }
    if (at == start) return std::nullopt;
    for (auto n = at - start; n < 6; ++n) micros *= 10;
  }
  std::int64_t offset = 0;  // seconds east of UTC
  if (at + 1 == s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at + 6 == s.size() && (s[at] == '+' || s[at] == '-' || s[at] == ' ') && s[at + 3] == ':') {
    const auto oh = number(at + 1, 2), om = number(at + 4, 2);
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset = (s[at] == '-' ? -1 : 1) * (*oh * 3600 + *om * 60);
    at += 6;
  } else {
    return std::nullopt;  // RFC 3339 requires an offset
  }
  if (at != s.size()) return std::nullopt;
  using namespace std::chrono;
  const year_month_day date{std::chrono::year{*year}, std::chrono::month{static_cast<unsigned>(*month)},
                            std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;  // 60: a leap second
  const auto seconds_utc =
      sys_days(date).time_since_epoch().count() * 86400LL + *hour * 3600LL + *minute * 60LL + *second - offset;
  const auto total = seconds_utc * 1'000'000 + micros + (finer ? 1 : 0);
  const sys_time<microseconds> instant{microseconds{total}};
  const auto day_start = floor<days>(instant);
  const year_month_day utc{day_start};
  if (static_cast<int>(utc.year()) < 0 || static_cast<int>(utc.year()) > 9999) return std::nullopt;
  const hh_mm_ss<microseconds> clock{instant - day_start};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", static_cast<int>(utc.year()),
                static_cast<unsigned>(utc.month()), static_cast<unsigned>(utc.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<long long>(clock.subseconds().count()));
  return std::string(buf);
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace atrium::http_adapter
