#include "adapters/http/wire.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>

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

}  // namespace atrium::http_adapter
