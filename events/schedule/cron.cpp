#include "events/schedule/cron.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <set>

namespace atrium {
namespace {

using namespace std::chrono;

std::unexpected<error> bad(std::string_view cron_field, std::string_view token, const std::string& why) {
  return fail(errc::invalid_argument, "cron: " + std::string(cron_field) + ": \"" + std::string(token) + "\" " + why,
              {{"field", "cron"}, {"cron_field", std::string(cron_field)}, {"token", std::string(token)}});
}

struct field_def {
  std::string_view name;
  int low;
  int high;
  const std::array<std::string_view, 12>* names;  ///< names for low.., or nullptr
  int names_base;                                 ///< the value of names[0]
};

constexpr std::array<std::string_view, 12> month_names{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> day_names{"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const std::array<field_def, 5> field_defs{{{"minute", 0, 59, nullptr, 0},
                                           {"hour", 0, 23, nullptr, 0},
                                           {"day_of_month", 1, 31, nullptr, 0},
                                           {"month", 1, 12, &month_names, 1},
                                           {"day_of_week", 0, 7, &day_names, 0}}};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// One value of a field: a number or (for month and day of week) a 3-letter name.
result<int> parse_value(const field_def& f, std::string_view token, std::string_view item) {
  if (token.empty()) return bad(f.name, item, "has an empty value");
  if (std::isdigit(static_cast<unsigned char>(token[0]))) {
    int v = 0;
    auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc{} || p != token.data() + token.size() || token.size() > 4) {
      return bad(f.name, token, "is not a number");
    }
    if (v < f.low || v > f.high) {
      return bad(f.name, token, "is out of range " + std::to_string(f.low) + "-" + std::to_string(f.high));
    }
    return v;
  }
  if (f.names != nullptr && token.size() == 3) {
    const auto l = lower(token);
    for (std::size_t i = 0; i < f.names->size(); ++i) {
      if ((*f.names)[i] == l) return f.names_base + static_cast<int>(i);
    }
  }
  return bad(f.name, token, f.names ? "is not a number or a name" : "is not a number");
}

/// One comma-list item: `*`, `N`, `A-B`, `*/S`, `A-B/S`; sets its bits in `bits`.
result<void> parse_item(const field_def& f, std::string_view item, std::bitset<64>& bits) {
  std::string_view range = item;
  int step = 1;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    const auto s = item.substr(slash + 1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || s.size() > 4) {
      return bad(f.name, item, "has a bad step");
    }
    if (step < 1 || step > f.high - f.low + 1) {
      return bad(f.name, item, "has a step out of range 1-" + std::to_string(f.high - f.low + 1));
    }
    if (range != "*" && range.find('-') == std::string_view::npos) {
      return bad(f.name, item, "has a step without a range (write A-B/S or */S)");
    }
  }
  int low = f.low;
  int high = f.high;
  if (range != "*") {
    const auto dash = range.find('-');
    auto a = parse_value(f, range.substr(0, dash), item);
    if (!a) return std::unexpected(a.error());
    low = high = *a;
    if (dash != std::string_view::npos) {
      auto b = parse_value(f, range.substr(dash + 1), item);
      if (!b) return std::unexpected(b.error());
      high = *b;
      if (high < low) return bad(f.name, item, "is a range whose end is before its start");
    }
  }
  for (int v = low; v <= high; v += step) bits.set(static_cast<std::size_t>(v));
  return {};
}

/// A whole field (a comma list) into `bits`.
result<void> parse_field(const field_def& f, std::string_view text, std::bitset<64>& bits) {
  std::size_t items = 0;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    const auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (++items > max_cron_list_items) {
      return bad(f.name, text.substr(0, 40), "has more than " + std::to_string(max_cron_list_items) + " list items");
    }
    if (item.empty()) return bad(f.name, text, "has an empty list item");
    if (auto ok = parse_item(f, item, bits); !ok) return ok;
    if (comma == std::string_view::npos) return {};
    start = comma + 1;
  }
}

/// `@every <duration>`: parts `<n>h`, `<n>m`, `<n>s` in any order, summed.
result<seconds> parse_every(std::string_view d) {
  if (d.empty()) return bad("every", d, "needs a duration such as 30s, 5m or 1h30m");
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < d.size()) {
    std::size_t j = i;
    while (j < d.size() && std::isdigit(static_cast<unsigned char>(d[j]))) ++j;
    if (j == i || j == d.size() || j - i > 9) return bad("every", d, "is not a duration such as 30s, 5m or 1h30m");
    std::int64_t n = 0;
    std::from_chars(d.data() + i, d.data() + j, n);
    const char unit = static_cast<char>(std::tolower(static_cast<unsigned char>(d[j])));
    const std::int64_t scale = unit == 'h' ? 3600 : unit == 'm' ? 60 : unit == 's' ? 1 : 0;
    if (scale == 0) return bad("every", d, "has a unit other than h, m or s");
    total += n * scale;
    if (total > max_every_seconds) return bad("every", d, "is longer than 366 days");
    i = j + 1;
  }
  if (total < 1) return bad("every", d, "is shorter than 1s");
  return seconds{total};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_fields(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size() && out.size() <= 6) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

/// `@daily` etc. as their 5-field form; empty for an unknown macro.
std::string_view expand_macro(std::string_view m) {
  const auto l = lower(m);
  if (l == "@hourly") return "0 * * * *";
  if (l == "@daily" || l == "@midnight") return "0 0 * * *";
  if (l == "@weekly") return "0 0 * * 0";
  if (l == "@monthly") return "0 0 1 * *";
  if (l == "@yearly" || l == "@annually") return "0 0 1 1 *";
  return {};
}

template <std::size_t N>
std::bitset<N> narrow(const std::bitset<64>& b) {
  std::bitset<N> out;
  for (std::size_t i = 0; i < N; ++i) out[i] = b[i];
  return out;
}

/// A restricted day of month with an unrestricted day of week must fall in some
/// selected month (Feb counts with 29 days), or the expression never fires.
bool can_fire(const cron_spec& s) {
  if (s.day_of_month_star || !s.day_of_week_star) return true;
  constexpr std::array<int, 13> month_days{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int m = 1; m <= 12; ++m) {
    if (!s.months[static_cast<std::size_t>(m)]) continue;
    for (int d = 1; d <= month_days[static_cast<std::size_t>(m)]; ++d) {
      if (s.days_of_month[static_cast<std::size_t>(d)]) return true;
    }
  }
  return false;
}

result<cron_spec> parse_fields(std::string_view text, const std::vector<std::string_view>& fields) {
  cron_spec spec;
  spec.text = std::string(text);
  std::array<std::bitset<64>, 5> bits;
  for (std::size_t i = 0; i < 5; ++i) {
    if (auto ok = parse_field(field_defs[i], fields[i], bits[i]); !ok) return std::unexpected(ok.error());
  }
  spec.minutes = narrow<60>(bits[0]);
  spec.hours = narrow<24>(bits[1]);
  spec.days_of_month = narrow<32>(bits[2]);
  spec.months = narrow<13>(bits[3]);
  if (bits[4][7]) bits[4].set(0);  // 7 is Sunday too
  spec.days_of_week = narrow<7>(bits[4]);
  spec.wildcard = fields[0].front() == '*' || fields[1].front() == '*';
  spec.day_of_month_star = fields[2].front() == '*';
  spec.day_of_week_star = fields[4].front() == '*';
  if (!can_fire(spec)) return bad("day_of_month", fields[2], "never occurs in the selected months");
  return spec;
}

}  // namespace

result<cron_spec> parse_cron(std::string_view text) {
  if (text.size() > max_cron_bytes) {
    return bad("expression", text.substr(0, 40), "is longer than " + std::to_string(max_cron_bytes) + " bytes");
  }
  for (unsigned char c : text) {
    if (c < 0x20 && c != '\t') return bad("expression", "", "contains a control character");
    if (c >= 0x7F) return bad("expression", "", "contains a non-ASCII character");
  }
  text = trim(text);
  if (text.empty()) return bad("expression", text, "is empty");
  const auto fields = split_fields(text);
  if (fields.front().front() == '@') {
    if (lower(fields.front()) == "@every") {
      if (fields.size() != 2) return bad("every", text, "needs exactly one duration such as 30s or 1h30m");
      auto every = parse_every(fields[1]);
      if (!every) return std::unexpected(every.error());
      cron_spec spec;
      spec.text = std::string(text);
      spec.every = *every;
      return spec;
    }
    const auto expanded = expand_macro(fields.front());
    if (expanded.empty() || fields.size() != 1) return bad("expression", fields.front(), "is not a known macro");
    auto spec = parse_fields(text, split_fields(expanded));
    if (spec) spec->text = std::string(text);
    return spec;
  }
  if (fields.size() != 5) {
    return bad("expression", text.substr(0, 40),
               "must have 5 fields (minute hour day-of-month month day-of-week), has " +
                   std::to_string(fields.size() > 6 ? 6 : fields.size()) + (fields.size() > 6 ? " or more" : ""));
  }
  return parse_fields(text, fields);
}

bool cron_day_matches(const cron_spec& spec, year_month_day day) {
  if (!spec.months[static_cast<unsigned>(day.month())]) return false;
  const bool dom = spec.days_of_month[static_cast<unsigned>(day.day())];
  const bool dow = spec.days_of_week[weekday(sys_days(day)).c_encoding()];
  if (spec.day_of_month_star || spec.day_of_week_star) return dom && dow;
  return dom || dow;
}

namespace {

/// The first local minute at or after `from` (a whole minute) that the calendar fields
/// match, or nothing before `limit`.
std::optional<local_seconds> next_match(const cron_spec& spec, local_seconds from, local_seconds limit) {
  auto day = floor<days>(from);
  auto tod = from - day;
  int h = static_cast<int>(tod.count() / 3600);
  int m = static_cast<int>((tod.count() % 3600) / 60);
  while (day < limit) {
    const year_month_day ymd{day};
    if (!spec.months[static_cast<unsigned>(ymd.month())]) {
      day = local_days{year_month_day{ymd.year() / ymd.month() / 1} + months{1}};
      h = m = 0;
      continue;
    }
    if (!cron_day_matches(spec, ymd)) {
      day += days{1};
      h = m = 0;
      continue;
    }
    while (h < 24 && !spec.hours[static_cast<std::size_t>(h)]) {
      ++h;
      m = 0;
    }
    if (h == 24) {
      day += days{1};
      h = m = 0;
      continue;
    }
    while (m < 60 && !spec.minutes[static_cast<std::size_t>(m)]) ++m;
    if (m == 60) {
      ++h;
      m = 0;
      if (h == 24) {
        day += days{1};
        h = 0;
      }
      continue;
    }
    return day + hours{h} + minutes{m};
  }
  return std::nullopt;
}

}  // namespace

std::vector<sys_seconds> next_fire_times(const cron_spec& spec, const zone_rules& zone, sys_seconds after,
                                         std::size_t n, sys_seconds anchor) {
  std::vector<sys_seconds> out;
  if (n == 0) return out;
  if (spec.is_every()) {
    const auto k = after < anchor ? 1 : (after - anchor) / spec.every + 1;
    for (std::size_t i = 0; i < n; ++i) out.push_back(anchor + spec.every * (k + static_cast<std::int64_t>(i)));
    return out;
  }
  // Walk the matching local minutes from a day before `after`'s local time (clocks are
  // never set back by a day or more) and keep the n smallest instants after `after`;
  // once a candidate lies a day past the local time of the n-th one, no later local time
  // can map to an earlier instant.
  std::set<sys_seconds> best;
  const auto local_after = zone.to_local(after);
  const auto limit = local_after + days{14610};  // 40 years: five Feb 29ths fit
  local_seconds cand = ceil<minutes>(local_after - days{1});
  auto consider = [&](sys_seconds t) {
    if (t <= after) return;
    best.insert(t);
    if (best.size() > n) best.erase(std::prev(best.end()));
  };
  while (true) {
    const auto match = next_match(spec, cand, limit);
    if (!match) break;
    if (best.size() == n && *match > zone.to_local(*best.rbegin()) + days{1}) break;
    const auto r = zone.resolve(*match);
    switch (r.result) {
      case local_resolution::kind::unique:
        consider(r.first);
        break;
      case local_resolution::kind::nonexistent:
        if (!spec.wildcard) consider(r.first);
        break;
      case local_resolution::kind::ambiguous:
        consider(r.first);
        if (spec.wildcard) consider(r.second);
        break;
    }
    cand = *match + minutes{1};
  }
  out.assign(best.begin(), best.end());
  return out;
}

std::optional<sys_seconds> next_fire_time(const cron_spec& spec, const zone_rules& zone, sys_seconds after,
                                          sys_seconds anchor) {
  auto v = next_fire_times(spec, zone, after, 1, anchor);
  if (v.empty()) return std::nullopt;
  return v.front();
}

std::string format_utc(sys_seconds t) {
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

result<sys_seconds> parse_utc(std::string_view s) {
  auto bad_time = [&] {
    return fail(errc::invalid_argument,
                "not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ): " + std::string(s.substr(0, 40)));
  };
  if (s.size() < 20 || s.size() > 40 || s.back() != 'Z') return bad_time();
  auto num = [&](std::size_t pos, std::size_t len, int& v) {
    auto [p, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, v);
    return ec == std::errc{} && p == s.data() + pos + len;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!num(0, 4, y) || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d) || s[10] != 'T' ||
      !num(11, 2, h) || s[13] != ':' || !num(14, 2, mi) || s[16] != ':' || !num(17, 2, se)) {
    return bad_time();
  }
  if (s.size() > 20) {
    if (s[19] != '.' || s.size() == 21) return bad_time();
    for (std::size_t i = 20; i + 1 < s.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return bad_time();
    }
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 59) return bad_time();
  return sys_days{ymd} + hours{h} + minutes{mi} + seconds{se};
}

namespace {
class fixed_utc final : public zone_rules {
 public:
  std::string_view name() const override { return "UTC"; }
  local_seconds to_local(sys_seconds utc) const override { return local_seconds{utc.time_since_epoch()}; }
  local_resolution resolve(local_seconds local) const override {
    const sys_seconds t{local.time_since_epoch()};
    return {local_resolution::kind::unique, t, t};
  }
};
}  // namespace

std::shared_ptr<const zone_rules> utc_zone() {
  static const auto zone = std::make_shared<const fixed_utc>();
  return zone;
}

}  // namespace atrium
