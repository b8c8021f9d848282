#pragma once
/// HTTP semantics the API applies to every answer and request (RFC 9110, RFC 9111,
/// Fetch's CORS protocol), Beast-free so the hostile suite and the fuzz targets use this
/// very code:
///
///   request ─▶ Content-Type of a body: `application/json` (parameters allowed) or 415
///           ─▶ handler ─▶ http_response
///                          └─▶ `finish_representation`: a 200 to GET/HEAD gets a strong
///                              `ETag` (its own, or one of the body bytes), gzip when
///                              `Accept-Encoding` allows and the body is ≥ 1 KiB (its own
///                              `-gz` tag, `Vary: Accept-Encoding`), 304 when
///                              `If-None-Match` lists the tag or `*`; CORS headers for a
///                              listed `Origin` (`--allowed-origin`).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/http/http_server.hpp"

namespace atrium::http_adapter {

/// Bodies at least this long (bytes) are gzip-encoded when the client accepts gzip.
inline constexpr std::size_t k_min_gzip_response_bytes = 1024;
/// zlib's level for answers compressed per request (its default; the console's files,
/// compressed once at start, use 9).
inline constexpr int k_response_gzip_level = 6;
/// How long a browser may cache a preflight's answer, seconds (`Access-Control-Max-Age`).
inline constexpr int k_cors_max_age_seconds = 600;
/// The request headers a listed origin's page may send (`Access-Control-Allow-Headers`).
inline constexpr std::string_view k_cors_allow_headers =
    "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, Last-Event-ID, X-Request-Id, "
    "X-Requested-With";
/// The response headers its script may read (`Access-Control-Expose-Headers`).
inline constexpr std::string_view k_cors_expose_headers =
    "ETag, Location, X-Atrium-Position, Retry-After, Idempotency-Replayed, X-Request-Id, Content-Disposition";

/// True when a `Content-Type` value is `application/json`, case-insensitively, with or
/// without parameters (`application/json; charset=utf-8`).
[[nodiscard]] bool json_media_type(std::string_view content_type);

/// Why a request's body is refused (the message of a 415 `unsupported_media_type`), or
/// nullopt when it is accepted: a `Content-Type` that is not JSON, or a non-empty body
/// without one. An empty body without `Content-Type` is accepted.
[[nodiscard]] std::optional<std::string> refused_media_type(std::string_view content_type, std::size_t body_bytes);

/// `origin` normalized when it is one of `allowed` (normalized with `normalize_origin`),
/// else nullopt (absent, `null`, malformed or unlisted).
[[nodiscard]] std::optional<std::string> listed_origin(std::string_view origin,
                                                       const std::vector<std::string>& allowed);

/// Adds `token` to the `Vary` header of `headers` (one field, tokens comma separated),
/// unless it is listed already.
void add_vary(std::vector<std::pair<std::string, std::string>>& headers, std::string_view token);

/// The headers of an answer to a CORS preflight from `origin` (a listed one): allowed
/// origin (that origin, never `*`) with credentials, the path's `methods` (`GET, HEAD,
/// OPTIONS`), `k_cors_allow_headers`, `k_cors_max_age_seconds`, `Vary: Origin`.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> preflight_headers(const std::string& origin,
                                                                                 const std::string& methods);

/// What of a request `finish_representation` looks at (copied when the request
/// arrives: the answer may be written after the call is gone).
struct representation_request {
  std::string method;           ///< `GET`, `HEAD`, …
  std::string accept_encoding;  ///< `Accept-Encoding` ("" when absent)
  std::string if_none_match;    ///< `If-None-Match` ("" when absent)
  /// The request's `Origin` normalized, when it is a listed one (`listed_origin`).
  std::optional<std::string> cors_origin;
  bool cors_configured = false;  ///< some origin is listed: answers vary by `Origin`
  bool representation = true;    ///< apply ETag, gzip and 304 (false: static files do their own)
};

/// Finishes `r` for `q` (see the top of this header): ETag, gzip, 304 on a 200 to GET or
/// HEAD whose body is complete (not a stream); CORS headers on every answer to a listed
/// origin. Never throws on its own account; an ETag already set is kept (the entity's
/// version), its gzip variant is `"<version>-gz"`.
void finish_representation(http_response& r, const representation_request& q);

/// Whether an `If-None-Match` value lists `tag` or `*` (weak comparison, RFC 9110
/// §13.1.2). At most `k_max_listed_tags` entries are looked at; more never match.
[[nodiscard]] bool if_none_match_lists(std::string_view header, std::string_view tag);
inline constexpr std::size_t k_max_listed_tags = 64;

/// A strong ETag of `bytes`: `"b<16 hex digits>"` (FNV-1a 64; changes with the bytes).
[[nodiscard]] std::string body_etag(std::string_view bytes);

}  // namespace atrium::http_adapter
