#include "adapters/rocksdb/database.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "adapters/rocksdb/encoding.hpp"

namespace atrium::rocksdb_adapter {
namespace {

/// RocksDB's own log, forwarded to spdlog (warnings and errors only). RocksDB would
/// otherwise write it to DIR/LOG on the same disk as the data: when that disk fills, the
/// LOG file's writer fails, and the next line RocksDB logs about the failure trips the
/// assertion `sync_without_flush_called_` in WritableFileWriter (Debian's librocksdb
/// keeps assertions) and aborts the process. A logger that never touches the disk
/// removes that abort.
class spdlog_logger final : public rocksdb::Logger {
 public:
  spdlog_logger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    const int n = std::vsnprintf(line, sizeof line, format, ap);
    if (n <= 0) return;
    std::string_view text(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    // Opening a database that does not exist yet reports its missing directory as an
    // error; it is the normal first start.
    if (text.find("Error when reading") != std::string_view::npos && text.find("NotFound") != std::string_view::npos) {
      spdlog::debug("rocksdb: {}", text);
      return;
    }
    switch (level) {
      case rocksdb::InfoLogLevel::WARN_LEVEL:
        spdlog::warn("rocksdb: {}", text);
        break;
      case rocksdb::InfoLogLevel::FATAL_LEVEL:
        spdlog::critical("rocksdb: {}", text);
        break;
      default:
        spdlog::error("rocksdb: {}", text);
        break;
    }
  }
};

/// Tells the database about RocksDB's background errors (a failed flush or compaction,
/// e.g. for lack of space), and turns RocksDB's own recovery off: the database recovers
/// by reopening (see `try_recover`), which also covers a failed WAL write.
class fault_listener final : public rocksdb::EventListener {
 public:
  explicit fault_listener(std::function<void(const rocksdb::Status&)> on_error) : on_error_(std::move(on_error)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* bg_error) override {
    if (bg_error != nullptr && !bg_error->ok()) on_error_(*bg_error);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    if (auto_recovery != nullptr) *auto_recovery = false;
  }

 private:
  std::function<void(const rocksdb::Status&)> on_error_;
};

/// Bytes free for unprivileged writers on the file system holding `dir`, or nullopt.
std::optional<std::uint64_t> free_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

/// Size of the file system holding `dir`, or nullopt.
std::optional<std::uint64_t> disk_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize;
}

/// `n` bytes for people: 812 B, 3.4 MiB.
std::string human_bytes(std::uint64_t n) {
  if (n < 1024) return std::to_string(n) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

/// The stream id part of a `streams` key (stream id, 0x00, version u64 BE): the prefix
/// under which the memtable keeps an insert hint (`memtable_insert_with_hint_prefix_extractor`),
/// so the next version of a stream goes in right after the last one, without a search
/// of the skip list. Keys without a NUL are outside its domain (inserted as usual).
class stream_prefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "atrium.stream_prefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const auto nul = key.ToStringView().find('\0');
    return {key.data(), nul == std::string_view::npos ? key.size() : nul + 1};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.ToStringView().find('\0') != std::string_view::npos;
  }
};

}  // namespace

struct database::impl {
  store_options options;
  std::string dir;
  std::uint64_t reserve = 0;  // free bytes a write must leave (0: no check)
  rocksdb::Options db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  // `db`, `handles` and `cf` change only when the database reopens after a write
  // failure: every use holds `db_mu` shared (`use`), the reopen exclusive.
  mutable std::shared_mutex db_mu;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> cf;

  // Why writes fail now (a RocksDB write or background error), until a reopen.
  mutable std::mutex fault_mu;
  std::optional<error> fault;      // guarded by fault_mu
  std::uint64_t recoveries = 0;    // reopens done (guarded by fault_mu)
  std::uint64_t waits_logged = 0;  // `recoveries` when try_recover last said it waits for room (fault_mu)
  std::mutex observers_mu;         // guards `observers`; held while one is called
  std::vector<database_observer*> observers;

  /// Opens `db` (and `handles`, `cf`) from `dir`, `db_options` and `descriptors`.
  /// Needs `db_mu` exclusive (or no other user).
  result<void> open_db() {
    rocksdb::DB* raw = nullptr;
    handles.clear();
    auto s = rocksdb::DB::Open(db_options, dir, descriptors, &handles, &raw);
    if (!s.ok()) return std::unexpected(storage_error(s, "open " + dir));
    db.reset(raw);
    cf.clear();
    for (std::size_t i = 0; i < descriptors.size(); ++i) cf[descriptors[i].name] = handles[i];
    return {};
  }

  /// Destroys the handles and closes `db`. Needs `db_mu` exclusive.
  void close_db() {
    if (!db) return;
    for (auto* h : handles) {
      if (h != nullptr) (void)db->DestroyColumnFamilyHandle(h);
    }
    handles.clear();
    cf.clear();
    (void)db->Close();
    db.reset();
  }

  std::optional<error> current_fault() const {
    std::lock_guard lock(fault_mu);
    return fault;
  }

  void set_fault(const error& e) {
    {
      std::lock_guard lock(fault_mu);
      if (fault) return;
      fault = error{errc::unavailable,
                    "the event store cannot write (" + e.message +
                        "); writes resume by themselves once the cause is gone (e.g. disk space is freed)",
                    nlohmann::json::object()};
    }
    spdlog::error("store write failure: {}; refusing writes until recovered", e.message);
    std::lock_guard lock(observers_mu);
    for (auto* o : observers) o->on_fault();
  }

  /// `unavailable` when the disk holding the store has less than `need` bytes beyond the
  /// reserve: RocksDB never gets to fail a WAL write for lack of space.
  std::optional<error> space_check(std::uint64_t need) const {
    if (reserve == 0) return std::nullopt;
    auto free = free_bytes(dir);
    if (!free || *free >= need + reserve) return std::nullopt;
    return error{errc::unavailable,
                 "disk full: " + human_bytes(*free) + " free where the store keeps its data, " +
                     human_bytes(need + reserve) + " needed; writes resume by themselves once space is freed",
                 {{"free_bytes", *free}, {"reserve_bytes", reserve}}};
  }

  /// Reopens (under `db_mu` exclusive) and lets the observers reload; false on failure
  /// (then the database is closed and the fault stays).
  bool reopen() {
    close_db();
    auto ok = open_db();
    if (ok) {
      std::lock_guard lock(observers_mu);
      for (auto* o : observers) {
        ok = o->on_reopen();
        if (!ok) break;
      }
    }
    if (!ok) {
      spdlog::error("store reopen failed: {}; trying again", ok.error().message);
      close_db();
      return false;
    }
    return true;
  }
};

database::database(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

database::~database() {
  std::unique_lock lock(impl_->db_mu);
  impl_->close_db();
}

result<std::shared_ptr<database>> database::open(const std::string& dir, const std::vector<std::string>& extra_families,
                                                 const store_options& store_opts) {
  auto state = std::make_unique<impl>();
  state->options = store_opts;
  state->dir = dir;
  auto& options = state->db_options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  options.keep_log_file_num = 5;
  // One thread inserts each write group into the memtables: the ordered inserts of the
  // event log (positions, increasing event ids, a stream's next version) then reuse the
  // skip list's last splice or hint instead of a full search (issue 19). Concurrent
  // inserts gain nothing on a commit path with one writer.
  options.allow_concurrent_memtable_write = false;
  // One budget for all of RocksDB's memory (issue 19, point 5): the block cache, whose
  // capacity it is, is charged with the memtables of every column family (a
  // WriteBufferManager with cost-to-cache), so blocks make room as the memtables fill and
  // memtables + blocks stay within the budget however many families and rows there are.
  // With separate budgets (memtables 128 MiB, cache 64 MiB) the process grew by the whole
  // cache long after the memtables had filled. The manager flushes the largest memtable
  // once the mutable ones pass 7/8 of `memtable_budget_bytes`; it never stalls writes.
  auto cache = rocksdb::NewLRUCache(store_opts.memory_budget_bytes);
  options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      std::min(store_opts.memtable_budget_bytes, store_opts.memory_budget_bytes), cache);
  // RocksDB's log goes to spdlog, not to DIR/LOG (see spdlog_logger), and its background
  // errors to the database, which recovers from them by reopening.
  options.info_log = std::make_shared<spdlog_logger>();
  options.listeners.push_back(std::make_shared<fault_listener>(
      [p = state.get()](const rocksdb::Status& st) { p->set_fault(storage_error(st, "background write")); }));

  rocksdb::ColumnFamilyOptions cf_options;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks live in the one shared cache, so their memory is bounded
  // too instead of growing with the data on disk.
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  // Not pinned (not even L0's): pinned blocks cannot be evicted and pushed the cache past
  // its capacity by the index and filter blocks of every L0 file (~20 MiB after 1,000,000
  // entities, issue 19 point 5). They are inserted with high priority instead, so data
  // blocks are evicted first.
  table.pin_l0_filter_and_index_blocks_in_cache = false;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::set<std::string> names{rocksdb::kDefaultColumnFamilyName};
  for (auto name :
       {families::events, families::streams, families::stream_heads, families::event_ids, families::snapshots,
        families::checkpoints, families::tokens, families::idempotency, families::vault}) {
    names.emplace(name);
  }
  names.insert(extra_families.begin(), extra_families.end());
  // Families created by other versions (e.g. a since-dropped projection) must be opened too.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) names.insert(existing.begin(), existing.end());
  auto streams_options = cf_options;
  streams_options.memtable_insert_with_hint_prefix_extractor = std::make_shared<stream_prefix>();
  for (const auto& n : names) state->descriptors.emplace_back(n, n == families::streams ? streams_options : cf_options);

  if (auto ok = state->open_db(); !ok) return std::unexpected(ok.error());
  // Free space a write must leave: automatic by default, min(64 MiB, 2% of the disk),
  // so a small disk (or a test's tmpfs) is not refused outright.
  if (store_opts.reserve_free_bytes) {
    state->reserve = *store_opts.reserve_free_bytes;
  } else {
    const auto size = disk_bytes(dir).value_or(0);
    state->reserve = std::min<std::uint64_t>(64ull << 20, size / 50);
  }
  return std::shared_ptr<database>(new database(std::move(state)));
}

const store_options& database::options() const { return impl_->options; }

const std::string& database::dir() const { return impl_->dir; }

result<database::lock> database::use() const {
  std::shared_lock lock(impl_->db_mu);
  if (!impl_->db) return fail(errc::unavailable, "the event store is reopening after a write failure");
  return lock;
}

rocksdb::DB& database::handle() const { return *impl_->db; }

rocksdb::ColumnFamilyHandle* database::family(std::string_view name) const {
  auto it = impl_->cf.find(name);
  return it == impl_->cf.end() ? nullptr : it->second;
}

result<std::optional<std::string>> database::get(rocksdb::ColumnFamilyHandle* family, std::string_view key) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), family, slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok()) return std::unexpected(storage_error(s, "read"));
  return std::optional<std::string>{std::move(value)};
}

result<void> database::write(const rocksdb::WriteOptions& options, rocksdb::WriteBatch& batch, std::string_view what) {
  if (auto f = impl_->current_fault()) return std::unexpected(*f);
  if (!impl_->db) return fail(errc::unavailable, "the event store is reopening");
  if (auto full = impl_->space_check(batch.GetDataSize())) return std::unexpected(*full);
  if (auto st = impl_->db->Write(options, &batch); !st.ok()) {
    auto err = storage_error(st, what);
    impl_->set_fault(err);
    return std::unexpected(impl_->current_fault().value_or(err));
  }
  return {};
}

memory_usage database::memory() const {
  memory_usage m;
  std::shared_lock lock(impl_->db_mu);
  auto* db = impl_->db.get();
  if (db == nullptr) return m;
  (void)db->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &m.memtables);
  (void)db->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimateTableReadersMem, &m.table_readers);
  // One cache is shared by every family: read it once, not summed per family.
  (void)db->GetIntProperty(rocksdb::DB::Properties::kBlockCacheUsage, &m.block_cache);
  (void)db->GetIntProperty(rocksdb::DB::Properties::kBlockCachePinnedUsage, &m.cache_pinned);
  (void)db->GetIntProperty(rocksdb::DB::Properties::kBlockCacheCapacity, &m.budget);
  std::vector<rocksdb::LiveFileMetaData> files;
  db->GetLiveFilesMetaData(&files);
  m.sst_files = files.size();
  return m;
}

storage_stats database::stats() const {
  storage_stats s;
  s.disk_free_bytes = free_bytes(impl_->dir);
  s.disk_size_bytes = disk_bytes(impl_->dir);
  std::shared_lock lock(impl_->db_mu);
  auto* db = impl_->db.get();
  if (db == nullptr) return s;
  (void)db->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimateLiveDataSize, &s.live_data_bytes);
  (void)db->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
                                     &s.pending_compaction_bytes);
  (void)db->GetIntProperty(rocksdb::DB::Properties::kActualDelayedWriteRate, &s.delayed_write_rate);
  std::uint64_t stopped = 0;
  (void)db->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &stopped);
  s.write_stopped = stopped != 0;
  // A number of a map property, 0 when absent or not a number.
  auto number = [](const std::map<std::string, std::string>& m, const char* key) -> std::uint64_t {
    auto it = m.find(key);
    if (it == m.end()) return 0;
    try {
      return static_cast<std::uint64_t>(std::stod(it->second));
    } catch (const std::exception&) {
      return 0;
    }
  };
  for (auto* h : impl_->handles) {
    std::map<std::string, std::string> cf;
    if (db->GetMapProperty(h, rocksdb::DB::Properties::kCFStats, &cf)) {
      s.stops += number(cf, "io_stalls.total_stop");
      s.slowdowns += number(cf, "io_stalls.total_slowdown");
    }
  }
  std::map<std::string, std::string> dbstats;
  if (db->GetMapProperty(rocksdb::DB::Properties::kDBStats, &dbstats)) {
    s.stall_micros = number(dbstats, "db.user_write_stall_micros");
  }
  return s;
}

std::optional<error> database::fault() const { return impl_->current_fault(); }

std::optional<error> database::write_fault() const {
  if (auto f = impl_->current_fault()) return f;
  return impl_->space_check(0);
}

void database::set_fault(const error& e) { impl_->set_fault(e); }

std::optional<std::uint64_t> database::try_recover() {
  auto& d = *impl_;
  if (!d.current_fault()) return std::nullopt;
  // Wait for room before closing: closing flushes the memtables and opening writes a
  // new WAL, MANIFEST and OPTIONS file; while the disk stays full the database stays
  // open for reads.
  // Room means the reserve twice over plus what the flush at close writes out: the
  // unflushed data, which the live WAL files hold (the SST files they become are no
  // larger; the memtables' own size counts their arenas, several MiB per family even
  // nearly empty, and on a small disk would wait for room that never comes), bounded by
  // the memtables' size; and at least 1 MiB.
  std::uint64_t need = 2 * d.reserve;
  std::uint64_t memtables = 0;
  std::uint64_t wal_bytes = 0;
  {
    std::shared_lock lock(d.db_mu);
    if (d.db && d.db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &memtables)) {
      rocksdb::VectorLogPtr wal;
      if (d.db->GetSortedWalFiles(wal).ok()) {
        for (const auto& f : wal) wal_bytes += f->SizeFileBytes();
        need += std::min(memtables, wal_bytes);
      } else {
        need += memtables;
      }
    }
  }
  need = std::max<std::uint64_t>(need, 1u << 20);
  if (auto free = free_bytes(d.dir); free && *free < need) {
    std::lock_guard flock(d.fault_mu);
    if (d.waits_logged != d.recoveries + 1) {  // once per fault
      d.waits_logged = d.recoveries + 1;
      spdlog::warn("store waits for room before it reopens: {} free, {} needed (memtables {}, WAL {})",
                   human_bytes(*free), human_bytes(need), human_bytes(memtables), human_bytes(wal_bytes));
    }
    return std::nullopt;
  }
  std::unique_lock lock(d.db_mu);
  if (!d.reopen()) return std::nullopt;
  std::lock_guard flock(d.fault_mu);
  d.fault.reset();
  return ++d.recoveries;
}

std::uint64_t database::recoveries() const {
  std::lock_guard lock(impl_->fault_mu);
  return impl_->recoveries;
}

void database::add_observer(database_observer* o) {
  std::lock_guard lock(impl_->observers_mu);
  impl_->observers.push_back(o);
}

void database::remove_observer(database_observer* o) {
  std::lock_guard lock(impl_->observers_mu);
  std::erase(impl_->observers, o);
}

}  // namespace atrium::rocksdb_adapter
