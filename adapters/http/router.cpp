// The declarative route table.
#include "adapters/http/router.hpp"

namespace atrium::http_adapter {

void route_table::add(route r) {
  entry e{std::move(r), {}};
  std::string_view pattern = e.r.pattern;
  while (!pattern.empty()) {
    pattern.remove_prefix(1);  // the '/'
    const auto end = pattern.find('/');
    const auto seg = pattern.substr(0, end);
    e.segments.emplace_back(seg.starts_with('{') ? std::string() : std::string(seg));
    pattern = end == std::string_view::npos ? std::string_view() : pattern.substr(end);
  }
  routes_.push_back(std::move(e));
}

route_table::match route_table::find(std::string_view method, const std::vector<std::string>& path) const {
  match m;
  for (const auto& e : routes_) {
    if (e.segments.size() != path.size()) continue;
    route_params params;
    bool same = true;
    for (std::size_t i = 0; i < path.size() && same; ++i) {
      if (e.segments[i].empty()) {
        params.push_back(path[i]);
      } else {
        same = e.segments[i] == path[i];
      }
    }
    if (!same) continue;
    m.at_path.push_back(&e.r);
    if (!m.found && e.r.method == method) {
      m.found = &e.r;
      m.params = std::move(params);
    }
  }
  return m;
}

std::string route_table::match::allow() const {
  std::string out;
  for (const auto* r : at_path) {
    if (out.find(r->method) != std::string::npos) continue;
    out += (out.empty() ? "" : ", ") + r->method;
  }
  return out;
}

bool route_table::match::open() const {
  return !at_path.empty() &&
         std::all_of(at_path.begin(), at_path.end(), [](const route* r) { return r->access == route_access::open; });
}

bool route_table::match::push() const {
  return std::any_of(at_path.begin(), at_path.end(), [](const route* r) { return r->access == route_access::push; });
}

void send_method_not_allowed(const call_ptr& c, const route_table::match& m) {
  json allowed = json::array();
  for (const auto* r : m.at_path) allowed.push_back(r->method);
  send(c, 405,
       json{{"error",
             {{"code", "method_not_allowed"},
              {"message", "method not allowed"},
              {"details", {{"method", c->req.method}, {"allowed", allowed}}}}}},
       {{"Allow", m.allow()}});
}

}  // namespace atrium::http_adapter
