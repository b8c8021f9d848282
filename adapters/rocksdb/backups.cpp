#include "adapters/rocksdb/backups.hpp"

#include <chrono>
#include <fstream>
#include <mutex>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/utilities/backup_engine.h>
#include <spdlog/spdlog.h>

namespace atrium::rocksdb_adapter {
namespace {

namespace fs = std::filesystem;

error engine_error(const rocksdb::Status& s, const std::string& what) {
  return error{s.IsCorruption() ? errc::internal : errc::unavailable, what + ": " + s.ToString()};
}

/// Opens the engine over `dir`/engine (creating it).
result<std::unique_ptr<rocksdb::BackupEngine>> open_engine(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);  // the engine makes its own directory, not its parents
  if (ec) return fail(errc::unavailable, "backup directory " + dir.string() + ": " + ec.message());
  rocksdb::BackupEngineOptions options((dir / "engine").string());
  options.max_background_operations = 1;
  rocksdb::BackupEngine* raw = nullptr;
  if (auto s = rocksdb::BackupEngine::Open(options, rocksdb::Env::Default(), &raw); !s.ok()) {
    return std::unexpected(engine_error(s, "backup directory " + dir.string()));
  }
  return std::unique_ptr<rocksdb::BackupEngine>(raw);
}

/// The key file of backup `id` under `dir`.
fs::path key_path(const fs::path& dir, std::uint32_t id) { return dir / "master-keys" / std::to_string(id); }

/// A backup as listed: the engine's figures plus what `take` stored as its metadata
/// (`{"position":P,"chain_head":H}`; a backup without it lists position 0).
ports::backup_info to_info(const rocksdb::BackupInfo& b, const fs::path& dir) {
  ports::backup_info info;
  info.id = b.backup_id;
  info.size_bytes = b.size;
  info.files = b.number_files;
  info.taken_at = b.timestamp;
  auto meta = nlohmann::json::parse(b.app_metadata, nullptr, false);
  if (meta.is_object()) {
    info.position = meta.value("position", std::uint64_t{0});
    info.chain_head = meta.value("chain_head", std::string());
  }
  std::error_code ec;
  info.master_key_included = fs::is_regular_file(key_path(dir, b.backup_id), ec);
  return info;
}

/// Copies `from` to `to` with mode 0600, replacing it; creates `to`'s directory (mode
/// 0700 when `private_dir`).
result<void> copy_secret(const fs::path& from, const fs::path& to, bool private_dir) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (!ec && private_dir) fs::permissions(to.parent_path(), fs::perms::owner_all, fs::perm_options::replace, ec);
  if (!ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, ec);
  if (ec) return fail(errc::unavailable, "master key not copied to " + to.string() + ": " + ec.message());
  return {};
}

}  // namespace

struct backups::impl {
  database& db;
  const ports::event_store& events;
  fs::path dir;
  std::optional<fs::path> master_key;
  // Two locks, so that no caller waits for a backup's copy: `engine_mu` is held by the
  // backup thread for the whole copy (the engine is not thread-safe); `state_mu` only for
  // a moment, by anyone.
  mutable std::mutex engine_mu;
  mutable std::unique_ptr<rocksdb::BackupEngine> engine;
  mutable std::mutex state_mu;
  bool running = false;
  std::thread worker;  // the last backup's thread
  /// The backups as last read from the engine (nullopt: not read yet); served by `list`
  /// while a backup runs.
  mutable std::optional<std::vector<ports::backup_info>> listed;

  impl(database& d, const ports::event_store& e, fs::path p, std::optional<fs::path> k)
      : db(d), events(e), dir(std::move(p)), master_key(std::move(k)) {}

  /// The engine, opened on first use (engine_mu held).
  result<rocksdb::BackupEngine*> engine_locked() const {
    if (!engine) {
      auto opened = open_engine(dir);
      if (!opened) return std::unexpected(opened.error());
      engine = std::move(*opened);
    }
    return engine.get();
  }

  /// Reads every backup from the engine into `listed` (engine_mu held).
  std::vector<ports::backup_info> read_list(rocksdb::BackupEngine& e) const {
    std::vector<rocksdb::BackupInfo> all;
    e.GetBackupInfo(&all);
    std::vector<ports::backup_info> out;
    for (const auto& b : all) out.push_back(to_info(b, dir));
    std::lock_guard lock(state_mu);
    listed = out;
    return out;
  }

  /// The backup itself (on the worker thread; `running` is set).
  result<ports::backup_info> run() {
    std::lock_guard lock(engine_mu);
    auto engine = engine_locked();
    if (!engine) return std::unexpected(engine.error());
    (void)read_list(**engine);  // `list` serves these while the copy runs
    // The position and chain head first: everything up to them is synced, so the copy
    // that follows holds it.
    const auto position = events.head_position();
    std::string chain_head;
    if (position > 0) {
      auto last = events.read_all(position - 1, 1);
      if (!last) return std::unexpected(last.error());
      if (last->empty()) return fail(errc::internal, "the event at the head position cannot be read");
      chain_head = last->front().hash;
    }
    const auto metadata = nlohmann::json{{"position", position}, {"chain_head", chain_head}}.dump();
    rocksdb::BackupID id = 0;
    {
      auto use = db.use();  // no reopen while the engine reads the files
      if (!use) return std::unexpected(use.error());
      rocksdb::CreateBackupOptions options;
      options.flush_before_backup = false;  // the WAL is copied: all families at one moment
      if (auto s = (*engine)->CreateNewBackupWithMetadata(options, &db.handle(), metadata, &id); !s.ok()) {
        return std::unexpected(engine_error(s, "backup"));
      }
    }
    if (master_key) {
      if (auto ok = copy_secret(*master_key, key_path(dir, id), true); !ok) {
        // A backup that was asked to hold the key and does not is no backup: drop it.
        (void)(*engine)->DeleteBackup(id);
        (void)read_list(**engine);
        return std::unexpected(ok.error());
      }
    }
    for (auto& b : read_list(**engine)) {
      if (b.id == id) return b;
    }
    return fail(errc::internal, "backup " + std::to_string(id) + " is not listed by the engine");
  }
};

backups::backups(database& db, const ports::event_store& events, std::filesystem::path dir,
                 std::optional<std::filesystem::path> master_key)
    : impl_(std::make_unique<impl>(db, events, std::move(dir), std::move(master_key))) {}

backups::~backups() {
  std::thread last;
  {
    std::lock_guard lock(impl_->state_mu);
    last = std::move(impl_->worker);
  }
  if (last.joinable()) last.join();
}

void backups::take(std::function<void(result<ports::backup_info>)> done) {
  auto* state = impl_.get();
  std::thread previous;
  {
    // Checked, marked and started under one lock: two callers cannot both start one, and
    // `worker` is always the newest thread.
    std::lock_guard lock(state->state_mu);
    if (state->running) return done(fail(errc::failed_precondition, "a backup is being taken; try again when it ends"));
    state->running = true;
    previous = std::move(state->worker);
    state->worker = std::thread([state, done = std::move(done)] {
      result<ports::backup_info> out = fail(errc::internal, "backup not taken");
      const auto started = std::chrono::steady_clock::now();
      try {
        out = state->run();
      } catch (const std::exception& ex) {
        out = fail(errc::internal, std::string("backup: ") + ex.what());
      }
      {
        std::lock_guard lock(state->state_mu);
        state->running = false;
      }
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
      if (out) {
        spdlog::info("backup id={} position={} bytes={} files={} ms={}", out->id, out->position, out->size_bytes,
                     out->files, ms);
      } else {
        spdlog::error("backup failed after ms={}: {}", ms, out.error().message);
      }
      done(std::move(out));
    });
  }
  // The previous backup ended (`running` was clear): at most its `done` is still running.
  if (previous.joinable()) previous.join();
}

result<std::vector<ports::backup_info>> backups::list() const {
  std::unique_lock engine_lock(impl_->engine_mu, std::try_to_lock);
  if (!engine_lock.owns_lock()) {
    // A backup is being copied: the list as read when it began (it is not in it yet).
    std::lock_guard lock(impl_->state_mu);
    return impl_->listed.value_or(std::vector<ports::backup_info>{});
  }
  std::error_code ec;
  if (!impl_->engine && !fs::exists(impl_->dir / "engine", ec)) return std::vector<ports::backup_info>{};
  auto engine = impl_->engine_locked();
  if (!engine) return std::unexpected(engine.error());
  return impl_->read_list(**engine);
}

result<restore_report> restore(const std::filesystem::path& from, const std::filesystem::path& data_dir,
                               std::optional<std::uint32_t> id) {
  std::error_code ec;
  const auto target = data_dir / "rocksdb";
  const auto key_target = data_dir / "master.key";
  if (fs::exists(target, ec) && !fs::is_empty(target, ec)) {
    return fail(errc::failed_precondition, target.string() + " already holds a store: restore into a new data dir");
  }
  if (fs::exists(key_target, ec)) {
    return fail(errc::failed_precondition, key_target.string() + " already exists: restore into a new data dir");
  }
  if (!fs::is_directory(from / "engine" / "meta", ec)) {
    return fail(errc::not_found, "no backups in " + from.string() + " (expected " + (from / "engine").string() + ")");
  }
  rocksdb::BackupEngineOptions options((from / "engine").string());
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  if (auto s = rocksdb::BackupEngineReadOnly::Open(options, rocksdb::Env::Default(), &raw); !s.ok()) {
    return std::unexpected(engine_error(s, "backup directory " + from.string()));
  }
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> all;
  engine->GetBackupInfo(&all);
  const rocksdb::BackupInfo* chosen = nullptr;
  for (const auto& b : all) {
    if (id ? b.backup_id == *id : (chosen == nullptr || b.backup_id > chosen->backup_id)) chosen = &b;
  }
  if (chosen == nullptr) {
    return fail(errc::not_found,
                id ? "no backup " + std::to_string(*id) + " in " + from.string() : "no backups in " + from.string());
  }
  restore_report report{to_info(*chosen, from), false};
  fs::create_directories(target, ec);
  if (ec) return fail(errc::unavailable, "cannot create " + target.string() + ": " + ec.message());
  if (auto s =
          engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), chosen->backup_id, target.string(), target.string());
      !s.ok()) {
    return std::unexpected(engine_error(s, "restore of backup " + std::to_string(chosen->backup_id)));
  }
  if (report.backup.master_key_included) {
    if (auto ok = copy_secret(key_path(from, chosen->backup_id), key_target, false); !ok) {
      return std::unexpected(ok.error());
    }
    report.master_key_restored = true;
  }
  return report;
}

}  // namespace atrium::rocksdb_adapter
