// (raw) The machine's limit: plain RocksDB, synced WriteBatches carrying N events at N
// writers — the ideal group commit, with no checks, no encoding and no hand-offs. Each
// event writes the same keys and values (same families, same sizes) as one append of
// the store adapter, measured on a real `rocksdb_store` in `measure_write_set`.
#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/projections.hpp"
#include "tests/bench/bench.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {
namespace {

using contents = std::map<std::pair<std::string, std::string>, std::string>;  // (family, key) → value

std::vector<std::string> projection_names() {
  std::vector<std::string> names;
  for (const auto& p : make_all_projections()) names.emplace_back(p->name());
  return names;
}

/// Every key and value of every column family of the (closed) database in `dir`.
contents read_all_families(const std::string& dir) {
  std::vector<std::string> families;
  rocksdb::Options options;
  if (auto s = rocksdb::DB::ListColumnFamilies(options, dir, &families); !s.ok()) {
    throw std::runtime_error("list column families: " + s.ToString());
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& f : families) descriptors.emplace_back(f, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::OpenForReadOnly(options, dir, descriptors, &handles, &raw); !s.ok()) {
    throw std::runtime_error("open read-only: " + s.ToString());
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  contents out;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      out[{families[i], it->key().ToString()}] = it->value().ToString();
    }
    if (!it->status().ok()) throw std::runtime_error("scan: " + it->status().ToString());
  }
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  (void)db->Close();
  return out;
}

void append_one(const std::string& dir, ports::expected_version expected, std::uint64_t seq) {
  auto store = rocksdb_adapter::rocksdb_store::open(dir, projection_names());
  if (!store) throw std::runtime_error("open store: " + store.error().message);
  std::vector<ports::stream_append> appends;
  appends.push_back({writer_stream(0), expected, {make_renamed(seq)}});
  if (auto r = (*store)->events().append(std::move(appends)); !r)
    throw std::runtime_error("append: " + r.error().message);
}

/// `key` made unique for event `seq`: its last (up to) 8 bytes replaced by `seq`, big-endian.
std::string unique_key(const std::string& key, std::uint64_t seq) {
  std::string k = key.empty() ? std::string(8, '\0') : key;
  const std::size_t n = std::min<std::size_t>(8, k.size());
  for (std::size_t i = 0; i < n; ++i) k[k.size() - 1 - i] = static_cast<char>((seq >> (8 * i)) & 0xFF);
  return k;
}

}  // namespace

write_set measure_write_set() {
  test::temp_dir dir;
  const auto db = (dir.path() / "db").string();
  // The second append to a stream (exact expected version) is the steady state every
  // path measures; the first one also creates the stream.
  append_one(db, ports::expected_version::no_stream(), 1);
  const auto before = read_all_families(db);
  append_one(db, ports::expected_version::exact(1), 2);
  const auto after = read_all_families(db);
  write_set ws;
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    if (it == before.end() || it->second != v) ws.entries.push_back({k.first, k.second, v});
  }
  if (ws.entries.empty()) throw std::runtime_error("an append wrote nothing visible");
  return ws;
}

figures run_raw(const options& o, const write_set& ws) {
  figures out;
  for (const std::size_t n : baseline_writers(o)) {
    test::temp_dir dir;
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.IncreaseParallelism(2);
    std::vector<std::string> families{rocksdb::kDefaultColumnFamilyName};
    for (const auto& e : ws.entries) {
      if (std::find(families.begin(), families.end(), e.family) == families.end()) families.push_back(e.family);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& f : families) descriptors.emplace_back(f, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    if (auto s = rocksdb::DB::Open(options, (dir.path() / "db").string(), descriptors, &handles, &raw); !s.ok()) {
      throw std::runtime_error("raw open: " + s.ToString());
    }
    std::unique_ptr<rocksdb::DB> db(raw);
    std::map<std::string, rocksdb::ColumnFamilyHandle*> handle_of;
    for (std::size_t i = 0; i < families.size(); ++i) handle_of[families[i]] = handles[i];

    progress("raw: " + std::to_string(n) + " events per synced batch");
    measurement m{"raw_synced_batch", "raw", n};
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::uint64_t seq = 0;
    // One operation of the run control is one batch of n events.
    run_control ctl(o.seconds, o.events == 0 ? 0 : (o.events + n - 1) / n);
    while (ctl.next()) {
      const auto t0 = steady::now();
      rocksdb::WriteBatch batch;
      for (std::size_t i = 0; i < n; ++i) {
        ++seq;
        for (const auto& e : ws.entries) {
          auto s = batch.Put(handle_of[e.family], unique_key(e.key, seq), e.value);
          if (!s.ok()) throw std::runtime_error("raw batch: " + s.ToString());
        }
      }
      if (auto s = db->Write(wo, &batch); !s.ok()) {
        ++m.errors;
        progress("raw: write failed: " + s.ToString());
        break;
      }
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count();
      m.latencies_ns.insert(m.latencies_ns.end(), n, ns);
      m.events += n;
      m.commands += 1;
    }
    m.seconds = std::chrono::duration<double>(steady::now() - ctl.start()).count();
    m.extra["bytes_per_event"] = static_cast<double>(ws.bytes());
    const double self = m.seconds > 0 ? static_cast<double>(m.events) / m.seconds : 0;
    out[n] = print_measurement(m, self);
    for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
    (void)db->Close();
  }
  return out;
}

}  // namespace atrium::bench
