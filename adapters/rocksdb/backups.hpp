#pragma once
/// Online backups with RocksDB's BackupEngine (`ports::backup_service`, issue 20 point 2).
///
/// Layout of the backup directory BDIR (`--backup-dir`):
///
///   BDIR/engine/            RocksDB's BackupEngine: meta/<id>, private/<id>/ (MANIFEST,
///                           OPTIONS, WAL), shared_checksum/ (SST files, shared between
///                           backups: a backup copies only the files the last one lacks)
///   BDIR/master-keys/<id>   the vault's master key as it was, mode 0600 — only when the
///                           server runs with --include-master-key
///
/// Consistency: the engine copies the live SST files and the write-ahead log as of one
/// moment during `take` (RocksDB stops deleting files for the copy, so compactions do
/// not disturb it), with every column family together, so the copy is the store at that
/// moment: events, stream indexes, read models and their checkpoints, tokens and sealed
/// secrets. Every acknowledged event is synced to the log before its answer, so an event
/// acknowledged before `take` began is in the backup. The reported `position` is the
/// head read just before the copy: the backup holds at least every event up to it (it
/// may hold a few later ones, committed while the copy ran); `chain_head` is the hash of
/// the event at `position`, which a restored store's chain reproduces.
///
/// Restoring (`restore`) is offline: into a new, empty directory, then the caller opens
/// it as a store and verifies the chain (app/cli.cpp, `atriumd restore`).

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "adapters/rocksdb/database.hpp"
#include "ports/backup.hpp"
#include "ports/event_store.hpp"

namespace atrium::rocksdb_adapter {

/// Takes backups of `db` into `dir`. One backup at a time; each runs on a thread of its
/// own, joined by the destructor (which therefore waits for a running backup).
class backups final : public ports::backup_service {
 public:
  /// `db` is the store's database, `events` its log (head position and chain head; both
  /// must outlive this object),
  /// `dir` the backup directory (created on first use), `master_key` the key file to
  /// copy beside each backup (nullopt: never copied).
  backups(database& db, const ports::event_store& events, std::filesystem::path dir,
          std::optional<std::filesystem::path> master_key);
  ~backups() override;
  backups(const backups&) = delete;
  backups& operator=(const backups&) = delete;

  void take(std::function<void(result<ports::backup_info>)> done) override;
  [[nodiscard]] result<std::vector<ports::backup_info>> list() const override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// What `restore` did.
struct restore_report {
  ports::backup_info backup;         ///< the backup restored (as listed)
  bool master_key_restored = false;  ///< its master key was copied to the target's `master.key`
};

/// Restores backup `id` (nullopt: the newest) from the backup directory `from` into
/// `data_dir`/rocksdb, and its master key, if the backup has one, into
/// `data_dir`/master.key (mode 0600). `data_dir` must not hold a store or a master key
/// yet (`failed_precondition`); `not_found` when `from` has no such backup (or none);
/// `unavailable` when a file cannot be read or written (RocksDB's reason in the
/// message). The engine checks each file's checksum as it copies it (`internal` on a
/// mismatch).
[[nodiscard]] result<restore_report> restore(const std::filesystem::path& from, const std::filesystem::path& data_dir,
                                             std::optional<std::uint32_t> id);

}  // namespace atrium::rocksdb_adapter
