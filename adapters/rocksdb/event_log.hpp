#pragma once
/// RocksDB event log: the event store over the shared `database` (docs/design.md, "Storage
/// layout"):
///
/// | family          | key                                  | value                                     |
/// |-----------------|--------------------------------------|-------------------------------------------|
/// | `events`        | position, u64 big-endian             | envelope, compact JSON                    |
/// | `streams`       | stream id, 0x00, version u64 BE      | position u64 BE                           |
/// | `stream_heads`  | (not written or read since issue 19: a stream's head is its last `streams` key) |
/// | `event_ids`     | event id                             | position u64 BE (idempotency)             |
/// | `snapshots`     | stream id                            | `{"version","schema","state"}`            |
///
/// Appends are written with `WriteOptions::sync = true`: an append returns only after
/// RocksDB has fsynced its WAL. The chain hash of each event is `atrium::chain_hash`
/// (events/chain.hpp), and `verify_chain` runs `atrium::chain_verifier` over the stored
/// records. Appends are queued and committed by one commit thread in synced WriteBatches
/// (group commit):
///
///   append_async ─▶ queue ─▶ commit thread: stage each append in order (checks against
///                            the heads of the appends staged before it), one synced
///                            Write for the group ─▶ callbacks, in position order
///
/// The commit thread also drives the database's recovery: while a write failure is
/// recorded it calls `database::try_recover` every `recovery_interval`.

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "adapters/rocksdb/database.hpp"
#include "ports/event_store.hpp"
#include "ports/metrics.hpp"

namespace atrium::rocksdb_adapter {

/// The event log. Thread-safe: reads from any thread, appends through the commit thread.
class event_log final : public ports::event_store {
 public:
  /// The log over `db`: reads its head (next position, last hash) and starts the commit
  /// thread. `internal` if the stored log's last record is corrupt, `unavailable` on
  /// I/O error.
  [[nodiscard]] static result<std::unique_ptr<event_log>> open(std::shared_ptr<database> db);
  /// Stops the commit thread after it committed everything queued.
  ~event_log() override;
  event_log(const event_log&) = delete;
  event_log& operator=(const event_log&) = delete;

  // ports::event_store
  /// As `append_async`, blocking the calling thread until the append's group is
  /// committed (or refused). The commit thread stores each outcome in the caller's frame
  /// and wakes all callers of a group with one futex wake (issue 19: a futex call per
  /// caller cost the commit thread more than its RocksDB write at 256 writers).
  [[nodiscard]] result<std::vector<envelope>> append(std::vector<ports::stream_append> appends) override;
  void append_async(std::vector<ports::stream_append> appends, ports::append_callback done) override;
  [[nodiscard]] result<ports::chain_report> verify_chain() const override;
  [[nodiscard]] result<void> save_snapshot(std::string_view stream, const ports::snapshot& s) override;
  [[nodiscard]] result<std::optional<ports::snapshot>> load_snapshot(std::string_view stream) const override;
  [[nodiscard]] result<std::vector<envelope>> read_stream(std::string_view stream, std::uint64_t from_version,
                                                          std::size_t limit) const override;
  [[nodiscard]] result<std::vector<envelope>> read_all(std::uint64_t after, std::size_t limit) const override;
  [[nodiscard]] result<std::uint64_t> stream_version(std::string_view stream) const override;
  [[nodiscard]] std::uint64_t head_position() const override;
  /// The database's `write_fault`: a write failure being recovered from, or a disk with
  /// less free space than the reserve.
  [[nodiscard]] std::optional<error> write_fault() const override;

  /// Synced writes done so far (for benchmarks: events per commit).
  [[nodiscard]] std::uint64_t commit_count() const;

  /// Appends the group commit's families to `out`: `atrium_commit_groups_total` (synced
  /// WriteBatches that committed events), `atrium_committed_events_total` and the
  /// histogram `atrium_commit_group_events` (events per synced write, i.e. per fsync).
  void collect_metrics(std::vector<ports::metric_family>& out) const;

 private:
  struct impl;  // adapters/rocksdb/event_log_impl.hpp
  explicit event_log(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace atrium::rocksdb_adapter
