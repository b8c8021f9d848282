#pragma once
/// The attempts table shared by the job dispatcher (job_dispatcher.cpp), its attempt
/// threads, the worker-lease port (worker_leases.cpp) and the runtime. Internal to
/// actors/: one running_attempt per job that runs in this process (a local slot) or is
/// leased to a remote worker (`remote` set). An attempt stays in the table until its
/// terminal command is answered, so an outcome is never lost to a dispatcher restart.
///
/// Locks: `job_attempts::mu` guards the maps of the table and an attempt's `thread`;
/// `running_attempt::mu` guards an attempt's progress, report and lease state;
/// `running_attempt::upload_mu` serializes a remote attempt's uploads and completion
/// (file I/O, never under the other two). Order: upload_mu, then job_attempts::mu, then
/// running_attempt::mu.

#include <caf/allowed_unsafe_message_type.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "events/job/job_events.hpp"
#include "ports/job_executor.hpp"
#include "ports/job_leases.hpp"
#include "ports/result_store.hpp"

namespace atrium::actors {

/// How one attempt ended, as its thread (or its worker) saw it.
struct attempt_report {
  ports::job_outcome outcome;
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;
  std::vector<job_column> columns;
  bool truncated = false;
  std::uint64_t duration_ms = 0;
};

/// What an attempt needs of the job (copied from the dispatcher's table).
struct launch_input {
  std::string job_id;
  std::string project_id;
  std::string kind;
  std::string language;
  std::string source;
  std::string connection_id;
  std::uint32_t timeout_s = 3600;
  std::uint32_t attempt = 1;
};

/// A writer that remembers the columns it was given (for `job.succeeded`).
class recording_writer final : public ports::result_writer {
 public:
  explicit recording_writer(ports::result_writer& inner) : inner_(inner) {}
  result<void> begin(const std::vector<ports::result_column>& columns) override {
    auto ok = inner_.begin(columns);
    if (ok && columns_.empty()) {
      for (const auto& c : columns) columns_.push_back(job_column{c.name, c.type});
    }
    return ok;
  }
  result<std::size_t> append(const ports::row_batch& rows) override { return inner_.append(rows); }
  [[nodiscard]] bool full() const override { return inner_.full(); }
  result<void> append_log(std::string_view bytes) override { return inner_.append_log(bytes); }
  [[nodiscard]] std::uint64_t rows() const override { return inner_.rows(); }
  [[nodiscard]] std::uint64_t bytes() const override { return inner_.bytes(); }
  result<void> commit() override { return inner_.commit(); }
  /// The columns given to `begin` (empty before).
  [[nodiscard]] const std::vector<job_column>& columns() const { return columns_; }

 private:
  ports::result_writer& inner_;
  std::vector<job_column> columns_;
};

/// The lease of an attempt that runs on a remote worker.
struct remote_lease {
  std::string lease_id;
  std::string worker;
  std::string owner;  // user id of the worker's credentials
  std::uint32_t max_attempts = 1;
  std::chrono::steady_clock::time_point renewed = std::chrono::steady_clock::now();  // guarded by attempt mu
  bool lost = false;        // guarded by attempt mu: expired; every later call is `gone`
  bool completing = false;  // guarded by attempt mu: a completion is being committed (never lost then)
  // Guarded by upload_mu:
  std::unique_ptr<ports::result_writer> store_writer;
  std::unique_ptr<recording_writer> writer;  // over store_writer
  std::uint64_t next_seq = 0;
  bool has_rows = false;
};

/// One attempt running (or finished and not yet reported) for this server.
struct running_attempt {
  launch_input job;
  std::size_t slot = 0;  // local slot (from 1); 0 for a remote attempt
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  ports::cancel_signal cancel;
  std::atomic<bool> timed_out{false};           // the dispatcher interrupted it for its timeout
  std::thread thread;                           // guarded by job_attempts::mu (local attempts only)
  std::mutex mu;                                // guards the two below and the lease's state
  std::optional<ports::job_progress> progress;  // the newest, not yet reported
  std::optional<attempt_report> done;
  std::unique_ptr<remote_lease> remote;  // set (at creation) for an attempt leased to a worker
  std::mutex upload_mu;
};

/// A worker the server has heard from.
struct worker_record {
  std::uint32_t slots = 0;
  std::uint32_t slots_free = 0;
  std::chrono::system_clock::time_point last_seen;
};

class job_attempts {
 public:
  std::mutex mu;
  std::map<std::string, std::shared_ptr<running_attempt>> running;  // by job id
  bool stopping = false;
  // Remote workers (guarded by mu):
  std::map<std::string, std::string> by_lease;   // lease id → job id (live leases)
  std::set<std::string> completed;               // lease ids completed lately (a retried completion succeeds)
  std::deque<std::string> completed_order;       // oldest first, bounded
  std::map<std::string, worker_record> workers;  // by name
  std::chrono::milliseconds lease{std::chrono::seconds(30)};  // set by the dispatcher at start
  ports::result_store* results = nullptr;                     // where uploads go
  ports::result_limits limits;

  /// Notes that `worker` was heard from now.
  void seen(const std::string& worker) { workers[worker].last_seen = std::chrono::system_clock::now(); }
  /// Remembers `lease_id` as completed (the newest 4096).
  void remember_completed(const std::string& lease_id) {
    if (!completed.insert(lease_id).second) return;
    completed_order.push_back(lease_id);
    if (completed_order.size() > 4096) {
      completed.erase(completed_order.front());
      completed_order.pop_front();
    }
  }
};

/// Answers a claim: a leased job, nullopt (none within the wait), or an error.
using claim_done = std::function<void(result<std::optional<ports::leased_job>>)>;

/// From the lease port to the dispatcher: lease the next job to `claim.worker`.
struct worker_claim_msg {
  ports::lease_claim claim;
  claim_done done;
};

/// From the lease port to the dispatcher: the remote attempt of `job_id` completed (its
/// report is in the attempts table).
struct remote_done_msg {
  std::string job_id;
};

class core_directory;

// ---- the lease port over the table (worker_leases.cpp; actor_runtime forwards) --------

/// Sends `claim` to the dispatcher found in `dir`; `done` is answered exactly once
/// (`unavailable` when there is no dispatcher, or it stops first).
void send_claim(job_attempts* attempts, const core_directory& dir, ports::lease_claim claim, claim_done done);
/// ports::job_leases::heartbeat over `attempts`.
[[nodiscard]] result<ports::lease_renewal> renew_lease(job_attempts* attempts, const std::string& lease_id,
                                                       const std::string& worker, const std::string& owner,
                                                       const ports::job_progress& progress);
/// ports::job_leases::upload over `attempts`.
[[nodiscard]] result<ports::upload_ack> upload_to_lease(job_attempts* attempts, const std::string& lease_id,
                                                        const std::string& worker, const std::string& owner,
                                                        ports::lease_upload batch);
/// ports::job_leases::complete over `attempts`; tells the dispatcher found in `dir`.
[[nodiscard]] result<void> complete_lease(job_attempts* attempts, const core_directory& dir,
                                          const std::string& lease_id, const std::string& worker,
                                          const std::string& owner, const ports::lease_completion& done);
/// ports::job_leases::workers over `attempts` (empty when null).
[[nodiscard]] std::vector<ports::worker_info> list_workers(job_attempts* attempts);

}  // namespace atrium::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::actors::worker_claim_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(atrium::actors::remote_done_msg)
