/// The `jobs` and `containers` projections.
///
/// | name         | table          | key                     | row                                        |
/// |--------------|----------------|-------------------------|--------------------------------------------|
/// | `jobs`       | `jobs`         | job id                  | `job_row` + `submitted_at`, `updated_at`,  |
/// |              |                |                         | `finished_at` (null until terminal)        |
/// |              | `project_jobs` | `<project id>/<job id>` | `{"status"}`, rewritten when it changes     |
/// | `containers` | `containers`   | container id            | `container_row` + `created_at`,            |
/// |              |                |                         | `updated_at`; deleted on `container.removed` |

#include "events/container/container_decider.hpp"
#include "events/schedule/cron.hpp"
#include "events/job/job_decider.hpp"
#include "projections/ops_views.hpp"
#include "projections/projections.hpp"

namespace atrium {
namespace {

class jobs_projection final : public projection {
 public:
  std::string_view name() const override { return "jobs"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    const auto id = id_of(e.stream, "job");
    if (id.empty()) return;
    auto event = decode_event<job_event>(e);
    if (!event) return;  // unknown types of this stream are a newer schema: skip, never crash
    const auto old = rows.get("jobs", id);
    job_state state;
    std::string old_status;
    if (old) {
      state = job_from_row(*old);
      old_status = state.status;
    }
    state = evolve(std::move(state), *event);
    if (!state.exists) return;  // an event before `job.submitted`: nothing to show
    state.version = e.version;

    auto row = job_row(state);
    row["submitted_at"] = old ? old->value("submitted_at", e.time) : e.time;
    row["updated_at"] = e.time;
    if (!state.terminal()) {
      row["finished_at"] = nullptr;
    } else if (old && old->contains("finished_at") && !old->at("finished_at").is_null()) {
      row["finished_at"] = old->at("finished_at");
    } else {
      row["finished_at"] = e.time;
    }
    out.emplace_back(row_put{"jobs", id, std::move(row)});
    if (state.status != old_status) {
      out.emplace_back(row_put{"project_jobs", state.project_id + "/" + id, {{"status", state.status}}});
    }
  }
};

class containers_projection final : public projection {
 public:
  std::string_view name() const override { return "containers"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    const auto id = id_of(e.stream, "container");
    if (id.empty()) return;
    auto event = decode_event<container_event>(e);
    if (!event) return;
    const auto old = rows.get("containers", id);
    container_state state;
    if (old) state = container_from_row(*old);
    state = evolve(std::move(state), *event);
    if (!state.exists) return;
    // Lists never show removed containers; the stream keeps their history.
    if (state.removed) {
      out.emplace_back(row_delete{"containers", id});
      return;
    }
    state.version = e.version;
    auto row = container_row(state);
    row["created_at"] = old ? old->value("created_at", e.time) : e.time;
    row["updated_at"] = e.time;
    // When the reconciler starts it again: the restart's commit time plus its back-off
    // (whole seconds, rounded up); null in every other state.
    if (const auto* r = std::get_if<container_restarted>(&*event)) {
      if (auto at = parse_utc(e.time)) {
        const auto wait = std::chrono::seconds((r->backoff_ms + 999) / 1000);
        row["next_restart_at"] = format_utc(*at + wait);
      }
    }
    out.emplace_back(row_put{"containers", id, std::move(row)});
  }
};

}  // namespace

std::unique_ptr<projection> make_jobs_projection() { return std::make_unique<jobs_projection>(); }
std::unique_ptr<projection> make_containers_projection() { return std::make_unique<containers_projection>(); }

}  // namespace atrium
