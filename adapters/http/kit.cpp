// What every controller shares: the policy gate, finishing commands, time travel.
#include "adapters/http/kit.hpp"

#include "events/security/security_events.hpp"

namespace atrium::http_adapter {

bool controller_kit::allowed(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
                             const std::string& resource) {
  c->operation = std::string(access::to_string(op));
  c->resource = resource;
  const auto decision = access::authorize(p, op, f);
  if (decision.allowed) return true;
  deny(c, decision.as_error(), decision.reason);
  return false;
}

bool controller_kit::admitted(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
                              const std::string& resource, bool exists, const char* missing) {
  if (!allowed(c, p, op, f, resource)) return false;
  if (!exists) send_error(c, error{errc::not_found, missing});
  return exists;
}

void controller_kit::deny(const call_ptr& c, const error& e, const std::string& reason) {
  auto ev = make_event(
      security_access_denied{c->user_id, c->operation, c->resource, reason, http_status(e.code), c->req.remote});
  ev.actor = c->user_id.empty() ? "anonymous" : "user-" + c->user_id;
  ev.correlation_id = c->correlation_id;
  ev.metadata = request_metadata(c->req);
  record_security(std::move(ev), [c, e] { send_error(c, e); });
}

void controller_kit::record_security(proposed_event e, std::function<void()> then) {
  record_unowned(security_stream, std::move(e), std::move(then));
}

void controller_kit::record_unowned(std::string_view stream, proposed_event e, std::function<void()> then) {
  commands_.record(std::string(stream), std::move(e),
                   [self = shared_from_this(), then = std::move(then)](result<std::uint64_t> r) {
                     if (!r) {
                       spdlog::error("event not recorded: {}", r.error().message);
                       return then();
                     }
                     // Read-your-writes: an audit read after this answer includes the event.
                     self->commands_.await_projections(*r, then);
                   });
}

ports::command_context controller_kit::context(const call& c, const principal& p,
                                               std::optional<std::uint64_t> expected) {
  return ports::command_context{p, c.correlation_id, expected, c.command_id, request_metadata(c.req)};
}

ports::completion controller_kit::finish(const call_ptr& c, unsigned status, view_shape shape) {
  auto shaped = [shape = std::move(shape)](json view) { return shape ? shape(std::move(view)) : view; };
  return [self = shared_from_this(), c, status, shaped](result<ports::command_outcome> r) {
    if (!r && r.error().code == errc::forbidden) return self->deny(c, r.error(), r.error().message);
    if (!r) return send_error(c, r.error());
    if (r->events.empty()) return send(c, status, shaped(r->view), {{"ETag", etag(r->version)}});
    const auto stream = r->events.front().stream;
    std::uint64_t version = 0;
    for (const auto& e : r->events) {
      if (e.stream == stream) version = e.version;
    }
    const bool replayed = r->version == 0;
    // X-Atrium-Position: the log position of the command's last event, from which a
    // subscription sees everything the command caused (WebSocket results carry it).
    auto answer = [self, c, status, shaped, stream, version, replayed, view = r->view, position = r->position] {
      const auto at = std::to_string(position);
      if (auto row = self->current(stream)) {
        const auto v = row->value("version", std::uint64_t{0});
        if (v == version || replayed) {
          return send(c, status, shaped(std::move(*row)), {{"ETag", etag(v)}, {"X-Atrium-Position", at}});
        }
      }
      send(c, status, shaped(view), {{"ETag", etag(version)}, {"X-Atrium-Position", at}});
    };
    self->commands_.await_projections(r->position, answer);
  };
}

result<std::optional<ports::as_of_bound>> controller_kit::parse_as_of(const call& c) {
  auto it = c.query.find("as_of");
  if (it == c.query.end()) return std::optional<ports::as_of_bound>{};
  ports::as_of_bound bound;
  const auto& raw = it->second;
  if (!raw.empty() && std::all_of(raw.begin(), raw.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
    auto v = parse_u64(raw, "as_of");
    if (!v) return std::unexpected(v.error());
    bound.position = *v;
    return std::optional<ports::as_of_bound>{bound};
  }
  auto t = normalize_rfc3339(raw);
  if (!t) {
    return fail(errc::invalid_argument, "as_of must be a position or an RFC 3339 time", {{"parameter", "as_of"}});
  }
  bound.time = *t;
  return std::optional<ports::as_of_bound>{bound};
}

bool controller_kit::answer_as_of(const call_ptr& c, const std::string& stream, const view_shape& shape) {
  auto bound = parse_as_of(*c);
  if (!bound) {
    send_error(c, bound.error());
    return true;
  }
  if (!*bound) return false;
  auto then = entities_.as_of(stream, **bound);
  if (!then) {
    send_error(c, then.error());
    return true;
  }
  if (!*then) {
    send_error(c, error{errc::not_found, "it did not exist then", {{"as_of", c->query["as_of"]}}});
    return true;
  }
  auto body = shape ? shape(std::move((*then)->view)) : std::move((*then)->view);
  const auto version = body.value("version", std::uint64_t{0});
  body["as_of"] = {{"position", (*then)->position}, {"time", (*then)->time}};
  send(c, 200, body, {{"ETag", etag(version)}});
  return true;
}

void answer_get(controller_kit& kit, const call_ptr& c, const principal& p, access::operation op,
                const access::facts& facts, const std::string& stream, const std::optional<json>& view,
                const char* missing, const controller_kit::view_shape& shape) {
  if (!kit.admitted(c, p, op, facts, stream, view.has_value(), missing)) return;
  if (kit.answer_as_of(c, stream, shape)) return;
  send(c, 200, shape ? shape(*view) : *view, {{"ETag", etag(view->value("version", std::uint64_t{0}))}});
}

void answer_list(controller_kit& kit, const call_ptr& c, const principal& p, std::optional<access::operation> op,
                 const char* name, const std::function<result<ports::page>(const ports::page_request&)>& read) {
  if (op && !kit.allowed(c, p, *op, {}, name)) return;
  auto at = parse_page(*c);
  if (!at) return send_error(c, at.error());
  auto page = read(*at);
  if (!page) return send_error(c, page.error());
  send_page(c, name, *page);
}

}  // namespace atrium::http_adapter
