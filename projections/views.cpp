#include "projections/views.hpp"

#include <cstdio>

#include "events/project/change_set.hpp"
#include "ports/read_model.hpp"

namespace atrium {

nlohmann::json user_view(const user_state& s) {
  auto roles = nlohmann::json::array();
  for (auto r : s.roles) roles.push_back(std::string(to_string(r)));
  nlohmann::json view{{"id", s.user_id},        {"username", s.username}, {"email", s.email},    {"roles", roles},
                      {"disabled", s.disabled}, {"kind", s.kind},         {"version", s.version}};
  if (s.is_service()) view["description"] = s.description;
  return view;
}

nlohmann::json user_row(const user_state& s) {
  auto row = user_view(s);
  row["password_hash"] = s.password_hash;
  return row;
}

user_state user_from_row(const nlohmann::json& row) {
  user_state s;
  s.exists = true;
  row.at("id").get_to(s.user_id);
  row.at("username").get_to(s.username);
  row.at("email").get_to(s.email);
  for (const auto& r : row.at("roles")) {
    if (auto role = parse_global_role(r.get<std::string>())) s.roles.insert(*role);
  }
  row.at("disabled").get_to(s.disabled);
  row.at("version").get_to(s.version);
  s.password_hash = row.value("password_hash", "");
  s.kind = row.value("kind", "person");  // rows written before service accounts existed
  s.description = row.value("description", "");
  return s;
}

nlohmann::json user_view_of_row(nlohmann::json row) {
  row.erase("password_hash");
  return row;
}

nlohmann::json project_view(const project_state& s) {
  auto members = nlohmann::json::array();
  for (const auto& [user, role] : s.members) {
    members.push_back({{"user_id", user}, {"role", std::string(to_string(role))}});
  }
  auto groups = nlohmann::json::array();
  for (const auto& [group, role] : s.groups) {
    groups.push_back({{"group_id", group}, {"role", std::string(to_string(role))}});
  }
  auto cells = nlohmann::json::array();
  std::string previous;
  for (const auto& c : s.cells) {
    cells.push_back({{"cell_id", c.cell_id},
                     {"kind", c.kind},
                     {"content", c.content},
                     {"version", c.version},
                     {"after", previous},
                     {"connection_id", c.connection_id}});
    previous = c.cell_id;
  }
  return {{"id", s.project_id},         {"name", s.name},     {"description", s.description},
          {"created_by", s.created_by}, {"members", members}, {"groups", groups},
          {"archived", s.archived},     {"cells", cells},     {"version", s.version}};
}

nlohmann::json project_cells_of(const nlohmann::json& project) {
  auto it = project.find("cells");
  return it != project.end() && it->is_array() ? *it : nlohmann::json::array();
}

nlohmann::json project_row(const project_state& s) {
  auto row = project_view(s);
  row["removed_cells"] = s.removed_cells;
  auto edits = nlohmann::json::array();
  for (const auto& e : s.recent_edits) {
    edits.push_back({{"op_id", e.op_id}, {"cell_id", e.cell_id}, {"version", e.version}});
  }
  row["recent_edits"] = std::move(edits);
  auto updates = nlohmann::json::object();
  for (const auto& c : s.cells) {
    auto kept = nlohmann::json::array();
    for (const auto& u : c.updates) {
      kept.push_back({{"version", u.version}, {"changes", u.changes}, {"client_id", u.client_id}});
    }
    updates[c.cell_id] = std::move(kept);
  }
  row["cell_updates"] = std::move(updates);
  return row;
}

nlohmann::json project_view_of_row(nlohmann::json row) {
  row.erase("removed_cells");
  row.erase("recent_edits");
  row.erase("cell_updates");
  return row;
}

std::optional<nlohmann::json> cell_updates_of_row(const nlohmann::json& row, const std::string& cell_id) {
  for (const auto& c : project_cells_of(row)) {
    if (!c.is_object() || c.value("cell_id", "") != cell_id) continue;
    auto kept = nlohmann::json::array();
    if (auto all = row.find("cell_updates"); all != row.end() && all->is_object()) {
      if (auto mine = all->find(cell_id); mine != all->end() && mine->is_array()) kept = *mine;
    }
    return nlohmann::json{{"version", c.value("version", std::uint64_t{0})}, {"updates", std::move(kept)}};
  }
  return std::nullopt;
}

project_state project_from_row(const nlohmann::json& row) {
  project_state s;
  s.exists = true;
  row.at("id").get_to(s.project_id);
  row.at("name").get_to(s.name);
  row.at("description").get_to(s.description);
  row.at("created_by").get_to(s.created_by);
  for (const auto& m : row.at("members")) {
    if (auto role = parse_project_role(m.at("role").get<std::string>())) {
      s.members[m.at("user_id").get<std::string>()] = *role;
    }
  }
  if (auto g = row.find("groups"); g != row.end()) {  // absent in rows written before groups
    for (const auto& m : *g) {
      if (auto role = parse_project_role(m.at("role").get<std::string>())) {
        s.groups[m.at("group_id").get<std::string>()] = *role;
      }
    }
  }
  row.at("archived").get_to(s.archived);
  // Cells and their bookkeeping are absent in rows written before cells existed;
  // `cell_updates` in rows written before co-editing (those cells keep no history).
  const auto updates = row.value("cell_updates", nlohmann::json::object());
  for (const auto& c : row.value("cells", nlohmann::json::array())) {
    // `connection_id` is absent in rows written before cells had connections.
    project_cell cell{c.at("cell_id").get<std::string>(), c.at("kind").get<std::string>(),
                      c.at("content").get<std::string>(), c.at("version").get<std::uint64_t>(),
                      c.value("connection_id", "")};
    if (auto kept = updates.find(cell.cell_id); kept != updates.end()) {
      for (const auto& u : *kept) {
        const auto& changes = u.at("changes");
        cell.keep_update({u.at("version").get<std::uint64_t>(), changes, u.at("client_id").get<std::string>(),
                          change_set_bytes(changes)});
      }
    }
    s.cells.push_back(std::move(cell));
  }
  for (const auto& id : row.value("removed_cells", nlohmann::json::array()))
    s.removed_cells.insert(id.get<std::string>());
  for (const auto& e : row.value("recent_edits", nlohmann::json::array())) {
    s.recent_edits.push_back(
        {e.at("op_id").get<std::string>(), e.at("cell_id").get<std::string>(), e.at("version").get<std::uint64_t>()});
  }
  row.at("version").get_to(s.version);
  return s;
}

}  // namespace atrium
