#pragma once
/// libsodium adapter: argon2id password hashes (crypto_pwhash_str, RFC 9106, PHC
/// string format, OPSLIMIT/MEMLIMIT "interactive": 2 passes, 64 MiB), session tokens
/// from the OS CSPRNG (randombytes_buf) and SHA-256 digests (crypto_hash_sha256).

#include "ports/security.hpp"

namespace atrium::sodium_adapter {

/// Initializes libsodium once; `unavailable` if it cannot (no entropy source).
[[nodiscard]] result<void> initialize();

/// argon2id hasher.
class argon2id_hasher final : public ports::password_hasher {
 public:
  [[nodiscard]] result<std::string> hash(std::string_view password) const override;
  [[nodiscard]] bool verify(std::string_view phc_hash, std::string_view password) const override;
};

/// CSPRNG tokens and SHA-256.
class sodium_secrets final : public ports::secret_source {
 public:
  [[nodiscard]] std::string random_token() const override;
  [[nodiscard]] std::string sha256_hex(std::string_view bytes) const override;
};

}  // namespace atrium::sodium_adapter
