#pragma once
/// Port: online backups of the running server's store (issue 20, point 2). Implemented
/// by `rocksdb_adapter::backups` (adapters/rocksdb/backups.hpp) with RocksDB's
/// BackupEngine; served by `POST/GET /v1/admin/backups` (docs/api.md) and restored
/// offline by `atriumd restore` (docs/operations.md).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "events/error.hpp"

namespace atrium::ports {

/// One backup, as listed and as answered when taken.
struct backup_info {
  std::uint32_t id = 0;              ///< the backup engine's id, 1, 2, … (never reused)
  std::uint64_t position = 0;        ///< every event at or before this position is in the backup
  std::string chain_head;            ///< the hash (hex SHA-256) of the event at `position`; "" when position is 0
  std::uint64_t size_bytes = 0;      ///< bytes of the files this backup uses (files shared with others counted)
  std::uint32_t files = 0;           ///< number of those files
  std::int64_t taken_at = 0;         ///< when it was taken, Unix seconds (UTC)
  bool master_key_included = false;  ///< the vault's master key was copied beside it
};

/// Takes and lists backups. Thread-safe.
class backup_service {
 public:
  virtual ~backup_service() = default;
  /// Starts a backup of the store as it is now, on a thread of its own (the caller's
  /// thread is not blocked), and calls `done` once from that thread with its info.
  /// Errors: `failed_precondition` while another backup runs; `unavailable` when the
  /// store cannot be read or the backup directory cannot be written (full disk,
  /// permissions), with RocksDB's reason in the message.
  virtual void take(std::function<void(result<backup_info>)> done) = 0;
  /// Every backup in the backup directory, oldest first; while a backup is being taken,
  /// the ones listed when it began (it never waits for the copy). `unavailable` when the
  /// directory cannot be read.
  [[nodiscard]] virtual result<std::vector<backup_info>> list() const = 0;
};

}  // namespace atrium::ports
