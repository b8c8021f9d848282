#pragma once
/// `atriumd worker`: a remote worker (issue 16). It claims jobs from a server over the
/// lease protocol (ports/job_leases.hpp, served under `/v1/workers/…`), runs them with
/// the same executors as the server (adapters/connectors, adapters/process), keeps each
/// result in a local file result store under `WORK_DIR/results` until the server has
/// acknowledged its upload, heartbeats every lease/3, and reconnects with a bounded,
/// jittered back-off.
///
///   claim loop ──POST claim (long-poll 20 s)──▶ server ──job + lease──▶ job thread
///   job thread: executor.run ─▶ local result (committed) ─▶ POST result ×N ─▶ POST complete
///   heartbeat thread: POST heartbeat per lease every lease/3 ─▶ cancel? lost (410)?
///   SIGTERM: no more claims: the waiting claim is cancelled (its connection closed) and
///            withdrawn (`POST claim {"slots_free": 0}`), so no job is leased to it; running
///            jobs are interrupted and reported `interrupted` (the server requeues
///            them); exit 0 within about 15 s.

#include "app/options.hpp"

namespace atrium::app {

/// Runs the worker until SIGTERM/SIGINT. Returns the exit status (0 stopped cleanly,
/// 1 could not start).
int run_worker(const worker_options& opts);

}  // namespace atrium::app
