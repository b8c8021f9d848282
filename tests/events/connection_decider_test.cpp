/// The connection decider and the connection spec validator, as given events / when
/// command / then events or error.
///
/// The cast on connection `c-1` (postgres, created by `owner-1`): `owner-1` (direct
/// owner), `user-1` (direct user), group `team` (granted user), `outsider-1` (a global
/// member with no grant), `admin-1` (global admin, acts as owner), `auditor-1`.

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/connection/connection_decider.hpp"
#include "events/registry.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::require_error;
using test::types_of;

connection_state given(const std::vector<connection_event>& events) { return test::fold<connection_state>(events); }

principal member(std::string id, std::set<std::string> groups = {}) {
  return principal{std::move(id), {global_role::member}, false, std::move(groups)};
}
const principal owner = member("owner-1");
const principal user = member("user-1");
const principal outsider = member("outsider-1");
const principal admin{"admin-1", {global_role::admin}, false};
const principal auditor{"auditor-1", {global_role::auditor}, false};

const json pg_params{{"host", "db.example.org"}, {"port", 5432}, {"database", "sales"}, {"sslmode", "prefer"}};

/// c-1 created by owner-1 and shared with user-1 and group `team` as users.
connection_state given_shared(std::vector<connection_event> more = {}) {
  std::vector<connection_event> events{
      connection_created{"c-1", "Warehouse", "postgres", pg_params, "vault:aaa", "b2:111", "owner-1"},
      connection_access_granted{"user", "owner-1", "owner"}, connection_access_granted{"user", "user-1", "user"},
      connection_access_granted{"group", "team", "user"}};
  events.insert(events.end(), more.begin(), more.end());
  return given(events);
}

template <class T>
void require_no_events(const result<T>& r) {
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

create_connection creation(std::string name = "Warehouse") {
  return create_connection{
      "c-1", std::move(name), "postgres", {{"host", "db.example.org"}, {"database", "sales"}}, "vault:aaa", "b2:111"};
}

/// Requires an `invalid_argument` naming `field`.
template <class T>
void require_field_error(const result<T>& r, const std::string& field) {
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == field);
}

}  // namespace

// --- roles ------------------------------------------------------------------------

TEST_CASE("connection: connection roles print and parse", "[connection][roles]") {
  CHECK(to_string(connection_role::user) == "user");
  CHECK(to_string(connection_role::owner) == "owner");
  CHECK(parse_connection_role("user") == connection_role::user);
  CHECK(parse_connection_role("owner") == connection_role::owner);
  CHECK_FALSE(parse_connection_role("Owner").has_value());
  CHECK_FALSE(parse_connection_role("viewer").has_value());
  CHECK(connection_role::user < connection_role::owner);
}

TEST_CASE("connection: role_of is the most permissive of the user's and their groups' grants", "[connection][roles]") {
  const auto state = given_shared({connection_access_granted{"group", "ops", "owner"}});
  CHECK(state.role_of(admin) == connection_role::owner);
  CHECK(state.role_of(owner) == connection_role::owner);
  CHECK(state.role_of(user) == connection_role::user);
  CHECK_FALSE(state.role_of(outsider).has_value());
  CHECK_FALSE(state.role_of(auditor).has_value());
  // Through a group only.
  CHECK(state.role_of(member("bob", {"team"})) == connection_role::user);
  CHECK(state.role_of(member("carol", {"ops"})) == connection_role::owner);
  CHECK_FALSE(state.role_of(member("dave", {"other", "g-9"})).has_value());
  // The group grant wins over a weaker direct grant, and the other way round.
  CHECK(state.role_of(member("user-1", {"ops"})) == connection_role::owner);
  CHECK(state.role_of(member("owner-1", {"team"})) == connection_role::owner);
  CHECK(state.role_of(member("erin", {"team", "ops"})) == connection_role::owner);

  CHECK(state.can_use(user));
  CHECK(state.can_use(member("bob", {"team"})));
  CHECK(state.can_use(admin));
  CHECK_FALSE(state.can_use(outsider));
  CHECK(state.owner_count() == 1);  // group owners are not counted
}

TEST_CASE("connection: nobody has a role on a missing or deleted connection", "[connection][roles]") {
  CHECK_FALSE(connection_state{}.role_of(admin).has_value());
  const auto deleted = given_shared({connection_deleted{}});
  CHECK_FALSE(deleted.role_of(admin).has_value());
  CHECK_FALSE(deleted.role_of(owner).has_value());
  CHECK_FALSE(deleted.can_use(user));
}

// --- create -------------------------------------------------------------------------

TEST_CASE("connection: a member creates a connection and becomes its owner", "[connection][create]") {
  const auto r = decide(connection_state{}, creation(), member("m-1"));
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"connection.created", "connection.access_granted"});
  CHECK((*r)[0].data == json{{"connection_id", "c-1"},
                             {"name", "Warehouse"},
                             {"driver", "postgres"},
                             {"params", pg_params},  // defaults filled in
                             {"vault_ref", "vault:aaa"},
                             {"fingerprint", "b2:111"},
                             {"created_by", "m-1"}});
  CHECK((*r)[1].data == json{{"grantee_type", "user"}, {"grantee_id", "m-1"}, {"role", "owner"}});
  CHECK(connection_stream("c-1") == "connection-c-1");
}

TEST_CASE("connection: an admin creates a sqlite connection", "[connection][create]") {
  const create_connection c{"c-2", "Local", "sqlite", {{"path", "/var/lib/data.db"}}, "", ""};
  const auto r = decide(connection_state{}, c, admin);
  REQUIRE(r.has_value());
  CHECK((*r)[0].data.at("params") == json{{"path", "/var/lib/data.db"}});
  CHECK((*r)[1].data.at("grantee_id") == "admin-1");
}

TEST_CASE("connection: no event of a created connection carries credentials", "[connection][create][secrets]") {
  const json credentials{{"user", "reporter"}, {"password", "s3cr3t-pa55"}};
  REQUIRE(validate_connection_spec("postgres", creation().params, credentials).has_value());
  const auto r = decide(connection_state{}, creation(), owner);
  REQUIRE(r.has_value());
  for (const auto& e : *r) {
    INFO(e.type);
    CHECK_FALSE(e.data.contains("credentials"));
    CHECK_FALSE(e.data.contains("password"));
    CHECK_FALSE(e.data.value("params", json::object()).contains("password"));
    CHECK(e.data.dump().find("s3cr3t-pa55") == std::string::npos);
  }
}

TEST_CASE("connection: auditors and role-less or disabled users cannot create connections", "[connection][create]") {
  require_error(decide(connection_state{}, creation(), auditor), errc::forbidden);
  require_error(decide(connection_state{}, creation(), principal{"nobody", {}, false}), errc::forbidden);
  require_error(decide(connection_state{}, creation(), principal{"m-1", {global_role::member}, true}), errc::forbidden);
  require_error(decide(connection_state{}, creation(), principal{"a-1", {global_role::admin}, true}), errc::forbidden);
}

TEST_CASE("connection: creating an existing connection is already_exists, deleted or not", "[connection][create]") {
  require_error(decide(given_shared(), creation("Other"), admin), errc::already_exists);
  require_error(decide(given_shared({connection_deleted{}}), creation("Other"), admin), errc::already_exists);
}

TEST_CASE("connection: a create validates id, name, driver, params and references",
          "[connection][create][validation]") {
  SECTION("id") {
    for (const char* bad : {"", "a/b", "a b"}) {
      auto c = creation();
      c.connection_id = bad;
      require_field_error(decide(connection_state{}, c, owner), "connection_id");
    }
  }
  SECTION("name") {
    for (const std::string& bad : {std::string(""), std::string("  "), std::string(201, 'n')}) {
      require_field_error(decide(connection_state{}, creation(bad), owner), "name");
    }
    CHECK(decide(connection_state{}, creation(std::string(200, 'n')), owner).has_value());
  }
  SECTION("driver") {
    auto c = creation();
    c.driver = "mysql";
    require_field_error(decide(connection_state{}, c, owner), "driver");
  }
  SECTION("params") {
    auto c = creation();
    c.params["user"] = "reporter";  // credentials do not belong in params
    require_field_error(decide(connection_state{}, c, owner), "params.user");
    c = creation();
    c.params.erase("host");
    require_field_error(decide(connection_state{}, c, owner), "params.host");
    c = creation();
    c.params = json::array();
    require_field_error(decide(connection_state{}, c, owner), "params");
  }
  SECTION("vault reference and fingerprint") {
    auto c = creation();
    c.vault_ref = std::string(1025, 'v');
    require_field_error(decide(connection_state{}, c, owner), "vault_ref");
    c = creation();
    c.fingerprint = std::string(1025, 'f');
    require_field_error(decide(connection_state{}, c, owner), "fingerprint");
  }
}

// --- missing and deleted connections, disabled actors --------------------------------

TEST_CASE("connection: commands on a missing or deleted connection are not_found", "[connection][not_found]") {
  for (const auto& state : {connection_state{}, given_shared({connection_deleted{}})}) {
    INFO("deleted: " << state.deleted);
    for (const principal& who : {admin, owner}) {
      require_error(decide(state, update_connection{"New", std::nullopt}, who), errc::not_found);
      require_error(decide(state, rotate_credentials{"vault:bbb", "b2:222"}, who), errc::not_found);
      require_error(decide(state, record_test{true, "", 5}, who), errc::not_found);
      require_error(decide(state, grant_connection_access{"user", "u-9", "user"}, who), errc::not_found);
      require_error(decide(state, revoke_connection_access{"user", "user-1"}, who), errc::not_found);
      require_error(decide(state, delete_connection{}, who), errc::not_found);
    }
  }
}

TEST_CASE("connection: a disabled owner cannot act on the connection", "[connection][disabled]") {
  const auto state = given_shared();
  const principal disabled_owner{"owner-1", {global_role::member}, true};
  require_error(decide(state, update_connection{"New", std::nullopt}, disabled_owner), errc::forbidden);
  require_error(decide(state, rotate_credentials{"vault:bbb", "b2:222"}, disabled_owner), errc::forbidden);
  require_error(decide(state, record_test{true, "", 5}, disabled_owner), errc::forbidden);
  require_error(decide(state, grant_connection_access{"user", "u-9", "user"}, disabled_owner), errc::forbidden);
  require_error(decide(state, revoke_connection_access{"user", "user-1"}, disabled_owner), errc::forbidden);
  require_error(decide(state, delete_connection{}, disabled_owner), errc::forbidden);
}

// --- owners only ----------------------------------------------------------------------

TEST_CASE("connection: users, outsiders and auditors cannot change a connection", "[connection][forbidden]") {
  const auto state = given_shared();
  for (const principal& who : {user, member("bob", {"team"}), outsider, auditor}) {
    INFO("actor: " << who.user_id);
    require_error(decide(state, update_connection{"New", std::nullopt}, who), errc::forbidden);
    require_error(decide(state, rotate_credentials{"vault:bbb", "b2:222"}, who), errc::forbidden);
    require_error(decide(state, grant_connection_access{"user", "u-9", "user"}, who), errc::forbidden);
    require_error(decide(state, revoke_connection_access{"group", "team"}, who), errc::forbidden);
    require_error(decide(state, delete_connection{}, who), errc::forbidden);
  }
  const auto r = decide(state, update_connection{"New", std::nullopt}, user);
  CHECK(r.error().details.at("role") == "user");
}

// --- update ---------------------------------------------------------------------------

TEST_CASE("connection: owners update a connection with the full merged values", "[connection][update]") {
  const auto state = given_shared({connection_access_granted{"group", "ops", "owner"}});
  SECTION("a rename keeps the params") {
    const auto r = decide(state, update_connection{"Lake", std::nullopt}, owner);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"connection.updated"});
    CHECK(r->front().data == json{{"name", "Lake"}, {"params", pg_params}});
  }
  SECTION("new params replace the old ones, normalized") {
    const auto r =
        decide(state, update_connection{std::nullopt, json{{"host", "10.0.0.7"}, {"database", "crm"}}}, admin);
    REQUIRE(r.has_value());
    CHECK(r->front().data ==
          json{{"name", "Warehouse"},
               {"params", {{"host", "10.0.0.7"}, {"port", 5432}, {"database", "crm"}, {"sslmode", "prefer"}}}});
  }
  SECTION("an owner through a group updates") {
    const auto r = decide(state, update_connection{"Lake", std::nullopt}, member("carol", {"ops"}));
    REQUIRE(r.has_value());
    CHECK(r->size() == 1);
  }
}

TEST_CASE("connection: an update that changes nothing emits nothing", "[connection][update]") {
  const auto state = given_shared();
  require_no_events(decide(state, update_connection{std::nullopt, std::nullopt}, owner));
  require_no_events(decide(state, update_connection{"Warehouse", pg_params}, owner));
  // Params equal to the current ones once the defaults are filled in.
  require_no_events(
      decide(state, update_connection{std::nullopt, json{{"host", "db.example.org"}, {"database", "sales"}}}, owner));
}

TEST_CASE("connection: an update validates the new values against the connection's driver",
          "[connection][update][validation]") {
  const auto state = given_shared();
  require_field_error(decide(state, update_connection{" ", std::nullopt}, owner), "name");
  require_field_error(decide(state, update_connection{std::nullopt, json{{"path", "/tmp/x.db"}}}, owner),
                      "params.path");
  require_field_error(
      decide(state, update_connection{"Lake", json{{"host", "db"}, {"database", "d"}, {"port", 0}}}, owner),
      "params.port");
}

// --- rotate -----------------------------------------------------------------------------

TEST_CASE("connection: owners rotate credentials, the same fingerprint is a no-op", "[connection][rotate]") {
  const auto state = given_shared();
  const auto r = decide(state, rotate_credentials{"vault:bbb", "b2:222"}, owner);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"connection.credentials_rotated"});
  CHECK(r->front().data == json{{"vault_ref", "vault:bbb"}, {"fingerprint", "b2:222"}});
  // The vault hands out a new ref for every seal; equal credentials keep their fingerprint.
  require_no_events(decide(state, rotate_credentials{"vault:ccc", "b2:111"}, owner));
  require_field_error(decide(state, rotate_credentials{std::string(1025, 'v'), "b2:3"}, owner), "vault_ref");
}

// --- record test --------------------------------------------------------------------------

TEST_CASE("connection: anyone who can use a connection records a test", "[connection][test]") {
  const auto state = given_shared();
  for (const principal& who : {owner, user, member("bob", {"team"}), admin}) {
    INFO("actor: " << who.user_id);
    const auto r = decide(state, record_test{true, "", 12}, who);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"connection.tested"});
    CHECK(r->front().data == json{{"ok", true}, {"error", ""}, {"latency_ms", 12}});
  }
  const auto r = decide(state, record_test{false, "connection refused", 3001}, user);
  REQUIRE(r.has_value());
  CHECK(r->front().data == json{{"ok", false}, {"error", "connection refused"}, {"latency_ms", 3001}});

  require_error(decide(state, record_test{true, "", 12}, outsider), errc::forbidden);
  require_error(decide(state, record_test{true, "", 12}, auditor), errc::forbidden);
}

TEST_CASE("connection: a test error is consistent and bounded", "[connection][test][validation]") {
  const auto state = given_shared();
  require_field_error(decide(state, record_test{true, "but also an error", 1}, owner), "error");
  // Cut to 4096 bytes without splitting the 2-byte "é" that straddles the limit.
  const std::string long_error = std::string(4095, 'x') + "\xC3\xA9" + std::string(100, 'y');
  const auto r = decide(state, record_test{false, long_error, 1}, owner);
  REQUIRE(r.has_value());
  const auto error = r->front().data.at("error").get<std::string>();
  CHECK(error == std::string(4095, 'x'));
  CHECK_NOTHROW(r->front().data.dump());
  const auto exact = decide(state, record_test{false, std::string(4096, 'z'), 1}, owner);
  CHECK(exact->front().data.at("error").get<std::string>().size() == 4096);
}

// --- grant ----------------------------------------------------------------------------------

TEST_CASE("connection: owners share a connection with users and groups", "[connection][grant]") {
  const auto state = given_shared();
  for (const char* type : {"user", "group"}) {
    for (const char* role : {"user", "owner"}) {
      INFO(type << " " << role);
      const auto r = decide(state, grant_connection_access{type, "x-9", role}, owner);
      REQUIRE(r.has_value());
      REQUIRE(types_of(*r) == std::vector<std::string>{"connection.access_granted"});
      CHECK(r->front().data == json{{"grantee_type", type}, {"grantee_id", "x-9"}, {"role", role}});
    }
  }
  SECTION("changing a role is another access_granted") {
    const auto r = decide(state, grant_connection_access{"group", "team", "owner"}, admin);
    REQUIRE(r.has_value());
    CHECK(r->front().data.at("role") == "owner");
  }
}

TEST_CASE("connection: granting the role already held emits nothing", "[connection][grant]") {
  const auto state = given_shared();
  require_no_events(decide(state, grant_connection_access{"user", "user-1", "user"}, owner));
  require_no_events(decide(state, grant_connection_access{"group", "team", "user"}, owner));
  require_no_events(decide(state, grant_connection_access{"user", "owner-1", "owner"}, owner));
}

TEST_CASE("connection: a grant needs a valid grantee and role", "[connection][grant][validation]") {
  const auto state = given_shared();
  require_field_error(decide(state, grant_connection_access{"project", "p-1", "user"}, owner), "grantee_type");
  require_field_error(decide(state, grant_connection_access{"user", "", "user"}, owner), "grantee_id");
  require_field_error(decide(state, grant_connection_access{"user", "a/b", "user"}, owner), "grantee_id");
  for (const char* bad : {"", "viewer", "Owner", "admin"}) {
    require_field_error(decide(state, grant_connection_access{"user", "u-9", bad}, owner), "role");
  }
}

TEST_CASE("connection: the last direct user owner cannot be demoted", "[connection][grant][owners]") {
  // A group owner does not count: someone must hold ownership as a person.
  const auto state = given_shared({connection_access_granted{"group", "ops", "owner"}});
  require_error(decide(state, grant_connection_access{"user", "owner-1", "user"}, owner), errc::failed_precondition);
  const auto two = given_shared({connection_access_granted{"user", "user-1", "owner"}});
  const auto r = decide(two, grant_connection_access{"user", "owner-1", "user"}, owner);
  REQUIRE(r.has_value());
  CHECK(r->size() == 1);
}

// --- revoke ----------------------------------------------------------------------------------

TEST_CASE("connection: owners revoke grants", "[connection][revoke]") {
  const auto state = given_shared();
  auto r = decide(state, revoke_connection_access{"user", "user-1"}, owner);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"connection.access_revoked"});
  CHECK(r->front().data == json{{"grantee_type", "user"}, {"grantee_id", "user-1"}});
  r = decide(state, revoke_connection_access{"group", "team"}, admin);
  REQUIRE(r.has_value());
  CHECK(r->front().data == json{{"grantee_type", "group"}, {"grantee_id", "team"}});
}

TEST_CASE("connection: revoking a grant that does not exist is not_found", "[connection][revoke]") {
  const auto state = given_shared();
  const auto r = decide(state, revoke_connection_access{"user", "outsider-1"}, owner);
  require_error(r, errc::not_found);
  CHECK(r.error().details == json{{"grantee_type", "user"}, {"grantee_id", "outsider-1"}});
  // A user grant is not a group grant of the same id.
  require_error(decide(state, revoke_connection_access{"group", "user-1"}, owner), errc::not_found);
  require_error(decide(state, revoke_connection_access{"user", "team"}, owner), errc::not_found);
  require_field_error(decide(state, revoke_connection_access{"robot", "team"}, owner), "grantee_type");
}

TEST_CASE("connection: the last direct user owner cannot be revoked", "[connection][revoke][owners]") {
  const auto state = given_shared({connection_access_granted{"group", "ops", "owner"}});
  require_error(decide(state, revoke_connection_access{"user", "owner-1"}, owner), errc::failed_precondition);
  require_error(decide(state, revoke_connection_access{"user", "owner-1"}, admin), errc::failed_precondition);
  // The owning group can go.
  CHECK(decide(state, revoke_connection_access{"group", "ops"}, owner).has_value());
  // With a second owner, the first can go.
  const auto two = given_shared({connection_access_granted{"user", "user-1", "owner"}});
  CHECK(decide(two, revoke_connection_access{"user", "owner-1"}, owner).has_value());
}

// --- delete -----------------------------------------------------------------------------------

TEST_CASE("connection: owners delete a connection, then it is gone", "[connection][delete]") {
  const auto state = given_shared();
  for (const principal& who : {owner, admin}) {
    const auto r = decide(state, delete_connection{}, who);
    REQUIRE(r.has_value());
    REQUIRE(types_of(*r) == std::vector<std::string>{"connection.deleted"});
    CHECK(r->front().data == json::object());
  }
  const auto deleted = given_shared({connection_deleted{}});
  CHECK(deleted.deleted);
  require_error(decide(deleted, delete_connection{}, owner), errc::not_found);
}

// --- evolve and codec ---------------------------------------------------------------------------

TEST_CASE("connection: evolve folds the connection's events", "[connection][evolve]") {
  auto s =
      given_shared({connection_updated{"Lake", json{{"host", "h"}, {"port", 1}, {"database", "d"}}},
                    connection_credentials_rotated{"vault:bbb", "b2:222"}, connection_tested{false, "boom", 7},
                    connection_access_revoked{"group", "team"}, connection_access_granted{"group", "ops", "owner"}});
  CHECK(s.exists);
  CHECK_FALSE(s.deleted);
  CHECK(s.connection_id == "c-1");
  CHECK(s.name == "Lake");
  CHECK(s.driver == "postgres");
  CHECK(s.params == json{{"host", "h"}, {"port", 1}, {"database", "d"}});
  CHECK(s.vault_ref == "vault:bbb");
  CHECK(s.fingerprint == "b2:222");
  CHECK(s.created_by == "owner-1");
  CHECK(s.last_test.tested);
  CHECK_FALSE(s.last_test.ok);
  CHECK(s.last_test.error == "boom");
  CHECK(s.last_test.latency_ms == 7);
  CHECK(s.user_grants ==
        std::map<std::string, connection_role>{{"owner-1", connection_role::owner}, {"user-1", connection_role::user}});
  CHECK(s.group_grants == std::map<std::string, connection_role>{{"ops", connection_role::owner}});
  CHECK(s.version == 9);
  s = evolve(s, connection_deleted{});
  CHECK(s.deleted);
  CHECK(s.version == 9);
}

TEST_CASE("connection: connection events round-trip through JSON and the registry", "[connection][codec]") {
  CHECK(json(connection_deleted{}) == json::object());
  CHECK(decode_event<connection_event>("connection.deleted", json::object()).has_value());
  CHECK_FALSE(decode_event<connection_event>("connection.deleted", json::array()).has_value());
  const auto tested =
      decode_event<connection_event>("connection.tested", json{{"ok", true}, {"error", ""}, {"latency_ms", 4}});
  REQUIRE(tested.has_value());
  CHECK(std::get<connection_tested>(*tested).latency_ms == 4);
  CHECK_FALSE(decode_event<connection_event>("connection.tested", json{{"ok", "yes"}}).has_value());
  for (const char* type :
       {"connection.created", "connection.updated", "connection.credentials_rotated", "connection.tested",
        "connection.access_granted", "connection.access_revoked", "connection.deleted"}) {
    INFO(type);
    const auto* info = find_event_type(type);
    REQUIRE(info != nullptr);
    CHECK(info->entity == "connection");
    CHECK(info->schema == 1);
    CHECK(info->redacted.empty());  // nothing to redact: no event holds a secret
  }
}

// --- validate_connection_spec ------------------------------------------------------------------

TEST_CASE("connection: valid connection specs pass", "[connection][spec]") {
  CHECK(validate_connection_spec("sqlite", {{"path", "/data/app.db"}}, json::object()).has_value());
  CHECK(validate_connection_spec("sqlite", {{"path", "/data/app.db"}}, nullptr).has_value());
  CHECK(validate_connection_spec("sqlite", {{"path", "relative/a.db"}}, nullptr).has_value());
  CHECK(validate_connection_spec("sqlite", {{"path", "/" + std::string(4095, 'p')}}, nullptr).has_value());
  CHECK(validate_connection_spec("postgres", {{"host", "db.example.org"}, {"database", "sales"}}, {{"user", "u"}})
            .has_value());
  CHECK(validate_connection_spec(
            "postgres",
            {{"host", "fe80::1"}, {"port", 65535}, {"database", std::string(63, 'd')}, {"sslmode", "verify-full"}},
            {{"user", std::string(63, 'u')}, {"password", std::string(1024, 'p')}})
            .has_value());
  for (const char* mode : {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}) {
    INFO(mode);
    CHECK(validate_connection_spec("postgres", {{"host", "h"}, {"database", "d"}, {"sslmode", mode}, {"port", 1}},
                                   {{"user", "u"}, {"password", ""}})
              .has_value());
  }
}

TEST_CASE("connection: bad connection specs name the field", "[connection][spec]") {
  const json pg{{"host", "db"}, {"database", "d"}};
  const json creds{{"user", "u"}, {"password", "hunter2-secret"}};
  struct bad_case {
    std::string driver;
    json params;
    json credentials;
    std::string field;
  };
  const std::vector<bad_case> cases{
      {"mysql", pg, creds, "driver"},
      {"", pg, creds, "driver"},
      {"SQLite", {{"path", "/a.db"}}, nullptr, "driver"},
      // sqlite
      {"sqlite", json::array(), nullptr, "params"},
      {"sqlite", json::object(), nullptr, "params.path"},
      {"sqlite", {{"path", ""}}, nullptr, "params.path"},
      {"sqlite", {{"path", 42}}, nullptr, "params.path"},
      {"sqlite", {{"path", "/" + std::string(4096, 'p')}}, nullptr, "params.path"},
      {"sqlite", {{"path", std::string("/a\0b", 4)}}, nullptr, "params.path"},
      {"sqlite", {{"path", "/a.db"}, {"mode", "ro"}}, nullptr, "params.mode"},
      {"sqlite", {{"path", "/a.db"}}, {{"password", "x"}}, "credentials.password"},
      {"sqlite", {{"path", "/a.db"}}, "secret", "credentials"},
      // postgres params
      {"postgres", "db", creds, "params"},
      {"postgres", {{"database", "d"}}, creds, "params.host"},
      {"postgres", {{"host", ""}, {"database", "d"}}, creds, "params.host"},
      {"postgres", {{"host", std::string(254, 'h')}, {"database", "d"}}, creds, "params.host"},
      {"postgres", {{"host", "db;drop"}, {"database", "d"}}, creds, "params.host"},
      {"postgres", {{"host", "db host"}, {"database", "d"}}, creds, "params.host"},
      {"postgres", {{"host", "db"}}, creds, "params.database"},
      {"postgres", {{"host", "db"}, {"database", ""}}, creds, "params.database"},
      {"postgres", {{"host", "db"}, {"database", std::string(64, 'd')}}, creds, "params.database"},
      {"postgres", {{"host", "db"}, {"database", std::string("a\0b", 3)}}, creds, "params.database"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"port", 0}}, creds, "params.port"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"port", 65536}}, creds, "params.port"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"port", -1}}, creds, "params.port"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"port", "5432"}}, creds, "params.port"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"port", 5432.5}}, creds, "params.port"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"sslmode", "always"}}, creds, "params.sslmode"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"sslmode", 1}}, creds, "params.sslmode"},
      {"postgres", {{"host", "db"}, {"database", "d"}, {"password", "x"}}, creds, "params.password"},
      // postgres credentials
      {"postgres", pg, nullptr, "credentials.user"},
      {"postgres", pg, json::object(), "credentials.user"},
      {"postgres", pg, {{"password", "p"}}, "credentials.user"},
      {"postgres", pg, {{"user", ""}}, "credentials.user"},
      {"postgres", pg, {{"user", std::string(64, 'u')}}, "credentials.user"},
      {"postgres", pg, {{"user", 7}}, "credentials.user"},
      {"postgres", pg, {{"user", "u"}, {"password", std::string(1025, 'p')}}, "credentials.password"},
      {"postgres", pg, {{"user", "u"}, {"password", 1234}}, "credentials.password"},
      {"postgres", pg, {{"user", "u"}, {"token", "t"}}, "credentials.token"},
      {"postgres", pg, json::array({"u", "p"}), "credentials"},
  };
  for (const auto& c : cases) {
    INFO(c.driver << " " << c.params.dump() << " → " << c.field);
    const auto r = validate_connection_spec(c.driver, c.params, c.credentials);
    require_field_error(r, c.field);
    // Never echo a credential value.
    CHECK(r.error().message.find("hunter2-secret") == std::string::npos);
    CHECK(r.error().details.dump().find("hunter2-secret") == std::string::npos);
  }
}

TEST_CASE("connection: normalized_params fills the driver's defaults", "[connection][spec]") {
  CHECK(normalized_params("postgres", {{"host", "h"}, {"database", "d"}}) ==
        json{{"host", "h"}, {"database", "d"}, {"port", 5432}, {"sslmode", "prefer"}});
  CHECK(normalized_params("postgres", {{"host", "h"}, {"database", "d"}, {"port", 6432}, {"sslmode", "require"}}) ==
        json{{"host", "h"}, {"database", "d"}, {"port", 6432}, {"sslmode", "require"}});
  CHECK(normalized_params("sqlite", {{"path", "/a.db"}}) == json{{"path", "/a.db"}});
  CHECK(normalized_params("mysql", {{"x", 1}}) == json{{"x", 1}});
}
