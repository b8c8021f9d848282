#pragma once
/// Control groups for `process` runtime containers: the limits of a container's spec as
/// the kernel enforces them for every process it starts, its OOM kills, and the list of
/// its processes (also those that left its process group with setsid).
///
/// Which hierarchy (`detect`, from /proc/self/cgroup and /sys/fs/cgroup):
///   - cgroup v2, when /sys/fs/cgroup is a cgroup2 file system whose root offers the
///     `memory`, `pids` and `cpu` controllers and is writable (root, or a delegated tree):
///     `/sys/fs/cgroup/atrium.<instance>/<container_id>/` with `memory.max` (+
///     `memory.swap.max` 0), `pids.max`, `cpu.max` "<cpus×100000> 100000"; OOM kills
///     from `memory.events` (`oom_kill`);
///   - cgroup v1, when `memory`, `pids` and `cpu` hierarchies are mounted under
///     /sys/fs/cgroup/<controller> and writable: in each, `<the caller's own cgroup>/
///     atrium.<instance>/<container_id>/` (so the caller's own limits still apply above) with
///     `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` where swap accounting is
///     on), `pids.max`, `cpu.cfs_quota_us`/`cpu.cfs_period_us` (100 ms); OOM kills from
///     `memory.oom_control` (`oom_kill`);
///   - none: the caller falls back to setrlimit (container_runtime.hpp says what that
///     enforces).
/// The shim creates the container's cgroup before the process starts, moves the process
/// into it before execve, reads the OOM counter at exit, kills what is left in it and
/// removes it. Paths recorded in state.json are checked (`valid_cgroup_path`) before
/// atriumd signals anything listed in them.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "events/error.hpp"

namespace atrium::process_adapter {

/// The cgroup of one container: one directory (v2) or one per controller (v1).
struct cgroup_set {
  enum class version { none, v1, v2 };
  version kind = version::none;
  std::vector<std::string> dirs;  ///< absolute paths under /sys/fs/cgroup
};

/// The limits to write, as in the container's spec (nullopt: unlimited).
struct cgroup_limits {
  std::optional<std::uint64_t> memory_bytes;
  std::optional<double> cpus;
  std::optional<std::uint32_t> pids;
};

/// The name of the per-instance parent directory: `atrium.<instance>` with every byte
/// outside `[A-Za-z0-9_-]` replaced by `_` (at most 64 bytes of the instance).
[[nodiscard]] std::string cgroup_parent_name(const std::string& instance);

/// Creates the container's cgroup and writes its limits. Errors: `unavailable` when no
/// usable hierarchy exists or creating/writing fails (what was created is removed again).
[[nodiscard]] result<cgroup_set> create_cgroup(const std::string& instance, const std::string& container_id,
                                               const cgroup_limits& limits);

/// Moves the calling process into every directory of `set` (writes "0" to
/// cgroup.procs). Only async-signal-safe calls: used between fork and execve. `paths`
/// are the precomputed `<dir>/cgroup.procs` C strings. Returns 0 or an errno.
int join_cgroup(const std::vector<const char*>& procs_paths) noexcept;

/// The number of OOM kills in the container's memory cgroup (0 when unknown).
[[nodiscard]] std::uint64_t cgroup_oom_kills(const cgroup_set& set);

/// The pids listed in the cgroup.procs files of `set` (deduplicated).
[[nodiscard]] std::vector<pid_t> cgroup_pids(const cgroup_set& set);

/// Sends `sig` to every process of `set`; returns how many there were.
std::size_t signal_cgroup(const cgroup_set& set, int sig);

/// Kills (SIGKILL) what is left in `set`, waits up to `patience_ms` for it to be empty,
/// then removes its directories, and the per-instance parent when it is empty.
void destroy_cgroup(const cgroup_set& set, int patience_ms);

/// Whether `path` is a container cgroup directory this runtime could have created for
/// `container_id`: under /sys/fs/cgroup/, no `..`, ending in `/atrium.<…>/<container_id>`.
[[nodiscard]] bool valid_cgroup_path(const std::string& path, const std::string& container_id);

}  // namespace atrium::process_adapter
