#pragma once
/// The edge of the HTTP and WebSocket adapter: every byte that arrives from the wire is
/// checked here before any handler, actor or store sees it (issue 13, "validate bytes
/// from the wire at the edge"). Beast-free, so fuzz targets and tests use it directly.
///
///   raw request ─▶ Beast parser (sizes, syntax) ─▶ check_request (target, headers)
///                  ─▶ route ─▶ parse_json (depth, NUL) ─▶ handler ─▶ decider (per field)
///
/// What is refused here, with 400 and a message naming the part:
/// * a path segment or query key/value (percent-decoded) that is not UTF-8, holds a
///   control character (C0, DEL, C1) or a bidirectional control, or is too long;
/// * a header value that is not UTF-8 or holds a control character other than tab
///   (RFC 9110 §5.5 forbids CR, LF and NUL; obs-text is refused as well, since header
///   values such as User-Agent end up in events, which are JSON);
/// * JSON nested deeper than `k_max_json_depth` (checked by a linear scan before
///   parsing, so no recursive step ever sees deep input), not UTF-8 (nlohmann refuses),
///   or holding a NUL character (`\u0000`) in any string or key.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/http/http_server.hpp"
#include "events/error.hpp"

namespace atrium::http_adapter {

/// Deepest nesting of arrays and objects a JSON document may have (the outermost
/// value counts 1).
inline constexpr std::size_t k_max_json_depth = 64;
/// Longest percent-decoded path segment, in bytes.
inline constexpr std::size_t k_max_segment_bytes = 1024;
/// Longest percent-decoded query key or value, in bytes.
inline constexpr std::size_t k_max_query_bytes = 4096;
/// Most query parameters in one target.
inline constexpr std::size_t k_max_query_params = 64;
/// Longest header value, in bytes (Beast's parser bounds the whole header block at 64 KiB).
inline constexpr std::size_t k_max_header_bytes = 8192;
/// Most headers in one request (a WebSocket command's `headers` object too).
inline constexpr std::size_t k_max_headers = 100;

/// The deepest nesting of `[`/`{` in `text` outside strings, counted without parsing
/// (a linear scan; escapes inside strings are honoured). Stops counting, and returns
/// `limit + 1`, as soon as the depth exceeds `limit`.
[[nodiscard]] std::size_t json_depth(std::string_view text, std::size_t limit) noexcept;

/// Parses JSON from the wire. Errors (`invalid_argument`, `{"limit": …}` in details
/// where a limit was hit): nesting deeper than `max_depth`, invalid JSON (including
/// invalid UTF-8 in strings and lone surrogate escapes), a NUL character in a string or
/// key. Never throws.
[[nodiscard]] result<nlohmann::json> parse_json(std::string_view text, std::size_t max_depth = k_max_json_depth);

/// A target after percent-decoding: the path segments (an empty trailing segment
/// dropped) and the query parameters (a repeated key keeps its last value).
struct parsed_target {
  std::vector<std::string> path;
  std::vector<std::pair<std::string, std::string>> query;
};

/// Parses an origin-form target (RFC 9112 §3.2.1: `/path?query`) and checks every
/// decoded segment and query key and value (UTF-8, no control or bidirectional control
/// character, lengths above). Errors: `invalid_argument` saying which part is wrong.
[[nodiscard]] result<parsed_target> parse_target(std::string_view target);

/// Checks the request's method (an RFC 9110 token of at most 32 bytes) and its headers:
/// lowercase names that are RFC 9110 tokens of at most 256 bytes, at most
/// `k_max_headers` of them, and values of at most `k_max_header_bytes` that are UTF-8
/// without control characters other than tab. Errors: `invalid_argument` naming the
/// header (`{"header": name}`).
[[nodiscard]] result<void> check_request(const http_request& req);

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (RFC 3339 §5.6, `T`/`Z` in either case) as
/// the same instant in the form every stored event `time` has: UTC with six fraction
/// digits (`2026-11-21T04:45:59.123456Z`), so string order is time order. A finer
/// fraction rounds up to the next microsecond, which keeps `time >= t` and `time < t`
/// exact against microsecond times. A space in place of the offset's sign is read as `+`
/// (an unencoded `+` in a query string arrives as a space). nullopt when malformed, or
/// outside the years 0000-9999 once in UTC.
[[nodiscard]] std::optional<std::string> normalize_rfc3339(std::string_view s);

/// `t` as RFC 3339 in UTC with milliseconds, e.g. `2026-12-05T05:12:09.250Z`.
[[nodiscard]] std::string format_rfc3339(std::chrono::system_clock::time_point t);

}  // namespace atrium::http_adapter
