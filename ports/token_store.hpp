#pragma once
/// Port: storage of bearer-token records keyed by the SHA-256 of the token: login
/// sessions and API tokens (docs/access.md, "API tokens"). Implemented by
/// adapters/rocksdb (the `tokens` column family, node-local); used by the HTTP adapter's
/// login, authentication, token routes and session revocation. The token itself is never
/// stored, only its SHA-256; a token's metadata travels in `security.token_created`, its
/// secret nowhere.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "events/error.hpp"

namespace atrium::ports {

/// What a stored token is.
enum class token_kind {
  session,  ///< a login session (`POST /v1/auth/login`): all of its user's permissions
  api,      ///< an API token (`POST /v1/tokens`, `…/service-accounts/{id}/tokens`): scoped
};

/// A stored token: the token itself is never stored, only its SHA-256.
struct session_record {
  std::string user_id;          ///< the owner (a person or a service account)
  std::int64_t issued_at = 0;   ///< Unix seconds
  std::int64_t expires_at = 0;  ///< Unix seconds; 0 for an API token that never expires
  token_kind kind = token_kind::session;
  std::string token_id;             ///< API tokens: the public id (UUIDv7) naming it in the API
  std::string name;                 ///< API tokens: the owner's label for it
  std::vector<std::string> scopes;  ///< API tokens: `events:read`, `jobs:work`, `admin`
  std::string created_by;           ///< API tokens: who made it (an admin for a service account's)
  std::int64_t last_used_at = 0;    ///< API tokens: Unix seconds of the last use seen (0: never)

  /// True when the token has expired at `now` (Unix seconds).
  [[nodiscard]] bool expired(std::int64_t now) const { return expires_at != 0 && expires_at <= now; }
};

/// A stored token with the hash it is keyed by.
struct token_entry {
  std::string token_hash;
  session_record record;
};

/// Storage of token records keyed by token hash.
class token_store {
 public:
  virtual ~token_store() = default;
  /// Stores a token record (synced). `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> put(std::string_view token_hash, const session_record& s) = 0;
  /// The record for a token hash; nullopt if unknown.
  [[nodiscard]] virtual result<std::optional<session_record>> get(std::string_view token_hash) const = 0;
  /// Deletes a record (synced); absent is fine.
  [[nodiscard]] virtual result<void> erase(std::string_view token_hash) = 0;
  /// Deletes every *session* of `user_id` except the one whose hash is
  /// `except_token_hash` (empty: none is kept), in one synced write; returns how many
  /// were deleted. API tokens are kept (a password change leaves them working; a disabled
  /// user's fail at authentication). Used when a password changes, a password is reset
  /// and a user is disabled. Cost: one pass over all stored records. `unavailable` on
  /// I/O error.
  [[nodiscard]] virtual result<std::size_t> erase_user(std::string_view user_id,
                                                       std::string_view except_token_hash) = 0;
  /// Every API token of `user_id`, oldest first (by `issued_at`, then id). Cost: one pass
  /// over all stored records. `unavailable` on I/O error.
  [[nodiscard]] virtual result<std::vector<token_entry>> api_tokens_of(std::string_view user_id) const = 0;
  /// The API token whose public id is `token_id`; nullopt if none. Cost: one pass over
  /// all stored records. `unavailable` on I/O error.
  [[nodiscard]] virtual result<std::optional<token_entry>> api_token(std::string_view token_id) const = 0;
  /// Records that the token of `token_hash` was used at `at` (Unix seconds): an
  /// unsynced write (a crash may lose the latest use, never a revocation), skipped when
  /// the token is gone. `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> touch(std::string_view token_hash, std::int64_t at) = 0;
};

}  // namespace atrium::ports
