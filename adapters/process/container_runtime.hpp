#pragma once
/// The `process` container runtime (ports/container_runtime.hpp): a container's
/// `command` runs as a local process, supervised by a small per-container supervisor,
/// `atrium-shim` (adapters/process/shim_main.cpp, an executable of its own built next to
/// atriumd), as containerd-shim and conmon do it:
///
///   atriumd (this adapter)                         DATA_DIR/containers/<container_id>/
///     create ──runtime.json (spec, instance)─────▶  runtime.json, runtime.seq
///     start ──posix_spawn(setsid) atrium-shim ──▶   atrium-shim (forks again: owned by init,
///       ◀── "ok <pid>" on a pipe ──────────────────   survives an atriumd SIGKILL; holds `lock`)
///                                                      └─ command (setsid: own group, cwd = dir,
///                                                          stdin /dev/null, out ─▶ log, log.1…)
///     list/inspect ◀── state.json (pid + /proc start time; exit code at exit), `lock`
///     watch ◀── inotify on the container dirs (state.json is renamed into place) + a scan
///               every `scan_interval` (finds processes that ended with no shim to tell)
///     stop ──SIGTERM to the group, SIGKILL after grace, until no process of it is left
///
/// Runtime ids are `proc-<container_id>-<n>` (n grows with each `create` of the
/// container, kept in runtime.seq). A container dir holds one runtime container at a
/// time: `create` replaces an earlier one that does not run, and fails with
/// `invalid_argument` while it runs (stop or remove it first).
///
/// State: `created` (runtime.json, no state.json for it), `running` (state.json says so
/// and the process with that pid and /proc start time lives — a reused pid does not
/// count), `exited` (exit code; 128+N and reason `killed` for signal N; the shim records
/// it even while atriumd is down, so a restarted atriumd still knows it), or `exited`
/// with reason `lost` and no exit code (the process is gone and nobody recorded how:
/// shim killed, or state.json unreadable/corrupt).
///
/// Adoption: nothing to do — `list()` reads what runs from the files; `start` of a
/// container whose shim or process lives is a no-op (never a second process).
///
/// Environment (nothing of atriumd's is inherited): `PATH=/usr/local/bin:/usr/bin:/bin`,
/// `HOME=<dir>`, `LANG=C.UTF-8`, the spec's `env` (overriding those), `PORT_<n>=<n>` for
/// every declared port and `PORTS=<n>,<n>,…`.
///
/// Limits, as enforced (state.json's `limits_by` says which way a start went):
///   - with a cgroup (adapters/process/container_cgroup.hpp; v2 when /sys/fs/cgroup is a
///     cgroup2 tree offering memory, pids and cpu and is writable, else v1 hierarchies of
///     those controllers when writable — the machine this was built on has v1 only, and
///     the tests ran there; the v2 path is written to the kernel's documentation but was
///     not run): `memory_bytes` → memory.max / memory.limit_in_bytes (and no swap past
///     it): the kernel OOM-kills the container, reported as exit 137 with reason `oom`;
///     `pids` → pids.max (fork fails with EAGAIN past it, for root too); `cpus` →
///     cpu.max / cpu.cfs_quota_us per 100 ms period (throttled, not killed). A process
///     that leaves the process group with setsid(2) stays in the cgroup, so `stop` and
///     the shim's end-of-container kill reach it too;
///   - without (no writable hierarchy, or `cgroups = false`): setrlimit(2) in the child,
///     inherited by everything it starts: `memory_bytes` → RLIMIT_AS (virtual address
///     space per process: allocations past it fail — the program sees ENOMEM/MemoryError
///     and usually exits non-zero; reason `exited`, never `oom`); `pids` → RLIMIT_NPROC
///     (processes of the user's uid, all of them, not only this container's; NOT
///     enforced for root or CAP_SYS_RESOURCE); `cpus` → not enforced.
///
/// Logs: stdout and stderr interleaved into `log`, rotated at `log_max_bytes` into
/// `log.1` … `log.<log_files>`; lines longer than 16 KiB are split. The directory and logs
/// stay after `remove` (they go with the aggregate).
///
/// The host's pid 1 should reap orphans (the shim is re-parented to it); where it does not,
/// an exited shim stays a zombie, which liveness checks treat as dead.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "ports/container_runtime.hpp"

namespace atrium::process_adapter {

/// Settings of the process runtime.
struct process_runtime_options {
  std::filesystem::path data_dir;             ///< DATA_DIR: containers live in DATA_DIR/containers/<container_id>/
  std::string instance;                       ///< this atriumd's instance id; `list()` returns only its containers
  std::uint64_t log_max_bytes = 1024 * 1024;  ///< size of `log` before rotation, ≥ 4096
  unsigned log_files = 3;                     ///< rotated files kept (`log.1`…), 0–100
  /// The supervisor executable; empty: `atrium-shim` in the directory of
  /// /proc/self/exe (where the build and the install put it next to atriumd).
  std::filesystem::path shim_path;
  /// How often `watch` rescans all containers besides its inotify events (a backstop:
  /// exits, removals and shim deaths arrive through inotify).
  std::chrono::milliseconds scan_interval{5000};
  /// Enforce limits with a cgroup per container where the machine offers one (see
  /// above); false: always setrlimit.
  bool cgroups = true;
};

/// Makes the process runtime. Never fails: a missing shim makes `start` fail with
/// `unavailable` (and names the path looked at).
[[nodiscard]] std::unique_ptr<ports::container_runtime> make_process_runtime(process_runtime_options options);

}  // namespace atrium::process_adapter
