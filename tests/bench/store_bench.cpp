// (a) Straight into the store adapter: N threads, each appending one event at a time to
// its own stream with an exact expected version through `ports::event_store::append`.
// Every append is durable when it returns; its latency is one sample.
#include <latch>
#include <optional>
#include <thread>

#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/projections.hpp"
#include "tests/bench/bench.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {

figures run_store(const options& o, const figures& raw) {
  figures out;
  std::vector<std::string> projections;
  for (const auto& p : make_all_projections()) projections.emplace_back(p->name());

  for (const std::size_t n : o.writers) {
    test::temp_dir dir;
    auto opened = rocksdb_adapter::rocksdb_store::open((dir.path() / "db").string(), projections);
    if (!opened) throw std::runtime_error("open store: " + opened.error().message);
    auto& adapter = (*opened)->events();
    ports::event_store& store = adapter;

    // Every stream exists before the clock starts, so each measured append names an
    // exact expected version.
    std::vector<ports::stream_append> creates;
    for (std::size_t w = 0; w < n; ++w) {
      creates.push_back({writer_stream(w), ports::expected_version::no_stream(), {make_renamed(0)}});
    }
    if (auto r = store.append(std::move(creates)); !r) throw std::runtime_error("create streams: " + r.error().message);

    progress("store: " + std::to_string(n) + " writers");
    measurement m{"store_append", "store", n};
    std::vector<std::vector<std::int64_t>> samples(n);
    std::vector<std::uint64_t> errors(n, 0);
    std::optional<run_control> ctl;
    std::latch go(1);
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t w = 0; w < n; ++w) {
      threads.emplace_back([&, w] {
        go.wait();
        const auto stream = writer_stream(w);
        std::uint64_t version = 1;
        auto& lat = samples[w];
        while (ctl->next()) {
          std::vector<ports::stream_append> a;
          a.push_back(
              {stream, ports::expected_version::exact(version), {make_renamed(w * 1'000'000'000ULL + version)}});
          const auto t0 = steady::now();
          auto r = store.append(std::move(a));
          const auto t1 = steady::now();
          if (!r) {
            ++errors[w];
            progress("store: writer " + std::to_string(w) + ": " + r.error().message);
            return;
          }
          lat.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
          version = r->back().version;
        }
      });
    }
    const auto commits_before = adapter.commit_count();
    ctl.emplace(o.seconds, o.events);
    go.count_down();
    for (auto& t : threads) t.join();
    m.seconds = std::chrono::duration<double>(steady::now() - ctl->start()).count();
    const auto commits = adapter.commit_count() - commits_before;
    for (std::size_t w = 0; w < n; ++w) {
      m.events += samples[w].size();
      m.errors += errors[w];
      m.latencies_ns.insert(m.latencies_ns.end(), samples[w].begin(), samples[w].end());
    }
    m.commands = m.events;
    if (commits > 0) m.extra["events_per_commit"] = static_cast<double>(m.events) / static_cast<double>(commits);
    out[n] = print_measurement(m, raw_at(raw, n));
  }
  return out;
}

}  // namespace atrium::bench
