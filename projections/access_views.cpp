#include "projections/access_views.hpp"

namespace atrium {

using json = nlohmann::json;

json group_view(const group_state& s) {
  auto members = json::array();
  for (const auto& u : s.users) members.push_back({{"user_id", u}});
  for (const auto& g : s.groups) members.push_back({{"group_id", g}});
  return {{"id", s.group_id},           {"name", s.name},     {"description", s.description},
          {"created_by", s.created_by}, {"members", members}, {"version", s.version}};
}

json group_row(const group_state& s) { return group_view(s); }

group_state group_from_row(const json& row) {
  group_state s;
  s.exists = true;
  row.at("id").get_to(s.group_id);
  row.at("name").get_to(s.name);
  row.at("description").get_to(s.description);
  row.at("created_by").get_to(s.created_by);
  for (const auto& m : row.at("members")) {
    if (m.contains("user_id")) s.users.insert(m.at("user_id").get<std::string>());
    if (m.contains("group_id")) s.groups.insert(m.at("group_id").get<std::string>());
  }
  row.at("version").get_to(s.version);
  return s;
}

json connection_row(const connection_state& s) {
  auto grants = json::array();
  for (const auto& [user, role] : s.user_grants) {
    grants.push_back({{"user_id", user}, {"role", std::string(to_string(role))}});
  }
  for (const auto& [group, role] : s.group_grants) {
    grants.push_back({{"group_id", group}, {"role", std::string(to_string(role))}});
  }
  json last_test = nullptr;
  if (s.last_test.tested) {
    last_test = {{"ok", s.last_test.ok}, {"error", s.last_test.error}, {"latency_ms", s.last_test.latency_ms}};
  }
  return {
      {"id", s.connection_id},        {"name", s.name},           {"driver", s.driver},         {"params", s.params},
      {"fingerprint", s.fingerprint}, {"vault_ref", s.vault_ref}, {"created_by", s.created_by}, {"grants", grants},
      {"last_test", last_test},       {"deleted", s.deleted},     {"version", s.version}};
}

connection_state connection_from_row(const json& row) {
  connection_state s;
  s.exists = true;
  row.at("id").get_to(s.connection_id);
  row.at("name").get_to(s.name);
  row.at("driver").get_to(s.driver);
  s.params = row.at("params");
  row.at("fingerprint").get_to(s.fingerprint);
  s.vault_ref = row.value("vault_ref", "");
  row.at("created_by").get_to(s.created_by);
  for (const auto& g : row.at("grants")) {
    const auto role = parse_connection_role(g.at("role").get<std::string>());
    if (!role) continue;
    if (g.contains("user_id")) s.user_grants[g.at("user_id").get<std::string>()] = *role;
    if (g.contains("group_id")) s.group_grants[g.at("group_id").get<std::string>()] = *role;
  }
  if (const auto& t = row.at("last_test"); !t.is_null()) {
    s.last_test = connection_test_result{true, t.at("ok").get<bool>(), t.at("error").get<std::string>(),
                                         t.at("latency_ms").get<std::uint64_t>()};
  }
  s.deleted = row.value("deleted", false);
  row.at("version").get_to(s.version);
  return s;
}

json connection_view_of_row(json row) {
  row.erase("vault_ref");
  return row;
}

json connection_view(const connection_state& s) { return connection_view_of_row(connection_row(s)); }

}  // namespace atrium
