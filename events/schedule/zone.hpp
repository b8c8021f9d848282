#pragma once
/// Time zones as the schedule domain sees them: an interface the domain owns (standard
/// C++ only), implemented over the IANA time zone database by adapters/tz (Howard
/// Hinnant's date/tz.h over the system's /usr/share/zoneinfo). Tests may implement it
/// with fixed rules.
///
///   UTC instant ──to_local──▶ local civil time (always one answer)
///   local civil time ──resolve──▶ unique instant | gap (nonexistent) | overlap (two instants)

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "events/error.hpp"

namespace atrium {

/// How a local civil time maps to UTC in one zone.
struct local_resolution {
  /// `unique`: one instant; `nonexistent`: the local time falls into a gap (clocks
  /// jumped forward over it); `ambiguous`: it happens twice (clocks were set back).
  enum class kind { unique, nonexistent, ambiguous };
  kind result = kind::unique;
  /// `unique`: the instant. `ambiguous`: the earlier instant (first occurrence).
  /// `nonexistent`: the transition instant that ends the gap, i.e. the first instant of
  /// the new offset.
  std::chrono::sys_seconds first{};
  /// `ambiguous`: the later instant (second occurrence); otherwise equal to `first`.
  std::chrono::sys_seconds second{};
};

/// The rules of one time zone (offsets and their transitions). Implementations are
/// immutable and safe to share between threads.
class zone_rules {
 public:
  virtual ~zone_rules() = default;
  /// The zone's IANA name, e.g. `Europe/Berlin`.
  [[nodiscard]] virtual std::string_view name() const = 0;
  /// The local civil time (wall clock, to the second) at a UTC instant.
  [[nodiscard]] virtual std::chrono::local_seconds to_local(std::chrono::sys_seconds utc) const = 0;
  /// The UTC instant(s) of a local civil time; see `local_resolution`.
  [[nodiscard]] virtual local_resolution resolve(std::chrono::local_seconds local) const = 0;
};

/// Looks zones up by IANA name. Implementations are safe to call from several threads.
class zone_database {
 public:
  virtual ~zone_database() = default;
  /// The rules of the zone named `name` (exact IANA name or link, case-sensitive, e.g.
  /// `America/New_York`, `UTC`). `invalid_argument` with `{"field":"time_zone"}` when the
  /// database has no such zone.
  [[nodiscard]] virtual result<std::shared_ptr<const zone_rules>> locate(std::string_view name) const = 0;
};

/// Fixed UTC (no transitions), for `@every` and for tests; name `UTC`.
[[nodiscard]] std::shared_ptr<const zone_rules> utc_zone();

}  // namespace atrium
