/// The user decider as given events / when command / then events or error.
///
/// The "given" state is always built by folding events with `evolve`, never by
/// filling `user_state` by hand, so these tests also pin what `evolve` does.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/registry.hpp"
#include "events/user/user_decider.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::require_error;
using test::types_of;

/// The state after folding `events` in order; version counts the folded events.
user_state given(const std::vector<user_event>& events) { return test::fold<user_state>(events); }

principal admin(std::string id = "admin-1") { return principal{std::move(id), {global_role::admin}, false}; }
principal member(std::string id = "member-1") { return principal{std::move(id), {global_role::member}, false}; }
principal auditor(std::string id = "auditor-1") { return principal{std::move(id), {global_role::auditor}, false}; }

user_registered registered(std::string id = "alice-id", std::string role = "member") {
  return user_registered{std::move(id), "alice", "alice@example.org", std::move(role), "$argon2id$v=19$hash-1"};
}

register_user registration(std::string username = "alice", std::string email = "alice@example.org",
                           std::string role = "member", std::string hash = "$argon2id$v=19$hash-1") {
  return register_user{"alice-id", std::move(username), std::move(email), std::move(role), std::move(hash)};
}

}  // namespace

// --- register ----------------------------------------------------------------

TEST_CASE("an admin registers a user", "[user][register]") {
  const auto r = decide(user_state{}, registration(), admin());
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"user.registered"});
  const auto& e = r->front();
  CHECK(e.schema == 1);
  CHECK(e.data == json{{"user_id", "alice-id"},
                       {"username", "alice"},
                       {"email", "alice@example.org"},
                       {"role", "member"},
                       {"password_hash", "$argon2id$v=19$hash-1"}});
}

TEST_CASE("the system principal registers the first admin", "[user][register]") {
  const auto r = decide(user_state{}, registration("root", "root@example.org", "admin"), principal::system());
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 1);
  CHECK(r->front().data.at("role") == "admin");
}

TEST_CASE("only admins register users", "[user][register]") {
  require_error(decide(user_state{}, registration(), member()), errc::forbidden);
  require_error(decide(user_state{}, registration(), auditor()), errc::forbidden);
  require_error(decide(user_state{}, registration(), principal{"nobody", {}, false}), errc::forbidden);
}

TEST_CASE("registering an existing user is already_exists", "[user][register]") {
  const auto state = given({registered()});
  const auto r = decide(state, registration("other", "other@example.org"), admin());
  require_error(r, errc::already_exists);
  CHECK(r.error().details.at("user_id") == "alice-id");
}

TEST_CASE("registering needs a user id", "[user][register]") {
  auto c = registration();
  c.user_id.clear();
  require_error(decide(user_state{}, c, admin()), errc::invalid_argument);
}

TEST_CASE("usernames are lowercased and validated", "[user][register][username]") {
  SECTION("uppercase is lowered in the event") {
    const auto r = decide(user_state{}, registration("Alice.Smith_1-X"), admin());
    REQUIRE(r.has_value());
    CHECK(r->front().data.at("username") == "alice.smith_1-x");
  }
  SECTION("3 and 32 characters are the bounds") {
    CHECK(decide(user_state{}, registration("abc"), admin()).has_value());
    CHECK(decide(user_state{}, registration(std::string(32, 'a')), admin()).has_value());
  }
  SECTION("too short") {
    const auto r = decide(user_state{}, registration("ab"), admin());
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "username");
    require_error(decide(user_state{}, registration(""), admin()), errc::invalid_argument);
  }
  SECTION("too long") {
    const auto r = decide(user_state{}, registration(std::string(33, 'a')), admin());
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "username");
  }
  SECTION("characters outside [a-z0-9._-]") {
    for (const char* bad : {"bad name", "bad!", "a/b/c", "al@ce", "caf\xc3\xa9", "tab\tuser", "new\nline"}) {
      INFO("username: " << bad);
      require_error(decide(user_state{}, registration(bad), admin()), errc::invalid_argument);
    }
  }
}

TEST_CASE("normalize_username and the stream names", "[user][username]") {
  const auto name = normalize_username("MiXeD.Case-9_");
  REQUIRE(name.has_value());
  CHECK(*name == "mixed.case-9_");
  CHECK_FALSE(normalize_username("x y").has_value());
  CHECK(username_stream("alice") == "username-alice");
  CHECK(user_stream("0193-abc") == "user-0193-abc");
}

TEST_CASE("emails are validated", "[user][register][email]") {
  SECTION("valid forms pass unchanged") {
    const auto r = decide(user_state{}, registration("alice", "A.Person+tag@Example.org"), admin());
    REQUIRE(r.has_value());
    CHECK(r->front().data.at("email") == "A.Person+tag@Example.org");
    CHECK(decide(user_state{}, registration("alice", "a@b"), admin()).has_value());
  }
  SECTION("254 characters is the longest") {
    const std::string domain = "@example.org";
    const std::string ok = std::string(254 - domain.size(), 'x') + domain;
    REQUIRE(ok.size() == 254);
    CHECK(decide(user_state{}, registration("alice", ok), admin()).has_value());
    const auto r = decide(user_state{}, registration("alice", "x" + ok), admin());
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "email");
  }
  SECTION("malformed") {
    for (const char* bad :
         {"", "no-at-sign", "@example.org", "alice@", "a@b@c", "al ice@example.org", "alice@exa\tmple.org"}) {
      INFO("email: " << bad);
      const auto r = decide(user_state{}, registration("alice", bad), admin());
      require_error(r, errc::invalid_argument);
      CHECK(r.error().details.at("field") == "email");
    }
  }
}

TEST_CASE("roles are validated", "[user][role]") {
  const auto state = given({registered()});
  for (const char* role : {"admin", "member", "auditor"}) {
    INFO("role: " << role);
    CHECK(decide(user_state{}, registration("alice", "alice@example.org", role), admin()).has_value());
  }
  for (const char* bad : {"", "root", "Admin", "owner", " member"}) {
    INFO("role: '" << bad << "'");
    const auto reg = decide(user_state{}, registration("alice", "alice@example.org", bad), admin());
    require_error(reg, errc::invalid_argument);
    CHECK(reg.error().details.at("field") == "role");
    require_error(decide(state, grant_role{bad}, admin()), errc::invalid_argument);
    require_error(decide(state, revoke_role{bad}, admin()), errc::invalid_argument);
  }
}

TEST_CASE("an empty password hash is refused", "[user][password]") {
  require_error(decide(user_state{}, registration("alice", "alice@example.org", "member", ""), admin()),
                errc::invalid_argument);
  const auto state = given({registered()});
  require_error(decide(state, change_password{"", true}, principal{"alice-id", {global_role::member}, false}),
                errc::invalid_argument);
  require_error(decide(state, change_password{""}, admin()), errc::invalid_argument);
}

// --- who may act -----------------------------------------------------------

TEST_CASE("a disabled actor cannot issue any command", "[user][disabled]") {
  principal disabled_admin{"admin-1", {global_role::admin}, true};
  const auto existing = given({registered()});

  SECTION("register") { require_error(decide(user_state{}, registration(), disabled_admin), errc::forbidden); }
  SECTION("grant") { require_error(decide(existing, grant_role{"auditor"}, disabled_admin), errc::forbidden); }
  SECTION("revoke") { require_error(decide(existing, revoke_role{"member"}, disabled_admin), errc::forbidden); }
  SECTION("change password of another") {
    require_error(decide(existing, change_password{"$argon2id$new"}, disabled_admin), errc::forbidden);
  }
  SECTION("change own password") {
    principal self{"alice-id", {global_role::member}, true};
    require_error(decide(existing, change_password{"$argon2id$new"}, self), errc::forbidden);
  }
  SECTION("disable") { require_error(decide(existing, disable_user{"spam"}, disabled_admin), errc::forbidden); }
}

TEST_CASE("commands on a missing user are not_found", "[user][not_found]") {
  const user_state missing;
  require_error(decide(missing, grant_role{"auditor"}, admin()), errc::not_found);
  require_error(decide(missing, revoke_role{"member"}, admin()), errc::not_found);
  require_error(decide(missing, change_password{"$argon2id$new"}, admin()), errc::not_found);
  require_error(decide(missing, disable_user{"spam"}, admin()), errc::not_found);
}

// --- grant / revoke -------------------------------------------------------------

TEST_CASE("admins grant roles and granting a held role emits nothing", "[user][role]") {
  const auto state = given({registered()});
  const auto r = decide(state, grant_role{"auditor"}, admin());
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"user.role_granted"});
  CHECK(r->front().data == json{{"role", "auditor"}});

  const auto again = decide(given({registered(), user_role_granted{"auditor"}}), grant_role{"auditor"}, admin());
  REQUIRE(again.has_value());
  CHECK(again->empty());

  const auto initial = decide(state, grant_role{"member"}, admin());
  REQUIRE(initial.has_value());
  CHECK(initial->empty());
}

TEST_CASE("only admins grant roles", "[user][role]") {
  const auto state = given({registered()});
  require_error(decide(state, grant_role{"admin"}, member()), errc::forbidden);
  require_error(decide(state, grant_role{"admin"}, auditor()), errc::forbidden);
  // Not even to themself.
  require_error(decide(state, grant_role{"admin"}, principal{"alice-id", {global_role::member}, false}),
                errc::forbidden);
}

TEST_CASE("admins revoke roles and revoking a role not held emits nothing", "[user][role]") {
  const auto state = given({registered(), user_role_granted{"auditor"}});
  const auto r = decide(state, revoke_role{"auditor"}, admin());
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"user.role_revoked"});
  CHECK(r->front().data == json{{"role", "auditor"}});

  const auto not_held = decide(given({registered()}), revoke_role{"admin"}, admin());
  REQUIRE(not_held.has_value());
  CHECK(not_held->empty());

  const auto revoked = decide(given({registered(), user_role_granted{"auditor"}, user_role_revoked{"auditor"}}),
                              revoke_role{"auditor"}, admin());
  REQUIRE(revoked.has_value());
  CHECK(revoked->empty());
}

TEST_CASE("only admins revoke roles", "[user][role]") {
  const auto state = given({registered(), user_role_granted{"auditor"}});
  require_error(decide(state, revoke_role{"auditor"}, member()), errc::forbidden);
  require_error(decide(state, revoke_role{"auditor"}, auditor()), errc::forbidden);
}

TEST_CASE("an admin cannot revoke their own admin role", "[user][role]") {
  const auto self_state = given({registered("admin-1", "admin")});
  const auto r = decide(self_state, revoke_role{"admin"}, admin("admin-1"));
  require_error(r, errc::failed_precondition);

  SECTION("but may drop another role of their own") {
    const auto with_member = given({registered("admin-1", "admin"), user_role_granted{"member"}});
    const auto ok = decide(with_member, revoke_role{"member"}, admin("admin-1"));
    REQUIRE(ok.has_value());
    CHECK(types_of(*ok) == std::vector<std::string>{"user.role_revoked"});
  }
  SECTION("and may revoke another admin's admin role") {
    const auto other = given({registered("admin-2", "admin")});
    const auto ok = decide(other, revoke_role{"admin"}, admin("admin-1"));
    REQUIRE(ok.has_value());
    REQUIRE(ok->size() == 1);
    CHECK(ok->front().data == json{{"role", "admin"}});
  }
}

// --- change password ----------------------------------------------------------

TEST_CASE("a user changes their own password", "[user][password]") {
  const auto state = given({registered()});
  const auto r =
      decide(state, change_password{"$argon2id$new", true}, principal{"alice-id", {global_role::member}, false});
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"user.password_changed"});
  CHECK(r->front().data == json{{"password_hash", "$argon2id$new"}});
}

TEST_CASE("changing one's own password needs the current one proven", "[user][password]") {
  const auto state = given({registered()});
  SECTION("a member") {
    const auto r = decide(state, change_password{"$argon2id$new"}, principal{"alice-id", {global_role::member}, false});
    require_error(r, errc::forbidden);
    CHECK(r.error().details.at("field") == "current_password");
  }
  SECTION("an admin changing their own") {
    const auto admin_state = given({registered("admin-1", "admin")});
    require_error(decide(admin_state, change_password{"$argon2id$new"}, admin()), errc::forbidden);
    CHECK(decide(admin_state, change_password{"$argon2id$new", true}, admin()).has_value());
  }
  SECTION("an admin resetting someone else's needs no proof") {
    CHECK(decide(state, change_password{"$argon2id$new", false}, admin()).has_value());
  }
}

TEST_CASE("an admin changes another user's password", "[user][password]") {
  const auto r = decide(given({registered()}), change_password{"$argon2id$new"}, admin());
  REQUIRE(r.has_value());
  CHECK(types_of(*r) == std::vector<std::string>{"user.password_changed"});
}

TEST_CASE("a non-admin cannot change another user's password", "[user][password]") {
  const auto state = given({registered()});
  require_error(decide(state, change_password{"$argon2id$new"}, member("bob-id")), errc::forbidden);
  require_error(decide(state, change_password{"$argon2id$new"}, auditor("carol-id")), errc::forbidden);
}

TEST_CASE("the password of a disabled user cannot change", "[user][password][disabled]") {
  const auto state = given({registered(), user_disabled{"left"}});
  require_error(decide(state, change_password{"$argon2id$new"}, admin()), errc::failed_precondition);
}

// --- disable ------------------------------------------------------------------

TEST_CASE("an admin disables a user", "[user][disable]") {
  const auto r = decide(given({registered()}), disable_user{"left the company"}, admin());
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"user.disabled"});
  CHECK(r->front().data == json{{"reason", "left the company"}});
}

TEST_CASE("only admins disable users", "[user][disable]") {
  const auto state = given({registered()});
  require_error(decide(state, disable_user{"x"}, member()), errc::forbidden);
  require_error(decide(state, disable_user{"x"}, auditor()), errc::forbidden);
  require_error(decide(state, disable_user{"x"}, principal{"alice-id", {global_role::member}, false}), errc::forbidden);
}

TEST_CASE("an admin cannot disable themself", "[user][disable]") {
  const auto state = given({registered("admin-1", "admin")});
  require_error(decide(state, disable_user{"oops"}, admin("admin-1")), errc::failed_precondition);
}

TEST_CASE("disabling twice emits nothing", "[user][disable]") {
  const auto r = decide(given({registered(), user_disabled{"first"}}), disable_user{"second"}, admin());
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

// --- evolve -------------------------------------------------------------------

TEST_CASE("evolve folds each user event", "[user][evolve]") {
  user_state s;
  s.version = 7;

  s = evolve(std::move(s), registered());
  CHECK(s.exists);
  CHECK(s.user_id == "alice-id");
  CHECK(s.username == "alice");
  CHECK(s.email == "alice@example.org");
  CHECK(s.roles == std::set<global_role>{global_role::member});
  CHECK(s.password_hash == "$argon2id$v=19$hash-1");
  CHECK_FALSE(s.disabled);
  CHECK(s.version == 7);  // evolve never touches the version

  s = evolve(std::move(s), user_role_granted{"admin"});
  CHECK(s.roles == std::set<global_role>{global_role::admin, global_role::member});

  s = evolve(std::move(s), user_role_revoked{"member"});
  CHECK(s.roles == std::set<global_role>{global_role::admin});

  s = evolve(std::move(s), user_password_changed{"$argon2id$v=19$hash-2"});
  CHECK(s.password_hash == "$argon2id$v=19$hash-2");

  s = evolve(std::move(s), user_disabled{"left"});
  CHECK(s.disabled);

  // Identity fields are untouched by the later events.
  CHECK(s.user_id == "alice-id");
  CHECK(s.username == "alice");
  CHECK(s.email == "alice@example.org");
  CHECK(s.version == 7);
}

TEST_CASE("decided events fold back into the state they describe", "[user][evolve]") {
  // then-events decode through the registry and evolve to the expected state.
  auto fold = [](user_state s, const std::vector<proposed_event>& events) {
    for (const auto& p : events) {
      auto e = decode_event<user_event>(p.type, p.data);
      REQUIRE(e.has_value());
      s = evolve(std::move(s), *e);
    }
    return s;
  };
  auto r = decide(user_state{}, registration("Bob", "bob@example.org", "auditor"), admin());
  REQUIRE(r.has_value());
  auto s = fold(user_state{}, *r);
  CHECK(s.exists);
  CHECK(s.username == "bob");
  CHECK(s.roles == std::set<global_role>{global_role::auditor});

  r = decide(s, grant_role{"member"}, admin());
  REQUIRE(r.has_value());
  s = fold(s, *r);
  CHECK(s.roles == std::set<global_role>{global_role::auditor, global_role::member});

  r = decide(s, disable_user{"gone"}, admin());
  REQUIRE(r.has_value());
  s = fold(s, *r);
  CHECK(s.disabled);
}

// --- service accounts ----------------------------------------------------------

TEST_CASE("an admin creates a service account: a user of kind service, without a password", "[user][service_account]") {
  const auto r = decide(user_state{}, register_service_account{"bot-id", "CI-Bot", "nightly QC", "member"}, admin());
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"user.service_account_created"});
  CHECK(r->front().data ==
        json{{"user_id", "bot-id"}, {"name", "ci-bot"}, {"description", "nightly QC"}, {"role", "member"}});

  const auto s = given({user_service_account_created{"bot-id", "ci-bot", "nightly QC", "member"}});
  CHECK(s.exists);
  CHECK(s.is_service());
  CHECK(s.username == "ci-bot");
  CHECK(s.password_hash.empty());
  CHECK(s.roles == std::set<global_role>{global_role::member});
  CHECK_FALSE(given({registered()}).is_service());
}

TEST_CASE("service accounts: only admins, valid names and roles, no password, disabled like users",
          "[user][service_account]") {
  const register_service_account ok{"bot-id", "ci-bot", "", "member"};
  require_error(decide(user_state{}, ok, member()), errc::forbidden);
  require_error(decide(user_state{}, ok, auditor()), errc::forbidden);
  require_error(decide(user_state{}, register_service_account{"bot-id", "no spaces", "", "member"}, admin()),
                errc::invalid_argument);
  require_error(decide(user_state{}, register_service_account{"bot-id", "ci-bot", "", "king"}, admin()),
                errc::invalid_argument);
  require_error(
      decide(user_state{}, register_service_account{"bot-id", "ci-bot", std::string(1001, 'd'), "member"}, admin()),
      errc::invalid_argument);
  require_error(decide(user_state{}, register_service_account{"bot-id", "ci-bot", "a\x01", "member"}, admin()),
                errc::invalid_argument);
  const auto s = given({user_service_account_created{"bot-id", "ci-bot", "", "member"}});
  require_error(decide(s, ok, admin()), errc::already_exists);
  require_error(decide(s, change_password{"$argon2id$x"}, admin()), errc::failed_precondition);
  const auto r = decide(s, disable_user{"retired"}, admin());
  REQUIRE(r.has_value());
  CHECK(types_of(*r) == std::vector<std::string>{"user.disabled"});
}
