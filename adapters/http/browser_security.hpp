#pragma once
/// Browser security of the HTTP adapter (issue 17, point 3): the session cookie the web
/// console signs in with, the Origin check that keeps other sites from riding it
/// (cross-site request forgery, cross-site WebSocket hijacking), and the headers every
/// answer carries (Content-Security-Policy and friends). Beast-free, so the fuzz target
/// (tests/fuzz/http_request_fuzz.cpp) and the hostile suite use exactly this code.
///
///   request ─▶ Authorization: Bearer? ──yes──▶ bearer (API clients: no Origin check)
///                 │ no
///                 ├─ ?token= (WebSocket / SSE only) ──▶ token (no Origin check)
///                 └─ Cookie: atrium_session=… ──▶ cookie ─▶ unsafe method, WebSocket or SSE?
///                                                          └─▶ Origin must be this server's
///                                                              or an --allowed-origin, else 403
///
/// The cookie is `HttpOnly` (page script never reads it) and `SameSite=Strict` (the
/// browser sends it on no cross-site request); the Origin check is the second wall, for
/// browsers and cases (same-site sibling hosts, WebSockets) where SameSite does not hold.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "events/error.hpp"

namespace atrium::http_adapter {

/// The name of the session cookie.
inline constexpr std::string_view k_session_cookie = "atrium_session";
/// The longest cookie value taken as a session token, in bytes (tokens are 64 hex
/// characters); a longer one is ignored, as if absent.
inline constexpr std::size_t k_max_session_cookie_bytes = 256;

/// The Content-Security-Policy of every answer: no inline script, no plug-ins, no
/// framing; inline style only (CodeMirror sets style attributes).
inline constexpr std::string_view k_content_security_policy =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'";

/// The security headers every answer of the API and the static files carries, in order:
/// `Content-Security-Policy` (above), `X-Content-Type-Options: nosniff`,
/// `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`.
[[nodiscard]] const std::vector<std::pair<std::string, std::string>>& security_headers();

/// Appends `security_headers()` to `headers`, replacing none (the API sets none of them).
void add_security_headers(std::vector<std::pair<std::string, std::string>>& headers);

/// The value of cookie `name` in a `Cookie` header value (RFC 6265 §4.2.1 and §5.4:
/// `name=value` pairs separated by `;`; a `,` separates too, because repeated Cookie
/// fields arrive joined by ", "). Blanks around names and values are ignored, one pair of
/// double quotes around a value is removed, pairs without `=` and other names are
/// skipped. Returns nullopt when the cookie is absent, empty, longer than
/// `k_max_session_cookie_bytes` or holds a byte outside RFC 6265's cookie-octet;
/// `invalid_argument` when it appears more than once with different values (which one
/// did the user's browser mean? a sibling host may have planted one). Linear in the
/// header's length; never throws.
[[nodiscard]] result<std::optional<std::string>> cookie_value(std::string_view header, std::string_view name);

/// `Set-Cookie` value that stores session `token` for `max_age_seconds`:
/// `atrium_session=<token>; Path=/; HttpOnly; SameSite=Strict; Max-Age=<n>`, plus
/// `; Secure` when `secure`.
[[nodiscard]] std::string session_cookie(std::string_view token, std::int64_t max_age_seconds, bool secure);

/// `Set-Cookie` value that removes the session cookie:
/// `atrium_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` (plus `; Secure`).
[[nodiscard]] std::string cleared_session_cookie(bool secure);

/// An `--allowed-origin` value in the form the check compares (`scheme://host[:port]`,
/// lowercase, without a trailing `/`), or why it is not an origin: the scheme must be
/// http or https, the host non-empty, and no path, query, fragment, user info or blank
/// may follow (RFC 6454 §6.1 serialization).
[[nodiscard]] result<std::string> normalize_origin(std::string_view origin);

/// Whether a request's `Origin` value is this server's own (`http://` or `https://`
/// followed by the request's `Host` value, compared case-insensitively; atriumd speaks
/// HTTP, a TLS proxy in front of it makes the browser's origin https) or equals one of
/// `allowed` (already normalized with `normalize_origin`). An empty origin, `null` and
/// anything else are foreign.
[[nodiscard]] bool origin_allowed(std::string_view origin, std::string_view host,
                                  const std::vector<std::string>& allowed);

/// `s` without the optional whitespace (RFC 9110 §5.6.3 OWS: spaces and tabs) at its ends.
[[nodiscard]] std::string_view trim_ows(std::string_view s) noexcept;

/// Whether `a` and `b` are equal ignoring ASCII case (header names, tokens, origins).
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace atrium::http_adapter
