// The actor runtime over a real RocksDB in a temp dir: commands through the registry
// and entity actors, concurrency on one entity, username uniqueness, projections.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>

#include "actors/runtime.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "events/user/user_decider.hpp"
#include "projections/projections.hpp"
#include "tests/support/process.hpp"
#include "tests/support/store.hpp"

using namespace atrium;

namespace {

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<rocksdb_adapter::rocksdb_store> store;
  std::unique_ptr<actor_runtime> runtime;
  runtime_config config;

  explicit fixture(std::uint64_t snapshot_every = 100) {
    config.snapshot_every = snapshot_every;
    open();
  }
  explicit fixture(runtime_config c) : config(c) { open(); }

  void open() {
    auto opened = test::open_store(dir.path() / "db");
    store = std::move(opened.store);
    auto projections = std::move(opened.projections);
    auto r = actor_runtime::start(store->events(), store->read_models(), std::move(projections), config);
    REQUIRE(r.has_value());
    runtime = std::move(*r);
  }

  void reopen() {
    runtime.reset();
    store.reset();
    open();
  }

  result<ports::command_outcome> run(const std::string& project_id, project_command cmd, const principal& who,
                                     std::optional<std::uint64_t> expected = {}) {
    std::promise<result<ports::command_outcome>> p;
    auto f = p.get_future();
    runtime->execute(project_id, std::move(cmd), ports::command_context{who, "test", expected},
                     [&p](result<ports::command_outcome> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  result<ports::command_outcome> register_(const std::string& name) {
    const auto id = new_uuid_v7();
    return runtime->execute_blocking(id, register_user{id, name, name + "@x.org", "member", "$argon2id$fake"},
                                     ports::command_context{principal::system(), "test", std::nullopt});
  }
};

principal member(const std::string& id) { return principal{id, {global_role::member}, false}; }

}  // namespace

TEST_CASE("commands go through entity actors and land in the store and projections", "[actors]") {
  fixture fx;
  auto alice = fx.register_("alice");
  REQUIRE(alice.has_value());
  CHECK(alice->version == 1);
  CHECK(alice->events.size() == 2);  // user.registered + username.claimed
  CHECK(alice->view.at("username") == "alice");

  const auto who = member(alice->view.at("id").get<std::string>());
  auto created = fx.run("p1", create_project{"p1", "Plates", ""}, who);
  REQUIRE(created.has_value());
  CHECK(created->version == 2);
  CHECK(created->position == 4);

  // Read-your-writes: once awaited, the projection shows the command.
  std::promise<void> ready;
  fx.runtime->await_projections(created->position, [&ready] { ready.set_value(); });
  ready.get_future().get();
  auto row = fx.store->read_models().get("projects", "projects", "p1");
  REQUIRE(row.has_value());
  REQUIRE(row->has_value());
  CHECK((**row).at("name") == "Plates");
  auto audit = fx.store->read_models().scan("audit", "entries", "", "", 100, false);
  REQUIRE(audit.has_value());
  CHECK(audit->size() == 4);

  // A stale expected version is refused with the current one.
  auto stale = fx.run("p1", update_project{"New", std::nullopt}, who, 1);
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error().code == errc::version_conflict);
  CHECK(stale.error().details.at("current_version") == 2);

  // Unknown entities are not found (and no actor is kept for them).
  auto missing = fx.run("nope", update_project{"x", std::nullopt}, who);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == errc::not_found);
}

TEST_CASE("concurrent commands on one entity are serialized without spurious conflicts", "[actors]") {
  fixture fx;
  auto alice = fx.register_("alice");
  REQUIRE(alice.has_value());
  const auto who = member(alice->view.at("id").get<std::string>());
  REQUIRE(fx.run("p", create_project{"p", "P", ""}, who).has_value());

  constexpr int n = 50;
  std::vector<std::promise<result<ports::command_outcome>>> promises(n);
  for (int i = 0; i < n; ++i) {
    fx.runtime->execute("p", update_project{"name " + std::to_string(i), std::nullopt},
                        ports::command_context{who, "c" + std::to_string(i), std::nullopt},
                        [&promises, i](result<ports::command_outcome> r) { promises[i].set_value(std::move(r)); });
  }
  std::set<std::uint64_t> versions;
  for (auto& p : promises) {
    auto r = p.get_future().get();
    REQUIRE(r.has_value());
    versions.insert(r->version);
  }
  CHECK(versions.size() == n);
  CHECK(*versions.rbegin() == 2 + n);
  CHECK(fx.store->events().stream_version("project-p").value() == 2 + n);
}

TEST_CASE("a username is unique even under concurrent registrations", "[actors]") {
  fixture fx;
  constexpr int n = 8;
  std::vector<std::future<result<ports::command_outcome>>> futures;
  for (int i = 0; i < n; ++i) futures.push_back(std::async(std::launch::async, [&fx] { return fx.register_("dora"); }));
  int ok = 0;
  int taken = 0;
  for (auto& f : futures) {
    auto r = f.get();
    if (r) {
      ++ok;
    } else if (r.error().code == errc::already_exists) {
      ++taken;
    }
  }
  CHECK(ok == 1);
  CHECK(taken == n - 1);
  auto idx = fx.store->read_models().get("users", "usernames", "dora");
  REQUIRE(idx.has_value());
  CHECK(idx->has_value());
}

TEST_CASE("entities hydrate from their stream after a restart", "[actors]") {
  fixture fx;
  auto alice = fx.register_("alice");
  REQUIRE(alice.has_value());
  const auto who = member(alice->view.at("id").get<std::string>());
  REQUIRE(fx.run("p", create_project{"p", "P", ""}, who).has_value());
  REQUIRE(fx.run("p", update_project{"Q", std::nullopt}, who).has_value());
  fx.reopen();
  // The new actor folds the stream: it knows the version and that alice owns it.
  auto r = fx.run("p", update_project{"R", std::nullopt}, who, 3);
  REQUIRE(r.has_value());
  CHECK(r->version == 4);
  CHECK(r->view.at("name") == "R");
  auto outsider = fx.run("p", update_project{"S", std::nullopt}, member("someone-else"));
  REQUIRE_FALSE(outsider.has_value());
  CHECK(outsider.error().code == errc::forbidden);
}

TEST_CASE("a command retried with the same command id is answered with the events already committed",
          "[actors][idempotency]") {
  fixture fx;
  auto alice = fx.register_("alice");
  REQUIRE(alice.has_value());
  const auto who = member(alice->view.at("id").get<std::string>());
  auto run = [&](const std::string& id) {
    std::promise<result<ports::command_outcome>> p;
    auto f = p.get_future();
    fx.runtime->execute(id, create_project{id, "Once", ""}, ports::command_context{who, "req", std::nullopt, "cmd-42"},
                        [&p](result<ports::command_outcome> r) { p.set_value(std::move(r)); });
    return f.get();
  };
  auto first = run("p-first");
  REQUIRE(first.has_value());
  const auto head = fx.store->events().head_position();
  // The retry addresses a new id (as a create retried after a crash would): the store
  // recognises the event ids and answers with the original events, writing nothing.
  auto retry = run("p-retry");
  REQUIRE(retry.has_value());
  CHECK(fx.store->events().head_position() == head);
  REQUIRE(retry->events.size() == 2);
  CHECK(retry->events[0].stream == "project-p-first");
  CHECK(retry->events[0].id == "cmd-42.0");
  CHECK(retry->events[1].id == "cmd-42.1");
  CHECK(fx.store->events().stream_version("project-p-retry").value() == 0);
}

TEST_CASE("entities snapshot every N events and hydrate from the newest snapshot", "[actors][snapshot]") {
  fixture fx(3);
  auto alice = fx.register_("alice");
  REQUIRE(alice.has_value());
  const auto who = member(alice->view.at("id").get<std::string>());
  REQUIRE(fx.run("p", create_project{"p", "v0", ""}, who).has_value());  // version 2
  for (int i = 1; i <= 5; ++i) REQUIRE(fx.run("p", update_project{"v" + std::to_string(i), std::nullopt}, who));
  // Versions 1..7: snapshots were taken at 3 and 6; the newest is kept.
  auto snap = fx.store->events().load_snapshot("project-p");
  REQUIRE(snap.has_value());
  REQUIRE(snap->has_value());
  CHECK((*snap)->version == 6);
  CHECK((*snap)->state.at("name") == "v4");

  SECTION("a snapshot of the current schema is used: the state comes from it") {
    // Mark the snapshot so that hydration through it is visible.
    auto marked = **snap;
    marked.state["description"] = "from-snapshot";
    REQUIRE(fx.store->events().save_snapshot("project-p", marked).has_value());
    fx.reopen();
    auto r = fx.run("p", update_project{"v6", std::nullopt}, who, 7);
    REQUIRE(r.has_value());
    CHECK(r->version == 8);
    CHECK(r->view.at("description") == "from-snapshot");  // folded from the snapshot...
    CHECK(r->view.at("name") == "v6");                    // ...plus the events after it
  }
  SECTION("a snapshot of another schema is ignored and the stream replayed") {
    auto stale = **snap;
    stale.schema = 999;
    stale.state = {{"not", "a project"}};
    REQUIRE(fx.store->events().save_snapshot("project-p", stale).has_value());
    fx.reopen();
    auto r = fx.run("p", update_project{"v6", std::nullopt}, who, 7);
    REQUIRE(r.has_value());
    CHECK(r->version == 8);
    CHECK(r->view.at("description") == "");
    CHECK(r->view.at("members").size() == 1);
  }
  SECTION("an undecodable snapshot is ignored too") {
    auto broken = **snap;
    broken.state = {{"id", 5}};
    REQUIRE(fx.store->events().save_snapshot("project-p", broken).has_value());
    fx.reopen();
    auto r = fx.run("p", update_project{"v6", std::nullopt}, who, 7);
    REQUIRE(r.has_value());
    CHECK(r->view.at("name") == "v6");
    CHECK(r->view.at("created_by") == who.user_id);
  }
}

TEST_CASE("idle entities are passivated and come back hydrated", "[actors][passivation]") {
  runtime_config c;
  c.passivate_after = std::chrono::milliseconds(200);
  fixture fx(c);
  auto alice = fx.register_("alice");
  REQUIRE(alice.has_value());
  const auto who = member(alice->view.at("id").get<std::string>());
  REQUIRE(fx.run("p", create_project{"p", "P", ""}, who).has_value());
  REQUIRE(fx.run("p", update_project{"Q", std::nullopt}, who).has_value());
  CHECK(fx.runtime->entity_stats().first == 2);  // alice and p
  REQUIRE(test::wait_until([&] { return fx.runtime->entity_stats().first == 0; }, std::chrono::seconds(10)));
  CHECK(fx.runtime->entity_stats().second >= 2);
  // The next command spawns p again, hydrated from its stream.
  auto r = fx.run("p", update_project{"R", std::nullopt}, who, 3);
  REQUIRE(r.has_value());
  CHECK(r->version == 4);
  CHECK(fx.runtime->entity_stats().first == 1);
}

TEST_CASE("no more than max_live entity actors live at once", "[actors][passivation]") {
  runtime_config c;
  c.max_live_entities = 10;
  c.passivate_after = std::chrono::hours(1);
  fixture fx(c);
  auto alice = fx.register_("alice");
  REQUIRE(alice.has_value());
  const auto who = member(alice->view.at("id").get<std::string>());
  for (int i = 0; i < 50; ++i) {
    const auto id = "p" + std::to_string(i);
    REQUIRE(fx.run(id, create_project{id, "P", ""}, who).has_value());
    CHECK(fx.runtime->entity_stats().first <= 11);  // the bound, plus at most the one in flight
  }
  CHECK(fx.runtime->entity_stats().first <= 10);
  CHECK(fx.runtime->entity_stats().second >= 40);
  // Every entity still answers, hydrated again where it was passivated.
  for (int i = 0; i < 50; ++i) {
    const auto id = "p" + std::to_string(i);
    auto r = fx.run(id, update_project{"renamed", std::nullopt}, who, 2);
    REQUIRE(r.has_value());
    CHECK(r->version == 3);
  }
}
