// Entity actors (one per entity of every aggregate) and the registry that spawns them.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <list>
#include <unordered_map>

#include "actors/actors.hpp"
#include "actors/messages.hpp"
#include "events/connection/connection_decider.hpp"
#include "events/container/container_decider.hpp"
#include "events/group/group_decider.hpp"
#include "events/job/job_decider.hpp"
#include "events/project/project_decider.hpp"
#include "events/schedule/schedule_decider.hpp"
#include "events/user/user_decider.hpp"
#include "projections/access_views.hpp"
#include "projections/ops_views.hpp"
#include "projections/schedule_views.hpp"
#include "projections/views.hpp"

namespace atrium::actors {
namespace {

constexpr std::size_t k_page = 1000;

/// What differs between aggregates; the actor code is the same for all.
struct user_traits {
  using state = user_state;
  using event = user_event;
  using message = msg::user_command_msg;
  static constexpr const char* name = "user";
  static bool creates(const message& m) {
    return std::holds_alternative<register_user>(m.command) ||
           std::holds_alternative<register_service_account>(m.command);
  }
  static std::string stream(const std::string& id) { return user_stream(id); }
  static nlohmann::json view(const state& s) { return user_view(s); }
  /// Snapshot form: the user row (view plus password hash), schema 1.
  static constexpr int snapshot_schema = 1;
  static nlohmann::json to_snapshot(const state& s) { return user_row(s); }
  static state from_snapshot(const nlohmann::json& j) { return user_from_row(j); }

  /// Registration (of a person or a service account) also claims the username, in the
  /// same atomic append.
  static void extra_appends(const message& m, const std::vector<proposed_event>& events,
                            std::vector<ports::stream_append>& out) {
    if (!creates(m) || events.empty()) return;
    const auto& reg = events.front();
    const auto* name_field = std::holds_alternative<register_user>(m.command) ? "username" : "name";
    auto claim = make_event(username_claimed{reg.data.at(name_field).get<std::string>(), m.id});
    claim.actor = reg.actor;
    claim.correlation_id = reg.correlation_id;
    claim.causation_id = reg.causation_id;
    claim.metadata = reg.metadata;
    out.push_back({username_stream(claim.data.at("username").get<std::string>()),
                   ports::expected_version::no_stream(),
                   {std::move(claim)}});
  }

  /// A conflict on the username claim means the name is taken.
  static error translate(error e) {
    if (e.code == errc::version_conflict && e.details.value("stream", "").starts_with("username-")) {
      const auto name = e.details["stream"].get<std::string>().substr(9);
      return error{errc::already_exists, "username is taken", {{"username", name}}};
    }
    return e;
  }
};

/// The common part of aggregates whose commands touch only their own stream.
template <class State, class Event, class Command>
struct single_stream_traits {
  using state = State;
  using event = Event;
  using message = msg::command_msg<Command>;
  /// Snapshot form: the entity's row (see projections/*views.hpp), schema 1.
  static constexpr int snapshot_schema = 1;
  static void extra_appends(const message&, const std::vector<proposed_event>&, std::vector<ports::stream_append>&) {}
  static error translate(error e) { return e; }
};

struct project_traits : single_stream_traits<project_state, project_event, project_command> {
  static constexpr const char* name = "project";
  static bool creates(const message& m) { return std::holds_alternative<create_project>(m.command); }
  static std::string stream(const std::string& id) { return project_stream(id); }
  static nlohmann::json view(const state& s) { return project_view(s); }
  static nlohmann::json to_snapshot(const state& s) { return project_row(s); }
  static state from_snapshot(const nlohmann::json& j) { return project_from_row(j); }
};

struct group_traits : single_stream_traits<group_state, group_event, group_command> {
  static constexpr const char* name = "group";
  static bool creates(const message& m) { return std::holds_alternative<create_group>(m.command); }
  static std::string stream(const std::string& id) { return group_stream(id); }
  static nlohmann::json view(const state& s) { return group_view(s); }
  static nlohmann::json to_snapshot(const state& s) { return group_row(s); }
  static state from_snapshot(const nlohmann::json& j) { return group_from_row(j); }
};

struct connection_traits : single_stream_traits<connection_state, connection_event, connection_command> {
  static constexpr const char* name = "connection";
  static bool creates(const message& m) { return std::holds_alternative<create_connection>(m.command); }
  static std::string stream(const std::string& id) { return connection_stream(id); }
  static nlohmann::json view(const state& s) { return connection_view_of_row(connection_row(s)); }
  static nlohmann::json to_snapshot(const state& s) { return connection_row(s); }
  static state from_snapshot(const nlohmann::json& j) { return connection_from_row(j); }
};

struct job_traits : single_stream_traits<job_state, job_event, job_command> {
  static constexpr const char* name = "job";
  static bool creates(const message& m) { return std::holds_alternative<submit_job>(m.command); }
  static std::string stream(const std::string& id) { return job_stream(id); }
  static nlohmann::json view(const state& s) { return job_view(s); }
  static nlohmann::json to_snapshot(const state& s) { return job_row(s); }
  static state from_snapshot(const nlohmann::json& j) { return job_from_row(j); }
};

struct container_traits : single_stream_traits<container_state, container_event, container_command> {
  static constexpr const char* name = "container";
  /// 2: the row carries the spec's runtime, limits, restart and health (issue 18).
  static constexpr int snapshot_schema = 2;
  static bool creates(const message& m) { return std::holds_alternative<declare_container>(m.command); }
  static std::string stream(const std::string& id) { return container_stream(id); }
  static nlohmann::json view(const state& s) { return container_view(s); }
  static nlohmann::json to_snapshot(const state& s) { return container_row(s); }
  static state from_snapshot(const nlohmann::json& j) { return container_from_row(j); }
};

struct schedule_traits : single_stream_traits<schedule_state, schedule_event, schedule_command> {
  static constexpr const char* name = "schedule";
  static bool creates(const message& m) { return std::holds_alternative<create_schedule>(m.command); }
  static std::string stream(const std::string& id) { return schedule_stream(id); }
  static nlohmann::json view(const state& s) { return schedule_view(s); }
  static nlohmann::json to_snapshot(const state& s) { return schedule_row(s); }
  static state from_snapshot(const nlohmann::json& j) { return schedule_from_row(j); }
};

template <class Traits>
struct entity_state {
  std::string id;
  std::string stream;
  typename Traits::state value;
  std::optional<error> broken;         // set when the stream cannot be folded
  std::uint64_t snapshot_every = 0;    // 0: never snapshot
  std::uint64_t snapshot_version = 0;  // version of the newest snapshot stored
  static inline const char* name = Traits::name;
};

/// Folds the stream into a fresh state: from the newest snapshot, when there is one of
/// the current schema that decodes, plus the events after it; else from version 1.
/// `snapshot_version` receives the version of the snapshot used (0 for none).
template <class Traits>
result<typename Traits::state> hydrate(const ports::event_store& store, const std::string& stream,
                                       std::uint64_t& snapshot_version) {
  typename Traits::state s;
  snapshot_version = 0;
  if (auto snap = store.load_snapshot(stream); snap && *snap) {
    if ((*snap)->schema == Traits::snapshot_schema) {
      try {
        s = Traits::from_snapshot((*snap)->state);
        s.version = (*snap)->version;
        snapshot_version = s.version;
      } catch (const std::exception& ex) {
        spdlog::warn("entity={} snapshot ignored: {}", stream, ex.what());
        s = typename Traits::state{};
      }
    } else {
      spdlog::info("entity={} snapshot schema={} ignored (current {}): replaying", stream, (*snap)->schema,
                   Traits::snapshot_schema);
    }
  }
  for (std::uint64_t from = s.version + 1;;) {
    auto page = store.read_stream(stream, from, k_page);
    if (!page) return std::unexpected(page.error());
    for (const auto& e : *page) {
      auto ev = decode_event<typename Traits::event>(e);
      if (!ev) return fail(errc::internal, stream + " cannot be folded: " + ev.error().message);
      s = evolve(std::move(s), *ev);
      s.version = e.version;
    }
    if (page->size() < k_page) return s;
    from = page->back().version + 1;
  }
}

template <class Traits>
std::optional<msg::command_reply> handle(caf::stateful_actor<entity_state<Traits>>* self, typename Traits::message& m,
                                         ports::event_store* store, const core_directory& dir);

template <class Traits>
caf::behavior entity_actor(caf::stateful_actor<entity_state<Traits>>* self, std::string id, ports::event_store* store,
                           std::shared_ptr<core_directory> dir, std::uint64_t snapshot_every) {
  self->set_exception_handler(log_actor_exception);
  auto& st = self->state;
  st.id = id;
  st.stream = Traits::stream(id);
  st.snapshot_every = snapshot_every;
  try {
    if (auto s = hydrate<Traits>(*store, st.stream, st.snapshot_version)) {
      st.value = std::move(*s);
    } else {
      spdlog::error("entity={} hydrate failed: {}", st.stream, s.error().message);
      st.broken = s.error();
    }
  } catch (const std::exception& ex) {
    spdlog::error("entity={} hydrate failed: {}", st.stream, ex.what());
    st.broken = error{errc::internal, st.stream + " cannot be folded: " + ex.what(), nlohmann::json::object()};
  }
  if (st.broken && st.broken->code == errc::unavailable) {
    // A storage error, not a broken stream: answer, then let the next command hydrate again.
    st.broken->message = "entity not loaded: " + st.broken->message;
  }
  return {
      [self, store, dir](typename Traits::message& m) -> caf::result<msg::command_reply> {
        std::optional<msg::command_reply> reply;
        try {
          reply = handle<Traits>(self, m, store, *dir);
        } catch (const std::exception& ex) {
          // Its state may be half-changed: answer, stop, and be hydrated afresh next time.
          spdlog::error("entity={} command failed: {}", self->state.stream, ex.what());
          auto rp = self->make_response_promise();
          rp.deliver(msg::command_reply{fail(errc::internal, std::string("command failed: ") + ex.what())});
          self->quit();
          return rp;
        }
        if (reply && self->state.broken && self->state.broken->code == errc::unavailable) {
          auto rp = self->make_response_promise();
          rp.deliver(std::move(*reply));
          self->quit();
          return rp;
        }
        if (reply && !self->state.value.exists) {
          // A refused create leaves nothing to own: stop rather than linger in memory.
          auto rp = self->make_response_promise();
          rp.deliver(std::move(*reply));
          self->quit();
          return rp;
        }
        if (reply) return std::move(*reply);
        return caf::delegated<msg::command_reply>{};
      },
  };
}

/// Handles one command: answers at once (a domain error or a no-op), or sends the
/// append, answers through a response promise when it completes, and returns nullopt.
template <class Traits>
std::optional<msg::command_reply> handle(caf::stateful_actor<entity_state<Traits>>* self, typename Traits::message& m,
                                         ports::event_store* store, const core_directory& dir) {
  auto& st = self->state;
  if (st.broken) return msg::command_reply{std::unexpected(*st.broken)};
  const auto& ctx = m.context;
  if (ctx.expected_version && *ctx.expected_version != st.value.version) {
    return msg::command_reply{
        fail(errc::version_conflict,
             "the " + std::string(Traits::name) + " is at version " + std::to_string(st.value.version),
             {{"stream", st.stream}, {"expected", *ctx.expected_version}, {"current_version", st.value.version}})};
  }
  auto decided = decide(st.value, m.command, ctx.actor);
  if (!decided) return msg::command_reply{std::unexpected(decided.error())};
  if (decided->empty()) {
    return msg::command_reply{ports::command_outcome{{}, st.value.version, 0, Traits::view(st.value)}};
  }
  // The command's id: all events of one command share it as their causation.
  const auto causation = ctx.command_id.empty() ? new_uuid_v7() : ctx.command_id;
  for (auto& e : *decided) {
    e.actor = ctx.actor.actor_stream();
    e.correlation_id = ctx.correlation_id;
    e.causation_id = causation;
    e.metadata = ctx.metadata;
  }
  std::vector<ports::stream_append> appends;
  appends.push_back(
      {st.stream,
       st.value.version == 0 ? ports::expected_version::no_stream() : ports::expected_version::exact(st.value.version),
       *decided});
  Traits::extra_appends(m, *decided, appends);
  if (!ctx.command_id.empty()) {
    std::size_t n = 0;
    for (auto& a : appends) {
      for (auto& e : a.events) e.id = ctx.command_id + "." + std::to_string(n++);
    }
  }

  if (!dir.up(core_role::writer)) {
    return msg::command_reply{fail(errc::unavailable, "the event-store writer is restarting; retry")};
  }
  // Answered `unavailable` if this actor stops before the append completes.
  owed_reply<msg::command_reply> rp(self->template make_response_promise<msg::command_reply>(), [] {
    return msg::command_reply{fail(errc::unavailable, "the entity actor stopped before the command completed")};
  });
  // `await` keeps this entity's mailbox closed until the append is durable, so the
  // next command decides on the state that includes these events.
  self->request(dir.get<core_role::writer>(), caf::infinite, msg::append_request{std::move(appends)})
      .await(
          [self, rp, store](msg::append_reply& r) mutable {
            auto& st = self->state;
            if (!r.committed) {
              if (r.committed.error().code == errc::version_conflict) {
                // Someone else wrote this stream: refold before the next command.
                if (auto s = hydrate<Traits>(*store, st.stream, st.snapshot_version)) st.value = std::move(*s);
              }
              const bool unknown = r.committed.error().code == errc::unavailable;
              rp.deliver(msg::command_reply{std::unexpected(Traits::translate(r.committed.error()))});
              // `unavailable`: the store refused (e.g. disk full) or the writer stopped,
              // possibly after storing the append; either way the next command hydrates
              // this entity afresh from the log.
              if (!st.value.exists || unknown) self->quit();
              return;
            }
            ports::command_outcome out;
            for (const auto& e : *r.committed) {
              if (e.stream != st.stream) continue;
              if (auto ev = decode_event<typename Traits::event>(e)) {
                st.value = evolve(std::move(st.value), *ev);
                st.value.version = e.version;
              }
            }
            if (st.snapshot_every > 0 && st.value.exists &&
                st.value.version - st.snapshot_version >= st.snapshot_every) {
              if (auto ok = store->save_snapshot(
                      st.stream, {st.value.version, Traits::snapshot_schema, Traits::to_snapshot(st.value)})) {
                st.snapshot_version = st.value.version;
              } else {
                spdlog::warn("entity={} snapshot not saved: {}", st.stream, ok.error().message);
              }
            }
            out.position = r.committed->back().position;
            out.events = std::move(*r.committed);
            out.version = st.value.version;
            out.view = Traits::view(st.value);
            rp.deliver(msg::command_reply{std::move(out)});
          },
          [self, rp](caf::error& err) mutable {
            rp.deliver(msg::command_reply{fail(errc::unavailable, "event store unavailable: " + caf::to_string(err))});
            // Whether the append was stored is unknown: stop, so the next command on
            // this entity hydrates it from the log as it is.
            self->quit();
          });
  return std::nullopt;
}

using tick_atom = caf::atom_constant<caf::atom("tick")>;

/// The registry's own interface: the public one plus its passivation tick (sent to itself).
using registry_impl = registry_actor::extend<caf::reacts_to<tick_atom>>;

/// One live entity actor, as the registry tracks it for passivation.
struct live_entity {
  caf::actor actor;
  std::list<std::string>::iterator lru;  // position in registry_state::lru
  std::uint64_t in_flight = 0;           // commands routed and not yet answered
  std::chrono::steady_clock::time_point last_used;
};

struct registry_state {
  std::unordered_map<std::string, live_entity> live;     // stream id → entity
  std::unordered_map<caf::actor_id, std::string> by_id;  // actor id → stream id
  std::list<std::string> lru;                            // most recently used first
  registry_options options;
  std::uint64_t passivated = 0;
  static inline const char* name = "entity-registry";
  // However the registry stops (told to, an exception, a kill), its entity actors stop
  // with it; the commands they still owe are answered by their owed replies.
  ~registry_state() {
    for (auto& [stream, e] : live) caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
  }
};

using registry_self = registry_impl::stateful_pointer<registry_state>;

/// Publishes the number of live entity actors (for /metrics).
void publish_live(registry_state& st) {
  if (st.options.counts) st.options.counts->live.set(static_cast<std::int64_t>(st.live.size()));
}

/// Stops an idle entity's actor. Only the registry sends commands to entity actors, so
/// an entity with nothing in flight can be stopped without losing a message: the next
/// command spawns and hydrates it again (from its snapshot).
void passivate(registry_self self, std::unordered_map<std::string, live_entity>::iterator it) {
  auto& st = self->state;
  auto actor = it->second.actor;
  st.lru.erase(it->second.lru);
  st.by_id.erase(actor.id());
  st.live.erase(it);
  self->demonitor(actor);  // its exit is ours, not a crash to react to
  self->send_exit(actor, caf::exit_reason::user_shutdown);
  ++st.passivated;
  if (st.options.counts) st.options.counts->passivated.add();
  publish_live(st);
}

/// Passivates least recently used entities with nothing in flight while more than
/// `max_live` are alive, and every entity idle for longer than `passivate_after`.
void enforce_bounds(registry_self self) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  auto it = st.lru.end();
  while (it != st.lru.begin()) {
    --it;
    auto e = st.live.find(*it);
    const bool over = st.live.size() > st.options.max_live;
    const bool idle = now - e->second.last_used >= st.options.passivate_after;
    if (!over && !idle) break;  // the rest are more recent
    if (e->second.in_flight > 0) continue;
    auto next = std::next(it);
    passivate(self, e);
    it = next;
  }
}

/// Routes a command to its entity's actor, spawning it on first use. A command on a
/// stream that does not exist (other than a create) is answered `not_found` without
/// spawning, so requests for made-up ids cannot fill memory with empty actors.
template <class Traits>
caf::result<msg::command_reply> route(registry_self self, typename Traits::message& m, ports::event_store* store,
                                      const std::shared_ptr<core_directory>& dir) {
  auto& st = self->state;
  const auto stream = Traits::stream(m.id);
  auto it = st.live.find(stream);
  if (it == st.live.end()) {
    if (!Traits::creates(m)) {
      auto version = store->stream_version(stream);
      if (!version) return msg::command_reply{std::unexpected(version.error())};
      if (*version == 0) {
        return msg::command_reply{fail(errc::not_found, std::string("no such ") + Traits::name)};
      }
    }
    // Monitored, not linked: a link is an entry in the registry's own attachable list,
    // which unlinking scans, so passivating one of 10,000 linked actors cost O(10,000).
    auto a = self->spawn(entity_actor<Traits>, m.id, store, dir, st.options.snapshot_every);
    self->monitor(a);
    st.lru.push_front(stream);
    st.by_id.emplace(a.id(), stream);
    it = st.live.emplace(stream, live_entity{a, st.lru.begin(), 0, {}}).first;
    publish_live(st);
    if (st.live.size() > st.options.max_live) enforce_bounds(self);
  } else {
    st.lru.splice(st.lru.begin(), st.lru, it->second.lru);
  }
  auto& entry = it->second;
  entry.last_used = std::chrono::steady_clock::now();
  ++entry.in_flight;
  // Ask rather than delegate: the answer passes back through here, so the registry
  // knows when nothing is in flight and the entity may be passivated.
  owed_reply<msg::command_reply> rp(self->make_response_promise<msg::command_reply>(), [] {
    return msg::command_reply{fail(errc::unavailable, "the entity registry stopped before the command completed")};
  });
  self->request(entry.actor, caf::infinite, std::move(m))
      .then(
          [self, stream, rp](msg::command_reply& r) mutable {
            if (auto e = self->state.live.find(stream); e != self->state.live.end() && e->second.in_flight > 0) {
              --e->second.in_flight;
            }
            rp.deliver(std::move(r));
          },
          [self, stream, rp](caf::error& err) mutable {
            if (auto e = self->state.live.find(stream); e != self->state.live.end() && e->second.in_flight > 0) {
              --e->second.in_flight;
            }
            rp.deliver(msg::command_reply{fail(errc::unavailable, "entity actor failed: " + caf::to_string(err))});
          });
  return caf::delegated<msg::command_reply>{};
}

/// `route`, answering `unavailable` instead of letting an exception end the registry.
template <class Traits>
caf::result<msg::command_reply> route_safely(registry_self self, typename Traits::message& m, ports::event_store* store,
                                             const std::shared_ptr<core_directory>& dir) {
  try {
    return route<Traits>(self, m, store, dir);
  } catch (const std::exception& ex) {
    spdlog::error("entity registry: command for {} not routed: {}", Traits::stream(m.id), ex.what());
    return msg::command_reply{fail(errc::unavailable, std::string("command not routed: ") + ex.what())};
  }
}

registry_impl::behavior_type registry(registry_self self, ports::event_store* s, std::shared_ptr<core_directory> dir,
                                      registry_options options) {
  self->state.options = options;
  publish_live(self->state);  // a restarted registry starts with none (its predecessor's stopped with it)
  self->set_exception_handler(log_actor_exception);
  self->set_down_handler([self](caf::down_msg& m) {
    auto& st = self->state;
    if (auto id = st.by_id.find(m.source.id()); id != st.by_id.end()) {
      if (m.reason && m.reason != caf::exit_reason::user_shutdown) {
        spdlog::warn("entity={} actor failed: {}; it is hydrated again on its next command", id->second,
                     caf::to_string(m.reason));
      }
      // An entity actor stopped on its own (a refused create) or failed: forget it; the
      // next command spawns and hydrates a fresh one.
      if (auto e = st.live.find(id->second); e != st.live.end()) {
        st.lru.erase(e->second.lru);
        st.live.erase(e);
        publish_live(st);
      }
      st.by_id.erase(id);
    }
  });
  self->set_exit_handler([self](caf::exit_msg& m) {
    // Told to stop: take every entity actor down with us.
    for (auto& [stream, e] : self->state.live) self->send_exit(e.actor, m.reason);
    self->state.live.clear();
    publish_live(self->state);
    self->quit(m.reason);
  });
  const auto tick = std::min<std::chrono::milliseconds>(std::chrono::seconds(1), options.passivate_after);
  self->delayed_send(self, tick, tick_atom::value);
  return {
      [self, s, dir](msg::user_command_msg& m) { return route_safely<user_traits>(self, m, s, dir); },
      [self, s, dir](msg::project_command_msg& m) { return route_safely<project_traits>(self, m, s, dir); },
      [self, s, dir](msg::group_command_msg& m) { return route_safely<group_traits>(self, m, s, dir); },
      [self, s, dir](msg::connection_command_msg& m) { return route_safely<connection_traits>(self, m, s, dir); },
      [self, s, dir](msg::job_command_msg& m) { return route_safely<job_traits>(self, m, s, dir); },
      [self, s, dir](msg::container_command_msg& m) { return route_safely<container_traits>(self, m, s, dir); },
      [self, s, dir](msg::schedule_command_msg& m) { return route_safely<schedule_traits>(self, m, s, dir); },
      [self, tick](tick_atom) {
        enforce_bounds(self);
        self->delayed_send(self, tick, tick_atom::value);
      },
      [self](msg::registry_stats_request) {
        return msg::registry_stats{self->state.live.size(), self->state.passivated};
      },
  };
}

}  // namespace

registry_actor spawn_registry(caf::actor_system& sys, ports::event_store& store, std::shared_ptr<core_directory> dir,
                              registry_options options) {
  return sys.spawn(registry, &store, std::move(dir), options);
}

}  // namespace atrium::actors
