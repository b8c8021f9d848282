/// API-token scopes in the policy decision point (events/access/policy.hpp): the
/// intersection of the owner's permissions and the token's scopes, as a table — which
/// route classes each scope reaches (`authorize_route`), which operations it may perform
/// (`authorize`), and that a scope never adds to what the owner may do.

#include <catch2/catch.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "events/access/policy.hpp"

namespace {

using namespace atrium;
using access::operation;
using access::route_class;

principal owner(global_role role, std::optional<std::set<token_scope>> scopes) {
  principal p{"u-1", {role}, false, {}};
  p.scopes = std::move(scopes);
  return p;
}

using scopes_t = std::optional<std::set<token_scope>>;
const scopes_t session = std::nullopt;
const scopes_t events_read = std::set{token_scope::events_read};
const scopes_t jobs_work = std::set{token_scope::jobs_work};
const scopes_t admin_scope = std::set{token_scope::admin};
const scopes_t both = std::set{token_scope::events_read, token_scope::jobs_work};

}  // namespace

TEST_CASE("scope names parse and print", "[policy][tokens]") {
  for (auto s : {token_scope::events_read, token_scope::jobs_work, token_scope::admin}) {
    CHECK(parse_token_scope(to_string(s)) == s);
  }
  CHECK(to_string(token_scope::events_read) == "events:read");
  CHECK(to_string(token_scope::jobs_work) == "jobs:work");
  CHECK_FALSE(parse_token_scope("events:write"));
  CHECK_FALSE(parse_token_scope("ADMIN"));
  CHECK_FALSE(parse_token_scope(""));
}

TEST_CASE("route classes each scope reaches", "[policy][tokens]") {
  struct row {
    scopes_t scopes;
    route_class route;
    bool allowed;
    const char* missing;
  };
  const std::vector<row> table{
      {session, route_class::other, true, ""},
      {session, route_class::event_read, true, ""},
      {session, route_class::job_work, true, ""},
      {events_read, route_class::event_read, true, ""},
      {events_read, route_class::job_read, false, "jobs:work"},
      {events_read, route_class::job_work, false, "jobs:work"},
      {events_read, route_class::other, false, "admin"},
      {jobs_work, route_class::job_read, true, ""},
      {jobs_work, route_class::job_work, true, ""},
      {jobs_work, route_class::event_read, false, "events:read"},
      {jobs_work, route_class::other, false, "admin"},
      {both, route_class::event_read, true, ""},
      {both, route_class::job_work, true, ""},
      {both, route_class::other, false, "admin"},
      {admin_scope, route_class::other, true, ""},
      {admin_scope, route_class::event_read, true, ""},
      {admin_scope, route_class::job_work, true, ""},
  };
  for (const auto& r : table) {
    const auto d = access::authorize_route(owner(global_role::admin, r.scopes), r.route);
    INFO("route class " << static_cast<int>(r.route) << " scopes "
                        << (r.scopes ? std::to_string(r.scopes->size()) : std::string("session")));
    CHECK(d.allowed == r.allowed);
    CHECK(d.missing_scope == r.missing);
    if (!d.allowed) {
      CHECK(d.code == errc::forbidden);
      const auto e = d.as_error();
      CHECK(e.details.at("missing_scope") == r.missing);
      CHECK(e.message.find(r.missing) != std::string::npos);
    }
  }
}

TEST_CASE("operations each scope allows, intersected with the owner's roles", "[policy][tokens]") {
  struct row {
    global_role role;
    scopes_t scopes;
    operation op;
    access::facts facts;
    bool allowed;
    const char* missing;  // "" when allowed or denied by the owner's roles
  };
  const access::facts viewer{.role = project_role::viewer};
  const access::facts editor{.role = project_role::editor};
  const std::vector<row> table{
      // events:read reads what its owner may read, and changes nothing
      {global_role::auditor, events_read, operation::events_read, {}, true, ""},
      {global_role::auditor, events_read, operation::audit_read, {}, true, ""},
      {global_role::member, events_read, operation::events_read, {}, false, ""},  // the owner may not
      {global_role::member, events_read, operation::project_read, viewer, true, ""},
      {global_role::member, events_read, operation::project_read, {}, false, ""},  // 404: not a member
      {global_role::member, events_read, operation::job_read, viewer, true, ""},
      {global_role::member, events_read, operation::project_update, editor, false, "admin"},
      {global_role::admin, events_read, operation::project_create, {}, false, "admin"},
      {global_role::admin, events_read, operation::job_submit, editor, false, "admin"},
      {global_role::admin, events_read, operation::job_work, {}, false, "jobs:work"},
      {global_role::admin, events_read, operation::token_create, {.self = true}, false, "admin"},
      // jobs:work reads jobs and works them (when the owner is an admin), nothing else
      {global_role::admin, jobs_work, operation::job_work, {}, true, ""},
      {global_role::member, jobs_work, operation::job_work, {}, false, ""},  // the owner may not
      {global_role::admin, jobs_work, operation::job_read, {}, true, ""},
      {global_role::admin, jobs_work, operation::job_list, {}, true, ""},
      {global_role::member, jobs_work, operation::job_read, {}, false, ""},  // 404: not the member's job
      {global_role::admin, jobs_work, operation::project_read, {}, false, "events:read"},
      {global_role::admin, jobs_work, operation::events_read, {}, false, "events:read"},
      {global_role::admin, jobs_work, operation::job_cancel, {}, false, "admin"},
      {global_role::admin, jobs_work, operation::job_submit, {}, false, "admin"},
      {global_role::admin, jobs_work, operation::user_create, {}, false, "admin"},
      // admin scope: exactly what the owner may do
      {global_role::admin, admin_scope, operation::user_create, {}, true, ""},
      {global_role::member, admin_scope, operation::user_create, {}, false, ""},
      {global_role::member, admin_scope, operation::project_update, editor, true, ""},
      {global_role::member, admin_scope, operation::project_update, viewer, false, ""},
      {global_role::auditor, admin_scope, operation::project_create, {}, false, ""},
      {global_role::member, admin_scope, operation::token_create, {.self = true}, true, ""},
      {global_role::member, admin_scope, operation::job_work, {}, false, ""},
      // sessions: the owner's roles alone
      {global_role::member, session, operation::project_update, editor, true, ""},
      {global_role::admin, session, operation::job_work, {}, true, ""},
      {global_role::member, session, operation::job_work, {}, false, ""},
  };
  for (const auto& r : table) {
    const auto d = access::authorize(owner(r.role, r.scopes), r.op, r.facts);
    INFO(access::to_string(r.op) << " as " << to_string(r.role) << " with "
                                 << (r.scopes ? std::to_string(r.scopes->size()) + " scope(s)" : "a session"));
    CHECK(d.allowed == r.allowed);
    CHECK(d.missing_scope == r.missing);
  }
}

TEST_CASE("a scope never adds to what the owner may do", "[policy][tokens]") {
  // For every operation and owner role: a token (any scopes) allows a subset of the session.
  for (int i = 0; i <= static_cast<int>(operation::job_work); ++i) {
    const auto op = static_cast<operation>(i);
    for (auto role : {global_role::admin, global_role::member, global_role::auditor}) {
      for (const auto& facts : {access::facts{}, access::facts{.role = project_role::owner, .self = true}}) {
        const bool by_session = access::authorize(owner(role, session), op, facts).allowed;
        for (const auto& scopes : {events_read, jobs_work, admin_scope, both}) {
          INFO(access::to_string(op) << " as " << to_string(role));
          if (access::authorize(owner(role, scopes), op, facts).allowed) CHECK(by_session);
        }
        CHECK(access::authorize(owner(role, admin_scope), op, facts).allowed == by_session);
      }
    }
  }
}

TEST_CASE("scope_for names the scope of every read and none for changes", "[policy][tokens]") {
  CHECK(access::scope_for(operation::job_work) == token_scope::jobs_work);
  CHECK(access::scope_for(operation::events_read) == token_scope::events_read);
  CHECK(access::scope_for(operation::project_read) == token_scope::events_read);
  // A schedule's stream reads like its view: `events:read`, as a job's does.
  CHECK(access::scope_for(operation::schedule_read) == token_scope::events_read);
  CHECK(access::scope_for(operation::schedule_list) == token_scope::events_read);
  CHECK_FALSE(access::scope_for(operation::schedule_manage));
  CHECK_FALSE(access::scope_for(operation::project_update));
  CHECK_FALSE(access::scope_for(operation::token_revoke));
  CHECK_FALSE(access::scope_for(operation::service_account_create));
}
