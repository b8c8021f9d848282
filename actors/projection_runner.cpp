#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "projections/projections.hpp"

namespace atrium::actors {
namespace {

/// Rows as stored, overlaid with the mutations of the batch being built, so that a
/// projection sees its own earlier writes within one batch.
class overlay_reader final : public row_reader {
 public:
  overlay_reader(const ports::read_model_store& base, std::string_view projection)
      : base_(base), projection_(projection) {}

  std::optional<nlohmann::json> get(std::string_view table, std::string_view key) const override {
    auto k = std::string(table) + '\0' + std::string(key);
    if (auto it = pending_.find(k); it != pending_.end()) return it->second;
    auto row = base_.get(projection_, table, key);
    if (!row) throw std::runtime_error("read model: " + row.error().message);
    return *row;
  }

  void record(const mutation& m) {
    if (const auto* put = std::get_if<row_put>(&m)) {
      pending_[put->table + '\0' + put->key] = put->value;
    } else if (const auto* del = std::get_if<row_delete>(&m)) {
      pending_[del->table + '\0' + del->key] = std::nullopt;
    }
  }

 private:
  const ports::read_model_store& base_;
  std::string projection_;
  std::map<std::string, std::optional<nlohmann::json>> pending_;
};

constexpr std::size_t k_page = 1000;

using rebuild_tick_atom = caf::atom_constant<caf::atom("rbtick")>;

struct runner_state {
  std::shared_ptr<projection_engine> engine;
  std::multimap<std::uint64_t, caf::response_promise> waiters;
  std::uint64_t start_head = 0;  // the log head when the server started
  bool ready = false;            // caught up with start_head once
  std::string stalled;           // the last error, until the next successful page
  caf::actor hub;                // told how far the projections have applied the log
  std::uint64_t told_hub = 0;
  static inline const char* name = "projection-runner";
};

/// Milliseconds since an RFC 3339 UTC time (`2026-11-21T07:56:16.909832Z`); 0 if unparsable.
std::int64_t ms_since(const std::string& time) {
  std::tm tm{};
  int micros = 0;
  if (std::sscanf(time.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &micros) < 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm)) + std::chrono::microseconds(micros);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() - at);
  return std::max<std::int64_t>(0, ms.count());
}

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
        info.lag_ms = ms_since(next->front().time);
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
  for (auto& p : projections) active_.push_back(slot_state{std::move(p), 0, 0});
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
    if (rebuilding_[i]) p.rebuild_checkpoint = rebuilding_[i]->checkpoint;
    out.push_back(std::move(p));
  }
  return out;
}

result<std::uint64_t> projection_engine::follow(std::size_t max_pages) {
  for (std::size_t pages = 0; pages < max_pages; ++pages) {
    auto page = store_.read_all(applied(), k_page);
    if (!page) return std::unexpected(page.error());
    if (page->empty()) return applied();
    for (auto& a : active_) {
      if (auto ok = apply_to(a, *page); !ok) return std::unexpected(ok.error());
    }
  }
  return applied();
}

result<void> projection_engine::start_rebuild(std::string_view name, std::unique_ptr<projection> fresh) {
  for (std::size_t i = 0; i < active_.size(); ++i) {
    if (active_[i].impl->name() != name) continue;
    if (rebuilding_[i]) return fail(errc::failed_precondition, "a rebuild of " + std::string(name) + " is running");
    slot_state next{std::move(fresh), 1 - active_[i].slot, 0};
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
    for (std::size_t pages = 0; pages < max_pages && r->checkpoint < active_[i].checkpoint; ++pages) {
      auto page = store_.read_all(r->checkpoint, k_page);
      if (!page) return std::unexpected(page.error());
      if (page->empty()) break;
      if (auto ok = apply_to(*r, *page); !ok) return std::unexpected(ok.error());
    }
    if (r->checkpoint < active_[i].checkpoint) {
      running = true;
      continue;
    }
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

result<void> projection_engine::apply_to(slot_state& target, const std::vector<envelope>& batch) {
  const auto& p = *target.impl;
  const auto storage = target.storage();
  overlay_reader rows(read_models_, storage);
  std::vector<mutation> out;
  std::uint64_t last = target.checkpoint;
  for (const auto& e : batch) {
    if (e.position <= last) continue;
    if (e.position != last + 1) break;  // not contiguous: the next catch-up fills it in order
    const auto before = out.size();
    try {
      p.apply(e, rows, out);
    } catch (const std::exception& ex) {
      // A row that cannot be read back is a defect, not a reason to stop the server:
      // log it, drop this event's partial output, and move on.
      spdlog::error("projection={} position={} type={} apply failed: {}", p.name(), e.position, e.type, ex.what());
      out.resize(before);
    }
    for (auto i = before; i < out.size(); ++i) rows.record(out[i]);
    last = e.position;
  }
  if (last == target.checkpoint) return {};
  if (auto ok = read_models_.commit(storage, out, last); !ok) return std::unexpected(ok.error());
  target.checkpoint = last;
  return {};
}

namespace {

caf::behavior projection_runner(caf::stateful_actor<runner_state>* self, std::shared_ptr<projection_engine> engine,
                                std::uint64_t start_head, caf::actor hub) {
  self->state.engine = std::move(engine);
  self->state.hub = std::move(hub);
  self->state.start_head = start_head;
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
    if (self->state.hub && applied > self->state.told_hub) {
      self->state.told_hub = applied;
      self->send(self->state.hub, msg::log_advanced{applied});
    }
  };
  return {
      [self, release](msg::log_advanced& m) {
        if (self->state.engine->applied() >= m.position) return;  // read already
        // A few pages at a time, then back to the mailbox: a runner far behind stays
        // responsive (waiters, shutdown) while it catches up.
        auto applied = self->state.engine->follow(8);
        if (!applied) {
          spdlog::error("projections stalled at position={}: {}", self->state.engine->applied(),
                        applied.error().message);
          self->state.stalled = applied.error().message;
          return;
        }
        self->state.stalled.clear();
        release(*applied);
        if (*applied < m.position) self->send(self, msg::log_advanced{m.position});
      },
      [self](msg::await_position& req) -> caf::result<msg::projections_ready> {
        const auto applied = self->state.engine->applied();
        if (applied >= req.position) return msg::projections_ready{applied};
        auto rp = self->make_response_promise();
        self->state.waiters.emplace(req.position, rp);
        return caf::delegated<msg::projections_ready>();
      },
      [self](msg::projection_status_request) { return msg::projection_status_reply{make_report(self->state)}; },
      [self](msg::rebuild_request& m) {
        auto fresh = make_projection(m.name);
        if (!fresh) return msg::rebuild_reply{fail(errc::not_found, "no such projection: " + m.name)};
        auto started = self->state.engine->start_rebuild(m.name, std::move(fresh));
        if (started) self->send(self, rebuild_tick_atom::value);
        return msg::rebuild_reply{std::move(started)};
      },
      [self](rebuild_tick_atom) {
        // A few pages per message, like catching up: the runner keeps following the log
        // and answering between steps.
        auto running = self->state.engine->rebuild_step(8);
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

caf::actor spawn_projection_runner(caf::actor_system& sys, std::shared_ptr<projection_engine> engine,
                                   std::uint64_t start_head, caf::actor hub) {
  return sys.spawn(projection_runner, std::move(engine), start_head, std::move(hub));
}

}  // namespace atrium::actors
