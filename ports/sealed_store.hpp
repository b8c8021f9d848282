#pragma once
/// Port: byte storage for sealed secrets (see ports/vault.hpp for the flow). Implemented
/// by adapters/rocksdb (the `vault` column family); used by adapters/vault.

#include <optional>
#include <string>
#include <string_view>

#include "events/error.hpp"

namespace atrium::ports {

/// Byte storage for sealed secrets (implemented by the RocksDB adapter, column family
/// `vault`). The bytes are already encrypted and authenticated; the store keeps them
/// as given.
class sealed_store {
 public:
  virtual ~sealed_store() = default;
  /// Stores `bytes` under `ref`, replacing any previous value; returns after the write
  /// is synced to disk. `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> put_sealed(std::string_view ref, std::string_view bytes) = 0;
  /// The bytes under `ref`; nullopt if absent. `unavailable` on I/O error.
  [[nodiscard]] virtual result<std::optional<std::string>> get_sealed(std::string_view ref) const = 0;
  /// Deletes `ref` (synced); absent is fine. `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> erase_sealed(std::string_view ref) = 0;
};

}  // namespace atrium::ports
