#include "adapters/sodium/sodium_security.hpp"

#include <sodium.h>

#include <array>

namespace atrium::sodium_adapter {

result<void> initialize() {
  if (sodium_init() < 0) return fail(errc::unavailable, "libsodium failed to initialize");
  return {};
}

result<std::string> argon2id_hasher::hash(std::string_view password) const {
  if (password.size() < 8 || password.size() > 1024) {
    return fail(errc::invalid_argument, "password must be 8-1024 bytes", {{"field", "password"}});
  }
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return fail(errc::unavailable, "password hashing ran out of memory");
  }
  return std::string(out.data());
}

bool argon2id_hasher::verify(std::string_view phc_hash, std::string_view password) const {
  if (phc_hash.empty() || phc_hash.size() >= crypto_pwhash_STRBYTES) return false;
  const std::string hash(phc_hash);  // crypto_pwhash_str_verify needs a NUL-terminated string
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string sodium_secrets::random_token() const {
  std::array<unsigned char, 32> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  std::array<char, 65> hex{};
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
  return std::string(hex.data(), 64);
}

std::string sodium_secrets::sha256_hex(std::string_view bytes) const {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  std::array<char, crypto_hash_sha256_BYTES * 2 + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return std::string(hex.data(), crypto_hash_sha256_BYTES * 2);
}

}  // namespace atrium::sodium_adapter
