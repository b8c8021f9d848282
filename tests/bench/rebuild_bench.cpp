// Projection rebuild (issue 5, point 6): how fast the `projects` and `audit`
// projections rebuild from position 0 over N stored events, against a raw sequential
// read of the same events measured in the same run. Goal: a rebuild within 3× of the
// raw RocksDB read. Not part of the default paths:
//   atrium-bench --paths rebuild [--events 1000000]
//
//   setup:    rocksdb_store ◀─ append (4,000 events per call, several streams each)
//             N/10 projects: created + member_added, then renames, descriptions and
//             member changes spread over them (deterministic ids and choices)
//   baseline: raw RocksDB iterator over the `events` family (read-only open, no decode)
//             store read_all in pages of 1000 (decode included, as the engine reads)
//   measured: read_models.reset(name) ─▶ fresh projection_engine(name) ─▶ catch_up()
//             for projects, audit, and both together; then checked (checkpoint == head,
//             sampled rows hold the names and versions the setup wrote)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <nlohmann/json.hpp>

#include "actors/actors.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/projections.hpp"
#include "tests/bench/bench.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {
namespace {

constexpr std::uint64_t k_default_events = 1'000'000;
constexpr std::size_t k_events_per_append = 4000;  // under the store's 4096 events per WriteBatch
constexpr std::size_t k_page = 1000;               // the engine's page size, for read_all too
constexpr std::size_t k_raw_runs = 3;              // the raw read is short: take the median of 3
constexpr double k_goal = 3.0;                     // rebuild time / raw read time, at most
constexpr std::uint64_t k_users_per_project = 8;   // members come from a per-project pool

std::string padded(std::uint64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(v));
  return buf;
}

// Deterministic UUID-shaped ids, one family per kind, so every run stores the same streams.
std::string project_id(std::uint64_t p) { return "00000000-0000-7000-8000-" + padded(p, 12); }
std::string user_id(std::uint64_t u) { return "00000000-0000-7000-9000-" + padded(u, 12); }
std::string request_id(std::uint64_t seq) { return "00000000-0000-7000-a000-" + padded(seq, 12); }

/// splitmix64: a fixed sequence of well-mixed numbers (the workload's "random" choices).
struct mixer {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

/// What the setup stored, to check a rebuild against.
struct workload {
  std::uint64_t events = 0;
  std::vector<std::string> names;       ///< per project: its last name
  std::vector<std::uint64_t> versions;  ///< per project: its stream's last version
  std::uint64_t head = 0;
};

/// An event as the entity actors write it for an HTTP request: the acting user, one
/// correlation id per request, and the client's address and user agent as metadata.
proposed_event make_event(std::string_view type, nlohmann::json data, std::uint64_t actor, std::uint64_t seq) {
  proposed_event e;
  e.type = std::string(type);
  e.schema = 1;
  e.data = std::move(data);
  e.actor = "user-" + user_id(actor);
  e.correlation_id = request_id(seq);
  e.causation_id = request_id(seq);
  e.metadata = nlohmann::json{{"client_address", "10.0." + std::to_string(actor % 256) + ".7:51234"},
                              {"user_agent", "atrium-cli/1.4 (linux)"}};
  return e;
}

/// Keeps up to two appends in flight (generation of the next overlaps the commit of the
/// previous); appends are staged in arrival order, so versions computed ahead are right.
class appender {
 public:
  explicit appender(ports::event_store& store) : store_(store) {}
  void submit(std::vector<ports::stream_append> appends, std::size_t events) {
    if (inflight_.size() >= 2) drain_one();
    auto p = std::make_shared<std::promise<result<std::vector<envelope>>>>();
    inflight_.emplace_back(p->get_future(), events);
    store_.append_async(std::move(appends), [p](result<std::vector<envelope>> r) { p->set_value(std::move(r)); });
  }
  void drain() {
    while (!inflight_.empty()) drain_one();
  }

 private:
  void drain_one() {
    auto [f, events] = std::move(inflight_.front());
    inflight_.pop_front();
    auto r = f.get();
    if (!r) throw std::runtime_error("setup append: " + r.error().message);
    if (r->size() != events) throw std::runtime_error("setup append stored a different number of events");
  }
  ports::event_store& store_;
  std::deque<std::pair<std::future<result<std::vector<envelope>>>, std::size_t>> inflight_;
};

/// Appends `n` project events (n >= 10): n/10 projects, each created with
/// project.created + project.member_added (owner), then the rest spread over them with
/// a fixed pseudo-random choice: 40% renamed, 25% described, 20% member_added (editor
/// or viewer), 15% member_removed.
workload populate(ports::event_store& store, std::uint64_t n) {
  const std::uint64_t projects = n / 10;
  workload w;
  w.events = n;
  w.names.resize(projects);
  w.versions.assign(projects, 0);
  appender out(store);
  std::uint64_t seq = 0;

  for (std::uint64_t first = 0; first < projects; first += k_events_per_append / 2) {
    const auto last = std::min(projects, first + k_events_per_append / 2);
    std::vector<ports::stream_append> appends;
    appends.reserve(last - first);
    for (auto p = first; p < last; ++p) {
      const auto owner = p * k_users_per_project;
      w.names[p] = "project " + padded(p, 8);
      ++seq;
      appends.push_back(
          {"project-" + project_id(p),
           ports::expected_version::no_stream(),
           {make_event("project.created",
                       {{"project_id", project_id(p)},
                        {"name", w.names[p]},
                        {"description", "created by the rebuild bench"},
                        {"created_by", user_id(owner)}},
                       owner, seq),
            make_event("project.member_added", {{"user_id", user_id(owner)}, {"role", "owner"}}, owner, seq)}});
      w.versions[p] = 2;
    }
    out.submit(std::move(appends), 2 * (last - first));
  }

  mixer rng{42};
  std::uint64_t left = n - 2 * projects;
  while (left > 0) {
    const auto count = std::min<std::uint64_t>(left, k_events_per_append);
    std::map<std::uint64_t, std::vector<proposed_event>> by_project;  // one stream_append per stream
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto p = rng.next() % projects;
      const auto pick = rng.next() % 100;
      const auto member = user_id(p * k_users_per_project + 1 + rng.next() % (k_users_per_project - 1));
      const auto actor = p * k_users_per_project;
      ++seq;
      auto& events = by_project[p];
      if (pick < 40) {
        w.names[p] = "project " + padded(p, 8) + " rev " + padded(seq, 10);
        events.push_back(make_event("project.renamed", {{"name", w.names[p]}}, actor, seq));
      } else if (pick < 65) {
        events.push_back(make_event("project.described",
                                    {{"description", "description revision " + std::to_string(seq)}}, actor, seq));
      } else if (pick < 85) {
        events.push_back(make_event("project.member_added",
                                    {{"user_id", member}, {"role", seq % 2 == 0 ? "editor" : "viewer"}}, actor, seq));
      } else {
        events.push_back(make_event("project.member_removed", {{"user_id", member}}, actor, seq));
      }
    }
    std::vector<ports::stream_append> appends;
    appends.reserve(by_project.size());
    for (auto& [p, events] : by_project) {
      const auto expected = ports::expected_version::exact(w.versions[p]);
      w.versions[p] += events.size();
      appends.push_back({"project-" + project_id(p), expected, std::move(events)});
    }
    out.submit(std::move(appends), count);
    left -= count;
  }
  out.drain();
  w.head = store.head_position();
  if (w.head != n) throw std::runtime_error("setup: head " + std::to_string(w.head) + ", wanted " + std::to_string(n));
  return w;
}

double seconds_since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

/// One pass of a plain RocksDB iterator over the `events` family of the closed store in
/// `dir` (read-only open, default read options as `read_all` uses): every key and value
/// is fetched, nothing decoded. Returns seconds; checks the count and the positions.
double raw_scan(const std::string& dir, std::uint64_t n, std::uint64_t& bytes) {
  rocksdb::Options options;
  std::vector<std::string> families;
  if (auto s = rocksdb::DB::ListColumnFamilies(options, dir, &families); !s.ok()) {
    throw std::runtime_error("list column families: " + s.ToString());
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& f : families) descriptors.emplace_back(f, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::OpenForReadOnly(options, dir, descriptors, &handles, &raw); !s.ok()) {
    throw std::runtime_error("raw open read-only: " + s.ToString());
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* events = nullptr;
  for (std::size_t i = 0; i < families.size(); ++i) {
    if (families[i] == "events") events = handles[i];
  }
  if (events == nullptr) throw std::runtime_error("no events family in " + dir);

  const auto t0 = steady::now();
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), events));
  std::uint64_t count = 0;
  std::uint64_t total = 0;
  unsigned char last_bytes = 0;  // one byte of every value, so the read cannot be elided
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++count;
    const auto v = it->value();
    total += it->key().size() + v.size();
    if (!v.empty()) last_bytes ^= static_cast<unsigned char>(v.data()[v.size() - 1]);
  }
  if (!it->status().ok()) throw std::runtime_error("raw scan: " + it->status().ToString());
  const double s = seconds_since(t0);
  it.reset();
  if (count != n)
    throw std::runtime_error("raw scan read " + std::to_string(count) + " events, wanted " + std::to_string(n) + " (" +
                             std::to_string(last_bytes) + ")");
  bytes = total;
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  (void)db->Close();
  return s;
}

/// One pass of `read_all` in pages of 1000 (envelopes decoded). Returns seconds.
double read_all_pass(const ports::event_store& store, std::uint64_t n) {
  const auto t0 = steady::now();
  std::uint64_t after = 0;
  std::uint64_t count = 0;
  for (;;) {
    auto page = store.read_all(after, k_page);
    if (!page) throw std::runtime_error("read_all: " + page.error().message);
    if (page->empty()) break;
    count += page->size();
    after = page->back().position;
  }
  const double s = seconds_since(t0);
  if (count != n || after != n) throw std::runtime_error("read_all read " + std::to_string(count) + " events");
  return s;
}

std::vector<std::unique_ptr<projection>> make_named(const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<projection>> out;
  for (const auto& name : names) {
    if (name == "projects") {
      out.push_back(make_projects_projection());
    } else if (name == "audit") {
      out.push_back(make_audit_projection());
    } else {
      throw std::invalid_argument("rebuild: no projection " + name);
    }
  }
  return out;
}

/// Checks a rebuilt projection against what the setup wrote; throws on a mismatch.
void verify(const ports::read_model_store& store, const std::string& name, const workload& w) {
  auto cp = store.checkpoint(name);
  if (!cp) throw std::runtime_error("checkpoint " + name + ": " + cp.error().message);
  if (*cp != w.head) {
    throw std::runtime_error(name + " checkpoint " + std::to_string(*cp) + " != head " + std::to_string(w.head));
  }
  auto row = [&](std::string_view table, const std::string& key) {
    auto r = store.get(name, table, key);
    if (!r) throw std::runtime_error(name + " get: " + r.error().message);
    if (!*r) throw std::runtime_error(name + ": no row " + std::string(table) + "/" + key);
    return **r;
  };
  const std::uint64_t projects = w.names.size();
  if (name == "projects") {
    mixer rng{7};
    std::vector<std::uint64_t> sample{0, projects / 2, projects - 1};
    for (int i = 0; i < 7; ++i) sample.push_back(rng.next() % projects);
    for (const auto p : sample) {
      const auto r = row("projects", project_id(p));
      if (r.at("name") != w.names[p] || r.at("version") != w.versions[p]) {
        throw std::runtime_error("projects: row of project " + std::to_string(p) + " is " + r.dump());
      }
      (void)row("user_projects", user_id(p * k_users_per_project) + "/" + project_id(p));
    }
  } else if (name == "audit") {
    for (const auto position : {std::uint64_t{1}, w.head / 2, w.head}) {
      const auto r = row("entries", position_key(position));
      if (r.at("position") != position || r.at("entity") != "project") {
        throw std::runtime_error("audit: entry " + std::to_string(position) + " is " + r.dump());
      }
    }
    if (row("entries", position_key(1)).at("type") != "project.created") {
      throw std::runtime_error("audit: the first entry is not project.created");
    }
  }
}

double round_to(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

void print_line(const std::string& scenario, std::uint64_t events, double seconds, double raw_seconds,
                double read_all_seconds, nlohmann::ordered_json extra, bool goal) {
  nlohmann::ordered_json j;
  j["scenario"] = scenario;
  j["path"] = "rebuild";
  j["events"] = events;
  j["seconds"] = round_to(seconds, 3);
  j["events_per_s"] = round_to(seconds > 0 ? static_cast<double>(events) / seconds : 0, 1);
  j["ratio_vs_raw"] = round_to(seconds / raw_seconds, 3);
  j["ratio_vs_read_all"] = round_to(seconds / read_all_seconds, 3);
  if (goal) {
    j["goal"] = k_goal;
    j["met"] = seconds / raw_seconds <= k_goal;
  }
  for (const auto& item : extra.items()) j[item.key()] = item.value();
  std::cout << j.dump() << std::endl;
}

}  // namespace

void run_rebuild(const options& o) {
  const std::uint64_t n = o.events == 0 ? k_default_events : o.events;
  if (n < 10) throw std::invalid_argument("rebuild: --events must be at least 10");
  test::temp_dir dir;
  const auto db = (dir.path() / "db").string();
  std::vector<std::string> all;
  for (const auto& p : make_all_projections()) all.emplace_back(p->name());

  workload w;
  {
    progress("rebuild: storing " + std::to_string(n) + " events over " + std::to_string(n / 10) + " projects");
    auto store = rocksdb_adapter::rocksdb_store::open(db, all);
    if (!store) throw std::runtime_error("open store: " + store.error().message);
    const auto t0 = steady::now();
    w = populate((*store)->events(), n);
    progress("rebuild: setup took " + std::to_string(seconds_since(t0)) + " s");
  }  // closed: its WAL is durable (every append was synced); the next open flushes it

  // Reopen once before anything is measured, so every measurement reads the same files
  // (recovery flushes the WAL into SST files); then close for the read-only raw pass.
  if (auto reopened = rocksdb_adapter::rocksdb_store::open(db, all); !reopened) {
    throw std::runtime_error("reopen store: " + reopened.error().message);
  }

  // Raw: one untimed pass warms the OS page cache; then the median of 3.
  std::uint64_t bytes = 0;
  (void)raw_scan(db, n, bytes);
  std::vector<double> raw_runs;
  for (std::size_t i = 0; i < k_raw_runs; ++i) raw_runs.push_back(raw_scan(db, n, bytes));
  std::sort(raw_runs.begin(), raw_runs.end());
  const double raw = raw_runs[k_raw_runs / 2];

  auto opened = rocksdb_adapter::rocksdb_store::open(db, all);
  if (!opened) throw std::runtime_error("open store: " + opened.error().message);
  auto& store = **opened;
  const double read_all = read_all_pass(store.events(), n);

  print_line("raw_rocksdb_read", n, raw, raw, read_all,
             {{"bytes", bytes},
              {"runs", k_raw_runs},
              {"min_seconds", round_to(raw_runs.front(), 3)},
              {"max_seconds", round_to(raw_runs.back(), 3)}},
             false);
  print_line("store_read_all", n, read_all, raw, read_all, {{"page", k_page}}, false);

  const std::vector<std::vector<std::string>> runs{{"projects"}, {"audit"}, {"projects", "audit"}};
  for (const auto& names : runs) {
    std::string label;
    for (const auto& name : names) label += (label.empty() ? "" : "+") + name;
    progress("rebuild: " + label);
    const auto t0 = steady::now();
    for (const auto& name : names) {
      if (auto ok = store.read_models().reset(name); !ok)
        throw std::runtime_error("reset " + name + ": " + ok.error().message);
    }
    const double reset = seconds_since(t0);
    actors::projection_engine engine(store.events(), store.read_models(), make_named(names));
    auto reached = engine.catch_up();
    const double s = seconds_since(t0);
    if (!reached) throw std::runtime_error("catch_up " + label + ": " + reached.error().message);
    if (*reached != w.head) throw std::runtime_error("catch_up " + label + " reached " + std::to_string(*reached));
    for (const auto& name : names) verify(store.read_models(), name, w);
    std::string scenario = "rebuild_" + label;
    std::replace(scenario.begin(), scenario.end(), '+', '_');
    print_line(scenario, n, s, raw, read_all,
               {{"projections", label}, {"reset_seconds", round_to(reset, 4)}, {"verified", true}}, true);
  }
}

}  // namespace atrium::bench
