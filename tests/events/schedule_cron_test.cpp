// The cron engine (events/schedule/cron.hpp) against the system's IANA zones
// (adapters/tz). Expected instants come from tests/events/schedule_cron_cases.py, an
// independent UTC-scanning implementation over Python's zoneinfo, never from this code.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "adapters/tz/iana_zones.hpp"
#include "events/schedule/cron.hpp"

using namespace atrium;

namespace {

struct fire_case {
  const char* cron;
  const char* zone;
  const char* after;
  const char* anchor;  ///< `@every` only, else ""
  std::vector<std::string> expected;
};

const std::vector<fire_case> cases = {
#include "schedule_cron_cases.inc"
};

std::vector<std::string> fire(const std::string& cron, const std::string& zone, const std::string& after, std::size_t n,
                              const std::string& anchor = "") {
  auto spec = parse_cron(cron);
  REQUIRE(spec);
  auto z = make_iana_zone_database()->locate(zone);
  REQUIRE(z);
  const auto a = anchor.empty() ? std::chrono::sys_seconds{} : *parse_utc(anchor);
  std::vector<std::string> out;
  for (auto t : next_fire_times(*spec, **z, *parse_utc(after), n, a)) out.push_back(format_utc(t));
  return out;
}

}  // namespace

TEST_CASE("cron: next fire instants match the independent table (DST, Feb 29, OR rule, steps, names, @every)",
          "[schedule][cron]") {
  REQUIRE(cases.size() >= 40);
  for (const auto& c : cases) {
    INFO(c.cron << " in " << c.zone << " after " << c.after);
    CHECK(fire(c.cron, c.zone, c.after, c.expected.size(), c.anchor) == c.expected);
  }
}

TEST_CASE("cron: a gap fires a fixed-time schedule once at the gap's end, a repeat at its first occurrence",
          "[schedule][cron]") {
  // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z; 02:00, 02:30 and 03:00
  // all land on that one instant, which fires once.
  CHECK(fire("0,30 2,3 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"});
  // New York, 2026-11-01: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST); only the first fires.
  CHECK(fire("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", 1) ==
        std::vector<std::string>{"2026-11-02T06:30:00Z"});
}

TEST_CASE("cron: instants are strictly after `after` and ascending", "[schedule][cron]") {
  CHECK(fire("0 0 * * *", "UTC", "2026-05-05T00:00:00Z", 1) == std::vector<std::string>{"2026-05-06T00:00:00Z"});
  CHECK(fire("0 0 * * *", "UTC", "2026-05-04T23:59:59Z", 1) == std::vector<std::string>{"2026-05-05T00:00:00Z"});
  auto spec = parse_cron("*/7 * * * *");
  REQUIRE(spec);
  auto v = next_fire_times(*spec, *utc_zone(), *parse_utc("2026-01-01T00:00:00Z"), 30);
  REQUIRE(v.size() == 30);
  CHECK(std::is_sorted(v.begin(), v.end()));
  CHECK(next_fire_times(*spec, *utc_zone(), *parse_utc("2026-01-01T00:00:00Z"), 0).empty());
}

TEST_CASE("cron: parse errors name the field and the bad token", "[schedule][cron]") {
  struct bad_case {
    const char* cron;
    const char* cron_field;
    const char* token;
  };
  const std::vector<bad_case> bad = {
      {"", "expression", ""},
      {"   ", "expression", ""},
      {"* * * *", "expression", "* * * *"},
      {"* * * * * *", "expression", "* * * * * *"},
      {"61 * * * *", "minute", "61"},
      {"-1 * * * *", "minute", "-1"},
      {"x * * * *", "minute", "x"},
      {"* 24 * * *", "hour", "24"},
      {"* * 0 * *", "day_of_month", "0"},
      {"* * 32 * *", "day_of_month", "32"},
      {"* * * 13 *", "month", "13"},
      {"* * * foo *", "month", "foo"},
      {"* * * * 8", "day_of_week", "8"},
      {"* * * * MONDAY", "day_of_week", "MONDAY"},
      {"*/0 * * * *", "minute", "*/0"},
      {"*/61 * * * *", "minute", "*/61"},
      {"5/15 * * * *", "minute", "5/15"},
      {"30-10 * * * *", "minute", "30-10"},
      {"1,,2 * * * *", "minute", "1,,2"},
      {"1, * * * *", "minute", "1,"},
      {"* * * jan-feb-mar *", "month", "feb-mar"},
      {"0 0 30 2 *", "day_of_month", "30"},
      {"0 0 31 4,6,9,11 *", "day_of_month", "31"},
      {"@reboot", "expression", "@reboot"},
      {"@daily extra", "expression", "@daily"},
      {"@every", "every", "@every"},
      {"@every 0s", "every", "0s"},
      {"@every 10", "every", "10"},
      {"@every 5d", "every", "5d"},
      {"@every 8784h1s", "every", "8784h1s"},
      {"@every 9000h", "every", "9000h"},
      {"@every 1h 30m", "every", "@every 1h 30m"},
      {"@every 9999999999s", "every", "9999999999s"},
  };
  for (const auto& b : bad) {
    INFO(b.cron);
    auto r = parse_cron(b.cron);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(r.error().details.value("field", "") == "cron");
    CHECK(r.error().details.value("cron_field", "") == b.cron_field);
    CHECK(r.error().details.value("token", "") == b.token);
    CHECK(r.error().message.find(b.cron_field) != std::string::npos);
  }
}

TEST_CASE("cron: input is bounded (length, list items, control characters)", "[schedule][cron]") {
  CHECK_FALSE(parse_cron(std::string(201, '*')));
  std::string items;
  for (int i = 0; i < 61; ++i) items += (i ? "," : "") + std::to_string(i % 60);
  CHECK_FALSE(parse_cron(items + " * * * *"));
  CHECK(parse_cron("0,1,2,3,4,5,6,7,8,9 * * * *"));
  CHECK_FALSE(parse_cron("0 0 * * *\n"));
  CHECK_FALSE(parse_cron(std::string("0 0 * * \xc3\xa9")));
}

TEST_CASE("cron: accepted forms", "[schedule][cron]") {
  for (const char* ok :
       {"0 6 * * 1-5", "@hourly", "@DAILY", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@every 30s",
        "@every 1h30m", "@every 1m1s", "@every 1s", "@every 366h", "*/15 0-23/2 1-31/3 JAN-DEC/2 SUN-SAT", "0 0 29 2 *",
        "0 0 31 * *", " \t0 0 * * 7\t ", "0 0 1 1 sun,sat,7"}) {
    INFO(ok);
    auto r = parse_cron(ok);
    CHECK(r);
  }
  auto spec = parse_cron("@every 1h30m");
  REQUIRE(spec);
  CHECK(spec->every == std::chrono::seconds{5400});
  auto star = parse_cron("*/5 3 * * *");
  REQUIRE(star);
  CHECK(star->wildcard);
  CHECK_FALSE(parse_cron("5 3 * * *")->wildcard);
}

TEST_CASE("tz: zones are looked up by IANA name, an unknown or hostile name is invalid_argument", "[schedule][tz]") {
  auto db = make_iana_zone_database();
  for (const char* ok : {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"}) {
    auto z = db->locate(ok);
    REQUIRE(z);
    CHECK((*z)->name() == ok);
  }
  for (const char* bad : {"", "Mars/Olympus", "europe/berlin", "../../etc/passwd", "/etc/localtime", "Europe/Berlin\n",
                          "Europe/../Berlin", "x\xc3\xa9"}) {
    INFO(bad);
    auto z = db->locate(bad);
    REQUIRE_FALSE(z);
    CHECK(z.error().code == errc::invalid_argument);
    CHECK(z.error().details.value("field", "") == "time_zone");
  }
  auto k = db->locate("Asia/Kathmandu");
  REQUIRE(k);
  const auto t = *parse_utc("2026-05-05T00:00:00Z");
  CHECK((*k)->to_local(t).time_since_epoch() - t.time_since_epoch() == std::chrono::minutes{345});
  auto ny = db->locate("America/New_York");
  REQUIRE(ny);
  using std::chrono::local_days;
  const auto gap = (*ny)->resolve(local_days{std::chrono::year{2026} / 3 / 8} + std::chrono::hours{2});
  CHECK(gap.result == local_resolution::kind::nonexistent);
  CHECK(format_utc(gap.first) == "2026-03-08T07:00:00Z");
  const auto twice = (*ny)->resolve(local_days{std::chrono::year{2026} / 11 / 1} + std::chrono::minutes{90});
  CHECK(twice.result == local_resolution::kind::ambiguous);
  CHECK(format_utc(twice.first) == "2026-11-01T05:30:00Z");
  CHECK(format_utc(twice.second) == "2026-11-01T06:30:00Z");
}

TEST_CASE("cron: RFC 3339 UTC round trip", "[schedule][cron]") {
  CHECK(format_utc(*parse_utc("2026-11-21T04:45:59.123456Z")) == "2026-11-21T04:45:59Z");
  for (const char* bad : {"", "2026-11-21", "2026-11-21T04:45:59", "2026-02-30T00:00:00Z", "2026-11-21T24:00:00Z",
                          "2026-11-21T04:45:59.Z", "2026-11-21T04:45:59+01:00", "2026-11-21 04:45:59Z"}) {
    INFO(bad);
    CHECK_FALSE(parse_utc(bad));
  }
}
