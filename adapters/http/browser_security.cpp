// Browser security: the session cookie, the Origin check, the security headers.
#include "adapters/http/browser_security.hpp"

#include <algorithm>
#include <cctype>

namespace atrium::http_adapter {
namespace {

bool blank(char ch) { return ch == ' ' || ch == '\t'; }

/// RFC 6265 §4.1.1 cookie-octet: visible ASCII except DQUOTE, comma, semicolon and
/// backslash.
bool cookie_octet(unsigned char ch) {
  return ch > 0x20 && ch < 0x7f && ch != '"' && ch != ',' && ch != ';' && ch != '\\';
}

}  // namespace

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

const std::vector<std::pair<std::string, std::string>>& security_headers() {
  static const std::vector<std::pair<std::string, std::string>> headers{
      {"Content-Security-Policy", std::string(k_content_security_policy)},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"X-Frame-Options", "DENY"},
  };
  return headers;
}

void add_security_headers(std::vector<std::pair<std::string, std::string>>& headers) {
  const auto& extra = security_headers();
  headers.insert(headers.end(), extra.begin(), extra.end());
}

result<std::optional<std::string>> cookie_value(std::string_view header, std::string_view name) {
  std::optional<std::string_view> found;
  bool ambiguous = false;
  while (!header.empty()) {
    const auto end = header.find_first_of(";,");
    auto pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim_ows(pair.substr(0, eq)) != name) continue;  // cookie names are case-sensitive
    auto value = trim_ows(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (found && *found != value) ambiguous = true;
    found = value;
  }
  if (ambiguous) {
    return fail(errc::invalid_argument, "the Cookie header holds more than one " + std::string(name) + " cookie",
                {{"header", "Cookie"}});
  }
  if (!found || found->empty() || found->size() > k_max_session_cookie_bytes) return std::optional<std::string>{};
  if (!std::all_of(found->begin(), found->end(),
                   [](char ch) { return cookie_octet(static_cast<unsigned char>(ch)); })) {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>{std::string(*found)};
}

std::string session_cookie(std::string_view token, std::int64_t max_age_seconds, bool secure) {
  std::string out =
      std::string(k_session_cookie) + "=" + std::string(token) +
      "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(std::max<std::int64_t>(0, max_age_seconds));
  if (secure) out += "; Secure";
  return out;
}

std::string cleared_session_cookie(bool secure) {
  std::string out = std::string(k_session_cookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
  if (secure) out += "; Secure";
  return out;
}

result<std::string> normalize_origin(std::string_view origin) {
  std::string o(origin);
  std::transform(o.begin(), o.end(), o.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (!o.empty() && o.back() == '/') o.pop_back();
  std::string_view rest;
  if (o.starts_with("http://")) {
    rest = std::string_view(o).substr(7);
  } else if (o.starts_with("https://")) {
    rest = std::string_view(o).substr(8);
  } else {
    return fail(errc::invalid_argument, "an origin is http:// or https:// followed by HOST[:PORT]");
  }
  if (rest.empty()) return fail(errc::invalid_argument, "the origin's host is missing");
  const bool clean = std::all_of(rest.begin(), rest.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']' || ch == '_';
  });
  if (!clean) {
    return fail(errc::invalid_argument,
                "an origin is scheme://HOST[:PORT] only: no path, query, fragment, user info or blank");
  }
  return o;
}

bool origin_allowed(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed) {
  if (origin.empty() || origin == "null") return false;
  if (!host.empty()) {
    for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
      if (origin.size() == scheme.size() + host.size() && iequals(origin.substr(0, scheme.size()), scheme) &&
          iequals(origin.substr(scheme.size()), host)) {
        return true;
      }
    }
  }
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) { return iequals(origin, a); });
}

}  // namespace atrium::http_adapter
