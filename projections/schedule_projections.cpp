/// The `schedules` projection.
///
/// | table               | key                          | row                                              |
/// |---------------------|------------------------------|--------------------------------------------------|
/// | `schedules`         | schedule id                  | `schedule_row` + `created_at`, `updated_at`;     |
/// |                     |                              | deleted on `schedule.deleted`                    |
/// | `project_schedules` | `<project id>/<schedule id>` | `{}`: the schedules of a project                 |
/// | `schedule_runs`     | `<schedule id>/<fire time>`  | `{"fire_time","job_ids","catch_up","fired_at"}`  |
///
/// Fire times are RFC 3339 UTC to the second, so keys sort by time.

#include "events/schedule/schedule_decider.hpp"
#include "projections/projections.hpp"
#include "projections/schedule_views.hpp"

namespace atrium {
namespace {

class schedules_projection final : public projection {
 public:
  std::string_view name() const override { return "schedules"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    const auto id = id_of(e.stream, "schedule");
    if (id.empty()) return;
    auto event = decode_event<schedule_event>(e);
    if (!event) return;  // a newer schema: skip, never crash
    const auto old = rows.get("schedules", id);
    schedule_state state;
    if (old) state = schedule_from_row(*old);
    state = evolve(std::move(state), *event);
    if (!state.exists) return;
    if (state.status == "deleted") {
      out.emplace_back(row_delete{"schedules", id});
      out.emplace_back(row_delete{"project_schedules", state.project_id + "/" + id});
      return;
    }
    state.version = e.version;
    auto row = schedule_row(state);
    row["created_at"] = old ? old->value("created_at", e.time) : e.time;
    row["updated_at"] = e.time;
    out.emplace_back(row_put{"schedules", id, std::move(row)});
    if (!old) out.emplace_back(row_put{"project_schedules", state.project_id + "/" + id, nlohmann::json::object()});
    if (const auto* fired = std::get_if<schedule_fired>(&*event)) {
      out.emplace_back(row_put{"schedule_runs",
                               id + "/" + fired->fire_time,
                               {{"fire_time", fired->fire_time},
                                {"job_ids", fired->job_ids},
                                {"catch_up", fired->catch_up},
                                {"fired_at", e.time}}});
    }
  }
};

}  // namespace

std::unique_ptr<projection> make_schedules_projection() { return std::make_unique<schedules_projection>(); }

}  // namespace atrium
