#include "projections/ops_views.hpp"

#include "events/container/container_spec_json.hpp"

namespace atrium {

nlohmann::json job_view(const job_state& s) {
  return {{"id", s.job_id},
          {"project_id", s.project_id},
          {"kind", s.kind},
          {"language", s.language},
          {"connection_id", s.connection_id},
          {"cell_id", s.cell_id},
          {"sql", s.sql},
          {"script", s.script},
          {"timeout_s", s.timeout_s},
          {"max_attempts", s.max_attempts},
          {"attempt", s.attempt},
          {"submitted_by", s.submitted_by},
          {"status", s.status},
          {"cancel_requested", s.cancel_requested},
          {"progress", s.progress},
          {"progress_message", s.progress_message},
          {"rows", s.rows},
          {"bytes", s.bytes},
          {"elapsed_ms", s.elapsed_ms},
          {"columns", s.columns},
          {"truncated", s.truncated},
          {"error", s.error},
          {"sqlstate", s.sqlstate},
          {"result_expired", s.result_expired},
          {"version", s.version}};
}

nlohmann::json job_row(const job_state& s) { return job_view(s); }

job_state job_from_row(const nlohmann::json& row) {
  job_state s;
  s.exists = true;
  row.at("id").get_to(s.job_id);
  row.at("project_id").get_to(s.project_id);
  row.at("kind").get_to(s.kind);
  row.at("connection_id").get_to(s.connection_id);
  row.at("sql").get_to(s.sql);
  row.at("script").get_to(s.script);
  row.at("timeout_s").get_to(s.timeout_s);
  row.at("submitted_by").get_to(s.submitted_by);
  row.at("status").get_to(s.status);
  row.at("cancel_requested").get_to(s.cancel_requested);
  row.at("progress").get_to(s.progress);
  row.at("progress_message").get_to(s.progress_message);
  row.at("error").get_to(s.error);
  row.at("version").get_to(s.version);
  // Added by issue 15: a row or snapshot written before has none of these.
  s.language = row.value("language", "");
  s.cell_id = row.value("cell_id", "");
  s.max_attempts = row.value("max_attempts", 1U);
  s.attempt = row.value("attempt", s.status == "submitted" || s.status == "queued" ? 0U : 1U);
  s.rows = row.value("rows", std::uint64_t{0});
  s.bytes = row.value("bytes", std::uint64_t{0});
  s.elapsed_ms = row.value("elapsed_ms", std::uint64_t{0});
  if (const auto it = row.find("columns"); it != row.end()) it->get_to(s.columns);
  s.truncated = row.value("truncated", false);
  s.sqlstate = row.value("sqlstate", "");
  s.result_expired = row.value("result_expired", false);
  return s;
}

nlohmann::json container_view(const container_state& s) {
  const auto exit_code = s.exit_code ? nlohmann::json(*s.exit_code) : nlohmann::json(nullptr);
  return {{"id", s.container_id},
          {"name", s.name},
          {"image", s.image},
          {"command", s.command},
          {"env", s.env},
          {"ports", s.ports},
          {"runtime", s.runtime},
          {"spec",
           {{"image", s.image},
            {"command", s.command},
            {"env", s.env},
            {"ports", s.ports},
            {"runtime", s.runtime},
            {"limits", limits_to_api(s.limits)},
            {"restart", s.restart},
            {"health", health_to_api(s.health_check)}}},
          {"spec_version", s.spec_version},
          {"declared_by", s.declared_by},
          {"desired", s.desired},
          {"observed", s.observed},
          {"health", s.health},
          {"runtime_id", s.runtime_id},
          {"exit_code", exit_code},
          {"exit_reason", s.exit_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.exit_reason)},
          {"restarts", s.restarts},
          {"next_restart_at", nullptr},
          {"version", s.version}};
}

nlohmann::json container_row(const container_state& s) {
  auto row = container_view(s);
  row["removed"] = s.removed;
  // The spec as the events hold it (millicpus, not cores), so a row folds back exactly.
  row["limits_raw"] = s.limits;
  row["health_raw"] = s.health_check ? nlohmann::json(*s.health_check) : nlohmann::json(nullptr);
  return row;
}

container_state container_from_row(const nlohmann::json& row) {
  container_state s;
  s.exists = true;
  row.at("id").get_to(s.container_id);
  row.at("name").get_to(s.name);
  row.at("image").get_to(s.image);
  row.at("command").get_to(s.command);
  row.at("env").get_to(s.env);
  row.at("ports").get_to(s.ports);
  row.at("declared_by").get_to(s.declared_by);
  row.at("desired").get_to(s.desired);
  row.at("observed").get_to(s.observed);
  row.at("health").get_to(s.health);
  row.at("runtime_id").get_to(s.runtime_id);
  if (const auto& code = row.at("exit_code"); !code.is_null()) s.exit_code = code.get<int>();
  row.at("restarts").get_to(s.restarts);
  row.at("version").get_to(s.version);
  s.removed = row.value("removed", false);
  // Rows written before issue 18 come from schema-1 declarations: docker, see upcasters.cpp.
  s.runtime = row.value("runtime", "docker");
  if (const auto spec = row.find("spec"); spec != row.end() && spec->is_object()) {
    s.restart = spec->value("restart", "on-failure");
  }
  if (const auto it = row.find("limits_raw"); it != row.end()) it->get_to(s.limits);
  if (const auto it = row.find("health_raw"); it != row.end() && !it->is_null()) {
    s.health_check = it->get<container_health_spec>();
  }
  s.spec_version = row.value("spec_version", std::uint64_t{1});
  if (const auto it = row.find("exit_reason"); it != row.end() && it->is_string())
    s.exit_reason = it->get<std::string>();
  return s;
}

}  // namespace atrium
