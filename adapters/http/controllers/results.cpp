// A finished job's output: its result table (paged JSON or streamed CSV) and its log.
#include <limits>
#include <utility>

#include "adapters/http/controllers/controllers.hpp"

namespace atrium::http_adapter {
namespace {

/// True for the statuses of a job that has not finished yet.
bool unfinished(const std::string& status) {
  return status == "submitted" || status == "queued" || status == "running";
}

/// 404 for a finished job that left nothing of `what`.
error no_result(const std::string& id, const json& view, const char* message) {
  return error{
      errc::not_found, message, {{"job_id", id}, {"status", view.value("status", "")}, {"reason", "no_result"}}};
}

/// `?<name>=` as an integer in [min, max] (`fallback` when absent), else
/// `invalid_argument` naming the parameter.
result<std::uint64_t> count_param(const call& c, const char* name, std::uint64_t fallback, std::uint64_t min,
                                  std::uint64_t max) {
  auto it = c.query.find(name);
  if (it == c.query.end()) return fallback;
  auto v = parse_u64(it->second, name);
  if (!v) return v;
  if (*v < min || *v > max) {
    return fail(errc::invalid_argument,
                std::string(name) + " must be " + std::to_string(min) + "-" + std::to_string(max),
                {{"parameter", name}});
  }
  return v;
}

/// Streams a CSV chunk source as a response body; owns the reader it came from.
class csv_producer final : public body_producer {
 public:
  csv_producer(std::unique_ptr<ports::result_reader> reader, std::unique_ptr<ports::chunk_source> source)
      : reader_(std::move(reader)), source_(std::move(source)) {}
  result<bool> next(std::string& out) override { return source_->next(out); }

 private:
  std::unique_ptr<ports::result_reader> reader_;
  std::unique_ptr<ports::chunk_source> source_;
};

/// The stored output of job `id` (with a table when `table`), or nullptr after answering
/// 404 `no_result` when there is none, or the store's error.
std::unique_ptr<ports::result_reader> open_output(const ports::result_store& store, const call_ptr& c,
                                                  const std::string& id, const json& view, bool table) {
  auto reader = store.open(id);
  if (!reader && reader.error().code != errc::not_found) {
    send_error(c, reader.error());
    return nullptr;
  }
  if (!reader || (table && !(*reader)->info().has_table)) {
    send_error(c, no_result(id, view, table ? "the job left no result table" : "the job left no log"));
    return nullptr;
  }
  return std::move(*reader);
}

/// Runs `work` for `c` on `pool`; an exception it throws is answered 500, never lost.
void off_io(const pool_fn& pool, const call_ptr& c, std::function<void()> work) {
  pool([c, work = std::move(work)] {
    try {
      work();
    } catch (const std::exception& ex) {
      spdlog::error("result read failed {} error={}", log_request(*c), log_escape(ex.what()));
      send_error(c, error{errc::internal, "internal error"});
    }
  });
}

}  // namespace

void results_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  // API tokens with `jobs:work` read a job's output (access::route_class::job_read).
  constexpr auto auth = route_access::authenticated;
  constexpr auto reads = access::route_class::job_read;
  t.add({"GET", "/v1/jobs/{id}/result", [self](auto& c, auto& p, auto& a) { self->page(c, p, a[0]); }, auth, reads})
      .query = {"offset", "limit"};
  t.add({"GET", "/v1/jobs/{id}/result.csv", [self](auto& c, auto& p, auto& a) { self->csv(c, p, a[0]); }, auth, reads});
  t.add({"GET", "/v1/jobs/{id}/log", [self](auto& c, auto& p, auto& a) { self->log(c, p, a[0]); }, auth, reads});
}

std::optional<json> results_controller::readable(const call_ptr& c, const principal& p, const std::string& id) {
  auto facts = job_facts(d_.jobs, d_.projects, p, id);
  if (!d_.kit->admitted(c, p, access::operation::job_read, facts.facts(), "job-" + id, facts.view.has_value(),
                        "no such job")) {
    return std::nullopt;
  }
  return std::move(facts.view);
}

bool results_controller::finished(const call_ptr& c, const json& view) {
  const auto status = view.value("status", "");
  if (unfinished(status)) {
    send_error(c, error{errc::failed_precondition, "the job has not finished", {{"status", status}}});
    return false;
  }
  if (view.value("result_expired", false)) {
    send_error(c, error{errc::gone, "the job's result has expired and was removed", {{"status", status}}});
    return false;
  }
  return true;
}

bool results_controller::succeeded(const call_ptr& c, const std::string& id, const json& view) {
  // Only a success's table is the result: a job that failed, timed out or was cancelled
  // mid-query may have stored the rows it had, which are not its answer.
  if (view.value("status", "") == "succeeded") return true;
  send_error(c, no_result(id, view, "the job has no result table: it did not succeed"));
  return false;
}

/// GET /v1/jobs/{id}/result?offset=&limit=: `{"columns":[{"name","type"}],"rows":[[…]],
/// "total_rows","truncated","next"}`; `next` is the offset of the following page, or
/// null after the last row.
void results_controller::page(const call_ptr& c, const principal& p, const std::string& id) {
  auto view = readable(c, p, id);
  if (!view) return;
  auto offset = count_param(*c, "offset", 0, 0, std::numeric_limits<std::int64_t>::max());
  if (!offset) return send_error(c, offset.error());
  auto limit = count_param(*c, "limit", default_rows, 1, max_rows);
  if (!limit) return send_error(c, limit.error());
  if (!finished(c, *view) || !succeeded(c, id, *view)) return;
  off_io(d_.blocking, c, [self = shared_from_this(), c, id, view = std::move(*view), offset = *offset, limit = *limit] {
    auto reader = open_output(self->d_.results, c, id, view, true);
    if (!reader) return;
    const auto& info = reader->info();
    auto rows = reader->rows(offset, static_cast<std::size_t>(limit));
    if (!rows) return send_error(c, rows.error());
    const auto end = offset + rows->size();
    send(c, 200,
         json{{"columns", info.columns},
              {"rows", std::move(*rows)},
              {"total_rows", info.total_rows},
              {"truncated", info.truncated},
              {"next", end < info.total_rows ? json(end) : json(nullptr)}});
  });
}

/// GET /v1/jobs/{id}/result.csv: the whole table as RFC 4180 CSV, streamed in chunks.
void results_controller::csv(const call_ptr& c, const principal& p, const std::string& id) {
  auto view = readable(c, p, id);
  if (!view) return;
  if (c->req.via_websocket || c->json_sink) {
    return send_error(c, error{errc::invalid_argument,
                               "a CSV download is not sent over a WebSocket; use "
                               "GET /v1/jobs/{id}/result for pages"});
  }
  if (!finished(c, *view) || !succeeded(c, id, *view)) return;
  off_io(d_.blocking, c, [self = shared_from_this(), c, id, view = std::move(*view)] {
    auto reader = open_output(self->d_.results, c, id, view, true);
    if (!reader) return;
    auto source = reader->csv(csv_chunk_bytes);
    if (!source) return send_error(c, source.error());
    const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - c->started).count();
    spdlog::info("http {} status=200 ms={:.2f} user={} request_id={} streamed=csv rows={}", log_request(*c), ms,
                 log_escape(c->who, 64), c->correlation_id, reader->info().total_rows);
    http_response resp{200, {}, "text/csv; charset=utf-8"};
    resp.headers = {{"Content-Disposition", "attachment; filename=\"" + id + ".csv\""},
                    {"X-Request-Id", c->correlation_id}};
    resp.producer = std::make_shared<csv_producer>(std::move(reader), std::move(*source));
    c->respond(std::move(resp));
  });
}

/// GET /v1/jobs/{id}/log: the captured output, at most `max_log_bytes`.
void results_controller::log(const call_ptr& c, const principal& p, const std::string& id) {
  auto view = readable(c, p, id);
  if (!view) return;
  if (!finished(c, *view)) return;
  off_io(d_.blocking, c, [self = shared_from_this(), c, id, view = std::move(*view)] {
    auto reader = open_output(self->d_.results, c, id, view, false);
    if (!reader) return;
    auto text = reader->log(max_log_bytes);
    if (!text) return send_error(c, text.error());
    send_body(c, std::move(*text), "text/plain; charset=utf-8", {});
  });
}

}  // namespace atrium::http_adapter
