// Passivation: touch N distinct entities once each (a create_project on each, through
// the entity actors, with 256 commands in flight) and report resident memory as the
// count grows. With passivation the registry keeps at most `max_live` entity actors,
// so memory must stay flat rather than grow with N. Not part of the default paths:
//   atrium-bench --paths passivation [--entities 1000000] [--max-live 10000]
#include <unistd.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <latch>
#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/runtime.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/projections.hpp"
#include "tests/bench/bench.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {
namespace {

/// A field of /proc/self/status in MiB (VmRSS: now, VmHWM: peak).
double status_mib(const std::string& field) { return static_cast<double>(proc_status_kib(::getpid(), field)) / 1024.0; }

double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

}  // namespace
}  // namespace atrium::bench

// jemalloc's control interface when it is the allocator (weak: null under glibc malloc).
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen)
    __attribute__((weak));

namespace atrium::bench {
namespace {

/// jemalloc's statistics in MiB (refreshed first), empty when jemalloc is not the allocator.
nlohmann::json allocator_mib() {
  if (mallctl == nullptr) return nlohmann::json::object();
  std::uint64_t epoch = 1;
  std::size_t len = sizeof epoch;
  (void)mallctl("epoch", &epoch, &len, &epoch, len);
  nlohmann::json out = nlohmann::json::object();
  for (const char* name : {"allocated", "active", "resident", "retained", "metadata", "mapped"}) {
    std::size_t v = 0;
    len = sizeof v;
    if (mallctl((std::string("stats.") + name).c_str(), &v, &len, nullptr, 0) == 0) out[name] = mib(v);
  }
  return out;
}

/// The store's own accounting (RocksDB properties) in MiB.
nlohmann::json store_mib(const rocksdb_adapter::database& db) {
  const auto m = db.memory();
  return {{"memtables", mib(m.memtables)},
          {"block_cache", mib(m.block_cache)},
          {"cache_pinned", mib(m.cache_pinned)},
          {"table_readers", mib(m.table_readers)},
          {"budget", mib(m.budget)},
          {"sst_files", m.sst_files}};
}

}  // namespace

void run_passivation(const options& o) {
  if (spdlog::get("atrium-bench") == nullptr) spdlog::set_default_logger(spdlog::stderr_color_mt("atrium-bench"));
  const std::uint64_t n = o.entities;
  constexpr std::uint64_t window = 256;
  test::temp_dir dir;
  auto projections = make_all_projections();
  std::vector<std::string> names;
  for (const auto& p : projections) names.emplace_back(p->name());
  auto store = rocksdb_adapter::rocksdb_store::open((dir.path() / "db").string(), names);
  if (!store) throw std::runtime_error("open store: " + store.error().message);
  runtime_config config;
  config.max_live_entities = o.max_live;
  auto runtime = actor_runtime::start((*store)->events(), (*store)->read_models(), std::move(projections), config);
  if (!runtime) throw std::runtime_error("start actors: " + runtime.error().message);
  const principal who{new_uuid_v7(), {global_role::member}, false};

  std::atomic<std::uint64_t> next{0}, done{0}, errors{0};
  std::latch finished(static_cast<std::ptrdiff_t>(window));
  const auto started = steady::now();
  std::mutex report_mu;
  std::uint64_t next_report = n / 10;
  std::function<void()> issue = [&] {
    const auto i = next++;
    if (i >= n) {
      finished.count_down();
      return;
    }
    const auto id = "e" + std::to_string(i);
    (*runtime)->execute(id, create_project{id, "entity " + std::to_string(i), ""},
                        ports::command_context{who, "bench", std::nullopt, {}}, [&](result<ports::command_outcome> r) {
                          if (!r) ++errors;
                          const auto d = ++done;
                          if (d >= next_report) {
                            std::lock_guard lock(report_mu);
                            if (d >= next_report) {
                              next_report += n / 10;
                              const auto s = std::chrono::duration<double>(steady::now() - started).count();
                              std::cout << nlohmann::json{{"scenario", "passivation_progress"},
                                                          {"entities_touched", d},
                                                          {"rss_mib", status_mib("VmRSS")},
                                                          {"peak_rss_mib", status_mib("VmHWM")},
                                                          {"seconds", s},
                                                          {"jemalloc_mib", allocator_mib()},
                                                          {"rocksdb_mib", store_mib((*store)->db())}}
                                               .dump()
                                        << std::endl;
                            }
                          }
                          issue();
                        });
  };
  for (std::uint64_t w = 0; w < window; ++w) issue();
  finished.wait();
  const auto seconds = std::chrono::duration<double>(steady::now() - started).count();
  const auto [live, passivated] = (*runtime)->entity_stats();
  std::cout << nlohmann::json{{"scenario", "passivation"},
                              {"path", "actors"},
                              {"entities", n},
                              {"max_live", o.max_live},
                              {"live_at_end", live},
                              {"passivated", passivated},
                              {"errors", errors.load()},
                              {"seconds", seconds},
                              {"commands_per_s", static_cast<double>(n) / seconds},
                              {"rss_mib", status_mib("VmRSS")},
                              {"peak_rss_mib", status_mib("VmHWM")},
                              {"jemalloc_mib", allocator_mib()},
                              {"rocksdb_mib", store_mib((*store)->db())}}
                   .dump()
            << std::endl;
  runtime->reset();
}

}  // namespace atrium::bench
