// The HTTP API: time travel (`?as_of=`), entities folded from their events as they were.
#include "adapters/http/api_internal.hpp"

#include "projections/history.hpp"

namespace atrium::http_adapter {

result<api::impl::as_of_bound> api::impl::parse_as_of(const call& c) const {
  as_of_bound bound;
  auto it = c.query.find("as_of");
  if (it == c.query.end()) return bound;
  bound.given = true;
  const auto& raw = it->second;
  if (!raw.empty() && std::all_of(raw.begin(), raw.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
    auto v = parse_u64(raw, "as_of");
    if (!v) return std::unexpected(v.error());
    bound.position = *v;
    return bound;
  }
  auto t = normalize_rfc3339(raw);
  if (!t) {
    return fail(errc::invalid_argument, "as_of must be a position or an RFC 3339 time", {{"parameter", "as_of"}});
  }
  bound.time = *t;
  return bound;
}

result<std::vector<envelope>> api::impl::events_until(const std::string& stream, const as_of_bound& bound) const {
  std::vector<envelope> out;
  for (std::uint64_t from = 1;;) {
    auto page = d.events.read_stream(stream, from, k_max_limit);
    if (!page) return std::unexpected(page.error());
    for (auto& e : *page) {
      if (bound.position && e.position > *bound.position) return out;
      if (bound.time && e.time > *bound.time) return out;
      out.push_back(std::move(e));
    }
    if (page->size() < k_max_limit) return out;
    from = out.back().version + 1;
  }
}

bool api::impl::answer_as_of(const call_ptr& c, const std::string& stream, const std::function<json(json)>& shape) {
  auto bound = parse_as_of(*c);
  if (!bound) {
    send_error(c, bound.error());
    return true;
  }
  if (!bound->given) return false;
  auto events = events_until(stream, *bound);
  if (!events) {
    send_error(c, events.error());
    return true;
  }
  auto view = fold_view(stream, *events);
  if (!view) {
    send_error(c, view.error());
    return true;
  }
  if (!*view) {
    send_error(c, error{errc::not_found, "it did not exist then", {{"as_of", c->query["as_of"]}}});
    return true;
  }
  auto body = shape ? shape(std::move(**view)) : std::move(**view);
  const auto version = body.value("version", std::uint64_t{0});
  body["as_of"] = {{"position", events->back().position}, {"time", events->back().time}};
  send(c, 200, body, {{"ETag", etag(version)}});
  return true;
}

}  // namespace atrium::http_adapter
