#pragma once
/// Port: storage of `Idempotency-Key` records: a request's fingerprint and, once it
/// completed, its response. Implemented by adapters/rocksdb (the `idempotency` column
/// family); used by the HTTP adapter for requests that carry the header.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "events/error.hpp"

namespace atrium::ports {

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
