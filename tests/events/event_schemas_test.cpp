/// The event JSON Schemas (docs/schemas/events, docs/events.md "Event schemas") cover
/// exactly the event registry: one `<type>.v<N>.schema.json` for every registered type
/// and every schema N from 1 to its current one, no other, and catalog.json naming the
/// same set. Validating the golden files against the schemas is node's part
/// (tests/api/event-schemas.mjs, CTest `api: event schemas`); this keeps the C++ side
/// honest without node: a type or schema bump added in C++ without its schema fails here.

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "events/registry.hpp"
#include "events/schema_uri.hpp"

#ifndef ATRIUM_EVENT_SCHEMA_DIR
#error "ATRIUM_EVENT_SCHEMA_DIR must name docs/schemas/events (see tests/CMakeLists.txt)"
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using key = std::pair<std::string, int>;  // (type, schema)

const fs::path schema_dir{ATRIUM_EVENT_SCHEMA_DIR};

/// (type, N) of every registered type and every schema from 1 to its current one.
std::set<key> registry_keys() {
  std::set<key> out;
  for (const auto& info : atrium::event_types()) {
    for (int n = 1; n <= info.schema; ++n) out.emplace(std::string(info.type), n);
  }
  return out;
}

/// The file name of (type, N).
std::string file_name(const key& k) { return k.first + ".v" + std::to_string(k.second) + ".schema.json"; }

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return json::parse(in, nullptr, false);
}

}  // namespace

TEST_CASE("docs/schemas/events holds one schema per registered event type and schema version", "[schemas]") {
  REQUIRE(fs::is_directory(schema_dir));
  const auto expected = registry_keys();
  REQUIRE(expected.size() >= atrium::event_types().size());

  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(schema_dir)) files.insert(entry.path().filename().string());
  CHECK(files.count("envelope.schema.json") == 1);
  CHECK(files.count("catalog.json") == 1);

  std::set<std::string> wanted;
  for (const auto& k : expected) wanted.insert(file_name(k));
  for (const auto& name : wanted) {
    INFO("schema file: " << (schema_dir / name).string());
    CHECK(files.count(name) == 1);
  }
  for (const auto& name : files) {
    if (name == "envelope.schema.json" || name == "catalog.json") continue;
    INFO("file without a registered (type, schema): " << (schema_dir / name).string());
    CHECK(wanted.count(name) == 1);
  }

  SECTION("each schema file has the $id of events/schema_uri.hpp and describes an object") {
    for (const auto& k : expected) {
      const auto path = schema_dir / file_name(k);
      if (!fs::exists(path)) continue;
      INFO("schema file: " << path.string());
      const auto schema = read_json(path);
      REQUIRE_FALSE(schema.is_discarded());
      CHECK(schema.value("$schema", "") == "https://json-schema.org/draft/2020-12/schema");
      // The $id is the URI the Kafka relay sends as `dataschema` (events/schema_uri.hpp).
      CHECK(schema.value("$id", "") == atrium::event_schema_uri(k.first, k.second));
      CHECK(schema.value("type", "") == "object");
      CHECK(schema.contains("description"));
    }
  }
}

TEST_CASE("catalog.json names exactly the registered (type, schema) pairs, each by its file", "[schemas]") {
  const auto catalog = read_json(schema_dir / "catalog.json");
  REQUIRE(catalog.is_object());
  std::set<key> listed;
  for (const auto& [type, versions] : catalog.items()) {
    REQUIRE(versions.is_object());
    for (const auto& [n, entry] : versions.items()) {
      const key k{type, std::stoi(n)};
      INFO("catalog entry " << type << " " << n);
      CHECK(std::to_string(k.second) == n);
      CHECK(entry == json{{"$ref", file_name(k)}});
      listed.insert(k);
    }
  }
  CHECK(listed == registry_keys());
}
