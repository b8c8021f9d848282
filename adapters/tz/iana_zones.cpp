#include "adapters/tz/iana_zones.hpp"

#include <date/tz.h>

#include <cctype>
#include <exception>
#include <string>

namespace atrium {
namespace {

using std::chrono::local_seconds;
using std::chrono::sys_seconds;

/// One zone of the database; `date::time_zone` objects live as long as the process.
class iana_zone final : public zone_rules {
 public:
  explicit iana_zone(const date::time_zone* zone) : zone_(zone) {}

  std::string_view name() const override { return zone_->name(); }

  local_seconds to_local(sys_seconds utc) const override {
    const auto info = zone_->get_info(utc);
    return local_seconds{utc.time_since_epoch() + info.offset};
  }

  local_resolution resolve(local_seconds local) const override {
    const date::local_seconds l{local.time_since_epoch()};
    const auto info = zone_->get_info(l);
    const auto at = [&](const date::sys_info& i) { return sys_seconds{local.time_since_epoch() - i.offset}; };
    switch (info.result) {
      case date::local_info::nonexistent:
        // The gap ends where the second period begins: the first instant of the new offset.
        return {local_resolution::kind::nonexistent, info.second.begin, info.second.begin};
      case date::local_info::ambiguous:
        return {local_resolution::kind::ambiguous, at(info.first), at(info.second)};
      default:
        return {local_resolution::kind::unique, at(info.first), at(info.first)};
    }
  }

 private:
  const date::time_zone* zone_;
};

bool plausible_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return false;
  }
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '/' || c == '_' || c == '+' || c == '-')) return false;
  }
  return true;
}

class iana_database final : public zone_database {
 public:
  result<std::shared_ptr<const zone_rules>> locate(std::string_view name) const override {
    if (!plausible_name(name)) {
      return fail(errc::invalid_argument, "unknown time zone (an IANA name such as Europe/Berlin)",
                  {{"field", "time_zone"}});
    }
    try {
      const auto* zone = date::locate_zone(name);
      return std::make_shared<const iana_zone>(zone);
    } catch (const std::runtime_error&) {
      return fail(errc::invalid_argument,
                  "unknown time zone: " + std::string(name) + " (an IANA name such as Europe/Berlin)",
                  {{"field", "time_zone"}});
    } catch (const std::exception& e) {
      return fail(errc::unavailable, std::string("time zone database: ") + e.what());
    }
  }
};

}  // namespace

std::shared_ptr<const zone_database> make_iana_zone_database() {
  static const auto db = std::make_shared<const iana_database>();
  return db;
}

}  // namespace atrium
