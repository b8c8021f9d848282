/// The event envelope codec, the public (redacted) form, the event-type registry,
/// `decode_event`, and the id and time generators.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <regex>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/envelope.hpp"
#include "events/error.hpp"
#include "events/connection/connection_events.hpp"
#include "events/container/container_events.hpp"
#include "events/group/group_events.hpp"
#include "events/job/job_events.hpp"
#include "events/project/project_events.hpp"
#include "events/security/security_events.hpp"
#include "events/registry.hpp"
#include "events/user/user_events.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;

/// An envelope with every field set to a distinct, non-default value.
envelope sample_envelope() {
  envelope e;
  e.position = 18446744073709551000ull;  // near the top of uint64: no narrowing on the way
  e.stream = "user-0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  e.version = 42;
  e.id = "0193a1b2-c3d4-7e5f-8a9b-000000000001";
  e.type = "user.registered";
  e.schema = 3;
  e.time = "2026-11-21T04:45:59.123456Z";
  e.actor = "user-admin";
  e.correlation_id = "req-17";
  e.causation_id = "cmd-9";
  e.data = json{{"user_id", "u-1"},
                {"username", "alice"},
                {"email", "alice@example.org"},
                {"role", "member"},
                {"password_hash", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}};
  return e;
}

void check_same(const envelope& a, const envelope& b) {
  CHECK(a.position == b.position);
  CHECK(a.stream == b.stream);
  CHECK(a.version == b.version);
  CHECK(a.id == b.id);
  CHECK(a.type == b.type);
  CHECK(a.schema == b.schema);
  CHECK(a.time == b.time);
  CHECK(a.actor == b.actor);
  CHECK(a.correlation_id == b.correlation_id);
  CHECK(a.causation_id == b.causation_id);
  CHECK(a.data == b.data);
}

/// Requires `r` to be an `invalid_argument` error.
template <class T>
void require_invalid(const result<T>& r) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::invalid_argument);
  CHECK_FALSE(r.error().message.empty());
}

/// Registry entry of each event struct, checked against the struct itself.
template <class T>
void check_registered() {
  INFO("type: " << T::type);
  const auto* info = find_event_type(T::type);
  REQUIRE(info != nullptr);
  CHECK(info->type == T::type);
  CHECK(info->schema == T::schema);
  CHECK(info->entity == T::type.substr(0, T::type.find('.')));
}

template <class... Ts>
void check_all_registered(std::type_identity<std::variant<Ts...>>) {
  (check_registered<Ts>(), ...);
}

}  // namespace

// --- envelope codec ---------------------------------------------------------------

TEST_CASE("an envelope round-trips through its storage bytes", "[envelope]") {
  const auto original = sample_envelope();
  const std::string bytes = serialize_envelope(original);
  CHECK(bytes.find('\n') == std::string::npos);  // compact

  const auto parsed = parse_envelope(bytes);
  REQUIRE(parsed.has_value());
  check_same(*parsed, original);
  CHECK(serialize_envelope(*parsed) == bytes);
}

TEST_CASE("an envelope's JSON carries every field under its documented name", "[envelope]") {
  const auto e = sample_envelope();
  const json j = e;
  CHECK(j == json{{"position", e.position},
                  {"stream", e.stream},
                  {"version", 42},
                  {"id", e.id},
                  {"type", "user.registered"},
                  {"schema", 3},
                  {"time", e.time},
                  {"actor", "user-admin"},
                  {"correlation_id", "req-17"},
                  {"causation_id", "cmd-9"},
                  {"data", e.data}});
  check_same(j.get<envelope>(), e);
}

TEST_CASE("correlation and causation ids are optional on decode", "[envelope]") {
  json j = sample_envelope();
  j.erase("correlation_id");
  j.erase("causation_id");
  const auto parsed = parse_envelope(j.dump());
  REQUIRE(parsed.has_value());
  CHECK(parsed->correlation_id.empty());
  CHECK(parsed->causation_id.empty());
  CHECK(parsed->version == 42);
}

TEST_CASE("parse_envelope reports malformed bytes as invalid_argument without throwing", "[envelope]") {
  SECTION("not JSON") {
    for (const char* bytes : {"", "{", "not json", "{\"position\":", "\xff\xfe"}) {
      INFO("bytes: " << bytes);
      CHECK_NOTHROW(parse_envelope(bytes));
      require_invalid(parse_envelope(bytes));
    }
  }
  SECTION("JSON that is not an envelope object") {
    for (const char* bytes : {"[]", "null", "42", "\"envelope\"", "{}"}) {
      INFO("bytes: " << bytes);
      CHECK_NOTHROW(parse_envelope(bytes));
      require_invalid(parse_envelope(bytes));
    }
  }
  SECTION("a required field missing") {
    for (const char* field : {"position", "stream", "version", "id", "type", "schema", "time", "actor", "data"}) {
      INFO("missing: " << field);
      json j = sample_envelope();
      j.erase(field);
      const std::string bytes = j.dump();
      CHECK_NOTHROW(parse_envelope(bytes));
      require_invalid(parse_envelope(bytes));
    }
  }
  SECTION("a field of the wrong type") {
    json j = sample_envelope();
    j["position"] = "one";
    require_invalid(parse_envelope(j.dump()));
    j = sample_envelope();
    j["stream"] = 7;
    require_invalid(parse_envelope(j.dump()));
    j = sample_envelope();
    j["schema"] = json::array();
    require_invalid(parse_envelope(j.dump()));
  }
  SECTION("numbers nlohmann would silently convert") {
    for (const char* bad : {"-1", "1.7", "1e3", "18446744073709551616"}) {
      INFO("position: " << bad);
      std::string bytes = serialize_envelope(sample_envelope());
      const auto at = bytes.find("\"position\":") + 11;
      bytes.replace(at, bytes.find(',', at) - at, bad);
      require_invalid(parse_envelope(bytes));
    }
    for (const auto& schema : {json(0), json(-3), json(1'000'001), json(2.5)}) {
      json j = sample_envelope();
      j["schema"] = schema;
      INFO("schema: " << schema.dump());
      require_invalid(parse_envelope(j.dump()));
    }
  }
  SECTION("data or metadata not an object") {
    for (const auto& field : {"data", "metadata"}) {
      for (const auto& value : {json::array(), json("x"), json(nullptr)}) {
        json j = sample_envelope();
        j[field] = value;
        INFO(field << ": " << value.dump());
        require_invalid(parse_envelope(j.dump()));
      }
    }
  }
}

TEST_CASE("parse_envelope decodes payloads exactly as nlohmann::json::parse does", "[envelope]") {
  json j = sample_envelope();
  j["data"] = json::parse(R"({"n":5,"neg":-5,"big":18446744073709551615,"f":0.25,"t":true,"z":null,
                              "s":"caf\u00e9 \"q\" \n","nested":{"a":[1,-2,{"b":"c"}],"e":{}},"list":[]})");
  j["metadata"] = {{"client_address", "10.0.0.1:5"}, {"user_agent", "ua"}};
  j["unknown_field"] = "ignored";
  const std::string bytes = j.dump();
  const auto parsed = parse_envelope(bytes);
  REQUIRE(parsed.has_value());
  const auto reference = json::parse(bytes);
  CHECK(parsed->data == reference["data"]);
  CHECK(parsed->metadata == reference["metadata"]);
  // Same number kinds as nlohmann's own parser, so decoders that check kinds agree.
  CHECK(parsed->data["n"].is_number_unsigned());
  CHECK(parsed->data["neg"].is_number_integer());
  CHECK_FALSE(parsed->data["neg"].is_number_unsigned());
  CHECK(parsed->data["big"].get<std::uint64_t>() == 18446744073709551615ULL);
  CHECK(parsed->data["f"].is_number_float());
  CHECK(parsed->data["s"] == "caf\u00e9 \"q\" \n");
  CHECK(parsed->data.dump() == reference["data"].dump());
}

// --- public form ------------------------------------------------------------------

TEST_CASE("to_public_json removes the password hash of user.registered", "[envelope][redaction]") {
  const auto e = sample_envelope();
  const json pub = to_public_json(e);
  CHECK_FALSE(pub.at("data").contains("password_hash"));
  CHECK(pub.at("data") ==
        json{{"user_id", "u-1"}, {"username", "alice"}, {"email", "alice@example.org"}, {"role", "member"}});
  // Envelope fields stay, and the envelope itself is untouched.
  json expected = e;
  expected["data"].erase("password_hash");
  CHECK(pub == expected);
  CHECK(e.data.contains("password_hash"));
  // The storage form keeps the secret.
  CHECK(serialize_envelope(e).find("password_hash") != std::string::npos);
}

TEST_CASE("to_public_json removes the password hash of user.password_changed", "[envelope][redaction]") {
  auto e = sample_envelope();
  e.type = "user.password_changed";
  e.data = json{{"password_hash", "$argon2id$secret"}, {"note", "kept"}};
  const json pub = to_public_json(e);
  CHECK(pub.at("data") == json{{"note", "kept"}});
  CHECK(pub.dump().find("$argon2id$secret") == std::string::npos);
  CHECK(pub.at("type") == "user.password_changed");
}

TEST_CASE("to_public_json leaves events without secrets unchanged", "[envelope][redaction]") {
  auto e = sample_envelope();
  e.type = "user.role_granted";
  e.data = json{{"role", "auditor"}};
  CHECK(to_public_json(e) == json(e));

  e.type = "project.created";
  e.data = json{{"project_id", "p"}, {"name", "n"}, {"description", ""}, {"created_by", "u"}};
  CHECK(to_public_json(e) == json(e));
}

// --- registry ---------------------------------------------------------------------

TEST_CASE("every registered event type is well formed and findable", "[envelope][registry]") {
  const auto& all = event_types();
  REQUIRE_FALSE(all.empty());
  std::set<std::string_view> seen;
  for (const auto& info : all) {
    INFO("type: " << info.type);
    CHECK(seen.insert(info.type).second);  // no duplicates
    REQUIRE_FALSE(info.entity.empty());
    CHECK(info.type.size() > info.entity.size() + 1);
    CHECK(info.type.substr(0, info.entity.size()) == info.entity);
    CHECK(info.type[info.entity.size()] == '.');
    CHECK(info.type.find('.', info.entity.size() + 1) == std::string_view::npos);
    CHECK(info.schema >= 1);
    CHECK(find_event_type(info.type) == &info);
  }
}

TEST_CASE("every event struct of a stream is registered with its schema", "[envelope][registry]") {
  check_all_registered(std::type_identity<user_event>{});
  check_all_registered(std::type_identity<project_event>{});
  check_all_registered(std::type_identity<group_event>{});
  check_all_registered(std::type_identity<connection_event>{});
  check_all_registered(std::type_identity<job_event>{});
  check_all_registered(std::type_identity<container_event>{});
  check_registered<username_claimed>();
  check_registered<security_login_succeeded>();
  check_registered<security_login_failed>();
  check_registered<security_login_throttled>();
  check_registered<security_access_denied>();
  CHECK(find_event_type("username.claimed")->entity == "username");
  CHECK(find_event_type("project.member_added")->entity == "project");
}

TEST_CASE("the registry marks password hashes as redacted", "[envelope][registry]") {
  using fields = std::vector<std::string_view>;
  CHECK(find_event_type("user.registered")->redacted == fields{"password_hash"});
  CHECK(find_event_type("user.password_changed")->redacted == fields{"password_hash"});
  CHECK(find_event_type("user.role_granted")->redacted.empty());
  CHECK(find_event_type("project.created")->redacted.empty());
  // No connection, job or container event carries a secret (connections hold a vault
  // reference), so none has anything to redact.
  for (const auto& info : event_types()) {
    if (info.entity != "user") CHECK(info.redacted.empty());
  }
}

TEST_CASE("unknown event types are not found", "[envelope][registry]") {
  for (const char* type :
       {"", "user", "user.", "user.renamed", "User.registered", "user.registered ", "project.deleted", "registered"}) {
    INFO("type: '" << type << "'");
    CHECK(find_event_type(type) == nullptr);
  }
}

TEST_CASE("make_event builds a proposed event from a payload", "[envelope][registry]") {
  const auto p = make_event(project_member_added{"u-1", "editor"});
  CHECK(p.type == "project.member_added");
  CHECK(p.schema == 1);
  CHECK(p.data == json{{"user_id", "u-1"}, {"role", "editor"}});
  CHECK(p.id.empty());
}

// --- decode_event -----------------------------------------------------------------

TEST_CASE("decode_event picks the right user_event alternative", "[envelope][decode]") {
  auto r = decode_event<user_event>("user.role_revoked", json{{"role", "auditor"}});
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<user_role_revoked>(*r));
  CHECK(std::get<user_role_revoked>(*r).role == "auditor");

  auto e = sample_envelope();
  e.schema = user_registered::schema;  // the sample's schema is made up; decoding upcasts from it
  r = decode_event<user_event>(e);
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<user_registered>(*r));
  const auto& reg = std::get<user_registered>(*r);
  CHECK(reg.user_id == "u-1");
  CHECK(reg.username == "alice");
  CHECK(reg.email == "alice@example.org");
  CHECK(reg.role == "member");
  CHECK(reg.password_hash == e.data.at("password_hash").get<std::string>());

  r = decode_event<user_event>("user.password_changed", json{{"password_hash", "h"}});
  REQUIRE(r.has_value());
  CHECK(std::get<user_password_changed>(*r).password_hash == "h");

  r = decode_event<user_event>("user.role_granted", json{{"role", "admin"}});
  REQUIRE(r.has_value());
  CHECK(std::get<user_role_granted>(*r).role == "admin");

  r = decode_event<user_event>("user.disabled", json{{"reason", "spam"}});
  REQUIRE(r.has_value());
  CHECK(std::get<user_disabled>(*r).reason == "spam");
}

TEST_CASE("decode_event picks the right project_event alternative", "[envelope][decode]") {
  auto r = decode_event<project_event>(
      "project.created", json{{"project_id", "p-1"}, {"name", "A"}, {"description", "d"}, {"created_by", "u-1"}});
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<project_created>(*r));
  CHECK(std::get<project_created>(*r).created_by == "u-1");

  r = decode_event<project_event>("project.renamed", json{{"name", "B"}});
  REQUIRE(r.has_value());
  CHECK(std::get<project_renamed>(*r).name == "B");

  r = decode_event<project_event>("project.described", json{{"description", "e"}});
  REQUIRE(r.has_value());
  CHECK(std::get<project_described>(*r).description == "e");

  r = decode_event<project_event>("project.member_added", json{{"user_id", "u-2"}, {"role", "viewer"}});
  REQUIRE(r.has_value());
  CHECK(std::get<project_member_added>(*r).role == "viewer");

  r = decode_event<project_event>("project.member_removed", json{{"user_id", "u-2"}});
  REQUIRE(r.has_value());
  CHECK(std::get<project_member_removed>(*r).user_id == "u-2");

  r = decode_event<project_event>("project.archived", json{{"reason", "done"}});
  REQUIRE(r.has_value());
  CHECK(std::get<project_archived>(*r).reason == "done");
}

TEST_CASE("decode_event reports unknown types as invalid_argument", "[envelope][decode]") {
  require_invalid(decode_event<user_event>("user.renamed", json{{"name", "x"}}));
  require_invalid(decode_event<user_event>("", json::object()));
  // A known type of another stream is not an alternative of this variant.
  require_invalid(decode_event<user_event>("project.archived", json{{"reason", "x"}}));
  require_invalid(decode_event<project_event>("user.disabled", json{{"reason", "x"}}));
  require_invalid(decode_event<user_event>("username.claimed", json{{"username", "a"}, {"user_id", "b"}}));
  const auto r = decode_event<user_event>("user.renamed", json::object());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("user.renamed") != std::string::npos);
}

TEST_CASE("decode_event reports malformed payloads as invalid_argument without throwing", "[envelope][decode]") {
  const std::vector<json> payloads{json::object(), json{{"rol", "admin"}}, json{{"role", 5}}, json{{"role", nullptr}},
                                   json::array(),  json(nullptr),          json("role"),      json(3)};
  for (const auto& data : payloads) {
    INFO("data: " << data.dump());
    CHECK_NOTHROW(decode_event<user_event>("user.role_granted", data));
    const auto r = decode_event<user_event>("user.role_granted", data);
    require_invalid(r);
    CHECK(r.error().message.find("malformed") != std::string::npos);
  }
  // One field missing among several.
  require_invalid(
      decode_event<project_event>("project.created", json{{"project_id", "p"}, {"name", "n"}, {"created_by", "u"}}));
  require_invalid(decode_event<project_event>("project.member_added", json{{"user_id", "u"}}));
}

// --- ids and time -------------------------------------------------------------------

TEST_CASE("new_uuid_v7 yields well-formed distinct time-stamped ids", "[envelope][uuid]") {
  static const std::regex form("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  using namespace std::chrono;
  const auto before = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const auto id = new_uuid_v7();
    INFO("id: " << id);
    REQUIRE(id.size() == 36);
    REQUIRE(std::regex_match(id, form));
    ids.insert(id);
  }
  const auto after = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  CHECK(ids.size() == 1000);

  // The first 48 bits are the Unix time in milliseconds when the id was made.
  for (const auto& id : {*ids.begin(), *ids.rbegin()}) {
    const std::string hex = id.substr(0, 8) + id.substr(9, 4);
    const auto ms = static_cast<long long>(std::stoull(hex, nullptr, 16));
    INFO("id: " << id);
    CHECK(ms >= before);
    CHECK(ms <= after);
  }
}

TEST_CASE("uuid_v7_generator ids strictly increase and keep the UUIDv7 form", "[envelope][uuid]") {
  atrium::uuid_v7_generator gen;
  auto prev = gen.next();
  REQUIRE(is_uuid_v7(prev));
  // Many ids fall in the same millisecond: the counter, not the clock, orders them.
  for (int i = 0; i < 20000; ++i) {
    auto id = gen.next();
    INFO(prev << " then " << id);
    REQUIRE(is_uuid_v7(id));
    REQUIRE(prev < id);
    prev = std::move(id);
  }
  // The timestamp is the clock's (never ahead of it while the counter has room).
  const auto now = new_uuid_v7();
  CHECK(prev.substr(0, 13) <= now.substr(0, 13));
}

TEST_CASE("is_uuid_v7 accepts what new_uuid_v7 makes and nothing else", "[envelope][uuid]") {
  for (int i = 0; i < 100; ++i) CHECK(is_uuid_v7(new_uuid_v7()));
  CHECK(is_uuid_v7("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70"));
  CHECK(is_uuid_v7("0193a1b2-c3d4-7e5f-bfff-0c1d2e3f4a70"));
  CHECK_FALSE(is_uuid_v7(""));
  CHECK_FALSE(is_uuid_v7("0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A70"));   // uppercase
  CHECK_FALSE(is_uuid_v7("0193a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a70"));   // version 4
  CHECK_FALSE(is_uuid_v7("0193a1b2-c3d4-7e5f-ca9b-0c1d2e3f4a70"));   // variant 110
  CHECK_FALSE(is_uuid_v7("0193a1b2c3d4-7e5f-8a9b-0c1d2e3f4a70-"));   // dashes misplaced
  CHECK_FALSE(is_uuid_v7("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7"));    // short
  CHECK_FALSE(is_uuid_v7("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70a"));  // long
  CHECK_FALSE(is_uuid_v7("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7g"));   // not hex
}

TEST_CASE("now_rfc3339 is UTC with microseconds and close to now", "[envelope][time]") {
  static const std::regex form(
      R"(^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6}Z$)");
  const auto before = std::chrono::system_clock::now();
  const std::string t = now_rfc3339();
  const auto after = std::chrono::system_clock::now();
  INFO("time: " << t);
  REQUIRE(std::regex_match(t, form));

  std::tm tm{};
  tm.tm_year = std::stoi(t.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(t.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(t.substr(8, 2));
  tm.tm_hour = std::stoi(t.substr(11, 2));
  tm.tm_min = std::stoi(t.substr(14, 2));
  tm.tm_sec = std::stoi(t.substr(17, 2));
  const auto secs = std::chrono::system_clock::from_time_t(timegm(&tm));
  const auto stamp = secs + std::chrono::microseconds(std::stoll(t.substr(20, 6)));
  CHECK(stamp >= std::chrono::time_point_cast<std::chrono::microseconds>(before));
  CHECK(stamp <= after);
}

TEST_CASE("every error kind has a distinct wire name", "[envelope][error]") {
  const std::vector<errc> all{errc::invalid_argument,    errc::unauthenticated,
                              errc::forbidden,           errc::not_found,
                              errc::version_conflict,    errc::already_exists,
                              errc::failed_precondition, errc::precondition_required,
                              errc::payload_too_large,   errc::gone,
                              errc::unavailable,         errc::internal};
  std::set<std::string_view> names;
  for (auto code : all) names.insert(to_string(code));
  CHECK(names.size() == all.size());
  CHECK(to_string(errc::version_conflict) == "version_conflict");
  CHECK(to_string(errc::failed_precondition) == "failed_precondition");
  CHECK(to_string(errc::gone) == "gone");
  const auto f = fail(errc::not_found, "no such project", {{"id", "p-1"}});
  CHECK(f.error().code == errc::not_found);
  CHECK(f.error().details.at("id") == "p-1");
}

// --- metadata ---------------------------------------------------------------------

TEST_CASE("empty metadata is left out, so events stored before it existed hash as before", "[envelope][metadata]") {
  const auto e = sample_envelope();
  REQUIRE(e.metadata.empty());
  const json j = e;
  CHECK_FALSE(j.contains("metadata"));
  CHECK(canonical_bytes(e).find("metadata") == std::string::npos);
  CHECK(serialize_envelope(e).find("metadata") == std::string::npos);
  // The canonical bytes of such an event are exactly those of the envelope without the
  // field, as written before metadata existed.
  const json old{{"position", e.position},
                 {"stream", e.stream},
                 {"version", e.version},
                 {"id", e.id},
                 {"type", e.type},
                 {"schema", e.schema},
                 {"time", e.time},
                 {"actor", e.actor},
                 {"correlation_id", e.correlation_id},
                 {"causation_id", e.causation_id},
                 {"data", e.data}};
  CHECK(canonical_bytes(e) == old.dump());
  // A stored record without `metadata` decodes to empty metadata and re-serializes
  // byte for byte (verify_chain compares them).
  auto stored = e;
  stored.hash = std::string(64, 'a');
  const auto bytes = serialize_envelope(stored);
  const auto parsed = parse_envelope(bytes);
  REQUIRE(parsed.has_value());
  CHECK(parsed->metadata == json::object());
  CHECK(serialize_envelope(*parsed) == bytes);
  CHECK(canonical_bytes(*parsed) == canonical_bytes(e));
}

TEST_CASE("non-empty metadata is part of the stored form and of the canonical bytes", "[envelope][metadata]") {
  auto e = sample_envelope();
  e.metadata = json{{"user_agent", "curl/8.5.0"}, {"client_address", "127.0.0.1:53122"}};
  const json j = e;
  REQUIRE(j.contains("metadata"));
  CHECK(j.at("metadata") == e.metadata);
  // Keys sorted, nested ones too: `metadata` sorts between `id` and `position`.
  const auto canonical = canonical_bytes(e);
  CHECK(canonical.find("\"id\":\"" + e.id +
                       "\",\"metadata\":{\"client_address\":\"127.0.0.1:53122\","
                       "\"user_agent\":\"curl/8.5.0\"},\"position\":") != std::string::npos);
  CHECK(canonical != canonical_bytes(sample_envelope()));  // metadata is covered by the hash
  auto other = e;
  other.metadata["user_agent"] = "curl/8.5.1";
  CHECK(canonical_bytes(other) != canonical);

  e.hash = std::string(64, 'b');
  const auto bytes = serialize_envelope(e);
  const auto parsed = parse_envelope(bytes);
  REQUIRE(parsed.has_value());
  CHECK(parsed->metadata == e.metadata);
  CHECK(serialize_envelope(*parsed) == bytes);
  CHECK(canonical_bytes(*parsed) == canonical);
  // The public form keeps it.
  CHECK(to_public_json(e).at("metadata") == e.metadata);
}

TEST_CASE("metadata that is not an object is malformed", "[envelope][metadata]") {
  for (const json& bad : {json("x"), json::array({"a"}), json(7), json(nullptr)}) {
    INFO("metadata: " << bad.dump());
    json j = sample_envelope();
    j["metadata"] = bad;
    require_invalid(parse_envelope(j.dump()));
  }
}

TEST_CASE("a proposed event's metadata defaults to an empty object", "[envelope][metadata]") {
  const auto p = make_event(project_renamed{"n"});
  CHECK(p.metadata == json::object());
}
