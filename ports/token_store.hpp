#pragma once
/// Port: storage of session records keyed by the SHA-256 of their token. Implemented
/// by adapters/rocksdb (the `tokens` column family); used by the HTTP adapter's login,
/// authentication and session revocation.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "events/error.hpp"

namespace atrium::ports {

/// A stored session: the token itself is never stored, only its SHA-256.
struct session_record {
  std::string user_id;
  std::int64_t issued_at = 0;   ///< Unix seconds
  std::int64_t expires_at = 0;  ///< Unix seconds
};

/// Storage of session records keyed by token hash.
class token_store {
 public:
  virtual ~token_store() = default;
  /// Stores a session (synced). `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> put(std::string_view token_hash, const session_record& s) = 0;
  /// The session for a token hash; nullopt if unknown.
  [[nodiscard]] virtual result<std::optional<session_record>> get(std::string_view token_hash) const = 0;
  /// Deletes a session; absent is fine.
  [[nodiscard]] virtual result<void> erase(std::string_view token_hash) = 0;
  /// Deletes every session of `user_id` except the one whose hash is
  /// `except_token_hash` (empty: none is kept), in one synced write; returns how many
  /// were deleted. Used when a password changes, a password is reset and a user is
  /// disabled. Cost: one pass over all stored sessions. `unavailable` on I/O error.
  [[nodiscard]] virtual result<std::size_t> erase_user(std::string_view user_id,
                                                       std::string_view except_token_hash) = 0;
};

}  // namespace atrium::ports
