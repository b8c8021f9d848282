// Containers (admins'): declare, list, read, start, stop, remove, change the spec, logs.
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "adapters/http/controllers/controllers.hpp"
#include "events/container/container_spec_json.hpp"

namespace atrium::http_adapter {
namespace {

/// The spec members of a request body (POST: a declaration; PATCH: the members to change).
struct spec_body {
  std::optional<std::string> image;
  std::optional<std::vector<std::string>> command;
  std::optional<std::map<std::string, std::string>> env;
  std::optional<std::vector<int>> ports;
  std::optional<std::string> runtime;
  std::optional<container_limits_spec> limits;
  std::optional<std::string> restart;
  std::optional<std::optional<container_health_spec>> health;
};

std::unexpected<error> bad(std::string message, const char* field) {
  return fail(errc::invalid_argument, std::move(message), {{"field", field}});
}

/// Reads the spec members of `body` (only the documented shapes: nlohmann would also read
/// an object as an array of its values, or an array of pairs as a map).
result<spec_body> parse_spec(const json& body) {
  spec_body out;
  const auto present = [&](const char* key) -> const json* {
    auto it = body.find(key);
    return it == body.end() ? nullptr : &*it;
  };
  if (const auto* v = present("image"); v && !v->is_null()) {
    if (!v->is_string()) return bad("image must be a string", "image");
    out.image = v->get<std::string>();
  }
  if (const auto* v = present("command"); v && !v->is_null()) {
    if (!v->is_array()) return bad("command must be an array of strings", "command");
    std::vector<std::string> argv;
    for (const auto& a : *v) {
      if (!a.is_string()) return bad("command must be an array of strings", "command");
      argv.push_back(a.get<std::string>());
    }
    out.command = std::move(argv);
  }
  if (const auto* v = present("env"); v && !v->is_null()) {
    if (!v->is_object()) return bad("env must be an object of strings", "env");
    std::map<std::string, std::string> env;
    for (const auto& [k, val] : v->items()) {
      if (!val.is_string()) return bad("env must be an object of strings", "env");
      env[k] = val.get<std::string>();
    }
    out.env = std::move(env);
  }
  if (const auto* v = present("ports"); v && !v->is_null()) {
    if (!v->is_array()) return bad("ports must be an array of integers 1-65535", "ports");
    std::vector<int> ports;
    for (const auto& port : *v) {
      if (!port.is_number_integer() || port.get<std::int64_t>() < 0 || port.get<std::int64_t>() > 65535) {
        return bad("ports must be integers 1-65535", "ports");
      }
      ports.push_back(port.get<int>());
    }
    out.ports = std::move(ports);
  }
  if (const auto* v = present("runtime"); v && !v->is_null()) {
    if (!v->is_string()) return bad("runtime must be process or docker", "runtime");
    out.runtime = v->get<std::string>();
  }
  if (const auto* v = present("limits")) {
    auto l = limits_from_api(*v);
    if (!l) return std::unexpected(l.error());
    out.limits = *l;
  }
  if (const auto* v = present("restart"); v && !v->is_null()) {
    if (!v->is_string()) return bad("restart must be always, on-failure or never", "restart");
    out.restart = v->get<std::string>();
  }
  if (const auto* v = present("health")) {
    auto h = health_from_api(*v);
    if (!h) return std::unexpected(h.error());
    out.health = *h;
  }
  return out;
}

/// Counts a log reader for as long as it lives.
class reader_slot {
 public:
  explicit reader_slot(std::shared_ptr<std::atomic<std::size_t>> n) : n_(std::move(n)) {}
  ~reader_slot() { n_->fetch_sub(1); }
  reader_slot(const reader_slot&) = delete;
  reader_slot& operator=(const reader_slot&) = delete;

 private:
  std::shared_ptr<std::atomic<std::size_t>> n_;
};

}  // namespace

namespace {

/// A container as the API serves it: its stored row without what only the projection and
/// the reconciler read (`removed`, and the spec's raw `limits_raw`/`health_raw`, which the
/// view carries in the API's shape under `spec`).
json served(json row) {
  for (const char* internal : {"removed", "limits_raw", "health_raw"}) row.erase(internal);
  return row;
}

}  // namespace

void containers_controller::add_routes(route_table& t) {
  using access::operation;
  auto self = shared_from_this();
  t.add({"POST", "/v1/containers", [self](auto& c, auto& p, auto&) { self->declare(c, p); }});
  t.add({"GET", "/v1/containers",
         [self](auto& c, auto& p, auto&) {
           answer_list(*self->d_.kit, c, p, operation::container_list, "containers",
                       [&](const ports::page_request& at) {
                         auto page = self->d_.containers.containers(at);
                         if (page) {
                           for (auto& item : page->items) item = served(std::move(item));
                         }
                         return page;
                       });
         }})
      .query = {"limit", "after"};
  t.add({"GET", "/v1/containers/{id}",
         [self](auto& c, auto& p, auto& a) {
           std::optional<json> view;
           if (valid_id(a[0])) {
             auto found = self->d_.containers.container(a[0]);
             if (!found) return send_error(c, found.error());
             if (*found) view = served(std::move(**found));
           }
           answer_get(*self->d_.kit, c, p, operation::container_read, {}, "container-" + a[0], view,
                      "no such container");
         }})
      .query = {"as_of"};
  t.add({"PATCH", "/v1/containers/{id}", [self](auto& c, auto& p, auto& a) { self->change(c, p, a[0]); }});
  t.add({"GET", "/v1/containers/{id}/logs", [self](auto& c, auto& p, auto& a) { self->logs(c, p, a[0]); }}).query = {
      "tail", "follow"};
  t.add({"DELETE", "/v1/containers/{id}",
         [self](auto& c, auto& p, auto& a) { self->command(c, p, a[0], operation::container_remove); }});
  t.add({"POST", "/v1/containers/{id}/start",
         [self](auto& c, auto& p, auto& a) { self->command(c, p, a[0], operation::container_start); }});
  t.add({"POST", "/v1/containers/{id}/stop",
         [self](auto& c, auto& p, auto& a) { self->command(c, p, a[0], operation::container_stop); }});
}

/// POST /v1/containers: `{"name","runtime","image","command":[...],"env":{...},"ports":[...],
/// "limits":{...},"restart","health":{...}}` (docs/api.md, "Containers").
void containers_controller::declare(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::container_create, {}, "containers")) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto name = string_field(*body, "name", true);
  if (!name) return send_error(c, name.error());
  auto spec = parse_spec(*body);
  if (!spec) return send_error(c, spec.error());
  declare_container cmd;
  cmd.container_id = new_uuid_v7();
  cmd.name = **name;
  cmd.image = spec->image.value_or("");
  cmd.command = spec->command.value_or(std::vector<std::string>{});
  cmd.env = spec->env.value_or(std::map<std::string, std::string>{});
  cmd.ports = spec->ports.value_or(std::vector<int>{});
  cmd.runtime = spec->runtime.value_or(d_.default_runtime);
  cmd.limits = spec->limits.value_or(container_limits_spec{});
  cmd.restart = spec->restart.value_or("on-failure");
  cmd.health = spec->health.value_or(std::nullopt);
  auto id = cmd.container_id;
  // Command answers are shaped as GET shapes the view: the row's internals are not served.
  d_.kit->execute(c, p, id, std::move(cmd), 201, std::nullopt, served);
}

/// PATCH /v1/containers/{id}: the spec members to change; the reconciler rolls a running
/// container (stop, start with the new spec).
void containers_controller::change(const call_ptr& c, const principal& p, const std::string& id) {
  if (!d_.kit->allowed(c, p, access::operation::container_update, {}, "container-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such container"});
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  for (const auto& [key, value] : body->items()) {
    static const std::set<std::string> known{"image",   "command", "env",     "ports",
                                             "runtime", "limits",  "restart", "health"};
    if (!known.contains(key)) {
      return send_error(
          c, error{errc::invalid_argument, "a container's spec has no member " + key + " to change", {{"field", key}}});
    }
  }
  auto spec = parse_spec(*body);
  if (!spec) return send_error(c, spec.error());
  change_spec cmd{spec->image,   spec->command, spec->env,     spec->ports,
                  spec->runtime, spec->limits,  spec->restart, spec->health};
  d_.kit->execute(c, p, id, container_command{std::move(cmd)}, 200, std::nullopt, served);
}

/// GET /v1/containers/{id}/logs?tail=N[&follow=1]: the last N lines (default 100, at most
/// 10000) as text/plain, one per line; with follow, as Server-Sent Events (`data: <line>`
/// per line) until the client goes or the container is removed (`event: end`).
void containers_controller::logs(const call_ptr& c, const principal& p, const std::string& id) {
  if (!d_.kit->allowed(c, p, access::operation::container_logs, {}, "container-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such container"});
  ports::log_request req;
  if (auto it = c->query.find("tail"); it != c->query.end()) {
    auto n = parse_u64(it->second, "tail");
    if (!n) return send_error(c, n.error());
    if (*n > 10000) return send_error(c, error{errc::invalid_argument, "tail is at most 10000", {{"field", "tail"}}});
    req.tail = static_cast<std::size_t>(*n);
  }
  if (auto it = c->query.find("follow"); it != c->query.end()) {
    if (it->second != "0" && it->second != "1" && it->second != "true" && it->second != "false") {
      return send_error(c, error{errc::invalid_argument, "follow is 1 or 0", {{"field", "follow"}}});
    }
    req.follow = it->second == "1" || it->second == "true";
  }
  if (req.follow && c->req.via_websocket) {
    return send_error(c, error{errc::invalid_argument, "follow streams over HTTP only", {{"field", "follow"}}});
  }
  auto found = d_.containers.container(id);
  if (!found) return send_error(c, found.error());
  if (!*found) return send_error(c, error{errc::not_found, "no such container"});
  const auto runtime_name = (*found)->value("runtime", "");
  const auto runtime_id = (*found)->value("runtime_id", "");
  auto rt_it = d_.runtimes.find(runtime_name);
  if (rt_it == d_.runtimes.end()) {
    return send_error(c, error{errc::unavailable,
                               "the runtime " + runtime_name + " does not run in this atriumd",
                               {{"runtime", runtime_name}}});
  }
  if (runtime_id.empty()) {
    return send_error(c, error{errc::not_found, "the container has not run yet: no logs", {{"container_id", id}}});
  }
  if (log_readers_->fetch_add(1) >= d_.max_log_readers) {
    log_readers_->fetch_sub(1);
    return send(c, 429,
                json{{"error",
                      {{"code", "too_many_requests"},
                       {"message", "too many container log readers; retry later"},
                       {"details", {{"limit", d_.max_log_readers}}}}}},
                {{"Retry-After", "1"}});
  }
  auto slot = std::make_shared<reader_slot>(log_readers_);
  auto rt = rt_it->second;
  if (!req.follow) {
    // The port's `logs` blocks: never on an I/O thread.
    std::thread([c, rt, runtime_id, req, slot] {
      std::string out;
      std::atomic<bool> stop{false};
      auto r = rt->logs(
          runtime_id, req,
          [&out](std::string_view line) {
            out.append(line).push_back('\n');
            return true;
          },
          stop);
      if (!r) return send_error(c, r.error());
      send_body(c, std::move(out), "text/plain; charset=utf-8", {});
    }).detach();
    return;
  }
  spdlog::info("http method=GET path=/v1/containers/{}/logs status=200 follow=1 user={} request_id={}", id, c->who,
               c->correlation_id);
  http_response resp{200, "", "text/event-stream", {{"X-Request-Id", c->correlation_id}, {"X-Accel-Buffering", "no"}}};
  resp.open = [rt, runtime_id, req, slot](std::shared_ptr<push_channel> ch) {
    auto stop = std::make_shared<std::atomic<bool>>(false);
    std::weak_ptr<push_channel> weak = ch;
    std::thread([rt, runtime_id, req, slot, stop, weak] {
      auto r = rt->logs(
          runtime_id, req,
          [&](std::string_view line) {
            auto ch = weak.lock();
            if (!ch || ch->closing()) return false;
            // A log line holds no newline (the port splits lines); a CR would end the SSE line.
            std::string data(line);
            std::replace(data.begin(), data.end(), '\r', ' ');
            if (!ch->send("data: " + data + "\n\n")) {
              ch->cut(1013, "slow consumer", [](const std::vector<std::uint64_t>&) {
                return std::string("event: error\ndata: {\"code\":\"slow_consumer\"}\n\n");
              });
              return false;
            }
            return true;
          },
          *stop);
      if (auto ch = weak.lock()) {
        ch->close(
            1000, "",
            r ? std::string("event: end\ndata: {}\n\n")
              : "event: error\ndata: " +
                    json{{"code", std::string(to_string(r.error().code))}, {"message", r.error().message}}.dump() +
                    "\n\n");
      }
    }).detach();
    return push_callbacks{nullptr, [stop] { stop->store(true); },
                          [stop, weak] {
                            stop->store(true);
                            if (auto ch = weak.lock()) {
                              ch->cut(1013, "slow consumer", [](const std::vector<std::uint64_t>&) {
                                return std::string("event: error\ndata: {\"code\":\"slow_consumer\"}\n\n");
                              });
                            }
                          }};
  };
  c->respond(std::move(resp));
}

/// POST /v1/containers/{id}/start|stop and DELETE /v1/containers/{id}.
void containers_controller::command(const call_ptr& c, const principal& p, const std::string& id,
                                    access::operation op) {
  if (!d_.kit->allowed(c, p, op, {}, "container-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such container"});
  container_command cmd = remove_container{};
  if (op == access::operation::container_start) cmd = request_start{};
  if (op == access::operation::container_stop) cmd = request_stop{};
  d_.kit->execute(c, p, id, std::move(cmd), 200, std::nullopt, served);
}

}  // namespace atrium::http_adapter
