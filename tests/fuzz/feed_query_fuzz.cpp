// Fuzz target: the event feeds' query parsers (adapters/http/event_filter.hpp: `?types=`,
// `?streams=`, `?event_names=`) and the password policy (events/user/password_policy.hpp).
// The input's first line is `types`, the second `streams`, the third `event_names`, the
// rest a password (the username being the first line). Properties: nothing throws; an
// accepted filter holds 1-64 distinct non-empty entries of at most 256 bytes per list,
// `*` only as a prefix pattern's end (taken off), none in stream ids; a refusal is
// `invalid_argument` naming its parameter; the policy answers ok or one of its reasons.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "adapters/http/event_filter.hpp"
#include "events/user/password_policy.hpp"

namespace {

[[noreturn]] void finding(const char* what, std::string_view in) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input: %.*s\n", what, static_cast<int>(in.size()), in.data());
  std::abort();
}

std::string_view next_line(std::string_view& rest) {
  const auto nl = rest.find('\n');
  auto line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

void check_list(const std::vector<std::string>& entries, bool stars_allowed, std::string_view in) {
  if (entries.size() > atrium::http_adapter::k_max_filter_values) finding("too many entries accepted", in);
  if (std::set<std::string>(entries.begin(), entries.end()).size() != entries.size()) finding("duplicates kept", in);
  for (const auto& e : entries) {
    if (e.size() > atrium::http_adapter::k_max_filter_value_bytes) finding("an entry over 256 bytes accepted", in);
    if (e.find('*') != std::string::npos) finding(stars_allowed ? "a '*' left in a prefix" : "a '*' in a stream", in);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto rest = in;
  const auto types = next_line(rest);
  const auto streams = next_line(rest);
  const auto names = next_line(rest);
  std::map<std::string, std::string> query;
  if (!types.empty()) query["types"] = std::string(types);
  if (!streams.empty()) query["streams"] = std::string(streams == "-" ? "" : streams);
  if (!names.empty()) query["event_names"] = std::string(names);
  auto f = atrium::http_adapter::parse_event_filter(query);
  if (f) {
    check_list(f->types, true, in);
    check_list(f->type_prefixes, true, in);
    check_list(f->streams, false, in);
    atrium::envelope e;
    e.type = std::string(types.substr(0, 64));
    e.stream = std::string(streams.substr(0, 64));
    (void)f->matches(e);
  } else {
    const auto& d = f.error().details;
    if (f.error().code != atrium::errc::invalid_argument || !d.contains("parameter") || !d.contains("value")) {
      finding("a refusal without parameter and value", in);
    }
  }
  auto n = atrium::http_adapter::parse_event_names(query);
  if (n && !names.empty() && names != "type" && names != "message") finding("an unknown event_names accepted", in);
  auto p = atrium::check_password_policy(rest, types);
  if (!p) {
    static const std::set<std::string> reasons{"too_short", "too_long", "contains_username", "common"};
    if (!reasons.contains(p.error().details.value("reason", ""))) finding("an unknown policy reason", in);
  }
  return 0;
}
