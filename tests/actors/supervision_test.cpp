// Supervision of the core actors over a real RocksDB in a temp dir (no mocks): a core
// actor that fails (an exit with an error reason, or a kill no handler can intercept) is
// restarted, health reports it down meanwhile, requests it owed are answered (never left
// hanging), and one that fails too often is fatal.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <mutex>
#include <string>
#include <vector>

#include "actors/runtime.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "events/user/user_decider.hpp"
#include "projections/projections.hpp"
#include "tests/support/process.hpp"
#include "tests/support/store.hpp"

using namespace atrium;
using namespace std::chrono_literals;

namespace {

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<rocksdb_adapter::rocksdb_store> store;
  std::unique_ptr<actor_runtime> runtime;

  explicit fixture(runtime_config config) {
    auto opened = test::open_store(dir.path() / "db");
    store = std::move(opened.store);
    auto projections = std::move(opened.projections);
    config.catch_up_before_start = true;
    auto r = actor_runtime::start(store->events(), store->read_models(), std::move(projections), config);
    REQUIRE(r.has_value());
    runtime = std::move(*r);
  }

  std::string register_(const std::string& name) {
    const auto id = new_uuid_v7();
    auto out = runtime->execute_blocking(id, register_user{id, name, name + "@x.org", "member", "$argon2id$fake"},
                                         ports::command_context{principal::system(), "test", std::nullopt});
    REQUIRE(out.has_value());
    return id;
  }

  /// Starts a project command; the future is set once its completion is called.
  std::future<result<ports::command_outcome>> start(const std::string& project_id, project_command cmd,
                                                    const principal& who) {
    auto p = std::make_shared<std::promise<result<ports::command_outcome>>>();
    auto f = p->get_future();
    runtime->execute(project_id, std::move(cmd), ports::command_context{who, "test", std::nullopt},
                     [p](result<ports::command_outcome> r) { p->set_value(std::move(r)); });
    return f;
  }

  bool down(const std::string& name) const {
    const auto h = runtime->health();
    if (h.healthy) return false;
    for (const auto& d : h.down) {
      if (d.starts_with(name)) return true;
    }
    return false;
  }
};

principal member(const std::string& id) { return principal{id, {global_role::member}, false}; }

/// Waits (polling, with a deadline) for every future; true if all were answered.
template <class T>
bool all_answered(std::vector<std::future<T>>& fs, std::chrono::seconds deadline) {
  return test::wait_until(
      [&] {
        for (auto& f : fs) {
          if (f.wait_for(0s) != std::future_status::ready) return false;
        }
        return true;
      },
      deadline);
}

}  // namespace

TEST_CASE("a failed core actor is restarted and reported down meanwhile", "[actors][supervision]") {
  runtime_config config;
  config.restart_delay = 1500ms;  // long enough to see the actor down
  fixture fx(config);
  const auto who = member(fx.register_("alice"));
  REQUIRE(fx.runtime->health().healthy);

  for (const bool kill : {false, true}) {
    INFO((kill ? "killed" : "exit with an error reason"));
    REQUIRE(fx.runtime->inject_failure("event-store-writer", kill));
    REQUIRE(test::wait_until([&] { return fx.down("event-store-writer"); }, 5s));
    // While it is down, commands are answered at once with `unavailable`.
    const auto refused_id = new_uuid_v7();
    auto refused = fx.start(refused_id, create_project{refused_id, "While down", ""}, who).get();
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::unavailable);
    CHECK_THAT(refused.error().message, Catch::Contains("event-store writer"));

    REQUIRE(test::wait_until([&] { return fx.runtime->health().healthy; }, 10s));
    const auto id = new_uuid_v7();
    auto created = fx.start(id, create_project{id, "After restart", ""}, who).get();
    INFO((created ? std::string("ok") : created.error().message));
    REQUIRE(created.has_value());
  }
  auto chain = fx.store->events().verify_chain();
  REQUIRE(chain.has_value());
  CHECK(chain->ok);
}

TEST_CASE("every core actor is restarted after it fails, and the system keeps working", "[actors][supervision]") {
  runtime_config config;
  config.restart_delay = 300ms;  // long enough to see it down
  fixture fx(config);
  const auto who = member(fx.register_("bob"));
  for (const char* name :
       {"gateway", "entity-registry", "event-store-writer", "projection-runner", "subscription-hub"}) {
    INFO(name);
    REQUIRE(fx.runtime->inject_failure(name, true));
    REQUIRE(test::wait_until([&] { return fx.down(name); }, 10s));
    // Restarted: healthy again, and a command goes all the way through (and its
    // projections are applied: read-your-writes through the restarted runner).
    REQUIRE(test::wait_until(
        [&] {
          if (!fx.runtime->health().healthy) return false;
          const auto id = new_uuid_v7();
          auto r = fx.start(id, create_project{id, std::string("After ") + name, ""}, who).get();
          return r.has_value();
        },
        10s));
  }
  CHECK_FALSE(fx.runtime->inject_failure("no-such-actor"));
  // The projections caught up with everything committed.
  REQUIRE(test::wait_until(
      [&] {
        std::promise<ports::projections_report> q;
        fx.runtime->report([&q](ports::projections_report r) { q.set_value(std::move(r)); });
        auto r = q.get_future().get();
        for (const auto& proj : r.projections) {
          if (proj.checkpoint != fx.store->events().head_position()) return false;
        }
        return !r.projections.empty();
      },
      10s));
}

TEST_CASE("requests pending at a failing actor are answered, never left hanging", "[actors][supervision]") {
  runtime_config config;
  config.restart_delay = 10ms;
  fixture fx(config);
  const auto who = member(fx.register_("carol"));
  for (const char* name : {"event-store-writer", "entity-registry", "gateway"}) {
    INFO(name);
    std::vector<std::future<result<ports::command_outcome>>> pending;
    for (int i = 0; i < 300; ++i) {
      const auto id = new_uuid_v7();
      pending.push_back(fx.start(id, create_project{id, "p" + std::to_string(i), ""}, who));
      if (i == 50) REQUIRE(fx.runtime->inject_failure(name, true));
    }
    // Each is answered: committed, or `unavailable` (whatever was in flight at the
    // failure), none waits forever.
    REQUIRE(all_answered(pending, 30s));
    int ok = 0;
    int unavailable = 0;
    for (auto& f : pending) {
      auto r = f.get();
      if (r) {
        ++ok;
      } else {
        CHECK(r.error().code == errc::unavailable);
        ++unavailable;
      }
    }
    CHECK(ok + unavailable == 300);
    REQUIRE(test::wait_until([&] { return fx.runtime->health().healthy; }, 10s));
  }
  // Nothing committed is lost or torn. An append answered `unavailable` may still commit
  // afterwards (its outcome was unknown): wait until the head stays put, then verify.
  std::uint64_t head = fx.store->events().head_position();
  REQUIRE(test::wait_until(
      [&] {
        std::this_thread::sleep_for(200ms);
        const auto now = fx.store->events().head_position();
        const bool still = now == head;
        head = now;
        return still;
      },
      30s));
  auto chain = fx.store->events().verify_chain();
  REQUIRE(chain.has_value());
  CHECK(chain->ok);
  CHECK(chain->count == fx.store->events().head_position());
}

TEST_CASE("an actor that keeps failing is fatal: on_fatal is called once and health stays down",
          "[actors][supervision]") {
  runtime_config config;
  config.restart_delay = 300ms;  // long enough to see it down before it is restarted
  config.max_restarts = 1;
  std::mutex mu;
  std::vector<std::string> fatal;
  config.on_fatal = [&](const std::string& why) {
    std::lock_guard lock(mu);
    fatal.push_back(why);
  };
  fixture fx(config);
  REQUIRE(fx.runtime->inject_failure("projection-runner"));
  REQUIRE(test::wait_until([&] { return fx.down("projection-runner"); }, 10s));
  REQUIRE(test::wait_until([&] { return fx.runtime->health().healthy; }, 10s));
  REQUIRE(fx.runtime->inject_failure("projection-runner"));
  REQUIRE(test::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return !fatal.empty();
      },
      10s));
  {
    std::lock_guard lock(mu);
    REQUIRE(fatal.size() == 1);
    CHECK_THAT(fatal[0], Catch::Contains("projection-runner") && Catch::Contains("giving up"));
  }
  const auto h = fx.runtime->health();
  CHECK_FALSE(h.healthy);
  CHECK_FALSE(h.down.empty());
}
