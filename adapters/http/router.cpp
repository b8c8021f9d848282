// The declarative route table.
#include "adapters/http/router.hpp"

#include <algorithm>

namespace atrium::http_adapter {

route& route_table::add(route r) {
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
  return routes_.back().r;
}

route_table::match route_table::find(std::string_view method, const std::vector<std::string>& path) const {
  if (method == "HEAD") method = "GET";
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

std::vector<std::string> route_table::match::allowed() const {
  std::vector<std::string> out;
  auto add = [&](const std::string& m) {
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  };
  bool get = false;
  for (const auto* r : at_path) {
    add(r->method);
    get = get || r->method == "GET";
  }
  if (get) add("HEAD");
  add("OPTIONS");
  return out;
}

std::string route_table::match::allow() const {
  std::string out;
  for (const auto& m : allowed()) out += (out.empty() ? "" : ", ") + m;
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
  json allowed = m.allowed();
  send(c, 405,
       json{{"error",
             {{"code", "method_not_allowed"},
              {"message", "method not allowed"},
              {"details", {{"method", c->req.method}, {"allowed", allowed}}}}}},
       {{"Allow", m.allow()}});
}

std::vector<std::string> unknown_query(const call& c, const route& r) {
  std::vector<std::string> out;
  for (const auto& [name, value] : c.query) {
    if (r.access == route_access::push && name == "token") continue;
    if (std::find(r.query.begin(), r.query.end(), name) != r.query.end()) continue;
    out.push_back(name);
  }
  return out;
}

json routes_json(const route_table& t) {
  json out = json::array();
  for (const auto* r : t.all()) {
    const char* access = r->access == route_access::open   ? "open"
                         : r->access == route_access::push ? "push"
                                                           : "authenticated";
    json query = r->query;
    if (r->access == route_access::push) query.push_back("token");
    out.push_back({{"method", r->method}, {"pattern", r->pattern}, {"access", access}, {"query", query}});
  }
  return out;
}

}  // namespace atrium::http_adapter
