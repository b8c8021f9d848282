#pragma once
/// The one owner of a RocksDB database (one directory), shared by the role stores over
/// it — the event log, the read-model store and the key-value store — the way RocksDB's
/// `DBImpl` is one handle under its write path, its reads and its column families:
///
///   event_log ─────────┐
///   read_model_store ──┼─▶ database: DB handle, column families, the write path's
///   kv_store ──────────┘   checks (disk reserve, fault), reopen after a write failure
///
/// Write failures (docs/architecture.md, "Supervision and failure"): every write first
/// checks that the disk keeps `reserve_free_bytes` free beyond it and is refused with
/// `unavailable` ("disk full: …") otherwise, so RocksDB is not left to fail a WAL write.
/// If RocksDB fails a write anyway (or a background flush or compaction), the database
/// refuses writes with `unavailable` while reads go on, until `try_recover` (called by
/// the event log's commit thread every `recovery_interval`) reopens it once the disk has
/// room again; writes then resume without a restart. RocksDB's own log goes to spdlog
/// rather than DIR/LOG, whose failure on a full disk used to abort the process
/// (assertion `sync_without_flush_called_`).
///
/// RocksDB's headers stay out of this header (the app includes it without them); the
/// role stores include them in their sources.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
struct WriteOptions;
}  // namespace rocksdb

namespace atrium::rocksdb_adapter {

/// Group-commit bounds, memory budgets and the disk reserve.
struct store_options {
  std::size_t max_batch_events = 4096;     ///< events per synced WriteBatch, at most
  std::size_t max_batch_bytes = 8u << 20;  ///< bytes per WriteBatch before it is cut (one append may exceed it)
  /// RocksDB's whole memory budget: one LRU cache (`rocksdb.block-cache-capacity`) that
  /// holds the data, index and filter blocks of every family AND is charged with the
  /// memtables of every family (a WriteBufferManager with cost-to-cache): blocks are
  /// evicted as the memtables fill, so memtables + blocks stay within it (blocks held by a
  /// running read and memtables still flushing can exceed it briefly; issue 19, point 5).
  std::size_t memory_budget_bytes = 128u << 20;
  /// All memtables together: past 7/8 of it the largest one is flushed (RocksDB
  /// WriteBufferManager size). At most `memory_budget_bytes`.
  std::size_t memtable_budget_bytes = 128u << 20;
  /// Free bytes every write must leave on the store's file system; a write that would
  /// leave less is refused (`unavailable`). nullopt: min(64 MiB, 2% of the file system);
  /// 0: no check (RocksDB meets the full disk itself; tests use it).
  std::optional<std::uint64_t> reserve_free_bytes;
  /// How often a store that cannot write checks whether it can recover.
  std::chrono::milliseconds recovery_interval{500};
};

/// The column families every database has (the on-disk contract; see rocksdb_store.hpp
/// for keys and values). Projections add `proj_<name>` families of their own.
namespace families {
inline constexpr std::string_view events = "events";
inline constexpr std::string_view streams = "streams";
inline constexpr std::string_view stream_heads = "stream_heads";
inline constexpr std::string_view event_ids = "event_ids";
inline constexpr std::string_view snapshots = "snapshots";
inline constexpr std::string_view checkpoints = "checkpoints";
inline constexpr std::string_view tokens = "tokens";
inline constexpr std::string_view idempotency = "idempotency";
inline constexpr std::string_view vault = "vault";
}  // namespace families

/// A role store that keeps state read from the database (the event log's head, the
/// read-model store's active slots) or waits on its faults.
class database_observer {
 public:
  virtual ~database_observer() = default;
  /// Called after the database was reopened by `try_recover`, with the database held
  /// exclusively: reload what was read at open. An error fails the reopen (it is
  /// closed and tried again later).
  [[nodiscard]] virtual result<void> on_reopen() { return {}; }
  /// Called when a write failure was recorded (writes are refused from now on until a
  /// reopen); from any thread, possibly RocksDB's own. Keep it short.
  virtual void on_fault() {}
};

/// Where the database's memory goes now, in bytes (RocksDB's own accounting; what the
/// allocator keeps beyond it is not included), from RocksDB properties: per-family ones
/// summed over every column family, the shared cache's read once.
struct memory_usage {
  /// All memtables, mutable and immutable (`rocksdb.cur-size-all-mem-tables`).
  std::uint64_t memtables = 0;
  /// The shared cache: blocks plus the memtables' reservation (`rocksdb.block-cache-usage`).
  std::uint64_t block_cache = 0;
  /// Its capacity, `store_options::memory_budget_bytes` (`rocksdb.block-cache-capacity`).
  std::uint64_t budget = 0;
  /// The part of the cache that cannot be evicted now: the memtables' reservation and
  /// blocks held by running reads (`rocksdb.block-cache-pinned-usage`).
  std::uint64_t cache_pinned = 0;
  /// Open SST readers outside the cache (`rocksdb.estimate-table-readers-mem`).
  std::uint64_t table_readers = 0;
  /// Live SST files, all families (`GetLiveFilesMetaData`).
  std::uint64_t sst_files = 0;
};

/// The database's write-path health, for metrics (RocksDB properties, summed over every
/// column family where they are per family), and the disk under it.
struct storage_stats {
  /// Estimated bytes of live data (`rocksdb.estimate-live-data-size`).
  std::uint64_t live_data_bytes = 0;
  /// Bytes compaction must rewrite to bring every level under its target
  /// (`rocksdb.estimate-pending-compaction-bytes`): grows before a stall.
  std::uint64_t pending_compaction_bytes = 0;
  /// The write rate RocksDB slows writers to, bytes per second; 0 when writes are not
  /// delayed (`rocksdb.actual-delayed-write-rate`).
  std::uint64_t delayed_write_rate = 0;
  /// True while RocksDB stops writes (`rocksdb.is-write-stopped`).
  bool write_stopped = false;
  /// Write stops and slowdowns so far, since open (`rocksdb.cfstats`
  /// `io_stalls.total_stop`, `io_stalls.total_slowdown`).
  std::uint64_t stops = 0;
  std::uint64_t slowdowns = 0;
  /// Microseconds user writes waited in stalls since open (`rocksdb.dbstats`
  /// `db.user_write_stall_micros`).
  std::uint64_t stall_micros = 0;
  /// Bytes free for unprivileged writers and size of the file system holding the
  /// database (statvfs); nullopt when it cannot be read.
  std::optional<std::uint64_t> disk_free_bytes;
  std::optional<std::uint64_t> disk_size_bytes;
};

/// The shared database. Thread-safe. Every use of the handle, the families or `write`
/// holds the lock `use` gives (shared); a reopen holds it exclusively.
class database {
 public:
  /// Shared access to the handle, from `use`.
  using lock = std::shared_lock<std::shared_mutex>;

  /// Opens (creating if missing) the database in `dir` with the built-in families, the
  /// families named in `extra_families`, and every family already in it (e.g. of a
  /// since-dropped projection). `unavailable` if RocksDB cannot open it (e.g. locked by
  /// another process).
  [[nodiscard]] static result<std::shared_ptr<database>> open(const std::string& dir,
                                                              const std::vector<std::string>& extra_families,
                                                              const store_options& options);
  /// Closes the database.
  ~database();
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  /// The options it was opened with.
  [[nodiscard]] const store_options& options() const;
  /// The directory it lives in.
  [[nodiscard]] const std::string& dir() const;

  /// Shared access for one operation; `unavailable` while the database is closed for a
  /// reopen.
  [[nodiscard]] result<lock> use() const;
  /// The handle; only while a lock from `use` (or the reopen) is held.
  [[nodiscard]] rocksdb::DB& handle() const;
  /// The family named `name`, nullptr if it does not exist. Same rule as `handle`.
  [[nodiscard]] rocksdb::ColumnFamilyHandle* family(std::string_view name) const;
  /// The value under `key` in `family`, nullopt if absent; `unavailable` on I/O error.
  [[nodiscard]] result<std::optional<std::string>> get(rocksdb::ColumnFamilyHandle* family, std::string_view key) const;
  /// Writes `batch` (the caller holds a lock from `use`): refused with `unavailable`
  /// while a fault is set or when the disk would keep less than the reserve; a RocksDB
  /// failure sets the fault (`what` names the operation in the message).
  [[nodiscard]] result<void> write(const rocksdb::WriteOptions& options, rocksdb::WriteBatch& batch,
                                   std::string_view what);

  /// Where the database's memory goes now; zeros while it is closed for a reopen.
  [[nodiscard]] memory_usage memory() const;
  /// The write path's health and the disk; RocksDB figures are zeros while it is closed
  /// for a reopen. Reads properties only (no I/O besides statvfs).
  [[nodiscard]] storage_stats stats() const;

  /// The recorded write failure, if any (cleared by a successful reopen).
  [[nodiscard]] std::optional<error> fault() const;
  /// Why writes fail now: the recorded fault, or a disk with less free space than the
  /// reserve (checked now, with statvfs); nullopt when they should succeed.
  [[nodiscard]] std::optional<error> write_fault() const;
  /// Records that RocksDB failed a write: writes are refused until a reopen; observers
  /// are told (`on_fault`).
  void set_fault(const error& e);
  /// While a fault is set: once the disk has room again, closes and reopens the database
  /// (a clean reopen: RocksDB's `Resume()` would keep writing to a WAL file whose writer
  /// has failed when the memtables are empty, and abort) and lets the observers reload.
  /// Returns the number of reopens so far when this call reopened, nullopt otherwise.
  std::optional<std::uint64_t> try_recover();
  /// Reopens done after write failures (for tests).
  [[nodiscard]] std::uint64_t recoveries() const;

  /// Registers / removes an observer (it must be removed before it is destroyed; after
  /// `remove_observer` returns it is not called again).
  void add_observer(database_observer* o);
  void remove_observer(database_observer* o);

 private:
  struct impl;
  explicit database(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace atrium::rocksdb_adapter
