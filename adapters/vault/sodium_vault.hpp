#pragma once
/// libsodium credential vault: connection credentials encrypted at rest, under a master
/// key that never leaves this process's locked memory.
///
///   master key (32 bytes, ATRIUM_MASTER_KEY_FILE or DATA_DIR/master.key)
///     ├─ crypto_kdf_derive_from_key(id 1, ctx "atriumvt") ─▶ encryption subkey
///     └─ crypto_kdf_derive_from_key(id 2, ctx "atriumvt") ─▶ fingerprint subkey
///
///   seal(credentials):
///     ref        = "vault:" + 32 lowercase hex chars (128 random bits, randombytes_buf)
///     plaintext  = credentials.dump()            (compact JSON, object keys sorted)
///     nonce      = 24 random bytes
///     ciphertext = XChaCha20-Poly1305-IETF(encryption subkey, nonce, plaintext,
///                                          additional data = ref)   (ciphertext ‖ 16-byte tag)
///     stored     = 0x01 ‖ nonce ‖ ciphertext       (sealed_store::put_sealed(ref, stored))
///
///   fingerprint(credentials) = "b2:" + first 32 hex chars of
///                              BLAKE2b-256 keyed with the fingerprint subkey over credentials.dump()
///
/// The AEAD is libsodium's crypto_aead_xchacha20poly1305_ietf (XChaCha20 per
/// draft-irtf-cfrg-xchacha, Poly1305 per RFC 8439); the random 192-bit nonce makes
/// collisions negligible without a counter. Binding the ref as additional data means
/// ciphertext copied under another ref fails authentication. The fingerprint is keyed
/// (crypto_generichash, BLAKE2b per RFC 7693) so a weak password cannot be brute-forced
/// from the fingerprint an event carries. Format byte 0x01 leaves room for a key
/// rotation or another cipher later.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ports/vault.hpp"

namespace atrium::vault_adapter {

/// 32 bytes of key material in guarded memory: allocated with sodium_malloc (guard
/// pages, mlock'd so it is never swapped out), wiped with sodium_memzero and freed on
/// destruction. Move-only; a moved-from key is empty.
class secret_key {
 public:
  static constexpr std::size_t size = 32;

  /// A copy of exactly `size` bytes into guarded memory. `invalid_argument` for another
  /// length; `unavailable` if libsodium cannot initialize or allocate.
  [[nodiscard]] static result<secret_key> from_bytes(std::span<const unsigned char> bytes);
  /// The key written as exactly 64 hex characters (either case), decoded with
  /// sodium_hex2bin straight into guarded memory. `invalid_argument` otherwise.
  [[nodiscard]] static result<secret_key> from_hex(std::string_view hex);
  /// A new random key (randombytes_buf, the OS CSPRNG).
  [[nodiscard]] static result<secret_key> generate();
  /// Subkey `id` of `parent` under the 8-character `context`, derived with libsodium's
  /// crypto_kdf_derive_from_key (BLAKE2b keyed with `parent`, salted with id and
  /// context), straight into guarded memory. `invalid_argument` for an empty parent or
  /// a context not 8 characters long; `unavailable` if memory cannot be allocated.
  [[nodiscard]] static result<secret_key> derive(const secret_key& parent, std::uint64_t id, std::string_view context);

  secret_key(secret_key&& other) noexcept;
  secret_key& operator=(secret_key&& other) noexcept;
  secret_key(const secret_key&) = delete;
  secret_key& operator=(const secret_key&) = delete;
  ~secret_key();

  /// The `size` key bytes (nullptr for a moved-from key).
  [[nodiscard]] const unsigned char* data() const { return bytes_; }

 private:
  explicit secret_key(unsigned char* bytes) : bytes_(bytes) {}
  unsigned char* bytes_ = nullptr;
};

/// The vault's root key (see load_master_key).
using master_key = secret_key;

/// Loads the master key.
///
/// - `key_file` given (the app passes `ATRIUM_MASTER_KEY_FILE`): its content must be 32
///   raw bytes, or 64 hex characters optionally followed by one newline (`\n` or
///   `\r\n`). Its mode is not checked (a mounted secret is often 0644 inside its
///   container). `not_found` if it does not exist, `invalid_argument` for any other
///   content, `unavailable` if it cannot be read.
/// - otherwise `data_dir/master.key` (`data_dir` is created if missing): generated if
///   absent (32 bytes from randombytes_buf, written as 64 hex chars and a newline with
///   open(O_CREAT|O_EXCL|O_WRONLY, 0600), fsync'd, and the directory fsync'd, so a
///   crash cannot leave encrypted entries behind a lost key); read if present, and then
///   `failed_precondition` ("master key file must be mode 0600") if its mode grants any
///   access to group or others, `invalid_argument` if its content is malformed.
///
/// Messages name the file, never key bytes.
[[nodiscard]] result<master_key> load_master_key(const std::optional<std::filesystem::path>& key_file,
                                                 const std::filesystem::path& data_dir);

/// The vault over a sealed_store (see the file comment for the format). Thread-safe if
/// the store is. Plaintext buffers are wiped with sodium_memzero once used.
class sodium_vault final : public ports::secret_vault {
 public:
  /// Largest serialized credentials accepted by `seal`, in bytes.
  static constexpr std::size_t max_plaintext_bytes = 64 * 1024;

  /// Derives the encryption and fingerprint subkeys from `key` (which is not retained:
  /// it may be destroyed afterwards). `store` must outlive the vault. Throws
  /// std::invalid_argument for an empty (moved-from) key and std::bad_alloc if guarded
  /// memory cannot be allocated.
  sodium_vault(const master_key& key, ports::sealed_store& store);

  [[nodiscard]] result<ports::sealed_secret> seal(const nlohmann::json& credentials) override;
  [[nodiscard]] result<nlohmann::json> open(std::string_view ref) const override;
  [[nodiscard]] result<void> erase(std::string_view ref) override;
  /// `b2:` + 32 lowercase hex chars. Invalid UTF-8 in strings is serialized as U+FFFD
  /// here (seal refuses it), so this never throws.
  [[nodiscard]] std::string fingerprint(const nlohmann::json& credentials) const override;

 private:
  secret_key encryption_key_;
  secret_key fingerprint_key_;
  ports::sealed_store& store_;
};

}  // namespace atrium::vault_adapter
