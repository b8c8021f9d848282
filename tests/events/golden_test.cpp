/// Schema evolution: the upcaster registry (events/upcasters.hpp), `decode_event`'s
/// upcasting of stored envelopes, and the golden payload files.
///
/// tests/golden/<type>.v<schema>.json holds one representative payload (`data`) per
/// event type and schema, exactly as the encoder writes it: `json.dump(2)`, keys sorted,
/// a trailing newline. For every registered type the file of its current schema must
/// exist, decode, and re-encode to the same bytes, so a changed encoder shows as a
/// failing test and, once the file is regenerated, as a golden diff. Files of older
/// schemas stay: they are the upcasters' inputs and must upcast and decode.
///
/// Regenerating: `ATRIUM_UPDATE_GOLDEN=1 ./build/tests/atrium_unit_tests "[golden]"`
/// rewrites the current-schema file of every type instead of comparing it: from the
/// file itself (decode, re-encode), else from the newest older file (upcast, decode,
/// re-encode), else, for a new type, a skeleton from the default-constructed struct
/// whose values you then replace with representative ones. Review the diff before
/// committing it.

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "events/admin/admin_events.hpp"
#include "events/connection/connection_events.hpp"
#include "events/container/container_events.hpp"
#include "events/envelope.hpp"
#include "events/error.hpp"
#include "events/group/group_events.hpp"
#include "events/job/job_events.hpp"
#include "events/project/project_events.hpp"
#include "events/registry.hpp"
#include "events/schedule/schedule_events.hpp"
#include "events/security/security_events.hpp"
#include "events/upcasters.hpp"
#include "events/user/user_events.hpp"

#ifndef ATRIUM_GOLDEN_DIR
#error "ATRIUM_GOLDEN_DIR must name the tests/golden directory (see tests/CMakeLists.txt)"
#endif

namespace {

using namespace atrium;
using json = nlohmann::json;
namespace fs = std::filesystem;

const fs::path golden_dir{ATRIUM_GOLDEN_DIR};

/// True when ATRIUM_UPDATE_GOLDEN=1: the current-schema files are written, not compared.
bool update_mode() {
  const char* v = std::getenv("ATRIUM_UPDATE_GOLDEN");
  return v != nullptr && std::string_view(v) == "1";
}

fs::path golden_path(std::string_view type, int schema) {
  return golden_dir / (std::string(type) + ".v" + std::to_string(schema) + ".json");
}

/// The bytes of a golden file for a payload: what the encoder writes, pretty-printed.
std::string golden_text(const json& data) { return data.dump(2) + "\n"; }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

/// The golden file of one type and schema, named `<type>.v<schema>.json`.
struct golden_name {
  std::string type;
  int schema = 0;
};

/// Parses a golden file name; nullopt when it is not `<type>.v<schema ≥ 1>.json`.
std::optional<golden_name> parse_golden_name(const std::string& file) {
  constexpr std::string_view ext = ".json";
  if (file.size() <= ext.size() || !file.ends_with(ext)) return std::nullopt;
  const std::string stem = file.substr(0, file.size() - ext.size());
  const auto v = stem.rfind(".v");
  if (v == std::string::npos || v == 0 || v + 2 >= stem.size()) return std::nullopt;
  const std::string digits = stem.substr(v + 2);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  if (digits.size() > 6 || digits[0] == '0') return std::nullopt;
  return golden_name{stem.substr(0, v), std::stoi(digits)};
}

/// The file names in tests/golden, sorted.
std::vector<std::string> golden_files() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(golden_dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

/// Username claims, security and runtime events have no variant of their own in events/; these
/// group their structs the same way.
using username_stream = std::variant<username_claimed>;
using security_stream = std::variant<security_login_succeeded, security_login_failed, security_login_throttled,
                                     security_access_denied, security_token_created, security_token_revoked>;
using runtime_stream = std::variant<runtime_orphan_removed>;
using admin_stream = std::variant<admin_backup_taken>;

/// Calls `f(std::type_identity<Variant>{})` with the event variant of `entity`'s stream;
/// false when the entity has none here (a new entity: add it to this table).
template <class F>
bool with_stream_variant(std::string_view entity, F&& f) {
  if (entity == "user") return f(std::type_identity<user_event>{}), true;
  if (entity == "username") return f(std::type_identity<username_stream>{}), true;
  if (entity == "project") return f(std::type_identity<project_event>{}), true;
  if (entity == "group") return f(std::type_identity<group_event>{}), true;
  if (entity == "connection") return f(std::type_identity<connection_event>{}), true;
  if (entity == "job") return f(std::type_identity<job_event>{}), true;
  if (entity == "schedule") return f(std::type_identity<schedule_event>{}), true;
  if (entity == "container") return f(std::type_identity<container_event>{}), true;
  if (entity == "security") return f(std::type_identity<security_stream>{}), true;
  if (entity == "runtime") return f(std::type_identity<runtime_stream>{}), true;
  if (entity == "admin") return f(std::type_identity<admin_stream>{}), true;
  return false;
}

result<json> no_variant(const event_type_info& info) {
  return fail(errc::invalid_argument, "no stream variant for entity '" + std::string(info.entity) +
                                          "' in tests/events/golden_test.cpp (with_stream_variant)");
}

/// Reads a stored payload of `info.type` in schema `schema` the way every reader does
/// (an envelope through `decode_event`, which upcasts with `upcasters()`), as the
/// variant of its stream, and encodes the decoded struct again.
result<json> decode_and_encode(const event_type_info& info, int schema, const json& data) {
  envelope e;
  e.type = std::string(info.type);
  e.schema = schema;
  e.data = data;
  result<json> out = no_variant(info);
  with_stream_variant(info.entity, [&]<class Variant>(std::type_identity<Variant>) {
    auto event = decode_event<Variant>(e);
    if (!event) {
      out = std::unexpected(event.error());
      return;
    }
    out = std::visit([](const auto& ev) { return json(ev); }, *event);
  });
  return out;
}

/// The encoding of `info.type`'s default-constructed struct: the skeleton of a new
/// golden file.
result<json> default_payload(const event_type_info& info) {
  result<json> out = no_variant(info);
  with_stream_variant(info.entity, [&]<class... Ts>(std::type_identity<std::variant<Ts...>>) {
    auto one = [&]<class T>(std::type_identity<T>) {
      if (T::type == info.type) out = json(T{});
    };
    (one(std::type_identity<Ts>{}), ...);
  });
  return out;
}

/// Parses a golden file's JSON; a failed check (naming the file) and nullopt if it is
/// not JSON.
std::optional<json> parse_golden(const fs::path& path, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception& ex) {
    FAIL_CHECK("golden file " << path.string() << " is not JSON: " << ex.what());
    return std::nullopt;
  }
}

/// ATRIUM_UPDATE_GOLDEN=1: writes the current-schema golden file of `info.type`.
void update_golden(const event_type_info& info) {
  const auto path = golden_path(info.type, info.schema);
  INFO("golden file: " << path.string());
  result<json> payload = no_variant(info);
  if (fs::exists(path)) {
    const auto data = parse_golden(path, read_text(path));
    if (!data) return;
    payload = decode_and_encode(info, info.schema, *data);
  } else {
    int older = info.schema - 1;
    while (older >= 1 && !fs::exists(golden_path(info.type, older))) --older;
    if (older >= 1) {
      const auto from = golden_path(info.type, older);
      const auto data = parse_golden(from, read_text(from));
      if (!data) return;
      payload = decode_and_encode(info, older, *data);
    } else {
      payload = default_payload(info);
      WARN("new golden file " << path.string() << ": a skeleton of default values; fill in representative ones");
    }
  }
  if (!payload) {
    // Typically a payload change without a schema bump: see docs/events.md.
    FAIL_CHECK("cannot regenerate " << path.string() << ": " << payload.error().message);
    return;
  }
  write_text(path, golden_text(*payload));
}

/// A test-only event type at schema 3 (never registered in production): schema 1 had
/// `w`, schema 2 renamed it `width`, schema 3 added `unit`.
struct widget_resized {
  static constexpr std::string_view type = "widget.resized";
  static constexpr int schema = 3;
  int width = 0;
  std::string unit;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(widget_resized, width, unit)
using widget_event = std::variant<widget_resized>;

/// A registry that knows only `widget.resized` (current schema 3) with both steps.
/// `calls`, when given, records the schema each step started from.
upcaster_registry widget_registry(std::shared_ptr<std::vector<int>> calls = nullptr) {
  upcaster_registry r({{"widget.resized", 3}});
  REQUIRE(r.add("widget.resized", 1, [calls](json d) {
             if (calls) calls->push_back(1);
             d["width"] = d.at("w");
             d.erase("w");
             return d;
           }).has_value());
  REQUIRE(r.add("widget.resized", 2, [calls](json d) {
             if (calls) calls->push_back(2);
             d["unit"] = "px";
             return d;
           }).has_value());
  return r;
}

/// Requires `r` to be an `invalid_argument` error whose message contains `text`.
template <class T>
void require_invalid(const result<T>& r, std::string_view text) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::invalid_argument);
  INFO("message: " << r.error().message);
  CHECK(r.error().message.find(text) != std::string::npos);
}

}  // namespace

// --- upcaster registry ------------------------------------------------------------

TEST_CASE("an upcaster registry chains steps from the stored schema to the current one", "[upcast]") {
  auto calls = std::make_shared<std::vector<int>>();
  const auto r = widget_registry(calls);
  CHECK(r.current_schema("widget.resized") == 3);
  CHECK(r.current_schema("user.registered") == 0);  // its own table, not the event registry

  SECTION("1 → 2 → 3, in order") {
    const auto out = r.upcast("widget.resized", 1, json{{"w", 5}});
    REQUIRE(out.has_value());
    CHECK(*out == json{{"width", 5}, {"unit", "px"}});
    CHECK(*calls == std::vector<int>{1, 2});
  }
  SECTION("2 → 3") {
    const auto out = r.upcast("widget.resized", 2, json{{"width", 7}});
    REQUIRE(out.has_value());
    CHECK(*out == json{{"width", 7}, {"unit", "px"}});
    CHECK(*calls == std::vector<int>{2});
  }
  SECTION("the current schema is returned unchanged, no step runs") {
    const json current{{"width", 9}, {"unit", "em"}};
    const auto out = r.upcast("widget.resized", 3, current);
    REQUIRE(out.has_value());
    CHECK(*out == current);
    CHECK(calls->empty());
  }
}

TEST_CASE("upcast reports unknown types, bad schemas, missing steps and failing steps", "[upcast]") {
  const auto r = widget_registry();
  require_invalid(r.upcast("widget.moved", 1, json::object()), "unknown event type: widget.moved");
  require_invalid(r.upcast("", 1, json::object()), "unknown event type");

  const auto newer = r.upcast("widget.resized", 4, json{{"width", 1}});
  require_invalid(newer, "newer than the current schema 3");
  CHECK(newer.error().details == json{{"type", "widget.resized"}, {"schema", 4}, {"current_schema", 3}});
  require_invalid(r.upcast("widget.resized", 0, json::object()), "schema 0 is not valid");
  require_invalid(r.upcast("widget.resized", -1, json::object()), "schema -1 is not valid");

  // A step that cannot read the payload is an error value, never an exception.
  CHECK_NOTHROW(r.upcast("widget.resized", 1, json{{"width", 5}}));
  require_invalid(r.upcast("widget.resized", 1, json{{"width", 5}}), "upcast from schema 1 failed");

  // Only the step 2 → 3 registered: schema 2 upcasts, schema 1 has no path.
  upcaster_registry gap({{"widget.resized", 3}});
  REQUIRE(gap.add("widget.resized", 2, [](json d) { return d; }).has_value());
  CHECK(gap.upcast("widget.resized", 2, json::object()).has_value());
  require_invalid(gap.upcast("widget.resized", 1, json::object()), "no upcaster from schema 1 to 2");
}

TEST_CASE("upcaster_registry::add refuses steps that cannot exist or already exist", "[upcast]") {
  upcaster_registry r({{"widget.resized", 3}, {"widget.created", 1}});
  const upcaster identity = [](json d) { return d; };
  require_invalid(r.add("widget.moved", 1, identity), "unknown event type");
  require_invalid(r.add("widget.resized", 0, identity), "no step from schema 0");
  require_invalid(r.add("widget.resized", 3, identity), "no step from schema 3");  // 3 is current
  require_invalid(r.add("widget.resized", 4, identity), "no step from schema 4");
  require_invalid(r.add("widget.created", 1, identity), "no step from schema 1");  // schema 1 only
  require_invalid(r.add("widget.resized", 1, upcaster{}), "empty upcaster");
  REQUIRE(r.add("widget.resized", 1, identity).has_value());
  require_invalid(r.add("widget.resized", 1, identity), "already registered");
  CHECK(r.current_schema("widget.created") == 1);
}

TEST_CASE("the global upcaster registry knows every registered type at its current schema", "[upcast]") {
  const auto& all = event_types();
  for (const auto& info : all) {
    INFO("type: " << info.type);
    CHECK(upcasters().current_schema(info.type) == info.schema);
    const json data{{"any", "payload"}};
    const auto same = upcast(info.type, info.schema, data);
    REQUIRE(same.has_value());
    CHECK(*same == data);
    require_invalid(upcast(info.type, info.schema + 1, data), "newer than the current schema");
    require_invalid(upcast(info.type, 0, data), "not valid");
  }
  require_invalid(upcast("widget.resized", 1, json::object()), "unknown event type");
}

TEST_CASE("decode_event upcasts a stored envelope before decoding it", "[upcast][decode]") {
  SECTION("with a given registry: schema 1 and 2 payloads decode as the current struct") {
    const auto r = widget_registry();
    envelope e;
    e.type = "widget.resized";
    e.schema = 1;
    e.data = json{{"w", 5}};
    auto ev = decode_event<widget_event>(e, r);
    REQUIRE(ev.has_value());
    CHECK(std::get<widget_resized>(*ev).width == 5);
    CHECK(std::get<widget_resized>(*ev).unit == "px");

    e.schema = 2;
    e.data = json{{"width", 6}};
    ev = decode_event<widget_event>(e, r);
    REQUIRE(ev.has_value());
    CHECK(std::get<widget_resized>(*ev).width == 6);

    e.schema = 3;
    e.data = json{{"width", 7}, {"unit", "em"}};
    ev = decode_event<widget_event>(e, r);
    REQUIRE(ev.has_value());
    CHECK(std::get<widget_resized>(*ev).unit == "em");

    e.schema = 4;
    require_invalid(decode_event<widget_event>(e, r), "newer than the current schema 3");
    // The process-wide registry does not know the test-only type.
    e.schema = 3;
    require_invalid(decode_event<widget_event>(e), "unknown event type: widget.resized");
  }
  SECTION("by default with the process-wide registry") {
    envelope e;
    e.type = "user.role_granted";
    e.schema = 1;
    e.data = json{{"role", "auditor"}};
    auto ev = decode_event<user_event>(e);
    REQUIRE(ev.has_value());
    CHECK(std::get<user_role_granted>(*ev).role == "auditor");

    // A payload written by a newer build is refused, not misread as the current schema;
    // the (type, data) overload takes its payload as current and does not look.
    e.schema = 2;
    require_invalid(decode_event<user_event>(e), "user.role_granted: schema 2 is newer than the current schema 1");
    CHECK(decode_event<user_event>(e.type, e.data).has_value());
    e.schema = 0;
    require_invalid(decode_event<user_event>(e), "schema 0 is not valid");
  }
}

// --- golden files -------------------------------------------------------------------

TEST_CASE("every registered event type's golden file decodes and re-encodes to the same bytes", "[golden]") {
  REQUIRE(fs::is_directory(golden_dir));
  const auto& all = event_types();
  REQUIRE(all.size() >= 45);
  if (update_mode()) {
    for (const auto& info : all) update_golden(info);
    WARN("ATRIUM_UPDATE_GOLDEN=1: wrote " << all.size() << " golden files in " << golden_dir.string());
    return;
  }
  for (const auto& info : all) {
    const auto path = golden_path(info.type, info.schema);
    INFO("type: " << info.type << ", golden file: " << path.string());
    if (!fs::exists(path)) {
      FAIL_CHECK("missing golden file " << path.string()
                                        << " (ATRIUM_UPDATE_GOLDEN=1 writes it; see tests/events/golden_test.cpp)");
      continue;
    }
    const std::string golden = read_text(path);
    const auto data = parse_golden(path, golden);
    if (!data) continue;
    CHECK(data->is_object());
    const auto encoded = decode_and_encode(info, info.schema, *data);
    if (!encoded) {
      FAIL_CHECK("golden file " << path.string() << " does not decode: " << encoded.error().message);
      continue;
    }
    // A difference here is a changed encoder (or a hand-edited file): both are printed.
    CHECK(golden_text(*encoded) == golden);
  }
}

TEST_CASE("golden files of older schemas are kept, upcast to the current schema and decode", "[golden]") {
  for (const auto& info : event_types()) {
    for (int schema = 1; schema < info.schema; ++schema) {
      const auto path = golden_path(info.type, schema);
      INFO("type: " << info.type << ", golden file: " << path.string());
      if (!fs::exists(path)) {
        FAIL_CHECK("missing golden file " << path.string() << ": keep it as the input of the upcaster from schema "
                                          << schema);
        continue;
      }
      const auto data = parse_golden(path, read_text(path));
      if (!data) continue;
      const auto encoded = decode_and_encode(info, schema, *data);
      if (!encoded) FAIL_CHECK("golden file " << path.string() << " does not decode: " << encoded.error().message);
    }
  }
}

TEST_CASE("every golden file belongs to a registered type and schema", "[golden]") {
  REQUIRE(fs::is_directory(golden_dir));
  std::size_t files = 0;
  for (const auto& file : golden_files()) {
    INFO("golden file: " << (golden_dir / file).string());
    ++files;
    CHECK(fs::is_regular_file(golden_dir / file));
    const auto name = parse_golden_name(file);
    if (!name) {
      FAIL_CHECK("orphan golden file " << file << ": the name is not <type>.v<schema>.json");
      continue;
    }
    const auto* info = find_event_type(name->type);
    if (info == nullptr) {
      FAIL_CHECK("orphan golden file " << file << ": no registered event type " << name->type);
      continue;
    }
    if (name->schema > info->schema) {
      FAIL_CHECK("orphan golden file " << file << ": schema " << name->schema << " is newer than the current schema "
                                       << info->schema << " of " << info->type);
    }
  }
  CHECK(files >= event_types().size());
}

TEST_CASE("golden file names parse as <type>.v<schema>.json", "[golden]") {
  const auto ok = parse_golden_name("project.member_added.v12.json");
  REQUIRE(ok.has_value());
  CHECK(ok->type == "project.member_added");
  CHECK(ok->schema == 12);
  for (const char* bad :
       {"project.created.json", "project.created.v0.json", "project.created.v01.json", "project.created.v1.txt",
        "project.created.vx.json", ".v1.json", "project.created.v.json", "README.md", "project.created.v1.json.orig"}) {
    INFO("name: " << bad);
    CHECK_FALSE(parse_golden_name(bad).has_value());
  }
}
