#pragma once
/// Internal to adapters/rocksdb: the state of `event_log`, shared by event_log.cpp (open,
/// reads, verification, snapshots) and event_log_append.cpp (the group commit).

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "adapters/rocksdb/encoding.hpp"
#include "adapters/rocksdb/event_log.hpp"
#include "ports/metrics.hpp"

namespace atrium::rocksdb_adapter {

/// `streams` key: stream id, 0x00, version (u64 BE).
inline std::string stream_key(std::string_view stream, std::uint64_t version) {
  std::string k(stream);
  k.push_back('\0');
  k += be64(version);
  return k;
}

struct event_log::impl final : database_observer {
  /// The JSON text of an event's fields that do not depend on its place in the log,
  /// prepared on the caller's thread so the commit thread only concatenates.
  struct prepared_event {
    std::string head;      ///< `{"actor":…,"causation_id":…,"correlation_id":…,"data":…,`
    std::string rest;      ///< `,"schema":…,"stream":…` (between position and time)
    std::string type;      ///< `,"type":…`
    std::string metadata;  ///< `,"metadata":…` (between id and position), or "" when empty
    std::string id;        ///< the client's event id as a JSON string, or "" (a UUIDv7 is assigned)
  };
  /// An append waiting for the commit thread.
  struct pending {
    std::vector<ports::stream_append> appends;
    ports::append_callback done;
    std::vector<std::vector<prepared_event>> prepared;  // per append, per event
    [[nodiscard]] std::size_t event_count() const {
      std::size_t n = 0;
      for (const auto& a : appends) n += a.events.size();
      return n;
    }
  };
  /// What the appends staged so far in a group have changed, not yet written.
  struct group_state {
    std::uint64_t next_position;
    std::string last_hash;
    std::unordered_map<std::string, std::uint64_t> heads;  // stream → version
    std::unordered_map<std::string, envelope> ids;         // event id → staged event
  };

  explicit impl(std::shared_ptr<database> d) : db(std::move(d)) {}

  std::shared_ptr<database> db;

  // Owned by the commit thread after open (and reloaded by a reopen, which holds the
  // database exclusively):
  std::uint64_t next_position = 1;
  std::string last_hash{genesis_hash};
  // Last version of recently appended streams, so that expected-version checks need no
  // RocksDB read; cleared when it reaches `k_head_cache_limit` entries.
  std::unordered_map<std::string, std::uint64_t> head_cache;
  static constexpr std::size_t k_head_cache_limit = 1 << 17;
  // Server-made event ids, increasing, so their `event_ids` entries go in key order.
  uuid_v7_generator ids;
  std::atomic<std::uint64_t> head{0};
  // Groups committed so far (wraps): `event_log::append` callers sleep on it (futex) and
  // one FUTEX_WAKE wakes every caller of a group (one call, not one per append); made
  // only while `sync_waiters` (callers blocked in `append`) is not 0.
  std::atomic<std::uint32_t> groups_done{0};
  std::atomic<int> sync_waiters{0};
  std::atomic<std::uint64_t> commits{0};
  // For /metrics, counted by the commit thread after each synced write (lock-free):
  // groups written, events in them, and events per group.
  static constexpr double k_group_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  ports::counter groups_committed;
  ports::counter events_committed;
  ports::histogram group_sizes{k_group_buckets};

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<pending> queue;  // guarded by queue_mu
  bool stopping = false;      // guarded by queue_mu
  std::thread committer;

  /// Reads the log's head: the next position and the last hash. Needs the database held.
  result<void> load_head();
  result<void> on_reopen() override { return load_head(); }
  /// Wakes the commit thread, which then waits for recovery.
  void on_fault() override {
    { std::lock_guard lock(queue_mu); }  // the commit thread is waiting or will see the fault
    queue_cv.notify_all();
  }

  rocksdb::ColumnFamilyHandle* family(std::string_view name) const { return db->family(name); }
  /// The last version of `stream` as stored (0 for none), from its last `streams` key:
  /// the log keeps no separate head record since issue 19 (the `stream_heads` family of
  /// older data dirs is no longer written or read). Needs the database held.
  result<std::uint64_t> stored_version(std::string_view stream) const;
  /// The event stored at `position`; `internal` if it is missing (an index points at it).
  result<envelope> event_at(std::uint64_t position) const;

  // The group commit (event_log_append.cpp).
  void commit_loop();
  void commit_group(std::vector<pending>& group);
  /// Stages one append into `batch` against the group's state; the append's events, the
  /// stored ones it repeats, or its error.
  result<std::vector<envelope>> stage(pending& request, const std::string& time, group_state& g,
                                      rocksdb::WriteBatch& batch);
  /// Stage's checks of the request itself; `stored` gets the events it repeats.
  result<void> check_request(const pending& request, const group_state& g, std::vector<envelope>& stored) const;
  /// Stage's expected-version checks; the current version of each append's stream.
  result<std::vector<std::uint64_t>> check_versions(const pending& request, const group_state& g) const;
};

}  // namespace atrium::rocksdb_adapter
