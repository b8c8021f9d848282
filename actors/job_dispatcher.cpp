// The job dispatcher (issue 15, points 2–4): follows the global log from its own
// checkpoint, keeps the unfinished jobs in memory, starts queued ones on threads of
// their own through the executor port, and reports back only through job commands, as
// the system principal.
//
//   runner ──log_advanced──▶ dispatcher ──read_all──▶ fold job events into `table`
//                              │ round robin over projects, FIFO within one, ≤ slots
//                              ├──start_job──▶ registry ──ok──▶ attempt thread
//                              │                                 │ spec: connection (queries),
//                              │                                 │ credentials (vault), writer
//                              │                                 │ executor.run(spec, writer, progress, cancel)
//                              │◀── attempt_done (or the tick) ──┘ commit
//                              ├──report_progress (tick, ≤ 2/s per job, newest only)
//                              ├──complete_job | fail_job | time_out_job | confirm_cancel
//                              ├──requeue_job | fail_job for orphans (after the first catch-up)
//                              └──expire_result, then result_store::remove (every minute)
//
// Running attempts live in `job_attempts`, owned by the runtime: a restarted dispatcher
// rebuilds its table from the checkpoint (a low-water mark before the oldest unfinished
// job's `job.submitted`) and adopts the attempts it finds there instead of treating them
// as orphans, so a job never runs twice at the same time. An attempt stays in that
// table until its terminal command is answered, so an outcome is never lost to a
// dispatcher restart (a second copy is refused by the job's state machine).
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "actors/actors.hpp"
#include "actors/job_attempts.hpp"
#include "actors/messages.hpp"
#include "events/envelope.hpp"
#include "events/job/job_decider.hpp"
#include "events/registry.hpp"

namespace atrium::actors {

// ---- attempts: shared by the dispatcher, its threads, the lease port and the runtime ----

std::shared_ptr<job_attempts> make_job_attempts() { return std::make_shared<job_attempts>(); }

void stop_job_attempts(job_attempts& attempts, std::chrono::milliseconds wait) {
  std::vector<std::shared_ptr<running_attempt>> all;
  {
    std::lock_guard lock(attempts.mu);
    attempts.stopping = true;
    for (auto& [id, a] : attempts.running) all.push_back(a);
  }
  for (auto& a : all) a->cancel.request();
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (auto& a : all) {
    std::thread t;
    {
      std::lock_guard lock(attempts.mu);
      t = std::move(a->thread);
    }
    if (!t.joinable()) continue;
    for (;;) {
      {
        std::lock_guard lock(a->mu);
        if (a->done) break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    bool done = false;
    {
      std::lock_guard lock(a->mu);
      done = a->done.has_value();
    }
    if (done) {
      t.join();
    } else {
      spdlog::warn("job_id={} did not stop within the shutdown wait; leaving its thread behind", a->job.job_id);
      t.detach();
    }
  }
}

namespace {

/// From an attempt thread to the dispatcher: attempt of `job_id` ended (its report is
/// in the attempts table).
struct attempt_done {
  std::string job_id;
};

/// From the dispatcher to itself: attempt `attempt` of `job_id` reached its timeout.
struct attempt_timeout {
  std::string job_id;
  std::uint32_t attempt = 0;
};

/// From the dispatcher to itself: claim `id` waited its full time without a job.
struct claim_expired {
  std::uint64_t id = 0;
};

}  // namespace
}  // namespace atrium::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::actors::attempt_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::actors::attempt_timeout)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::actors::claim_expired)

namespace atrium::actors {
namespace {

using dsp_follow_atom = caf::atom_constant<caf::atom("dspfollow")>;
using dsp_tick_atom = caf::atom_constant<caf::atom("dsptick")>;
using dsp_expire_atom = caf::atom_constant<caf::atom("dspexpire")>;
using dsp_await_atom = caf::atom_constant<caf::atom("dspawait")>;

/// The dispatcher's own interface: the public one plus what it sends itself and what
/// its attempt threads send it.
using dispatcher_impl = dispatcher_actor::extend<
    caf::reacts_to<dsp_follow_atom>, caf::reacts_to<dsp_tick_atom>, caf::reacts_to<dsp_expire_atom>,
    caf::reacts_to<dsp_await_atom>, caf::reacts_to<attempt_done>, caf::reacts_to<attempt_timeout>,
    caf::reacts_to<worker_claim_msg>, caf::reacts_to<remote_done_msg>, caf::reacts_to<claim_expired>>;

constexpr std::size_t k_page = 1000;
constexpr auto k_tick = std::chrono::milliseconds(500);  // progress at most 2 per second per job
constexpr auto k_save_every = std::chrono::seconds(1);
constexpr std::size_t k_expire_batch = 1000;
const char* const k_restart_reason = "interrupted by server restart";

// ---- the attempt thread ----------------------------------------------------------------

/// Overwrites every string in `j` (credentials) before it is freed.
void wipe(nlohmann::json& j) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    std::fill(s.begin(), s.end(), '\0');
  } else if (j.is_structured()) {
    for (auto& v : j) wipe(v);
  }
  j = nlohmann::json::object();
}

attempt_report failed_report(std::string error) {
  attempt_report r;
  r.outcome.state = ports::job_outcome::status::failed;
  r.outcome.error = std::move(error);
  return r;
}

/// Finds the executor and fills the connection's part of `spec` (driver, params,
/// credentials). A failure is the job's error text.
std::expected<ports::job_executor*, std::string> prepare(const job_execution& jobs, ports::job_spec& spec,
                                                         const launch_input& in) {
  const auto find = [&](const std::string& key) -> ports::job_executor* {
    auto it = jobs.executors.find(key);
    return it == jobs.executors.end() ? nullptr : it->second;
  };
  if (in.kind == "script") {
    auto* ex = find("script");
    if (ex == nullptr) return std::unexpected("no executor runs " + in.language + " scripts on this server");
    return ex;
  }
  if (in.kind != "sql") return std::unexpected("unknown job kind " + in.kind);
  if (jobs.connections == nullptr) return std::unexpected("no connection catalog is configured");
  auto rec = jobs.connections->connection(in.connection_id, principal::system());
  if (!rec) return std::unexpected("connection " + in.connection_id + " cannot be read: " + rec.error().message);
  if (!*rec) return std::unexpected("connection " + in.connection_id + " no longer exists");
  spec.driver = (*rec)->view.value("driver", "");
  spec.params = (*rec)->view.value("params", nlohmann::json::object());
  auto* ex = find(spec.driver);
  if (ex == nullptr) return std::unexpected("no executor for connection driver " + spec.driver);
  if (!(*rec)->vault_ref.empty()) {
    if (jobs.vault == nullptr) return std::unexpected("the credentials of the connection cannot be opened: no vault");
    auto credentials = jobs.vault->open((*rec)->vault_ref);
    if (!credentials) {
      return std::unexpected("the credentials of connection " + in.connection_id +
                             " cannot be opened: " + credentials.error().message);
    }
    spec.credentials = std::move(*credentials);
  }
  return ex;
}

/// The job's part of the spec an executor runs (no connection, no credentials yet).
ports::job_spec spec_of(const launch_input& in) {
  ports::job_spec spec;
  spec.job_id = in.job_id;
  spec.project_id = in.project_id;
  spec.kind = in.kind;
  spec.language = in.language;
  spec.source = in.source;
  spec.attempt = in.attempt;
  spec.timeout = std::chrono::seconds(in.timeout_s);
  return spec;
}

/// Runs one attempt to its end (on the attempt thread).
attempt_report execute(const job_execution& jobs, running_attempt& a) {
  const auto& in = a.job;
  auto spec = spec_of(in);
  auto ex = prepare(jobs, spec, in);
  if (!ex) {
    wipe(spec.credentials);
    return failed_report(ex.error());
  }
  auto writer = jobs.results->create(in.job_id, jobs.limits);
  if (!writer) {
    wipe(spec.credentials);
    return failed_report("the result store cannot take the result: " + writer.error().message);
  }
  recording_writer out(**writer);
  const ports::progress_fn progress = [&a](const ports::job_progress& p) {
    std::lock_guard lock(a.mu);
    a.progress = p;
  };
  attempt_report r;
  r.outcome = (*ex)->run(spec, out, progress, a.cancel);
  wipe(spec.credentials);
  if (auto ok = out.commit(); !ok && r.outcome.state == ports::job_outcome::status::succeeded) {
    return failed_report("the result could not be stored: " + ok.error().message);
  }
  r.rows = out.rows();
  r.bytes = out.bytes();
  r.columns = out.columns();
  r.truncated = out.full();
  return r;
}

/// The attempt thread's body: runs, records the report, tells the dispatcher.
void attempt_main(job_execution jobs, std::shared_ptr<running_attempt> a, std::shared_ptr<job_attempts> attempts,
                  std::shared_ptr<core_directory> dir) {
  attempt_report r;
  try {
    r = execute(jobs, *a);
  } catch (const std::exception& ex) {
    r = failed_report(std::string("internal error: ") + ex.what());
  } catch (...) {
    r = failed_report("internal error");
  }
  r.duration_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - a->started).count());
  {
    std::lock_guard lock(a->mu);
    a->done = std::move(r);
  }
  // While the runtime stops, the actor system may be gone: tell no one (the next start
  // treats the job as an orphan).
  std::lock_guard lock(attempts->mu);
  if (attempts->stopping) return;
  if (auto d = caf::actor_cast<caf::actor>(dir->get(core_role::dispatcher))) {
    caf::anon_send(d, attempt_done{a->job.job_id});
  }
}

// ---- the dispatcher actor ----------------------------------------------------------------

/// An unfinished job, as the log says.
struct job_entry {
  launch_input job;  // attempt: the current (or last) one
  std::uint32_t max_attempts = 1;
  std::string status;  // submitted, queued or running
  bool cancel_requested = false;
  std::uint64_t submitted_at = 0;  // position of its job.submitted
  bool starting = false;           // start_job sent, not answered
};

struct dispatcher_state {
  ports::event_store* store = nullptr;
  ports::read_model_store* checkpoints = nullptr;
  job_execution jobs;
  std::shared_ptr<job_attempts> attempts;
  std::shared_ptr<core_directory> dir;

  std::map<std::string, job_entry> table;                 // unfinished jobs by id
  std::map<std::string, std::deque<std::string>> queues;  // project → queued job ids, FIFO (stale ids skipped)
  std::deque<std::string> turn;                           // projects with a queue, round robin
  std::set<std::size_t> busy;                             // slots taken (starting or running)

  std::uint64_t read = 0;        // the last position folded
  std::uint64_t projected = 0;   // the projections applied the log up to here
  std::uint64_t start_head = 0;  // the log head when the dispatcher started
  bool recovered = false;        // orphans handled after the first catch-up
  bool follow_pending = false;
  std::uint64_t saved = 0;
  std::chrono::steady_clock::time_point last_save = std::chrono::steady_clock::now();

  /// A worker's claim waiting for a job (answered with one, or with none at its expiry).
  struct pending_claim {
    std::uint64_t id = 0;
    ports::lease_claim claim;
    claim_done done;
  };
  std::deque<pending_claim> claims;  // oldest first
  std::uint64_t next_claim = 1;
  std::map<std::string, job_command> unsettled;  // lost or released leases whose command must still be appended
  std::set<std::string> settling;                // … and is in flight

  std::set<std::string> progress_in_flight;  // job ids
  std::set<std::string> reporting;           // job ids whose terminal command is in flight
  std::set<std::string> expiring;            // job ids whose expire_result is in flight
  static inline const char* name = "job-dispatcher";
  ~dispatcher_state();
};

using self_ptr = dispatcher_impl::stateful_pointer<dispatcher_state>;

/// The lowest position a replay must start after to see every unfinished job whole.
std::uint64_t low_water(const dispatcher_state& st) {
  auto low = st.read;
  for (const auto& [id, j] : st.table) low = std::min(low, j.submitted_at - 1);
  return low;
}

void save_checkpoint(dispatcher_state& st) {
  const auto low = low_water(st);
  st.last_save = std::chrono::steady_clock::now();
  if (st.checkpoints == nullptr || low == st.saved) return;
  if (auto ok = st.checkpoints->save_checkpoint(st.jobs.checkpoint_name, low); !ok) {
    spdlog::warn("dispatcher checkpoint not saved: {}", ok.error().message);
    return;
  }
  st.saved = low;
}

dispatcher_state::~dispatcher_state() { save_checkpoint(*this); }

void enqueue(dispatcher_state& st, const std::string& project, const std::string& id, bool front = false) {
  auto [it, fresh] = st.queues.try_emplace(project);
  front ? it->second.push_front(id) : it->second.push_back(id);
  if (fresh) front ? st.turn.push_front(project) : st.turn.push_back(project);
}

/// The next job to start: the first queued job of the project whose turn it is (that
/// project then goes to the back). Nullopt if none, or if the projections have not yet
/// applied the next job's submission (its connection may be missing from the read model).
std::optional<std::string> next_job(dispatcher_state& st) {
  while (!st.turn.empty()) {
    const auto project = st.turn.front();
    auto& q = st.queues[project];
    while (!q.empty()) {
      auto it = st.table.find(q.front());
      if (it != st.table.end() && it->second.status == "queued" && !it->second.starting) break;
      q.pop_front();
    }
    if (q.empty()) {
      st.queues.erase(project);
      st.turn.pop_front();
      continue;
    }
    if (st.table[q.front()].submitted_at > st.projected) return std::nullopt;
    auto id = q.front();
    q.pop_front();
    st.turn.pop_front();
    if (q.empty()) {
      st.queues.erase(project);
    } else {
      st.turn.push_back(project);
    }
    return id;
  }
  return std::nullopt;
}

ports::command_context system_context() {
  return ports::command_context{principal::system(), "job-dispatcher", std::nullopt, {}, nlohmann::json::object()};
}

/// Sends `cmd` to job `id` through the registry; `done` gets the outcome (a registry
/// that is down or gone is `unavailable`).
template <class Done>
void run_command(self_ptr self, const std::string& id, job_command cmd, Done done) {
  auto registry = self->state.dir->get<core_role::registry>();
  if (!registry || !self->state.dir->up(core_role::registry)) {
    return done(result<ports::command_outcome>(fail(errc::unavailable, "the entity registry is restarting")));
  }
  self->request(registry, caf::infinite, msg::job_command_msg{id, std::move(cmd), system_context()})
      .then([done](msg::command_reply& r) mutable { done(std::move(r.outcome)); },
            [done](caf::error& err) mutable {
              done(result<ports::command_outcome>(fail(errc::unavailable, "actor system: " + caf::to_string(err))));
            });
}

void schedule(self_ptr self);
void finish(self_ptr self, const std::shared_ptr<running_attempt>& a);
void lease_to(self_ptr self, const std::string& id, dispatcher_state::pending_claim claim);
void settle_lost(self_ptr self);

/// The attempt of `id` in the attempts table, if it runs (or ran) here.
std::shared_ptr<running_attempt> attempt_of(dispatcher_state& st, const std::string& id) {
  std::lock_guard lock(st.attempts->mu);
  auto it = st.attempts->running.find(id);
  return it == st.attempts->running.end() ? nullptr : it->second;
}

void arm_timeout(self_ptr self, const running_attempt& a) {
  const auto limit = std::chrono::seconds(a.job.timeout_s);
  const auto ran = std::chrono::steady_clock::now() - a.started;
  const auto left =
      ran >= limit ? std::chrono::milliseconds(0) : std::chrono::duration_cast<std::chrono::milliseconds>(limit - ran);
  self->delayed_send(self, left, attempt_timeout{a.job.job_id, a.job.attempt});
}

/// Starts attempt `attempt` of `id` on a thread of its own in `slot`.
void launch(self_ptr self, const std::string& id, std::size_t slot, std::uint32_t attempt) {
  auto& st = self->state;
  auto it = st.table.find(id);
  auto a = std::make_shared<running_attempt>();
  if (it != st.table.end()) {
    a->job = it->second.job;
    it->second.status = "running";
    it->second.job.attempt = attempt;
  } else {
    // The table lost it (a terminal event folded already); nothing to run.
    st.busy.erase(slot);
    return;
  }
  a->job.attempt = attempt;
  a->slot = slot;
  {
    std::lock_guard lock(st.attempts->mu);
    if (st.attempts->stopping) return;
    st.attempts->running[id] = a;
    a->thread = std::thread(attempt_main, st.jobs, a, st.attempts, st.dir);
  }
  spdlog::info("job started job_id={} attempt={} slot={}", id, attempt, slot);
  if (it->second.cancel_requested) a->cancel.request();
  arm_timeout(self, *a);
}

/// Asks the registry to start job `id` in a free slot.
void start(self_ptr self, const std::string& id) {
  auto& st = self->state;
  std::size_t slot = 1;
  while (st.busy.contains(slot)) ++slot;
  st.busy.insert(slot);
  auto& j = st.table[id];
  j.starting = true;
  const auto project = j.job.project_id;
  run_command(self, id, start_job{st.jobs.runner_name + "/slot-" + std::to_string(slot)},
              [self, id, slot, project](result<ports::command_outcome> r) {
                auto& st = self->state;
                if (auto it = st.table.find(id); it != st.table.end()) it->second.starting = false;
                if (!r) {
                  st.busy.erase(slot);
                  if (r.error().code == errc::unavailable) {
                    if (st.table.contains(id)) enqueue(st, project, id, true);  // the tick tries again
                  } else {
                    spdlog::info("job_id={} not started: {}", id, r.error().message);
                  }
                  return;
                }
                std::uint32_t attempt = 1;
                for (const auto& e : r->events) {
                  if (auto ev = decode_event<job_event>(e); ev && std::holds_alternative<job_started>(*ev)) {
                    attempt = std::get<job_started>(*ev).attempt;
                  }
                }
                launch(self, id, slot, attempt);
                schedule(self);
              });
}

/// The spec a worker runs attempt `a` with (credentials included), or the job's error.
std::expected<ports::job_spec, std::string> remote_spec(const job_execution& jobs, const running_attempt& a) {
  const auto& in = a.job;
  auto spec = spec_of(in);
  if (auto ex = prepare(jobs, spec, in); !ex) {
    wipe(spec.credentials);
    return std::unexpected(ex.error());
  }
  return spec;
}

/// Job `id` started as attempt `attempt` for `claim`'s worker: records the lease and
/// answers the claim with the job (credentials included).
void grant(self_ptr self, const std::string& id, std::uint32_t attempt, dispatcher_state::pending_claim claim) {
  auto& st = self->state;
  auto it = st.table.find(id);
  if (it == st.table.end()) {  // a terminal event folded meanwhile: nothing to run
    st.claims.push_front(std::move(claim));
    return;
  }
  it->second.status = "running";
  it->second.job.attempt = attempt;
  if (claim.claim.still_connected && !claim.claim.still_connected()) {
    // The worker went away while `job.started` was appended: no answer can reach it.
    // The job goes back without costing an attempt (and the claim is dropped).
    const auto reason = "worker " + claim.claim.worker + " went away before the lease reached it";
    spdlog::info("job_id={} attempt={} released: {}", id, attempt, reason);
    st.unsettled[id] = release_job{reason};
    settle_lost(self);
    claim.done(std::optional<ports::leased_job>{});
    return;
  }
  auto a = std::make_shared<running_attempt>();
  a->job = it->second.job;
  a->remote = std::make_unique<remote_lease>();
  a->remote->lease_id = new_uuid_v7();
  a->remote->worker = claim.claim.worker;
  a->remote->owner = claim.claim.owner;
  a->remote->max_attempts = it->second.max_attempts;
  auto spec = remote_spec(st.jobs, *a);
  {
    std::lock_guard lock(st.attempts->mu);
    if (st.attempts->stopping) return;
    st.attempts->running[id] = a;
    if (spec) st.attempts->by_lease[a->remote->lease_id] = id;
  }
  if (!spec) {
    // It cannot run anywhere (its connection is gone, its credentials unreadable): it
    // fails as a local attempt would, and the worker waits for another job.
    {
      std::lock_guard lock(a->mu);
      a->done = failed_report(spec.error());
    }
    finish(self, a);
    st.claims.push_front(std::move(claim));
    return;
  }
  if (it->second.cancel_requested) a->cancel.request();
  arm_timeout(self, *a);
  ports::leased_job out;
  out.lease_id = a->remote->lease_id;
  out.lease = st.jobs.lease;
  out.expires_at = std::chrono::system_clock::now() + st.jobs.lease;
  out.max_attempts = it->second.max_attempts;
  out.spec = std::move(*spec);
  spdlog::info("job leased job_id={} attempt={} worker={} lease_id={}", id, attempt, a->remote->worker,
               a->remote->lease_id);
  claim.done(std::move(out));
}

/// Asks the registry to start job `id` for the worker of `claim`.
void lease_to(self_ptr self, const std::string& id, dispatcher_state::pending_claim claim) {
  auto& st = self->state;
  auto& j = st.table[id];
  j.starting = true;
  const auto project = j.job.project_id;
  const auto worker = claim.claim.worker;
  auto shared = std::make_shared<dispatcher_state::pending_claim>(std::move(claim));
  run_command(self, id, start_job{worker}, [self, id, project, shared](result<ports::command_outcome> r) {
    auto& st = self->state;
    if (auto it = st.table.find(id); it != st.table.end()) it->second.starting = false;
    if (!r) {
      if (r.error().code == errc::unavailable) {
        if (st.table.contains(id)) enqueue(st, project, id, true);  // the tick tries again
      } else {
        spdlog::info("job_id={} not started: {}", id, r.error().message);
      }
      st.claims.push_front(std::move(*shared));
      return;
    }
    std::uint32_t attempt = 1;
    for (const auto& e : r->events) {
      if (auto ev = decode_event<job_event>(e); ev && std::holds_alternative<job_started>(*ev)) {
        attempt = std::get<job_started>(*ev).attempt;
      }
    }
    grant(self, id, attempt, std::move(*shared));
    schedule(self);
  });
}

/// Answers every waiting claim of `worker` with "none" (204) and forgets it.
void drop_claims(dispatcher_state& st, const std::string& worker) {
  std::vector<claim_done> dropped;
  std::erase_if(st.claims, [&](auto& c) {
    if (c.claim.worker != worker) return false;
    dropped.push_back(std::move(c.done));
    return true;
  });
  for (auto& done : dropped) done(std::optional<ports::leased_job>{});
}

/// Forgets the waiting claims whose worker went away (its connection closed: stopped or
/// killed while it waited): leasing to one would strand its job until the lease expired.
void drop_disconnected(dispatcher_state& st) {
  std::vector<claim_done> dropped;
  std::erase_if(st.claims, [&](auto& c) {
    if (!c.claim.still_connected || c.claim.still_connected()) return false;
    spdlog::info("claim of worker={} dropped: its connection closed", c.claim.worker);
    dropped.push_back(std::move(c.done));
    return true;
  });
  for (auto& done : dropped) done(std::optional<ports::leased_job>{});
}

/// A worker asks for a job: it waits in `claims` until one is leased to it or its wait
/// ends.
void claim(self_ptr self, worker_claim_msg& m) {
  auto& st = self->state;
  {
    std::lock_guard lock(st.attempts->mu);
    auto& w = st.attempts->workers[m.claim.worker];
    w.slots = m.claim.slots;
    w.slots_free = m.claim.slots_free;
    w.last_seen = std::chrono::system_clock::now();
  }
  // A worker claims again only once its previous claim was answered: an older claim of
  // the same name waits on a connection that is gone (the worker restarted).
  drop_claims(st, m.claim.worker);
  if (m.claim.slots_free == 0) return m.done(std::optional<ports::leased_job>{});
  const auto id = st.next_claim++;
  const auto wait = m.claim.wait;
  st.claims.push_back({id, std::move(m.claim), std::move(m.done)});
  self->delayed_send(self, wait, claim_expired{id});
  schedule(self);
}

/// The lease of remote attempt `a` expired: the job goes back to the queue as a new
/// attempt, or fails when none is left (cancelled, if its cancel was requested).
void lose_lease(self_ptr self, const std::shared_ptr<running_attempt>& a) {
  auto& st = self->state;
  const auto id = a->job.job_id;
  {
    std::lock_guard lock(st.attempts->mu);
    auto it = st.attempts->running.find(id);
    if (it != st.attempts->running.end() && it->second == a) st.attempts->running.erase(it);
    st.attempts->by_lease.erase(a->remote->lease_id);
  }
  const auto reason = "worker " + a->remote->worker + " lost its lease";
  job_command cmd = fail_job{reason, ""};
  auto j = st.table.find(id);
  if (j != st.table.end() && j->second.cancel_requested) {
    cmd = confirm_cancel{};
  } else if (a->job.attempt < a->remote->max_attempts) {
    cmd = requeue_job{reason};
  }
  spdlog::warn("job_id={} attempt={} worker={} lease_id={} lost its lease: {}", id, a->job.attempt, a->remote->worker,
               a->remote->lease_id, std::holds_alternative<requeue_job>(cmd) ? "requeued" : "ended");
  st.unsettled[id] = std::move(cmd);
  // A worker that stopped heartbeating is likely gone: its waiting claims (held by
  // connections nobody reads) must not get the job again. A live one claims anew.
  drop_claims(st, a->remote->worker);
}

/// Appends the commands of lost leases (retried by the tick while the registry is away).
void settle_lost(self_ptr self) {
  auto& st = self->state;
  for (const auto& [id, cmd] : st.unsettled) {
    if (!st.settling.insert(id).second) continue;
    run_command(self, id, cmd, [self, id](result<ports::command_outcome> r) {
      auto& st = self->state;
      st.settling.erase(id);
      if (!r && r.error().code == errc::unavailable) return;  // the tick tries again
      if (!r) spdlog::warn("job_id={} with a lost lease not settled: {}", id, r.error().message);
      st.unsettled.erase(id);
    });
  }
}

/// Starts queued jobs while slots are free, then leases queued jobs to waiting workers.
void schedule(self_ptr self) {
  auto& st = self->state;
  if (!st.recovered) return;
  {
    std::lock_guard lock(st.attempts->mu);
    if (st.attempts->stopping) return;
  }
  while (st.busy.size() < st.jobs.slots) {
    auto id = next_job(st);
    if (!id) break;
    start(self, *id);
  }
  // Then the workers waiting for a job, oldest claim first, from the same fair queue.
  drop_disconnected(st);
  while (!st.claims.empty()) {
    auto id = next_job(st);
    if (!id) break;
    auto claim = std::move(st.claims.front());
    st.claims.pop_front();
    if (claim.claim.still_authorized && !claim.claim.still_authorized()) {
      enqueue(st, st.table[*id].job.project_id, *id, true);  // back to the head of its queue
      claim.done(fail(errc::unauthenticated, "the worker's token is no longer valid"));
      continue;
    }
    lease_to(self, *id, std::move(claim));
  }
}

// ---- folding the log ---------------------------------------------------------------------

void fold(self_ptr self, const envelope& e) {
  auto& st = self->state;
  if (!e.stream.starts_with("job-")) return;
  auto decoded = decode_event<job_event>(e);
  if (!decoded) {
    spdlog::warn("dispatcher: position={} not decoded: {}", e.position, decoded.error().message);
    return;
  }
  const auto id = e.stream.substr(4);
  auto it = st.table.find(id);
  std::visit(
      [&](const auto& ev) {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, job_submitted>) {
          job_entry j;
          j.job =
              launch_input{ev.job_id,        ev.project_id, ev.kind, ev.language, ev.kind == "sql" ? ev.sql : ev.script,
                           ev.connection_id, ev.timeout_s,  0};
          j.max_attempts = ev.max_attempts;
          j.status = "submitted";
          j.submitted_at = e.position;
          st.table[id] = std::move(j);
        } else if (it == st.table.end()) {
          return;  // a job finished before the checkpoint
        } else if constexpr (std::is_same_v<T, job_queued> || std::is_same_v<T, job_requeued>) {
          it->second.status = "queued";
          enqueue(st, it->second.job.project_id, id);
        } else if constexpr (std::is_same_v<T, job_started>) {
          it->second.status = "running";
          it->second.job.attempt = ev.attempt;
        } else if constexpr (std::is_same_v<T, job_cancel_requested>) {
          it->second.cancel_requested = true;
          if (auto a = attempt_of(st, id)) a->cancel.request();
        } else if constexpr (std::is_same_v<T, job_succeeded> || std::is_same_v<T, job_failed> ||
                             std::is_same_v<T, job_cancelled> || std::is_same_v<T, job_timed_out>) {
          st.table.erase(it);
        }
      },
      *decoded);
}

/// Handles the jobs left `running` by an earlier run of the server (after the first
/// catch-up): adopts those whose attempt still lives in this process (a restarted
/// dispatcher), and ends the others with exactly one event each.
void recover(self_ptr self) {
  auto& st = self->state;
  st.recovered = true;
  for (auto& [id, j] : st.table) {
    if (j.status != "running") continue;
    if (auto a = attempt_of(st, id)) {
      if (!a->remote) st.busy.insert(a->slot);
      if (j.cancel_requested) a->cancel.request();
      arm_timeout(self, *a);
      spdlog::info("dispatcher adopted job_id={} attempt={}", id, a->job.attempt);
      continue;
    }
    job_command cmd = fail_job{k_restart_reason, ""};
    if (j.cancel_requested) {
      cmd = confirm_cancel{};
    } else if (j.job.attempt < j.max_attempts) {
      cmd = requeue_job{k_restart_reason};
    }
    spdlog::warn("job_id={} attempt={} was running when the server stopped: {}", id, j.job.attempt,
                 std::holds_alternative<requeue_job>(cmd) ? "requeued" : "ended");
    run_command(self, id, std::move(cmd), [id](result<ports::command_outcome> r) {
      if (!r) spdlog::warn("orphaned job_id={} not settled: {}", id, r.error().message);
    });
  }
}

void expire(self_ptr self);

/// The first catch-up is done: settle orphans, expire old results once.
void caught_up(self_ptr self) {
  recover(self);
  expire(self);
}

/// Reads and folds up to 8 pages of the log, up to what the projections applied.
void follow(self_ptr self) {
  auto& st = self->state;
  st.follow_pending = false;
  for (int pages = 0; pages < 8 && st.read < st.projected; ++pages) {
    auto page = st.store->read_all(st.read, k_page);
    if (!page) {
      spdlog::error("dispatcher: log not read after position={}: {}", st.read, page.error().message);
      return;  // the tick tries again
    }
    if (page->empty()) break;
    for (const auto& e : *page) {
      if (e.position > st.projected) break;
      fold(self, e);
      st.read = e.position;
    }
  }
  if (st.read < st.projected) {
    st.follow_pending = true;
    self->send(self, dsp_follow_atom::value);
    return;
  }
  if (!st.recovered && st.read >= st.start_head) caught_up(self);
  schedule(self);
}

void advance(self_ptr self, std::uint64_t position) {
  auto& st = self->state;
  st.projected = std::max(st.projected, position);
  if (st.read < st.projected && !st.follow_pending) {
    st.follow_pending = true;
    self->send(self, dsp_follow_atom::value);
  } else if (st.read >= st.projected) {
    if (!st.recovered && st.read >= st.start_head) caught_up(self);
    schedule(self);
  }
}

/// Asks the runner how far the projections have applied the log (answered once they
/// reached the head at start); asks again after a failure.
void await_projections(self_ptr self) {
  auto runner = self->state.dir->get<core_role::runner>();
  if (!runner) {
    advance(self, self->state.start_head);
    return;
  }
  self->request(runner, caf::infinite, msg::await_position{self->state.start_head})
      .then(
          [self](msg::projections_ready& r) {
            if (r.applied == 0 && self->state.start_head > 0) {  // the runner stopped meanwhile
              self->delayed_send(self, std::chrono::seconds(1), dsp_await_atom::value);
              return;
            }
            advance(self, r.applied);
          },
          [self](caf::error& err) {
            spdlog::warn("dispatcher: projections not awaited: {}", caf::to_string(err));
            self->delayed_send(self, std::chrono::seconds(1), dsp_await_atom::value);
          });
}

// ---- reporting ---------------------------------------------------------------------------

/// The terminal command for an attempt's report.
job_command terminal_command(const attempt_report& r, const running_attempt& a) {
  using status = ports::job_outcome::status;
  switch (r.outcome.state) {
    case status::succeeded:
      return complete_job{r.rows, r.bytes, r.columns, r.duration_ms, r.truncated};
    case status::failed:
      return fail_job{r.outcome.error, r.outcome.sqlstate};
    case status::interrupted:
      break;
  }
  if (a.timed_out) return time_out_job{static_cast<std::uint32_t>((r.duration_ms + 500) / 1000)};
  if (a.cancel.requested()) return confirm_cancel{};
  if (a.remote) {
    // The worker stopped (SIGTERM) and gave the job back.
    auto reason = "worker " + a.remote->worker + " stopped while running it";
    if (a.job.attempt < a.remote->max_attempts) return requeue_job{std::move(reason)};
    return fail_job{std::move(reason), ""};
  }
  return fail_job{"interrupted", ""};
}

/// The attempt of `id` is settled: forget it, free its slot, join its thread.
void release(self_ptr self, const std::shared_ptr<running_attempt>& a) {
  auto& st = self->state;
  std::thread t;
  {
    std::lock_guard lock(st.attempts->mu);
    if (st.attempts->stopping) return;  // the runtime joins it
    auto it = st.attempts->running.find(a->job.job_id);
    if (it != st.attempts->running.end() && it->second == a) st.attempts->running.erase(it);
    t = std::move(a->thread);
  }
  if (t.joinable()) t.join();  // it has recorded its report: only its return is left
  st.busy.erase(a->slot);
  st.reporting.erase(a->job.job_id);
  schedule(self);
}

/// Appends the terminal event of a finished attempt (once; a refusal is looked at, not
/// retried blindly; `unavailable` is retried by the tick).
void finish(self_ptr self, const std::shared_ptr<running_attempt>& a) {
  auto& st = self->state;
  const auto& id = a->job.job_id;
  if (st.reporting.contains(id)) return;
  std::optional<attempt_report> report;
  {
    std::lock_guard lock(a->mu);
    report = a->done;
  }
  if (!report) return;
  st.reporting.insert(id);
  auto cmd = terminal_command(*report, *a);
  static constexpr std::array<const char*, 11> k_names{"submit",    "cancel", "start",     "progress",
                                                       "succeeded", "failed", "timed_out", "cancelled",
                                                       "requeued",  "expire", "released"};
  spdlog::info("job finished job_id={} attempt={} outcome={} duration_ms={}", id, a->job.attempt, k_names[cmd.index()],
               report->duration_ms);
  run_command(self, id, cmd, [self, a, report](result<ports::command_outcome> r) {
    auto& st = self->state;
    const auto& id = a->job.job_id;
    if (r) return release(self, a);
    if (r.error().code == errc::unavailable) {
      st.reporting.erase(id);  // the tick sends it again
      return;
    }
    const auto status = r.error().details.is_object() ? r.error().details.value("status", "") : std::string();
    if (r.error().code == errc::failed_precondition && status == "running") {
      // E.g. an interruption without a cancel request: still one terminal event.
      spdlog::warn("job_id={} terminal refused ({}); failing it", id, r.error().message);
      run_command(self, id, fail_job{report->outcome.error.empty() ? "interrupted" : report->outcome.error, ""},
                  [self, a](result<ports::command_outcome>) { release(self, a); });
      return;
    }
    // Already terminal (or gone): the log holds its one terminal event.
    spdlog::info("job_id={} terminal not appended: {}", id, r.error().message);
    release(self, a);
  });
}

/// Every tick: report progress (newest only, one command per job in flight), settle
/// finished attempts whose notice was lost, save the checkpoint, start what fits.
void tick(self_ptr self) {
  auto& st = self->state;
  std::vector<std::shared_ptr<running_attempt>> all;
  {
    std::lock_guard lock(st.attempts->mu);
    if (st.attempts->stopping) return;
    for (auto& [id, a] : st.attempts->running) all.push_back(a);
  }
  if (st.recovered) {
    const auto now = std::chrono::steady_clock::now();
    for (auto& a : all) {
      if (a->remote) {
        bool lose = false;
        {
          std::lock_guard lock(a->mu);
          if (!a->done && !a->remote->completing && !a->remote->lost && now - a->remote->renewed > st.jobs.lease) {
            a->remote->lost = lose = true;
          }
        }
        if (lose) {
          lose_lease(self, a);
          continue;
        }
      }
      std::optional<ports::job_progress> p;
      bool done = false;
      {
        std::lock_guard lock(a->mu);
        done = a->done.has_value();
        if (!done && !st.progress_in_flight.contains(a->job.job_id)) p = std::exchange(a->progress, std::nullopt);
      }
      if (done) {
        finish(self, a);
        continue;
      }
      if (!p) continue;
      const auto id = a->job.job_id;
      st.progress_in_flight.insert(id);
      run_command(self, id,
                  report_progress{p->rows, p->bytes, p->percent, static_cast<std::uint64_t>(p->elapsed.count()), ""},
                  [self, id](result<ports::command_outcome>) { self->state.progress_in_flight.erase(id); });
    }
  }
  settle_lost(self);
  if (std::chrono::steady_clock::now() - st.last_save >= k_save_every) save_checkpoint(st);
  if (st.read < st.projected && !st.follow_pending) {
    st.follow_pending = true;
    self->send(self, dsp_follow_atom::value);
  }
  schedule(self);
}

/// Expires results committed before now − ttl: `job.result_expired` first, then the
/// files (a crash between leaves a file, never a 410 with data behind it).
void expire(self_ptr self) {
  auto& st = self->state;
  if (st.jobs.result_ttl.count() <= 0 || !st.recovered) return;
  auto ids = st.jobs.results->committed_before(std::chrono::system_clock::now() - st.jobs.result_ttl, k_expire_batch);
  if (!ids) {
    spdlog::warn("dispatcher: expired results not listed: {}", ids.error().message);
    return;
  }
  for (const auto& id : *ids) {
    if (st.table.contains(id) || !st.expiring.insert(id).second) continue;  // a new attempt is under way
    run_command(self, id, expire_result{}, [self, id](result<ports::command_outcome> r) {
      auto& st = self->state;
      st.expiring.erase(id);
      bool remove = r.has_value() || r.error().code == errc::not_found;
      if (!r && r.error().code == errc::failed_precondition && r.error().details.is_object()) {
        remove = r.error().details.value("status", "x").empty();  // no such job
      }
      if (!remove) {
        if (r.error().code != errc::failed_precondition) {
          spdlog::warn("job_id={} result not expired: {}", id, r.error().message);
        }
        return;
      }
      if (auto ok = st.jobs.results->remove(id); !ok) {
        spdlog::warn("job_id={} expired result not removed: {}", id, ok.error().message);
      } else {
        spdlog::info("job result expired job_id={}", id);
      }
    });
  }
}

dispatcher_impl::behavior_type job_dispatcher(self_ptr self, ports::event_store* store,
                                              ports::read_model_store* checkpoints, job_execution jobs,
                                              std::shared_ptr<job_attempts> attempts,
                                              std::shared_ptr<core_directory> dir, std::uint64_t start) {
  self->set_exception_handler(log_actor_exception);
  auto& st = self->state;
  st.store = store;
  st.checkpoints = checkpoints;
  st.jobs = std::move(jobs);
  st.attempts = std::move(attempts);
  st.dir = std::move(dir);
  st.read = st.saved = start;
  st.start_head = store->head_position();
  {
    std::lock_guard lock(st.attempts->mu);
    st.attempts->lease = st.jobs.lease;
    st.attempts->results = st.jobs.results;
    st.attempts->limits = st.jobs.limits;
  }
  spdlog::info("job dispatcher starts after position={} head={} slots={}", start, st.start_head, st.jobs.slots);
  await_projections(self);
  self->delayed_send(self, k_tick, dsp_tick_atom::value);
  self->delayed_send(self, st.jobs.expiry_interval, dsp_expire_atom::value);
  return {
      [self](msg::log_advanced& m) { advance(self, m.position); },
      [self](dsp_follow_atom) { follow(self); },
      [self](dsp_tick_atom) {
        tick(self);
        self->delayed_send(self, k_tick, dsp_tick_atom::value);
      },
      [self](dsp_await_atom) {
        if (self->state.projected < self->state.start_head) await_projections(self);
      },
      [self](dsp_expire_atom) {
        expire(self);
        self->delayed_send(self, self->state.jobs.expiry_interval, dsp_expire_atom::value);
      },
      [self](attempt_done& m) {
        if (!self->state.recovered) return;  // adopted and settled after the catch-up
        if (auto a = attempt_of(self->state, m.job_id)) finish(self, a);
      },
      [self](remote_done_msg& m) {
        if (!self->state.recovered) return;  // adopted and settled after the catch-up
        if (auto a = attempt_of(self->state, m.job_id)) finish(self, a);
      },
      [self](worker_claim_msg& m) { claim(self, m); },
      [self](claim_expired& m) {
        auto& claims = self->state.claims;
        auto it = std::ranges::find_if(claims, [&](const auto& c) { return c.id == m.id; });
        if (it == claims.end()) return;
        auto done = std::move(it->done);
        claims.erase(it);
        done(std::optional<ports::leased_job>{});
      },
      [self](attempt_timeout& m) {
        auto a = attempt_of(self->state, m.job_id);
        if (!a || a->job.attempt != m.attempt) return;
        {
          std::lock_guard lock(a->mu);
          if (a->done) return;
        }
        spdlog::info("job timed out job_id={} attempt={} after_s={}", m.job_id, m.attempt, a->job.timeout_s);
        a->timed_out = true;
        a->cancel.request();
      },
  };
}

}  // namespace

result<dispatcher_actor> spawn_job_dispatcher(caf::actor_system& sys, ports::event_store& store,
                                              ports::read_model_store& checkpoints, job_execution jobs,
                                              std::shared_ptr<job_attempts> attempts,
                                              std::shared_ptr<core_directory> dir) {
  auto start = checkpoints.checkpoint(jobs.checkpoint_name);
  if (!start) return std::unexpected(start.error());
  return sys.spawn(job_dispatcher, &store, &checkpoints, std::move(jobs), std::move(attempts), std::move(dir), *start);
}

}  // namespace atrium::actors
