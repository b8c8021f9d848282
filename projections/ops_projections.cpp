/// The `jobs` and `containers` projections.
///
/// | name         | table          | key                     | row                                        |
/// |--------------|----------------|-------------------------|--------------------------------------------|
/// | `jobs`       | `jobs`         | job id                  | `job_row` + `submitted_at`, `updated_at`,  |
/// |              |                |                         | `finished_at` (null until terminal)        |
/// |              | `project_jobs` | `<project id>/<job id>` | `{"status"}`, rewritten when it changes     |
/// |              | `job_counts`   | status                  | `{"count"}`: jobs in that status (metrics)  |
/// | `containers` | `containers`   | container id            | `container_row` + `created_at`,            |
/// |              |                |                         | `updated_at`; deleted on `container.removed` |
/// |              | `container_counts` | `<desired>/<observed>` | `{"count"}`: containers not removed (metrics) |
///
/// The count tables also hold the key `_complete`, written when the projection applies
/// position 1: counts kept from the log's start. A projection built before the counts
/// existed lacks it (its counts would miss older entities) until it is rebuilt.

#include "events/container/container_decider.hpp"
#include "events/schedule/cron.hpp"
#include "events/job/job_decider.hpp"
#include "projections/ops_views.hpp"
#include "projections/projections.hpp"
#include "ports/queries.hpp"

namespace atrium {
namespace {

/// Adds `delta` to the count under `key` of `table` (rows already written in this batch
/// included: `rows` reads the pending ones); a count that reaches 0 is deleted.
void count(const row_reader& rows, std::vector<mutation>& out, const std::string& table, const std::string& key,
           std::int64_t delta) {
  const auto row = rows.get(table, key);
  const auto now = (row ? row->value("count", std::int64_t{0}) : 0) + delta;
  if (now <= 0) {
    out.emplace_back(row_delete{table, key});
  } else {
    out.emplace_back(row_put{table, key, {{"count", now}}});
  }
}

/// The marker of counts kept from the log's start (see the table above).
void mark_complete(const envelope& e, std::vector<mutation>& out, const std::string& table) {
  if (e.position == 1)
    out.emplace_back(row_put{table, std::string(ports::k_counts_complete), nlohmann::json::object()});
}

class jobs_projection final : public projection {
 public:
  std::string_view name() const override { return "jobs"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    mark_complete(e, out, "job_counts");
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
      if (!old_status.empty()) count(rows, out, "job_counts", old_status, -1);
      count(rows, out, "job_counts", state.status, 1);
    }
  }
};

class containers_projection final : public projection {
 public:
  std::string_view name() const override { return "containers"; }

  void apply(const envelope& e, const row_reader& rows, std::vector<mutation>& out) const override {
    mark_complete(e, out, "container_counts");
    const auto id = id_of(e.stream, "container");
    if (id.empty()) return;
    auto event = decode_event<container_event>(e);
    if (!event) return;
    const auto old = rows.get("containers", id);
    container_state state;
    std::string old_key;
    if (old) {
      state = container_from_row(*old);
      old_key = state.desired + "/" + state.observed;
    }
    state = evolve(std::move(state), *event);
    if (!state.exists) return;
    const auto new_key = state.removed ? std::string() : state.desired + "/" + state.observed;
    if (old_key != new_key) {
      if (!old_key.empty()) count(rows, out, "container_counts", old_key, -1);
      if (!new_key.empty()) count(rows, out, "container_counts", new_key, 1);
    }
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
