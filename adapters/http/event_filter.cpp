// The event feeds' query filters (event_filter.hpp).
#include "adapters/http/event_filter.hpp"

#include <algorithm>

namespace atrium::http_adapter {
namespace {

error bad(const char* parameter, std::string_view value, std::string why) {
  // The value is echoed as sent, cut to the entry limit (a 1 MiB value is not echoed whole).
  const auto shown = value.substr(0, k_max_filter_value_bytes);
  return error{errc::invalid_argument,
               std::string(parameter) + ": " + why,
               {{"parameter", parameter}, {"value", std::string(shown)}}};
}

/// Splits a comma-separated list, checking every entry.
result<std::vector<std::string>> split_list(const char* parameter, const std::string& raw, bool patterns) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = raw.find(',', start);
    const auto entry =
        std::string_view(raw).substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (entry.empty()) return std::unexpected(bad(parameter, raw, "an entry is empty"));
    if (entry.size() > k_max_filter_value_bytes) {
      return std::unexpected(
          bad(parameter, entry, "an entry is over " + std::to_string(k_max_filter_value_bytes) + " bytes"));
    }
    const auto star = entry.find('*');
    if (star != std::string_view::npos && (!patterns || star != entry.size() - 1)) {
      return std::unexpected(bad(parameter, entry,
                                 patterns ? "'*' may only end an entry (a prefix pattern such as job.*)"
                                          : "stream ids are exact: '*' is not allowed"));
    }
    if (out.size() == k_max_filter_values) {
      return std::unexpected(
          bad(parameter, raw.substr(0, 64), "more than " + std::to_string(k_max_filter_values) + " entries"));
    }
    out.emplace_back(entry);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

bool event_filter::matches(const envelope& e) const {
  if (!streams.empty() && std::find(streams.begin(), streams.end(), e.stream) == streams.end()) return false;
  if (types.empty() && type_prefixes.empty()) return true;
  if (std::binary_search(types.begin(), types.end(), e.type)) return true;
  return std::any_of(type_prefixes.begin(), type_prefixes.end(),
                     [&](const std::string& prefix) { return e.type.starts_with(prefix); });
}

result<event_filter> parse_event_filter(const std::map<std::string, std::string>& query) {
  event_filter f;
  if (auto it = query.find("types"); it != query.end()) {
    auto entries = split_list("types", it->second, true);
    if (!entries) return std::unexpected(entries.error());
    for (auto& t : *entries) {
      if (t.ends_with('*')) {
        t.pop_back();
        f.type_prefixes.push_back(std::move(t));
      } else {
        f.types.push_back(std::move(t));
      }
    }
  }
  if (auto it = query.find("streams"); it != query.end()) {
    auto entries = split_list("streams", it->second, false);
    if (!entries) return std::unexpected(entries.error());
    f.streams = std::move(*entries);
  }
  return f;
}

result<sse_event_names> parse_event_names(const std::map<std::string, std::string>& query) {
  auto it = query.find("event_names");
  if (it == query.end() || it->second == "type") return sse_event_names::type;
  if (it->second == "message") return sse_event_names::message;
  return std::unexpected(bad("event_names", it->second, "must be type or message"));
}

}  // namespace atrium::http_adapter
