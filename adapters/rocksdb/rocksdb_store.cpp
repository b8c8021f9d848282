#include "adapters/rocksdb/rocksdb_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/write_batch.h>

#include <limits>
#include <map>
#include <mutex>
#include <set>

namespace atrium::rocksdb_adapter {
namespace {

constexpr const char* k_events = "events";
constexpr const char* k_streams = "streams";
constexpr const char* k_heads = "stream_heads";
constexpr const char* k_event_ids = "event_ids";
constexpr const char* k_snapshots = "snapshots";
constexpr const char* k_checkpoints = "checkpoints";
constexpr const char* k_tokens = "tokens";

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

}  // namespace

struct rocksdb_store::impl {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> cf;
  mutable std::mutex append_mu;
  std::uint64_t next_position = 1;  // guarded by append_mu
  std::atomic<std::uint64_t> head{0};

  ~impl() {
    for (auto* h : handles) {
      if (h != nullptr) (void)db->DestroyColumnFamilyHandle(h);
    }
    if (db) (void)db->Close();
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

result<std::unique_ptr<rocksdb_store>> rocksdb_store::open(const std::string& dir,
                                                           const std::vector<std::string>& projections) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  options.keep_log_file_num = 5;

  rocksdb::ColumnFamilyOptions cf_options;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::set<std::string> names{rocksdb::kDefaultColumnFamilyName,
                              k_events,
                              k_streams,
                              k_heads,
                              k_event_ids,
                              k_snapshots,
                              k_checkpoints,
                              k_tokens};
  for (const auto& p : projections) names.insert("proj_" + p);
  // Families created by other versions (e.g. a since-dropped projection) must be opened too.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) names.insert(existing.begin(), existing.end());

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, cf_options);

  auto state = std::make_unique<impl>();
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(options, dir, descriptors, &state->handles, &raw);
  if (!s.ok()) return std::unexpected(storage_error(s, "open " + dir));
  state->db.reset(raw);
  for (std::size_t i = 0; i < descriptors.size(); ++i) state->cf[descriptors[i].name] = state->handles[i];

  // The next position follows the last stored event.
  std::unique_ptr<rocksdb::Iterator> it(state->db->NewIterator(rocksdb::ReadOptions(), state->family(k_events)));
  it->SeekToLast();
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "scan events"));
  if (it->Valid()) {
    if (it->key().size() != 8) return fail(errc::internal, "corrupt key in events family");
    state->next_position = read_be64(it->key().ToStringView()) + 1;
  }
  state->head = state->next_position - 1;
  return std::unique_ptr<rocksdb_store>(new rocksdb_store(std::move(state)));
}

result<std::vector<envelope>> rocksdb_store::append(std::vector<ports::stream_append> appends) {
  auto& d = *impl_;
  std::lock_guard lock(d.append_mu);

  std::set<std::string_view> seen;
  std::set<std::string_view> ids;
  std::size_t count = 0;
  for (const auto& a : appends) {
    if (a.stream.empty()) return fail(errc::invalid_argument, "stream id is empty");
    if (!seen.insert(a.stream).second)
      return fail(errc::invalid_argument, "stream named twice", {{"stream", a.stream}});
    for (const auto& e : a.events) {
      if (!e.id.empty() && !ids.insert(e.id).second) {
        return fail(errc::invalid_argument, "event id named twice", {{"id", e.id}});
      }
    }
    count += a.events.size();
  }
  if (count == 0) return fail(errc::invalid_argument, "append has no events");

  // Idempotency: an append whose event ids are all stored already is answered with the
  // stored events; a partial overlap is a client error.
  std::vector<envelope> stored;
  std::size_t with_id = 0;
  for (const auto& a : appends) {
    for (const auto& e : a.events) {
      if (e.id.empty()) continue;
      ++with_id;
      auto pos = d.get_raw(d.family(k_event_ids), e.id);
      if (!pos) return std::unexpected(pos.error());
      if (*pos) {
        auto env = d.event_at(read_be64(**pos));
        if (!env) return std::unexpected(env.error());
        stored.push_back(std::move(*env));
      }
    }
  }
  if (!stored.empty()) {
    if (stored.size() == count && with_id == count) return stored;
    return fail(errc::already_exists, "some event ids of this append are stored already, others are not");
  }

  rocksdb::WriteBatch batch;
  std::vector<envelope> committed;
  committed.reserve(count);
  const std::string time = now_rfc3339();
  std::uint64_t position = d.next_position;
  for (auto& a : appends) {
    auto head = d.get_raw(d.family(k_heads), a.stream);
    if (!head) return std::unexpected(head.error());
    const std::uint64_t current = *head ? read_be64(**head) : 0;
    if (!a.expected.matches(current)) {
      nlohmann::json expected = a.expected.k == ports::expected_version::kind::no_stream
                                    ? nlohmann::json("no_stream")
                                    : nlohmann::json(a.expected.value);
      return fail(errc::version_conflict, "stream " + a.stream + " is at version " + std::to_string(current),
                  {{"stream", a.stream}, {"expected", expected}, {"current_version", current}});
    }
    std::uint64_t version = current;
    for (auto& p : a.events) {
      envelope e;
      e.position = position++;
      e.stream = a.stream;
      e.version = ++version;
      e.id = p.id.empty() ? new_uuid_v7() : std::move(p.id);
      e.type = std::move(p.type);
      e.schema = p.schema;
      e.time = time;
      e.actor = std::move(p.actor);
      e.correlation_id = std::move(p.correlation_id);
      e.causation_id = std::move(p.causation_id);
      e.data = std::move(p.data);
      const auto pos_key = be64(e.position);
      batch.Put(d.family(k_events), pos_key, serialize_envelope(e));
      batch.Put(d.family(k_streams), stream_key(e.stream, e.version), pos_key);
      batch.Put(d.family(k_event_ids), e.id, pos_key);
      committed.push_back(std::move(e));
    }
    if (!a.events.empty()) batch.Put(d.family(k_heads), a.stream, be64(version) + be64(position - 1));
  }

  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto s = d.db->Write(wo, &batch); !s.ok()) return std::unexpected(storage_error(s, "append"));
  d.next_position = position;
  d.head.store(position - 1, std::memory_order_release);
  return committed;
}

result<std::vector<envelope>> rocksdb_store::read_stream(std::string_view stream, std::uint64_t from_version,
                                                         std::size_t limit) const {
  const auto& d = *impl_;
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

result<std::uint64_t> rocksdb_store::stream_version(std::string_view stream) const {
  auto head = impl_->get_raw(impl_->family(k_heads), stream);
  if (!head) return std::unexpected(head.error());
  return *head ? read_be64(**head) : 0;
}

std::uint64_t rocksdb_store::head_position() const { return impl_->head.load(std::memory_order_acquire); }

result<std::optional<nlohmann::json>> rocksdb_store::get(std::string_view projection, std::string_view table,
                                                         std::string_view key) const {
  auto* h = impl_->family("proj_" + std::string(projection));
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
  auto* h = impl_->family("proj_" + std::string(projection));
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
  auto raw = impl_->get_raw(impl_->family(k_checkpoints), projection);
  if (!raw) return std::unexpected(raw.error());
  return *raw ? read_be64(**raw) : 0;
}

result<void> rocksdb_store::commit(std::string_view projection, const std::vector<mutation>& mutations,
                                   std::uint64_t position) {
  auto* h = impl_->family("proj_" + std::string(projection));
  if (h == nullptr) return fail(errc::not_found, "unknown projection " + std::string(projection));
  rocksdb::WriteBatch batch;
  for (const auto& m : mutations) {
    if (const auto* put = std::get_if<row_put>(&m)) {
      batch.Put(h, row_key(put->table, put->key), put->value.dump());
    } else if (const auto* del = std::get_if<row_delete>(&m)) {
      batch.Delete(h, row_key(del->table, del->key));
    }
  }
  batch.Put(impl_->family(k_checkpoints), slice(projection), be64(position));
  if (auto s = impl_->db->Write(rocksdb::WriteOptions(), &batch); !s.ok()) {
    return std::unexpected(storage_error(s, "commit projection"));
  }
  return {};
}

result<void> rocksdb_store::put(std::string_view token_hash, const ports::session_record& s) {
  const nlohmann::json j{{"user_id", s.user_id}, {"issued_at", s.issued_at}, {"expires_at", s.expires_at}};
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto st = impl_->db->Put(wo, impl_->family(k_tokens), slice(token_hash), j.dump()); !st.ok()) {
    return std::unexpected(storage_error(st, "store session"));
  }
  return {};
}

result<std::optional<ports::session_record>> rocksdb_store::get(std::string_view token_hash) const {
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
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto st = impl_->db->Delete(wo, impl_->family(k_tokens), slice(token_hash)); !st.ok()) {
    return std::unexpected(storage_error(st, "delete session"));
  }
  return {};
}

}  // namespace atrium::rocksdb_adapter
