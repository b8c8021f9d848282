// The scheduler (actors/scheduler.cpp) in the real actor runtime over a real RocksDB and
// the real file result store in a temp dir, with UTC as the only zone and a job executor
// double that succeeds at once. The HTTP-level behaviour (catch_up, DataDocs, rights
// lost through the API) is tested end to end in tests/e2e/scheduler_e2e_test.cpp; here the
// actor itself runs in-process (also under the sanitizers in CI).
#include <catch2/catch.hpp>

#include <future>
#include <set>
#include <thread>

#include "actors/runtime.hpp"
#include "adapters/results/file_result_store.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "events/job/job_decider.hpp"
#include "events/project/project_decider.hpp"
#include "events/schedule/cron.hpp"
#include "events/schedule/schedule_decider.hpp"
#include "events/user/user_decider.hpp"
#include "projections/projections.hpp"
#include "projections/queries.hpp"
#include "tests/support/process.hpp"
#include "tests/support/store.hpp"

using namespace atrium;
using namespace std::chrono_literals;

namespace {

/// Succeeds at once with no rows; counts runs.
class instant_executor final : public ports::job_executor {
 public:
  ports::job_outcome run(const ports::job_spec&, ports::result_writer& out, const ports::progress_fn&,
                         ports::cancel_signal&) override {
    REQUIRE(out.begin({{"n", "int"}}).has_value());
    ++runs;
    return {ports::job_outcome::status::succeeded, "", ""};
  }
  std::atomic<int> runs{0};
};

/// UTC only.
class utc_database final : public zone_database {
 public:
  result<std::shared_ptr<const zone_rules>> locate(std::string_view name) const override {
    if (name == "UTC") return utc_zone();
    return fail(errc::invalid_argument, "unknown time zone", {{"field", "time_zone"}});
  }
};

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<rocksdb_adapter::rocksdb_store> store;
  std::unique_ptr<results_adapter::file_result_store> results;
  std::unique_ptr<ports::queries> queries;
  std::unique_ptr<actor_runtime> runtime;
  instant_executor executor;
  runtime_config config;
  principal owner;
  std::string project;

  fixture() {
    config.jobs.slots = 2;
    config.jobs.executors["script"] = &executor;
    config.schedules.zones = std::make_shared<utc_database>();
    config.schedules.owner_check = 500ms;
    auto opened = test::open_store(dir.path() / "db");
    store = std::move(opened.store);
    auto projections = std::move(opened.projections);
    auto r = results_adapter::file_result_store::open_dir(dir.path() / "results");
    REQUIRE(r.has_value());
    results = std::move(*r);
    queries = make_queries(store->read_models(), store->events());
    config.jobs.results = results.get();
    config.jobs.connections = queries.get();
    config.schedules.queries = queries.get();
    auto rt = actor_runtime::start(store->events(), store->read_models(), std::move(projections), config);
    REQUIRE(rt.has_value());
    runtime = std::move(*rt);

    const auto id = new_uuid_v7();
    REQUIRE(runtime->execute_blocking(id, register_user{id, "olga", "olga@x.org", "member", "$argon2id$fake"},
                                      ports::command_context{principal::system(), "test", std::nullopt}));
    owner = principal{id, {global_role::member}, false};
    project = new_uuid_v7();
    REQUIRE(run(project, project_command{create_project{project, "Ticks", ""}}, owner));
  }
  ~fixture() { runtime.reset(); }

  template <class Command>
  result<ports::command_outcome> run(const std::string& id, Command cmd, const principal& who) {
    std::promise<result<ports::command_outcome>> p;
    auto f = p.get_future();
    runtime->execute(id, std::move(cmd), ports::command_context{who, "test", std::nullopt},
                     [&p](result<ports::command_outcome> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  /// An `@every 1s` schedule of a bash job, owned by `owner`; returns its id.
  std::string every_second() {
    const auto id = new_uuid_v7();
    schedule_target target{.kind = "script", .script = "true", .language = "bash", .timeout_s = 60};
    create_schedule cmd{.schedule_id = id,
                        .project_id = project,
                        .name = "tick",
                        .cron = "@every 1s",
                        .time_zone = "UTC",
                        .target = target,
                        .catch_up = "none",
                        .creator_role = project_role::owner,
                        .time_zone_known = true,
                        .connection_usable = false,
                        .now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())};
    REQUIRE(run(id, schedule_command{cmd}, owner));
    return id;
  }

  std::vector<envelope> events(const std::string& stream) {
    auto r = store->events().read_stream(stream, 1, 100000);
    REQUIRE(r.has_value());
    return *r;
  }
  std::vector<envelope> fired(const std::string& schedule) {
    std::vector<envelope> out;
    for (auto& e : events(schedule_stream(schedule))) {
      if (e.type == "schedule.fired") out.push_back(std::move(e));
    }
    return out;
  }
};

/// Polls `pred` until it holds or `limit` passes (test::wait_until).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 15s) {
  return test::wait_until(std::move(pred), limit);
}

}  // namespace

TEST_CASE("scheduler: an @every 1s schedule fires each instant once, also across a scheduler crash",
          "[actors][scheduler]") {
  fixture fx;
  const auto s = fx.every_second();
  REQUIRE(eventually([&] { return fx.fired(s).size() >= 2; }));
  REQUIRE(fx.runtime->inject_failure("scheduler"));
  REQUIRE(eventually([&] { return fx.fired(s).size() >= 5; }));
  REQUIRE(eventually([&] { return fx.executor.runs >= 5; }));

  std::set<std::string> ids;
  std::optional<std::chrono::sys_seconds> last;
  for (const auto& e : fx.fired(s)) {
    const auto t = parse_utc(e.data.at("fire_time").get<std::string>());
    REQUIRE(t.has_value());
    CHECK(e.id == schedule_fire_event_id(s, *t));  // the deterministic event id
    CHECK(e.actor == "system");
    if (last) CHECK(*t > *last);
    last = *t;
    const auto job = e.data.at("job_ids").at(0).get<std::string>();
    CHECK(job == schedule_job_id(s, *t, 0));
    CHECK(ids.insert(job).second);
  }
  // Each job was submitted once, by the owner, and ran.
  const auto first = *ids.begin();
  REQUIRE(eventually([&] {
    const auto job = fx.events(job_stream(first));
    return !job.empty() && job.back().type == "job.succeeded";
  }));
  const auto job = fx.events(job_stream(first));
  CHECK(job.front().type == "job.submitted");
  CHECK(job.front().actor == "user-" + fx.owner.user_id);
}

TEST_CASE("scheduler: a disabled owner's schedule is paused by the system and fires no more", "[actors][scheduler]") {
  fixture fx;
  const auto s = fx.every_second();
  REQUIRE(eventually([&] { return !fx.fired(s).empty(); }));
  REQUIRE(fx.run(fx.owner.user_id, user_command{disable_user{"left"}}, principal::system()));
  REQUIRE(eventually([&] { return fx.events(schedule_stream(s)).back().type == "schedule.paused"; }));
  const auto paused = fx.events(schedule_stream(s)).back();
  CHECK(paused.actor == "system");
  CHECK(paused.data.at("reason").get<std::string>().find("disabled") != std::string::npos);
  const auto count = fx.fired(s).size();
  std::this_thread::sleep_for(1500ms);
  CHECK(fx.fired(s).size() == count);
}
