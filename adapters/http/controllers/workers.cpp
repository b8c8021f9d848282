// Remote workers: the lease protocol (ports/job_leases.hpp) over HTTP.
#include <ctime>
#include <limits>

#include "adapters/http/controllers/controllers.hpp"

namespace atrium::http_adapter {
namespace {

constexpr std::uint64_t k_max_wait_s = 30;
constexpr std::uint64_t k_default_wait_s = 20;
constexpr std::size_t k_max_columns = 10000;

/// An optional non-negative integer member up to `max` (`fallback` when absent).
result<std::uint64_t> count_field(const json& body, const char* name, std::uint64_t fallback, std::uint64_t max) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::uint64_t>() > max) {
    return fail(errc::invalid_argument, std::string(name) + " must be an integer 0-" + std::to_string(max),
                {{"field", name}});
  }
  return it->get<std::uint64_t>();
}

/// An optional boolean member (false when absent).
result<bool> bool_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_boolean())
    return fail(errc::invalid_argument, std::string(name) + " must be a boolean", {{"field", name}});
  return it->get<bool>();
}

/// The body's `worker`: 1–64 of `A-Za-z0-9._-`.
result<std::string> worker_name(const json& body) {
  auto name = string_field(body, "worker", true);
  if (!name) return std::unexpected(name.error());
  const auto& n = **name;
  const bool ok = !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
  });
  if (!ok) return fail(errc::invalid_argument, "worker must be 1-64 of A-Z a-z 0-9 . _ -", {{"field", "worker"}});
  return n;
}

/// The lease id of a path: a UUID, else `gone` would hide a typo: `invalid_argument`.
result<std::string> lease_param(const std::string& id) {
  if (!is_uuid_v7(id)) return fail(errc::invalid_argument, "the lease id must be a UUID", {{"parameter", "lease"}});
  return id;
}

/// A call on one lease (heartbeat, result, complete): its body, the path's lease id and
/// the worker naming itself in the body.
struct lease_call {
  json body;
  std::string lease;
  std::string worker;
};

/// The lease call of `admitted` (the body `workers_controller::admit` gave, nullopt when
/// it answered) on path lease `id`: answers 400 for a bad lease id or worker name and
/// returns nullopt.
std::optional<lease_call> lease_call_of(const call_ptr& c, std::optional<json> admitted, const std::string& id) {
  if (!admitted) return std::nullopt;
  auto lease = lease_param(id);
  if (!lease) {
    send_error(c, lease.error());
    return std::nullopt;
  }
  auto worker = worker_name(*admitted);
  if (!worker) {
    send_error(c, worker.error());
    return std::nullopt;
  }
  return lease_call{std::move(*admitted), std::move(*lease), std::move(*worker)};
}

/// `columns`: `[{"name","type"}…]`, 1–10000 of them, names and types 1–1000 bytes.
result<std::vector<ports::result_column>> columns_field(const json& v) {
  if (!v.is_array() || v.empty() || v.size() > k_max_columns) {
    return fail(errc::invalid_argument, "columns must be an array of 1-10000 {name, type}", {{"field", "columns"}});
  }
  std::vector<ports::result_column> out;
  for (const auto& c : v) {
    if (!c.is_object() || !c.contains("name") || !c.contains("type") || !c["name"].is_string() ||
        !c["type"].is_string() || c["name"].get_ref<const std::string&>().size() > 1000 ||
        c["type"].get_ref<const std::string&>().empty() || c["type"].get_ref<const std::string&>().size() > 1000) {
      return fail(errc::invalid_argument, "each column must be {name, type} strings", {{"field", "columns"}});
    }
    out.push_back({c["name"].get<std::string>(), c["type"].get<std::string>()});
  }
  return out;
}

/// `rows`: arrays of equally many cells, each a string or null.
result<ports::row_batch> rows_field(const json& v) {
  ports::row_batch out;
  if (!v.is_array()) return fail(errc::invalid_argument, "rows must be an array of arrays", {{"field", "rows"}});
  for (const auto& r : v) {
    if (!r.is_array() || r.empty() || (out.columns != 0 && r.size() != out.columns)) {
      return fail(errc::invalid_argument, "each row must be a non-empty array of one cell per column",
                  {{"field", "rows"}});
    }
    out.columns = r.size();
    for (const auto& cell : r) {
      if (cell.is_null()) {
        out.cells.emplace_back(std::nullopt);
      } else if (cell.is_string()) {
        out.cells.emplace_back(cell.get<std::string>());
      } else {
        return fail(errc::invalid_argument, "each cell must be a string or null", {{"field", "rows"}});
      }
    }
  }
  return out;
}

/// The claim answer: the job with everything a worker needs to run it (credentials
/// included: this body is never logged nor stored).
json leased_json(const ports::leased_job& l) {
  const auto& s = l.spec;
  return json{{"lease_id", l.lease_id},
              {"expires_at", format_rfc3339(l.expires_at)},
              {"lease_ms", l.lease.count()},
              {"job",
               {{"id", s.job_id},
                {"project_id", s.project_id},
                {"kind", s.kind},
                {"language", s.language},
                {"source", s.source},
                {"driver", s.driver},
                {"params", s.params.is_null() ? json::object() : s.params},
                {"credentials", s.credentials},
                {"attempt", s.attempt},
                {"timeout_s", s.timeout.count()},
                {"max_attempts", l.max_attempts}}}};
}

/// 204 No Content (no body), logged like every answer.
void send_no_content(const call_ptr& c) {
  const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - c->started).count();
  spdlog::info("http {} status=204 ms={:.2f} user={} request_id={}", log_request(*c), ms, log_escape(c->who, 64),
               c->correlation_id);
  c->respond(http_response{204, "", "application/json", {{"X-Request-Id", c->correlation_id}}});
}

}  // namespace

void workers_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  // API tokens reach these with the `jobs:work` scope (access::route_class::job_work).
  const auto work = access::route_class::job_work;
  const auto auth = route_access::authenticated;
  t.add({"POST", "/v1/workers/claim", [self](auto& c, auto& p, auto&) { self->claim(c, p); }, auth, work});
  t.add({"POST", "/v1/workers/leases/{lease}/heartbeat",
         [self](auto& c, auto& p, auto& a) { self->heartbeat(c, p, a[0]); }, auth, work});
  t.add({"POST", "/v1/workers/leases/{lease}/result", [self](auto& c, auto& p, auto& a) { self->upload(c, p, a[0]); },
         auth, work});
  t.add({"POST", "/v1/workers/leases/{lease}/complete",
         [self](auto& c, auto& p, auto& a) { self->complete(c, p, a[0]); }, auth, work});
  t.add({"GET", "/v1/workers", [self](auto& c, auto& p, auto&) { self->list(c, p); }});
}

/// The body of a worker call after the policy admitted `job.work`, or nullopt (answered).
std::optional<json> workers_controller::admit(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::job_work, {}, "workers")) return std::nullopt;
  if (d_.leases == nullptr) {
    send_error(c, error{errc::unavailable, "this server runs no job dispatcher"});
    return std::nullopt;
  }
  auto body = parse_object(c->req.body);
  if (!body) {
    send_error(c, body.error());
    return std::nullopt;
  }
  return std::move(*body);
}

/// POST /v1/workers/claim: `{"worker","slots_free","slots"?,"wait_s"?}` → 200 a leased
/// job, or 204 after `wait_s` (default 20, at most 30) without one.
void workers_controller::claim(const call_ptr& c, const principal& p) {
  auto body = admit(c, p);
  if (!body) return;
  if (!c->command_id.empty()) {
    // The answer holds credentials: it must never be stored as an idempotent replay.
    return send_error(c, error{errc::invalid_argument,
                               "Idempotency-Key is not accepted on a claim (claim again instead)",
                               {{"header", "Idempotency-Key"}}});
  }
  auto worker = worker_name(*body);
  if (!worker) return send_error(c, worker.error());
  auto free = count_field(*body, "slots_free", 1, 1024);
  if (!free) return send_error(c, free.error());
  auto slots = count_field(*body, "slots", 0, 1024);
  if (!slots) return send_error(c, slots.error());
  auto wait = count_field(*body, "wait_s", k_default_wait_s, k_max_wait_s);
  if (!wait) return send_error(c, wait.error());
  ports::lease_claim claim{*worker,
                           p.user_id,
                           static_cast<std::uint32_t>(*free),
                           static_cast<std::uint32_t>(*slots),
                           std::chrono::seconds(*wait),
                           nullptr};
  if (d_.authenticated) claim.still_authorized = [auth = d_.authenticated, c] { return auth(*c); };
  // A worker that stops or dies while its claim waits closes the connection: no job is
  // leased to it then (docs/jobs.md, "Workers").
  if (c->req.watch_peer) {
    if (auto closed = c->req.watch_peer()) claim.still_connected = [closed] { return !closed->load(); };
  }
  d_.leases->claim(std::move(claim), [c](result<std::optional<ports::leased_job>> r) {
    if (!r) return send_error(c, r.error());
    if (!*r) return send_no_content(c);
    auto answer = leased_json(**r);
    send(c, 200, answer);
    // Overwrite the credentials' copies held here before they are freed.
    for (auto* j : {&answer["job"]["credentials"], &(*r)->spec.credentials}) {
      if (!j->is_object()) continue;
      for (auto& v : *j) {
        if (v.is_string()) std::fill(v.get_ref<std::string&>().begin(), v.get_ref<std::string&>().end(), '\0');
      }
    }
  });
}

/// POST /v1/workers/leases/{lease}/heartbeat: `{"worker","rows"?,"bytes"?,"percent"?,
/// "elapsed_ms"?}` → `{"cancel","expires_at"}`.
void workers_controller::heartbeat(const call_ptr& c, const principal& p, const std::string& id) {
  auto lc = lease_call_of(c, admit(c, p), id);
  if (!lc) return;
  const auto& body = lc->body;
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  auto rows = count_field(body, "rows", 0, max);
  if (!rows) return send_error(c, rows.error());
  auto bytes = count_field(body, "bytes", 0, max);
  if (!bytes) return send_error(c, bytes.error());
  auto elapsed = count_field(body, "elapsed_ms", 0, max);
  if (!elapsed) return send_error(c, elapsed.error());
  ports::job_progress progress{*rows, *bytes, std::nullopt, std::chrono::milliseconds(*elapsed)};
  if (body.contains("percent") && !body["percent"].is_null()) {
    auto percent = count_field(body, "percent", 0, 100);
    if (!percent) return send_error(c, percent.error());
    progress.percent = static_cast<int>(*percent);
  }
  auto r = d_.leases->heartbeat(lc->lease, lc->worker, p.user_id, progress);
  if (!r) return send_error(c, r.error());
  send(c, 200, json{{"cancel", r->cancel}, {"expires_at", format_rfc3339(r->expires_at)}});
}

/// POST /v1/workers/leases/{lease}/result: `{"worker","seq","columns"?,"rows"?,"log"?}`
/// → `{"next_seq","duplicate","rows","full"}` (written off the I/O threads).
void workers_controller::upload(const call_ptr& c, const principal& p, const std::string& id) {
  auto lc = lease_call_of(c, admit(c, p), id);
  if (!lc) return;
  const auto& body = lc->body;
  auto seq = count_field(body, "seq", std::numeric_limits<std::uint64_t>::max(), 1ULL << 40);
  if (!seq) return send_error(c, seq.error());
  if (*seq == std::numeric_limits<std::uint64_t>::max()) {
    return send_error(c, error{errc::invalid_argument, "seq is required", {{"field", "seq"}}});
  }
  ports::lease_upload batch;
  batch.seq = *seq;
  if (auto it = body.find("columns"); it != body.end() && !it->is_null()) {
    auto cols = columns_field(*it);
    if (!cols) return send_error(c, cols.error());
    batch.columns = std::move(*cols);
  }
  if (auto it = body.find("rows"); it != body.end() && !it->is_null()) {
    auto rows = rows_field(*it);
    if (!rows) return send_error(c, rows.error());
    batch.rows = std::move(*rows);
  }
  auto log = string_field(body, "log", false);
  if (!log) return send_error(c, log.error());
  batch.log = log->value_or("");
  d_.blocking([self = shared_from_this(), c, lease = lc->lease, worker = lc->worker, owner = p.user_id,
               batch = std::move(batch)]() mutable {
    auto r = self->d_.leases->upload(lease, worker, owner, std::move(batch));
    if (!r) return send_error(c, r.error());
    send(c, 200, json{{"next_seq", r->next_seq}, {"duplicate", r->duplicate}, {"rows", r->rows}, {"full", r->full}});
  });
}

/// POST /v1/workers/leases/{lease}/complete: `{"worker","outcome":"succeeded"|"failed"|
/// "interrupted","error"?,"sqlstate"?,"batches","truncated"?,"duration_ms"?}` → 200
/// `{"completed":true}` (committed off the I/O threads).
void workers_controller::complete(const call_ptr& c, const principal& p, const std::string& id) {
  auto lc = lease_call_of(c, admit(c, p), id);
  if (!lc) return;
  const auto& body = lc->body;
  auto outcome = string_field(body, "outcome", true);
  if (!outcome) return send_error(c, outcome.error());
  auto why = string_field(body, "error", false);
  if (!why) return send_error(c, why.error());
  auto sqlstate = string_field(body, "sqlstate", false);
  if (!sqlstate) return send_error(c, sqlstate.error());
  auto batches = count_field(body, "batches", 0, 1ULL << 40);
  if (!batches) return send_error(c, batches.error());
  auto truncated = bool_field(body, "truncated");
  if (!truncated) return send_error(c, truncated.error());
  auto duration = count_field(body, "duration_ms", 0, std::numeric_limits<std::int64_t>::max());
  if (!duration) return send_error(c, duration.error());
  ports::lease_completion done;
  if (**outcome == "succeeded") {
    done.outcome = ports::job_outcome::succeeded();
  } else if (**outcome == "failed") {
    done.outcome = ports::job_outcome::failed(why->value_or("failed"), sqlstate->value_or(""));
  } else if (**outcome == "interrupted") {
    done.outcome = ports::job_outcome::interrupted();
  } else {
    return send_error(
        c, error{errc::invalid_argument, "outcome must be succeeded, failed or interrupted", {{"field", "outcome"}}});
  }
  done.batches = *batches;
  done.truncated = *truncated;
  done.duration_ms = *duration;
  d_.blocking([self = shared_from_this(), c, lease = lc->lease, worker = lc->worker, owner = p.user_id, done] {
    auto r = self->d_.leases->complete(lease, worker, owner, done);
    if (!r) return send_error(c, r.error());
    send(c, 200, json{{"completed", true}, {"lease_id", lease}});
  });
}

/// GET /v1/workers: `{"workers":[{"name","slots","slots_free","last_heartbeat",
/// "leases":[{"lease_id","job_id","attempt","expires_at"}]}]}`.
void workers_controller::list(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::worker_list, {}, "workers")) return;
  json out = json::array();
  if (d_.leases != nullptr) {
    for (const auto& w : d_.leases->workers()) {
      json leases = json::array();
      for (const auto& l : w.leases) {
        leases.push_back({{"lease_id", l.lease_id},
                          {"job_id", l.job_id},
                          {"attempt", l.attempt},
                          {"expires_at", format_rfc3339(l.expires_at)}});
      }
      out.push_back({{"name", w.name},
                     {"slots", w.slots},
                     {"slots_free", w.slots_free},
                     {"last_heartbeat", format_rfc3339(w.last_seen)},
                     {"leases", std::move(leases)}});
    }
  }
  send(c, 200, json{{"workers", std::move(out)}});
}

}  // namespace atrium::http_adapter
