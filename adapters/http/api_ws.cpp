// The HTTP API: the real-time transport. `GET /v1/ws` (WebSocket: subscriptions,
// commands, presence) and `GET /v1/events/stream` (Server-Sent Events). Message shapes
// are documented in docs/realtime.md. Beast-free: the server hands us a
// `push_channel`.
#include <mutex>
#include <unordered_map>

#include "adapters/http/api_internal.hpp"
#include "projections/views.hpp"

namespace atrium::http_adapter {
namespace {

// Limits of the real-time transport (docs/realtime.md "Limits").
constexpr std::size_t k_max_connections_per_user = 16;           // open WebSockets of one user, all sessions
constexpr std::size_t k_max_subscriptions = 64;                  // per connection
constexpr std::size_t k_max_subscriptions_per_user = 256;        // over all of a user's connections
constexpr std::size_t k_max_filter_entries = 256;                // distinct streams + projects of one subscription
constexpr std::size_t k_max_filter_list = 1024;                  // entries of one list as sent, duplicates included
constexpr std::size_t k_max_commands_in_flight = 32;             // per connection
constexpr std::size_t k_max_presence_state = 4096;               // bytes of one presence state, as JSON
constexpr std::size_t k_max_id_bytes = 128;                      // a string `id`
constexpr std::uint16_t k_close_slow_consumer = 1013;            // RFC 6455 §7.4.1 "try again later"
constexpr auto k_presence_access_ttl = std::chrono::seconds(1);  // how long a presence access answer is reused
constexpr int k_retry_after_seconds = 5;                         // `Retry-After` of a refused upgrade

// A queued event's tag (push_channel::send): the subscription's slot in the top 16
// bits, the event's position below, so that a cut can tell each subscription the first
// position it did not get.
constexpr int k_slot_shift = 48;
constexpr std::uint64_t k_position_mask = (std::uint64_t{1} << k_slot_shift) - 1;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json error_json(const error& e) {
  return json{{"code", std::string(to_string(e.code))}, {"message", e.message}, {"details", e.details}};
}

/// A lower bound of `j.dump().size()` that stops counting past `limit` (never dumps).
std::size_t dump_size_at_least(const json& j, std::size_t limit) {
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

}  // namespace

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
    return true;
  }
  void remove_subscriptions(const std::string& user, std::size_t n) {
    if (n == 0) return;
    std::lock_guard lock(usage_mu);
    auto it = usage.find(user);
    if (it == usage.end()) return;
    it->second.subscriptions -= std::min(n, it->second.subscriptions);
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

std::shared_ptr<presence_board> make_presence_board() { return std::make_shared<presence_board>(); }

namespace {

/// What WebSocket and SSE connections share: the channel, the user, access checks.
class push_subscriber : public ports::subscriber {
 public:
  push_subscriber(std::shared_ptr<api::impl> api, std::string user_id)
      : api_(std::move(api)), user_id_(std::move(user_id)) {}

  void attach(const std::shared_ptr<push_channel>& ch) { channel_ = ch; }

  const std::string& user_id() const override { return user_id_; }

  /// The user as they are now (roles, groups), or nullopt when gone or disabled.
  std::optional<principal> current_principal() const {
    auto row = api_->d.read_models.get("users", "users", user_id_);
    if (!row || !*row) return std::nullopt;
    try {
      const auto user = user_from_row(**row);
      if (user.disabled) return std::nullopt;
      return principal{user.user_id, user.roles, user.disabled, api_->groups_of(user.user_id)};
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  /// The policy's answer for reading `stream` ("" for the whole log) as `p`.
  access::decision read_decision(const principal& p, const std::string& stream) const {
    if (stream.empty()) return access::authorize(p, access::operation::events_read);
    const auto [op, facts] = api_->stream_access(p, stream);
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
  queued push(std::string text, std::uint64_t tag = 0) {
    auto ch = channel_.lock();
    if (!ch) return queued::closing;
    if (ch->send(std::move(text), tag)) return queued::yes;
    return ch->closing() ? queued::closing : queued::full;
  }

  std::shared_ptr<api::impl> api_;
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

/// One `GET /v1/ws` connection.
class ws_connection final : public push_subscriber,
                            public presence_peer,
                            public std::enable_shared_from_this<ws_connection> {
 public:
  ws_connection(std::shared_ptr<api::impl> api, std::string user_id, std::string token, std::string user_agent,
                std::shared_ptr<connection_slot> slot)
      : push_subscriber(std::move(api), std::move(user_id)),
        token_(std::move(token)),
        user_agent_(std::move(user_agent)),
        session_id_(new_uuid_v7()),
        slot_(std::move(slot)) {}

  // ---- from the client (on the connection's strand) -----------------------------------

  void on_message(const std::string& text) {
    auto parsed = parse_json(text);  // wire.hpp: nesting bounded at parse (k_max_json_depth)
    if (!parsed) return reply_error(nullptr, error{errc::invalid_argument, "message: " + parsed.error().message});
    const json& m = *parsed;
    if (!m.is_object() || !m.contains("op") || !m["op"].is_string()) {
      return reply_error(nullptr, error{errc::invalid_argument, "message needs an \"op\""});
    }
    json id = nullptr;
    if (m.contains("id")) {
      const auto& v = m["id"];
      const bool ok = v.is_number_integer() || v.is_null() ||
                      (v.is_string() && v.get_ref<const std::string&>().size() <= k_max_id_bytes);
      if (!ok) {
        return reply_error(
            nullptr, error{errc::invalid_argument,
                           "id must be an integer or a string of at most " + std::to_string(k_max_id_bytes) + " bytes",
                           {{"field", "id"}}});
      }
      id = v;
    }
    const auto& op = m["op"].get_ref<const std::string&>();
    if (op == "ping") return send_now(json{{"op", "pong"}});
    if (op == "subscribe") return subscribe(m, id);
    if (op == "unsubscribe") return unsubscribe(id);
    if (op == "command") return command(m, id);
    if (op == "presence") return presence(m, id);
    json details = json::object();
    if (op.size() <= 32) details["op"] = op;
    reply_error(id, error{errc::invalid_argument, "unknown op", std::move(details)});
  }

  void on_close() {
    spdlog::info("ws closed user={} session={}", user_id_, session_id_);
    api_->d.hub.drop(shared_from_this());
    std::set<std::string> projects;
    std::size_t subscriptions = 0;
    {
      std::lock_guard lock(mu_);
      projects.swap(presence_);
      subscriptions = subs_.size();
      subs_.clear();
      slot_ids_.clear();
      seen_.clear();
      closed_ = true;
    }
    api_->presence->remove_subscriptions(user_id_, subscriptions);
    slot_.reset();  // the user may open another connection now
    for (const auto& project : projects) api_->presence->update(project, session_id_, user_id_, nullptr, {});
  }

  /// The channel stopped taking bytes (`push_write_stall`): cut it with the positions
  /// every subscription was given so far (the hub still holds them).
  void on_stalled() { slow_consumer({}); }

  // ---- presence -------------------------------------------------------------------------

  /// Read access to `project`, remembered for `k_presence_access_ttl`; the hub's
  /// re-checks (when this session subscribes to the project) refresh it at once.
  bool may_see(const std::string& project) override {
    const auto now = clock_type::now();
    {
      std::lock_guard lock(mu_);
      if (auto it = seen_.find(project); it != seen_.end() && now - it->second.second < k_presence_access_ttl) {
        return it->second.first;
      }
    }
    return may_read("project-" + project);
  }

  void tell(std::string text) override { (void)push(std::move(text)); }

  // ---- from the hub (its thread) ------------------------------------------------------

  bool may_read(const std::string& stream) override {
    const bool ok = push_subscriber::may_read(stream);
    if (stream.starts_with("project-")) {
      std::lock_guard lock(mu_);
      if (seen_.size() > 256) seen_.clear();
      seen_[stream.substr(8)] = {ok, clock_type::now()};
    }
    return ok;
  }

  bool deliver(const std::string& subscription, const envelope& e, const std::string& event_json) override {
    // The subscription id is kept as the JSON text the client sent, so it echoes exactly.
    auto text = R"({"op":"event","subscription":)" + subscription + R"(,"event":)" + event_json + "}";
    // Under the lock, so that a cut's final message sees every position queued.
    std::lock_guard lock(mu_);
    auto it = subs_.find(subscription);
    const std::uint64_t tag =
        it == subs_.end() ? 0 : (std::uint64_t{it->second.slot} << k_slot_shift) | (e.position & k_position_mask);
    const auto q = push(std::move(text), tag);
    if (q == queued::yes && it != subs_.end()) it->second.given = e.position;
    return q != queued::full;
  }

  void ended(const std::string& subscription, std::optional<error> why, std::uint64_t resume_after) override {
    bool known = false;
    {
      std::lock_guard lock(mu_);
      known = subs_.erase(subscription) > 0;
    }
    if (known) api_->presence->remove_subscriptions(user_id_, 1);
    const auto id = json::parse(subscription);
    if (!why) return send_now(json{{"op", "result"}, {"id", id}, {"ok", true}, {"resume_after", resume_after}});
    send_now(json{{"op", "error"},
                  {"code", std::string(to_string(why->code))},
                  {"message", why->message},
                  {"subscription", id},
                  {"resume_after", resume_after}});
  }

  void overflowed(const std::vector<std::pair<std::string, std::uint64_t>>& resume_after) override {
    slow_consumer(std::map<std::string, std::uint64_t>(resume_after.begin(), resume_after.end()));
  }

 private:
  /// A subscription as this connection tracks it.
  struct sub_info {
    std::uint16_t slot = 0;   // tags its queued events
    std::uint64_t given = 0;  // the last position queued for it (or its `after`)
  };

  /// Sends a message that is not an event; a full queue closes the connection as slow.
  void send_now(const json& m) {
    if (push(dump(m)) == queued::full) slow_consumer({});
  }

  /// Cuts the connection: the final message gives each subscription the position to
  /// resume after — the hub's (`from_hub`, after an overflow) or the last position queued
  /// for it, lowered to just before the first event the cut dropped.
  void slow_consumer(std::map<std::string, std::uint64_t> from_hub) {
    {
      std::lock_guard lock(mu_);
      if (slow_) return;
      slow_ = true;
    }
    spdlog::warn("ws slow consumer closed user={} session={}", user_id_, session_id_);
    if (auto ch = channel_.lock()) {
      ch->cut(k_close_slow_consumer, "slow consumer", [&](const std::vector<std::uint64_t>& dropped) {
        std::map<std::string, std::uint64_t> resume;
        std::lock_guard lock(mu_);
        for (const auto& [id, s] : subs_) resume[id] = s.given;
        for (const auto& [id, position] : from_hub) resume[id] = std::max(resume[id], position);
        for (const auto tag : dropped) {
          const auto it = slot_ids_.find(static_cast<std::uint16_t>(tag >> k_slot_shift));
          if (it == slot_ids_.end()) continue;
          const auto before = (tag & k_position_mask) - 1;
          auto [r, inserted] = resume.try_emplace(it->second, before);
          if (!inserted) r->second = std::min(r->second, before);
        }
        json list = json::array();
        for (const auto& [id, position] : resume) {
          list.push_back({{"subscription", json::parse(id)}, {"resume_after", position}});
        }
        return dump(json{{"op", "error"},
                         {"code", "slow_consumer"},
                         {"message", "the connection could not keep up; reconnect and resume after these positions"},
                         {"resume_after", std::move(list)}});
      });
    }
    std::size_t subscriptions = 0;
    {
      std::lock_guard lock(mu_);
      subscriptions = subs_.size();
      subs_.clear();
    }
    api_->presence->remove_subscriptions(user_id_, subscriptions);
    // Subscriptions the hub did not end yet (a stall, or a non-event message overflowed) go now.
    api_->d.hub.drop(shared_from_this());
  }

  void reply_error(const json& id, const error& e) {
    if (id.is_null())
      return send_now(json{
          {"op", "error"}, {"code", std::string(to_string(e.code))}, {"message", e.message}, {"details", e.details}});
    send_now(
        json{{"op", "result"}, {"id", id}, {"ok", false}, {"status", http_status(e.code)}, {"error", error_json(e)}});
  }

  /// A refusal by a per-user or per-connection limit: 429 `too_many_requests`.
  void reply_limited(const json& id, const std::string& message, json details) {
    send_now(json{{"op", "result"},
                  {"id", id},
                  {"ok", false},
                  {"status", 429},
                  {"error", {{"code", "too_many_requests"}, {"message", message}, {"details", std::move(details)}}}});
  }

  /// `{"op":"subscribe","id","streams"?:[..],"projects"?:[..],"after"?:P}`.
  void subscribe(const json& m, const json& id) {
    if (!id.is_string() && !id.is_number_integer()) {
      return reply_error(nullptr, error{errc::invalid_argument, "subscribe needs an \"id\" (string or integer)"});
    }
    ports::subscription sub;
    sub.id = dump(id);
    for (const char* field : {"streams", "projects"}) {
      if (!m.contains(field)) continue;
      const auto& list = m[field];
      if (!list.is_array() || !std::all_of(list.begin(), list.end(), [](const json& v) { return v.is_string(); })) {
        return reply_error(
            id, error{errc::invalid_argument, std::string(field) + " must be an array of strings", {{"field", field}}});
      }
      if (list.size() > k_max_filter_list) {
        return reply_error(id, error{errc::invalid_argument,
                                     std::string(field) + " may list at most " + std::to_string(k_max_filter_list),
                                     {{"field", field}, {"limit", k_max_filter_list}}});
      }
      auto& out = std::string_view(field) == "streams" ? sub.filter.streams : sub.filter.projects;
      for (const auto& v : list) out.push_back(v.get<std::string>());
      // Duplicates are collapsed: each stream or project is followed once.
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
    }
    const auto entries = sub.filter.streams.size() + sub.filter.projects.size();
    if (entries == 0 || entries > k_max_filter_entries) {
      return reply_error(id, error{errc::invalid_argument,
                                   "give 1-" + std::to_string(k_max_filter_entries) + " distinct streams or projects",
                                   {{"limit", k_max_filter_entries}}});
    }
    const auto head = api_->d.events.head_position();
    sub.after = head;
    if (m.contains("after") && !m["after"].is_null()) {
      if (!m["after"].is_number_unsigned() &&
          !(m["after"].is_number_integer() && m["after"].get<std::int64_t>() >= 0)) {
        return reply_error(
            id, error{errc::invalid_argument, "after must be a non-negative integer position", {{"field", "after"}}});
      }
      sub.after = m["after"].get<std::uint64_t>();
      if (sub.after > head) {
        return reply_error(
            id, error{errc::invalid_argument, "after is beyond the log head", {{"field", "after"}, {"head", head}}});
      }
    }
    auto p = current_principal();
    if (!p) return reply_error(id, error{errc::unauthenticated, "user is disabled"});
    auto check = [&](const std::string& stream) -> std::optional<error> {
      if (!valid_id(stream) || (stream.find('-') == std::string::npos && stream != "security")) {
        return error{errc::not_found, "no such stream", {{"stream", stream}}};
      }
      const auto decision = read_decision(*p, stream);
      if (!decision.allowed) {
        auto e = decision.as_error();
        e.details["stream"] = stream;
        return e;
      }
      return std::nullopt;
    };
    for (const auto& s : sub.filter.streams) {
      if (auto e = check(s)) return reply_error(id, *e);
    }
    for (const auto& project : sub.filter.projects) {
      if (!valid_id(project)) return reply_error(id, error{errc::not_found, "no such project", {{"project", project}}});
      if (auto e = check("project-" + project)) return reply_error(id, *e);
      if (!api_->project_facts(*p, project).row) {
        return reply_error(id, error{errc::not_found, "no such project", {{"project", project}}});
      }
    }
    enum { ok, taken, full, closing } outcome = ok;
    {
      std::lock_guard lock(mu_);
      // An id in use is refused rather than replaced: events of the old subscription
      // could still arrive after the new one's result.
      if (slow_ || closed_) {
        outcome = closing;
      } else if (subs_.contains(sub.id)) {
        outcome = taken;
      } else if (subs_.size() >= k_max_subscriptions) {
        outcome = full;
      }
    }
    if (outcome == closing) return;
    if (outcome == taken) {
      return reply_error(id, error{errc::already_exists, "a subscription with this id exists; unsubscribe it first"});
    }
    if (outcome == full) {
      return reply_limited(id, "too many subscriptions on this connection", {{"limit", k_max_subscriptions}});
    }
    if (!api_->presence->add_subscription(user_id_)) {
      return reply_limited(id, "too many subscriptions for this user (over all their connections)",
                           {{"limit", k_max_subscriptions_per_user}});
    }
    {
      std::lock_guard lock(mu_);
      if (slow_ || closed_) {
        // Cut or closed meanwhile (the hub's thread): nothing to subscribe any more.
        api_->presence->remove_subscriptions(user_id_, 1);
        return;
      }
      const auto slot = next_slot();
      subs_.emplace(sub.id, sub_info{slot, sub.after});
      slot_ids_[slot] = sub.id;
    }
    // The result is queued before the hub can queue the first event.
    send_now(
        json{{"op", "result"}, {"id", id}, {"ok", true}, {"subscription", id}, {"after", sub.after}, {"head", head}});
    api_->d.hub.subscribe(shared_from_this(), std::move(sub));
  }

  /// A slot for a new subscription (under `mu_`). Slots of ended subscriptions are kept
  /// for a while: their events may still be queued when a cut drops them.
  std::uint16_t next_slot() {
    if (++last_slot_ == 0) last_slot_ = 1;
    if (slot_ids_.size() >= 2 * k_max_subscriptions) {
      for (auto it = slot_ids_.begin(); it != slot_ids_.end();) {
        it = subs_.contains(it->second) ? std::next(it) : slot_ids_.erase(it);
      }
    }
    return last_slot_;
  }

  /// `{"op":"unsubscribe","id"}`: the hub answers (`ended`) after the last event it gave.
  void unsubscribe(const json& id) {
    if (!id.is_string() && !id.is_number_integer()) {
      return reply_error(nullptr, error{errc::invalid_argument, "unsubscribe needs the subscription's \"id\""});
    }
    bool known = false;
    {
      std::lock_guard lock(mu_);
      known = subs_.contains(dump(id));
    }
    if (!known) return reply_error(id, error{errc::not_found, "no such subscription"});
    api_->d.hub.unsubscribe(shared_from_this(), dump(id));
  }

  /// `{"op":"command","id","command":{"method","path","body"?,"headers"?}}`: the same API
  /// handler as HTTP, with this connection's token.
  void command(const json& m, const json& id) {
    if (id.is_null()) return reply_error(nullptr, error{errc::invalid_argument, "command needs an \"id\""});
    const auto& cmd = m.contains("command") ? m["command"] : json(nullptr);
    if (!cmd.is_object() || !cmd.contains("method") || !cmd["method"].is_string() || !cmd.contains("path") ||
        !cmd["path"].is_string()) {
      return reply_error(id,
                         error{errc::invalid_argument, "command needs {\"method\",\"path\",\"body\"?,\"headers\"?}"});
    }
    http_request req;
    req.method = cmd["method"].get<std::string>();
    req.target = cmd["path"].get<std::string>();
    req.via_websocket = true;
    if (!req.target.starts_with("/v1/") || req.target.starts_with("/v1/ws") ||
        req.target.starts_with("/v1/events/stream")) {
      return reply_error(
          id,
          error{errc::invalid_argument, "path must be an API route under /v1/ (not a stream)", {{"path", req.target}}});
    }
    if (cmd.contains("headers")) {
      if (!cmd["headers"].is_object())
        return reply_error(id, error{errc::invalid_argument, "headers must be an object"});
      for (const auto& [k, v] : cmd["headers"].items()) {
        if (!v.is_string()) return reply_error(id, error{errc::invalid_argument, "header values must be strings"});
        std::string name = k;
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        req.headers[name] = v.get<std::string>();
      }
    }
    req.headers["authorization"] = "Bearer " + token_;
    if (!req.headers.contains("user-agent")) req.headers["user-agent"] = user_agent_;
    if (cmd.contains("body") && !cmd["body"].is_null()) {
      // The message's depth is bounded at parse, so dumping the body cannot recurse deeply.
      req.body = cmd["body"].is_string() ? cmd["body"].get<std::string>() : dump(cmd["body"]);
    }
    if (auto ch = channel_.lock()) req.remote = ch->remote();
    if (in_flight_.fetch_add(1) >= k_max_commands_in_flight) {
      in_flight_.fetch_sub(1);
      return reply_error(id, error{errc::unavailable,
                                   "too many commands in flight on this connection",
                                   {{"limit", k_max_commands_in_flight}}});
    }
    std::weak_ptr<ws_connection> weak = shared_from_this();
    api_->handle(std::move(req), [weak, id](http_response resp) {
      auto self = weak.lock();
      if (!self) return;
      self->in_flight_.fetch_sub(1);
      json body;
      if (resp.body.empty()) {
        body = nullptr;
      } else if (auto parsed = parse_json(resp.body)) {
        body = std::move(*parsed);
      } else {
        body = resp.body;
      }
      json out{{"op", "result"}, {"id", id}, {"ok", resp.status < 400}, {"status", resp.status}, {"body", body}};
      for (const auto& [k, v] : resp.headers) {
        if (k == "X-Atrium-Position") {
          std::uint64_t position = 0;
          if (std::from_chars(v.data(), v.data() + v.size(), position).ec == std::errc{}) out["position"] = position;
        }
        if (k == "ETag") out["etag"] = v;
      }
      self->send_now(out);
    });
  }

  /// `{"op":"presence","project","state"}`: relayed to the project's other sessions.
  void presence(const json& m, const json& id) {
    if (!m.contains("project") || !m["project"].is_string()) {
      return reply_error(id, error{errc::invalid_argument, "presence needs a \"project\""});
    }
    const auto project = m["project"].get<std::string>();
    json state = m.contains("state") ? m["state"] : json::object();
    if (state.is_null()) state = json::object();
    // A cheap lower bound first, so that a large state is refused without dumping it.
    if (dump_size_at_least(state, k_max_presence_state) > k_max_presence_state ||
        dump(state).size() > k_max_presence_state) {
      return reply_error(
          id, error{errc::payload_too_large, "presence state is too large", {{"limit_bytes", k_max_presence_state}}});
    }
    auto p = current_principal();
    if (!p) return reply_error(id, error{errc::unauthenticated, "user is disabled"});
    if (!valid_id(project)) return reply_error(id, error{errc::not_found, "no such project"});
    const auto decision = read_decision(*p, "project-" + project);
    if (!decision.allowed || !api_->project_facts(*p, project).row) {
      return reply_error(id, decision.allowed ? error{errc::not_found, "no such project"} : decision.as_error());
    }
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      presence_.insert(project);
    }
    auto sessions = api_->presence->update(project, session_id_, user_id_, std::move(state),
                                           std::weak_ptr<presence_peer>(shared_from_this()));
    if (!id.is_null()) {
      send_now(json{{"op", "result"}, {"id", id}, {"ok", true}, {"session", session_id_}, {"sessions", sessions}});
    }
  }

  std::string token_;
  std::string user_agent_;
  std::string session_id_;
  std::shared_ptr<connection_slot> slot_;  // this connection in the user's count
  std::mutex mu_;
  std::map<std::string, sub_info> subs_;           // by id (as JSON text): what the hub holds
  std::map<std::uint16_t, std::string> slot_ids_;  // slot → subscription id
  std::uint16_t last_slot_ = 0;
  std::set<std::string> presence_;                                       // projects we announced presence in
  std::map<std::string, std::pair<bool, clock_type::time_point>> seen_;  // project → may read, when asked
  bool slow_ = false, closed_ = false;
  std::atomic<std::size_t> in_flight_{0};
};

/// One `GET /v1/events/stream` connection: the whole log as Server-Sent Events. Each
/// queued event is tagged with its position, so that a cut resumes before the first one
/// it dropped.
class sse_connection final : public push_subscriber {
 public:
  sse_connection(std::shared_ptr<api::impl> api, std::string user_id, std::uint64_t after)
      : push_subscriber(std::move(api), std::move(user_id)), given_(after) {}

  bool deliver(const std::string&, const envelope& e, const std::string& event_json) override {
    std::lock_guard lock(mu_);
    const auto q =
        push("id: " + std::to_string(e.position) + "\nevent: " + e.type + "\ndata: " + event_json + "\n\n", e.position);
    if (q == queued::yes) given_ = e.position;
    return q != queued::full;
  }

  void ended(const std::string&, std::optional<error> why, std::uint64_t resume_after) override {
    close_with("error", json{{"code", why ? std::string(to_string(why->code)) : std::string("ended")},
                             {"message", why ? why->message : std::string("subscription ended")},
                             {"resume_after", resume_after}});
  }

  void overflowed(const std::vector<std::pair<std::string, std::uint64_t>>& resume_after) override {
    slow_consumer(resume_after.empty() ? 0 : resume_after.front().second);
  }

  /// Cuts the stream: its final message resumes after the last position queued, or the
  /// hub's (`from_hub`, after an overflow), lowered to just before the first event the
  /// cut dropped.
  void slow_consumer(std::uint64_t from_hub) {
    auto ch = channel_.lock();
    if (!ch) return;
    ch->cut(1013, "slow consumer", [&](const std::vector<std::uint64_t>& dropped) {
      std::uint64_t position = 0;
      {
        std::lock_guard lock(mu_);
        position = std::max(given_, from_hub);
      }
      // Tags are positions, in order: the first dropped one is the lowest.
      if (!dropped.empty()) position = std::min(position, dropped.front() - 1);
      spdlog::warn("sse slow consumer closed user={} resume_after={}", user_id_, position);
      return "event: error\ndata: " +
             dump(json{{"code", "slow_consumer"},
                       {"message", "the stream could not keep up; reconnect with Last-Event-ID"},
                       {"resume_after", position}}) +
             "\n\n";
    });
  }

 private:
  void close_with(const char* event, const json& data) {
    if (auto ch = channel_.lock())
      ch->close(1000, "", std::string("event: ") + event + "\ndata: " + dump(data) + "\n\n");
  }

  std::mutex mu_;
  std::uint64_t given_;  // the last position queued (or the start)
};

}  // namespace

void api::impl::websocket(const call_ptr& c, const principal& p) {
  if (!c->req.websocket) {
    return send(c, 426,
                json{{"error",
                      {{"code", "invalid_argument"},
                       {"message", "GET /v1/ws needs a WebSocket upgrade"},
                       {"details", json::object()}}}},
                {{"Upgrade", "websocket"}});
  }
  // What Beast's handshake would refuse in plain text is refused here in the API's shape
  // (RFC 6455 §4.2.1: a 16-byte base64 key, version 13; §4.4: 426 with the version).
  const auto key = c->req.header("sec-websocket-key");
  const bool key_ok = key.size() == 24 && key.ends_with("==") &&
                      std::all_of(key.begin(), key.end() - 2,
                                  [](unsigned char ch) { return std::isalnum(ch) || ch == '+' || ch == '/'; });
  if (!key_ok) {
    return send_error(c, error{errc::invalid_argument,
                               "Sec-WebSocket-Key must be 16 bytes in base64",
                               {{"header", "Sec-WebSocket-Key"}}});
  }
  if (c->req.header("sec-websocket-version") != "13") {
    return send(c, 426,
                json{{"error",
                      {{"code", "invalid_argument"},
                       {"message", "Sec-WebSocket-Version must be 13"},
                       {"details", {{"header", "Sec-WebSocket-Version"}}}}}},
                {{"Sec-WebSocket-Version", "13"}});
  }
  if (!presence->add_connection(p.user_id)) {
    spdlog::info("http method=GET path=/v1/ws status=429 user={} request_id={} limit={}", c->who, c->correlation_id,
                 k_max_connections_per_user);
    return send(c, 429,
                json{{"error",
                      {{"code", "too_many_requests"},
                       {"message", "too many WebSocket connections for this user; close one and retry"},
                       {"details", {{"limit", k_max_connections_per_user}}}}}},
                {{"Retry-After", std::to_string(k_retry_after_seconds)}});
  }
  auto slot = std::make_shared<connection_slot>(presence, p.user_id);
  const auto token = bearer_token(c->req.header("authorization")).value_or("");
  spdlog::info("http method=GET path=/v1/ws status=101 user={} request_id={}", c->who, c->correlation_id);
  http_response resp{101, "", "", {}};
  resp.open = [self = shared_from_this(), user = p.user_id, token, agent = c->req.header("user-agent"),
               slot](std::shared_ptr<push_channel> ch) {
    auto conn = std::make_shared<ws_connection>(self, user, token, agent, slot);
    conn->attach(ch);
    return push_callbacks{[conn](std::string text) { conn->on_message(text); }, [conn] { conn->on_close(); },
                          [conn] { conn->on_stalled(); }};
  };
  c->respond(std::move(resp));
}

void api::impl::event_stream(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::events_read, {}, "events")) return;
  const auto head = d.events.head_position();
  std::uint64_t after = head;
  // Last-Event-ID (a reconnecting EventSource) wins over `after`.
  if (auto last = c->req.header("last-event-id"); !last.empty()) {
    auto v = parse_u64(last, "Last-Event-ID");
    if (!v) return send_error(c, v.error());
    after = *v;
  } else if (auto it = c->query.find("after"); it != c->query.end()) {
    auto v = parse_u64(it->second, "after");
    if (!v) return send_error(c, v.error());
    after = *v;
  }
  if (after > head) {
    return send_error(c, error{errc::invalid_argument, "after is beyond the log head", {{"head", head}}});
  }
  spdlog::info("http method=GET path=/v1/events/stream status=200 user={} request_id={} after={}", c->who,
               c->correlation_id, after);
  http_response resp{200, "", "text/event-stream", {{"X-Request-Id", c->correlation_id}, {"X-Accel-Buffering", "no"}}};
  resp.open = [self = shared_from_this(), user = p.user_id, after](std::shared_ptr<push_channel> ch) {
    auto conn = std::make_shared<sse_connection>(self, user, after);
    conn->attach(ch);
    self->d.hub.subscribe(conn, ports::subscription{"\"events\"", {.all = true}, after});
    // A stalled stream is cut with the last position queued; the hub lets go of it.
    return push_callbacks{nullptr, [self, conn] { self->d.hub.drop(conn); },
                          [self, conn] {
                            conn->slow_consumer(0);
                            self->d.hub.drop(conn);
                          }};
  };
  c->respond(std::move(resp));
}

}  // namespace atrium::http_adapter
