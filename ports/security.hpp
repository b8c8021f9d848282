#pragma once
/// Ports for credentials: password hashing and secrets. Implemented by adapters/sodium
/// (libsodium: argon2id, SHA-256, CSPRNG); used by the HTTP adapter's login and
/// authentication. The storage ports it works with (sessions, idempotency records) have
/// their own headers, included here.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "events/error.hpp"
#include "ports/idempotency_store.hpp"
#include "ports/token_store.hpp"

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

}  // namespace atrium::ports
