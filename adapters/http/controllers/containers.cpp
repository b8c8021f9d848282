// Containers (admins'): declare, list, read, start, stop, remove.
#include "adapters/http/controllers/controllers.hpp"

namespace atrium::http_adapter {

void containers_controller::add_routes(route_table& t) {
  using access::operation;
  auto self = shared_from_this();
  t.add({"POST", "/v1/containers", [self](auto& c, auto& p, auto&) { self->declare(c, p); }});
  t.add({"GET", "/v1/containers", [self](auto& c, auto& p, auto&) {
           answer_list(*self->d_.kit, c, p, operation::container_list, "containers",
                       [&](const ports::page_request& at) { return self->d_.containers.containers(at); });
         }});
  t.add({"GET", "/v1/containers/{id}", [self](auto& c, auto& p, auto& a) {
           std::optional<json> view;
           if (valid_id(a[0])) {
             auto found = self->d_.containers.container(a[0]);
             if (!found) return send_error(c, found.error());
             view = std::move(*found);
           }
           answer_get(*self->d_.kit, c, p, operation::container_read, {}, "container-" + a[0], view,
                      "no such container");
         }});
  t.add({"DELETE", "/v1/containers/{id}",
         [self](auto& c, auto& p, auto& a) { self->command(c, p, a[0], operation::container_remove); }});
  t.add({"POST", "/v1/containers/{id}/start",
         [self](auto& c, auto& p, auto& a) { self->command(c, p, a[0], operation::container_start); }});
  t.add({"POST", "/v1/containers/{id}/stop",
         [self](auto& c, auto& p, auto& a) { self->command(c, p, a[0], operation::container_stop); }});
}

/// POST /v1/containers: `{"name","image","command":[...],"env":{...},"ports":[...]}`.
void containers_controller::declare(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::container_create, {}, "containers")) return;
  auto body = parse_object(c->req.body);
  if (!body) return send_error(c, body.error());
  auto name = string_field(*body, "name", true);
  if (!name) return send_error(c, name.error());
  auto image = string_field(*body, "image", true);
  if (!image) return send_error(c, image.error());
  declare_container cmd;
  cmd.container_id = new_uuid_v7();
  cmd.name = **name;
  cmd.image = **image;
  const auto shape_error = [&] {
    send_error(c, error{errc::invalid_argument,
                        "command must be an array of strings, env an object of strings, ports an array",
                        {{"field", "command/env/ports"}}});
  };
  for (const auto& [field, array] : {std::pair{"command", true}, {"env", false}, {"ports", true}}) {
    // nlohmann would also read an object as an array of its values, or an array of
    // pairs as a map: only the documented shapes are taken.
    if (auto it = body->find(field);
        it != body->end() && !it->is_null() && (array ? !it->is_array() : !it->is_object())) {
      return shape_error();
    }
  }
  try {
    if (auto it = body->find("command"); it != body->end() && !it->is_null()) {
      cmd.command = it->get<std::vector<std::string>>();
    }
    if (auto it = body->find("env"); it != body->end() && !it->is_null()) {
      cmd.env = it->get<std::map<std::string, std::string>>();
    }
    if (auto it = body->find("ports"); it != body->end() && !it->is_null()) {
      for (const auto& port : *it) {
        if (!port.is_number_integer() || port.get<std::int64_t>() < 0 || port.get<std::int64_t>() > 65535) {
          return send_error(c, error{errc::invalid_argument, "ports must be integers 1-65535", {{"field", "ports"}}});
        }
        cmd.ports.push_back(port.get<int>());
      }
    }
  } catch (const json::exception&) {
    return shape_error();
  }
  auto id = cmd.container_id;
  d_.kit->execute(c, p, id, std::move(cmd), 201);
}

/// POST /v1/containers/{id}/start|stop and DELETE /v1/containers/{id}.
void containers_controller::command(const call_ptr& c, const principal& p, const std::string& id,
                                    access::operation op) {
  if (!d_.kit->allowed(c, p, op, {}, "container-" + id)) return;
  if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such container"});
  container_command cmd = remove_container{};
  if (op == access::operation::container_start) cmd = request_start{};
  if (op == access::operation::container_stop) cmd = request_stop{};
  d_.kit->execute(c, p, id, std::move(cmd));
}

}  // namespace atrium::http_adapter
