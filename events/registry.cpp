#include "events/registry.hpp"

#include <algorithm>

#include "events/project/project_events.hpp"
#include "events/security/security_events.hpp"
#include "events/user/user_events.hpp"

namespace atrium {

const std::vector<event_type_info>& event_types() {
  static const std::vector<event_type_info> all = [] {
    return std::vector<event_type_info>{
        make_type_info<user_registered>(),
        make_type_info<user_role_granted>(),
        make_type_info<user_role_revoked>(),
        make_type_info<user_password_changed>(),
        make_type_info<user_disabled>(),
        make_type_info<username_claimed>(),
        make_type_info<project_created>(),
        make_type_info<project_renamed>(),
        make_type_info<project_described>(),
        make_type_info<project_member_added>(),
        make_type_info<project_member_removed>(),
        make_type_info<project_archived>(),
        make_type_info<security_login_succeeded>(),
        make_type_info<security_login_failed>(),
        // groups and connections
        // jobs and containers
    };
  }();
  return all;
}

const event_type_info* find_event_type(std::string_view type) {
  const auto& all = event_types();
  auto it = std::find_if(all.begin(), all.end(), [&](const auto& i) { return i.type == type; });
  return it == all.end() ? nullptr : &*it;
}

}  // namespace atrium
