/// The `groups` and `connections` projections.
///
/// | name          | table           | key                                   | row                           |
/// |---------------|-----------------|---------------------------------------|-------------------------------|
/// | `groups`      | `groups`        | group id                              | `group_row` + timestamps      |
/// |               | `user_groups`   | `<user id>/<group id>`                | `{}`: a user's direct groups  |
/// |               | `group_parents` | `<child group id>/<parent group id>`  | `{}`: a group's direct parents|
/// | `connections` | `connections`   | connection id                         | `connection_row` + timestamps |
/// |               | `grants`        | `user:<user id>/<connection id>`      | `{"role"}`                    |
/// |               |                 | `group:<group id>/<connection id>`    | `{"role"}`                    |
///
/// A user's transitive groups are `user_groups` under `<user id>/` followed by repeated
/// walks up `group_parents` (finite: the group decider refuses cycles). A deleted
/// connection's row and all its grants are deleted.

#include "events/connection/connection_decider.hpp"
#include "events/group/group_decider.hpp"
#include "projections/access_views.hpp"
#include "projections/projections.hpp"

namespace atrium {
namespace {

/// Sets `created_at` (kept from the previous row) and `updated_at` on a new row.
void stamp(nlohmann::json& row, const envelope& e, const nlohmann::json* old) {
  row["updated_at"] = e.time;
  row["created_at"] = old ? old->value("created_at", e.time) : e.time;
}

std::string grant_key(const std::string& grantee_type, const std::string& grantee_id, const std::string& connection) {
  return grantee_type + ":" + grantee_id + "/" + connection;
}

class groups_projection final : public projection {
 public:
  std::string_view name() const override { return "groups"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    const auto id = id_of(e.stream, "group");
    if (id.empty()) return;
    auto event = decode_event<group_event>(e);
    if (!event) return;  // unknown types of this stream are a newer schema: skip, never crash
    const auto old = rows.get("groups", id);
    group_state state;
    if (old) state = group_from_row(*old);
    state = evolve(std::move(state), *event);
    if (!state.exists) return;  // a member event without its group: nothing to show
    state.version = e.version;
    auto row = group_row(state);
    stamp(row, e, old);
    out.emplace_back(row_put{"groups", id, std::move(row)});
    if (const auto* added = std::get_if<group_member_added>(&*event)) {
      if (added->member_type == "user")
        out.emplace_back(row_put{"user_groups", added->member_id + "/" + id, nlohmann::json::object()});
      if (added->member_type == "group")
        out.emplace_back(row_put{"group_parents", added->member_id + "/" + id, nlohmann::json::object()});
    } else if (const auto* removed = std::get_if<group_member_removed>(&*event)) {
      if (removed->member_type == "user") out.emplace_back(row_delete{"user_groups", removed->member_id + "/" + id});
      if (removed->member_type == "group") {
        out.emplace_back(row_delete{"group_parents", removed->member_id + "/" + id});
      }
    }
  }
};

class connections_projection final : public projection {
 public:
  std::string_view name() const override { return "connections"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    const auto id = id_of(e.stream, "connection");
    if (id.empty()) return;
    auto event = decode_event<connection_event>(e);
    if (!event) return;
    const auto old = rows.get("connections", id);
    connection_state state;
    if (old) state = connection_from_row(*old);
    state = evolve(std::move(state), *event);
    if (!state.exists) return;
    if (state.deleted) {
      // The connection is gone: its row and every index entry that points at it.
      out.emplace_back(row_delete{"connections", id});
      for (const auto& [user, role] : state.user_grants)
        out.emplace_back(row_delete{"grants", grant_key("user", user, id)});
      for (const auto& [group, role] : state.group_grants) {
        out.emplace_back(row_delete{"grants", grant_key("group", group, id)});
      }
      return;
    }
    state.version = e.version;
    auto row = connection_row(state);
    stamp(row, e, old);
    if (std::holds_alternative<connection_tested>(*event)) {
      row["last_test"]["time"] = e.time;
    } else if (old && old->contains("last_test") && old->at("last_test").is_object()) {
      row["last_test"]["time"] = old->at("last_test").value("time", "");
    }
    out.emplace_back(row_put{"connections", id, std::move(row)});
    if (const auto* granted = std::get_if<connection_access_granted>(&*event)) {
      out.emplace_back(
          row_put{"grants", grant_key(granted->grantee_type, granted->grantee_id, id), {{"role", granted->role}}});
    } else if (const auto* revoked = std::get_if<connection_access_revoked>(&*event)) {
      out.emplace_back(row_delete{"grants", grant_key(revoked->grantee_type, revoked->grantee_id, id)});
    }
  }
};

}  // namespace

std::unique_ptr<projection> make_groups_projection() { return std::make_unique<groups_projection>(); }
std::unique_ptr<projection> make_connections_projection() { return std::make_unique<connections_projection>(); }

}  // namespace atrium
