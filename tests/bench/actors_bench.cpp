// (b) Through the entity actors: `actor_runtime` over a `rocksdb_store` in a temp dir,
// with the server's projections. N projects are created first; then each of the N
// writers renames its own project in a loop, with the version of the previous answer as
// the expected version (as HTTP's If-Match does). The next command is issued from the
// completion callback, so there is no thread per writer; a command's latency runs from
// `execute` to its completion.
#include <algorithm>
#include <latch>
#include <mutex>
#include <optional>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/runtime.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/projections.hpp"
#include "tests/bench/bench.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {
namespace {

/// The writers of one measured point.
class driver {
 public:
  driver(actor_runtime& runtime, std::vector<std::string> projects, std::vector<std::uint64_t> versions,
         const principal& who, const options& o)
      : runtime_(runtime),
        projects_(std::move(projects)),
        writers_(projects_.size()),
        who_(who),
        ctl_(o.seconds, o.events),
        done_(static_cast<std::ptrdiff_t>(projects_.size())) {
    for (std::size_t w = 0; w < writers_.size(); ++w) writers_[w].version = versions[w];
  }

  /// Starts every writer and blocks until all have stopped.
  void run() {
    for (std::size_t w = 0; w < writers_.size(); ++w) issue(w);
    done_.wait();
  }

  void collect(measurement& m) {
    m.seconds = std::chrono::duration<double>(end_ - ctl_.start()).count();
    for (auto& w : writers_) {
      m.events += w.events;
      m.commands += w.latencies.size();
      m.errors += w.errors;
      m.latencies_ns.insert(m.latencies_ns.end(), w.latencies.begin(), w.latencies.end());
    }
  }

 private:
  struct writer {
    std::uint64_t version = 0;
    std::uint64_t seq = 0;
    std::uint64_t events = 0;
    std::uint64_t errors = 0;
    steady::time_point sent;
    std::vector<std::int64_t> latencies;
  };

  // Runs on the caller's thread first, then on CAF threads from the completion. Each
  // writer has one command in flight, so its state is touched by one thread at a time.
  void issue(std::size_t w) {
    auto& st = writers_[w];
    if (!ctl_.next()) {
      finish();
      return;
    }
    ++st.seq;
    ports::command_context ctx{who_, new_uuid_v7(), st.version};
    st.sent = steady::now();
    runtime_.execute(
        projects_[w], update_project{renamed_name(w * 1'000'000'000ULL + st.seq), std::nullopt}, std::move(ctx),
        [this, w](atrium::result<ports::command_outcome> r) {
          const auto now = steady::now();
          auto& s = writers_[w];
          if (!r) {
            ++s.errors;
            progress("actors: writer " + std::to_string(w) + ": " + r.error().message);
            finish();
            return;
          }
          s.latencies.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - s.sent).count());
          s.events += r->events.size();
          s.version = r->version;
          issue(w);
        });
  }

  void finish() {
    {
      std::lock_guard lock(end_mu_);
      end_ = std::max(end_, steady::now());
    }
    done_.count_down();
  }

  actor_runtime& runtime_;
  std::vector<std::string> projects_;
  std::vector<writer> writers_;
  principal who_;
  run_control ctl_;
  std::latch done_;
  std::mutex end_mu_;
  steady::time_point end_{};
};

}  // namespace

figures run_actors(const options& o, const figures& raw) {
  figures out;
  // The runtime logs through spdlog's default logger, which writes to stdout; stdout
  // carries only figures here.
  if (spdlog::get("atrium-bench") == nullptr) spdlog::set_default_logger(spdlog::stderr_color_mt("atrium-bench"));
  const principal admin{new_uuid_v7(), {global_role::admin}, false};
  for (const std::size_t n : o.writers) {
    test::temp_dir dir;
    // Declared before the runtime so that they outlive it: completions run on CAF
    // threads until the runtime is reset.
    std::latch created(static_cast<std::ptrdiff_t>(n));
    std::optional<driver> d;
    auto projections = make_all_projections();
    std::vector<std::string> names;
    for (const auto& p : projections) names.emplace_back(p->name());
    auto store = rocksdb_adapter::rocksdb_store::open((dir.path() / "db").string(), names);
    if (!store) throw std::runtime_error("open store: " + store.error().message);
    auto runtime = actor_runtime::start((*store)->events(), (*store)->read_models(), std::move(projections));
    if (!runtime) throw std::runtime_error("start actors: " + runtime.error().message);

    // N distinct projects, created before the clock starts.
    std::vector<std::string> ids(n);
    std::vector<std::uint64_t> versions(n, 0);
    std::vector<std::optional<error>> failures(n);
    {
      for (std::size_t w = 0; w < n; ++w) {
        ids[w] = new_uuid_v7();
        (*runtime)->execute(ids[w], create_project{ids[w], "bench project " + std::to_string(w), ""},
                            ports::command_context{admin, new_uuid_v7(), std::nullopt},
                            [&, w](atrium::result<ports::command_outcome> r) {
                              if (r) {
                                versions[w] = r->version;
                              } else {
                                failures[w] = r.error();
                              }
                              created.count_down();
                            });
      }
      created.wait();
    }
    for (const auto& f : failures) {
      if (f) throw std::runtime_error("create project: " + f->message);
    }

    progress("actors: " + std::to_string(n) + " writers");
    measurement m{"actors_update_project", "actors", n};
    const auto commits_before = (*store)->events().commit_count();
    d.emplace(**runtime, ids, versions, admin, o);
    d->run();
    d->collect(m);
    // Synced event-append writes only; projection rows are written apart, unsynced.
    const auto commits = (*store)->events().commit_count() - commits_before;
    if (commits > 0) m.extra["events_per_commit"] = static_cast<double>(m.events) / static_cast<double>(commits);
    out[n] = print_measurement(m, raw_at(raw, n));
    runtime->reset();
    store->reset();
  }
  return out;
}

}  // namespace atrium::bench
