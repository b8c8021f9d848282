#include "events/access/policy.hpp"

namespace atrium::access {
namespace {

decision deny(errc code, std::string reason) { return {false, code, std::move(reason)}; }

/// Global member or admin: may create and change things (auditors never do).
bool may_change(const principal& p) { return p.is_admin() || p.has(global_role::member); }
bool reads_everything(const principal& p) { return p.is_admin() || p.has(global_role::auditor); }

/// A change to a resource whose existence is private: `not_found` when the caller cannot
/// see it at all, `forbidden` when they can see it but lack the rights.
decision private_change(bool sees, bool allowed, const principal& p, std::string why) {
  if (allowed && may_change(p)) return decision::allow();
  if (!sees) return deny(errc::not_found, "not visible to the caller");
  if (!may_change(p)) return deny(errc::forbidden, "auditors change nothing");
  return deny(errc::forbidden, std::move(why));
}

decision project(const principal& p, operation op, const facts& f) {
  const bool sees = reads_everything(p) || f.role.has_value();
  const auto at_least = [&](project_role r) { return p.is_admin() || (f.role && *f.role >= r); };
  switch (op) {
    case operation::project_read:
      return sees ? decision::allow() : deny(errc::not_found, "not a member of the project");
    case operation::project_update:
      return private_change(sees, at_least(project_role::editor), p, "only editors and owners edit the project");
    case operation::project_cell_add:
    case operation::project_cell_edit:
    case operation::project_cell_move:
    case operation::project_cell_remove:
    case operation::project_cell_run: {
      const auto why = op == operation::project_cell_run ? "only editors and owners run cells"
                                                         : "only editors and owners edit cells";
      if (auto d = private_change(sees, at_least(project_role::editor), p, why); !d.allowed) return d;
      if (f.uses_connection && !p.is_admin() && !f.connection_user && !f.connection_owner) {
        return deny(errc::forbidden, "no grant to use the connection");
      }
      return decision::allow();
    }
    case operation::project_archive:
      return private_change(sees, at_least(project_role::owner), p, "only owners archive the project");
    case operation::project_share:
      return private_change(sees, at_least(project_role::owner), p, "only owners share the project");
    case operation::project_unshare:
      return private_change(sees, at_least(project_role::owner) || (f.self && f.role), p, "only owners remove members");
    default:
      return deny(errc::forbidden, "unknown project operation");
  }
}

decision connection(const principal& p, operation op, const facts& f) {
  const bool sees = reads_everything(p) || f.connection_user || f.connection_owner;
  const bool owner = p.is_admin() || f.connection_owner;
  switch (op) {
    case operation::connection_read:
      return sees ? decision::allow() : deny(errc::not_found, "no grant on the connection");
    case operation::connection_test:
      if (f.connection_holds_credentials) {
        return private_change(sees, owner, p, "only owners test a connection that holds credentials");
      }
      return private_change(sees, owner || f.connection_user, p, "only users of the connection test it");
    case operation::connection_update:
    case operation::connection_delete:
    case operation::connection_share:
      return private_change(sees, owner, p, "only owners of the connection change it");
    default:
      return deny(errc::forbidden, "unknown connection operation");
  }
}

}  // namespace

std::string_view to_string(operation op) noexcept {
  switch (op) {
    case operation::user_create:
      return "user.create";
    case operation::user_list:
      return "user.list";
    case operation::user_read:
      return "user.read";
    case operation::user_update:
      return "user.update";
    case operation::user_disable:
      return "user.disable";
    case operation::group_create:
      return "group.create";
    case operation::group_list:
      return "group.list";
    case operation::group_read:
      return "group.read";
    case operation::group_manage_members:
      return "group.manage_members";
    case operation::project_create:
      return "project.create";
    case operation::project_list:
      return "project.list";
    case operation::project_read:
      return "project.read";
    case operation::project_update:
      return "project.update";
    case operation::project_archive:
      return "project.archive";
    case operation::project_share:
      return "project.share";
    case operation::project_unshare:
      return "project.unshare";
    case operation::project_cell_add:
      return "project.cell_add";
    case operation::project_cell_edit:
      return "project.cell_edit";
    case operation::project_cell_move:
      return "project.cell_move";
    case operation::project_cell_remove:
      return "project.cell_remove";
    case operation::project_cell_run:
      return "project.cell_run";
    case operation::connection_create:
      return "connection.create";
    case operation::connection_list:
      return "connection.list";
    case operation::connection_read:
      return "connection.read";
    case operation::connection_update:
      return "connection.update";
    case operation::connection_delete:
      return "connection.delete";
    case operation::connection_share:
      return "connection.share";
    case operation::connection_test:
      return "connection.test";
    case operation::job_submit:
      return "job.submit";
    case operation::job_list:
      return "job.list";
    case operation::job_read:
      return "job.read";
    case operation::job_cancel:
      return "job.cancel";
    case operation::schedule_create:
      return "schedule.create";
    case operation::schedule_list:
      return "schedule.list";
    case operation::schedule_read:
      return "schedule.read";
    case operation::schedule_manage:
      return "schedule.manage";
    case operation::container_create:
      return "container.create";
    case operation::container_list:
      return "container.list";
    case operation::container_read:
      return "container.read";
    case operation::container_start:
      return "container.start";
    case operation::container_stop:
      return "container.stop";
    case operation::container_remove:
      return "container.remove";
    case operation::container_update:
      return "container.update";
    case operation::container_logs:
      return "container.logs";
    case operation::audit_read:
      return "audit.read";
    case operation::events_read:
      return "events.read";
    case operation::projections_read:
      return "projections.read";
    case operation::projections_rebuild:
      return "projections.rebuild";
    case operation::backups_manage:
      return "backups.manage";
    case operation::service_account_create:
      return "service_account.create";
    case operation::service_account_list:
      return "service_account.list";
    case operation::service_account_read:
      return "service_account.read";
    case operation::service_account_disable:
      return "service_account.disable";
    case operation::token_create:
      return "token.create";
    case operation::token_list:
      return "token.list";
    case operation::token_revoke:
      return "token.revoke";
    case operation::job_work:
      return "job.work";
    case operation::worker_list:
      return "worker.list";
  }
  return "unknown";
}

error decision::as_error() const {
  if (code == errc::not_found) return error{errc::not_found, "not found", {}};
  if (!missing_scope.empty()) return error{code, reason, {{"missing_scope", missing_scope}}};
  return error{code, reason, {}};
}

std::optional<token_scope> scope_for(operation op) noexcept {
  switch (op) {
    case operation::job_work:
      return token_scope::jobs_work;
    case operation::user_list:
    case operation::user_read:
    case operation::group_list:
    case operation::group_read:
    case operation::project_list:
    case operation::project_read:
    case operation::connection_list:
    case operation::connection_read:
    case operation::job_list:
    case operation::job_read:
    case operation::schedule_list:
    case operation::schedule_read:
    case operation::container_list:
    case operation::container_read:
    case operation::audit_read:
    case operation::events_read:
    case operation::projections_read:
    case operation::service_account_list:
    case operation::service_account_read:
      return token_scope::events_read;
    default:
      return std::nullopt;
  }
}

namespace {

decision missing(token_scope s) {
  auto name = std::string(to_string(s));
  return {false, errc::forbidden, "the token lacks the scope " + name, name};
}

/// The token half of the intersection: whether the scopes of `p` allow `op`.
decision scope_gate(const principal& p, operation op) {
  if (p.scoped_to(token_scope::admin)) return decision::allow();
  const auto needed = scope_for(op);
  if (!needed) return missing(token_scope::admin);
  // Reading jobs is part of a worker's work as well as of reading the log.
  const bool job_read = op == operation::job_read || op == operation::job_list;
  if (p.scoped_to(*needed) || (job_read && p.scoped_to(token_scope::jobs_work))) return decision::allow();
  return missing(*needed);
}

}  // namespace

decision authorize_route(const principal& p, route_class c) {
  if (p.scoped_to(token_scope::admin)) return decision::allow();
  switch (c) {
    case route_class::event_read:
      return p.scoped_to(token_scope::events_read) ? decision::allow() : missing(token_scope::events_read);
    case route_class::job_read:
    case route_class::job_work:
      return p.scoped_to(token_scope::jobs_work) ? decision::allow() : missing(token_scope::jobs_work);
    case route_class::other:
      break;
  }
  return missing(token_scope::admin);
}

decision authorize(const principal& p, operation op, const facts& f) {
  if (p.disabled) return deny(errc::forbidden, "disabled users cannot act");
  if (p.scopes) {
    if (auto d = scope_gate(p, op); !d.allowed) return d;
  }
  switch (op) {
    // Users: everyone sees the directory (public fields); admins manage it.
    case operation::user_list:
    case operation::user_read:
      return decision::allow();
    case operation::user_create:
    case operation::user_disable:
      return p.is_admin() ? decision::allow() : deny(errc::forbidden, "only admins manage users");
    case operation::user_update:
      return p.is_admin() || f.self ? decision::allow() : deny(errc::forbidden, "only admins change other users");

    // Creating: members and admins; listing: everyone, filtered to what they see.
    case operation::group_create:
    case operation::project_create:
    case operation::connection_create:
      return may_change(p) ? decision::allow() : deny(errc::forbidden, "only members and admins create");
    case operation::group_list:
    case operation::project_list:
    case operation::connection_list:
    case operation::job_list:
      return decision::allow();

    case operation::group_read:
      return reads_everything(p) || f.group_member || f.group_manager ? decision::allow()
                                                                      : deny(errc::not_found, "not in the group");
    case operation::group_manage_members:
      return private_change(reads_everything(p) || f.group_member || f.group_manager, p.is_admin() || f.group_manager,
                            p, "only the group's manager and admins change its members");

    case operation::project_read:
    case operation::project_update:
    case operation::project_archive:
    case operation::project_share:
    case operation::project_unshare:
    case operation::project_cell_add:
    case operation::project_cell_edit:
    case operation::project_cell_move:
    case operation::project_cell_remove:
    case operation::project_cell_run:
      return project(p, op, f);

    case operation::connection_read:
    case operation::connection_update:
    case operation::connection_delete:
    case operation::connection_share:
    case operation::connection_test:
      return connection(p, op, f);

    // Jobs live in projects: reading needs a role there; running needs editor and the
    // right to use the connection.
    case operation::job_read:
      return reads_everything(p) || f.role || f.self ? decision::allow()
                                                     : deny(errc::not_found, "not a member of the job's project");
    case operation::job_submit: {
      const bool sees = reads_everything(p) || f.role.has_value();
      const bool editor = p.is_admin() || (f.role && *f.role >= project_role::editor);
      if (auto d = private_change(sees, editor, p, "only editors and owners run jobs"); !d.allowed) return d;
      if (f.uses_connection && !p.is_admin() && !f.connection_user && !f.connection_owner) {
        return deny(errc::forbidden, "no grant to use the connection");
      }
      return decision::allow();
    }
    case operation::job_cancel: {
      const bool sees = reads_everything(p) || f.role || f.self;
      const bool may = p.is_admin() || f.self || (f.role && *f.role >= project_role::editor);
      return private_change(sees, may, p, "only the submitter, editors and owners cancel a job");
    }

    // Schedules live in projects like jobs: readers of the project read them; editors and
    // owners manage them (and must be allowed to use the target's connection).
    case operation::schedule_list:
      return decision::allow();
    case operation::schedule_read:
      return reads_everything(p) || f.role ? decision::allow()
                                           : deny(errc::not_found, "not a member of the schedule's project");
    case operation::schedule_create:
    case operation::schedule_manage: {
      const bool sees = reads_everything(p) || f.role.has_value();
      const bool editor = p.is_admin() || (f.role && *f.role >= project_role::editor);
      if (auto d = private_change(sees, editor, p, "only editors and owners manage schedules"); !d.allowed) return d;
      if (f.uses_connection && !p.is_admin() && !f.connection_user && !f.connection_owner) {
        return deny(errc::forbidden, "no grant to use the connection");
      }
      return decision::allow();
    }

    // Containers: admins manage them; auditors read them.
    case operation::container_list:
    case operation::container_read:
      return reads_everything(p) ? decision::allow() : deny(errc::forbidden, "only admins and auditors see containers");
    case operation::projections_rebuild:
      return p.is_admin() ? decision::allow() : deny(errc::forbidden, "only admins rebuild projections");
    case operation::backups_manage:
      return p.is_admin() ? decision::allow() : deny(errc::forbidden, "only admins take and list backups");
    case operation::container_create:
    case operation::container_start:
    case operation::container_stop:
    case operation::container_remove:
    case operation::container_update:
    case operation::container_logs:
      return p.is_admin() ? decision::allow() : deny(errc::forbidden, "only admins manage containers");

    // The workers' list: who runs jobs where (no credentials in it).
    case operation::worker_list:
      return reads_everything(p) ? decision::allow() : deny(errc::forbidden, "only admins and auditors see workers");

    case operation::audit_read:
    case operation::events_read:
    case operation::projections_read:
      return reads_everything(p) ? decision::allow()
                                 : deny(errc::forbidden, "only admins and auditors read the audit and event logs");

    // Service accounts: admins manage them; auditors see them.
    case operation::service_account_create:
    case operation::service_account_disable:
      return p.is_admin() ? decision::allow() : deny(errc::forbidden, "only admins manage service accounts");
    case operation::service_account_list:
    case operation::service_account_read:
      return reads_everything(p) ? decision::allow()
                                 : deny(errc::forbidden, "only admins and auditors see service accounts");

    // Tokens: everyone makes and manages their own (a token never carries more than its
    // owner has, so an auditor's reads the log and changes nothing); admins manage every
    // token (a service account's are made by admins).
    case operation::token_create:
      return p.is_admin() || f.self ? decision::allow() : deny(errc::forbidden, "only admins make tokens for others");
    case operation::token_list:
      return p.is_admin() || f.self ? decision::allow() : deny(errc::forbidden, "only admins list others' tokens");
    case operation::token_revoke:  // a token's id is private: someone else's is not found
      return p.is_admin() || f.self ? decision::allow() : deny(errc::not_found, "not the caller's token");

    // The remote-worker routes run any project's jobs: an admin's (service account's)
    // token, scoped `jobs:work` by the scope gate above.
    case operation::job_work:
      return p.is_admin() ? decision::allow() : deny(errc::forbidden, "only admins' tokens work jobs");
  }
  return deny(errc::forbidden, "unknown operation");
}

}  // namespace atrium::access
