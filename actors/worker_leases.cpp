// The lease port (ports/job_leases.hpp) over the attempts table: heartbeats, uploads and
// completions of remote attempts are handled on the caller's thread under the table's
// locks; claims go to the dispatcher, which alone decides which job a worker gets and
// appends every job event.
//
//   HTTP ──claim──▶ send_claim ──worker_claim_msg──▶ dispatcher (answers later)
//   HTTP ──heartbeat──▶ renew_lease: attempt.renewed = now, progress (the tick reports it)
//   HTTP ──upload──▶ upload_to_lease: seq check, result writer (begin/append/append_log)
//   HTTP ──complete──▶ complete_lease: commit, attempt.done ──remote_done_msg──▶ dispatcher
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/job_attempts.hpp"
#include "actors/supervision.hpp"

namespace atrium::actors {
namespace {

/// The live attempt of `lease_id` for `worker`/`owner`, with the lease's errors.
result<std::shared_ptr<running_attempt>> find_lease(job_attempts& t, const std::string& lease_id,
                                                    const std::string& worker, const std::string& owner) {
  std::lock_guard lock(t.mu);
  auto job = t.by_lease.find(lease_id);
  if (job == t.by_lease.end()) {
    if (t.completed.contains(lease_id)) {
      return fail(errc::failed_precondition, "the lease completed already", {{"lease_id", lease_id}});
    }
    return fail(errc::gone,
                "the lease is unknown or was lost (not heartbeated within " + std::to_string(t.lease.count()) +
                    " ms); its job went to another attempt",
                {{"lease_id", lease_id}});
  }
  auto it = t.running.find(job->second);
  if (it == t.running.end() || !it->second->remote || it->second->remote->lease_id != lease_id) {
    return fail(errc::gone, "the lease was lost", {{"lease_id", lease_id}});
  }
  const auto& lease = *it->second->remote;
  if (lease.worker != worker || lease.owner != owner) {
    return fail(errc::forbidden, "the lease belongs to another worker", {{"lease_id", lease_id}});
  }
  t.seen(worker);
  return it->second;
}

/// Renews the lease of `a` unless it was lost meanwhile (`gone`).
result<std::chrono::system_clock::time_point> renew(job_attempts& t, running_attempt& a) {
  std::lock_guard lock(a.mu);
  if (a.remote->lost) return fail(errc::gone, "the lease was lost", {{"lease_id", a.remote->lease_id}});
  a.remote->renewed = std::chrono::steady_clock::now();
  return std::chrono::system_clock::now() + t.lease;
}

/// The server's writer of `a`'s result, created on first use (under upload_mu).
result<recording_writer*> writer_of(job_attempts& t, running_attempt& a) {
  auto& lease = *a.remote;
  if (lease.writer) return lease.writer.get();
  if (t.results == nullptr) return fail(errc::unavailable, "no result store");
  auto w = t.results->create(a.job.job_id, t.limits);
  if (!w) return std::unexpected(w.error());
  lease.store_writer = std::move(*w);
  lease.writer = std::make_unique<recording_writer>(*lease.store_writer);
  return lease.writer.get();
}

}  // namespace

void send_claim(job_attempts* attempts, const core_directory& dir, ports::lease_claim claim, claim_done done) {
  auto once = exactly_once<result<std::optional<ports::leased_job>>>(
      std::move(done), [](claim_done& fn) { fn(fail(errc::unavailable, "the job dispatcher is restarting")); });
  if (attempts == nullptr) return once(fail(errc::unavailable, "this server runs no job dispatcher"));
  auto d = caf::actor_cast<caf::actor>(dir.get(core_role::dispatcher));
  if (!d || !dir.up(core_role::dispatcher)) return once(fail(errc::unavailable, "the job dispatcher is restarting"));
  caf::anon_send(d, worker_claim_msg{std::move(claim), std::move(once)});
}

result<ports::lease_renewal> renew_lease(job_attempts* attempts, const std::string& lease_id, const std::string& worker,
                                         const std::string& owner, const ports::job_progress& progress) {
  if (attempts == nullptr) return fail(errc::unavailable, "this server runs no job dispatcher");
  auto a = find_lease(*attempts, lease_id, worker, owner);
  if (!a) return std::unexpected(a.error());
  auto expires = renew(*attempts, **a);
  if (!expires) return std::unexpected(expires.error());
  std::lock_guard lock((*a)->mu);
  if (!(*a)->done) (*a)->progress = progress;
  return ports::lease_renewal{(*a)->cancel.requested(), *expires};
}

result<ports::upload_ack> upload_to_lease(job_attempts* attempts, const std::string& lease_id,
                                          const std::string& worker, const std::string& owner,
                                          ports::lease_upload batch) {
  if (attempts == nullptr) return fail(errc::unavailable, "this server runs no job dispatcher");
  auto a = find_lease(*attempts, lease_id, worker, owner);
  if (!a) return std::unexpected(a.error());
  auto& att = **a;
  std::lock_guard uploading(att.upload_mu);
  if (auto ok = renew(*attempts, att); !ok) return std::unexpected(ok.error());
  auto& lease = *att.remote;
  if (lease.completing) return fail(errc::failed_precondition, "the lease completed already", {{"lease_id", lease_id}});
  auto w = writer_of(*attempts, att);
  if (!w) return std::unexpected(w.error());
  if (batch.seq < lease.next_seq) return ports::upload_ack{lease.next_seq, true, (*w)->rows(), (*w)->full()};
  if (batch.seq > lease.next_seq) {
    return fail(errc::failed_precondition, "batch " + std::to_string(lease.next_seq) + " comes first",
                {{"expected_seq", lease.next_seq}});
  }
  if (batch.columns) {
    if (!(*w)->columns().empty() || lease.has_rows) {
      return fail(errc::invalid_argument, "columns are given once, before any row", {{"field", "columns"}});
    }
    if (auto ok = (*w)->begin(*batch.columns); !ok) return std::unexpected(ok.error());
  }
  if (batch.rows.rows() > 0) {
    if ((*w)->columns().empty()) {
      return fail(errc::invalid_argument, "rows need columns first", {{"field", "rows"}});
    }
    if (batch.rows.columns != (*w)->columns().size()) {
      return fail(errc::invalid_argument, "each row must have one cell per column", {{"field", "rows"}});
    }
    if (auto kept = (*w)->append(batch.rows); !kept) return std::unexpected(kept.error());
    lease.has_rows = true;
  }
  if (!batch.log.empty()) {
    if (auto ok = (*w)->append_log(batch.log); !ok) return std::unexpected(ok.error());
  }
  ++lease.next_seq;
  return ports::upload_ack{lease.next_seq, false, (*w)->rows(), (*w)->full()};
}

result<void> complete_lease(job_attempts* attempts, const core_directory& dir, const std::string& lease_id,
                            const std::string& worker, const std::string& owner, const ports::lease_completion& done) {
  if (attempts == nullptr) return fail(errc::unavailable, "this server runs no job dispatcher");
  {
    std::lock_guard lock(attempts->mu);
    if (attempts->completed.contains(lease_id)) return {};  // a retried report
  }
  auto a = find_lease(*attempts, lease_id, worker, owner);
  if (!a) return std::unexpected(a.error());
  auto& att = **a;
  std::lock_guard uploading(att.upload_mu);
  auto& lease = *att.remote;
  if (done.batches != lease.next_seq) {
    return fail(
        errc::failed_precondition,
        "the server applied " + std::to_string(lease.next_seq) + " batches, not " + std::to_string(done.batches),
        {{"expected_batches", lease.next_seq}});
  }
  {
    std::lock_guard lock(att.mu);
    if (lease.lost) return fail(errc::gone, "the lease was lost", {{"lease_id", lease_id}});
    lease.completing = true;  // from now on it is never lost
  }
  attempt_report r;
  r.outcome = done.outcome;
  r.duration_ms = done.duration_ms;
  auto w = writer_of(*attempts, att);
  auto committed = w ? (*w)->commit() : result<void>(std::unexpected(w.error()));
  if (!committed && r.outcome.state == ports::job_outcome::status::succeeded) {
    r.outcome = ports::job_outcome::failed("the result could not be stored: " + committed.error().message);
  }
  if (w) {
    r.rows = (*w)->rows();
    r.bytes = (*w)->bytes();
    r.columns = (*w)->columns();
    r.truncated = done.truncated || (*w)->full();
  }
  {
    std::lock_guard lock(att.mu);
    att.done = std::move(r);
  }
  {
    std::lock_guard lock(attempts->mu);
    attempts->by_lease.erase(lease_id);
    attempts->remember_completed(lease_id);
  }
  spdlog::info("job lease completed job_id={} attempt={} worker={} lease_id={}", att.job.job_id, att.job.attempt,
               worker, lease_id);
  // A dispatcher that is away finds the report on its tick.
  if (auto d = caf::actor_cast<caf::actor>(dir.get(core_role::dispatcher))) {
    caf::anon_send(d, remote_done_msg{att.job.job_id});
  }
  return {};
}

std::vector<ports::worker_info> list_workers(job_attempts* attempts) {
  std::vector<ports::worker_info> out;
  if (attempts == nullptr) return out;
  const auto now = std::chrono::system_clock::now();
  std::lock_guard lock(attempts->mu);
  std::erase_if(attempts->workers, [&](const auto& w) { return now - w.second.last_seen > std::chrono::hours(1); });
  for (const auto& [name, w] : attempts->workers) {
    out.push_back({name, w.slots, w.slots_free, w.last_seen, {}});
  }
  const auto steady = std::chrono::steady_clock::now();
  for (const auto& [id, a] : attempts->running) {
    if (!a->remote) continue;
    auto it = std::ranges::find_if(out, [&](const auto& w) { return w.name == a->remote->worker; });
    if (it == out.end()) continue;
    std::lock_guard alock(a->mu);
    if (a->remote->lost) continue;
    const auto left =
        std::chrono::duration_cast<std::chrono::system_clock::duration>(a->remote->renewed + attempts->lease - steady);
    it->leases.push_back({a->remote->lease_id, id, a->job.attempt, now + left});
  }
  return out;
}

}  // namespace atrium::actors
