#include "adapters/rocksdb/rocksdb_store.hpp"

namespace atrium::rocksdb_adapter {

result<std::unique_ptr<rocksdb_store>> rocksdb_store::open(const std::string& dir,
                                                           const std::vector<std::string>& projections,
                                                           store_options options) {
  auto db = database::open(dir, read_model_store::families_for(projections), options);
  if (!db) return std::unexpected(db.error());
  std::unique_ptr<rocksdb_store> store(new rocksdb_store());
  store->db_ = std::move(*db);
  store->kv_ = std::make_unique<kv_store>(store->db_);
  auto read_models = read_model_store::open(store->db_);
  if (!read_models) return std::unexpected(read_models.error());
  store->read_models_ = std::move(*read_models);
  auto events = event_log::open(store->db_);
  if (!events) return std::unexpected(events.error());
  store->events_ = std::move(*events);
  return store;
}

rocksdb_store::~rocksdb_store() = default;

void rocksdb_store::collect(std::vector<ports::metric_family>& out) const {
  using ports::family;
  using ports::metric_type;
  events_->collect_metrics(out);
  const auto s = db_->stats();
  auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  out.push_back(family("atrium_rocksdb_live_data_bytes", metric_type::gauge,
                       "Estimated bytes of live data in RocksDB (rocksdb.estimate-live-data-size).")
                    .add(d(s.live_data_bytes)));
  out.push_back(family("atrium_rocksdb_pending_compaction_bytes", metric_type::gauge,
                       "Bytes compaction must rewrite (rocksdb.estimate-pending-compaction-bytes); writes stall "
                       "when it grows too large.")
                    .add(d(s.pending_compaction_bytes)));
  out.push_back(family("atrium_rocksdb_delayed_write_rate_bytes", metric_type::gauge,
                       "Rate RocksDB slows writes to, bytes per second; 0 while writes are not delayed.")
                    .add(d(s.delayed_write_rate)));
  out.push_back(family("atrium_rocksdb_write_stopped", metric_type::gauge, "1 while RocksDB stops all writes.")
                    .add(s.write_stopped ? 1 : 0));
  out.push_back(family("atrium_rocksdb_write_stalls_total", metric_type::counter,
                       "Write stalls since start by kind: stop (writes stopped) or slowdown (writes delayed).")
                    .add(d(s.stops), {{"kind", "stop"}})
                    .add(d(s.slowdowns), {{"kind", "slowdown"}}));
  out.push_back(family("atrium_rocksdb_write_stall_seconds_total", metric_type::counter,
                       "Time user writes waited in write stalls since start.")
                    .add(static_cast<double>(s.stall_micros) / 1e6));
  const auto m = db_->memory();
  out.push_back(
      family("atrium_rocksdb_memtable_bytes", metric_type::gauge, "Bytes of all memtables.").add(d(m.memtables)));
  out.push_back(family("atrium_rocksdb_block_cache_bytes", metric_type::gauge,
                       "Bytes used in the block cache (blocks and the memtables' reservation).")
                    .add(d(m.block_cache)));
  auto free = family("atrium_data_dir_free_bytes", metric_type::gauge,
                     "Bytes free for atriumd on the file system holding the data dir.");
  if (s.disk_free_bytes) free.add(d(*s.disk_free_bytes));
  out.push_back(std::move(free));
  auto size = family("atrium_data_dir_size_bytes", metric_type::gauge,
                     "Size of the file system holding the data dir, in bytes.");
  if (s.disk_size_bytes) size.add(d(*s.disk_size_bytes));
  out.push_back(std::move(size));
}

}  // namespace atrium::rocksdb_adapter
