// The event log's write path: appends are prepared on the caller's thread, queued, and
// committed by one commit thread in synced WriteBatches (group commit; see event_log.hpp).

#include <spdlog/spdlog.h>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <optional>
#include <set>

#include "adapters/rocksdb/event_log.hpp"
#include "adapters/rocksdb/event_log_impl.hpp"
#include "events/chain.hpp"

namespace atrium::rocksdb_adapter {
namespace {

// The commit thread wakes the blocked callers of `event_log::append` with one futex
// call per group. std::atomic::wait is not used: libstdc++ 12 spins with sched_yield
// before it sleeps, and 256 spinning callers took the CPU the commit thread needs.

/// Sleeps until `word` is woken, unless it no longer holds `seen` (futex(2), FUTEX_WAIT).
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}

/// Wakes every thread sleeping in `futex_wait` on `word`.
void futex_wake_all(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

/// A JSON string literal, escaped exactly as nlohmann::json::dump escapes it.
std::string json_quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

void event_log::append_async(std::vector<ports::stream_append> appends, ports::append_callback done) {
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

result<std::vector<envelope>> event_log::append(std::vector<ports::stream_append> appends) {
  auto& d = *impl_;
  struct waiter {
    std::optional<result<std::vector<envelope>>> outcome;
    std::atomic<bool> done{false};
  } w;
  // Counted before the append is queued, so the commit thread that answers it sees the count.
  d.sync_waiters.fetch_add(1);
  append_async(std::move(appends), [&w](result<std::vector<envelope>> r) {
    w.outcome.emplace(std::move(r));
    w.done.store(true, std::memory_order_release);
  });
  // The commit thread sets `done` before it counts the group done and notifies: a
  // caller that sees an unchanged count sleeps until the notify; one that woke for
  // another group looks again.
  auto seen = d.groups_done.load(std::memory_order_acquire);
  while (!w.done.load(std::memory_order_acquire)) {
    futex_wait(d.groups_done, seen);
    seen = d.groups_done.load(std::memory_order_acquire);
  }
  d.sync_waiters.fetch_sub(1);
  return std::move(*w.outcome);
}

void event_log::impl::commit_loop() {
  for (;;) {
    std::vector<pending> group;
    if (db->fault()) {
      if (auto n = db->try_recover()) {
        spdlog::info("store recovered: reopened dir={} head={} recoveries={}; writes resume", db->dir(),
                     next_position - 1, *n);
      }
    }
    {
      std::unique_lock lock(queue_mu);
      if (db->fault()) {
        // A store that cannot write looks again every `recovery_interval`, appends or not,
        // so it recovers (and /healthz turns healthy) by itself once the cause is gone.
        queue_cv.wait_for(lock, db->options().recovery_interval, [&] { return !queue.empty() || stopping; });
      } else {
        queue_cv.wait(lock, [&] { return !queue.empty() || stopping || db->fault().has_value(); });
      }
      if (queue.empty()) {
        if (stopping) return;  // stopping, and everything queued was committed
        continue;
      }
      std::size_t events = 0;
      const auto max_events = db->options().max_batch_events;
      while (!queue.empty() && (group.empty() || events + queue.front().event_count() <= max_events)) {
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
    // Every append of the group is answered: wake its blocked callers (event_log::append).
    groups_done.fetch_add(1);
    if (sync_waiters.load() > 0) futex_wake_all(groups_done);
  }
}

void event_log::impl::commit_group(std::vector<pending>& group) {
  auto db_lock = db->use();
  if (!db_lock) {
    for (auto& p : group) {
      auto done = std::move(p.done);
      done(std::unexpected(db_lock.error()));
    }
    return;
  }
  if (auto f = db->fault()) {
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
    if (taken > 0 && batch.GetDataSize() >= db->options().max_batch_bytes) break;
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
    if (auto ok = db->write(wo, batch, "append"); !ok) {
      for (auto& o : outcomes) {
        if (o) o = std::unexpected(ok.error());
      }
    } else {
      const auto events = g.next_position - next_position;
      next_position = g.next_position;
      last_hash = g.last_hash;
      if (head_cache.size() + g.heads.size() > k_head_cache_limit) head_cache.clear();
      for (auto& [stream, version] : g.heads) head_cache[stream] = version;
      head.store(next_position - 1, std::memory_order_release);
      commits.fetch_add(1, std::memory_order_relaxed);
      // A group of only repeated event ids writes no event: it is no group commit of events.
      if (events > 0) {
        groups_committed.add();
        events_committed.add(events);
        group_sizes.observe(static_cast<double>(events));
      }
    }
  }
  db_lock->unlock();
  for (std::size_t i = 0; i < group.size(); ++i) {
    try {
      auto done = std::move(group[i].done);
      done(std::move(outcomes[i]));
    } catch (const std::exception& ex) {
      spdlog::error("append callback threw: {}", ex.what());
    }
  }
}

result<void> event_log::impl::check_request(const pending& request, const group_state& g,
                                            std::vector<envelope>& stored) const {
  const auto& appends = request.appends;
  std::set<std::string_view> seen;
  std::set<std::string_view> ids;
  std::size_t count = 0;
  for (const auto& a : appends) {
    if (a.stream.empty()) return fail(errc::invalid_argument, "stream id is empty");
    // A NUL would make the `streams` keys of two streams overlap (stream, 0x00, version).
    if (a.stream.find('\0') != std::string::npos) return fail(errc::invalid_argument, "stream id holds a NUL byte");
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
  std::size_t with_id = 0;
  for (const auto& a : appends) {
    for (const auto& e : a.events) {
      if (e.id.empty()) continue;
      ++with_id;
      if (auto it = g.ids.find(e.id); it != g.ids.end()) {
        stored.push_back(it->second);
        continue;
      }
      auto pos = db->get(family(families::event_ids), e.id);
      if (!pos) return std::unexpected(pos.error());
      if (*pos) {
        auto env = event_at(read_be64(**pos));
        if (!env) return std::unexpected(env.error());
        stored.push_back(std::move(*env));
      }
    }
  }
  if (!stored.empty() && (stored.size() != count || with_id != count)) {
    return fail(errc::already_exists, "some event ids of this append are stored already, others are not");
  }
  return {};
}

result<std::vector<std::uint64_t>> event_log::impl::check_versions(const pending& request, const group_state& g) const {
  // Against the heads as they will be after the earlier appends of this group: checks
  // stay exact inside a batch.
  const auto& appends = request.appends;
  std::vector<std::uint64_t> current(appends.size());
  for (std::size_t i = 0; i < appends.size(); ++i) {
    const auto& a = appends[i];
    if (auto it = g.heads.find(a.stream); it != g.heads.end()) {
      current[i] = it->second;
    } else if (auto cached = head_cache.find(a.stream); cached != head_cache.end()) {
      current[i] = cached->second;
    } else {
      auto stored = stored_version(a.stream);
      if (!stored) return std::unexpected(stored.error());
      current[i] = *stored;
    }
    if (!a.expected.matches(current[i])) {
      nlohmann::json expected = a.expected.k == ports::expected_version::kind::no_stream
                                    ? nlohmann::json("no_stream")
                                    : nlohmann::json(a.expected.value);
      return fail(errc::version_conflict, "stream " + a.stream + " is at version " + std::to_string(current[i]),
                  {{"stream", a.stream}, {"expected", expected}, {"current_version", current[i]}});
    }
  }
  return current;
}

result<std::vector<envelope>> event_log::impl::stage(pending& request, const std::string& time, group_state& g,
                                                     rocksdb::WriteBatch& batch) {
  std::vector<envelope> stored;
  if (auto ok = check_request(request, g, stored); !ok) return std::unexpected(ok.error());
  if (!stored.empty()) return stored;
  auto current = check_versions(request, g);
  if (!current) return std::unexpected(current.error());

  auto& appends = request.appends;
  std::vector<envelope> committed;
  const auto time_field = ",\"time\":" + json_quoted(time);
  for (std::size_t i = 0; i < appends.size(); ++i) {
    auto& a = appends[i];
    std::uint64_t version = (*current)[i];
    for (std::size_t k = 0; k < a.events.size(); ++k) {
      auto& p = a.events[k];
      const auto& pe = request.prepared[i][k];
      envelope e;
      e.position = g.next_position++;
      e.stream = a.stream;
      e.version = ++version;
      const bool client_id = !p.id.empty();
      e.id = client_id ? std::move(p.id) : ids.next();
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
      batch.Put(family(families::events), pos_key, pe.head + "\"hash\":\"" + e.hash + "\"," + tail);
      batch.Put(family(families::streams), stream_key(e.stream, e.version), pos_key);
      batch.Put(family(families::event_ids), e.id, pos_key);
      if (client_id) g.ids.emplace(e.id, e);  // only client ids can repeat within a group
      committed.push_back(std::move(e));
    }
    // No head record: the stream's last `streams` key is its head (stored_version).
    if (!a.events.empty()) g.heads[a.stream] = version;
  }
  return committed;
}

}  // namespace atrium::rocksdb_adapter
