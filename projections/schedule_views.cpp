#include "projections/schedule_views.hpp"

namespace atrium {

nlohmann::json schedule_view(const schedule_state& s) {
  return {{"id", s.schedule_id},
          {"project_id", s.project_id},
          {"name", s.name},
          {"cron", s.cron},
          {"time_zone", s.time_zone},
          {"target", s.target},
          {"catch_up", s.catch_up},
          {"owner", s.owner},
          {"status", s.status},
          {"pause_reason", s.pause_reason},
          {"anchor", s.anchor},
          {"last_fired", s.last_fired},
          {"resumed_at", s.resumed_at},
          {"fired_count", s.fired_count},
          {"version", s.version}};
}

nlohmann::json schedule_row(const schedule_state& s) { return schedule_view(s); }

schedule_state schedule_from_row(const nlohmann::json& row) {
  schedule_state s;
  s.exists = true;
  row.at("id").get_to(s.schedule_id);
  row.at("project_id").get_to(s.project_id);
  row.at("name").get_to(s.name);
  row.at("cron").get_to(s.cron);
  row.at("time_zone").get_to(s.time_zone);
  row.at("target").get_to(s.target);
  row.at("catch_up").get_to(s.catch_up);
  row.at("owner").get_to(s.owner);
  row.at("status").get_to(s.status);
  row.at("pause_reason").get_to(s.pause_reason);
  row.at("anchor").get_to(s.anchor);
  row.at("last_fired").get_to(s.last_fired);
  row.at("resumed_at").get_to(s.resumed_at);
  row.at("fired_count").get_to(s.fired_count);
  row.at("version").get_to(s.version);
  return s;
}

}  // namespace atrium
