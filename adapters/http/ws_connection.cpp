// The real-time transport: one `GET /v1/ws` connection (subscriptions, commands,
// presence). Message shapes are documented in docs/realtime.md.
#include "adapters/http/realtime.hpp"
#include "events/admin/admin_events.hpp"
#include "events/security/security_events.hpp"

namespace atrium::http_adapter {
namespace {

/// One `GET /v1/ws` connection.
class ws_connection final : public push_subscriber,
                            public presence_peer,
                            public std::enable_shared_from_this<ws_connection> {
 public:
  ws_connection(std::shared_ptr<realtime_context> rt, std::string user_id, std::string token, std::string user_agent,
                std::shared_ptr<connection_slot> slot)
      : push_subscriber(std::move(rt), std::move(user_id)),
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
    rt_->hub.drop(shared_from_this());
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
    rt_->presence->remove_subscriptions(user_id_, subscriptions);
    slot_.reset();  // the user may open another connection now
    for (const auto& project : projects) rt_->presence->update(project, session_id_, user_id_, nullptr, {});
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

  bool deliver(const std::string& subscription, const envelope& e,
               const std::shared_ptr<const std::string>& event_json) override {
    // `{"op":"event","subscription":ID,"event":` + the event (shared by every connection
    // it goes to) + `}`: nothing copied per delivery.
    static const auto tail = std::make_shared<const std::string>("}");
    // Under the lock, so that a cut's final message sees every position queued.
    std::lock_guard lock(mu_);
    auto it = subs_.find(subscription);
    const std::uint64_t tag =
        it == subs_.end() ? 0 : (std::uint64_t{it->second.slot} << k_slot_shift) | (e.position & k_position_mask);
    auto head = it != subs_.end() ? it->second.head : event_head(subscription);
    const auto q = push(push_message{{std::move(head), event_json, tail}}, tag);
    if (q == queued::yes && it != subs_.end()) it->second.given = e.position;
    return q != queued::full;
  }

  void ended(const std::string& subscription, std::optional<error> why, std::uint64_t resume_after) override {
    bool known = false;
    {
      std::lock_guard lock(mu_);
      known = subs_.erase(subscription) > 0;
    }
    if (known) rt_->presence->remove_subscriptions(user_id_, 1);
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
    std::uint16_t slot = 0;                   // tags its queued events
    std::uint64_t given = 0;                  // the last position queued for it (or its `after`)
    std::shared_ptr<const std::string> head;  // `{"op":"event","subscription":ID,"event":`
  };

  /// The start of an event message of `subscription` (its id as the JSON text the client
  /// sent, so that it echoes exactly).
  static std::shared_ptr<const std::string> event_head(const std::string& subscription) {
    return std::make_shared<const std::string>(R"({"op":"event","subscription":)" + subscription + R"(,"event":)");
  }

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
    rt_->presence->remove_subscriptions(user_id_, subscriptions);
    // Subscriptions the hub did not end yet (a stall, or a non-event message overflowed) go now.
    rt_->hub.drop(shared_from_this());
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

  /// The `streams` and `projects` lists of a subscribe message into `filter`, sorted and
  /// without duplicates; `invalid_argument` naming the field when one is malformed.
  static result<void> read_filter(const json& m, decltype(ports::subscription::filter)& filter) {
    for (const char* field : {"streams", "projects"}) {
      if (!m.contains(field)) continue;
      const auto& list = m[field];
      if (!list.is_array() || !std::all_of(list.begin(), list.end(), [](const json& v) { return v.is_string(); })) {
        return fail(errc::invalid_argument, std::string(field) + " must be an array of strings", {{"field", field}});
      }
      if (list.size() > k_max_filter_list) {
        return fail(errc::invalid_argument,
                    std::string(field) + " may list at most " + std::to_string(k_max_filter_list),
                    {{"field", field}, {"limit", k_max_filter_list}});
      }
      auto& out = std::string_view(field) == "streams" ? filter.streams : filter.projects;
      for (const auto& v : list) out.push_back(v.get<std::string>());
      // Duplicates are collapsed: each stream or project is followed once.
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
    }
    return {};
  }

  /// `{"op":"subscribe","id","streams"?:[..],"projects"?:[..],"after"?:P}`.
  void subscribe(const json& m, const json& id) {
    if (!id.is_string() && !id.is_number_integer()) {
      return reply_error(nullptr, error{errc::invalid_argument, "subscribe needs an \"id\" (string or integer)"});
    }
    ports::subscription sub;
    sub.id = dump(id);
    if (auto ok = read_filter(m, sub.filter); !ok) return reply_error(id, ok.error());
    const auto entries = sub.filter.streams.size() + sub.filter.projects.size();
    if (entries == 0 || entries > k_max_filter_entries) {
      return reply_error(id, error{errc::invalid_argument,
                                   "give 1-" + std::to_string(k_max_filter_entries) + " distinct streams or projects",
                                   {{"limit", k_max_filter_entries}}});
    }
    const auto head = rt_->events.head_position();
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
      if (!valid_id(stream) ||
          (stream.find('-') == std::string::npos && stream != security_stream && stream != admin_stream)) {
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
      if (!project_facts(rt_->facts.projects, *p, project).view) {
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
    if (!rt_->presence->add_subscription(user_id_)) {
      return reply_limited(id, "too many subscriptions for this user (over all their connections)",
                           {{"limit", k_max_subscriptions_per_user}});
    }
    {
      std::lock_guard lock(mu_);
      if (slow_ || closed_) {
        // Cut or closed meanwhile (the hub's thread): nothing to subscribe any more.
        rt_->presence->remove_subscriptions(user_id_, 1);
        return;
      }
      const auto slot = next_slot();
      subs_.emplace(sub.id, sub_info{slot, sub.after, event_head(sub.id)});
      slot_ids_[slot] = sub.id;
    }
    // The result is queued before the hub can queue the first event.
    send_now(
        json{{"op", "result"}, {"id", id}, {"ok", true}, {"subscription", id}, {"after", sub.after}, {"head", head}});
    rt_->hub.subscribe(shared_from_this(), std::move(sub));
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
    rt_->hub.unsubscribe(shared_from_this(), dump(id));
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
    // A replayed idempotent answer comes as text (as stored); every other as JSON.
    auto answer = [weak, id](unsigned status, json body, const header_list& headers) {
      auto self = weak.lock();
      if (!self) return;
      self->in_flight_.fetch_sub(1);
      json out{{"op", "result"}, {"id", id}, {"ok", status < 400}, {"status", status}, {"body", std::move(body)}};
      for (const auto& [k, v] : headers) {
        if (k == "X-Atrium-Position") {
          std::uint64_t position = 0;
          if (std::from_chars(v.data(), v.data() + v.size(), position).ec == std::errc{}) out["position"] = position;
        }
        if (k == "ETag") out["etag"] = v;
      }
      self->send_now(out);
    };
    rt_->run_command(
        std::move(req),
        [answer](http_response resp) {
          json body;
          if (resp.body.empty()) {
            body = nullptr;
          } else if (auto parsed = parse_json(resp.body)) {
            body = std::move(*parsed);
          } else {
            body = resp.body;
          }
          answer(resp.status, std::move(body), resp.headers);
        },
        [answer](unsigned status, const json& body, const header_list& headers) { answer(status, body, headers); });
  }

  /// `{"op":"presence","project","state"}`: relayed to the project's other sessions.
  void presence(const json& m, const json& id) {
    if (!m.contains("project") || !m["project"].is_string()) {
      return reply_error(id, error{errc::invalid_argument, "presence needs a \"project\""});
    }
    const auto project = m["project"].get<std::string>();
    if (m.contains("state") && m["state"].is_null()) return leave(project, id);
    json state = m.contains("state") ? m["state"] : json::object();
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
    if (!decision.allowed || !project_facts(rt_->facts.projects, *p, project).view) {
      return reply_error(id, decision.allowed ? error{errc::not_found, "no such project"} : decision.as_error());
    }
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      presence_.insert(project);
    }
    auto sessions = rt_->presence->update(project, session_id_, user_id_, std::move(state),
                                          std::weak_ptr<presence_peer>(shared_from_this()));
    if (!id.is_null()) {
      send_now(json{{"op", "result"}, {"id", id}, {"ok", true}, {"session", session_id_}, {"sessions", sessions}});
    }
  }

  /// `{"op":"presence","project","state":null}`: this session leaves `project`'s board; the
  /// others get `"gone":true`. Leaving a project it never announced itself in changes nothing.
  void leave(const std::string& project, const json& id) {
    bool was_there = false;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      was_there = presence_.erase(project) > 0;
    }
    json sessions = json::array();
    if (was_there) sessions = rt_->presence->update(project, session_id_, user_id_, nullptr, {});
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

}  // namespace

push_callbacks open_websocket(const std::shared_ptr<realtime_context>& rt, const std::shared_ptr<push_channel>& ch,
                              const std::string& user_id, const std::string& token, const std::string& user_agent,
                              std::shared_ptr<connection_slot> slot) {
  auto conn = std::make_shared<ws_connection>(rt, user_id, token, user_agent, std::move(slot));
  conn->attach(ch);
  return push_callbacks{[conn](std::string text) { conn->on_message(text); }, [conn] { conn->on_close(); },
                        [conn] { conn->on_stalled(); }};
}

}  // namespace atrium::http_adapter
