// The HTTP API: the real-time transport. `GET /v1/ws` (WebSocket: subscriptions,
// commands, presence) and `GET /v1/events/stream` (Server-Sent Events). Message shapes
// are documented in docs/realtime.md. Beast-free: the server hands us a
// `push_channel`.
#include <mutex>

#include "adapters/http/api_internal.hpp"
#include "projections/views.hpp"

namespace atrium::http_adapter {
namespace {

constexpr std::size_t k_max_subscriptions = 64;                  // per connection
constexpr std::size_t k_max_filter_entries = 256;                // streams + projects of one subscription
constexpr std::size_t k_max_commands_in_flight = 32;             // per connection
constexpr std::size_t k_max_presence_state = 4096;               // bytes of one presence state, as JSON
constexpr std::uint16_t k_close_slow_consumer = 1013;            // RFC 6455 §7.4.1 "try again later"
constexpr auto k_presence_access_ttl = std::chrono::seconds(1);  // how long a presence access answer is reused

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json error_json(const error& e) {
  return json{{"code", std::string(to_string(e.code))}, {"message", e.message}, {"details", e.details}};
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

/// Who is present in which project: `{"op":"presence"}` states, never stored.
struct presence_board {
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
  /// Queues `text`; false only when the queue is full. A channel that is closing takes
  /// nothing but counts as a success: the connection's end is already under way (and
  /// `hub.drop` follows), so it must not be reported as a slow consumer.
  bool push(std::string text) {
    auto ch = channel_.lock();
    if (!ch) return true;
    return ch->send(std::move(text)) || ch->closing();
  }

  std::shared_ptr<api::impl> api_;
  std::string user_id_;
  std::weak_ptr<push_channel> channel_;
};

/// One `GET /v1/ws` connection.
class ws_connection final : public push_subscriber,
                            public presence_peer,
                            public std::enable_shared_from_this<ws_connection> {
 public:
  ws_connection(std::shared_ptr<api::impl> api, std::string user_id, std::string token, std::string user_agent)
      : push_subscriber(std::move(api), std::move(user_id)),
        token_(std::move(token)),
        user_agent_(std::move(user_agent)),
        session_id_(new_uuid_v7()) {}

  // ---- from the client (on the connection's strand) -----------------------------------

  void on_message(const std::string& text) {
    json m;
    try {
      auto parsed = parse_json(text);
      if (!parsed) return reply_error(nullptr, error{errc::invalid_argument, "message: " + parsed.error().message});
      m = std::move(*parsed);
    } catch (const json::exception&) {
      return reply_error(nullptr, error{errc::invalid_argument, "message is not valid JSON"});
    }
    if (!m.is_object() || !m.contains("op") || !m["op"].is_string()) {
      return reply_error(nullptr, error{errc::invalid_argument, "message needs an \"op\""});
    }
    const auto op = m["op"].get<std::string>();
    const json id = m.contains("id") ? m["id"] : json(nullptr);
    if (op == "ping") return send_now(json{{"op", "pong"}});
    if (op == "subscribe") return subscribe(m, id);
    if (op == "unsubscribe") return unsubscribe(id);
    if (op == "command") return command(m, id);
    if (op == "presence") return presence(m, id);
    reply_error(id, error{errc::invalid_argument, "unknown op: " + op, {{"op", op}}});
  }

  void on_close() {
    spdlog::info("ws closed user={} session={}", user_id_, session_id_);
    api_->d.hub.drop(shared_from_this());
    std::set<std::string> projects;
    {
      std::lock_guard lock(mu_);
      projects.swap(presence_);
      closed_ = true;
    }
    for (const auto& project : projects) api_->presence->update(project, session_id_, user_id_, nullptr, {});
  }

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

  bool deliver(const std::string& subscription, const envelope&, const std::string& event_json) override {
    // The subscription id is kept as the JSON text the client sent, so it echoes exactly.
    return push(R"({"op":"event","subscription":)" + subscription + R"(,"event":)" + event_json + "}");
  }

  void ended(const std::string& subscription, std::optional<error> why, std::uint64_t resume_after) override {
    {
      std::lock_guard lock(mu_);
      subscriptions_.erase(subscription);
    }
    const auto id = json::parse(subscription);
    if (!why) return send_now(json{{"op", "result"}, {"id", id}, {"ok", true}, {"resume_after", resume_after}});
    send_now(json{{"op", "error"},
                  {"code", std::string(to_string(why->code))},
                  {"message", why->message},
                  {"subscription", id},
                  {"resume_after", resume_after}});
  }

  void overflowed(const std::vector<std::pair<std::string, std::uint64_t>>& resume_after) override {
    json resume = json::array();
    for (const auto& [sub, position] : resume_after) {
      resume.push_back({{"subscription", json::parse(sub)}, {"resume_after", position}});
    }
    slow_consumer(std::move(resume));
  }

 private:
  /// Sends a message that is not an event; a full queue closes the connection as slow.
  void send_now(const json& m) {
    if (!push(dump(m))) slow_consumer(json::array());
  }

  void slow_consumer(json resume) {
    {
      std::lock_guard lock(mu_);
      if (slow_) return;
      slow_ = true;
    }
    spdlog::warn("ws slow consumer closed user={} session={}", user_id_, session_id_);
    if (auto ch = channel_.lock()) {
      ch->close(k_close_slow_consumer, "slow consumer",
                dump(json{{"op", "error"},
                          {"code", "slow_consumer"},
                          {"message", "the connection could not keep up; reconnect and resume after these positions"},
                          {"resume_after", std::move(resume)}}));
    }
    // Subscriptions the hub did not end yet (a non-event message overflowed) go now.
    api_->d.hub.drop(shared_from_this());
  }

  void reply_error(const json& id, const error& e) {
    if (id.is_null())
      return send_now(json{
          {"op", "error"}, {"code", std::string(to_string(e.code))}, {"message", e.message}, {"details", e.details}});
    send_now(
        json{{"op", "result"}, {"id", id}, {"ok", false}, {"status", http_status(e.code)}, {"error", error_json(e)}});
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
      auto& out = std::string_view(field) == "streams" ? sub.filter.streams : sub.filter.projects;
      for (const auto& v : list) out.push_back(v.get<std::string>());
    }
    const auto entries = sub.filter.streams.size() + sub.filter.projects.size();
    if (entries == 0 || entries > k_max_filter_entries) {
      return reply_error(
          id, error{errc::invalid_argument, "give 1-" + std::to_string(k_max_filter_entries) + " streams or projects"});
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
      if (auto e = check("project-" + project)) return reply_error(id, *e);
      if (!api_->project_facts(*p, project).row) {
        return reply_error(id, error{errc::not_found, "no such project", {{"project", project}}});
      }
    }
    bool full = false, taken = false;
    {
      std::lock_guard lock(mu_);
      // An id in use is refused rather than replaced: events of the old subscription
      // could still arrive after the new one's result.
      taken = subscriptions_.contains(sub.id);
      full = !taken && subscriptions_.size() >= k_max_subscriptions;
      if (!taken && !full) subscriptions_.insert(sub.id);
    }
    if (taken) {
      return reply_error(id, error{errc::already_exists, "a subscription with this id exists; unsubscribe it first"});
    }
    if (full) {
      return reply_error(
          id,
          error{errc::invalid_argument, "too many subscriptions on this connection", {{"limit", k_max_subscriptions}}});
    }
    // The result is queued before the hub can queue the first event.
    send_now(
        json{{"op", "result"}, {"id", id}, {"ok", true}, {"subscription", id}, {"after", sub.after}, {"head", head}});
    api_->d.hub.subscribe(shared_from_this(), std::move(sub));
  }

  /// `{"op":"unsubscribe","id"}`: the hub answers (`ended`) after the last event it gave.
  void unsubscribe(const json& id) {
    if (!id.is_string() && !id.is_number_integer()) {
      return reply_error(nullptr, error{errc::invalid_argument, "unsubscribe needs the subscription's \"id\""});
    }
    bool known = false;
    {
      std::lock_guard lock(mu_);
      known = subscriptions_.contains(dump(id));
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
      try {
        body = resp.body.empty() ? json(nullptr) : json::parse(resp.body);
      } catch (const json::exception&) {
        body = resp.body;
      }
      json out{{"op", "result"}, {"id", id}, {"ok", resp.status < 400}, {"status", resp.status}, {"body", body}};
      for (const auto& [k, v] : resp.headers) {
        if (k == "X-Atrium-Position") out["position"] = std::stoull(v);
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
    if (dump(state).size() > k_max_presence_state) {
      return reply_error(
          id, error{errc::payload_too_large, "presence state is too large", {{"limit_bytes", k_max_presence_state}}});
    }
    auto p = current_principal();
    if (!p) return reply_error(id, error{errc::unauthenticated, "user is disabled"});
    const auto decision = read_decision(*p, "project-" + project);
    if (!decision.allowed || !valid_id(project) || !api_->project_facts(*p, project).row) {
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
  std::mutex mu_;
  std::set<std::string> subscriptions_;                                  // ids (as JSON text) the hub holds for us
  std::set<std::string> presence_;                                       // projects we announced presence in
  std::map<std::string, std::pair<bool, clock_type::time_point>> seen_;  // project → may read, when asked
  bool slow_ = false, closed_ = false;
  std::atomic<std::size_t> in_flight_{0};
};

/// One `GET /v1/events/stream` connection: the whole log as Server-Sent Events.
class sse_connection final : public push_subscriber {
 public:
  using push_subscriber::push_subscriber;

  bool deliver(const std::string&, const envelope& e, const std::string& event_json) override {
    return push("id: " + std::to_string(e.position) + "\nevent: " + e.type + "\ndata: " + event_json + "\n\n");
  }

  void ended(const std::string&, std::optional<error> why, std::uint64_t resume_after) override {
    close_with("error", json{{"code", why ? std::string(to_string(why->code)) : std::string("ended")},
                             {"message", why ? why->message : std::string("subscription ended")},
                             {"resume_after", resume_after}});
  }

  void overflowed(const std::vector<std::pair<std::string, std::uint64_t>>& resume_after) override {
    const auto position = resume_after.empty() ? 0 : resume_after.front().second;
    spdlog::warn("sse slow consumer closed user={} resume_after={}", user_id_, position);
    close_with("error", json{{"code", "slow_consumer"},
                             {"message", "the stream could not keep up; reconnect with Last-Event-ID"},
                             {"resume_after", position}});
  }

 private:
  void close_with(const char* event, const json& data) {
    if (auto ch = channel_.lock())
      ch->close(1000, "", std::string("event: ") + event + "\ndata: " + dump(data) + "\n\n");
  }
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
  const auto token = bearer_token(c->req.header("authorization")).value_or("");
  spdlog::info("http method=GET path=/v1/ws status=101 user={} request_id={}", c->who, c->correlation_id);
  http_response resp{101, "", "", {}};
  resp.open = [self = shared_from_this(), user = p.user_id, token,
               agent = c->req.header("user-agent")](std::shared_ptr<push_channel> ch) {
    auto conn = std::make_shared<ws_connection>(self, user, token, agent);
    conn->attach(ch);
    return push_callbacks{[conn](std::string text) { conn->on_message(text); }, [conn] { conn->on_close(); }};
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
    auto conn = std::make_shared<sse_connection>(self, user);
    conn->attach(ch);
    self->d.hub.subscribe(conn, ports::subscription{"\"events\"", {.all = true}, after});
    return push_callbacks{nullptr, [self, conn] { self->d.hub.drop(conn); }};
  };
  c->respond(std::move(resp));
}

}  // namespace atrium::http_adapter
