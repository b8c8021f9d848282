#pragma once
/// Ports for credentials: password hashing and session tokens. Implemented by
/// adapters/sodium (libsodium: argon2id, SHA-256, CSPRNG) and adapters/rocksdb (the
/// `tokens` column family); used by the HTTP adapter's login and authentication.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "events/error.hpp"

namespace atrium::ports {

/// Password hashing (argon2id, RFC 9106, PHC string format).
class password_hasher {
 public:
  virtual ~password_hasher() = default;
  /// Hashes a password with a fresh salt. `invalid_argument` if it is shorter than 8
  /// or longer than 1024 bytes; `unavailable` if the hasher ran out of memory.
  [[nodiscard]] virtual result<std::string> hash(std::string_view password) const = 0;
  /// True if `password` matches `phc_hash`; false for a malformed hash.
  [[nodiscard]] virtual bool verify(std::string_view phc_hash, std::string_view password) const = 0;
};

/// Secrets generation and digests.
class secret_source {
 public:
  virtual ~secret_source() = default;
  /// 256 random bits from the OS CSPRNG, as 64 lowercase hex characters.
  [[nodiscard]] virtual std::string random_token() const = 0;
  /// SHA-256 (FIPS 180-4) of `bytes`, as 64 lowercase hex characters.
  [[nodiscard]] virtual std::string sha256_hex(std::string_view bytes) const = 0;
};

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

/// What is stored for an `Idempotency-Key`: the request's fingerprint and, once the
/// request completed, its response.
struct idempotency_record {
  std::string fingerprint;  ///< SHA-256 of method, path and body
  bool completed = false;
  unsigned status = 0;
  std::string body;
  std::string etag;
};

/// Outcome of claiming a key.
enum class idempotency_claim {
  claimed,   ///< new key: run the request, then `complete` it
  retry,     ///< same request seen before without a stored response (in flight, or the
             ///< server stopped mid-way): run it again; event ids make that safe
  replay,    ///< same request, completed: answer the stored response
  mismatch,  ///< the key was used for a different request
};

/// Storage of idempotency records, keyed by a hash of (user id, client key).
class idempotency_store {
 public:
  virtual ~idempotency_store() = default;
  /// Atomically looks the key up and, if new, records the fingerprint. Returns the claim
  /// and the stored record. `unavailable` on I/O error.
  [[nodiscard]] virtual result<std::pair<idempotency_claim, idempotency_record>> claim(
      std::string_view key, std::string_view fingerprint) = 0;
  /// Stores the response of a claimed key.
  [[nodiscard]] virtual result<void> complete(std::string_view key, const idempotency_record& record) = 0;
};

}  // namespace atrium::ports
