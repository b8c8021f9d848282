/// The project decider as given events / when command / then events or error.
///
/// The "given" state is built by folding events with `evolve`. The usual cast:
/// `owner-1` (owner), `editor-1` (editor), `viewer-1` (viewer), `outsider-1` (a global
/// member with no role here), `admin-1` (global admin, acts as owner), `auditor-1`.

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/project/project_decider.hpp"
#include "events/registry.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::require_error;
using test::types_of;

/// The state after folding `events` in order; version counts the folded events.
project_state given(const std::vector<project_event>& events) { return test::fold<project_state>(events); }

principal member(std::string id) { return principal{std::move(id), {global_role::member}, false}; }
const principal owner = member("owner-1");
const principal editor = member("editor-1");
const principal viewer = member("viewer-1");
const principal outsider = member("outsider-1");
const principal admin{"admin-1", {global_role::admin}, false};
const principal auditor{"auditor-1", {global_role::auditor}, false};

/// The events of a project created by owner-1, shared with an editor and a viewer.
std::vector<project_event> shared_project() {
  return {project_created{"p-1", "Apollo", "to the moon", "owner-1"}, project_member_added{"owner-1", "owner"},
          project_member_added{"editor-1", "editor"}, project_member_added{"viewer-1", "viewer"}};
}

/// `shared_project()` followed by `more`.
project_state given_shared(std::vector<project_event> more = {}) {
  auto events = shared_project();
  events.insert(events.end(), more.begin(), more.end());
  return given(std::move(events));
}

/// Requires `r` to be a success with no events (an idempotent no-op).
template <class T>
void require_no_events(const result<T>& r) {
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

create_project creation(std::string name = "Apollo", std::string description = "to the moon") {
  return create_project{"p-1", std::move(name), std::move(description)};
}

}  // namespace

// --- create -----------------------------------------------------------------------

TEST_CASE("a member creates a project and becomes its owner", "[project][create]") {
  const auto r = decide(project_state{}, creation(), member("m-1"));
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"project.created", "project.member_added"});
  CHECK((*r)[0].data ==
        json{{"project_id", "p-1"}, {"name", "Apollo"}, {"description", "to the moon"}, {"created_by", "m-1"}});
  CHECK((*r)[1].data == json{{"user_id", "m-1"}, {"role", "owner"}});
}

TEST_CASE("an admin creates a project and becomes its owner", "[project][create]") {
  const auto r = decide(project_state{}, creation(), admin);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"project.created", "project.member_added"});
  CHECK((*r)[0].data.at("created_by") == "admin-1");
  CHECK((*r)[1].data == json{{"user_id", "admin-1"}, {"role", "owner"}});
}

TEST_CASE("auditors and role-less or disabled users cannot create projects", "[project][create]") {
  require_error(decide(project_state{}, creation(), auditor), errc::forbidden);
  require_error(decide(project_state{}, creation(), principal{"nobody", {}, false}), errc::forbidden);
  require_error(decide(project_state{}, creation(), principal{"m-1", {global_role::member}, true}), errc::forbidden);
  require_error(decide(project_state{}, creation(), principal{"a-1", {global_role::admin}, true}), errc::forbidden);
}

TEST_CASE("project names and descriptions are validated", "[project][create][validation]") {
  SECTION("blank or empty names") {
    for (const char* bad : {"", " ", "   ", "\t\n", " \r\n "}) {
      INFO("name: '" << bad << "'");
      const auto r = decide(project_state{}, creation(bad), owner);
      require_error(r, errc::invalid_argument);
      CHECK(r.error().details.at("field") == "name");
    }
  }
  SECTION("names of 1 and 200 characters pass; 201 is too long") {
    CHECK(decide(project_state{}, creation("x"), owner).has_value());
    CHECK(decide(project_state{}, creation(std::string(200, 'n')), owner).has_value());
    const auto r = decide(project_state{}, creation(std::string(201, 'n')), owner);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "name");
  }
  SECTION("descriptions of up to 10000 characters pass; 10001 is too long") {
    CHECK(decide(project_state{}, creation("Apollo", ""), owner).has_value());
    CHECK(decide(project_state{}, creation("Apollo", std::string(10000, 'd')), owner).has_value());
    const auto r = decide(project_state{}, creation("Apollo", std::string(10001, 'd')), owner);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "description");
  }
  SECTION("an empty project id") {
    create_project c = creation();
    c.project_id.clear();
    require_error(decide(project_state{}, c, owner), errc::invalid_argument);
  }
}

TEST_CASE("creating an existing project is already_exists", "[project][create]") {
  require_error(decide(given_shared(), creation("Other"), member("m-2")), errc::already_exists);
  require_error(decide(given_shared(), creation("Other"), admin), errc::already_exists);
}

// --- commands on a missing project, disabled actors ---------------------------------

TEST_CASE("commands on a missing project are not_found", "[project][not_found]") {
  const project_state missing;
  require_error(decide(missing, update_project{"New", std::nullopt}, admin), errc::not_found);
  require_error(decide(missing, add_member{"u-1", "viewer"}, admin), errc::not_found);
  require_error(decide(missing, remove_member{"u-1"}, admin), errc::not_found);
  require_error(decide(missing, archive_project{"done"}, admin), errc::not_found);
}

TEST_CASE("a disabled owner cannot act on the project", "[project][disabled]") {
  const auto state = given_shared();
  const principal disabled_owner{"owner-1", {global_role::member}, true};
  require_error(decide(state, update_project{"New", std::nullopt}, disabled_owner), errc::forbidden);
  require_error(decide(state, add_member{"u-1", "viewer"}, disabled_owner), errc::forbidden);
  require_error(decide(state, remove_member{"viewer-1"}, disabled_owner), errc::forbidden);
  require_error(decide(state, archive_project{"done"}, disabled_owner), errc::forbidden);
  // Not even leaving on their own.
  const principal disabled_viewer{"viewer-1", {global_role::member}, true};
  require_error(decide(state, remove_member{"viewer-1"}, disabled_viewer), errc::forbidden);
}

// --- update -----------------------------------------------------------------------

TEST_CASE("editors and owners update a project", "[project][update]") {
  const auto state = given_shared();
  SECTION("an editor renames") {
    const auto r = decide(state, update_project{"Gemini", std::nullopt}, editor);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"project.renamed"});
    CHECK(r->front().data == json{{"name", "Gemini"}});
  }
  SECTION("an owner describes") {
    const auto r = decide(state, update_project{std::nullopt, "to mars"}, owner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"project.described"});
    CHECK(r->front().data == json{{"description", "to mars"}});
  }
  SECTION("both at once: renamed then described") {
    const auto r = decide(state, update_project{"Gemini", ""}, owner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"project.renamed", "project.described"});
    CHECK((*r)[1].data == json{{"description", ""}});
  }
  SECTION("an admin who is not a member acts as owner") {
    const auto r = decide(state, update_project{"Gemini", std::nullopt}, admin);
    REQUIRE(r.has_value());
    CHECK(types_of(*r) == std::vector<std::string>{"project.renamed"});
  }
}

TEST_CASE("viewers and outsiders and auditors cannot update a project", "[project][update]") {
  const auto state = given_shared();
  const auto r = decide(state, update_project{"Gemini", std::nullopt}, viewer);
  require_error(r, errc::forbidden);
  CHECK(r.error().details.at("role") == "viewer");
  require_error(decide(state, update_project{"Gemini", std::nullopt}, outsider), errc::forbidden);
  require_error(decide(state, update_project{"Gemini", std::nullopt}, auditor), errc::forbidden);
}

TEST_CASE("an update with unchanged values emits nothing", "[project][update]") {
  const auto state = given_shared();
  require_no_events(decide(state, update_project{"Apollo", "to the moon"}, owner));
  require_no_events(decide(state, update_project{std::nullopt, std::nullopt}, editor));
  // Only the changed field yields an event.
  const auto r = decide(state, update_project{"Apollo", "to mars"}, editor);
  REQUIRE(r.has_value());
  CHECK(types_of(*r) == std::vector<std::string>{"project.described"});
}

TEST_CASE("an update validates the new values", "[project][update][validation]") {
  const auto state = given_shared();
  auto r = decide(state, update_project{"  ", std::nullopt}, owner);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "name");
  r = decide(state, update_project{std::string(201, 'n'), std::nullopt}, owner);
  require_error(r, errc::invalid_argument);
  r = decide(state, update_project{std::nullopt, std::string(10001, 'd')}, owner);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "description");
  // A valid name does not rescue an invalid description: nothing is emitted.
  r = decide(state, update_project{"Gemini", std::string(10001, 'd')}, owner);
  require_error(r, errc::invalid_argument);
}

// --- archived projects --------------------------------------------------------------

TEST_CASE("an archived project refuses every change", "[project][archived]") {
  const auto state = given_shared({project_archived{"done"}});
  for (const principal& who : {owner, admin}) {
    INFO("actor: " << who.user_id);
    require_error(decide(state, update_project{"Gemini", std::nullopt}, who), errc::failed_precondition);
    require_error(decide(state, add_member{"u-1", "viewer"}, who), errc::failed_precondition);
    require_error(decide(state, remove_member{"viewer-1"}, who), errc::failed_precondition);
  }
  // A member leaving on their own is a change too.
  require_error(decide(state, remove_member{"viewer-1"}, viewer), errc::failed_precondition);
  require_error(decide(state, remove_member{"editor-1"}, editor), errc::failed_precondition);
}

// --- add member ---------------------------------------------------------------------

TEST_CASE("owners share a project", "[project][members]") {
  const auto state = given_shared();
  for (const char* role : {"viewer", "editor", "owner"}) {
    INFO("role: " << role);
    const auto r = decide(state, add_member{"u-9", role}, owner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"project.member_added"});
    CHECK(r->front().data == json{{"user_id", "u-9"}, {"role", role}});
  }
  SECTION("changing a member's role is another member_added") {
    const auto r = decide(state, add_member{"viewer-1", "editor"}, owner);
    REQUIRE(r.has_value());
    REQUIRE(r->size() == 1);
    CHECK(r->front().data == json{{"user_id", "viewer-1"}, {"role", "editor"}});
  }
  SECTION("admins act as owners") {
    const auto r = decide(state, add_member{"u-9", "viewer"}, admin);
    REQUIRE(r.has_value());
    CHECK(types_of(*r) == std::vector<std::string>{"project.member_added"});
  }
}

TEST_CASE("only owners share a project", "[project][members]") {
  const auto state = given_shared();
  const auto r = decide(state, add_member{"u-9", "viewer"}, editor);
  require_error(r, errc::forbidden);
  CHECK(r.error().details.at("role") == "editor");
  require_error(decide(state, add_member{"u-9", "viewer"}, viewer), errc::forbidden);
  require_error(decide(state, add_member{"u-9", "viewer"}, outsider), errc::forbidden);
  require_error(decide(state, add_member{"outsider-1", "owner"}, outsider), errc::forbidden);
  require_error(decide(state, add_member{"editor-1", "owner"}, editor), errc::forbidden);
}

TEST_CASE("adding a member needs a valid role and user id", "[project][members][validation]") {
  const auto state = given_shared();
  for (const char* bad : {"", "admin", "Owner", "member", "reader"}) {
    INFO("role: '" << bad << "'");
    const auto r = decide(state, add_member{"u-9", bad}, owner);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "role");
  }
  const auto r = decide(state, add_member{"", "viewer"}, owner);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "user_id");
}

TEST_CASE("re-adding a member with the same role emits nothing", "[project][members]") {
  const auto state = given_shared();
  require_no_events(decide(state, add_member{"editor-1", "editor"}, owner));
  require_no_events(decide(state, add_member{"viewer-1", "viewer"}, owner));
  require_no_events(decide(state, add_member{"owner-1", "owner"}, owner));
}

TEST_CASE("the last owner cannot be demoted", "[project][members][owners]") {
  const auto state = given_shared();
  require_error(decide(state, add_member{"owner-1", "editor"}, owner), errc::failed_precondition);
  require_error(decide(state, add_member{"owner-1", "viewer"}, admin), errc::failed_precondition);

  SECTION("but one of two owners can") {
    const auto two = given_shared({project_member_added{"editor-1", "owner"}});
    REQUIRE(two.owner_count() == 2);
    const auto r = decide(two, add_member{"owner-1", "viewer"}, owner);
    REQUIRE(r.has_value());
    CHECK(r->front().data == json{{"user_id", "owner-1"}, {"role", "viewer"}});
  }
}

// --- remove member ------------------------------------------------------------------

TEST_CASE("owners remove members", "[project][members]") {
  const auto state = given_shared();
  for (const principal& who : {owner, admin}) {
    INFO("actor: " << who.user_id);
    const auto r = decide(state, remove_member{"editor-1"}, who);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"project.member_removed"});
    CHECK(r->front().data == json{{"user_id", "editor-1"}});
  }
}

TEST_CASE("only owners remove other members", "[project][members]") {
  const auto state = given_shared();
  require_error(decide(state, remove_member{"viewer-1"}, editor), errc::forbidden);
  require_error(decide(state, remove_member{"editor-1"}, viewer), errc::forbidden);
  require_error(decide(state, remove_member{"viewer-1"}, outsider), errc::forbidden);
  // A non-member cannot "leave" either: there is nothing to leave.
  require_error(decide(state, remove_member{"outsider-1"}, outsider), errc::forbidden);
}

TEST_CASE("a member may leave on their own", "[project][members]") {
  const auto state = given_shared();
  for (const principal& who : {viewer, editor}) {
    INFO("actor: " << who.user_id);
    const auto r = decide(state, remove_member{who.user_id}, who);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"project.member_removed"});
    CHECK(r->front().data == json{{"user_id", who.user_id}});
  }
}

TEST_CASE("the last owner cannot be removed", "[project][members][owners]") {
  const auto state = given_shared();
  require_error(decide(state, remove_member{"owner-1"}, owner), errc::failed_precondition);  // leaving
  require_error(decide(state, remove_member{"owner-1"}, admin), errc::failed_precondition);

  SECTION("but one of two owners can leave") {
    const auto two = given_shared({project_member_added{"editor-1", "owner"}});
    const auto r = decide(two, remove_member{"owner-1"}, owner);
    REQUIRE(r.has_value());
    CHECK(types_of(*r) == std::vector<std::string>{"project.member_removed"});
  }
}

TEST_CASE("removing a non-member is not_found", "[project][members]") {
  const auto state = given_shared();
  auto r = decide(state, remove_member{"stranger"}, owner);
  require_error(r, errc::not_found);
  CHECK(r.error().details.at("user_id") == "stranger");
  r = decide(given_shared({project_member_removed{"viewer-1"}}), remove_member{"viewer-1"}, admin);
  require_error(r, errc::not_found);
}

// --- archive ------------------------------------------------------------------------

TEST_CASE("owners and admins archive a project", "[project][archive]") {
  const auto state = given_shared();
  for (const principal& who : {owner, admin}) {
    INFO("actor: " << who.user_id);
    const auto r = decide(state, archive_project{"shipped"}, who);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"project.archived"});
    CHECK(r->front().data == json{{"reason", "shipped"}});
  }
}

TEST_CASE("only owners archive a project", "[project][archive]") {
  const auto state = given_shared();
  require_error(decide(state, archive_project{"x"}, editor), errc::forbidden);
  require_error(decide(state, archive_project{"x"}, viewer), errc::forbidden);
  require_error(decide(state, archive_project{"x"}, outsider), errc::forbidden);
  require_error(decide(state, archive_project{"x"}, auditor), errc::forbidden);
}

TEST_CASE("archiving twice emits nothing", "[project][archive]") {
  const auto state = given_shared({project_archived{"first"}});
  require_no_events(decide(state, archive_project{"second"}, owner));
  require_no_events(decide(state, archive_project{"second"}, admin));
  // An editor still may not archive, archived or not.
  require_error(decide(state, archive_project{"second"}, editor), errc::forbidden);
}

// --- evolve -------------------------------------------------------------------------

TEST_CASE("evolve folds each project event", "[project][evolve]") {
  project_state s;
  s.version = 3;

  s = evolve(std::move(s), project_created{"p-1", "Apollo", "to the moon", "owner-1"});
  CHECK(s.exists);
  CHECK(s.project_id == "p-1");
  CHECK(s.name == "Apollo");
  CHECK(s.description == "to the moon");
  CHECK(s.created_by == "owner-1");
  CHECK(s.members.empty());  // the owner arrives with the following member_added
  CHECK_FALSE(s.archived);
  CHECK(s.version == 3);  // evolve never touches the version

  s = evolve(std::move(s), project_member_added{"owner-1", "owner"});
  s = evolve(std::move(s), project_member_added{"u-2", "viewer"});
  CHECK(s.members ==
        std::map<std::string, project_role>{{"owner-1", project_role::owner}, {"u-2", project_role::viewer}});
  CHECK(s.owner_count() == 1);

  s = evolve(std::move(s), project_member_added{"u-2", "owner"});
  CHECK(s.members.at("u-2") == project_role::owner);
  CHECK(s.owner_count() == 2);

  s = evolve(std::move(s), project_renamed{"Gemini"});
  CHECK(s.name == "Gemini");
  s = evolve(std::move(s), project_described{"to mars"});
  CHECK(s.description == "to mars");

  s = evolve(std::move(s), project_member_removed{"u-2"});
  CHECK(s.members == std::map<std::string, project_role>{{"owner-1", project_role::owner}});

  s = evolve(std::move(s), project_archived{"done"});
  CHECK(s.archived);
  CHECK(s.name == "Gemini");
  CHECK(s.created_by == "owner-1");
  CHECK(s.version == 3);
}

TEST_CASE("role_of counts admins as owners", "[project][roles]") {
  const auto state = given_shared();
  CHECK(state.role_of(owner) == project_role::owner);
  CHECK(state.role_of(editor) == project_role::editor);
  CHECK(state.role_of(viewer) == project_role::viewer);
  CHECK(state.role_of(outsider) == std::nullopt);
  CHECK(state.role_of(admin) == project_role::owner);
  CHECK(state.owner_count() == 1);  // the admin is not a member
  CHECK(project_stream("p-1") == "project-p-1");
}

TEST_CASE("decided project events fold back into the state they describe", "[project][evolve]") {
  auto fold = [](project_state s, const std::vector<proposed_event>& events) {
    for (const auto& p : events) {
      auto e = decode_event<project_event>(p.type, p.data);
      REQUIRE(e.has_value());
      s = evolve(std::move(s), *e);
    }
    return s;
  };
  auto r = decide(project_state{}, creation(), member("m-1"));
  REQUIRE(r.has_value());
  auto s = fold(project_state{}, *r);
  CHECK(s.exists);
  CHECK(s.members == std::map<std::string, project_role>{{"m-1", project_role::owner}});

  r = decide(s, add_member{"m-2", "editor"}, member("m-1"));
  REQUIRE(r.has_value());
  s = fold(s, *r);
  CHECK(s.role_of(member("m-2")) == project_role::editor);

  r = decide(s, update_project{"Gemini", std::nullopt}, member("m-2"));
  REQUIRE(r.has_value());
  s = fold(s, *r);
  CHECK(s.name == "Gemini");

  r = decide(s, archive_project{"done"}, member("m-1"));
  REQUIRE(r.has_value());
  s = fold(s, *r);
  CHECK(s.archived);
}
