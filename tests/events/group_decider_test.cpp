/// The group decider as given events / when command / then events or error.
///
/// The cast: `creator-1` (a global member who created group `g-1`), `outsider-1` (a
/// global member with no say over `g-1`), `admin-1` (global admin, manages every group),
/// `auditor-1`.

#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/group/group_decider.hpp"
#include "events/registry.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::require_error;
using test::types_of;

group_state given(const std::vector<group_event>& events) { return test::fold<group_state>(events); }

principal member(std::string id) { return principal{std::move(id), {global_role::member}, false}; }
const principal creator = member("creator-1");
const principal outsider = member("outsider-1");
const principal admin{"admin-1", {global_role::admin}, false};
const principal auditor{"auditor-1", {global_role::auditor}, false};

/// Group g-1 created by creator-1 with user alice and group g-2 as members.
group_state given_group(std::vector<group_event> more = {}) {
  std::vector<group_event> events{group_created{"g-1", "Analysts", "the data team", "creator-1"},
                                  group_member_added{"user", "alice"}, group_member_added{"group", "g-2"}};
  events.insert(events.end(), more.begin(), more.end());
  return given(events);
}

template <class T>
void require_no_events(const result<T>& r) {
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

create_group creation(std::string name = "Analysts", std::string description = "the data team") {
  return create_group{"g-1", std::move(name), std::move(description)};
}

}  // namespace

// --- create -----------------------------------------------------------------------

TEST_CASE("group: a member creates a group", "[group][create]") {
  const auto r = decide(group_state{}, creation(), member("m-1"));
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"group.created", "group.member_added"});
  CHECK((*r)[0].data ==
        json{{"group_id", "g-1"}, {"name", "Analysts"}, {"description", "the data team"}, {"created_by", "m-1"}});
  CHECK((*r)[1].data == json{{"member_type", "user"}, {"member_id", "m-1"}});
  CHECK(group_stream("g-1") == "group-g-1");
}

TEST_CASE("group: an admin creates a group", "[group][create]") {
  const auto r = decide(group_state{}, creation(), admin);
  REQUIRE(r.has_value());
  CHECK((*r)[0].data.at("created_by") == "admin-1");
}

TEST_CASE("group: auditors and role-less or disabled users cannot create groups", "[group][create]") {
  require_error(decide(group_state{}, creation(), auditor), errc::forbidden);
  require_error(decide(group_state{}, creation(), principal{"nobody", {}, false}), errc::forbidden);
  require_error(decide(group_state{}, creation(), principal{"m-1", {global_role::member}, true}), errc::forbidden);
  require_error(decide(group_state{}, creation(), principal{"a-1", {global_role::admin}, true}), errc::forbidden);
}

TEST_CASE("group: creating an existing group is already_exists", "[group][create]") {
  require_error(decide(given_group(), creation("Other"), member("m-2")), errc::already_exists);
  require_error(decide(given_group(), creation("Other"), admin), errc::already_exists);
}

TEST_CASE("group: group ids, names and descriptions are validated", "[group][create][validation]") {
  SECTION("blank, empty or too long names") {
    for (const std::string& bad : {std::string(""), std::string(" "), std::string("\t\n"), std::string(201, 'n')}) {
      INFO("name: '" << bad << "'");
      const auto r = decide(group_state{}, creation(bad), creator);
      require_error(r, errc::invalid_argument);
      CHECK(r.error().details.at("field") == "name");
    }
    CHECK(decide(group_state{}, creation("x"), creator).has_value());
    CHECK(decide(group_state{}, creation(std::string(200, 'n')), creator).has_value());
  }
  SECTION("descriptions of up to 10000 characters pass; 10001 is too long") {
    CHECK(decide(group_state{}, creation("Analysts", ""), creator).has_value());
    CHECK(decide(group_state{}, creation("Analysts", std::string(10000, 'd')), creator).has_value());
    const auto r = decide(group_state{}, creation("Analysts", std::string(10001, 'd')), creator);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "description");
  }
  SECTION("an empty or malformed group id") {
    for (const char* bad : {"", "a/b", "a b"}) {
      INFO("group_id: '" << bad << "'");
      create_group c = creation();
      c.group_id = bad;
      const auto r = decide(group_state{}, c, creator);
      require_error(r, errc::invalid_argument);
      CHECK(r.error().details.at("field") == "group_id");
    }
  }
}

// --- missing group, disabled actors -------------------------------------------------

TEST_CASE("group: commands on a missing group are not_found", "[group][not_found]") {
  const group_state missing;
  require_error(decide(missing, add_group_member{"user", "alice", {}}, admin), errc::not_found);
  require_error(decide(missing, remove_group_member{"user", "alice"}, admin), errc::not_found);
}

TEST_CASE("group: a disabled creator cannot change members", "[group][disabled]") {
  const principal disabled_creator{"creator-1", {global_role::member}, true};
  require_error(decide(given_group(), add_group_member{"user", "bob", {}}, disabled_creator), errc::forbidden);
  require_error(decide(given_group(), remove_group_member{"user", "alice"}, disabled_creator), errc::forbidden);
}

// --- who manages --------------------------------------------------------------------

TEST_CASE("group: admins and the creator manage a group, nobody else does", "[group][manage]") {
  const auto state = given_group();
  CHECK(state.manages(creator));
  CHECK(state.manages(admin));
  CHECK_FALSE(state.manages(outsider));
  CHECK_FALSE(state.manages(auditor));
  // Being a member of the group is not managing it.
  CHECK_FALSE(state.manages(member("alice")));
  CHECK_FALSE(group_state{}.manages(principal{"", {global_role::member}, false}));

  for (const principal& who : {outsider, auditor, member("alice")}) {
    INFO("actor: " << who.user_id);
    require_error(decide(state, add_group_member{"user", "bob", {}}, who), errc::forbidden);
    require_error(decide(state, remove_group_member{"user", "alice"}, who), errc::forbidden);
  }
}

// --- add member -----------------------------------------------------------------------

TEST_CASE("group: managers add users and groups", "[group][members]") {
  const auto state = given_group();
  for (const principal& who : {creator, admin}) {
    INFO("actor: " << who.user_id);
    auto r = decide(state, add_group_member{"user", "bob", {}}, who);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"group.member_added"});
    CHECK(r->front().data == json{{"member_type", "user"}, {"member_id", "bob"}});

    r = decide(state, add_group_member{"group", "g-3", {"g-4", "g-5"}}, who);
    REQUIRE(r.has_value());
    CHECK(r->front().data == json{{"member_type", "group"}, {"member_id", "g-3"}});
  }
}

TEST_CASE("group: adding a member needs a valid type and id", "[group][members][validation]") {
  const auto state = given_group();
  for (const char* bad : {"", "users", "User", "project"}) {
    INFO("member_type: '" << bad << "'");
    const auto r = decide(state, add_group_member{bad, "bob", {}}, creator);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "member_type");
  }
  for (const std::string& bad : {std::string(""), std::string("a/b"), std::string("a b"), std::string(129, 'x')}) {
    INFO("member_id: '" << bad << "'");
    const auto r = decide(state, add_group_member{"user", bad, {}}, creator);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "member_id");
  }
  const auto r = decide(state, remove_group_member{"robot", "alice"}, creator);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "member_type");
}

TEST_CASE("group: a group cannot contain itself", "[group][members][cycle]") {
  const auto r = decide(given_group(), add_group_member{"group", "g-1", {}}, admin);
  require_error(r, errc::failed_precondition);
  CHECK(r.error().message == "a group cannot contain itself");
  // A user whose id happens to equal the group's id is just a user.
  CHECK(decide(given_group(), add_group_member{"user", "g-1", {}}, admin).has_value());
}

TEST_CASE("group: adding a group that already contains this group is a cycle", "[group][members][cycle]") {
  // g-9 contains g-8 which contains g-1: adding g-9 to g-1 would close g-1 → g-9 → g-8 → g-1.
  const auto r = decide(given_group(), add_group_member{"group", "g-9", {"g-8", "g-1", "g-7"}}, creator);
  require_error(r, errc::failed_precondition);
  CHECK(r.error().details == json{{"cycle_through", "g-9"}});
  CHECK(r.error().message.find("cycle") != std::string::npos);
  // The same group with a nesting that does not reach g-1 is fine.
  CHECK(decide(given_group(), add_group_member{"group", "g-9", {"g-8", "g-7"}}, creator).has_value());
}

TEST_CASE("group: adding an existing member emits nothing", "[group][members]") {
  require_no_events(decide(given_group(), add_group_member{"user", "alice", {}}, creator));
  require_no_events(decide(given_group(), add_group_member{"group", "g-2", {"g-3"}}, admin));
  // The same id with the other type is a different member.
  const auto r = decide(given_group(), add_group_member{"group", "alice", {}}, creator);
  REQUIRE(r.has_value());
  CHECK(r->size() == 1);
}

// --- remove member --------------------------------------------------------------------

TEST_CASE("group: managers remove members", "[group][members]") {
  for (const principal& who : {creator, admin}) {
    INFO("actor: " << who.user_id);
    auto r = decide(given_group(), remove_group_member{"user", "alice"}, who);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"group.member_removed"});
    CHECK(r->front().data == json{{"member_type", "user"}, {"member_id", "alice"}});
    r = decide(given_group(), remove_group_member{"group", "g-2"}, who);
    REQUIRE(r.has_value());
    CHECK(r->front().data == json{{"member_type", "group"}, {"member_id", "g-2"}});
  }
}

TEST_CASE("group: removing a non-member is not_found", "[group][members]") {
  auto r = decide(given_group(), remove_group_member{"user", "bob"}, creator);
  require_error(r, errc::not_found);
  CHECK(r.error().details == json{{"member_type", "user"}, {"member_id", "bob"}});
  require_error(decide(given_group(), remove_group_member{"group", "alice"}, creator), errc::not_found);
  require_error(decide(given_group(), remove_group_member{"user", "g-2"}, creator), errc::not_found);
  // Gone once removed.
  require_error(
      decide(given_group({group_member_removed{"user", "alice"}}), remove_group_member{"user", "alice"}, creator),
      errc::not_found);
}

// --- evolve -----------------------------------------------------------------------------

TEST_CASE("group: evolve folds the group's events", "[group][evolve]") {
  auto s = given_group();
  CHECK(s.exists);
  CHECK(s.group_id == "g-1");
  CHECK(s.name == "Analysts");
  CHECK(s.description == "the data team");
  CHECK(s.created_by == "creator-1");
  CHECK(s.users == std::set<std::string>{"alice"});
  CHECK(s.groups == std::set<std::string>{"g-2"});
  CHECK(s.version == 3);

  s = evolve(s, group_member_added{"user", "bob"});
  s = evolve(s, group_member_removed{"user", "alice"});
  s = evolve(s, group_member_removed{"group", "g-2"});
  CHECK(s.users == std::set<std::string>{"bob"});
  CHECK(s.groups.empty());
  CHECK(s.version == 3);  // evolve does not count
}

TEST_CASE("group: group events round-trip through JSON and the registry", "[group][codec]") {
  const group_event e = group_member_added{"group", "g-2"};
  const auto proposed = make_event(std::get<group_member_added>(e));
  const auto decoded = decode_event<group_event>(proposed.type, proposed.data);
  REQUIRE(decoded.has_value());
  CHECK(std::get<group_member_added>(*decoded).member_id == "g-2");
  for (const char* type : {"group.created", "group.member_added", "group.member_removed"}) {
    INFO(type);
    const auto* info = find_event_type(type);
    REQUIRE(info != nullptr);
    CHECK(info->entity == "group");
    CHECK(info->schema == 1);
    CHECK(info->redacted.empty());
  }
  CHECK_FALSE(decode_event<group_event>("group.created", json{{"group_id", 1}}).has_value());
}
