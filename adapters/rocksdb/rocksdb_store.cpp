#include "adapters/rocksdb/rocksdb_store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/listener.h>

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

namespace atrium::rocksdb_adapter {
namespace {

constexpr const char* k_events = "events";
constexpr const char* k_streams = "streams";
constexpr const char* k_heads = "stream_heads";
constexpr const char* k_event_ids = "event_ids";
constexpr const char* k_snapshots = "snapshots";
constexpr const char* k_checkpoints = "checkpoints";
constexpr const char* k_tokens = "tokens";
constexpr const char* k_idempotency = "idempotency";
constexpr const char* k_vault = "vault";

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

std::uint64_t read_be64(std::string_view s, std::size_t offset = 0) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[offset + i]);
  return v;
}

std::string stream_key(std::string_view stream, std::uint64_t version) {
  std::string k(stream);
  k.push_back('\0');
  k += be64(version);
  return k;
}

std::string row_key(std::string_view table, std::string_view key) {
  std::string k(table);
  k.push_back('\0');
  k.append(key);
  return k;
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

error storage_error(const rocksdb::Status& s, std::string_view what) {
  return error{errc::unavailable, std::string(what) + ": " + s.ToString(), nlohmann::json::object()};
}

/// RocksDB's own log, forwarded to spdlog (warnings and errors only). RocksDB would
/// otherwise write it to DIR/LOG on the same disk as the data: when that disk fills, the
/// LOG file's writer fails, and the next line RocksDB logs about the failure trips the
/// assertion `sync_without_flush_called_` in WritableFileWriter (Debian's librocksdb
/// keeps assertions) and aborts the process. A logger that never touches the disk
/// removes that abort.
class spdlog_logger final : public rocksdb::Logger {
 public:
  spdlog_logger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    const int n = std::vsnprintf(line, sizeof line, format, ap);
    if (n <= 0) return;
    std::string_view text(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    // Opening a database that does not exist yet reports its missing directory as an
    // error; it is the normal first start.
    if (text.find("Error when reading") != std::string_view::npos && text.find("NotFound") != std::string_view::npos) {
      spdlog::debug("rocksdb: {}", text);
      return;
    }
    switch (level) {
      case rocksdb::InfoLogLevel::WARN_LEVEL:
        spdlog::warn("rocksdb: {}", text);
        break;
      case rocksdb::InfoLogLevel::FATAL_LEVEL:
        spdlog::critical("rocksdb: {}", text);
        break;
      default:
        spdlog::error("rocksdb: {}", text);
        break;
    }
  }
};

/// Bytes free for unprivileged writers on the file system holding `dir`, or nullopt.
std::optional<std::uint64_t> free_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

/// Size of the file system holding `dir`, or nullopt.
std::optional<std::uint64_t> disk_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize;
}

/// `n` bytes for people: 812 B, 3.4 MiB.
std::string human_bytes(std::uint64_t n) {
  if (n < 1024) return std::to_string(n) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

/// Lowercase hex of bytes.
std::string to_hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 0x0F];
  }
  return out;
}

/// SHA-256 (FIPS 180-4, via OpenSSL EVP) over the 32 raw bytes of `previous_hex` followed
/// by `canonical`; lowercase hex. A malformed previous hash hashes as given (and so
/// breaks the chain visibly).
std::string chain_hash(std::string_view previous_hex, std::string_view canonical) {
  unsigned char prev[32] = {};
  for (std::size_t i = 0; i < 32 && 2 * i + 1 < previous_hex.size(); ++i) {
    auto nibble = [](char c) -> unsigned char {
      if (c >= '0' && c <= '9') return static_cast<unsigned char>(c - '0');
      if (c >= 'a' && c <= 'f') return static_cast<unsigned char>(c - 'a' + 10);
      return 0;
    };
    prev[i] = static_cast<unsigned char>(nibble(previous_hex[2 * i]) << 4 | nibble(previous_hex[2 * i + 1]));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, prev, sizeof prev);
  EVP_DigestUpdate(ctx, canonical.data(), canonical.size());
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  return to_hex(digest, len);
}

}  // namespace

struct rocksdb_store::impl {
  /// The JSON text of an event's fields that do not depend on its place in the log,
  /// prepared on the caller's thread so the commit thread only concatenates.
  struct prepared_event {
    std::string head;      ///< `{"actor":…,"causation_id":…,"correlation_id":…,"data":…,`
    std::string rest;      ///< `,"schema":…,"stream":…` (between position and time)
    std::string type;      ///< `,"type":…`
    std::string metadata;  ///< `,"metadata":…` (between id and position), or "" when empty
    std::string id;        ///< the client's event id as a JSON string, or "" (a UUIDv7 is assigned)
  };
  /// An append waiting for the commit thread.
  struct pending {
    std::vector<ports::stream_append> appends;
    ports::append_callback done;
    std::vector<std::vector<prepared_event>> prepared;  // per append, per event
    [[nodiscard]] std::size_t event_count() const {
      std::size_t n = 0;
      for (const auto& a : appends) n += a.events.size();
      return n;
    }
  };
  /// What the appends staged so far in a group have changed, not yet written.
  struct group_state {
    std::uint64_t next_position;
    std::string last_hash;
    std::unordered_map<std::string, std::uint64_t> heads;  // stream → version
    std::unordered_map<std::string, envelope> ids;         // event id → staged event
  };

  store_options options;
  std::string dir;
  std::uint64_t reserve = 0;  // free bytes a write must leave (0: no check)
  rocksdb::Options db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  // `db`, `handles` and `cf` change only when the store reopens after a write failure:
  // every use holds `db_mu` shared (public entry points take it), the reopen exclusive.
  mutable std::shared_mutex db_mu;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> cf;

  // Why writes fail now (a RocksDB write or background error), until the commit thread
  // has reopened the database. Guarded by fault_mu.
  mutable std::mutex fault_mu;
  std::optional<error> fault;
  std::uint64_t recoveries = 0;                   // reopens done (guarded by fault_mu)
  mutable std::mutex slots_mu;                    // guards `slots`
  std::map<std::string, int, std::less<>> slots;  // projection → active slot (absent: 0)

  /// The column family serving reads of `projection`: its active slot's, or the named
  /// slot's when `projection` is a slot name (`<name>~1`).
  rocksdb::ColumnFamilyHandle* read_family(std::string_view projection) const {
    if (projection.find('~') != std::string_view::npos) return family("proj_" + storage_key(projection));
    int slot = 0;
    {
      std::lock_guard lock(slots_mu);
      if (auto it = slots.find(projection); it != slots.end()) slot = it->second;
    }
    return family("proj_" + storage_key(ports::slot_name(projection, slot)));
  }

  /// A slot's key in the families and in `checkpoints`: slot 0 keeps the projection's
  /// own name (`proj_<name>`, checkpoint `<name>`), as before slots existed.
  static std::string storage_key(std::string_view slot_or_name) {
    std::string s(slot_or_name);
    if (s.ends_with("~0")) s.resize(s.size() - 2);
    return s;
  }
  // Owned by the commit thread after open():
  std::uint64_t next_position = 1;
  std::string last_hash{genesis_hash};
  // Last version of recently appended streams, so that expected-version checks need no
  // RocksDB read; cleared when it reaches `k_head_cache_limit` entries.
  std::unordered_map<std::string, std::uint64_t> head_cache;
  static constexpr std::size_t k_head_cache_limit = 1 << 17;
  std::atomic<std::uint64_t> head{0};
  std::atomic<std::uint64_t> commits{0};

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<pending> queue;  // guarded by queue_mu
  bool stopping = false;      // guarded by queue_mu
  std::thread committer;
  std::mutex idempotency_mu;  // makes claim() a check-and-set

  void commit_loop();
  void commit_group(std::vector<pending>& group);
  result<std::vector<envelope>> stage(pending& request, const std::string& time, group_state& g,
                                      rocksdb::WriteBatch& batch);

  /// Opens `db` (and `handles`, `cf`) from `dir`, `db_options` and `descriptors`, and
  /// reads the log's head and last hash. Needs `db_mu` exclusive (or no other user).
  result<void> open_db();
  /// Destroys the handles and closes `db`. Needs `db_mu` exclusive.
  void close_db();
  /// On the commit thread, while a fault is set: once the disk has room again, closes
  /// and reopens the database (a clean reopen: RocksDB's `Resume()` would keep writing
  /// to a WAL file whose writer has failed when the memtables are empty, and abort).
  void try_recover();

  /// The current fault, if any.
  std::optional<error> current_fault() const {
    std::lock_guard lock(fault_mu);
    return fault;
  }
  /// Records that RocksDB failed a write (or a background flush or compaction): writes
  /// are refused until the commit thread has reopened the database.
  void set_fault(const error& e) {
    {
      std::lock_guard lock(fault_mu);
      if (fault) return;
      fault = error{errc::unavailable,
                    "the event store cannot write (" + e.message +
                        "); writes resume by themselves once the cause is gone (e.g. disk space is freed)",
                    nlohmann::json::object()};
    }
    spdlog::error("store write failure: {}; refusing writes until recovered", e.message);
    { std::lock_guard lock(queue_mu); }  // the commit thread is waiting or will see the fault
    queue_cv.notify_all();
  }
  /// `unavailable` when the disk holding the store has less than `need` bytes beyond the
  /// reserve: RocksDB never gets to fail a WAL write for lack of space.
  std::optional<error> space_check(std::uint64_t need) const {
    if (reserve == 0) return std::nullopt;
    auto free = free_bytes(dir);
    if (!free || *free >= need + reserve) return std::nullopt;
    return error{errc::unavailable,
                 "disk full: " + human_bytes(*free) + " free where the store keeps its data, " +
                     human_bytes(need + reserve) + " needed; writes resume by themselves once space is freed",
                 {{"free_bytes", *free}, {"reserve_bytes", reserve}}};
  }
  /// Every write goes through here (the caller holds `db_mu` shared): refused while a
  /// fault is set or the disk is nearly full; a RocksDB failure sets the fault.
  result<void> write(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch& batch, std::string_view what) {
    if (auto f = current_fault()) return std::unexpected(*f);
    if (!db) return fail(errc::unavailable, "the event store is reopening");
    if (auto full = space_check(batch.GetDataSize())) return std::unexpected(*full);
    if (auto st = db->Write(wo, &batch); !st.ok()) {
      auto err = storage_error(st, what);
      set_fault(err);
      return std::unexpected(current_fault().value_or(err));
    }
    return {};
  }
  /// Shared access to `db` for a public entry point; `unavailable` while it is closed.
  result<std::shared_lock<std::shared_mutex>> use() const {
    std::shared_lock lock(db_mu);
    if (!db) return fail(errc::unavailable, "the event store is reopening after a write failure");
    return lock;
  }

  ~impl() {
    if (committer.joinable()) {
      {
        std::lock_guard lock(queue_mu);
        stopping = true;
      }
      queue_cv.notify_all();
      committer.join();  // commits what was queued before it stops
    }
    close_db();
  }

  rocksdb::ColumnFamilyHandle* family(std::string_view name) const {
    auto it = cf.find(name);
    return it == cf.end() ? nullptr : it->second;
  }

  result<std::optional<std::string>> get_raw(rocksdb::ColumnFamilyHandle* h, std::string_view key) const {
    std::string value;
    auto s = db->Get(rocksdb::ReadOptions(), h, slice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>{};
    if (!s.ok()) return std::unexpected(storage_error(s, "read"));
    return std::optional<std::string>{std::move(value)};
  }

  result<envelope> event_at(std::uint64_t position) const {
    auto raw = get_raw(family(k_events), be64(position));
    if (!raw) return std::unexpected(raw.error());
    if (!*raw) return fail(errc::internal, "event index points at a missing position", {{"position", position}});
    return parse_envelope(**raw);
  }
};

rocksdb_store::rocksdb_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
rocksdb_store::~rocksdb_store() = default;

namespace {

/// Tells the store about RocksDB's background errors (a failed flush or compaction,
/// e.g. for lack of space), and turns RocksDB's own recovery off: the store recovers by
/// reopening (see `try_recover`), which also covers a failed WAL write.
class fault_listener final : public rocksdb::EventListener {
 public:
  explicit fault_listener(std::function<void(const rocksdb::Status&)> on_error) : on_error_(std::move(on_error)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* bg_error) override {
    if (bg_error != nullptr && !bg_error->ok()) on_error_(*bg_error);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    if (auto_recovery != nullptr) *auto_recovery = false;
  }

 private:
  std::function<void(const rocksdb::Status&)> on_error_;
};

}  // namespace

result<void> rocksdb_store::impl::open_db() {
  rocksdb::DB* raw = nullptr;
  handles.clear();
  auto s = rocksdb::DB::Open(db_options, dir, descriptors, &handles, &raw);
  if (!s.ok()) return std::unexpected(storage_error(s, "open " + dir));
  db.reset(raw);
  cf.clear();
  for (std::size_t i = 0; i < descriptors.size(); ++i) cf[descriptors[i].name] = handles[i];

  // The next position follows the last stored event.
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), family(k_events)));
  it->SeekToLast();
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "scan events"));
  next_position = 1;
  last_hash = std::string(genesis_hash);
  if (it->Valid()) {
    if (it->key().size() != 8) return fail(errc::internal, "corrupt key in events family");
    next_position = read_be64(it->key().ToStringView()) + 1;
    auto last = parse_envelope(it->value().ToStringView());
    if (!last) return fail(errc::internal, "corrupt last event: " + last.error().message);
    last_hash = last->hash.empty() ? std::string(genesis_hash) : last->hash;
  }
  head_cache.clear();
  head = next_position - 1;
  // Active slots of the projections (written by `activate`).
  {
    std::unique_ptr<rocksdb::Iterator> it_slots(db->NewIterator(rocksdb::ReadOptions(), family(k_checkpoints)));
    std::lock_guard lock(slots_mu);
    for (it_slots->Seek("slot/"); it_slots->Valid() && it_slots->key().starts_with("slot/"); it_slots->Next()) {
      slots[it_slots->key().ToString().substr(5)] = it_slots->value() == rocksdb::Slice("1") ? 1 : 0;
    }
  }
  return {};
}

void rocksdb_store::impl::close_db() {
  if (!db) return;
  for (auto* h : handles) {
    if (h != nullptr) (void)db->DestroyColumnFamilyHandle(h);
  }
  handles.clear();
  cf.clear();
  (void)db->Close();
  db.reset();
}

void rocksdb_store::impl::try_recover() {
  const auto f = current_fault();
  if (!f) return;
  // Wait for room before closing: closing flushes the memtables and opening writes a
  // new WAL, MANIFEST and OPTIONS file; while the disk stays full the database stays
  // open for reads.
  // Room means the reserve twice over plus what the memtables hold (the flush at open
  // writes them out), and at least 1 MiB.
  std::uint64_t need = 2 * reserve;
  {
    std::shared_lock lock(db_mu);
    std::uint64_t memtables = 0;
    if (db && db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &memtables)) need += memtables;
  }
  need = std::max<std::uint64_t>(need, 1u << 20);
  if (auto free = free_bytes(dir); free && *free < need) return;
  std::unique_lock lock(db_mu);
  close_db();
  if (auto ok = open_db(); !ok) {
    spdlog::error("store reopen failed: {}; trying again", ok.error().message);
    close_db();
    return;
  }
  std::uint64_t n = 0;
  {
    std::lock_guard flock(fault_mu);
    fault.reset();
    n = ++recoveries;
  }
  spdlog::info("store recovered: reopened dir={} head={} recoveries={}; writes resume", dir, next_position - 1, n);
}

result<std::unique_ptr<rocksdb_store>> rocksdb_store::open(const std::string& dir,
                                                           const std::vector<std::string>& projections,
                                                           store_options store_opts) {
  auto state = std::make_unique<impl>();
  state->options = store_opts;
  state->dir = dir;
  auto& options = state->db_options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  options.keep_log_file_num = 5;
  // One budget for the memtables of every column family (a WriteBufferManager): memory
  // stays bounded however many families and rows there are.
  options.db_write_buffer_size = store_opts.memtable_budget_bytes;
  // RocksDB's log goes to spdlog, not to DIR/LOG (see spdlog_logger), and its background
  // errors to the store, which recovers from them by reopening.
  options.info_log = std::make_shared<spdlog_logger>();
  options.listeners.push_back(std::make_shared<fault_listener>(
      [p = state.get()](const rocksdb::Status& st) { p->set_fault(storage_error(st, "background write")); }));

  rocksdb::ColumnFamilyOptions cf_options;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks live in the one shared cache, so their memory is bounded
  // too instead of growing with the data on disk.
  table.block_cache = rocksdb::NewLRUCache(store_opts.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::set<std::string> names{rocksdb::kDefaultColumnFamilyName,
                              k_events,
                              k_streams,
                              k_heads,
                              k_event_ids,
                              k_snapshots,
                              k_checkpoints,
                              k_tokens,
                              k_idempotency,
                              k_vault};
  for (const auto& p : projections) {
    names.insert("proj_" + impl::storage_key(ports::slot_name(p, 0)));
    names.insert("proj_" + impl::storage_key(ports::slot_name(p, 1)));
  }
  // Families created by other versions (e.g. a since-dropped projection) must be opened too.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) names.insert(existing.begin(), existing.end());
  for (const auto& n : names) state->descriptors.emplace_back(n, cf_options);

  if (auto ok = state->open_db(); !ok) return std::unexpected(ok.error());
  // Free space a write must leave: automatic by default, min(64 MiB, 2% of the disk),
  // so a small disk (or a test's tmpfs) is not refused outright.
  if (store_opts.reserve_free_bytes) {
    state->reserve = *store_opts.reserve_free_bytes;
  } else {
    const auto size = disk_bytes(dir).value_or(0);
    state->reserve = std::min<std::uint64_t>(64ull << 20, size / 50);
  }
  state->committer = std::thread([p = state.get()] { p->commit_loop(); });
  return std::unique_ptr<rocksdb_store>(new rocksdb_store(std::move(state)));
}

namespace {

/// A JSON string literal, escaped exactly as nlohmann::json::dump escapes it.
std::string json_quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

void rocksdb_store::append_async(std::vector<ports::stream_append> appends, ports::append_callback done) {
  auto& d = *impl_;
  // Serialize on the caller's thread what does not depend on the event's position: the
  // commit thread is the bottleneck of the whole write path.
  //
  // Text that is not valid UTF-8 (a stream id, an event field, a string anywhere in its
  // data or metadata) cannot be stored: JSON text is UTF-8 (RFC 8259 §8.1) and the hash
  // chain covers the exact bytes, so replacing the bad bytes would store something other
  // than what was decided. The append is answered `invalid_argument` and nothing of it
  // is written; nothing is thrown to the caller (an actor). Callers validate input at
  // the edge; this is the store's own guarantee.
  std::vector<std::vector<impl::prepared_event>> prepared(appends.size());
  try {
    for (std::size_t i = 0; i < appends.size(); ++i) {
      const auto stream = json_quoted(appends[i].stream);
      for (const auto& p : appends[i].events) {
        impl::prepared_event pe;
        pe.head = "{\"actor\":" + json_quoted(p.actor) + ",\"causation_id\":" + json_quoted(p.causation_id) +
                  ",\"correlation_id\":" + json_quoted(p.correlation_id) + ",\"data\":" + p.data.dump() + ",";
        pe.rest = ",\"schema\":" + std::to_string(p.schema) + ",\"stream\":" + stream;
        pe.type = ",\"type\":" + json_quoted(p.type);
        // Empty metadata is left out, as to_json(envelope) does (see canonical_bytes).
        if (!p.metadata.empty()) pe.metadata = ",\"metadata\":" + p.metadata.dump();
        if (!p.id.empty()) pe.id = json_quoted(p.id);
        prepared[i].push_back(std::move(pe));
      }
    }
  } catch (const nlohmann::json::exception& ex) {
    // what(): "[json.exception.type_error.316] invalid UTF-8 byte at index 63: 0xC3" —
    // positions and byte values only, never the text itself.
    return done(fail(errc::invalid_argument, std::string("event is not valid UTF-8 text: ") + ex.what()));
  } catch (const std::exception& ex) {
    return done(fail(errc::internal, std::string("event cannot be serialized: ") + ex.what()));
  }
  {
    std::lock_guard lock(d.queue_mu);
    if (!d.stopping) {
      d.queue.push_back(impl::pending{std::move(appends), std::move(done), std::move(prepared)});
      d.queue_cv.notify_one();
      return;
    }
  }
  done(fail(errc::unavailable, "event store is shutting down"));
}

void rocksdb_store::impl::commit_loop() {
  for (;;) {
    std::vector<pending> group;
    if (current_fault()) try_recover();
    {
      std::unique_lock lock(queue_mu);
      if (current_fault()) {
        // A store that cannot write looks again every `recovery_interval`, appends or not,
        // so it recovers (and /healthz turns healthy) by itself once the cause is gone.
        queue_cv.wait_for(lock, options.recovery_interval, [&] { return !queue.empty() || stopping; });
      } else {
        queue_cv.wait(lock, [&] { return !queue.empty() || stopping || current_fault().has_value(); });
      }
      if (queue.empty()) {
        if (stopping) return;  // stopping, and everything queued was committed
        continue;
      }
      std::size_t events = 0;
      while (!queue.empty() && (group.empty() || events + queue.front().event_count() <= options.max_batch_events)) {
        events += queue.front().event_count();
        group.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    try {
      commit_group(group);
    } catch (const std::exception& ex) {
      // Defensive: commit_group answers every append itself; an exception here (e.g.
      // bad_alloc) must not end the commit thread, which would end every later write.
      spdlog::error("store commit failed: {}", ex.what());
      for (auto& p : group) {
        if (!p.done) continue;
        try {
          p.done(fail(errc::unavailable, std::string("event store commit failed: ") + ex.what()));
        } catch (...) {
        }
      }
    }
  }
}

void rocksdb_store::impl::commit_group(std::vector<pending>& group) {
  std::shared_lock db_lock(db_mu);
  if (!db) {
    for (auto& p : group) {
      auto done = std::move(p.done);
      done(fail(errc::unavailable, "the event store is reopening after a write failure"));
    }
    return;
  }
  if (auto f = current_fault()) {
    // Refused at once, without staging: the store cannot write until it has recovered.
    for (auto& p : group) {
      auto done = std::move(p.done);
      done(std::unexpected(*f));
    }
    return;
  }
  rocksdb::WriteBatch batch;
  group_state g{next_position, last_hash, {}, {}};
  std::vector<result<std::vector<envelope>>> outcomes;
  outcomes.reserve(group.size());
  const std::string time = now_rfc3339();
  std::size_t taken = 0;
  for (; taken < group.size(); ++taken) {
    if (taken > 0 && batch.GetDataSize() >= options.max_batch_bytes) break;
    // Only an allocation failure can throw here; commit_loop then answers the whole
    // group with an error (nothing was written, the log state is unchanged).
    outcomes.push_back(stage(group[taken], time, g, batch));
  }
  // Appends that did not fit go back to the front of the queue, in order.
  if (taken < group.size()) {
    std::lock_guard lock(queue_mu);
    for (std::size_t i = group.size(); i-- > taken;) queue.push_front(std::move(group[i]));
    group.resize(taken);
  }

  if (batch.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (auto ok = write(wo, batch, "append"); !ok) {
      for (auto& o : outcomes) {
        if (o) o = std::unexpected(ok.error());
      }
    } else {
      next_position = g.next_position;
      last_hash = g.last_hash;
      if (head_cache.size() + g.heads.size() > k_head_cache_limit) head_cache.clear();
      for (auto& [stream, version] : g.heads) head_cache[stream] = version;
      head.store(next_position - 1, std::memory_order_release);
      commits.fetch_add(1, std::memory_order_relaxed);
    }
  }
  db_lock.unlock();
  for (std::size_t i = 0; i < group.size(); ++i) {
    try {
      auto done = std::move(group[i].done);
      done(std::move(outcomes[i]));
    } catch (const std::exception& ex) {
      spdlog::error("append callback threw: {}", ex.what());
    }
  }
}

result<std::vector<envelope>> rocksdb_store::impl::stage(pending& request, const std::string& time, group_state& g,
                                                         rocksdb::WriteBatch& batch) {
  auto& appends = request.appends;
  std::set<std::string_view> seen;
  std::set<std::string_view> ids;
  std::size_t count = 0;
  for (const auto& a : appends) {
    if (a.stream.empty()) return fail(errc::invalid_argument, "stream id is empty");
    if (!seen.insert(a.stream).second) {
      return fail(errc::invalid_argument, "stream named twice", {{"stream", a.stream}});
    }
    for (const auto& e : a.events) {
      if (!e.id.empty() && !ids.insert(e.id).second) {
        return fail(errc::invalid_argument, "event id named twice", {{"id", e.id}});
      }
    }
    count += a.events.size();
  }
  if (count == 0) return fail(errc::invalid_argument, "append has no events");

  // Idempotency: an append whose event ids are all stored already (or staged earlier in
  // this group) is answered with those events; a partial overlap is a client error.
  std::vector<envelope> stored;
  std::size_t with_id = 0;
  for (const auto& a : appends) {
    for (const auto& e : a.events) {
      if (e.id.empty()) continue;
      ++with_id;
      if (auto it = g.ids.find(e.id); it != g.ids.end()) {
        stored.push_back(it->second);
        continue;
      }
      auto pos = get_raw(family(k_event_ids), e.id);
      if (!pos) return std::unexpected(pos.error());
      if (*pos) {
        auto env = event_at(read_be64(**pos));
        if (!env) return std::unexpected(env.error());
        stored.push_back(std::move(*env));
      }
    }
  }
  if (!stored.empty()) {
    if (stored.size() == count && with_id == count) return stored;
    return fail(errc::already_exists, "some event ids of this append are stored already, others are not");
  }

  // Expected versions, against the heads as they will be after the earlier appends of
  // this group: checks stay exact inside a batch.
  std::vector<std::uint64_t> current(appends.size());
  for (std::size_t i = 0; i < appends.size(); ++i) {
    const auto& a = appends[i];
    if (auto it = g.heads.find(a.stream); it != g.heads.end()) {
      current[i] = it->second;
    } else if (auto cached = head_cache.find(a.stream); cached != head_cache.end()) {
      current[i] = cached->second;
    } else {
      auto h = get_raw(family(k_heads), a.stream);
      if (!h) return std::unexpected(h.error());
      current[i] = *h ? read_be64(**h) : 0;
    }
    if (!a.expected.matches(current[i])) {
      nlohmann::json expected = a.expected.k == ports::expected_version::kind::no_stream
                                    ? nlohmann::json("no_stream")
                                    : nlohmann::json(a.expected.value);
      return fail(errc::version_conflict, "stream " + a.stream + " is at version " + std::to_string(current[i]),
                  {{"stream", a.stream}, {"expected", expected}, {"current_version", current[i]}});
    }
  }

  std::vector<envelope> committed;
  committed.reserve(count);
  const auto time_field = ",\"time\":" + json_quoted(time);
  for (std::size_t i = 0; i < appends.size(); ++i) {
    auto& a = appends[i];
    std::uint64_t version = current[i];
    for (std::size_t k = 0; k < a.events.size(); ++k) {
      auto& p = a.events[k];
      const auto& pe = request.prepared[i][k];
      envelope e;
      e.position = g.next_position++;
      e.stream = a.stream;
      e.version = ++version;
      const bool client_id = !p.id.empty();
      e.id = client_id ? std::move(p.id) : new_uuid_v7();
      e.type = std::move(p.type);
      e.schema = p.schema;
      e.time = time;
      e.actor = std::move(p.actor);
      e.correlation_id = std::move(p.correlation_id);
      e.causation_id = std::move(p.causation_id);
      e.data = std::move(p.data);
      e.metadata = std::move(p.metadata);
      // The canonical bytes and the stored record, byte for byte what canonical_bytes()
      // and serialize_envelope() produce (sorted keys; `hash` sorts between data and id):
      // verify_chain() re-serializes every record and would flag any difference.
      const auto id_field = "\"id\":" + (client_id ? pe.id : "\"" + e.id + "\"");
      const auto tail = id_field + pe.metadata + ",\"position\":" + std::to_string(e.position) + pe.rest + time_field +
                        pe.type + ",\"version\":" + std::to_string(e.version) + "}";
      e.hash = chain_hash(g.last_hash, pe.head + tail);
      g.last_hash = e.hash;
      const auto pos_key = be64(e.position);
      batch.Put(family(k_events), pos_key, pe.head + "\"hash\":\"" + e.hash + "\"," + tail);
      batch.Put(family(k_streams), stream_key(e.stream, e.version), pos_key);
      batch.Put(family(k_event_ids), e.id, pos_key);
      if (client_id) g.ids.emplace(e.id, e);  // only client ids can repeat within a group
      committed.push_back(std::move(e));
    }
    if (!a.events.empty()) {
      batch.Put(family(k_heads), a.stream, be64(version) + be64(g.next_position - 1));
      g.heads[a.stream] = version;
    }
  }
  return committed;
}

result<std::vector<envelope>> rocksdb_store::read_stream(std::string_view stream, std::uint64_t from_version,
                                                         std::size_t limit) const {
  const auto& d = *impl_;
  auto lock = d.use();
  if (!lock) return std::unexpected(lock.error());
  std::vector<envelope> out;
  std::string prefix(stream);
  prefix.push_back('\0');
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(rocksdb::ReadOptions(), d.family(k_streams)));
  for (it->Seek(stream_key(stream, std::max<std::uint64_t>(from_version, 1)));
       it->Valid() && out.size() < limit && it->key().starts_with(prefix); it->Next()) {
    auto env = d.event_at(read_be64(it->value().ToStringView()));
    if (!env) return std::unexpected(env.error());
    out.push_back(std::move(*env));
  }
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "read stream"));
  return out;
}

result<std::vector<envelope>> rocksdb_store::read_all(std::uint64_t after, std::size_t limit) const {
  const auto& d = *impl_;
  std::vector<envelope> out;
  if (after == std::numeric_limits<std::uint64_t>::max()) return out;
  auto lock = d.use();
  if (!lock) return std::unexpected(lock.error());
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(rocksdb::ReadOptions(), d.family(k_events)));
  for (it->Seek(be64(after + 1)); it->Valid() && out.size() < limit; it->Next()) {
    auto env = parse_envelope(it->value().ToStringView());
    if (!env)
      return fail(errc::internal, "corrupt event at position " + std::to_string(read_be64(it->key().ToStringView())));
    out.push_back(std::move(*env));
  }
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "read log"));
  return out;
}

result<ports::chain_report> rocksdb_store::verify_chain() const {
  const auto& d = *impl_;
  auto lock = d.use();
  if (!lock) return std::unexpected(lock.error());
  ports::chain_report report;
  report.last_hash = std::string(genesis_hash);
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro, d.family(k_events)));
  auto broken = [&](std::uint64_t position, std::string why) {
    report.ok = false;
    report.broken_at = position;
    report.reason = std::move(why);
    return report;
  };
  std::uint64_t expected = 1;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expected) {
    const auto key = it->key().ToStringView();
    if (key.size() != 8) return broken(expected, "malformed key in the events family");
    const auto position = read_be64(key);
    if (position != expected) return broken(expected, "position " + std::to_string(expected) + " is missing");
    const auto bytes = it->value().ToStringView();
    auto env = parse_envelope(bytes);
    if (!env) return broken(position, "record does not parse: " + env.error().message);
    if (env->position != position) return broken(position, "record names another position");
    if (serialize_envelope(*env) != bytes) return broken(position, "record is not in canonical form (edited)");
    const auto want = chain_hash(report.last_hash, canonical_bytes(*env));
    if (env->hash != want) return broken(position, "hash mismatch: stored " + env->hash + ", computed " + want);
    report.last_hash = env->hash;
    report.count = position;
  }
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "verify"));
  return report;
}

result<void> rocksdb_store::save_snapshot(std::string_view stream, const ports::snapshot& s) {
  std::string bytes;
  try {
    bytes = nlohmann::json{{"version", s.version}, {"schema", s.schema}, {"state", s.state}}.dump();
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::invalid_argument, std::string("snapshot is not valid UTF-8 text: ") + ex.what());
  }
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(k_snapshots), slice(stream), bytes);
  return impl_->write(rocksdb::WriteOptions(), batch, "save snapshot");
}

result<std::optional<ports::snapshot>> rocksdb_store::load_snapshot(std::string_view stream) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto raw = impl_->get_raw(impl_->family(k_snapshots), stream);
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<ports::snapshot>{};
  try {
    const auto j = nlohmann::json::parse(**raw);
    return std::optional<ports::snapshot>{
        ports::snapshot{j.at("version").get<std::uint64_t>(), j.at("schema").get<int>(), j.at("state")}};
  } catch (const nlohmann::json::exception&) {
    return std::optional<ports::snapshot>{};  // unreadable: replay the stream instead
  }
}

result<std::uint64_t> rocksdb_store::stream_version(std::string_view stream) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto head = impl_->get_raw(impl_->family(k_heads), stream);
  if (!head) return std::unexpected(head.error());
  return *head ? read_be64(**head) : 0;
}

std::uint64_t rocksdb_store::commit_count() const { return impl_->commits.load(std::memory_order_relaxed); }

std::uint64_t rocksdb_store::head_position() const { return impl_->head.load(std::memory_order_acquire); }

std::optional<error> rocksdb_store::write_fault() const {
  if (auto f = impl_->current_fault()) return f;
  return impl_->space_check(0);
}

std::uint64_t rocksdb_store::recoveries() const {
  std::lock_guard lock(impl_->fault_mu);
  return impl_->recoveries;
}

result<std::optional<nlohmann::json>> rocksdb_store::get(std::string_view projection, std::string_view table,
                                                         std::string_view key) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = impl_->read_family(projection);
  if (h == nullptr) return fail(errc::not_found, "unknown projection " + std::string(projection));
  auto raw = impl_->get_raw(h, row_key(table, key));
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<nlohmann::json>{};
  try {
    return std::optional<nlohmann::json>{nlohmann::json::parse(**raw)};
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::internal, std::string("corrupt row: ") + ex.what());
  }
}

result<std::vector<ports::row>> rocksdb_store::scan(std::string_view projection, std::string_view table,
                                                    std::string_view prefix, std::string_view after, std::size_t limit,
                                                    bool reverse) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = impl_->read_family(projection);
  if (h == nullptr) return fail(errc::not_found, "unknown projection " + std::string(projection));
  const std::string full_prefix = row_key(table, prefix);
  const std::string table_prefix = row_key(table, "");
  std::vector<ports::row> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), h));
  if (!reverse) {
    if (after.empty()) {
      it->Seek(full_prefix);
    } else {
      const auto start = row_key(table, after);
      it->Seek(start);
      if (it->Valid() && it->key() == rocksdb::Slice(start)) it->Next();
    }
  } else {
    if (after.empty()) {
      // Seek past every key with this prefix: prefix followed by 0xFF bytes.
      it->SeekForPrev(full_prefix + std::string(64, '\xff'));
    } else {
      it->SeekForPrev(row_key(table, after));
      if (it->Valid() && it->key() == rocksdb::Slice(row_key(table, after))) it->Prev();
    }
  }
  for (; it->Valid() && out.size() < limit; reverse ? it->Prev() : it->Next()) {
    const auto k = it->key().ToStringView();
    if (!k.starts_with(full_prefix)) {
      if (!reverse && k > std::string_view(full_prefix)) break;
      if (reverse && k < std::string_view(full_prefix)) break;
      continue;
    }
    try {
      out.push_back(
          ports::row{std::string(k.substr(table_prefix.size())), nlohmann::json::parse(it->value().ToStringView())});
    } catch (const nlohmann::json::exception& ex) {
      return fail(errc::internal, std::string("corrupt row: ") + ex.what());
    }
  }
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "scan"));
  return out;
}

result<std::uint64_t> rocksdb_store::checkpoint(std::string_view projection) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto raw = impl_->get_raw(impl_->family(k_checkpoints), impl::storage_key(projection));
  if (!raw) return std::unexpected(raw.error());
  return *raw ? read_be64(**raw) : 0;
}

result<void> rocksdb_store::save_checkpoint(std::string_view name, std::uint64_t position) {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(k_checkpoints), slice(impl::storage_key(name)), be64(position));
  return impl_->write(rocksdb::WriteOptions(), batch, "save checkpoint");
}

result<void> rocksdb_store::commit(std::string_view projection, const std::vector<mutation>& mutations,
                                   std::uint64_t position) {
  const auto key = impl::storage_key(projection);
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = impl_->family("proj_" + key);
  if (h == nullptr) return fail(errc::not_found, "unknown projection " + std::string(projection));
  rocksdb::WriteBatch batch;
  for (const auto& m : mutations) {
    if (const auto* put = std::get_if<row_put>(&m)) {
      std::string value;
      try {
        value = put->value.dump();
      } catch (const nlohmann::json::exception& ex) {
        // A row is derived data (rebuildable from the log), so a string that is not
        // valid UTF-8 (e.g. cut mid-character by a projection) is stored with U+FFFD
        // in its place rather than stalling the projection at this position forever.
        spdlog::warn("projection={} table={} row not valid UTF-8 ({}); stored with replacement characters",
                     std::string(projection), put->table, ex.what());
        value = put->value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
      batch.Put(h, row_key(put->table, put->key), value);
    } else if (const auto* del = std::get_if<row_delete>(&m)) {
      batch.Delete(h, row_key(del->table, del->key));
    }
  }
  batch.Put(impl_->family(k_checkpoints), slice(key), be64(position));
  return impl_->write(rocksdb::WriteOptions(), batch, "commit projection");
}

result<void> rocksdb_store::reset(std::string_view projection) {
  const auto key = impl::storage_key(projection);
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* h = impl_->family("proj_" + key);
  if (h == nullptr) return fail(errc::not_found, "unknown projection " + std::string(projection));
  rocksdb::WriteBatch batch;
  // Row keys are arbitrary bytes, so no fixed key bounds them all: the range ends right
  // after the family's last key (its immediate successor, `last + '\0'`, is exclusive).
  // One range tombstone instead of a Delete per row keeps the batch small however big
  // the projection is; compaction reclaims the space later.
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), h));
  it->SeekToLast();
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "scan projection"));
  if (it->Valid()) {
    std::string end = it->key().ToString();
    end.push_back('\0');
    if (auto s = batch.DeleteRange(h, rocksdb::Slice(), end); !s.ok()) {
      return std::unexpected(storage_error(s, "reset projection"));
    }
  }
  if (auto s = batch.Delete(impl_->family(k_checkpoints), slice(key)); !s.ok()) {
    return std::unexpected(storage_error(s, "reset projection"));
  }
  return impl_->write(rocksdb::WriteOptions(), batch, "reset projection");
}

result<int> rocksdb_store::active_slot(std::string_view projection) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  if (impl_->family("proj_" + std::string(projection)) == nullptr) {
    return fail(errc::not_found, "unknown projection " + std::string(projection));
  }
  std::lock_guard slots_lock(impl_->slots_mu);
  auto it = impl_->slots.find(projection);
  return it == impl_->slots.end() ? 0 : it->second;
}

result<void> rocksdb_store::activate(std::string_view projection, int slot) {
  if (slot != 0 && slot != 1) return fail(errc::invalid_argument, "a projection slot is 0 or 1");
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  if (impl_->family("proj_" + impl::storage_key(ports::slot_name(projection, slot))) == nullptr) {
    return fail(errc::not_found, "unknown projection " + std::string(projection));
  }
  rocksdb::WriteOptions synced;
  synced.sync = true;
  const auto key = "slot/" + std::string(projection);
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(k_checkpoints), key, slot == 1 ? "1" : "0");
  if (auto ok = impl_->write(synced, batch, "activate projection slot"); !ok) return ok;
  std::lock_guard slots_lock(impl_->slots_mu);
  impl_->slots[std::string(projection)] = slot;
  return {};
}

result<void> rocksdb_store::put(std::string_view token_hash, const ports::session_record& s) {
  std::string bytes;
  try {
    bytes = nlohmann::json{{"user_id", s.user_id}, {"issued_at", s.issued_at}, {"expires_at", s.expires_at}}.dump();
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::invalid_argument, std::string("session is not valid UTF-8 text: ") + ex.what());
  }
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(k_tokens), slice(token_hash), bytes);
  return impl_->write(wo, batch, "store session");
}

result<std::optional<ports::session_record>> rocksdb_store::get(std::string_view token_hash) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  auto raw = impl_->get_raw(impl_->family(k_tokens), token_hash);
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<ports::session_record>{};
  try {
    const auto j = nlohmann::json::parse(**raw);
    return std::optional<ports::session_record>{ports::session_record{j.at("user_id").get<std::string>(),
                                                                      j.at("issued_at").get<std::int64_t>(),
                                                                      j.at("expires_at").get<std::int64_t>()}};
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::internal, std::string("corrupt session: ") + ex.what());
  }
}

result<void> rocksdb_store::erase(std::string_view token_hash) {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->family(k_tokens), slice(token_hash));
  return impl_->write(wo, batch, "delete session");
}

result<std::size_t> rocksdb_store::erase_user(std::string_view user_id, std::string_view except_token_hash) {
  // Sessions are keyed by token hash only: a user's sessions are found by one pass.
  rocksdb::WriteBatch batch;
  std::size_t erased = 0;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->family(k_tokens)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().ToStringView() == except_token_hash) continue;
    const auto j = nlohmann::json::parse(it->value().ToStringView(), nullptr, false);
    if (!j.is_object() || j.value("user_id", "") != user_id) continue;
    if (auto st = batch.Delete(impl_->family(k_tokens), it->key()); !st.ok()) {
      return std::unexpected(storage_error(st, "delete sessions"));
    }
    ++erased;
  }
  if (auto st = it->status(); !st.ok()) return std::unexpected(storage_error(st, "scan sessions"));
  if (erased == 0) return erased;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto st = impl_->db->Write(wo, &batch); !st.ok()) return std::unexpected(storage_error(st, "delete sessions"));
  return erased;
}

namespace {

nlohmann::json record_json(const ports::idempotency_record& r) {
  return {{"fingerprint", r.fingerprint},
          {"completed", r.completed},
          {"status", r.status},
          {"body", r.body},
          {"etag", r.etag}};
}

}  // namespace

result<std::pair<ports::idempotency_claim, ports::idempotency_record>> rocksdb_store::claim(
    std::string_view key, std::string_view fingerprint) {
  std::lock_guard lock(impl_->idempotency_mu);
  auto db_lock = impl_->use();
  if (!db_lock) return std::unexpected(db_lock.error());
  auto raw = impl_->get_raw(impl_->family(k_idempotency), key);
  if (!raw) return std::unexpected(raw.error());
  if (*raw) {
    ports::idempotency_record r;
    try {
      const auto j = nlohmann::json::parse(**raw);
      r = {j.at("fingerprint").get<std::string>(), j.at("completed").get<bool>(), j.at("status").get<unsigned>(),
           j.at("body").get<std::string>(), j.value("etag", "")};
    } catch (const nlohmann::json::exception& ex) {
      return fail(errc::internal, std::string("corrupt idempotency record: ") + ex.what());
    }
    if (r.fingerprint != fingerprint) return std::pair{ports::idempotency_claim::mismatch, r};
    return std::pair{r.completed ? ports::idempotency_claim::replay : ports::idempotency_claim::retry, r};
  }
  ports::idempotency_record fresh{std::string(fingerprint), false, 0, {}, {}};
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::string bytes;
  try {
    bytes = record_json(fresh).dump();
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::invalid_argument, std::string("idempotency record is not valid UTF-8 text: ") + ex.what());
  }
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(k_idempotency), slice(key), bytes);
  if (auto ok = impl_->write(wo, batch, "claim idempotency key"); !ok) return std::unexpected(ok.error());
  return std::pair{ports::idempotency_claim::claimed, fresh};
}

result<void> rocksdb_store::complete(std::string_view key, const ports::idempotency_record& record) {
  std::string bytes;
  try {
    bytes = record_json(record).dump();
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::invalid_argument, std::string("idempotency record is not valid UTF-8 text: ") + ex.what());
  }
  std::lock_guard lock(impl_->idempotency_mu);
  auto db_lock = impl_->use();
  if (!db_lock) return std::unexpected(db_lock.error());
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(k_idempotency), slice(key), bytes);
  return impl_->write(rocksdb::WriteOptions(), batch, "complete idempotency key");
}

result<void> rocksdb_store::put_sealed(std::string_view ref, std::string_view bytes) {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(k_vault), slice(ref), slice(bytes));
  return impl_->write(wo, batch, "store sealed secret");
}

result<std::optional<std::string>> rocksdb_store::get_sealed(std::string_view ref) const {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  return impl_->get_raw(impl_->family(k_vault), ref);
}

result<void> rocksdb_store::erase_sealed(std::string_view ref) {
  auto lock = impl_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->family(k_vault), slice(ref));
  return impl_->write(wo, batch, "delete sealed secret");
}

}  // namespace atrium::rocksdb_adapter
