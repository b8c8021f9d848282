#pragma once
/// The event feeds' query filters (docs/realtime.md "Filters"): `?types=` and `?streams=`
/// on `GET /v1/events`, `GET /v1/events/stream` and the project feeds
/// (`GET /v1/projects/{id}/events[/stream]`), and `?event_names=` of the SSE feeds.
/// Pure parsing and matching: no Beast, no store.

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "events/envelope.hpp"
#include "events/error.hpp"

namespace atrium::http_adapter {

inline constexpr std::size_t k_max_filter_values = 64;        // entries of one `types` or `streams` list
inline constexpr std::size_t k_max_filter_value_bytes = 256;  // bytes of one entry
/// Events one page of a filtered read examines at most (the page then ends with `next`
/// at the last position examined, matches or not, so that paging always advances).
inline constexpr std::size_t k_max_scan_per_page = 10000;

/// What a feed keeps: an event passes when its type matches one of `types` (exact) or
/// `type_prefixes` (from `job.*`: `job.`), when either list is non-empty, and its stream
/// is one of `streams`, when that is non-empty. An empty filter keeps everything.
struct event_filter {
  std::vector<std::string> types;          ///< exact event types
  std::vector<std::string> type_prefixes;  ///< from entries ending in `*`, without it (`*` alone: "")
  std::vector<std::string> streams;        ///< exact stream ids

  /// True when nothing is filtered.
  [[nodiscard]] bool empty() const { return types.empty() && type_prefixes.empty() && streams.empty(); }
  /// Whether `e` passes.
  [[nodiscard]] bool matches(const envelope& e) const;
};

/// Parses `?types=` and `?streams=` of `query` (percent-decoded values; absent: no
/// filter). Each is a comma-separated list. Errors (`invalid_argument`, details
/// `parameter` and `value`, the offending entry): an empty entry (`a,,b`, a trailing
/// comma, an empty value), a `*` anywhere but at the end of a `types` entry or anywhere
/// in a `streams` entry, more than `k_max_filter_values` entries, an entry over
/// `k_max_filter_value_bytes` bytes.
[[nodiscard]] result<event_filter> parse_event_filter(const std::map<std::string, std::string>& query);

/// How an SSE feed names its events (`?event_names=`).
enum class sse_event_names {
  type,     ///< `event: <type>` (the default): listen with `addEventListener(type, …)`
  message,  ///< no `event:` line: every event is a `message` (`EventSource.onmessage`)
};

/// Parses `?event_names=` of `query`: absent or `type` → `type`, `message` → `message`.
/// Errors: `invalid_argument` (details `parameter`, `value`) for anything else.
[[nodiscard]] result<sse_event_names> parse_event_names(const std::map<std::string, std::string>& query);

}  // namespace atrium::http_adapter
