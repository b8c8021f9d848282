#include "adapters/rocksdb/event_log.hpp"

#include <limits>

#include "adapters/rocksdb/event_log_impl.hpp"
#include "events/chain.hpp"

namespace atrium::rocksdb_adapter {

event_log::event_log(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

result<std::unique_ptr<event_log>> event_log::open(std::shared_ptr<database> db) {
  auto state = std::make_unique<impl>(std::move(db));
  {
    auto lock = state->db->use();
    if (!lock) return std::unexpected(lock.error());
    if (auto ok = state->load_head(); !ok) return std::unexpected(ok.error());
  }
  state->db->add_observer(state.get());
  state->committer = std::thread([p = state.get()] { p->commit_loop(); });
  return std::unique_ptr<event_log>(new event_log(std::move(state)));
}

event_log::~event_log() {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.queue_mu);
    d.stopping = true;
  }
  d.queue_cv.notify_all();
  d.committer.join();  // commits what was queued before it stops
  d.db->remove_observer(&d);
}

result<void> event_log::impl::load_head() {
  // The next position follows the last stored event.
  std::unique_ptr<rocksdb::Iterator> it(db->handle().NewIterator(rocksdb::ReadOptions(), family(families::events)));
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
  return {};
}

result<std::uint64_t> event_log::impl::stored_version(std::string_view stream) const {
  // The greatest `streams` key at or below (stream, 0x00, 0xFF…): the stream's last
  // version when one is stored. Stream ids hold no NUL (the store refuses them), so
  // every key with the prefix `stream, 0x00` is this stream's.
  std::string prefix(stream);
  prefix.push_back('\0');
  std::unique_ptr<rocksdb::Iterator> it(db->handle().NewIterator(rocksdb::ReadOptions(), family(families::streams)));
  it->SeekForPrev(slice(prefix + std::string(8, '\xFF')));
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "read stream head"));
  if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) return 0;
  return read_be64(it->key().ToStringView(), prefix.size());
}

result<envelope> event_log::impl::event_at(std::uint64_t position) const {
  auto raw = db->get(family(families::events), be64(position));
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return fail(errc::internal, "event index points at a missing position", {{"position", position}});
  return parse_envelope(**raw);
}

result<std::vector<envelope>> event_log::read_stream(std::string_view stream, std::uint64_t from_version,
                                                     std::size_t limit) const {
  const auto& d = *impl_;
  auto lock = d.db->use();
  if (!lock) return std::unexpected(lock.error());
  std::vector<envelope> out;
  std::string prefix(stream);
  prefix.push_back('\0');
  std::unique_ptr<rocksdb::Iterator> it(
      d.db->handle().NewIterator(rocksdb::ReadOptions(), d.family(families::streams)));
  for (it->Seek(stream_key(stream, std::max<std::uint64_t>(from_version, 1)));
       it->Valid() && out.size() < limit && it->key().starts_with(prefix); it->Next()) {
    auto env = d.event_at(read_be64(it->value().ToStringView()));
    if (!env) return std::unexpected(env.error());
    out.push_back(std::move(*env));
  }
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "read stream"));
  return out;
}

result<std::vector<envelope>> event_log::read_all(std::uint64_t after, std::size_t limit) const {
  const auto& d = *impl_;
  std::vector<envelope> out;
  if (after == std::numeric_limits<std::uint64_t>::max()) return out;
  auto lock = d.db->use();
  if (!lock) return std::unexpected(lock.error());
  std::unique_ptr<rocksdb::Iterator> it(d.db->handle().NewIterator(rocksdb::ReadOptions(), d.family(families::events)));
  for (it->Seek(be64(after + 1)); it->Valid() && out.size() < limit; it->Next()) {
    auto env = parse_envelope(it->value().ToStringView());
    if (!env)
      return fail(errc::internal, "corrupt event at position " + std::to_string(read_be64(it->key().ToStringView())));
    out.push_back(std::move(*env));
  }
  if (!it->status().ok()) return std::unexpected(storage_error(it->status(), "read log"));
  return out;
}

result<ports::chain_report> event_log::verify_chain() const {
  const auto& d = *impl_;
  auto lock = d.db->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // one pass over the whole log must not evict what readers use
  std::unique_ptr<rocksdb::Iterator> it(d.db->handle().NewIterator(ro, d.family(families::events)));
  chain_verifier verifier;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto key = it->key().ToStringView();
    if (key.size() != 8) {
      verifier.fail("malformed key in the events family");
      break;
    }
    if (!verifier.check_record(read_be64(key), it->value().ToStringView())) break;
  }
  if (verifier.report().ok && !it->status().ok()) return std::unexpected(storage_error(it->status(), "verify"));
  return verifier.report();
}

result<void> event_log::save_snapshot(std::string_view stream, const ports::snapshot& s) {
  std::string bytes;
  try {
    bytes = nlohmann::json{{"version", s.version}, {"schema", s.schema}, {"state", s.state}}.dump();
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::invalid_argument, std::string("snapshot is not valid UTF-8 text: ") + ex.what());
  }
  auto lock = impl_->db->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteBatch batch;
  batch.Put(impl_->family(families::snapshots), slice(stream), bytes);
  return impl_->db->write(rocksdb::WriteOptions(), batch, "save snapshot");
}

result<std::optional<ports::snapshot>> event_log::load_snapshot(std::string_view stream) const {
  auto lock = impl_->db->use();
  if (!lock) return std::unexpected(lock.error());
  auto raw = impl_->db->get(impl_->family(families::snapshots), stream);
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

result<std::uint64_t> event_log::stream_version(std::string_view stream) const {
  auto lock = impl_->db->use();
  if (!lock) return std::unexpected(lock.error());
  return impl_->stored_version(stream);
}

std::uint64_t event_log::commit_count() const { return impl_->commits.load(std::memory_order_relaxed); }

void event_log::collect_metrics(std::vector<ports::metric_family>& out) const {
  using ports::metric_type;
  out.push_back(ports::family("atrium_commit_groups_total", metric_type::counter,
                              "Synced WriteBatches (fsyncs) of the event log that committed events.")
                    .add(static_cast<double>(impl_->groups_committed.value())));
  out.push_back(
      ports::family("atrium_committed_events_total", metric_type::counter, "Events committed to the log since start.")
          .add(static_cast<double>(impl_->events_committed.value())));
  out.push_back(ports::family("atrium_commit_group_events", metric_type::histogram,
                              "Events per synced WriteBatch (group commit size).")
                    .add(impl_->group_sizes.snapshot()));
}

std::uint64_t event_log::head_position() const { return impl_->head.load(std::memory_order_acquire); }

std::optional<error> event_log::write_fault() const { return impl_->db->write_fault(); }

}  // namespace atrium::rocksdb_adapter
