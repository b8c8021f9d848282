// The job dispatcher (actors/job_dispatcher.cpp) in the real actor runtime over a real
// RocksDB and the real file result store, both in a temp dir. The executor is a small
// test double implementing the port: the job's source says what it does
// (`rows N`, `fail TEXT`, `block`, `block-first`, `gate`, `progress MS`); the real
// executors are tested in tests/adapters and end to end.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <sstream>
#include <thread>

#include "actors/runtime.hpp"
#include "adapters/results/file_result_store.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "events/job/job_decider.hpp"
#include "projections/projections.hpp"
#include "projections/queries.hpp"
#include "tests/support/process.hpp"
#include "tests/support/store.hpp"

using namespace atrium;
using namespace std::chrono_literals;

namespace {

/// Does what the job's source says; records starts and concurrency.
class test_executor final : public ports::job_executor {
 public:
  ports::job_outcome run(const ports::job_spec& spec, ports::result_writer& out, const ports::progress_fn& progress,
                         ports::cancel_signal& cancel) override {
    {
      std::lock_guard lock(mu_);
      started_.push_back(spec.job_id);
      max_running_ = std::max(max_running_, ++running_);
    }
    auto outcome = act(spec, out, progress, cancel);
    std::lock_guard lock(mu_);
    --running_;
    return outcome;
  }

  std::vector<std::string> started() {
    std::lock_guard lock(mu_);
    return started_;
  }
  int max_running() {
    std::lock_guard lock(mu_);
    return max_running_;
  }
  int running() {
    std::lock_guard lock(mu_);
    return running_;
  }
  void open_gate() { gate_ = true; }

 private:
  static ports::job_outcome succeeded() { return {ports::job_outcome::status::succeeded, "", ""}; }
  static ports::job_outcome interrupted() { return {ports::job_outcome::status::interrupted, "", ""}; }

  /// Waits until `until()` or a cancel request; interrupted if cancelled.
  template <class Until>
  static ports::job_outcome wait(ports::cancel_signal& cancel, Until until) {
    while (!until()) {
      if (cancel.requested()) return interrupted();
      std::this_thread::sleep_for(5ms);
    }
    return succeeded();
  }

  ports::job_outcome act(const ports::job_spec& spec, ports::result_writer& out, const ports::progress_fn& progress,
                         ports::cancel_signal& cancel) {
    std::istringstream words(spec.source);
    std::string verb;
    words >> verb;
    if (verb == "rows") {
      std::size_t n = 0;
      words >> n;
      REQUIRE(out.begin({{"n", "int"}, {"label", "text"}}).has_value());
      ports::row_batch batch{2, {}};
      for (std::size_t i = 0; i < n; ++i) {
        batch.cells.emplace_back(std::to_string(i));
        batch.cells.emplace_back("row " + std::to_string(i));
      }
      REQUIRE(out.append(batch).has_value());
      return succeeded();
    }
    if (verb == "fail") {
      std::string text;
      std::getline(words >> std::ws, text);
      return {ports::job_outcome::status::failed, text, "42601"};
    }
    if (verb == "block") return wait(cancel, [] { return false; });
    if (verb == "block-first") {
      if (spec.attempt == 1) return wait(cancel, [] { return false; });
      return succeeded();
    }
    if (verb == "gate") return wait(cancel, [this] { return gate_.load(); });
    if (verb == "progress") {
      int ms = 0;
      words >> ms;
      const auto t0 = std::chrono::steady_clock::now();
      std::uint64_t rows = 0;
      return wait(cancel, [&] {
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        progress(ports::job_progress{++rows, rows * 10, std::nullopt, elapsed});
        return elapsed.count() >= ms;
      });
    }
    return {ports::job_outcome::status::failed, "unknown test verb " + verb, ""};
  }

  std::mutex mu_;
  std::vector<std::string> started_;
  int running_ = 0;
  int max_running_ = 0;
  std::atomic<bool> gate_{false};
};

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<rocksdb_adapter::rocksdb_store> store;
  std::unique_ptr<results_adapter::file_result_store> results;
  std::unique_ptr<ports::queries> queries;
  std::unique_ptr<actor_runtime> runtime;
  test_executor executor;
  runtime_config config;

  explicit fixture(std::size_t slots) {
    config.jobs.slots = slots;
    config.jobs.runner_name = "test/host";
    config.jobs.executors["script"] = &executor;
    open();
  }
  ~fixture() { runtime.reset(); }

  void open() {
    auto opened = test::open_store(dir.path() / "db");
    store = std::move(opened.store);
    auto projections = std::move(opened.projections);
    auto r = results_adapter::file_result_store::open_dir(dir.path() / "results");
    REQUIRE(r.has_value());
    results = std::move(*r);
    queries = make_queries(store->read_models(), store->events());
    config.jobs.results = results.get();
    config.jobs.connections = queries.get();
    auto rt = actor_runtime::start(store->events(), store->read_models(), std::move(projections), config);
    REQUIRE(rt.has_value());
    runtime = std::move(*rt);
  }

  void reopen(std::size_t slots) {
    runtime.reset();
    store.reset();
    config.jobs.slots = slots;
    open();
  }

  result<ports::command_outcome> run(const std::string& id, job_command cmd) {
    std::promise<result<ports::command_outcome>> p;
    auto f = p.get_future();
    runtime->execute(id, std::move(cmd), ports::command_context{principal::system(), "test", std::nullopt},
                     [&p](result<ports::command_outcome> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  std::string submit(const std::string& project, const std::string& script, std::uint32_t timeout_s = 60,
                     std::uint32_t max_attempts = 1) {
    const auto id = new_uuid_v7();
    submit_job cmd{id, project, "script", "", "", script, timeout_s, std::nullopt, false, "bash", max_attempts, ""};
    auto r = run(id, cmd);
    REQUIRE(r.has_value());
    return id;
  }

  std::vector<envelope> events(const std::string& job_id) {
    auto r = store->events().read_stream(job_stream(job_id), 1, 100000);
    REQUIRE(r.has_value());
    return *r;
  }
  std::vector<std::string> types(const std::string& job_id) {
    std::vector<std::string> out;
    for (const auto& e : events(job_id)) out.push_back(e.type);
    return out;
  }
  std::size_t count(const std::string& job_id, std::string_view type) {
    const auto t = types(job_id);
    return static_cast<std::size_t>(std::count(t.begin(), t.end(), type));
  }
  std::size_t terminals(const std::string& job_id) {
    std::size_t n = 0;
    for (const auto& t : types(job_id)) {
      n += t == "job.succeeded" || t == "job.failed" || t == "job.cancelled" || t == "job.timed_out";
    }
    return n;
  }
  /// The payload of the job's last event of `type` (null if none).
  nlohmann::json payload(const std::string& job_id, std::string_view type) {
    nlohmann::json out;
    for (const auto& e : events(job_id)) {
      if (e.type == type) out = e.data;
    }
    return out;
  }
  bool has(const std::string& job_id, std::string_view type) { return count(job_id, type) > 0; }
};

/// Polls `pred` until it holds or `limit` passes (test::wait_until).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  return test::wait_until(std::move(pred), limit);
}

}  // namespace

TEST_CASE("dispatcher: a job runs to success with its rows, columns and stored result", "[actors][jobs]") {
  fixture fx(2);
  const auto id = fx.submit("p1", "rows 5");
  REQUIRE(eventually([&] { return fx.has(id, "job.succeeded"); }));
  CHECK(fx.types(id) == std::vector<std::string>{"job.submitted", "job.queued", "job.started", "job.succeeded"});
  const auto started = fx.payload(id, "job.started");
  CHECK(started.at("attempt") == 1);
  CHECK(started.at("runner") == "test/host/slot-1");
  const auto done = fx.payload(id, "job.succeeded");
  CHECK(done.at("rows") == 5);
  CHECK(done.at("truncated") == false);
  CHECK(done.at("columns") == nlohmann::json::parse(R"([{"name":"n","type":"int"},{"name":"label","type":"text"}])"));
  auto reader = fx.results->open(id);
  REQUIRE(reader.has_value());
  CHECK((*reader)->info().total_rows == 5);
}

TEST_CASE("dispatcher: a failing job ends in job.failed with its error and SQLSTATE", "[actors][jobs]") {
  fixture fx(1);
  const auto id = fx.submit("p1", "fail syntax error at or near \"selec\"");
  REQUIRE(eventually([&] { return fx.has(id, "job.failed"); }));
  const auto failed = fx.payload(id, "job.failed");
  CHECK(failed.at("error") == "syntax error at or near \"selec\"");
  CHECK(failed.at("sqlstate") == "42601");
  CHECK(fx.terminals(id) == 1);
}

TEST_CASE("dispatcher: a sql job whose connection is gone, or a kind without executor, fails clearly",
          "[actors][jobs]") {
  fixture fx(1);
  const auto id = new_uuid_v7();
  const auto conn = new_uuid_v7();
  REQUIRE(fx.run(id, submit_job{id, "p1", "sql", conn, "select 1", "", 60, std::nullopt, true, "", 1, ""}));
  REQUIRE(eventually([&] { return fx.has(id, "job.failed"); }));
  CHECK(fx.payload(id, "job.failed").at("error") == "connection " + conn + " no longer exists");
  CHECK(fx.executor.started().empty());
}

TEST_CASE("dispatcher: with 0 slots nothing runs and jobs stay queued", "[actors][jobs]") {
  fixture fx(0);
  const auto id = fx.submit("p1", "rows 1");
  std::this_thread::sleep_for(1500ms);  // long enough for a dispatcher with a slot to have started it
  CHECK(fx.types(id) == std::vector<std::string>{"job.submitted", "job.queued"});
  CHECK(fx.executor.started().empty());
}

TEST_CASE("dispatcher: queued jobs survive a restart and are taken fairly across projects", "[actors][jobs]") {
  fixture fx(0);
  std::vector<std::string> a;
  for (int i = 0; i < 20; ++i) a.push_back(fx.submit("project-a", "rows 1"));
  const auto b = fx.submit("project-b", "rows 1");
  fx.reopen(1);
  REQUIRE(eventually(
      [&] {
        for (const auto& id : a) {
          if (!fx.has(id, "job.succeeded")) return false;
        }
        return fx.has(b, "job.succeeded");
      },
      30s));
  const auto order = fx.executor.started();
  REQUIRE(order.size() == 21);
  const auto pos = [&](const std::string& id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
  CHECK(pos(b) < pos(a[2]));                                                    // B's one job before A's third
  for (std::size_t i = 1; i < a.size(); ++i) CHECK(pos(a[i - 1]) < pos(a[i]));  // FIFO within a project
  CHECK(fx.executor.max_running() == 1);
}

TEST_CASE("dispatcher: at most `slots` attempts run at once", "[actors][jobs]") {
  fixture fx(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(fx.submit("p" + std::to_string(i % 3), "progress 300"));
  REQUIRE(eventually(
      [&] {
        for (const auto& id : ids) {
          if (!fx.has(id, "job.succeeded")) return false;
        }
        return true;
      },
      30s));
  CHECK(fx.executor.max_running() <= 2);
  CHECK(fx.executor.started().size() == 6);
}

TEST_CASE("dispatcher: progress is appended at most twice a second per job, the newest only", "[actors][jobs]") {
  fixture fx(1);
  const auto t0 = std::chrono::steady_clock::now();
  const auto id = fx.submit("p1", "progress 3000");  // reports every 5 ms for 3 s
  REQUIRE(eventually([&] { return fx.has(id, "job.succeeded"); }, 20s));
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto progressed = fx.count(id, "job.progressed");
  CHECK(progressed >= 1);
  CHECK(progressed <= static_cast<std::size_t>(2 * seconds) + 1);
  // Rows grow from one report to the next (the newest was kept each time).
  std::uint64_t last = 0;
  for (const auto& e : fx.events(id)) {
    if (e.type != "job.progressed") continue;
    CHECK(e.data.at("rows").get<std::uint64_t>() > last);
    last = e.data.at("rows").get<std::uint64_t>();
  }
}

TEST_CASE("dispatcher: cancelling a running job stops it with exactly one job.cancelled", "[actors][jobs]") {
  fixture fx(1);
  const auto id = fx.submit("p1", "block");
  REQUIRE(eventually([&] { return fx.executor.running() == 1 && fx.has(id, "job.started"); }));
  REQUIRE(fx.run(id, request_cancel{"enough", std::nullopt}).has_value());
  REQUIRE(eventually([&] { return fx.has(id, "job.cancelled"); }));
  REQUIRE(eventually([&] { return fx.executor.running() == 0; }));
  std::this_thread::sleep_for(600ms);  // a tick later: nothing more is appended
  CHECK(fx.terminals(id) == 1);
  CHECK(fx.count(id, "job.cancelled") == 1);
}

TEST_CASE("dispatcher: a job past its timeout is stopped with job.timed_out", "[actors][jobs]") {
  fixture fx(1);
  const auto id = fx.submit("p1", "block", 1);
  REQUIRE(eventually([&] { return fx.has(id, "job.timed_out"); }));
  CHECK(fx.payload(id, "job.timed_out").at("after_s").get<int>() >= 1);
  CHECK(fx.terminals(id) == 1);
  CHECK(eventually([&] { return fx.executor.running() == 0; }));
}

TEST_CASE("dispatcher: jobs running when the runtime stopped are requeued or failed on the next start",
          "[actors][jobs]") {
  fixture fx(2);
  const auto again = fx.submit("p1", "block-first", 60, 2);  // attempts left: requeued
  const auto last = fx.submit("p2", "block", 60, 1);         // none left: failed
  REQUIRE(eventually([&] { return fx.has(again, "job.started") && fx.has(last, "job.started"); }));
  REQUIRE(eventually([&] { return fx.executor.running() == 2; }));
  fx.reopen(0);  // stops both (nothing reported), then settles them as orphans
  REQUIRE(eventually([&] { return fx.has(again, "job.requeued") && fx.has(last, "job.failed"); }));
  CHECK(fx.payload(last, "job.failed").at("error") == "interrupted by server restart");
  CHECK(fx.payload(again, "job.requeued").at("reason") == "interrupted by server restart");
  CHECK(fx.terminals(last) == 1);
  CHECK(fx.terminals(again) == 0);
  fx.reopen(1);  // the requeued job runs its second attempt
  REQUIRE(eventually([&] { return fx.has(again, "job.succeeded"); }));
  CHECK(fx.payload(again, "job.started").at("attempt") == 2);
  CHECK(fx.terminals(again) == 1);
  CHECK(fx.terminals(last) == 1);
}

TEST_CASE("dispatcher: a restarted dispatcher adopts the attempts that run, so a job never runs twice",
          "[actors][jobs]") {
  fixture fx(1);
  const auto id = fx.submit("p1", "gate");
  REQUIRE(eventually([&] { return fx.executor.running() == 1; }));
  REQUIRE(fx.runtime->inject_failure("job-dispatcher"));
  REQUIRE(eventually([&] { return fx.runtime->health().healthy; }));
  std::this_thread::sleep_for(500ms);
  fx.executor.open_gate();
  REQUIRE(eventually([&] { return fx.has(id, "job.succeeded"); }));
  std::this_thread::sleep_for(600ms);
  CHECK(fx.executor.started().size() == 1);
  CHECK(fx.terminals(id) == 1);
  CHECK(fx.count(id, "job.started") == 1);
  CHECK_FALSE(fx.has(id, "job.requeued"));
}

TEST_CASE("dispatcher: results past their time to live expire: job.result_expired, then the files go",
          "[actors][jobs]") {
  fixture fx(1);
  fx.config.jobs.result_ttl = 1s;
  fx.config.jobs.expiry_interval = 1s;
  fx.reopen(1);
  const auto id = fx.submit("p1", "rows 3");
  REQUIRE(eventually([&] { return fx.has(id, "job.succeeded"); }));
  REQUIRE(eventually([&] { return fx.has(id, "job.result_expired"); }));
  REQUIRE(eventually([&] { return !fx.results->open(id).has_value(); }));
  CHECK(fx.results->open(id).error().code == errc::not_found);
  CHECK(fx.count(id, "job.result_expired") == 1);
}

namespace {

/// Claims a job for `worker` through the lease port and waits for the answer.
result<std::optional<ports::leased_job>> claim_for(fixture& fx, const std::string& worker,
                                                   std::function<bool()> still_connected,
                                                   std::function<bool()> still_authorized = nullptr) {
  std::promise<result<std::optional<ports::leased_job>>> p;
  auto f = p.get_future();
  ports::lease_claim c{worker, "u-1", 1, 1, 5s, std::move(still_authorized)};
  c.still_connected = std::move(still_connected);
  static_cast<ports::job_leases&>(*fx.runtime).claim(std::move(c), [&p](auto r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace

TEST_CASE("dispatcher: a claim whose worker went away is dropped, and the job waits for a live one",
          "[actors][jobs][workers]") {
  fixture fx(0);
  const auto id = fx.submit("p1", "rows 1");
  REQUIRE(eventually([&] { return fx.types(id).size() == 2; }));
  auto gone = claim_for(fx, "gone", [] { return false; });
  REQUIRE(gone.has_value());
  CHECK_FALSE(gone->has_value());  // answered "none" at once, nobody reads it
  CHECK(fx.types(id) == std::vector<std::string>{"job.submitted", "job.queued"});
  auto live = claim_for(fx, "live", [] { return true; });
  REQUIRE(live.has_value());
  REQUIRE(live->has_value());
  CHECK((*live)->spec.job_id == id);
  CHECK((*live)->spec.attempt == 1);
}

TEST_CASE("dispatcher: a job leased to a claim whose worker went away meanwhile goes back without costing an attempt",
          "[actors][jobs][workers]") {
  fixture fx(0);
  const auto id = fx.submit("p1", "rows 1");  // one attempt only
  REQUIRE(eventually([&] { return fx.types(id).size() == 2; }));
  // The worker's connection closes right after the dispatcher chose to lease to it
  // (still_authorized is asked after the connection check, before job.started).
  auto connected = std::make_shared<std::atomic<bool>>(true);
  auto gone = claim_for(
      fx, "gone", [connected] { return connected->load(); },
      [connected] {
        connected->store(false);
        return true;
      });
  REQUIRE(gone.has_value());
  CHECK_FALSE(gone->has_value());
  REQUIRE(eventually([&] { return fx.has(id, "job.requeued"); }));
  const auto requeued = fx.payload(id, "job.requeued");
  CHECK(requeued.at("counted") == false);
  CHECK(requeued.at("attempt") == 1);
  CHECK(requeued.at("reason") == "worker gone went away before the lease reached it");
  auto live = claim_for(fx, "live", [] { return true; });
  REQUIRE(live.has_value());
  REQUIRE(live->has_value());
  CHECK((*live)->spec.attempt == 1);  // the released attempt did not count
  CHECK(fx.types(id) ==
        std::vector<std::string>{"job.submitted", "job.queued", "job.started", "job.requeued", "job.started"});
  CHECK(fx.payload(id, "job.started").at("runner") == "live");
}
