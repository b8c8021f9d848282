#pragma once
/// RocksDB key-value store: the small records kept beside the log over the shared
/// `database`, one column family each, values as given or as compact JSON:
///
/// | family        | key                                  | value                                   |
/// |---------------|--------------------------------------|-----------------------------------------|
/// | `tokens`      | SHA-256 hex of a bearer token        | `{"user_id","issued_at","expires_at"}`, API tokens also
/// `"kind":"api","token_id","name","scopes","created_by","last_used_at"` | | `idempotency` | SHA-256 hex of (user id,
/// client key) | `{"fingerprint","completed","status","body","etag"}` | | `vault`       | vault ref (`vault:` + 32 hex
/// chars)  | sealed secret bytes (encrypted by adapters/vault) |

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "adapters/rocksdb/database.hpp"
#include "ports/idempotency_store.hpp"
#include "ports/sealed_store.hpp"
#include "ports/token_store.hpp"

namespace atrium::rocksdb_adapter {

/// Sessions, idempotency records and sealed secrets. Thread-safe.
class kv_store final : public ports::token_store, public ports::idempotency_store, public ports::sealed_store {
 public:
  /// The store over `db` (shared: the database stays open while the store lives).
  explicit kv_store(std::shared_ptr<database> db);

  // ports::token_store (synced writes)
  [[nodiscard]] result<void> put(std::string_view token_hash, const ports::session_record& s) override;
  [[nodiscard]] result<std::optional<ports::session_record>> get(std::string_view token_hash) const override;
  [[nodiscard]] result<void> erase(std::string_view token_hash) override;
  [[nodiscard]] result<std::size_t> erase_user(std::string_view user_id, std::string_view except_token_hash) override;
  [[nodiscard]] result<std::vector<ports::token_entry>> api_tokens_of(std::string_view user_id) const override;
  [[nodiscard]] result<std::optional<ports::token_entry>> api_token(std::string_view token_id) const override;
  [[nodiscard]] result<void> touch(std::string_view token_hash, std::int64_t at) override;

  // ports::idempotency_store (claims synced, completions not)
  [[nodiscard]] result<std::pair<ports::idempotency_claim, ports::idempotency_record>> claim(
      std::string_view key, std::string_view fingerprint) override;
  [[nodiscard]] result<void> complete(std::string_view key, const ports::idempotency_record& record) override;

  // ports::sealed_store (synced writes)
  [[nodiscard]] result<void> put_sealed(std::string_view ref, std::string_view bytes) override;
  [[nodiscard]] result<std::optional<std::string>> get_sealed(std::string_view ref) const override;
  [[nodiscard]] result<void> erase_sealed(std::string_view ref) override;

 private:
  /// One synced Put (`bytes`) or Delete (nullopt) of `key` in `family`.
  result<void> write_one(std::string_view family, std::string_view key, std::optional<std::string_view> bytes,
                         bool sync, std::string_view what);

  /// Every stored token record matching `keep`, in key order.
  result<std::vector<ports::token_entry>> scan_tokens(
      const std::function<bool(const ports::session_record&)>& keep) const;

  std::shared_ptr<database> db_;
  std::mutex idempotency_mu_;  // makes claim() a check-and-set
  std::mutex tokens_mu_;       // touch() reads then writes: never over an erase
};

}  // namespace atrium::rocksdb_adapter
