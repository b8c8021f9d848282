#pragma once
/// The real-time transport (docs/realtime.md): `GET /v1/ws` (WebSocket: subscriptions,
/// commands, presence) and `GET /v1/events/stream` (Server-Sent Events), and the
/// `events_controller` that serves them with the log reads (`/v1/events`,
/// `/v1/streams/{stream}`). Beast-free: the server hands a `push_channel`.
///
/// A WebSocket `command` runs through `realtime_context::run_command`: the same edge
/// checks, authentication (the connection's token), idempotency, route table and
/// controller handler as an HTTP request, answered as JSON (never serialized and parsed
/// back).

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "adapters/http/access_facts.hpp"
#include "adapters/http/http_metrics.hpp"
#include "adapters/http/router.hpp"
#include "ports/event_store.hpp"
#include "ports/subscriptions.hpp"

namespace atrium::http_adapter {

// Limits of the real-time transport (docs/realtime.md "Limits").
inline constexpr std::size_t k_max_connections_per_user = 16;     // open WebSockets of one user, all sessions
inline constexpr std::size_t k_max_subscriptions = 64;            // per connection
inline constexpr std::size_t k_max_subscriptions_per_user = 256;  // over all of a user's connections
inline constexpr std::size_t k_max_filter_entries = 256;          // distinct streams + projects of one subscription
inline constexpr std::size_t k_max_filter_list = 1024;            // entries of one list as sent, duplicates included
inline constexpr std::size_t k_max_commands_in_flight = 32;       // per connection
inline constexpr std::size_t k_max_presence_state = 4096;         // bytes of one presence state, as JSON
inline constexpr std::size_t k_max_id_bytes = 128;                // a string `id`
inline constexpr std::uint16_t k_close_slow_consumer = 1013;      // RFC 6455 §7.4.1 "try again later"
inline constexpr auto k_presence_access_ttl = std::chrono::seconds(1);  // how long a presence access answer is reused
inline constexpr int k_retry_after_seconds = 5;                         // `Retry-After` of a refused upgrade

// A queued event's tag (push_channel::send): the subscription's slot in the top 16
// bits, the event's position below, so that a cut can tell each subscription the first
// position it did not get.
inline constexpr int k_slot_shift = 48;
inline constexpr std::uint64_t k_position_mask = (std::uint64_t{1} << k_slot_shift) - 1;

/// `j` as text; invalid UTF-8 is replaced, never thrown on.
inline std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

inline json error_json(const error& e) {
  return json{{"code", std::string(to_string(e.code))}, {"message", e.message}, {"details", e.details}};
}

/// A lower bound of `j.dump().size()` that stops counting past `limit` (never dumps).
inline std::size_t dump_size_at_least(const json& j, std::size_t limit) {
  std::size_t n = 0;
  switch (j.type()) {
    case json::value_t::string:
      return j.get_ref<const std::string&>().size() + 2;
    case json::value_t::array:
      n = 2;
      for (const auto& v : j) {
        if (n > limit) break;
        n += dump_size_at_least(v, limit) + 1;
      }
      return n;
    case json::value_t::object:
      n = 2;
      for (const auto& [k, v] : j.items()) {
        if (n > limit) break;
        n += k.size() + 4 + dump_size_at_least(v, limit);
      }
      return n;
    default:
      return 1;
  }
}

/// A session as the presence board sees it.
class presence_peer {
 public:
  virtual ~presence_peer() = default;
  /// Whether the session may still read `project` (cached briefly; see ws_connection).
  virtual bool may_see(const std::string& project) = 0;
  /// Queues a presence message (a full queue just drops it).
  virtual void tell(std::string text) = 0;
};

/// Who is present in which project: `{"op":"presence"}` states, never stored. Also the
/// real-time transport's per-user counts (the board is the one object of it that the
/// API holds).
struct presence_board {
  /// Open WebSockets and subscriptions per user, for the per-user limits.
  struct user_usage {
    std::size_t connections = 0;
    std::size_t subscriptions = 0;
  };
  std::mutex usage_mu;
  std::unordered_map<std::string, user_usage> usage;
  /// Subscriptions of every user (what the per-user counts add up to), for /metrics.
  std::shared_ptr<ports::gauge> subscriptions = std::make_shared<ports::gauge>();

  /// Counts one more connection of `user`; false (counting nothing) at the limit.
  bool add_connection(const std::string& user) {
    std::lock_guard lock(usage_mu);
    auto& u = usage[user];
    if (u.connections >= k_max_connections_per_user) return false;
    ++u.connections;
    return true;
  }
  void remove_connection(const std::string& user) {
    std::lock_guard lock(usage_mu);
    auto it = usage.find(user);
    if (it == usage.end()) return;
    if (it->second.connections > 0) --it->second.connections;
    if (it->second.connections == 0 && it->second.subscriptions == 0) usage.erase(it);
  }
  /// Counts one more subscription of `user`; false (counting nothing) at the limit.
  bool add_subscription(const std::string& user) {
    std::lock_guard lock(usage_mu);
    auto& u = usage[user];
    if (u.subscriptions >= k_max_subscriptions_per_user) return false;
    ++u.subscriptions;
    subscriptions->add();
    return true;
  }
  void remove_subscriptions(const std::string& user, std::size_t n) {
    if (n == 0) return;
    std::lock_guard lock(usage_mu);
    auto it = usage.find(user);
    if (it == usage.end()) return;
    const auto removed = std::min(n, it->second.subscriptions);
    it->second.subscriptions -= removed;
    subscriptions->sub(static_cast<std::int64_t>(removed));
    if (it->second.connections == 0 && it->second.subscriptions == 0) usage.erase(it);
  }

  struct entry {
    std::string user_id;
    json state;
    std::weak_ptr<presence_peer> peer;
  };
  std::mutex mu;
  std::map<std::string, std::map<std::string, entry>> projects;  // project → session → entry

  static json sessions_of(const std::map<std::string, entry>& sessions) {
    json out = json::array();
    for (const auto& [sid, e] : sessions) out.push_back({{"session", sid}, {"user_id", e.user_id}, {"state", e.state}});
    return out;
  }

  /// Sets (or, with `state` null, removes) a session's state in `project` and sends the
  /// news to the project's other sessions that may still read it (those that may not
  /// are taken off the board). Returns the session list after the change.
  json update(const std::string& project, const std::string& session, const std::string& user_id, json state,
              std::weak_ptr<presence_peer> peer) {
    std::vector<std::pair<std::string, std::shared_ptr<presence_peer>>> others;
    {
      std::lock_guard lock(mu);
      auto& sessions = projects[project];
      if (state.is_null()) {
        sessions.erase(session);
      } else {
        sessions[session] = entry{user_id, state, std::move(peer)};
      }
      for (const auto& [sid, e] : sessions) {
        if (sid == session) continue;
        if (auto p = e.peer.lock()) others.emplace_back(sid, std::move(p));
      }
    }
    // Access is asked outside the lock (it reads the read models).
    std::vector<std::shared_ptr<presence_peer>> allowed;
    std::vector<std::string> lost;
    for (auto& [sid, p] : others) {
      if (p->may_see(project)) {
        allowed.push_back(std::move(p));
      } else {
        lost.push_back(sid);
      }
    }
    json list;
    std::string message;
    {
      std::lock_guard lock(mu);
      auto& sessions = projects[project];
      for (const auto& sid : lost) sessions.erase(sid);
      list = sessions_of(sessions);
      json m{{"op", "presence"},   {"project", project}, {"session", session},
             {"user_id", user_id}, {"state", state},     {"sessions", list}};
      if (state.is_null()) m["gone"] = true;
      message = dump(m);
      if (sessions.empty()) projects.erase(project);
    }
    for (const auto& p : allowed) p->tell(message);
    return list;
  }
};

/// Runs a WebSocket command as the API runs a request (api.cpp): the answer comes to
/// `json_answer` as JSON, or to `respond` as text (a replayed idempotent answer).
using command_runner = std::function<void(http_request request, respond_fn respond,
                                          std::function<void(unsigned, const json&, const header_list&)> json_answer)>;

/// What the real-time transport reads and calls; the ports must outlive it.
struct realtime_context {
  ports::subscription_hub& hub;
  const ports::event_store& events;  ///< the head position
  const ports::user_queries& users;  ///< the connection's user as they are now
  stream_facts_source facts;         ///< who may read which stream
  std::shared_ptr<presence_board> presence = std::make_shared<presence_board>();
  command_runner run_command;
  /// Open connections and subscriptions are counted here (for /metrics); never null.
  std::shared_ptr<http_metrics> metrics = std::make_shared<http_metrics>();
};

/// What WebSocket and SSE connections share: the channel, the user, access checks.
class push_subscriber : public ports::subscriber {
 public:
  push_subscriber(std::shared_ptr<realtime_context> rt, std::string user_id)
      : rt_(std::move(rt)), user_id_(std::move(user_id)) {}

  void attach(const std::shared_ptr<push_channel>& ch) { channel_ = ch; }

  const std::string& user_id() const override { return user_id_; }

  /// The user as they are now (roles, groups), or nullopt when gone or disabled.
  std::optional<principal> current_principal() const {
    auto found = rt_->users.user(user_id_);
    if (!found || !*found) return std::nullopt;
    const auto& user = (*found)->state;
    if (user.disabled) return std::nullopt;
    return principal{user.user_id, user.roles, user.disabled, rt_->users.groups_of(user.user_id)};
  }

  /// The policy's answer for reading `stream` ("" for the whole log) as `p`.
  access::decision read_decision(const principal& p, const std::string& stream) const {
    if (stream.empty()) return access::authorize(p, access::operation::events_read);
    const auto [op, facts] = stream_access(rt_->facts, p, stream);
    return access::authorize(p, op, facts);
  }

  bool congested() const override {
    auto ch = channel_.lock();
    return ch && ch->congested();
  }

  bool may_read(const std::string& stream) override {
    auto p = current_principal();
    return p && read_decision(*p, stream).allowed;
  }

 protected:
  /// What `push` did with a message.
  enum class queued { yes, closing, full };

  /// Queues `text` with `tag`. A channel that is closing takes nothing: the connection's
  /// end is already under way (and `hub.drop` follows), so it must not be reported as a
  /// slow consumer.
  queued push(push_message message, std::uint64_t tag = 0) {
    auto ch = channel_.lock();
    if (!ch) return queued::closing;
    if (ch->send(std::move(message), tag)) return queued::yes;
    return ch->closing() ? queued::closing : queued::full;
  }
  queued push(std::string text, std::uint64_t tag = 0) {
    return push(push_message{{std::make_shared<const std::string>(std::move(text))}}, tag);
  }

  std::shared_ptr<realtime_context> rt_;
  std::string user_id_;
  std::weak_ptr<push_channel> channel_;
};

/// Releases a user's WebSocket count once: when the connection closes, or when the
/// upgrade never completes (the open callback holding it is destroyed).
struct connection_slot {
  std::shared_ptr<presence_board> board;
  std::string user_id;
  connection_slot(std::shared_ptr<presence_board> b, std::string u) : board(std::move(b)), user_id(std::move(u)) {}
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;
  ~connection_slot() { board->remove_connection(user_id); }
};

/// Opens a `GET /v1/ws` connection of `user_id` on `ch` (ws_connection.cpp): its
/// callbacks for the server. `token` authenticates its commands; `slot` holds its place
/// in the user's count until it closes.
push_callbacks open_websocket(const std::shared_ptr<realtime_context>& rt, const std::shared_ptr<push_channel>& ch,
                              const std::string& user_id, const std::string& token, const std::string& user_agent,
                              std::shared_ptr<connection_slot> slot);

/// The log and its streams: `GET /v1/events`, `GET /v1/streams/{stream}`, and the push
/// transports `GET /v1/events/stream` (SSE) and `GET /v1/ws` (controllers/events.cpp).
class events_controller : public std::enable_shared_from_this<events_controller> {
 public:
  struct deps {
    kit_ptr kit;
    const ports::event_store& events;
    std::shared_ptr<realtime_context> realtime;
  };
  explicit events_controller(deps d) : d_(std::move(d)) {}
  void add_routes(route_table& t);

 private:
  /// GET /v1/events: the whole log (admins and auditors), paged and filtered.
  void events(const call_ptr& c, const principal& p);
  /// GET /v1/projects/{id}/events: the project's events, for readers of the project.
  void project_events(const call_ptr& c, const principal& p, const std::string& project);
  /// A page of the log (`project`: only its streams) for `?after=&limit=&types=&streams=`,
  /// as `{"events","next","head"}`.
  void answer_feed(const call_ptr& c, const std::optional<std::string>& project);
  void stream(const call_ptr& c, const principal& p, const std::string& stream_id);
  /// GET /v1/events/stream: the log as Server-Sent Events after `Last-Event-ID` or `after`.
  void event_stream(const call_ptr& c, const principal& p);
  /// GET /v1/projects/{id}/events/stream: the project's events as Server-Sent Events.
  void project_event_stream(const call_ptr& c, const principal& p, const std::string& project);
  /// Opens an SSE feed of the log (`project`: only its streams) after `Last-Event-ID` or
  /// `?after=` (default: the head), with `?types=&streams=&event_names=`.
  void open_feed(const call_ptr& c, const principal& p, const std::optional<std::string>& project);
  /// GET /v1/ws: upgrades to a WebSocket connection (426 without an upgrade).
  void websocket(const call_ptr& c, const principal& p);
  deps d_;
};

}  // namespace atrium::http_adapter
