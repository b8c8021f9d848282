// Fuzz target: the cron parser and engine of schedules (events/schedule/cron.hpp).
// Properties: parsing never crashes; an accepted expression parses again from its own
// text to the same fields; a calendar expression yields 3 ascending UTC instants
// strictly after a fixed start, on whole minutes, each matching the minute, hour and day
// fields; `@every` yields anchor + k * interval.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "events/schedule/cron.hpp"

namespace {

[[noreturn]] void finding(const char* what, std::string_view in) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input: %.*s\n", what, static_cast<int>(in.size()), in.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto spec = atrium::parse_cron(in);
  if (!spec) {
    if (spec.error().message.empty()) finding("an error without a message", in);
    return 0;
  }
  const auto again = atrium::parse_cron(spec->text);
  if (!again || again->minutes != spec->minutes || again->hours != spec->hours ||
      again->days_of_month != spec->days_of_month || again->months != spec->months ||
      again->days_of_week != spec->days_of_week || again->every != spec->every || again->wildcard != spec->wildcard) {
    finding("the accepted text does not parse to the same fields", in);
  }
  const sys_seconds start = sys_days{year{2026} / 1 / 1} + hours{7} + seconds{13};
  const auto times = atrium::next_fire_times(*spec, *atrium::utc_zone(), start, 3, start);
  if (times.size() != 3) finding("fewer than 3 fire instants", in);
  auto prev = start;
  for (auto t : times) {
    if (t <= prev) finding("instants not strictly ascending after the start", in);
    prev = t;
    if (spec->is_every()) continue;
    if ((t.time_since_epoch() % minutes{1}).count() != 0) finding("an instant not on a whole minute", in);
    const auto day = floor<days>(t);
    const hh_mm_ss hms{t - day};
    if (!spec->minutes[static_cast<std::size_t>(hms.minutes().count())] ||
        !spec->hours[static_cast<std::size_t>(hms.hours().count())] ||
        !atrium::cron_day_matches(*spec, year_month_day{day})) {
      finding("an instant that does not match the fields", in);
    }
  }
  if (spec->is_every() && times.front() != start + spec->every) finding("@every does not start one interval on", in);
  return 0;
}
