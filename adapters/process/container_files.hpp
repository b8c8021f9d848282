#pragma once
/// The files of a `process` runtime container, shared by the adapter
/// (container_runtime.cpp, inside atriumd) and its supervisor, `atrium-shim`
/// (shim_main.cpp). Everything lives in the container's directory,
/// `DATA_DIR/containers/<container_id>/`, which is also the process's working directory:
///
///   runtime.json   written by `create` (atomically): the runtime container — its runtime
///                  id, instance, spec (command, env, ports, limits) and log settings
///   runtime.seq    the last runtime id number used for this container (decimal)
///   state.json     written by the shim (atomically, write + rename) when the process has
///                  started and when it has ended: pids, /proc start times, exit code
///   lock           held (flock LOCK_EX) by the shim for as long as it lives
///   log, log.1 … log.N   the process's stdout and stderr, interleaved, rotated
///
/// The JSON shapes are documented on `runtime_record` and `state_record`; both parsers
/// accept any bytes (hostile-input suite, tests/fuzz/container_state_fuzz.cpp) and report
/// malformed input as `invalid_argument`.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"

namespace atrium::process_adapter {

/// The longest log line kept whole (bytes, without the newline); a longer one is split.
inline constexpr std::size_t max_log_line = 16 * 1024;

/// Log rotation settings: `log` grows to `max_bytes`, then `log.N-1`→`log.N` … `log`→`log.1`
/// and a new `log` begins; at most `files` rotated files are kept (0: `log` is truncated).
struct log_settings {
  std::uint64_t max_bytes = 1024 * 1024;  ///< per file, ≥ 4096 (smaller values are raised to it)
  unsigned files = 3;                     ///< rotated files kept, 0–100
};

/// runtime.json:
/// `{"runtime_id": "proc-<cid>-<n>", "container_id", "instance", "spec_version": n, "name",
///   "command": [argv…], "env": {k: v}, "ports": [n…], "limits": {"memory_bytes"?, "cpus"?,
///   "pids"?}, "cgroups": bool, "log": {"max_bytes", "files"}}`
struct runtime_record {
  std::string runtime_id;
  std::string container_id;
  std::string instance;
  std::uint64_t spec_version = 0;
  std::string name;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::vector<int> ports;
  std::optional<std::uint64_t> memory_bytes;
  std::optional<double> cpus;
  std::optional<std::uint32_t> pids;
  bool cgroups = true;  ///< use a cgroup where one is available (container_cgroup.hpp), else rlimits
  log_settings log;
};

/// state.json:
/// `{"runtime_id", "start": n (1 for the first start), "status": "running"|"exited",
///   "shim_pid", "pid", "pid_start": ticks (field 22 of /proc/<pid>/stat),
///   "started_at_ms": Unix ms, "exit_code"?: n, "reason"?: "exited"|"killed"|"oom"|"lost",
///   "finished_at_ms"?, "error"?: text, "limits_by"?: "cgroup-v2"|"cgroup-v1"|"rlimit",
///   "cgroups"?: [dir…] (the container's cgroup directories)}`
struct state_record {
  std::string runtime_id;
  std::uint64_t start = 0;
  bool running = false;
  std::int64_t shim_pid = 0;
  std::int64_t pid = 0;
  std::uint64_t pid_start = 0;
  std::int64_t started_at_ms = 0;
  std::optional<int> exit_code;
  std::string reason;
  std::int64_t finished_at_ms = 0;
  std::string error;
  std::string limits_by;
  std::vector<std::string> cgroups;
};

/// Encodes / decodes runtime.json. Decoding errors: `invalid_argument` (not JSON, a field
/// of the wrong type or out of range, an empty command).
[[nodiscard]] std::string encode(const runtime_record& r);
[[nodiscard]] result<runtime_record> decode_runtime(std::string_view text);

/// Encodes / decodes state.json. Decoding errors: `invalid_argument`.
[[nodiscard]] std::string encode(const state_record& s);
[[nodiscard]] result<state_record> decode_state(std::string_view text);

/// Reads a whole file of at most `limit` bytes. Errors: `not_found` (no such file),
/// `invalid_argument` (larger than `limit`), `internal` (other I/O errors).
[[nodiscard]] result<std::string> read_file(const std::filesystem::path& path, std::size_t limit);

/// Writes `content` to `path` atomically: a temp file in the same directory, fsync,
/// rename(2). Errors: `internal` with the errno text.
[[nodiscard]] result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content);

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// /proc/<pid>/stat), or nullopt when there is no such process or it is a zombie (it
/// has ended and waits for its parent). Together with the pid it names one process:
/// a reused pid has another start time.
[[nodiscard]] std::optional<std::uint64_t> process_start_ticks(std::int64_t pid);

/// Whether the process `pid` with start time `start_ticks` still runs (not a zombie).
[[nodiscard]] bool process_alive(std::int64_t pid, std::uint64_t start_ticks);

/// The environment of the container's process (and of `exec` probes), as `K=V` strings:
/// `PATH=/usr/local/bin:/usr/bin:/bin`, `HOME=<dir>`, `LANG=C.UTF-8` (each overridable by
/// the spec), then the spec's `env`, then `PORT_<n>=<n>` for every declared port and
/// `PORTS=<n>,<n>…` (declared order). Nothing of atriumd's own environment is inherited.
[[nodiscard]] std::vector<std::string> container_environment(const runtime_record& r, const std::filesystem::path& dir);

/// Resolves `program` as execvp(3) would, against the `PATH=` entry of `env` (a name
/// with a slash is taken as it is). Returns nullopt when no executable file is found.
[[nodiscard]] std::optional<std::string> resolve_program(const std::string& program,
                                                         const std::vector<std::string>& env);

/// Splits a byte stream into lines of at most `max_log_line` bytes (a longer line is cut
/// into pieces; a trailing `\r` is kept). Memory is bounded by `max_log_line`.
class line_splitter {
 public:
  /// Feeds bytes; calls `emit` for each complete line (without its `\n`).
  void feed(std::string_view bytes, const std::function<void(std::string_view)>& emit);
  /// Emits what is buffered (a line without its newline yet), if anything.
  void flush(const std::function<void(std::string_view)>& emit);
  /// Whether a partial line is buffered.
  [[nodiscard]] bool pending() const noexcept { return !buffer_.empty(); }

 private:
  std::string buffer_;
};

/// Appends lines to `<dir>/log` and rotates it (see `log_settings`). Rotation happens
/// only between lines, so every file holds whole lines. Used by the shim.
class log_writer {
 public:
  /// Opens (creates) `<dir>/log` for appending. Errors: `internal`.
  [[nodiscard]] static result<log_writer> open(const std::filesystem::path& dir, log_settings settings);
  log_writer(log_writer&& other) noexcept;
  log_writer& operator=(log_writer&&) = delete;
  ~log_writer();
  /// Writes `line` and a newline, rotating first when `log` would pass `max_bytes`.
  /// I/O errors are dropped (the output of a process is never allowed to stop it).
  void write_line(std::string_view line);

 private:
  log_writer(std::filesystem::path dir, log_settings settings, int fd, std::uint64_t size);
  void rotate();
  std::filesystem::path dir_;
  log_settings settings_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// The log files of `dir`, oldest first: `log.N` … `log.1`, `log` (only those present).
[[nodiscard]] std::vector<std::filesystem::path> log_files_oldest_first(const std::filesystem::path& dir);

/// The last `count` lines across the rotated log files of `dir` (oldest first), read
/// backwards in blocks, so the work is bounded by what is returned. The newest file is
/// read only up to `newest_size` bytes (where a follow continues).
[[nodiscard]] std::vector<std::string> tail_log(const std::filesystem::path& dir, std::size_t count,
                                                std::uint64_t newest_size);

/// Checks a container id before it becomes a path: 1–128 of `[A-Za-z0-9_-]`.
[[nodiscard]] bool valid_container_id(std::string_view id) noexcept;

/// Splits `proc-<container_id>-<n>` into its container id and number. nullopt when it is
/// not such an id.
[[nodiscard]] std::optional<std::pair<std::string, std::uint64_t>> parse_runtime_id(std::string_view id);

/// Unix time now in milliseconds.
[[nodiscard]] std::int64_t unix_ms_now();

}  // namespace atrium::process_adapter
