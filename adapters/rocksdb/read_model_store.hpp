#pragma once
/// RocksDB read-model store: projection rows and checkpoints over the shared `database`.
/// Each projection has two slots, each one column family (`proj_<name>` for slot 0, as
/// before slots existed, and `proj_<name>~1`), keyed `table, 0x00, row key` with the row
/// as JSON; checkpoints (and `slot/<name>`, the active slot) live in `checkpoints`.
/// A commit writes rows and checkpoint in one WriteBatch (WAL on, not synced: after a
/// crash the projection at worst replays from its older checkpoint, never applies an
/// event twice or skips one).

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/rocksdb/database.hpp"
#include "ports/read_model_store.hpp"

namespace atrium::rocksdb_adapter {

/// The read-model store. Thread-safe.
class read_model_store final : public ports::read_model_store, private database_observer {
 public:
  /// The column families the projections named `projections` need (both slots of
  /// each), for `database::open`.
  [[nodiscard]] static std::vector<std::string> families_for(const std::vector<std::string>& projections);

  /// The store over `db`, with the active slots read from it. `unavailable` on I/O error.
  [[nodiscard]] static result<std::unique_ptr<read_model_store>> open(std::shared_ptr<database> db);
  ~read_model_store() override;
  read_model_store(const read_model_store&) = delete;
  read_model_store& operator=(const read_model_store&) = delete;

  // ports::read_model_store
  [[nodiscard]] result<std::optional<nlohmann::json>> get(std::string_view projection, std::string_view table,
                                                          std::string_view key) const override;
  [[nodiscard]] result<std::vector<ports::row>> scan(std::string_view projection, std::string_view table,
                                                     std::string_view prefix, std::string_view after, std::size_t limit,
                                                     bool reverse) const override;
  [[nodiscard]] result<std::uint64_t> checkpoint(std::string_view projection) const override;
  [[nodiscard]] result<void> save_checkpoint(std::string_view name, std::uint64_t position) override;
  /// Rows that are not valid UTF-8 are stored with U+FFFD in place of the bad bytes (a
  /// row is rebuildable; a projection must not stall on it), with a warning logged.
  [[nodiscard]] result<void> commit(std::string_view projection, const std::vector<mutation>& mutations,
                                    std::uint64_t position) override;
  /// One WriteBatch: a DeleteRange over the `proj_<name>` family up to its last key, and
  /// the checkpoint's delete (the family itself stays, so handles held by readers remain
  /// valid). Not synced, like `commit`.
  [[nodiscard]] result<void> reset(std::string_view projection) override;
  /// Active slots are kept in `checkpoints` under `slot/<name>` (absent: 0) and cached.
  [[nodiscard]] result<int> active_slot(std::string_view projection) const override;
  [[nodiscard]] result<void> activate(std::string_view projection, int slot) override;

 private:
  explicit read_model_store(std::shared_ptr<database> db);
  /// Reads the active slots (`slot/<name>` in `checkpoints`). Needs the database held.
  result<void> load_slots();
  result<void> on_reopen() override { return load_slots(); }
  /// The family serving reads of `projection`: its active slot's, or the named slot's
  /// when `projection` is a slot name (`<name>~1`).
  rocksdb::ColumnFamilyHandle* read_family(std::string_view projection) const;

  std::shared_ptr<database> db_;
  mutable std::mutex slots_mu_;                    // guards `slots_`
  std::map<std::string, int, std::less<>> slots_;  // projection → active slot (absent: 0)
};

}  // namespace atrium::rocksdb_adapter
