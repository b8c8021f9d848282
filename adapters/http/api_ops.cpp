// The HTTP API: jobs (in projects, using connections) and containers (admins').
#include "adapters/http/api_internal.hpp"

#include "events/connection/connection_decider.hpp"
#include "events/container/container_decider.hpp"
#include "events/job/job_decider.hpp"
#include "events/project/project_decider.hpp"
#include "projections/access_views.hpp"

namespace atrium::http_adapter {
namespace {

/// An optional non-negative integer member that fits `T`.
template <class T>
result<std::optional<T>> integer_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<T>{};
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
      it->get<std::uint64_t>() > std::numeric_limits<T>::max()) {
    return fail(errc::invalid_argument, std::string(name) + " must be a non-negative integer", {{"field", name}});
  }
  return std::optional<T>{it->get<T>()};
}

}  // namespace

// ---- jobs ---------------------------------------------------------------------------

api::impl::job_access api::impl::job_facts(const principal& p, const std::string& id) const {
  job_access out;
  if (!valid_id(id)) return out;
  auto row = d.read_models.get("jobs", "jobs", id);
  if (!row || !*row) return out;
  out.row = **row;
  out.role = project_facts(p, (**row).value("project_id", "")).role;
  out.self = (**row).value("submitted_by", "") == p.user_id;
  return out;
}

/// POST /v1/jobs: `{"project_id","kind":"sql"|"script","connection_id"?,"sql"?,"script"?,"timeout_s"?}`.
void api::impl::submit_job_(const call_ptr& c, const principal& p) {
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto project = string_field(*body, "project_id", true);
  if (!project) return send_error(c, project.error());
  auto kind = string_field(*body, "kind", true);
  if (!kind) return send_error(c, kind.error());
  auto connection = string_field(*body, "connection_id", false);
  if (!connection) return send_error(c, connection.error());
  auto sql = string_field(*body, "sql", false);
  if (!sql) return send_error(c, sql.error());
  auto script = string_field(*body, "script", false);
  if (!script) return send_error(c, script.error());
  auto timeout = integer_field<std::uint32_t>(*body, "timeout_s");
  if (!timeout) return send_error(c, timeout.error());

  const auto proj = project_facts(p, **project);
  std::optional<connection_role> conn_role;
  if (*connection) {
    if (auto conn = d.read_models.get("connections", "connections", valid_id(**connection) ? **connection : "");
        conn && *conn) {
      try {
        conn_role = connection_from_row(**conn).role_of(p);
      } catch (const json::exception&) {
      }
    }
  }
  const access::facts f{.role = proj.role,
                        .connection_user = conn_role.has_value(),
                        .connection_owner = conn_role == connection_role::owner,
                        .uses_connection = connection->has_value()};
  if (!allowed(c, p, access::operation::job_submit, f, "project-" + **project)) return;
  if (!proj.row) return send_error(c, error{errc::not_found, "no such project", {{"project_id", **project}}});
  if (*connection && !conn_role) {
    return send_error(c, error{errc::not_found, "no such connection", {{"connection_id", **connection}}});
  }
  auto id = new_uuid_v7();
  submit_job cmd{id,
                 **project,
                 **kind,
                 connection->value_or(""),
                 sql->value_or(""),
                 script->value_or(""),
                 *timeout,
                 proj.role,
                 conn_role.has_value()};
  d.commands.execute(id, std::move(cmd), context(*c, p), finish(c, 201));
}

/// GET /v1/jobs?project=&status=: the jobs of the projects the caller sees (admins and
/// auditors: all), newest id last, paged by `after` (a job id).
void api::impl::list_jobs(const call_ptr& c, const principal& p) {
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  const auto after = c->query.contains("after") ? c->query["after"] : std::string();
  const auto status = c->query.contains("status") ? c->query["status"] : std::string();
  const auto project = c->query.contains("project") ? c->query["project"] : std::string();
  const bool everything = p.is_admin() || p.has(global_role::auditor);

  std::vector<std::string> projects;  // the projects to list, or none for every job
  if (!project.empty()) {
    const auto facts = project_facts(p, project);
    if (!allowed(c, p, access::operation::project_read, access::facts{.role = facts.role}, "project-" + project)) {
      return;
    }
    projects.push_back(project);
  } else {
    if (!allowed(c, p, access::operation::job_list, {}, "jobs")) return;
    if (!everything) {
      auto ids = shared_ids("projects", project_indexes(p), "", k_max_limit);
      if (!ids) return send_error(c, ids.error());
      projects.assign(ids->begin(), ids->end());
      if (projects.empty()) return send(c, 200, json{{"jobs", json::array()}, {"next", nullptr}});
    }
  }

  std::vector<json> found;
  auto keep = [&](const json& row) {
    if (status.empty() || row.value("status", "") == status) found.push_back(row);
  };
  if (projects.empty()) {
    auto rows = d.read_models.scan("jobs", "jobs", "", after, k_max_limit);
    if (!rows) return send_error(c, rows.error());
    for (const auto& r : *rows) keep(r.value);
  } else {
    for (const auto& pid : projects) {
      const auto prefix = pid + "/";
      auto rows = d.read_models.scan("jobs", "project_jobs", prefix, after.empty() ? "" : prefix + after, *limit);
      if (!rows) return send_error(c, rows.error());
      for (const auto& r : *rows) {
        auto row = d.read_models.get("jobs", "jobs", r.key.substr(prefix.size()));
        if (!row) return send_error(c, row.error());
        if (*row) keep(**row);
      }
    }
  }
  std::sort(found.begin(), found.end(),
            [](const json& a, const json& b) { return a.value("id", "") < b.value("id", ""); });
  if (found.size() > *limit) found.resize(*limit);
  json jobs(found);
  send(c, 200,
       json{{"jobs", jobs}, {"next", found.size() == *limit ? json(found.back().value("id", "")) : json(nullptr)}});
}

void api::impl::get_job(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = job_facts(p, id);
  if (!allowed(c, p, access::operation::job_read, access::facts{.role = facts.role, .self = facts.self}, "job-" + id)) {
    return;
  }
  if (!facts.row) return send_error(c, error{errc::not_found, "no such job"});
  if (answer_as_of(c, "job-" + id)) return;
  send(c, 200, *facts.row, {{"ETag", etag(facts.row->value("version", std::uint64_t{0}))}});
}

/// POST /v1/jobs/{id}/cancel: `{"reason"?}`.
void api::impl::cancel_job(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = job_facts(p, id);
  if (!allowed(c, p, access::operation::job_cancel, access::facts{.role = facts.role, .self = facts.self},
               "job-" + id)) {
    return;
  }
  if (!facts.row) return send_error(c, error{errc::not_found, "no such job"});
  json body = json::object();
  if (!c->req.body.empty()) {
    auto parsed = parse_object(c->req.body);
    if (!parsed) return send_error(c, parsed.error());
    body = *parsed;
  }
  auto reason = string_field(body, "reason", false);
  if (!reason) return send_error(c, reason.error());
  d.commands.execute(id, request_cancel{reason->value_or(""), facts.role}, context(*c, p), finish(c, 200));
}

// ---- containers ---------------------------------------------------------------------

/// POST /v1/containers: `{"name","image","command":[...],"env":{...},"ports":[...]}`.
void api::impl::declare_container_(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::container_create, {}, "containers")) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto name = string_field(*body, "name", true);
  if (!name) return send_error(c, name.error());
  auto image = string_field(*body, "image", true);
  if (!image) return send_error(c, image.error());
  declare_container cmd;
  cmd.container_id = new_uuid_v7();
  cmd.name = **name;
  cmd.image = **image;
  const auto shape_error = [&] {
    send_error(c, error{errc::invalid_argument,
                        "command must be an array of strings, env an object of strings, ports an array",
                        {{"field", "command/env/ports"}}});
  };
  for (const auto& [field, array] : {std::pair{"command", true}, {"env", false}, {"ports", true}}) {
    // nlohmann would also read an object as an array of its values, or an array of
    // pairs as a map: only the documented shapes are taken.
    if (auto it = body->find(field);
        it != body->end() && !it->is_null() && (array ? !it->is_array() : !it->is_object())) {
      return shape_error();
    }
  }
  try {
    if (auto it = body->find("command"); it != body->end() && !it->is_null()) {
      cmd.command = it->get<std::vector<std::string>>();
    }
    if (auto it = body->find("env"); it != body->end() && !it->is_null()) {
      cmd.env = it->get<std::map<std::string, std::string>>();
    }
    if (auto it = body->find("ports"); it != body->end() && !it->is_null()) {
      for (const auto& port : *it) {
        if (!port.is_number_integer() || port.get<std::int64_t>() < 0 || port.get<std::int64_t>() > 65535) {
          return send_error(c, error{errc::invalid_argument, "ports must be integers 1-65535", {{"field", "ports"}}});
        }
        cmd.ports.push_back(port.get<int>());
      }
    }
  } catch (const json::exception&) {
    return shape_error();
  }
  auto id = cmd.container_id;
  d.commands.execute(id, std::move(cmd), context(*c, p), finish(c, 201));
}

void api::impl::list_containers(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::container_list, {}, "containers")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  const auto after = c->query.contains("after") ? c->query["after"] : std::string();
  auto rows = d.read_models.scan("containers", "containers", "", after, *limit);
  if (!rows) return send_error(c, rows.error());
  json out = json::array();
  for (const auto& r : *rows) out.push_back(r.value);
  send(c, 200, json{{"containers", out}, {"next", rows->size() == *limit ? json(rows->back().key) : json(nullptr)}});
}

void api::impl::get_container(const call_ptr& c, const principal& p, const std::string& id) {
  if (!allowed(c, p, access::operation::container_read, {}, "container-" + id)) return;
  if (valid_id(id) && answer_as_of(c, "container-" + id)) return;
  auto row = d.read_models.get("containers", "containers", valid_id(id) ? id : "");
  if (!row) return send_error(c, row.error());
  if (!*row) return send_error(c, error{errc::not_found, "no such container"});
  send(c, 200, **row, {{"ETag", etag((**row).value("version", std::uint64_t{0}))}});
}

/// POST /v1/containers/{id}/start|stop and DELETE /v1/containers/{id}.
void api::impl::container_command_(const call_ptr& c, const principal& p, const std::string& id, access::operation op) {
  if (!allowed(c, p, op, {}, "container-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such container"});
  container_command cmd = remove_container{};
  if (op == access::operation::container_start) cmd = request_start{};
  if (op == access::operation::container_stop) cmd = request_stop{};
  d.commands.execute(id, std::move(cmd), context(*c, p), finish(c, 200));
}

}  // namespace atrium::http_adapter
