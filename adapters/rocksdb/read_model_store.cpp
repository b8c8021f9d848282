#include "adapters/rocksdb/read_model_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <spdlog/spdlog.h>

#include "adapters/rocksdb/encoding.hpp"
#include "adapters/rocksdb/row_codec.hpp"

namespace atrium::rocksdb_adapter {
namespace {

std::string row_key(std::string_view table, std::string_view key) {
  std::string k(table);
  k.push_back('\0');
  k.append(key);
  return k;
}

/// A slot's key in the families and in `checkpoints`: slot 0 keeps the projection's
/// own name (`proj_<name>`, checkpoint `<name>`), as before slots existed.
std::string storage_key(std::string_view slot_or_name) {
  std::string s(slot_or_name);
  if (s.ends_with("~0")) s.resize(s.size() - 2);
  return s;
}

std::string family_name(std::string_view slot_or_name) { return "proj_" + storage_key(slot_or_name); }

error unknown_projection(std::string_view projection) {
  return error{errc::not_found, "unknown projection " + std::string(projection), nlohmann::json::object()};
}

}  // namespace

std::vector<std::string> read_model_store::families_for(const std::vector<std::string>& projections) {
  std::vector<std::string> out;
  for (const auto& p : projections) {
    out.push_back(family_name(ports::slot_name(p, 0)));
    out.push_back(family_name(ports::slot_name(p, 1)));
  }
  return out;
}

read_model_store::read_model_store(std::shared_ptr<database> db) : db_(std::move(db)) {}

result<std::unique_ptr<read_model_store>> read_model_store::open(std::shared_ptr<database> db) {
  std::unique_ptr<read_model_store> store(new read_model_store(std::move(db)));
  {
    auto lock = store->db_->use();
    if (!lock) return std::unexpected(lock.error());
    if (auto ok = store->load_slots(); !ok) return std::unexpected(ok.error());
  }
  store->db_->add_observer(store.get());
  return store;
}

read_model_store::~read_model_store() { db_->remove_observer(this); }

result<void> read_model_store::load_slots() {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->handle().NewIterator(rocksdb::ReadOptions(), db_->family(families::checkpoints)));
  std::lock_guard lock(slots_mu_);
  for (it->Seek("slot/"); it->Valid() && it->key().starts_with("slot/"); it->Next()) {
    slots_[it->key().ToString().substr(5)] = it->value() == rocksdb::Slice("1") ? 1 : 0;
  }
  return {};
}

rocksdb::ColumnFamilyHandle* read_model_store::read_family(std::string_view projection) const {
  if (projection.find('~') != std::string_view::npos) return db_->family(family_name(projection));
  int slot = 0;
  {
    std::lock_guard lock(slots_mu_);
    if (auto it = slots_.find(projection); it != slots_.end()) slot = it->second;
  }
  return db_->family(family_name(ports::slot_name(projection, slot)));
}

result<std::optional<nlohmann::json>> read_model_store::get(std::string_view projection, std::string_view table,
                                                            std::string_view key) const {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = read_family(projection);
  if (h == nullptr) return std::unexpected(unknown_projection(projection));
  auto raw = db_->get(h, row_key(table, key));
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<nlohmann::json>{};
  auto row = decode_row(**raw);
  if (!row) return std::unexpected(row.error());
  return std::optional<nlohmann::json>{std::move(*row)};
}

result<std::vector<ports::row>> read_model_store::scan(std::string_view projection, std::string_view table,
                                                       std::string_view prefix, std::string_view after,
                                                       std::size_t limit, bool reverse) const {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = read_family(projection);
  if (h == nullptr) return std::unexpected(unknown_projection(projection));
  const std::string full_prefix = row_key(table, prefix);
  const std::string table_prefix = row_key(table, "");
  std::vector<ports::row> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->handle().NewIterator(rocksdb::ReadOptions(), h));
  if (!reverse) {
    if (after.empty()) {
      it->Seek(full_prefix);
    } else {
      const auto start = row_key(table, after);
      it->Seek(start);
      if (it->Valid() && it->key() == rocksdb::Slice(start)) it->Next();
    }
  } else {
    if (after.empty()) {
      // Seek past every key with this prefix: prefix followed by 0xFF bytes.
      it->SeekForPrev(full_prefix + std::string(64, '\xff'));
    } else {
      it->SeekForPrev(row_key(table, after));
      if (it->Valid() && it->key() == rocksdb::Slice(row_key(table, after))) it->Prev();
    }
  }
  for (; it->Valid() && out.size() < limit; reverse ? it->Prev() : it->Next()) {
    const auto k = it->key().ToStringView();
    if (!k.starts_with(full_prefix)) {
      if (!reverse && k > std::string_view(full_prefix)) break;
      if (reverse && k < std::string_view(full_prefix)) break;
      continue;
    }
    auto row = decode_row(it->value().ToStringView());
    if (!row) return std::unexpected(row.error());
    out.push_back(ports::row{std::string(k.substr(table_prefix.size())), std::move(*row)});
  }
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "scan"));
  return out;
}

result<std::uint64_t> read_model_store::checkpoint(std::string_view projection) const {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  auto raw = db_->get(db_->family(families::checkpoints), storage_key(projection));
  if (!raw) return std::unexpected(raw.error());
  return *raw ? read_be64(**raw) : 0;
}

result<void> read_model_store::save_checkpoint(std::string_view name, std::uint64_t position) {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteBatch batch;
  batch.Put(db_->family(families::checkpoints), slice(storage_key(name)), be64(position));
  return db_->write(rocksdb::WriteOptions(), batch, "save checkpoint");
}

result<void> read_model_store::commit(std::string_view projection, const std::vector<mutation>& mutations,
                                      std::uint64_t position) {
  const auto key = storage_key(projection);
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = db_->family(family_name(key));
  if (h == nullptr) return std::unexpected(unknown_projection(projection));
  rocksdb::WriteBatch batch;
  std::string value;
  for (const auto& m : mutations) {
    if (const auto* put = std::get_if<row_put>(&m)) {
      // A row is derived data (rebuildable from the log), so a string that is not valid
      // UTF-8 (e.g. cut mid-character by a projection) is stored with U+FFFD in its
      // place rather than stalling the projection at this position forever.
      if (encode_row(put->value, value) == row_format::replaced) {
        spdlog::warn("projection={} table={} row not valid UTF-8; stored with replacement characters",
                     std::string(projection), put->table);
      }
      batch.Put(h, row_key(put->table, put->key), value);
    } else if (const auto* del = std::get_if<row_delete>(&m)) {
      batch.Delete(h, row_key(del->table, del->key));
    }
  }
  batch.Put(db_->family(families::checkpoints), slice(key), be64(position));
  return db_->write(rocksdb::WriteOptions(), batch, "commit projection");
}

result<void> read_model_store::reset(std::string_view projection) {
  const auto key = storage_key(projection);
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = db_->family(family_name(key));
  if (h == nullptr) return std::unexpected(unknown_projection(projection));
  rocksdb::WriteBatch batch;
  // Row keys are arbitrary bytes, so no fixed key bounds them all: the range ends right
  // after the family's last key (its immediate successor, `last + '\0'`, is exclusive).
  // One range tombstone instead of a Delete per row keeps the batch small however big
  // the projection is; compaction reclaims the space later.
  std::unique_ptr<rocksdb::Iterator> it(db_->handle().NewIterator(rocksdb::ReadOptions(), h));
  it->SeekToLast();
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "scan projection"));
  if (it->Valid()) {
    std::string end = it->key().ToString();
    end.push_back('\0');
    if (auto s = batch.DeleteRange(h, rocksdb::Slice(), end); !s.ok()) {
      return std::unexpected(storage_error(s, "reset projection"));
    }
  }
  if (auto s = batch.Delete(db_->family(families::checkpoints), slice(key)); !s.ok()) {
    return std::unexpected(storage_error(s, "reset projection"));
  }
  return db_->write(rocksdb::WriteOptions(), batch, "reset projection");
}

result<int> read_model_store::active_slot(std::string_view projection) const {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  if (db_->family("proj_" + std::string(projection)) == nullptr) return std::unexpected(unknown_projection(projection));
  std::lock_guard slots_lock(slots_mu_);
  auto it = slots_.find(projection);
  return it == slots_.end() ? 0 : it->second;
}

result<void> read_model_store::activate(std::string_view projection, int slot) {
  if (slot != 0 && slot != 1) return fail(errc::invalid_argument, "a projection slot is 0 or 1");
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  if (db_->family(family_name(ports::slot_name(projection, slot))) == nullptr) {
    return std::unexpected(unknown_projection(projection));
  }
  rocksdb::WriteOptions synced;
  synced.sync = true;
  const auto key = "slot/" + std::string(projection);
  rocksdb::WriteBatch batch;
  batch.Put(db_->family(families::checkpoints), key, slot == 1 ? "1" : "0");
  if (auto ok = db_->write(synced, batch, "activate projection slot"); !ok) return ok;
  std::lock_guard slots_lock(slots_mu_);
  slots_[std::string(projection)] = slot;
  return {};
}

}  // namespace atrium::rocksdb_adapter
