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

}  // namespace atrium::rocksdb_adapter
