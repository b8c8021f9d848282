// The log and its streams: `GET /v1/events`, `GET /v1/streams/{stream}`, the project
// feeds `GET /v1/projects/{id}/events[/stream]`, and the push transports
// `GET /v1/events/stream` (Server-Sent Events) and `GET /v1/ws` (the upgrade; the
// connection itself is ws_connection.cpp).
#include "adapters/http/event_filter.hpp"
#include "adapters/http/realtime.hpp"
#include "events/admin/admin_events.hpp"
#include "events/security/security_events.hpp"

namespace atrium::http_adapter {
namespace {

/// One SSE connection (`GET /v1/events/stream`, `GET /v1/projects/{id}/events/stream`):
/// what its hub subscription selects, narrowed by its filter, as Server-Sent Events. Each
/// queued event is tagged with its position, so that a cut resumes before the first one
/// it dropped.
class sse_connection final : public push_subscriber {
 public:
  sse_connection(std::shared_ptr<realtime_context> rt, std::string user_id, std::uint64_t after, event_filter filter,
                 sse_event_names names)
      : push_subscriber(std::move(rt), std::move(user_id)), filter_(std::move(filter)), names_(names), given_(after) {}

  bool deliver(const std::string&, const envelope& e, const std::shared_ptr<const std::string>& event_json) override {
    if (!filter_.matches(e)) return true;  // filtered out: nothing queued, the connection goes on
    // `id: P\nevent: TYPE\ndata: ` (or `id: P\ndata: ` with `event_names=message`) + the
    // event + a blank line; the event's head is built once per event and naming for every
    // stream it goes to (the hub calls from one thread, in position order), the event's
    // text is the hub's.
    static const auto tail = std::make_shared<const std::string>("\n\n");
    thread_local std::pair<std::uint64_t, std::shared_ptr<const std::string>> heads[2];
    const bool typed = names_ == sse_event_names::type;
    auto& head = heads[typed ? 0 : 1];
    if (!head.second || head.first != e.position) {
      head = {e.position,
              std::make_shared<const std::string>("id: " + std::to_string(e.position) +
                                                  (typed ? "\nevent: " + e.type + "\ndata: " : "\ndata: "))};
    }
    std::lock_guard lock(mu_);
    const auto q = push(push_message{{head.second, event_json, tail}}, e.position);
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

  event_filter filter_;
  sse_event_names names_;
  std::mutex mu_;
  std::uint64_t given_;  // the last position queued (or the start)
};

/// Whether events belong to one project (the project feeds): its own stream
/// `project-<id>` (cells included), and the streams of its jobs and schedules, whose
/// first event (`job.submitted`, `schedule.created`) names the project. Each stream is
/// looked up once (a page holds a few distinct streams).
class project_streams {
 public:
  project_streams(const ports::event_store& store, std::string project)
      : store_(store), own_("project-" + project), project_(std::move(project)) {}

  [[nodiscard]] bool owns(const envelope& e) {
    if (e.stream == own_) return true;
    const bool job = e.stream.starts_with("job-");
    if (!job && !e.stream.starts_with("schedule-")) return false;
    if (auto it = known_.find(e.stream); it != known_.end()) return it->second;
    const auto* first = job ? "job.submitted" : "schedule.created";
    const auto names_project = [&](const envelope& f) {
      return f.type == first && f.data.is_object() && f.data.value("project_id", json()) == json(project_);
    };
    bool owned = false;
    if (e.type == first) {
      owned = names_project(e);
    } else if (auto head = store_.read_stream(e.stream, 1, 1); head && !head->empty()) {
      owned = names_project(head->front());
    }
    if (known_.size() < 100000) known_.emplace(e.stream, owned);
    return owned;
  }

 private:
  const ports::event_store& store_;
  std::string own_;
  std::string project_;
  std::unordered_map<std::string, bool> known_;
};

/// One page of a feed.
struct feed_page {
  std::vector<envelope> events;  ///< the events kept, in position order
  std::uint64_t next = 0;        ///< the last position examined (kept or not): the next page's `after`
};

/// Up to `limit` events after `after` that `keep` keeps, examining at most
/// `k_max_scan_per_page` events of the log (without `keep`: the next `limit` events).
/// Errors: the store's.
result<feed_page> read_feed(const ports::event_store& store, std::uint64_t after, std::size_t limit,
                            const std::function<bool(const envelope&)>& keep) {
  feed_page out{{}, after};
  if (!keep) {
    auto page = store.read_all(after, limit);
    if (!page) return std::unexpected(page.error());
    if (!page->empty()) out.next = page->back().position;
    out.events = std::move(*page);
    return out;
  }
  std::size_t scanned = 0;
  while (out.events.size() < limit && scanned < k_max_scan_per_page) {
    auto page = store.read_all(out.next, std::min<std::size_t>(1000, k_max_scan_per_page - scanned));
    if (!page) return std::unexpected(page.error());
    if (page->empty()) break;
    for (auto& e : *page) {
      ++scanned;
      out.next = e.position;
      if (keep(e)) {
        out.events.push_back(std::move(e));
        if (out.events.size() == limit) break;
      }
    }
  }
  return out;
}

/// `?after=` of a log read (0 when absent).
result<std::uint64_t> parse_after(const call& c) {
  if (auto it = c.query.find("after"); it != c.query.end()) return parse_u64(it->second, "after");
  return std::uint64_t{0};
}

}  // namespace

void events_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  // API tokens with `events:read` reach these (WebSocket commands are requests of their own, gated alike).
  constexpr auto reads = access::route_class::event_read;
  t.add({"GET", "/v1/events", [self](auto& c, auto& p, auto&) { self->events(c, p); }, route_access::authenticated,
         reads})
      .query = {"limit", "after", "types", "streams"};
  t.add({"GET", "/v1/streams/{stream}", [self](auto& c, auto& p, auto& a) { self->stream(c, p, a[0]); },
         route_access::authenticated, reads})
      .query = {"limit", "from_version", "as_of"};
  t.add({"GET", "/v1/events/stream", [self](auto& c, auto& p, auto&) { self->event_stream(c, p); }, route_access::push,
         reads})
      .query = {"after", "types", "streams", "event_names"};
  t.add({"GET", "/v1/ws", [self](auto& c, auto& p, auto&) { self->websocket(c, p); }, route_access::push, reads});
  // A project's events, for whoever may read the project (the decision of GET /v1/projects/{id}).
  t.add({"GET", "/v1/projects/{id}/events", [self](auto& c, auto& p, auto& a) { self->project_events(c, p, a[0]); },
         route_access::authenticated, reads})
      .query = {"limit", "after", "types", "streams"};
  t.add({"GET", "/v1/projects/{id}/events/stream",
         [self](auto& c, auto& p, auto& a) { self->project_event_stream(c, p, a[0]); }, route_access::push, reads})
      .query = {"after", "types", "streams", "event_names"};
}

void events_controller::events(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::events_read, {}, "events")) return;
  answer_feed(c, std::nullopt);
}

void events_controller::project_events(const call_ptr& c, const principal& p, const std::string& project) {
  if (!guard_project(*d_.kit, d_.realtime->facts.projects, c, p, access::operation::project_read, project)) return;
  answer_feed(c, project);
}

void events_controller::answer_feed(const call_ptr& c, const std::optional<std::string>& project) {
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  auto after = parse_after(*c);
  if (!after) return send_error(c, after.error());
  auto filter = parse_event_filter(c->query);
  if (!filter) return send_error(c, filter.error());
  std::function<bool(const envelope&)> keep;
  if (project) {
    auto owner = std::make_shared<project_streams>(d_.events, *project);
    keep = [owner, f = std::move(*filter)](const envelope& e) { return f.matches(e) && owner->owns(e); };
  } else if (!filter->empty()) {
    keep = [f = std::move(*filter)](const envelope& e) { return f.matches(e); };
  }
  // The head first: a page never ends past it, so `next == head` means the end was read.
  const auto head = d_.events.head_position();
  auto page = read_feed(d_.events, *after, *limit, keep);
  if (!page) return send_error(c, page.error());
  json out = json::array();
  for (const auto& e : page->events) out.push_back(to_public_json(e));
  send(c, 200, json{{"events", out}, {"next", page->next}, {"head", std::max(head, page->next)}});
}

void events_controller::stream(const call_ptr& c, const principal& p, const std::string& stream_id) {
  const auto dash = stream_id.find('-');
  // readable by admins and auditors only
  const bool unowned = stream_id == security_stream || stream_id == admin_stream;
  if ((dash == std::string::npos && !unowned) || !valid_id(stream_id)) {
    return send_error(c, error{errc::not_found, "no such stream"});
  }
  const auto [op, facts] = stream_access(d_.realtime->facts, p, stream_id);
  if (!d_.kit->allowed(c, p, op, facts, stream_id)) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  std::uint64_t from = 1;
  if (auto it = c->query.find("from_version"); it != c->query.end()) {
    auto v = parse_u64(it->second, "from_version");
    if (!v) return send_error(c, v.error());
    from = *v;
  }
  // `as_of`: the stream as it was then, i.e. only the events committed by that position
  // or time (the pages end where the bound does).
  auto parsed = controller_kit::parse_as_of(*c);
  if (!parsed) return send_error(c, parsed.error());
  const auto bound = parsed->value_or(ports::as_of_bound{});
  auto page = d_.events.read_stream(stream_id, from, *limit);
  if (!page) return send_error(c, page.error());
  const auto full_page = page->size() == *limit;
  const auto within = [&](const envelope& e) {
    return !(bound.position && e.position > *bound.position) && !(bound.time && e.time > *bound.time);
  };
  const auto end = std::find_if_not(page->begin(), page->end(), within);
  const bool cut = end != page->end();
  page->erase(end, page->end());
  if (page->empty() && from <= 1) return send_error(c, error{errc::not_found, "no such stream"});
  json out = json::array();
  for (const auto& e : *page) out.push_back(to_public_json(e));
  json next = full_page && !cut ? json(page->back().version + 1) : json(nullptr);
  send(c, 200, json{{"stream", stream_id}, {"events", out}, {"next", next}});
}

void events_controller::websocket(const call_ptr& c, const principal& p) {
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
  if (!d_.realtime->presence->add_connection(p.user_id)) {
    spdlog::info("http method=GET path=/v1/ws status=429 user={} request_id={} limit={}", c->who, c->correlation_id,
                 k_max_connections_per_user);
    return send(c, 429,
                json{{"error",
                      {{"code", "too_many_requests"},
                       {"message", "too many WebSocket connections for this user; close one and retry"},
                       {"details", {{"limit", k_max_connections_per_user}}}}}},
                {{"Retry-After", std::to_string(k_retry_after_seconds)}});
  }
  auto slot = std::make_shared<connection_slot>(d_.realtime->presence, p.user_id);
  const auto token = bearer_token(c->req.header("authorization")).value_or("");
  spdlog::info("http method=GET path=/v1/ws status=101 user={} request_id={}", c->who, c->correlation_id);
  http_response resp{101, "", "", {}};
  resp.open = [rt = d_.realtime, user = p.user_id, token, agent = c->req.header("user-agent"),
               slot](std::shared_ptr<push_channel> ch) {
    return http_metrics::counted(open_websocket(rt, ch, user, token, agent, slot), rt->metrics,
                                 &http_metrics::websockets);
  };
  c->respond(std::move(resp));
}
void events_controller::event_stream(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::events_read, {}, "events")) return;
  open_feed(c, p, std::nullopt);
}

void events_controller::project_event_stream(const call_ptr& c, const principal& p, const std::string& project) {
  if (!guard_project(*d_.kit, d_.realtime->facts.projects, c, p, access::operation::project_read, project)) return;
  open_feed(c, p, project);
}

void events_controller::open_feed(const call_ptr& c, const principal& p, const std::optional<std::string>& project) {
  auto filter = parse_event_filter(c->query);
  if (!filter) return send_error(c, filter.error());
  auto names = parse_event_names(c->query);
  if (!names) return send_error(c, names.error());
  const auto head = d_.events.head_position();
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
  spdlog::info("http method=GET path={} status=200 user={} request_id={} after={}",
               project ? "/v1/projects/" + *project + "/events/stream" : std::string("/v1/events/stream"), c->who,
               c->correlation_id, after);
  http_response resp{200, "", "text/event-stream", {{"X-Request-Id", c->correlation_id}, {"X-Accel-Buffering", "no"}}};
  // The whole log, or the project's streams (the hub re-checks the project's access
  // after every event that may take it away, and ends the stream when it is gone).
  ports::subscription_filter selects{.all = true};
  if (project) selects = ports::subscription_filter{.projects = {*project}};
  resp.open = [rt = d_.realtime, user = p.user_id, after, selects, f = std::move(*filter),
               n = *names](std::shared_ptr<push_channel> ch) {
    auto conn = std::make_shared<sse_connection>(rt, user, after, f, n);
    conn->attach(ch);
    rt->hub.subscribe(conn, ports::subscription{"\"events\"", selects, after});
    // A stalled stream is cut with the last position queued; the hub lets go of it.
    push_callbacks cb{nullptr, [rt, conn] { rt->hub.drop(conn); },
                      [rt, conn] {
                        conn->slow_consumer(0);
                        rt->hub.drop(conn);
                      }};
    return http_metrics::counted(std::move(cb), rt->metrics, &http_metrics::sse_streams);
  };
  c->respond(std::move(resp));
}
}  // namespace atrium::http_adapter
