// The HTTP API: the audit log, the event log and streams.
#include "adapters/http/api_internal.hpp"

#include "events/security/security_events.hpp"
#include "events/connection/connection_decider.hpp"
#include "projections/read_model.hpp"

namespace atrium::http_adapter {

void api::impl::audit(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  const auto order = c->query.contains("order") ? c->query["order"] : std::string("asc");
  if (order != "asc" && order != "desc") {
    return send_error(c, error{errc::invalid_argument, "order must be asc or desc", {{"parameter", "order"}}});
  }
  const bool desc = order == "desc";
  std::string cursor;
  const char* cursor_name = desc ? "before" : "after";
  if (auto it = c->query.find(cursor_name); it != c->query.end()) {
    auto v = parse_u64(it->second, cursor_name);
    if (!v) return send_error(c, v.error());
    cursor = position_key(*v);
  }
  auto filter = [&](const char* key) -> std::optional<std::string> {
    auto it = c->query.find(key);
    return it == c->query.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  const auto actor = filter("actor"), stream_f = filter("stream"), type = filter("type");
  json entries = json::array();
  std::size_t examined = 0;
  bool exhausted = false;
  std::uint64_t last_position = 0;
  while (entries.size() < *limit && examined < k_max_audit_scan) {
    auto rows = d.read_models.scan("audit", "entries", "", cursor,
                                   std::min<std::size_t>(500, k_max_audit_scan - examined), desc);
    if (!rows) return send_error(c, rows.error());
    if (rows->empty()) {
      exhausted = true;
      break;
    }
    for (const auto& r : *rows) {
      ++examined;
      cursor = r.key;
      last_position = r.value.value("position", std::uint64_t{0});
      const auto& v = r.value;
      if ((actor && v.value("actor", "") != *actor && v.value("actor", "") != "user-" + *actor) ||
          (stream_f && v.value("stream", "") != *stream_f) || (type && v.value("type", "") != *type)) {
        continue;
      }
      entries.push_back(v);
      if (entries.size() == *limit) break;
    }
  }
  json next = exhausted || last_position == 0 ? json(nullptr) : json(last_position);
  send(c, 200, json{{"entries", entries}, {"next", next}, {"order", order}});
}

/// GET /v1/audit/verify: recomputes the hash chain on the blocking pool (it reads the
/// whole log) and answers `{"ok","count","last_hash"}` or, broken, also
/// `{"broken_at","reason"}` — 200 either way: the check itself succeeded.
void api::impl::verify_chain(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  boost::asio::post(hashing, [self = shared_from_this(), c] {
    auto report = self->d.events.verify_chain();
    if (!report) return send_error(c, report.error());
    json out{{"ok", report->ok}, {"count", report->count}, {"last_hash", report->last_hash}};
    if (!report->ok) {
      out["broken_at"] = report->broken_at;
      out["reason"] = report->reason;
    }
    send(c, 200, out);
  });
}

void api::impl::events(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::events_read, {}, "events")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  std::uint64_t after = 0;
  if (auto it = c->query.find("after"); it != c->query.end()) {
    auto v = parse_u64(it->second, "after");
    if (!v) return send_error(c, v.error());
    after = *v;
  }
  auto page = d.events.read_all(after, *limit);
  if (!page) return send_error(c, page.error());
  json out = json::array();
  for (const auto& e : *page) out.push_back(to_public_json(e));
  send(c, 200,
       json{{"events", out},
            {"next", page->empty() ? json(after) : json(page->back().position)},
            {"head", d.events.head_position()}});
}

std::pair<access::operation, access::facts> api::impl::stream_access(const principal& p,
                                                                     const std::string& stream_id) const {
  using access::operation;
  const auto dash = stream_id.find('-');
  const auto entity = dash == std::string::npos ? stream_id : stream_id.substr(0, dash);
  const auto id = dash == std::string::npos ? std::string() : stream_id.substr(dash + 1);
  if (entity == "user" && id == p.user_id) return {operation::user_read, {.self = true}};
  if (entity == "project") return {operation::project_read, {.role = project_facts(p, id).role}};
  if (entity == "group") {
    const auto g = group_facts(p, id);
    return {operation::group_read, {.group_member = g.member, .group_manager = g.manager}};
  }
  if (entity == "connection") {
    const auto role = connection_facts(p, id).role;
    return {operation::connection_read,
            {.connection_user = role.has_value(), .connection_owner = role == connection_role::owner}};
  }
  if (entity == "job") {
    const auto j = job_facts(p, id);
    return {operation::job_read, {.role = j.role, .self = j.self}};
  }
  if (entity == "container") return {operation::container_read, {}};
  return {operation::events_read, {}};  // other users' streams, `security`, username claims
}

void api::impl::stream(const call_ptr& c, const principal& p, const std::string& stream_id) {
  const auto dash = stream_id.find('-');
  const bool unowned = stream_id == security_stream;  // readable by admins and auditors only
  if ((dash == std::string::npos && !unowned) || !valid_id(stream_id)) {
    return send_error(c, error{errc::not_found, "no such stream"});
  }
  const auto [op, facts] = stream_access(p, stream_id);
  if (!allowed(c, p, op, facts, stream_id)) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  std::uint64_t from = 1;
  if (auto it = c->query.find("from_version"); it != c->query.end()) {
    auto v = parse_u64(it->second, "from_version");
    if (!v) return send_error(c, v.error());
    from = *v;
  }
  auto page = d.events.read_stream(stream_id, from, *limit);
  if (!page) return send_error(c, page.error());
  if (page->empty() && from <= 1) return send_error(c, error{errc::not_found, "no such stream"});
  json out = json::array();
  for (const auto& e : *page) out.push_back(to_public_json(e));
  json next = page->size() == *limit ? json(page->back().version + 1) : json(nullptr);
  send(c, 200, json{{"stream", stream_id}, {"events", out}, {"next", next}});
}

}  // namespace atrium::http_adapter
