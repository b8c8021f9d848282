#include "projections/projections.hpp"

#include <map>
#include <optional>
#include <string>

#include "events/job/job_events.hpp"
#include "events/project/project_decider.hpp"
#include "events/user/user_decider.hpp"
#include "projections/views.hpp"

namespace atrium {
namespace {

class users_projection final : public projection {
 public:
  std::string_view name() const override { return "users"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    const auto id = id_of(e.stream, "user");
    if (id.empty()) return;
    auto event = decode_event<user_event>(e);
    if (!event) return;  // unknown types of this stream are a newer schema: skip, never crash
    user_state state;
    if (auto row = rows.get("users", id)) state = user_from_row(*row);
    state = evolve(std::move(state), *event);
    state.version = e.version;
    out.emplace_back(row_put{"users", id, user_row(state)});
    if (const auto* reg = std::get_if<user_registered>(&*event)) {
      out.emplace_back(row_put{"usernames", reg->username, {{"user_id", id}}});
    }
    if (const auto* sa = std::get_if<user_service_account_created>(&*event)) {
      out.emplace_back(row_put{"usernames", sa->name, {{"user_id", id}}});
    }
  }
};

/// Gives every cell of a project row its `updated_at`: the time of this event for the
/// cell it adds, edits, changes or connects, the time kept in the previous row for the others
/// (a move or a removal changes no cell). Keeps each cell's `last_job_id` from the
/// previous row ("" for a new cell): the aggregate does not know it, `job.submitted`
/// events set it (below).
void stamp_cells(nlohmann::json& row, const nlohmann::json* old, const project_event& event, const std::string& time) {
  std::string touched;
  if (const auto* added = std::get_if<project_cell_added>(&event)) touched = added->cell_id;
  if (const auto* edited = std::get_if<project_cell_edited>(&event)) touched = edited->cell_id;
  if (const auto* changed = std::get_if<project_cell_changed>(&event)) touched = changed->cell_id;
  if (const auto* connected = std::get_if<project_cell_connection_set>(&event)) touched = connected->cell_id;
  std::map<std::string, std::pair<std::string, std::string>> kept;  // cell id → updated_at, last_job_id
  if (old) {
    for (const auto& c : project_cells_of(*old)) {
      kept[c.value("cell_id", "")] = {c.value("updated_at", ""), c.value("last_job_id", "")};
    }
  }
  for (auto& c : row["cells"]) {
    const auto cell_id = c.value("cell_id", "");
    const auto it = kept.find(cell_id);
    if (cell_id == touched) {
      c["updated_at"] = time;
    } else if (it != kept.end() && !it->second.first.empty()) {
      c["updated_at"] = it->second.first;
    }
    c["last_job_id"] = it != kept.end() ? it->second.second : std::string();
  }
}

/// A job that runs a cell (`job.submitted` with a `cell_id`) becomes that cell's
/// `last_job_id` in its project's row. The project's version and times do not change:
/// the job is not an event of the project's stream.
void note_cell_job(const envelope& e, const row_reader& rows, std::vector<mutation>& out) {
  if (id_of(e.stream, "job").empty() || e.type != job_submitted::type) return;
  auto event = decode_event<job_event>(e);
  if (!event) return;
  const auto* submitted = std::get_if<job_submitted>(&*event);
  if (!submitted || submitted->cell_id.empty()) return;
  const auto* old = rows.get("projects", submitted->project_id);
  if (!old) return;
  auto row = *old;
  bool found = false;
  for (auto& c : row["cells"]) {
    if (c.value("cell_id", "") != submitted->cell_id) continue;
    c["last_job_id"] = submitted->job_id;
    found = true;
  }
  // A cell removed before its job was projected keeps nothing.
  if (found) out.emplace_back(row_put{"projects", submitted->project_id, std::move(row)});
}

class projects_projection final : public projection {
 public:
  std::string_view name() const override { return "projects"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    const auto id = id_of(e.stream, "project");
    if (id.empty()) return note_cell_job(e, rows, out);
    auto event = decode_event<project_event>(e);
    if (!event) return;
    project_state state;
    const auto old = rows.get("projects", id);
    if (old) state = project_from_row(*old);
    state = evolve(std::move(state), *event);
    state.version = e.version;
    auto row = project_row(state);
    row["updated_at"] = e.time;
    if (std::holds_alternative<project_created>(*event)) {
      row["created_at"] = e.time;
    } else if (old) {
      row["created_at"] = old->value("created_at", e.time);
    }
    stamp_cells(row, old, *event, e.time);
    out.emplace_back(row_put{"projects", id, std::move(row)});
    if (const auto* added = std::get_if<project_member_added>(&*event)) {
      out.emplace_back(row_put{"user_projects", added->user_id + "/" + id, {{"role", added->role}}});
    } else if (const auto* removed = std::get_if<project_member_removed>(&*event)) {
      out.emplace_back(row_delete{"user_projects", removed->user_id + "/" + id});
    } else if (const auto* group = std::get_if<project_group_added>(&*event)) {
      out.emplace_back(row_put{"group_projects", group->group_id + "/" + id, {{"role", group->role}}});
    } else if (const auto* gone = std::get_if<project_group_removed>(&*event)) {
      out.emplace_back(row_delete{"group_projects", gone->group_id + "/" + id});
    }
  }
};

class audit_projection final : public projection {
 public:
  std::string_view name() const override { return "audit"; }

  void apply(const envelope& e, const row_reader&, std::vector<mutation>& out) const override {
    // The entity type is the stream's prefix (`project-…` → `project`); unowned streams
    // such as `security` are their own entity.
    const auto entity = e.stream.substr(0, e.stream.find('-'));
    const auto meta = [&](const char* key) {
      const auto it = e.metadata.find(key);
      return it != e.metadata.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    out.emplace_back(row_put{"entries",
                             position_key(e.position),
                             {{"position", e.position},
                              {"time", e.time},
                              {"actor", e.actor},
                              {"stream", e.stream},
                              {"entity", entity},
                              {"version", e.version},
                              {"type", e.type},
                              {"event_id", e.id},
                              {"correlation_id", e.correlation_id},
                              {"client_address", meta("client_address")},
                              {"user_agent", meta("user_agent")}}});
  }
};

}  // namespace

std::unique_ptr<projection> make_users_projection() { return std::make_unique<users_projection>(); }
std::unique_ptr<projection> make_projects_projection() { return std::make_unique<projects_projection>(); }
std::unique_ptr<projection> make_audit_projection() { return std::make_unique<audit_projection>(); }

std::unique_ptr<projection> make_projection(std::string_view name) {
  for (auto& p : make_all_projections()) {
    if (p->name() == name) return std::move(p);
  }
  return nullptr;
}

std::vector<std::unique_ptr<projection>> make_all_projections() {
  std::vector<std::unique_ptr<projection>> all;
  all.push_back(make_users_projection());
  all.push_back(make_projects_projection());
  all.push_back(make_audit_projection());
  all.push_back(make_groups_projection());
  all.push_back(make_connections_projection());
  all.push_back(make_jobs_projection());
  all.push_back(make_containers_projection());
  all.push_back(make_schedules_projection());
  return all;
}

}  // namespace atrium
