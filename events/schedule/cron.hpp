#pragma once
/// The cron engine of schedules: parses a cron expression and computes its next fire
/// instants in a time zone. Pure code (standard C++ only); time zones come through the
/// domain's own `zone_rules` interface (events/schedule/zone.hpp).
///
/// Syntax (Vixie cron's crontab(5), the standard 5 fields):
///
///   ┌ minute 0-59   ┌ hour 0-23   ┌ day of month 1-31   ┌ month 1-12 or JAN-DEC
///   │               │             │                     │   ┌ day of week 0-7 or SUN-SAT (0 and 7 are Sunday)
///   *               *             *                     *   *
///
/// Each field is a comma list of items: `*`, `N`, `A-B`, `*/S`, `A-B/S` (names of months
/// and days are case-insensitive and may be range ends, e.g. `MON-FRI`). Macros:
/// `@hourly` (`0 * * * *`), `@daily` and `@midnight` (`0 0 * * *`), `@weekly`
/// (`0 0 * * 0`), `@monthly` (`0 0 1 * *`), `@yearly` and `@annually` (`0 0 1 1 *`), and
/// `@every <duration>` with a duration of one or more `<n>h`, `<n>m`, `<n>s` parts (e.g.
/// `30s`, `1h30m`), at least 1 s and at most 366 days.
///
/// Day rule (Vixie cron, entry.c/cron.c `DOM_STAR`/`DOW_STAR`): when both day of month and
/// day of week are restricted (neither field starts with `*`), a day matches if EITHER
/// matches; otherwise both must match.
///
/// Daylight saving time, as Vixie cron 4.1 / cronie's cron.c handle a clock change
/// (its "case 3: DST forward" and "case 4: DST backward"): a schedule is *wildcard* when
/// its minute or hour field starts with `*` (`MIN_STAR`/`HR_STAR`; `@hourly` is one),
/// otherwise *fixed-time*.
///  - A local time inside a gap (skipped by clocks jumping forward): a fixed-time
///    schedule fires once at the end of the gap, the first instant of the new offset
///    (e.g. `30 2 * * *` in Europe/Berlin on 2026-03-29 fires at 03:00 CEST = 01:00Z);
///    a wildcard schedule skips it (`0 * * * *` fires at 01:00 CET and 03:00 CEST).
///  - A local time that happens twice (clocks set back): a fixed-time schedule fires at
///    the first occurrence only; a wildcard schedule fires at both (an hourly schedule
///    keeps firing every real hour).
///  - Several local times mapping to one instant (two gap times, or a gap time and the
///    time right after the gap) fire once: an instant fires at most once.
/// Cron fields match whole local minutes; fire instants have zero seconds except at a
/// gap's end, which is wherever the zone's transition is.

#include <bitset>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"
#include "events/schedule/zone.hpp"

namespace atrium {

/// A parsed cron expression.
struct cron_spec {
  std::string text;                ///< the expression as given (trimmed)
  std::bitset<60> minutes;         ///< bit m: minute m matches
  std::bitset<24> hours;           ///< bit h: hour h matches
  std::bitset<32> days_of_month;   ///< bit d (1–31): day d matches
  std::bitset<13> months;          ///< bit m (1–12): month m matches
  std::bitset<7> days_of_week;     ///< bit d (0–6, Sunday 0): weekday d matches
  bool day_of_month_star = false;  ///< the day-of-month field starts with `*`
  bool day_of_week_star = false;   ///< the day-of-week field starts with `*`
  bool wildcard = false;           ///< the minute or hour field starts with `*` (see DST rule above)
  std::chrono::seconds every{0};   ///< `@every`: the interval (> 0); 0 for calendar expressions

  /// True for `@every <duration>`.
  [[nodiscard]] bool is_every() const { return every.count() > 0; }
};

/// Longest accepted expression, in bytes.
inline constexpr std::size_t max_cron_bytes = 200;
/// Most items in one field's comma list.
inline constexpr std::size_t max_cron_list_items = 60;
/// Longest `@every` interval (366 days), in seconds.
inline constexpr std::int64_t max_every_seconds = 366LL * 24 * 3600;

/// Parses a cron expression (syntax above). Errors: `invalid_argument` with a message
/// naming the field and the bad token (e.g. `cron: minute: "61" is out of range 0-59`)
/// and details `{"field":"cron","cron_field":<minute|hour|day_of_month|month|day_of_week|
/// every|expression>,"token":<bad token>}`: empty or longer than 200 bytes, wrong field
/// count, bad number, name or range, step 0, range end before start, more than 60 list
/// items, unknown macro, a bad `@every` duration, or a day of month that no selected
/// month has (`0 0 30 2 *`), which would never fire.
[[nodiscard]] result<cron_spec> parse_cron(std::string_view text);

/// True when the local civil day (year, month, day) matches the spec's month, day of
/// month and day of week fields (with the OR rule above).
[[nodiscard]] bool cron_day_matches(const cron_spec& spec, std::chrono::year_month_day day);

/// The first `n` fire instants strictly after `after`, ascending, with the DST rule
/// above, in time zone `zone`. `@every` ignores the zone: it fires at
/// `anchor + k * every` for k >= 1 (the anchor is the schedule's creation instant), so
/// the first firing is one interval after creation. Returns fewer than `n` instants only
/// when the expression has no match within 40 years after `after` (cannot happen for a
/// spec `parse_cron` accepted, except past year 9999). Assumes no zone sets its clocks
/// back by a day or more (true of every IANA zone since 1900).
[[nodiscard]] std::vector<std::chrono::sys_seconds> next_fire_times(const cron_spec& spec, const zone_rules& zone,
                                                                    std::chrono::sys_seconds after, std::size_t n,
                                                                    std::chrono::sys_seconds anchor = {});

/// The first fire instant strictly after `after` (see `next_fire_times`), or nothing.
[[nodiscard]] std::optional<std::chrono::sys_seconds> next_fire_time(const cron_spec& spec, const zone_rules& zone,
                                                                     std::chrono::sys_seconds after,
                                                                     std::chrono::sys_seconds anchor = {});

/// An instant as RFC 3339 UTC to the second, e.g. `2026-03-29T01:00:00Z`.
[[nodiscard]] std::string format_utc(std::chrono::sys_seconds t);

/// Parses RFC 3339 UTC as `format_utc` writes it, also with a fraction of a second
/// (`2026-11-21T04:45:59.123456Z`, truncated to the second). `invalid_argument` otherwise.
[[nodiscard]] result<std::chrono::sys_seconds> parse_utc(std::string_view text);

}  // namespace atrium
