#pragma once
/// RocksDB adapter: one RocksDB database (one directory) holding the event log, the read
/// models and the small key-value records beside them, split by role the way RocksDB
/// splits `DBImpl` — one owner of the handle, role stores over it, each implementing its
/// own port:
///
///   rocksdb_store::open ─▶ database          (database.hpp: handle, column families,
///                          │                  disk reserve, reopen after write failures)
///                          ├─ event_log        ports::event_store   (event_log.hpp)
///                          ├─ read_model_store ports::read_model_store (read_model_store.hpp)
///                          └─ kv_store         ports::token_store, idempotency_store,
///                                              sealed_store          (kv_store.hpp)
///
/// The column families (docs/design.md, "Storage layout"; the on-disk contract):
///
/// | family          | key                                  | value                                   |
/// |-----------------|--------------------------------------|-----------------------------------------|
/// | `events`        | position, u64 big-endian             | envelope, compact JSON                  |
/// | `streams`       | stream id, 0x00, version u64 BE      | position u64 BE                         |
/// | `stream_heads`  | (not written or read since issue 19: a stream's head is its last `streams` key) |
/// | `event_ids`     | event id                             | position u64 BE (idempotency)           |
/// | `snapshots`     | stream id                            | `{"version","schema","state"}`          |
/// | `checkpoints`   | projection or consumer name          | last position applied, u64 BE           |
/// | `tokens`        | SHA-256 hex of a session token       | `{"user_id","issued_at","expires_at"}`  |
/// | `idempotency`   | SHA-256 hex of (user id, client key) | `{"fingerprint","completed","status","body","etag"}` |
/// | `vault`         | vault ref (`vault:` + 32 hex chars)  | sealed secret bytes (encrypted by adapters/vault) |
/// | `proj_<name>`   | table, 0x00, row key                 | row JSON                                |

#include <memory>
#include <string>
#include <vector>

#include "adapters/rocksdb/database.hpp"
#include "adapters/rocksdb/event_log.hpp"
#include "adapters/rocksdb/kv_store.hpp"
#include "adapters/rocksdb/read_model_store.hpp"
#include "ports/metrics.hpp"

namespace atrium::rocksdb_adapter {

/// The role stores of one database, opened and closed together. The references it
/// hands out live as long as it does.
class rocksdb_store final : public ports::metrics_source {
 public:
  /// Opens (creating if missing) the database in `dir`, with the column families of the
  /// projections named in `projections`, and its role stores. `unavailable` if RocksDB
  /// cannot open it (e.g. locked by another process), `internal` if the stored log is
  /// corrupt.
  [[nodiscard]] static result<std::unique_ptr<rocksdb_store>> open(const std::string& dir,
                                                                   const std::vector<std::string>& projections,
                                                                   store_options options = {});
  /// Stops the event log's commit thread (after it committed what was queued), then
  /// closes the database.
  ~rocksdb_store() override;
  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;

  /// The event log (`ports::event_store`).
  [[nodiscard]] event_log& events() { return *events_; }
  [[nodiscard]] const event_log& events() const { return *events_; }
  /// The read-model store (`ports::read_model_store`).
  [[nodiscard]] read_model_store& read_models() { return *read_models_; }
  [[nodiscard]] const read_model_store& read_models() const { return *read_models_; }
  /// Sessions, idempotency records and sealed secrets.
  [[nodiscard]] kv_store& kv() { return *kv_; }
  [[nodiscard]] const kv_store& kv() const { return *kv_; }
  /// The shared database (health, recovery counters).
  [[nodiscard]] database& db() { return *db_; }
  [[nodiscard]] const database& db() const { return *db_; }

  /// The store's metrics (ports::metrics_source): the group commit (event_log
  /// `collect_metrics`), RocksDB's live data, pending compaction bytes, delayed write
  /// rate, stopped writes and stall counters, its memtables and block cache, and the
  /// free and total bytes of the data dir's file system (`database::stats`).
  void collect(std::vector<ports::metric_family>& out) const override;

 private:
  rocksdb_store() = default;
  // Declared so that they are destroyed in reverse: the role stores, then the database.
  std::shared_ptr<database> db_;
  std::unique_ptr<kv_store> kv_;
  std::unique_ptr<read_model_store> read_models_;
  std::unique_ptr<event_log> events_;
};

}  // namespace atrium::rocksdb_adapter
