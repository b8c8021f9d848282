// The query port (ports/queries.hpp) over the projections' tables (projections.hpp).
#include "projections/queries.hpp"

#include <algorithm>
#include <functional>
#include <utility>

#include "projections/access_views.hpp"
#include "projections/history.hpp"
#include "projections/ops_views.hpp"
#include "projections/views.hpp"

namespace atrium {
namespace {

using nlohmann::json;
using ports::page;
using ports::page_request;

constexpr std::size_t k_index_limit = 1000;        // rows of one index read to resolve a user's groups
constexpr std::size_t k_history_page = 1000;       // events read per page while folding as of a bound
constexpr std::size_t k_project_index_cap = 1000;  // projects listed for a job query across indexes

/// An index table of a projection and the key prefix of one grantee in it.
struct index_prefix {
  std::string table;
  std::string prefix;
};

bool sees_everything(const principal& p) { return p.is_admin() || p.has(global_role::auditor); }

/// The first `limit` of `found` in id order, as a page (`next`: the last id when full):
/// for lists gathered from several index scans.
page page_by_id(std::vector<json> found, std::size_t limit) {
  std::sort(found.begin(), found.end(),
            [](const json& a, const json& b) { return a.value("id", "") < b.value("id", ""); });
  if (found.size() > limit) found.resize(limit);
  page out;
  if (found.size() == limit) out.next = found.back().value("id", "");
  out.items = json(std::move(found));
  return out;
}

class read_queries final : public ports::queries {
 public:
  read_queries(const ports::read_model_store& rows, const ports::event_store& events) : rows_(rows), events_(events) {}

  // ---- users ------------------------------------------------------------------------

  result<std::optional<ports::user_record>> user(std::string_view id) const override {
    auto row = rows_.get("users", "users", id);
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::optional<ports::user_record>{};
    try {
      return std::optional<ports::user_record>{ports::user_record{user_from_row(**row), user_view_of_row(**row)}};
    } catch (const json::exception&) {
      return fail(errc::internal, "malformed user row");
    }
  }

  result<std::optional<ports::user_record>> user_by_name(std::string_view username) const override {
    auto idx = rows_.get("users", "usernames", username);
    if (!idx) return std::unexpected(idx.error());
    if (!*idx) return std::optional<ports::user_record>{};
    return user((**idx).value("user_id", ""));
  }

  result<page> users(const page_request& at) const override {
    return scan_page("users", "users", at, [](const json& row) { return user_view_of_row(row); });
  }

  std::set<std::string> groups_of(std::string_view user_id) const override {
    std::set<std::string> seen;
    std::vector<std::string> frontier;
    auto expand = [&](const std::string& table, const std::string& child) {
      const auto prefix = child + "/";
      auto rows = rows_.scan("groups", table, prefix, "", k_index_limit);
      if (!rows) return;
      for (const auto& r : *rows) {
        auto g = r.key.substr(prefix.size());
        if (seen.insert(g).second) frontier.push_back(std::move(g));
      }
    };
    expand("user_groups", std::string(user_id));
    while (!frontier.empty()) {
      auto g = std::move(frontier.back());
      frontier.pop_back();
      expand("group_parents", g);
    }
    return seen;
  }

  // ---- groups -----------------------------------------------------------------------

  result<std::optional<json>> group(std::string_view id) const override { return rows_.get("groups", "groups", id); }

  result<page> visible_groups(const principal& p, const page_request& at) const override {
    if (sees_everything(p)) return scan_page("groups", "groups", at, [](const json& row) { return row; });
    page out;
    std::string last;
    for (auto it = p.groups.upper_bound(at.after); it != p.groups.end() && out.items.size() < at.limit; ++it) {
      auto row = rows_.get("groups", "groups", *it);
      if (!row) return std::unexpected(row.error());
      if (*row) out.items.push_back(**row);
      last = *it;
    }
    if (out.items.size() == at.limit) out.next = last;
    return out;
  }

  std::set<std::string> subgroups_of(std::string_view id, std::size_t limit) const override {
    std::set<std::string> seen;
    std::vector<std::string> frontier{std::string(id)};
    while (!frontier.empty() && seen.size() < limit) {
      const auto g = std::move(frontier.back());
      frontier.pop_back();
      auto row = rows_.get("groups", "groups", g);
      if (!row || !*row) continue;
      for (const auto& m : (**row).value("members", json::array())) {
        const auto child = m.value("group_id", "");
        if (!child.empty() && child != id && seen.insert(child).second) frontier.push_back(child);
      }
    }
    return seen;
  }

  // ---- projects ---------------------------------------------------------------------

  result<std::optional<ports::project_record>> project(std::string_view id, const principal& p) const override {
    auto row = rows_.get("projects", "projects", id);
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::optional<ports::project_record>{};
    ports::project_record out{project_view_of_row(**row), std::nullopt};
    try {
      out.role = project_from_row(**row).role_of(p);
    } catch (const json::exception&) {
    }
    return std::optional<ports::project_record>{std::move(out)};
  }

  result<page> visible_projects(const principal& p, const page_request& at) const override {
    if (sees_everything(p)) return scan_page("projects", "projects", at, project_summary);
    return indexed_page("projects", "projects", project_indexes(p), at, project_summary);
  }

  result<std::optional<json>> cell_updates(std::string_view project_id, const std::string& cell_id) const override {
    auto row = rows_.get("projects", "projects", project_id);
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::optional<json>{};
    return cell_updates_of_row(**row, cell_id);
  }

  result<std::set<std::string>> shared_project_ids(const principal& p, std::size_t limit) const override {
    return shared_ids("projects", project_indexes(p), "", limit);
  }

  // ---- connections ------------------------------------------------------------------

  result<std::optional<ports::connection_record>> connection(std::string_view id, const principal& p) const override {
    auto row = rows_.get("connections", "connections", id);
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::optional<ports::connection_record>{};
    ports::connection_record out{connection_view_of_row(**row), (**row).value("vault_ref", ""), std::nullopt};
    try {
      out.role = connection_from_row(**row).role_of(p);
    } catch (const json::exception&) {
    }
    return std::optional<ports::connection_record>{std::move(out)};
  }

  result<page> visible_connections(const principal& p, const page_request& at) const override {
    auto view = [](const json& row) { return connection_view_of_row(row); };
    if (sees_everything(p)) return scan_page("connections", "connections", at, view);
    std::vector<index_prefix> indexes{{"grants", "user:" + p.user_id + "/"}};
    for (const auto& g : p.groups) indexes.push_back({"grants", "group:" + g + "/"});
    return indexed_page("connections", "connections", indexes, at, view);
  }

  // ---- jobs and containers ----------------------------------------------------------

  result<std::optional<json>> job(std::string_view id) const override { return rows_.get("jobs", "jobs", id); }

  result<page> jobs(const ports::job_filter& filter) const override {
    const auto& at = filter.at;
    std::vector<json> found;
    auto keep = [&](const json& row) {
      if (filter.status.empty() || row.value("status", "") == filter.status) found.push_back(row);
    };
    if (filter.every_project) {
      auto rows = rows_.scan("jobs", "jobs", "", at.after, k_project_index_cap);
      if (!rows) return std::unexpected(rows.error());
      for (const auto& r : *rows) keep(r.value);
    } else {
      for (const auto& pid : filter.projects) {
        const auto prefix = pid + "/";
        auto rows = rows_.scan("jobs", "project_jobs", prefix, at.after.empty() ? "" : prefix + at.after, at.limit);
        if (!rows) return std::unexpected(rows.error());
        for (const auto& r : *rows) {
          auto row = rows_.get("jobs", "jobs", r.key.substr(prefix.size()));
          if (!row) return std::unexpected(row.error());
          if (*row) keep(**row);
        }
      }
    }
    return page_by_id(std::move(found), at.limit);
  }

  result<std::optional<json>> container(std::string_view id) const override {
    return rows_.get("containers", "containers", id);
  }

  result<std::optional<ports::state_counts>> job_counts() const override { return counts("jobs", "job_counts"); }
  result<std::optional<ports::state_counts>> container_counts() const override {
    return counts("containers", "container_counts");
  }

  result<page> containers(const page_request& at) const override {
    return scan_page("containers", "containers", at, [](const json& row) { return row; });
  }

  /// The counts of `table` (a few rows: one per state), nullopt without the marker.
  result<std::optional<ports::state_counts>> counts(std::string_view projection, std::string_view table) const {
    auto rows = rows_.scan(projection, table, "", "", 1000);
    if (!rows) return std::unexpected(rows.error());
    ports::state_counts out;
    bool complete = false;
    for (const auto& r : *rows) {
      if (r.key == ports::k_counts_complete) {
        complete = true;
      } else {
        out[r.key] = r.value.value("count", std::uint64_t{0});
      }
    }
    if (!complete) return std::optional<ports::state_counts>{};
    return std::optional<ports::state_counts>{std::move(out)};
  }

  // ---- schedules --------------------------------------------------------------------

  result<std::optional<json>> schedule(std::string_view id) const override {
    return rows_.get("schedules", "schedules", id);
  }

  result<page> schedules(const ports::schedule_filter& filter) const override {
    const auto& at = filter.at;
    if (filter.every_project) return scan_page("schedules", "schedules", at, [](const json& row) { return row; });
    std::vector<json> found;
    for (const auto& pid : filter.projects) {
      const auto prefix = pid + "/";
      auto rows =
          rows_.scan("schedules", "project_schedules", prefix, at.after.empty() ? "" : prefix + at.after, at.limit);
      if (!rows) return std::unexpected(rows.error());
      for (const auto& r : *rows) {
        auto row = rows_.get("schedules", "schedules", r.key.substr(prefix.size()));
        if (!row) return std::unexpected(row.error());
        if (*row) found.push_back(std::move(**row));
      }
    }
    return page_by_id(std::move(found), at.limit);
  }

  result<page> schedule_runs(std::string_view id, const page_request& at) const override {
    const auto prefix = std::string(id) + "/";
    auto rows = rows_.scan("schedules", "schedule_runs", prefix, at.after.empty() ? "" : prefix + at.after, at.limit);
    if (!rows) return std::unexpected(rows.error());
    page out;
    for (const auto& r : *rows) out.items.push_back(r.value);
    if (out.items.size() == at.limit && at.limit > 0) out.next = out.items.back().value("fire_time", "");
    return out;
  }

  // ---- any entity -------------------------------------------------------------------

  std::optional<json> current(std::string_view stream) const override {
    const auto dash = stream.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    const auto entity = stream.substr(0, dash), id = stream.substr(dash + 1);
    // entity → projection (and table) and its served view; every projection keeps its
    // entities' rows under their id.
    using shape = json (*)(json);
    static const std::map<std::string_view, std::pair<std::string_view, shape>> tables{
        {"user", {"users", user_view_of_row}},
        {"project", {"projects", project_view_of_row}},
        {"group", {"groups", nullptr}},
        {"connection", {"connections", connection_view_of_row}},
        {"job", {"jobs", nullptr}},
        {"container", {"containers", nullptr}},
        {"schedule", {"schedules", nullptr}}};
    auto t = tables.find(entity);
    if (t == tables.end()) return std::nullopt;
    auto row = rows_.get(t->second.first, t->second.first, id);
    if (!row || !*row) return std::nullopt;
    return t->second.second ? t->second.second(std::move(**row)) : std::move(**row);
  }

  result<std::optional<ports::historic_view>> as_of(std::string_view stream,
                                                    const ports::as_of_bound& bound) const override {
    std::vector<envelope> until;
    for (std::uint64_t from = 1;;) {
      auto page = events_.read_stream(stream, from, k_history_page);
      if (!page) return std::unexpected(page.error());
      bool past = false;
      for (auto& e : *page) {
        if ((bound.position && e.position > *bound.position) || (bound.time && e.time > *bound.time)) {
          past = true;
          break;
        }
        until.push_back(std::move(e));
      }
      if (past || page->size() < k_history_page) break;
      from = until.back().version + 1;
    }
    auto view = fold_view(stream, until);
    if (!view) return std::unexpected(view.error());
    if (!*view) return std::optional<ports::historic_view>{};
    return std::optional<ports::historic_view>{
        ports::historic_view{std::move(**view), until.back().position, until.back().time}};
  }

  // ---- audit ------------------------------------------------------------------------

  std::unique_ptr<ports::audit_walk> walk(const ports::audit_filter& filter, bool backward,
                                          std::size_t batch) const override {
    return make_audit_walk(rows_, filter, backward, batch);
  }

 private:
  /// A project as listed: its view without the cells (their content can be large; `GET`
  /// of the project or of its cells serves them) but with `cell_count`.
  static json project_summary(const json& row) {
    auto view = project_view_of_row(row);
    view["cell_count"] = project_cells_of(view).size();
    view.erase("cells");
    return view;
  }

  /// The `user_projects` / `group_projects` prefixes of `p` and their groups.
  static std::vector<index_prefix> project_indexes(const principal& p) {
    std::vector<index_prefix> out{{"user_projects", p.user_id + "/"}};
    for (const auto& g : p.groups) out.push_back({"group_projects", g + "/"});
    return out;
  }

  /// A page of a whole table, each row passed through `shape`.
  result<page> scan_page(std::string_view projection, std::string_view table, const page_request& at,
                         const std::function<json(const json&)>& shape) const {
    auto rows = rows_.scan(projection, table, "", at.after, at.limit);
    if (!rows) return std::unexpected(rows.error());
    page out;
    for (const auto& r : *rows) out.items.push_back(shape(r.value));
    if (rows->size() == at.limit) out.next = rows->back().key;
    return out;
  }

  /// The ids listed under any of `indexes` (what is shared with the caller directly or
  /// through one of their groups), at most `limit` per index after `after`, merged in
  /// id order.
  result<std::set<std::string>> shared_ids(std::string_view projection, const std::vector<index_prefix>& indexes,
                                           const std::string& after, std::size_t limit) const {
    std::set<std::string> ids;
    for (const auto& [table, prefix] : indexes) {
      auto rows = rows_.scan(projection, table, prefix, after.empty() ? "" : prefix + after, limit);
      if (!rows) return std::unexpected(rows.error());
      for (const auto& r : *rows) ids.insert(r.key.substr(prefix.size()));
    }
    return ids;
  }

  /// A page of the rows of `table` whose ids `indexes` list, each through `shape`.
  result<page> indexed_page(std::string_view projection, std::string_view table,
                            const std::vector<index_prefix>& indexes, const page_request& at,
                            const std::function<json(const json&)>& shape) const {
    auto ids = shared_ids(projection, indexes, at.after, at.limit);
    if (!ids) return std::unexpected(ids.error());
    page out;
    std::string last;
    for (const auto& id : *ids) {
      if (out.items.size() == at.limit) break;
      auto row = rows_.get(projection, table, id);
      if (!row) return std::unexpected(row.error());
      if (*row) out.items.push_back(shape(**row));
      last = id;
    }
    if (out.items.size() == at.limit) out.next = last;
    return out;
  }

  const ports::read_model_store& rows_;
  const ports::event_store& events_;
};

}  // namespace

std::unique_ptr<ports::queries> make_queries(const ports::read_model_store& rows, const ports::event_store& events) {
  return std::make_unique<read_queries>(rows, events);
}

}  // namespace atrium
