// Jobs: submitted in projects, possibly using a connection.
#include <limits>

#include "adapters/http/controllers/controllers.hpp"

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

void jobs_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"POST", "/v1/jobs", [self](auto& c, auto& p, auto&) { self->submit(c, p); }});
  // API tokens with `jobs:work` read jobs (access::route_class::job_read).
  t.add({"GET", "/v1/jobs", [self](auto& c, auto& p, auto&) { self->list(c, p); }, route_access::authenticated,
         access::route_class::job_read})
      .query = {"limit", "after", "status", "project"};
  t.add({"GET", "/v1/jobs/{id}",
         [self](auto& c, auto& p, auto& a) {
           const auto facts = job_facts(self->d_.jobs, self->d_.projects, p, a[0]);
           answer_get(*self->d_.kit, c, p, access::operation::job_read, facts.facts(), "job-" + a[0], facts.view,
                      "no such job");
         },
         route_access::authenticated, access::route_class::job_read})
      .query = {"as_of"};
  t.add({"POST", "/v1/jobs/{id}/cancel", [self](auto& c, auto& p, auto& a) { self->cancel(c, p, a[0]); }});
}

/// POST /v1/jobs: `{"project_id","kind":"sql"|"script","connection_id"?,"sql"?,
/// "language"?:"python"|"bash","script"?,"timeout_s"?,"max_attempts"?}`.
void jobs_controller::submit(const call_ptr& c, const principal& p) {
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
  auto language = string_field(*body, "language", false);
  if (!language) return send_error(c, language.error());
  auto attempts = integer_field<std::uint32_t>(*body, "max_attempts");
  if (!attempts) return send_error(c, attempts.error());

  const auto proj = project_facts(d_.projects, p, **project);
  std::optional<connection_role> conn_role;
  if (*connection) {
    const auto conn = connection_facts(d_.connections, p, **connection);
    if (conn.record) conn_role = conn.record->role;
  }
  const access::facts f{.role = proj.role,
                        .connection_user = conn_role.has_value(),
                        .connection_owner = conn_role == connection_role::owner,
                        .uses_connection = connection->has_value()};
  if (!d_.kit->allowed(c, p, access::operation::job_submit, f, "project-" + **project)) return;
  if (!proj.view) return send_error(c, error{errc::not_found, "no such project", {{"project_id", **project}}});
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
                 conn_role.has_value(),
                 language->value_or(""),
                 *attempts};
  d_.kit->execute(c, p, id, std::move(cmd), 201);
}

/// GET /v1/jobs?project=&status=: the jobs of the projects the caller sees (admins and
/// auditors: all), in id order, paged by `after` (a job id).
void jobs_controller::list(const call_ptr& c, const principal& p) {
  auto at = parse_page(*c);
  if (!at) return send_error(c, at.error());
  ports::job_filter filter{.status = query_param(*c, "status"), .at = *at};
  if (!narrow_to_readable_projects(*d_.kit, d_.projects, c, p, query_param(*c, "project"), access::operation::job_list,
                                   "jobs", "jobs", filter.every_project, filter.projects)) {
    return;
  }
  auto page = d_.jobs.jobs(filter);
  if (!page) return send_error(c, page.error());
  send_page(c, "jobs", *page);
}

/// POST /v1/jobs/{id}/cancel: `{"reason"?}`.
void jobs_controller::cancel(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = job_facts(d_.jobs, d_.projects, p, id);
  if (!d_.kit->admitted(c, p, access::operation::job_cancel, facts.facts(), "job-" + id, facts.view.has_value(),
                        "no such job")) {
    return;
  }
  json body = json::object();
  if (!c->req.body.empty()) {
    auto parsed = parse_object(c->req.body);
    if (!parsed) return send_error(c, parsed.error());
    body = *parsed;
  }
  auto reason = string_field(body, "reason", false);
  if (!reason) return send_error(c, reason.error());
  d_.kit->execute(c, p, id, request_cancel{reason->value_or(""), facts.role});
}

}  // namespace atrium::http_adapter
