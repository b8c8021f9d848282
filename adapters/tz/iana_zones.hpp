#pragma once
/// The IANA time zone database for schedules (events/schedule/zone.hpp), over Howard
/// Hinnant's date/tz.h (Debian libhowardhinnant-date-dev, libdate-tz built with
/// USE_OS_TZDB=1): the zone rules are the compiled TZif files of the system's
/// /usr/share/zoneinfo (package tzdata), read on first use; nothing is downloaded.

#include <memory>

#include "events/schedule/zone.hpp"

namespace atrium {

/// The system's IANA zones. Names are validated first (1-64 bytes of `A-Z a-z 0-9 / _ + -`,
/// no `..` segment), then looked up in the database's zone and link lists; an unknown
/// name is `invalid_argument` (`{"field":"time_zone"}`), and a database that fails to load
/// is `unavailable`. Safe to share between threads.
[[nodiscard]] std::shared_ptr<const zone_database> make_iana_zone_database();

}  // namespace atrium
