#pragma once
/// Ports for connection credentials kept out of the event log. A connection's
/// credentials (passwords, tokens) are sealed into the vault when a command carries
/// them; the events record only the vault `ref` and a keyed `fingerprint`, so the log,
/// its projections, backups and exports never contain a secret:
///
///   command {credentials} ─▶ secret_vault::seal ─▶ sealed_store::put_sealed(ref, bytes)
///                                   │
///                                   ▼
///            event {credentials_ref: ref, credentials_fingerprint: fingerprint}
///
///   connection test ─▶ secret_vault::open(ref) ─▶ credentials (in memory only)
///
/// Implemented by adapters/vault (libsodium: XChaCha20-Poly1305 and keyed BLAKE2b) over
/// adapters/rocksdb (the `vault` column family).

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "events/error.hpp"
#include "ports/sealed_store.hpp"

namespace atrium::ports {

/// What an event may hold about sealed credentials.
struct sealed_secret {
  std::string ref;          ///< the vault key, `vault:` + 32 lowercase hex characters
  std::string fingerprint;  ///< `b2:` + 32 lowercase hex characters; equal credentials, equal fingerprint
};

/// Credential vault: secrets encrypted at rest; events hold only `ref` and
/// `fingerprint`. Thread-safe.
class secret_vault {
 public:
  virtual ~secret_vault() = default;
  /// Encrypts and stores `credentials` (any JSON value, typically an object) under a
  /// new random ref (a new one on every call, even for equal credentials). Returns the
  /// ref and the fingerprint. `invalid_argument` if the JSON cannot be serialized
  /// (invalid UTF-8) or is too large; `unavailable` if the store failed.
  [[nodiscard]] virtual result<sealed_secret> seal(const nlohmann::json& credentials) = 0;
  /// Decrypts the credentials stored under `ref`. `not_found` if there is none;
  /// `internal` if the stored bytes fail authentication (tampered, moved from another
  /// ref, another master key) or do not parse; `unavailable` if the store failed.
  /// Messages never contain secret material.
  [[nodiscard]] virtual result<nlohmann::json> open(std::string_view ref) const = 0;
  /// Deletes the entry under `ref`; absent is fine. `unavailable` if the store failed.
  [[nodiscard]] virtual result<void> erase(std::string_view ref) = 0;
  /// The fingerprint `seal` would return for `credentials`: deterministic for one
  /// master key, so a command can tell whether credentials changed without opening the
  /// vault; a keyed hash, so it does not help guessing the secret.
  [[nodiscard]] virtual std::string fingerprint(const nlohmann::json& credentials) const = 0;
};

}  // namespace atrium::ports
