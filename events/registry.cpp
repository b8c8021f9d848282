#include "events/registry.hpp"

#include <algorithm>

#include "events/admin/admin_events.hpp"
#include "events/connection/connection_events.hpp"
#include "events/container/container_events.hpp"
#include "events/group/group_events.hpp"
#include "events/job/job_events.hpp"
#include "events/project/project_events.hpp"
#include "events/schedule/schedule_events.hpp"
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
        make_type_info<user_service_account_created>(),
        make_type_info<username_claimed>(),
        make_type_info<project_created>(),
        make_type_info<project_renamed>(),
        make_type_info<project_described>(),
        make_type_info<project_member_added>(),
        make_type_info<project_member_removed>(),
        make_type_info<project_archived>(),
        make_type_info<project_group_added>(),
        make_type_info<project_group_removed>(),
        make_type_info<project_cell_added>(),
        make_type_info<project_cell_edited>(),
        make_type_info<project_cell_moved>(),
        make_type_info<project_cell_removed>(),
        make_type_info<project_cell_connection_set>(),
        make_type_info<project_cell_changed>(),
        make_type_info<security_login_succeeded>(),
        make_type_info<security_login_failed>(),
        make_type_info<security_login_throttled>(),
        make_type_info<security_access_denied>(),
        make_type_info<security_token_created>(),
        make_type_info<security_token_revoked>(),
        make_type_info<admin_backup_taken>(),
        // groups and connections
        make_type_info<group_created>(),
        make_type_info<group_member_added>(),
        make_type_info<group_member_removed>(),
        make_type_info<connection_created>(),
        make_type_info<connection_updated>(),
        make_type_info<connection_credentials_rotated>(),
        make_type_info<connection_tested>(),
        make_type_info<connection_access_granted>(),
        make_type_info<connection_access_revoked>(),
        make_type_info<connection_deleted>(),
        // jobs and containers
        make_type_info<job_submitted>(),
        make_type_info<job_queued>(),
        make_type_info<job_started>(),
        make_type_info<job_progressed>(),
        make_type_info<job_succeeded>(),
        make_type_info<job_failed>(),
        make_type_info<job_cancel_requested>(),
        make_type_info<job_cancelled>(),
        make_type_info<job_timed_out>(),
        make_type_info<job_requeued>(),
        make_type_info<job_result_expired>(),
        make_type_info<container_declared>(),
        make_type_info<container_start_requested>(),
        make_type_info<container_started>(),
        make_type_info<container_health_changed>(),
        make_type_info<container_exited>(),
        make_type_info<container_restarted>(),
        make_type_info<container_stop_requested>(),
        make_type_info<container_stopped>(),
        make_type_info<container_removed>(),
        make_type_info<container_spec_changed>(),
        make_type_info<runtime_orphan_removed>(),
        // schedules
        make_type_info<schedule_created>(),
        make_type_info<schedule_updated>(),
        make_type_info<schedule_paused>(),
        make_type_info<schedule_resumed>(),
        make_type_info<schedule_deleted>(),
        make_type_info<schedule_fired>(),
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
