/// The authentication caches (adapters/http/auth_cache.hpp) and the change counters they
/// rely on (projections/read_model_watch.hpp), over a real RocksDB store in a temp dir:
/// what is kept, and that every write that could change a kept value drops it.

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "adapters/http/auth_cache.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/queries.hpp"
#include "projections/read_model_watch.hpp"
#include "projections/views.hpp"
#include "tests/support/process.hpp"

namespace {

using atrium::global_role;
using atrium::mutation;
using atrium::row_delete;
using atrium::row_put;
using atrium::user_state;
using atrium::http_adapter::cached_token_store;
using atrium::http_adapter::principal_cache;
using atrium::ports::session_record;
using atrium::rocksdb_adapter::rocksdb_store;

std::unique_ptr<rocksdb_store> open_store(const atrium::test::temp_dir& dir) {
  auto r = rocksdb_store::open((dir.path() / "db").string(), {"users", "groups", "projects"});
  REQUIRE(r.has_value());
  return std::move(*r);
}

user_state user(const std::string& id, bool disabled = false) {
  user_state s;
  s.exists = true;
  s.user_id = id;
  s.username = "name-" + id;
  s.roles = {global_role::member};
  s.disabled = disabled;
  s.version = 1;
  return s;
}

/// Commits `m` to the `users` projection (slot 0) at `position`.
void commit(atrium::watched_read_models& rows, const std::string& projection, std::vector<mutation> m,
            std::uint64_t position) {
  REQUIRE(rows.commit(atrium::ports::slot_name(projection, 0), m, position).has_value());
}

}  // namespace

TEST_CASE("watched read models count commits with rows, resets and activations of watched projections",
          "[auth_cache]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir);
  atrium::watched_read_models rows(store->read_models(), {"users", "groups"});
  CHECK(rows.changes("users") == 0);
  CHECK(rows.changes("groups") == 0);
  CHECK_FALSE(rows.changes("projects").has_value());  // not watched: never "unchanged"
  CHECK_FALSE(rows.changes("users~0").has_value());

  commit(rows, "users", {}, 1);  // a checkpoint alone is no change
  CHECK(rows.changes("users") == 0);
  commit(rows, "users", {row_put{"users", "u1", atrium::user_row(user("u1"))}}, 2);
  CHECK(rows.changes("users") == 1);
  CHECK(rows.changes("groups") == 0);
  commit(rows, "projects", {row_put{"projects", "p1", nlohmann::json::object()}}, 3);
  CHECK(rows.changes("users") == 1);
  REQUIRE(rows.reset(atrium::ports::slot_name("groups", 1)).has_value());
  CHECK(rows.changes("groups") == 1);
  // Reads pass through.
  auto row = rows.get("users", "users", "u1");
  REQUIRE(row.has_value());
  REQUIRE(row->has_value());
  CHECK(atrium::user_from_row(**row).user_id == "u1");
}

TEST_CASE("the token cache keeps what it read and drops it on every write", "[auth_cache]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir);
  cached_token_store tokens(store->kv(), 2);
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  REQUIRE(tokens.put(a, session_record{"u1", 1, 0}).has_value());
  REQUIRE(tokens.put(b, session_record{"u2", 1, 0}).has_value());
  CHECK(tokens.size() == 0);  // nothing is kept before it is read
  auto unknown = tokens.get(c);
  REQUIRE(unknown.has_value());
  CHECK_FALSE(unknown->has_value());
  CHECK(tokens.size() == 0);  // unknown tokens are never kept

  REQUIRE(tokens.get(a).value().has_value());
  REQUIRE(tokens.get(b).value().has_value());
  CHECK(tokens.size() == 2);
  // Erased through the cache: gone at once, from the store too.
  REQUIRE(tokens.erase(a).has_value());
  CHECK_FALSE(tokens.get(a).value().has_value());
  CHECK_FALSE(store->kv().get(a).value().has_value());
  // A put replaces what was kept.
  REQUIRE(tokens.put(b, session_record{"u3", 1, 0}).has_value());
  CHECK(tokens.get(b).value()->user_id == "u3");
  // Ending a user's sessions drops every kept record.
  REQUIRE(tokens.erase_user("u3", "").has_value());
  CHECK_FALSE(tokens.get(b).value().has_value());
  // Bounded: at most 2 kept.
  for (char ch : {'d', 'e', 'f'}) {
    const std::string h(64, ch);
    REQUIRE(tokens.put(h, session_record{"u4", 1, 0}).has_value());
    REQUIRE(tokens.get(h).value().has_value());
  }
  CHECK(tokens.size() == 2);
}

TEST_CASE("the token cache notes uses on kept records", "[auth_cache]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir);
  cached_token_store tokens(store->kv());
  const std::string a(64, 'a');
  session_record api{"u1", 1, 0, atrium::ports::token_kind::api, "t1", "ci", {"admin"}, "u1", 0};
  REQUIRE(tokens.put(a, api).has_value());
  REQUIRE(tokens.get(a).value()->last_used_at == 0);
  REQUIRE(tokens.touch(a, 1234).has_value());
  CHECK(tokens.get(a).value()->last_used_at == 1234);
  CHECK(store->kv().get(a).value()->last_used_at == 1234);
}

TEST_CASE("the principal cache keeps a user until a user or group row changes", "[auth_cache]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir);
  atrium::watched_read_models rows(store->read_models(), {"users", "groups"});
  auto queries = atrium::make_queries(rows, store->events());
  principal_cache principals(*queries, &rows);

  commit(rows, "users", {row_put{"users", "u1", atrium::user_row(user("u1"))}}, 1);
  auto first = principals.resolve("u1");
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK((*first)->username == "name-u1");
  CHECK_FALSE((*first)->who.disabled);
  CHECK((*first)->who.groups.empty());
  CHECK(principals.size() == 1);
  auto missing = principals.resolve("nobody");
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());
  CHECK(principals.size() == 1);

  // A row written behind the counters' back (never done by the server) is not seen:
  // the entry is what is served while nothing counted changed.
  REQUIRE(store->read_models()
              .commit("users~0", {row_put{"users", "u1", atrium::user_row(user("u1", true))}}, 2)
              .has_value());
  CHECK_FALSE(principals.resolve("u1").value()->who.disabled);

  // Through the counted store: seen at once.
  commit(rows, "users", {row_put{"users", "u1", atrium::user_row(user("u1", true))}}, 3);
  CHECK(principals.resolve("u1").value()->who.disabled);

  // A group change (u1 into g1) is seen at once too.
  commit(rows, "groups", {row_put{"user_groups", "u1/g1", nlohmann::json::object()}}, 4);
  CHECK(principals.resolve("u1").value()->who.groups == std::set<std::string>{"g1"});
  commit(rows, "groups", {row_delete{"user_groups", "u1/g1"}}, 5);
  CHECK(principals.resolve("u1").value()->who.groups.empty());
}

TEST_CASE("without change counters the principal cache keeps nothing", "[auth_cache]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir);
  auto queries = atrium::make_queries(store->read_models(), store->events());
  principal_cache principals(*queries, nullptr);
  REQUIRE(
      store->read_models().commit("users~0", {row_put{"users", "u1", atrium::user_row(user("u1"))}}, 1).has_value());
  REQUIRE(principals.resolve("u1").value().has_value());
  CHECK(principals.size() == 0);
  REQUIRE(store->read_models()
              .commit("users~0", {row_put{"users", "u1", atrium::user_row(user("u1", true))}}, 2)
              .has_value());
  CHECK(principals.resolve("u1").value()->who.disabled);
}
