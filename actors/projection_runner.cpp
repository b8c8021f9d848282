#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <future>
#include <map>
#include <unordered_map>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "projections/projections.hpp"

namespace atrium::actors {
namespace {

constexpr std::size_t k_page = 1000;

/// Reads the log in pages of `k_page`, decoding the next page on a second thread while
/// the caller applies the current one (a catch-up or rebuild spends about a third of its
/// time reading and decoding; on two cores the two halves overlap). `next(from)` gives
/// the page after `from`; the page read ahead is used when `from` is where it starts.
class page_reader {
 public:
  explicit page_reader(const ports::event_store& store) : store_(store) {}
  ~page_reader() {
    if (ahead_.valid()) ahead_.wait();
  }
  page_reader(const page_reader&) = delete;
  page_reader& operator=(const page_reader&) = delete;

  result<std::vector<envelope>> next(std::uint64_t from) {
    result<std::vector<envelope>> page;
    if (ahead_.valid() && ahead_from_ == from) {
      page = ahead_.get();
    } else {
      if (ahead_.valid()) ahead_.wait();
      ahead_ = {};
      page = store_.read_all(from, k_page);
    }
    // A full page means more may follow: start reading it now.
    if (page && page->size() == k_page) {
      ahead_from_ = page->back().position;
      ahead_ = std::async(std::launch::async, [this, at = ahead_from_] { return store_.read_all(at, k_page); });
    }
    return page;
  }

 private:
  const ports::event_store& store_;
  std::future<result<std::vector<envelope>>> ahead_;
  std::uint64_t ahead_from_ = 0;
};

using rebuild_tick_atom = caf::atom_constant<caf::atom("rbtick")>;

/// The runner's own interface: the public one plus its rebuild tick (sent to itself).
using runner_impl = runner_actor::extend<caf::reacts_to<rebuild_tick_atom>>;

struct runner_state {
  std::shared_ptr<projection_engine> engine;
  // Answered when their position is applied, or (owed_reply) when the runner stops.
  std::multimap<std::uint64_t, owed_reply<msg::projections_ready>> waiters;
  std::uint64_t start_head = 0;         // the log head when the server started
  bool ready = false;                   // caught up with start_head once
  std::string stalled;                  // the last error, until the next successful page
  std::shared_ptr<core_directory> dir;  // the hub is told how far the projections have applied the log
  std::uint64_t told_hub = 0;
  static inline const char* name = "projection-runner";
};

ports::projections_report make_report(const runner_state& st) {
  ports::projections_report r;
  r.head = st.engine->store().head_position();
  r.ready = st.ready;
  for (const auto& p : st.engine->checkpoints()) {
    ports::projection_info info{
        p.name, p.checkpoint,        r.head > p.checkpoint ? r.head - p.checkpoint : 0, 0, "live", {},
        p.slot, p.rebuild_checkpoint};
    if (info.lag_positions > 0) {
      if (auto next = st.engine->store().read_all(p.checkpoint, 1); next && !next->empty()) {
        info.lag_ms = milliseconds_since(next->front().time);
      }
      if (!st.ready) info.status = "catching_up";
    }
    if (p.rebuild_checkpoint) info.status = "rebuilding";
    if (!st.stalled.empty()) {
      info.status = "stalled";
      info.error = st.stalled;
    }
    r.projections.push_back(std::move(info));
  }
  return r;
}

}  // namespace

projection_engine::projection_engine(ports::event_store& store, ports::read_model_store& read_models,
                                     std::vector<std::unique_ptr<projection>> projections)
    : store_(store), read_models_(read_models), rebuilding_(projections.size()) {
  for (auto& p : projections) active_.emplace_back(std::move(p), 0, 0);
}

std::uint64_t projection_engine::applied() const {
  std::uint64_t low = UINT64_MAX;
  for (const auto& a : active_) low = std::min(low, a.checkpoint);
  return active_.empty() ? store_.head_position() : low;
}

result<void> projection_engine::load_checkpoints() {
  for (auto& a : active_) {
    auto slot = read_models_.active_slot(a.impl->name());
    if (!slot) return std::unexpected(slot.error());
    a.slot = *slot;
    auto cp = read_models_.checkpoint(a.storage());
    if (!cp) return std::unexpected(cp.error());
    a.checkpoint = *cp;
    a.position = *cp;
    a.pending.reset();
  }
  return {};
}

result<std::uint64_t> projection_engine::catch_up() {
  if (auto ok = load_checkpoints(); !ok) return std::unexpected(ok.error());
  return follow();
}

std::vector<projection_engine::progress> projection_engine::checkpoints() const {
  std::vector<progress> out;
  for (std::size_t i = 0; i < active_.size(); ++i) {
    progress p{std::string(active_[i].impl->name()), active_[i].checkpoint, active_[i].slot, std::nullopt};
    if (rebuilding_[i]) p.rebuild_checkpoint = rebuilding_[i]->position;
    out.push_back(std::move(p));
  }
  return out;
}

result<std::uint64_t> projection_engine::follow(std::size_t max_pages) {
  // Pages are applied in memory and committed together at the end (or when a slot holds
  // too many rows): one write per row per call, however many of its events it saw.
  auto reached = [this] {
    std::uint64_t low = UINT64_MAX;
    for (const auto& a : active_) low = std::min(low, a.position);
    return active_.empty() ? store_.head_position() : low;
  };
  auto commit_all = [this]() -> result<void> {
    for (auto& a : active_) {
      if (auto ok = commit(a); !ok) return ok;
    }
    return {};
  };
  page_reader reader(store_);
  for (std::size_t pages = 0; pages < max_pages; ++pages) {
    auto page = reader.next(reached());
    if (!page) {
      if (auto ok = commit_all(); !ok) return std::unexpected(ok.error());
      return std::unexpected(page.error());
    }
    if (page->empty()) break;
    for (auto& a : active_) {
      apply_to(a, *page);
      if (a.full()) {
        if (auto ok = commit(a); !ok) return std::unexpected(ok.error());
      }
    }
  }
  if (auto ok = commit_all(); !ok) return std::unexpected(ok.error());
  return applied();
}

result<void> projection_engine::start_rebuild(std::string_view name, std::unique_ptr<projection> fresh) {
  for (std::size_t i = 0; i < active_.size(); ++i) {
    if (active_[i].impl->name() != name) continue;
    if (rebuilding_[i]) return fail(errc::failed_precondition, "a rebuild of " + std::string(name) + " is running");
    slot_state next(std::move(fresh), 1 - active_[i].slot, 0);
    // Whatever an earlier, interrupted rebuild left in that slot goes first.
    if (auto ok = read_models_.reset(next.storage()); !ok) return std::unexpected(ok.error());
    spdlog::info("projection={} rebuild started in slot={}", name, next.slot);
    rebuilding_[i] = std::move(next);
    return {};
  }
  return fail(errc::not_found, "no such projection: " + std::string(name));
}

result<bool> projection_engine::rebuild_step(std::size_t max_pages) {
  bool running = false;
  for (std::size_t i = 0; i < active_.size(); ++i) {
    auto& r = rebuilding_[i];
    if (!r) continue;
    // The rebuilding slot is not served: its rows stay in memory across steps and are
    // committed only when the overlay is full or the rebuild has caught up.
    page_reader reader(store_);
    for (std::size_t pages = 0; pages < max_pages && r->position < active_[i].checkpoint; ++pages) {
      auto page = reader.next(r->position);
      if (!page) return std::unexpected(page.error());
      if (page->empty()) break;
      apply_to(*r, *page);
      if (r->full()) {
        if (auto ok = commit(*r); !ok) return std::unexpected(ok.error());
      }
    }
    if (r->position < active_[i].checkpoint) {
      running = true;
      continue;
    }
    if (auto ok = commit(*r); !ok) return std::unexpected(ok.error());
    // Caught up with the serving slot (nothing else runs in between: the engine is the
    // runner actor's): readers switch over, then the old slot is emptied.
    if (auto ok = read_models_.activate(r->impl->name(), r->slot); !ok) return std::unexpected(ok.error());
    const auto old = active_[i].storage();
    spdlog::info("projection={} rebuilt to position={} in slot={}; slot {} dropped", r->impl->name(), r->checkpoint,
                 r->slot, old);
    active_[i] = std::move(*r);
    r.reset();
    if (auto ok = read_models_.reset(old); !ok) spdlog::warn("old slot {} not emptied: {}", old, ok.error().message);
  }
  return running;
}

/// Rows as stored, overlaid with the applied but not yet committed mutations, so that a
/// projection sees its own earlier writes. Rows read from the store are kept too (a
/// projection reads the row it is about to replace, often several times per event), so
/// each row is read and parsed once per commit, and written once however many events
/// changed it.
class projection_engine::overlay final : public row_reader {
 public:
  overlay(const ports::read_model_store& base, std::string storage) : base_(base), storage_(std::move(storage)) {}

  const nlohmann::json* get(std::string_view table, std::string_view key) const override {
    key_.assign(table).push_back('\0');
    key_.append(key);
    auto it = rows_.find(key_);
    if (it == rows_.end()) {
      auto row = base_.get(storage_, table, key);
      if (!row) throw std::runtime_error("read model: " + row.error().message);
      it = rows_.emplace(key_, entry{std::move(*row), false}).first;
    }
    return it->second.value ? &*it->second.value : nullptr;
  }

  /// Takes one mutation of the projection's output.
  void record(mutation&& m) {
    if (auto* put = std::get_if<row_put>(&m)) {
      rows_.insert_or_assign(put->table + '\0' + put->key, entry{std::move(put->value), true});
    } else if (const auto* del = std::get_if<row_delete>(&m)) {
      rows_.insert_or_assign(del->table + '\0' + del->key, entry{std::nullopt, true});
    }
  }

  /// Rows held (read or changed).
  [[nodiscard]] std::size_t size() const { return rows_.size(); }

  /// The final state of every changed row as mutations (moved out); forgets every row.
  std::vector<mutation> take() {
    std::vector<mutation> out;
    for (auto& [k, e] : rows_) {
      if (!e.dirty) continue;
      const auto cut = k.find('\0');
      auto table = k.substr(0, cut);
      auto key = k.substr(cut + 1);
      if (e.value) {
        out.emplace_back(row_put{std::move(table), std::move(key), std::move(*e.value)});
      } else {
        out.emplace_back(row_delete{std::move(table), std::move(key)});
      }
    }
    rows_.clear();
    return out;
  }

 private:
  struct entry {
    std::optional<nlohmann::json> value;  // nullopt: absent (deleted, or never stored)
    bool dirty = false;                   // changed since the last commit
  };
  const ports::read_model_store& base_;
  std::string storage_;
  mutable std::string key_;  // lookup buffer
  mutable std::unordered_map<std::string, entry> rows_;
};

projection_engine::slot_state::slot_state(std::unique_ptr<projection> p, int s, std::uint64_t cp)
    : impl(std::move(p)), slot(s), checkpoint(cp), position(cp) {}
projection_engine::slot_state::slot_state(slot_state&&) noexcept = default;
projection_engine::slot_state& projection_engine::slot_state::operator=(slot_state&&) noexcept = default;
projection_engine::slot_state::~slot_state() = default;

void projection_engine::apply_to(slot_state& target, const std::vector<envelope>& batch) {
  const auto& p = *target.impl;
  if (!target.pending) target.pending = std::make_unique<overlay>(read_models_, target.storage());
  auto& rows = *target.pending;
  std::vector<mutation> out;
  for (const auto& e : batch) {
    if (e.position <= target.position) continue;
    if (e.position != target.position + 1) break;  // not contiguous: the next catch-up fills it in order
    out.clear();
    try {
      p.apply(e, rows, out);
    } catch (const std::exception& ex) {
      // A row that cannot be read back is a defect, not a reason to stop the server:
      // log it, drop this event's output, and move on.
      spdlog::error("projection={} position={} type={} apply failed: {}", p.name(), e.position, e.type, ex.what());
      out.clear();
    }
    for (auto& m : out) rows.record(std::move(m));
    target.position = e.position;
  }
}

result<void> projection_engine::commit(slot_state& target) {
  if (target.position == target.checkpoint) return {};
  auto mutations = target.pending ? target.pending->take() : std::vector<mutation>{};
  if (auto ok = read_models_.commit(target.storage(), mutations, target.position); !ok) {
    // Nothing of it was written: the slot goes back to its checkpoint and reads again.
    target.position = target.checkpoint;
    return std::unexpected(ok.error());
  }
  target.checkpoint = target.position;
  return {};
}

bool projection_engine::slot_state::full() const { return pending && pending->size() >= k_max_pending_rows; }

namespace {

runner_impl::behavior_type projection_runner(runner_impl::stateful_pointer<runner_state> self,
                                             std::shared_ptr<projection_engine> engine, std::uint64_t start_head,
                                             std::shared_ptr<core_directory> dir) {
  self->set_exception_handler(log_actor_exception);
  self->state.engine = std::move(engine);
  self->state.dir = std::move(dir);
  self->state.start_head = start_head;
  // The engine may hold rows a failed runner applied in memory and never committed:
  // start again from the committed checkpoints (for a first start this is a no-op).
  if (auto ok = self->state.engine->load_checkpoints(); !ok) {
    spdlog::error("projections: checkpoints not reloaded: {}", ok.error().message);
    self->state.stalled = ok.error().message;
  }
  self->state.ready = self->state.engine->applied() >= start_head;
  if (!self->state.ready) self->send(self, msg::log_advanced{start_head});  // catch up, page by page
  auto release = [self](std::uint64_t applied) {
    if (applied >= self->state.start_head && !self->state.ready) {
      self->state.ready = true;
      spdlog::info("projections caught up position={}", applied);
    }
    auto& w = self->state.waiters;
    auto end = w.upper_bound(applied);
    for (auto it = w.begin(); it != end; ++it) it->second.deliver(msg::projections_ready{applied});
    w.erase(w.begin(), end);
    if (applied > self->state.told_hub) {
      // The job dispatcher too: the read models (connections) now know what it reads; and
      // the container reconciler, which reloads the containers the new events touched.
      bool told = false;
      for (auto role : {core_role::hub, core_role::dispatcher, core_role::reconciler}) {
        if (auto follower = self->state.dir->get(role)) {
          caf::anon_send(caf::actor_cast<caf::actor>(follower), msg::log_advanced{applied});
          told = true;
        }
      }
      if (told) self->state.told_hub = applied;
    }
  };
  // The engine reports errors as values; anything thrown (an allocation failure, a
  // thread that cannot start) stalls the runner like a storage error instead of ending it.
  auto guarded = [](const char* what, auto&& fn) -> result<std::uint64_t> {
    try {
      return fn();
    } catch (const std::exception& ex) {
      return fail(errc::internal, std::string(what) + ": " + ex.what());
    }
  };
  return {
      [self, release, guarded](msg::log_advanced& m) {
        if (self->state.engine->applied() >= m.position) return;  // read already
        // A few pages at a time, then back to the mailbox: a runner far behind stays
        // responsive (waiters, shutdown) while it catches up.
        auto applied = guarded("follow", [&] { return self->state.engine->follow(8); });
        if (!applied) {
          if (self->state.stalled != applied.error().message) {
            spdlog::error("projections stalled at position={}: {}", self->state.engine->applied(),
                          applied.error().message);
          }
          self->state.stalled = applied.error().message;
          // Try again by itself (e.g. once a full disk has room again), appends or not.
          self->delayed_send(self, std::chrono::seconds(1), msg::log_advanced{m.position});
          return;
        }
        self->state.stalled.clear();
        release(*applied);
        if (*applied < m.position) self->send(self, msg::log_advanced{m.position});
      },
      [self](msg::await_position& req) -> caf::result<msg::projections_ready> {
        const auto applied = self->state.engine->applied();
        if (applied >= req.position) return msg::projections_ready{applied};
        self->state.waiters.emplace(
            req.position, owed_reply<msg::projections_ready>(self->make_response_promise<msg::projections_ready>(), [] {
              return msg::projections_ready{0};  // the waiter answers anyway
            }));
        return caf::delegated<msg::projections_ready>();
      },
      [self](msg::projection_status_request) { return msg::projection_status_reply{make_report(self->state)}; },
      [self](msg::rebuild_request& m) {
        try {
          auto fresh = make_projection(m.name);
          if (!fresh) return msg::rebuild_reply{fail(errc::not_found, "no such projection: " + m.name)};
          auto started = self->state.engine->start_rebuild(m.name, std::move(fresh));
          if (started) self->send(self, rebuild_tick_atom::value);
          return msg::rebuild_reply{std::move(started)};
        } catch (const std::exception& ex) {
          return msg::rebuild_reply{fail(errc::internal, std::string("rebuild not started: ") + ex.what())};
        }
      },
      [self](rebuild_tick_atom) {
        // A few pages per message, like catching up: the runner keeps following the log
        // and answering between steps.
        result<bool> running = false;
        try {
          running = self->state.engine->rebuild_step(8);
        } catch (const std::exception& ex) {
          running = fail(errc::internal, std::string("rebuild: ") + ex.what());
        }
        if (!running) {
          spdlog::error("projection rebuild stalled: {}", running.error().message);
          self->state.stalled = running.error().message;
          return;
        }
        if (*running) self->send(self, rebuild_tick_atom::value);
      },
  };
}

}  // namespace

runner_actor spawn_projection_runner(caf::actor_system& sys, std::shared_ptr<projection_engine> engine,
                                     std::uint64_t start_head, std::shared_ptr<core_directory> dir) {
  return sys.spawn(projection_runner, std::move(engine), start_head, std::move(dir));
}

}  // namespace atrium::actors
