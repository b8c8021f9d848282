// The event relay: tails the global log from its own checkpoint and publishes every
// event, in position order, to an `event_publisher` (Kafka). The checkpoint advances
// only over a contiguous run of acknowledged positions, so after a crash, a restart or
// an outage every event is published at least once (docs/integrations.md). With an
// exactly-once publisher it first waits for the publisher's `recovery()` and resumes
// after what the destination already holds of this log, so nothing is published twice.
//
//   tick ─▶ read_all(next) ─▶ publish ... (at most max_in_flight unacknowledged)
//   delivery report (publisher thread) ─▶ relay_delivered ─▶ acked set ─▶ checkpoint
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <set>

#include "actors/actors.hpp"

namespace atrium::actors {
namespace {

/// From the publisher's delivery thread to the relay: the reports of one poll.
struct relay_delivered {
  std::vector<ports::delivery> reports;
};

}  // namespace
}  // namespace atrium::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::actors::relay_delivered)

namespace atrium::actors {
namespace {

using relay_tick_atom = caf::atom_constant<caf::atom("rltick")>;

constexpr std::size_t k_page = 1000;

struct relay_state {
  ports::event_store* store = nullptr;
  ports::read_model_store* checkpoints = nullptr;
  ports::event_publisher* publisher = nullptr;
  relay_options options;
  std::shared_ptr<relay_status_cell> status;

  std::uint64_t checkpoint = 0;   // every position up to here acknowledged
  std::uint64_t saved = 0;        // the checkpoint last stored
  std::uint64_t next = 0;         // the last position published
  std::uint64_t in_flight = 0;    // published, not yet reported
  std::set<std::uint64_t> acked;  // acknowledged positions above the checkpoint
  bool rewind = false;            // a delivery failed: publish again from the checkpoint
  std::string error;              // why the relay is degraded ("" if not)
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
  bool tick_pending = false;
  bool recovered = false;  // the publisher's recovery() was applied
  static inline const char* name = "event-relay";
  ~relay_state();
};

void publish_status(relay_state& st) {
  ports::relay_info info;
  info.destination = st.publisher->describe();
  info.checkpoint = st.checkpoint;
  const auto head = st.store->head_position();
  info.lag_positions = head > st.checkpoint ? head - st.checkpoint : 0;
  info.in_flight = st.in_flight;  // lag_seconds: computed by the report that reads the cell
  const auto health = st.publisher->health();
  const bool stuck = st.in_flight > 0 && std::chrono::steady_clock::now() - st.last_progress > st.options.stall_after;
  // Not recovered and an error: the publisher cannot set up (e.g. a cluster without
  // transactions); nothing will be published until it can.
  const bool blocked = !st.recovered && !health.last_error.empty();
  if (!health.connected || stuck || blocked || !st.error.empty()) {
    info.status = "degraded";
    info.error = !st.error.empty() ? st.error
                 : !health.last_error.empty()
                     ? health.last_error
                     : "no acknowledgement for " + std::to_string(st.options.stall_after.count()) + " s";
  } else if (info.lag_positions > st.options.live_lag || !st.recovered) {
    info.status = "catching_up";
  }
  std::lock_guard lock(st.status->mu);
  st.status->info = std::move(info);
}

/// Publishes what the log holds beyond `next`, up to the in-flight bound. Returns true
/// if more is waiting (the caller ticks again at once).
bool pump(relay_state& st) {
  if (st.rewind) {
    if (st.in_flight > 0) return false;  // wait for every outstanding report first
    st.rewind = false;
    st.next = st.checkpoint;
    st.acked.clear();
  }
  const auto head = st.store->head_position();
  if (st.in_flight == 0) st.last_progress = std::chrono::steady_clock::now();  // the stall clock starts now
  while (st.next < head && st.in_flight < st.options.max_in_flight) {
    auto page = st.store->read_all(st.next, std::min<std::size_t>(k_page, st.options.max_in_flight - st.in_flight));
    if (!page) {
      st.error = "read log: " + page.error().message;
      return false;
    }
    if (page->empty()) break;
    for (const auto& e : *page) {
      if (auto ok = st.publisher->publish(e); !ok) return false;  // local queue full: wait for reports
      ++st.in_flight;
      st.next = e.position;
    }
  }
  return st.next < head && st.in_flight < st.options.max_in_flight;
}

/// Once the publisher knows what the destination holds: if it holds this log's events
/// beyond the checkpoint (an exactly-once publisher committed them, then the server
/// stopped before the checkpoint was saved), resume after them. False while unknown.
bool recover(relay_state& st) {
  if (st.recovered) return true;
  const auto r = st.publisher->recovery();
  if (!r.known) return false;
  st.recovered = true;
  if (!r.last || r.last->position <= st.checkpoint) return true;
  auto at = st.store->read_all(r.last->position - 1, 1);
  if (!at) {
    st.error = "read log: " + at.error().message;
    st.recovered = false;
    return false;
  }
  if (at->empty() || at->front().position != r.last->position || at->front().id != r.last->id) {
    spdlog::error(
        "relay: {} holds position={} id={}, which is not this log's event there; publishing from the checkpoint "
        "(position={}) — was the topic written by another log?",
        st.publisher->describe(), r.last->position, r.last->id, st.checkpoint);
    return true;
  }
  spdlog::info("relay: {} already holds positions {}..{}; resuming after them", st.publisher->describe(),
               st.checkpoint + 1, r.last->position);
  st.checkpoint = st.next = r.last->position;
  return true;
}

/// One delivery report: a failure makes the relay publish again from the checkpoint
/// once everything outstanding is reported; a success joins the acknowledged set, and
/// the checkpoint moves over the contiguous run.
void acknowledge(relay_state& s, const ports::delivery& d) {
  if (s.in_flight > 0) --s.in_flight;
  if (d.failure) {
    if (!s.rewind) {  // the first of a run of failures (the rest usually share its cause)
      spdlog::error("relay: position={} not delivered: {}", d.position, d.failure->message);
    }
    s.error = d.failure->message;
    s.rewind = true;
    return;
  }
  if (d.position <= s.checkpoint) return;  // a second copy after a rewind
  if (d.position == s.checkpoint + 1) {
    ++s.checkpoint;  // the usual case: reports arrive in order
  } else {
    s.acked.insert(d.position);
  }
  while (!s.acked.empty() && *s.acked.begin() == s.checkpoint + 1) {
    s.acked.erase(s.acked.begin());
    ++s.checkpoint;
  }
  s.last_progress = std::chrono::steady_clock::now();
  if (!s.rewind) s.error.clear();
}

void save(relay_state& st) {
  if (st.checkpoints == nullptr || st.saved == st.checkpoint) return;
  if (auto ok = st.checkpoints->save_checkpoint(st.options.checkpoint_name, st.checkpoint); !ok) {
    spdlog::warn("relay checkpoint not saved: {}", ok.error().message);
    return;
  }
  st.saved = st.checkpoint;
}

// The last acknowledgements before a shutdown are kept too.
relay_state::~relay_state() { save(*this); }

caf::behavior relay(caf::stateful_actor<relay_state>* self, ports::event_store* store,
                    ports::read_model_store* checkpoints, ports::event_publisher* publisher, relay_options options,
                    std::shared_ptr<relay_status_cell> status, std::uint64_t start) {
  self->set_exception_handler(log_actor_exception);
  auto& st = self->state;
  st.store = store;
  st.checkpoints = checkpoints;
  st.publisher = publisher;
  st.options = std::move(options);
  st.status = std::move(status);
  st.checkpoint = st.saved = st.next = start;
  spdlog::info("relay to {} starts after position={}", publisher->describe(), start);
  publisher->on_delivery([addr = self->address()](std::vector<ports::delivery> reports) {
    if (auto a = caf::actor_cast<caf::actor>(addr)) caf::anon_send(a, relay_delivered{std::move(reports)});
  });
  auto schedule = [self](bool now) {
    if (self->state.tick_pending) return;
    self->state.tick_pending = true;
    if (now) {
      self->send(self, relay_tick_atom::value);
    } else {
      self->delayed_send(self, self->state.options.poll_interval, relay_tick_atom::value);
    }
  };
  schedule(true);
  return {
      [self, schedule](relay_tick_atom) {
        auto& s = self->state;
        s.tick_pending = false;
        const bool more = recover(s) && pump(s);
        save(s);
        publish_status(s);
        schedule(more);
      },
      [self](relay_delivered& m) {
        for (const auto& d : m.reports) acknowledge(self->state, d);
      },
  };
}

}  // namespace

result<caf::actor> spawn_relay(caf::actor_system& sys, ports::event_store& store, ports::read_model_store& checkpoints,
                               ports::event_publisher& publisher, relay_options options,
                               std::shared_ptr<relay_status_cell> status) {
  auto start = checkpoints.checkpoint(options.checkpoint_name);
  if (!start) return std::unexpected(start.error());
  return sys.spawn(relay, &store, &checkpoints, &publisher, std::move(options), std::move(status), *start);
}

}  // namespace atrium::actors
