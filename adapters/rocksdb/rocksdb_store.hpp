#pragma once
/// RocksDB adapter: the event store, the read-model store, the session-token store and
/// the storage of sealed secrets in one RocksDB database (one directory), with the
/// column families of docs/design.md ("Storage layout"):
///
/// | family          | key                                  | value                                   |
/// |-----------------|--------------------------------------|-----------------------------------------|
/// | `events`        | position, u64 big-endian             | envelope, compact JSON                  |
/// | `streams`       | stream id, 0x00, version u64 BE      | position u64 BE                         |
/// | `stream_heads`  | stream id                            | last version u64 BE, last position u64 BE |
/// | `event_ids`     | event id                             | position u64 BE (idempotency)           |
/// | `snapshots`     | stream id                            | `{"version","schema","state"}`          |
/// | `checkpoints`   | projection or consumer name          | last position applied, u64 BE           |
/// | `tokens`        | SHA-256 hex of a session token       | `{"user_id","issued_at","expires_at"}`  |
/// | `idempotency`   | SHA-256 hex of (user id, client key) | `{"fingerprint","completed","status","body","etag"}` |
/// | `vault`         | vault ref (`vault:` + 32 hex chars)  | sealed secret bytes (encrypted by adapters/vault) |
/// | `proj_<name>`   | table, 0x00, row key                 | row JSON                                |
///
/// Event appends are written with `WriteOptions::sync = true`: an append returns only
/// after RocksDB has fsynced its WAL. Projection commits write rows and checkpoint in one
/// WriteBatch (WAL on, not synced: after a crash the projection at worst replays from
/// its older checkpoint, never applies an event twice or skips one).
///
/// Write failures (docs/architecture.md, "Supervision and failure"): every write first
/// checks that the disk keeps `reserve_free_bytes` free beyond it and is refused with
/// `unavailable` ("disk full: …") otherwise, so RocksDB is not left to fail a WAL write.
/// If RocksDB fails a write anyway (or a background flush or compaction), the store
/// refuses writes with `unavailable` while reads go on, and its commit thread reopens
/// the database once the disk has room again (`recovery_interval`); writes then resume
/// without a restart. RocksDB's own log goes to spdlog rather than DIR/LOG, whose failure
/// on a full disk used to abort the process (assertion `sync_without_flush_called_`).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ports/event_store.hpp"
#include "ports/read_model_store.hpp"
#include "ports/security.hpp"
#include "ports/vault.hpp"

namespace atrium::rocksdb_adapter {

/// Group-commit bounds and other settings.
struct store_options {
  std::size_t max_batch_events = 4096;             ///< events per synced WriteBatch, at most
  std::size_t max_batch_bytes = 8u << 20;          ///< bytes per WriteBatch before it is cut (one append may exceed it)
  std::size_t memtable_budget_bytes = 128u << 20;  ///< all memtables together (RocksDB db_write_buffer_size)
  std::size_t block_cache_bytes = 64u << 20;       ///< one LRU cache for data, index and filter blocks of every family
  /// Free bytes every write must leave on the store's file system; a write that would
  /// leave less is refused (`unavailable`). nullopt: min(64 MiB, 2% of the file system);
  /// 0: no check (RocksDB meets the full disk itself; tests use it).
  std::optional<std::uint64_t> reserve_free_bytes;
  /// How often a store that cannot write checks whether it can recover.
  std::chrono::milliseconds recovery_interval{500};
};

/// The store. Thread-safe: reads from any thread; appends are queued and committed by
/// one commit thread in synced WriteBatches (group commit):
///
///   append_async ─▶ queue ─▶ commit thread: stage each append in order (checks against
///                            the heads of the appends staged before it), one synced
///                            Write for the group ─▶ callbacks, in position order
class rocksdb_store final : public ports::event_store,
                            public ports::read_model_store,
                            public ports::token_store,
                            public ports::idempotency_store,
                            public ports::sealed_store {
 public:
  /// Opens (creating if missing) the database in `dir`, with one column family per
  /// projection name. `unavailable` if RocksDB cannot open it (e.g. locked by another
  /// process), `internal` if the stored log is corrupt.
  [[nodiscard]] static result<std::unique_ptr<rocksdb_store>> open(const std::string& dir,
                                                                   const std::vector<std::string>& projections,
                                                                   store_options options = {});
  ~rocksdb_store() override;
  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;

  // ports::event_store
  using ports::event_store::append;
  void append_async(std::vector<ports::stream_append> appends, ports::append_callback done) override;
  [[nodiscard]] result<ports::chain_report> verify_chain() const override;
  [[nodiscard]] result<void> save_snapshot(std::string_view stream, const ports::snapshot& s) override;
  [[nodiscard]] result<std::optional<ports::snapshot>> load_snapshot(std::string_view stream) const override;
  /// Synced writes done so far (for benchmarks: events per commit).
  [[nodiscard]] std::uint64_t commit_count() const;
  [[nodiscard]] result<std::vector<envelope>> read_stream(std::string_view stream, std::uint64_t from_version,
                                                          std::size_t limit) const override;
  [[nodiscard]] result<std::vector<envelope>> read_all(std::uint64_t after, std::size_t limit) const override;
  [[nodiscard]] result<std::uint64_t> stream_version(std::string_view stream) const override;
  [[nodiscard]] std::uint64_t head_position() const override;
  /// A write failure being recovered from, or a disk with less free space than the
  /// reserve (checked now, with statvfs).
  [[nodiscard]] std::optional<error> write_fault() const override;
  /// Reopens done after write failures (for tests).
  [[nodiscard]] std::uint64_t recoveries() const;

  // ports::read_model_store
  [[nodiscard]] result<std::optional<nlohmann::json>> get(std::string_view projection, std::string_view table,
                                                          std::string_view key) const override;
  [[nodiscard]] result<std::vector<ports::row>> scan(std::string_view projection, std::string_view table,
                                                     std::string_view prefix, std::string_view after, std::size_t limit,
                                                     bool reverse) const override;
  [[nodiscard]] result<std::uint64_t> checkpoint(std::string_view projection) const override;
  [[nodiscard]] result<void> save_checkpoint(std::string_view name, std::uint64_t position) override;
  [[nodiscard]] result<void> commit(std::string_view projection, const std::vector<mutation>& mutations,
                                    std::uint64_t position) override;
  /// One WriteBatch: a DeleteRange over the `proj_<name>` family up to its last key, and
  /// the checkpoint's delete (the family itself stays, so handles held by readers remain
  /// valid). Not synced, like `commit`.
  [[nodiscard]] result<void> reset(std::string_view projection) override;
  /// Active slots are kept in `checkpoints` under `slot/<name>` (absent: 0) and cached.
  [[nodiscard]] result<int> active_slot(std::string_view projection) const override;
  [[nodiscard]] result<void> activate(std::string_view projection, int slot) override;

  // ports::token_store
  [[nodiscard]] result<void> put(std::string_view token_hash, const ports::session_record& s) override;
  [[nodiscard]] result<std::optional<ports::session_record>> get(std::string_view token_hash) const override;
  [[nodiscard]] result<void> erase(std::string_view token_hash) override;
  [[nodiscard]] result<std::size_t> erase_user(std::string_view user_id, std::string_view except_token_hash) override;

  // ports::idempotency_store
  [[nodiscard]] result<std::pair<ports::idempotency_claim, ports::idempotency_record>> claim(
      std::string_view key, std::string_view fingerprint) override;
  [[nodiscard]] result<void> complete(std::string_view key, const ports::idempotency_record& record) override;

  // ports::sealed_store (synced writes)
  [[nodiscard]] result<void> put_sealed(std::string_view ref, std::string_view bytes) override;
  [[nodiscard]] result<std::optional<std::string>> get_sealed(std::string_view ref) const override;
  [[nodiscard]] result<void> erase_sealed(std::string_view ref) override;

 private:
  struct impl;
  explicit rocksdb_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace atrium::rocksdb_adapter
