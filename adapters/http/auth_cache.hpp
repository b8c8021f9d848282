#pragma once
/// Authentication without a store read per request (issue 19, point 2). Every API
/// request resolves its bearer token to a token record (`tokens` column family) and the
/// record's user to a principal (the `users` row, the user's groups from the `groups`
/// projection, nested ones resolved). Both are kept here in bounded caches, each entry
/// trusted only while nothing that could change it has happened since it was read:
///
///   token hash ─▶ cached_token_store ─miss─▶ ports::token_store (RocksDB)
///                  every put / erase / erase_user through it drops what it changes
///                  before it returns (logout, revocation, password change, disabling)
///   user id ───▶ principal_cache ─miss─▶ ports::user_queries (users + groups rows)
///                  an entry carries the `users` and `groups` change counters
///                  (ports::read_model_changes) read before its rows were read; it is
///                  used only while both are unchanged, i.e. until the projection runner
///                  commits any user or group event (disabled, forgotten, roles, members)
///
/// So a revoked token, an ended session, a disabled user or a changed role or group
/// membership fails or applies on the very next request after the command's answer:
/// the token store is changed through this cache before the answer; a user or group
/// command is answered only after the projections applied it, which is after the
/// counter moved. Races with requests in flight are closed by generations: a value read
/// before a change is never stored after it.
///
/// Both caches hold at most `capacity` entries; when full, an arbitrary entry makes
/// room. Thread-safe (a mutex each; the store reads run outside it).

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/principal.hpp"
#include "ports/queries.hpp"
#include "ports/read_model_store.hpp"
#include "ports/token_store.hpp"

namespace atrium::http_adapter {

/// Entries each cache holds at most.
inline constexpr std::size_t k_auth_cache_capacity = 4096;

/// A token store that keeps the records it read (ports::token_store, which it wraps and
/// which must outlive it). Writes go to the wrapped store first and then drop the
/// changed entries; `touch` updates a kept record's `last_used_at`. The lists
/// (`api_tokens_of`, `api_token`) are read from the wrapped store. Only tokens that exist
/// are kept (an unknown token costs a store read each time). The wrapped store must be
/// written only through this object while it is in use.
class cached_token_store final : public ports::token_store {
 public:
  explicit cached_token_store(ports::token_store& base, std::size_t capacity = k_auth_cache_capacity)
      : base_(base), capacity_(capacity) {}

  [[nodiscard]] result<void> put(std::string_view token_hash, const ports::session_record& s) override;
  [[nodiscard]] result<std::optional<ports::session_record>> get(std::string_view token_hash) const override;
  [[nodiscard]] result<void> erase(std::string_view token_hash) override;
  [[nodiscard]] result<std::size_t> erase_user(std::string_view user_id, std::string_view except_token_hash) override;
  [[nodiscard]] result<std::vector<ports::token_entry>> api_tokens_of(std::string_view user_id) const override;
  [[nodiscard]] result<std::optional<ports::token_entry>> api_token(std::string_view token_id) const override;
  [[nodiscard]] result<void> touch(std::string_view token_hash, std::int64_t at) override;

  /// Records kept now (for tests).
  [[nodiscard]] std::size_t size() const;

 private:
  /// Drops `token_hash` (every entry when empty) and moves the generation on, so a read
  /// in flight does not store what it read before the change.
  void invalidate(std::string_view token_hash);

  ports::token_store& base_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  mutable std::uint64_t generation_ = 0;  // grows with every write
  mutable std::unordered_map<std::string, ports::session_record> entries_;
};

/// Who a user is for the policy, as authentication needs it.
struct resolved_user {
  principal who;         ///< user id, global roles, disabled flag, groups (nested resolved); no scopes
  std::string username;  ///< for log lines
};

/// Resolves user ids to principals through `users` (the query port), keeping each for as
/// long as the `users` and `groups` projections have not changed (`changes`; nullptr:
/// nothing is kept, every call reads). Both must outlive the cache.
class principal_cache {
 public:
  principal_cache(const ports::user_queries& users, const ports::read_model_changes* changes,
                  std::size_t capacity = k_auth_cache_capacity)
      : users_(users), changes_(changes), capacity_(capacity) {}

  /// The principal of `user_id`; nullopt when no such user; the query port's error when
  /// the row cannot be read (never kept).
  [[nodiscard]] result<std::optional<resolved_user>> resolve(const std::string& user_id) const;

  /// Principals kept now (for tests).
  [[nodiscard]] std::size_t size() const;

 private:
  /// The `users` and `groups` change counters now; nullopt when not counted.
  struct stamp {
    std::uint64_t users = 0;
    std::uint64_t groups = 0;
    bool operator==(const stamp&) const = default;
  };
  [[nodiscard]] std::optional<stamp> now() const;

  struct entry {
    stamp at;
    resolved_user user;
  };
  const ports::user_queries& users_;
  const ports::read_model_changes* changes_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, entry> entries_;
};

}  // namespace atrium::http_adapter
