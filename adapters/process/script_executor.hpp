#pragma once
/// The `script` job executor (ports/job_executor.hpp): runs a job's Python or Bash text
/// as a child process and streams its output and its `result.csv` into the job's
/// `result_writer`.
///
///   run(spec) ─▶ <work_root>/<job_id>-<attempt>/ (fresh, 0700) ◀─ script.py | script.sh
///      │ fork: setsid (own session and process group), rlimits, stdin /dev/null,
///      │       stdout/stderr pipes, a built environment, execve
///      ▼
///   [bwrap sandbox ─▶] python3 -I -u script.py | bash script.sh
///      │ poll(stdout, stderr, wake eventfd, 100 ms)
///      ├─ output ──append_log (interleaved, first `max_log_bytes`; the rest read and dropped)
///      ├─ every `progress_interval` ──progress(bytes of output, elapsed)
///      ├─ cancel.request() ──eventfd──▶ SIGTERM to the group, SIGKILL after `grace`
///      ▼ exit: SIGKILL to what is left of the group; wait until no process of it is left
///   exit 0 ──result.csv (csv_reader.hpp) ──begin/append in batches──▶ writer
///   the work dir is removed; the writer is never committed (the caller does that)
///
/// Outcomes: `interrupted` when `cancel.request()` came before the script ended (also
/// during the CSV import); `failed` with `exit status N: <last line of stderr>`, `killed
/// by signal N (SIGXCPU: CPU time limit …)`, an error of `result.csv` (malformed,
/// ragged, invalid UTF-8: the rows already appended stay in the writer, the job fails),
/// or an unknown language / missing interpreter; else `succeeded`.
///
/// The child's environment is built from scratch — nothing is inherited (so no
/// `ATRIUM_*` variable and no secret): `PATH=/usr/bin:/bin`, `HOME` and `TMPDIR` = the
/// work dir, `LANG=C.UTF-8`. Its limits (setrlimit, inherited by everything it starts):
/// RLIMIT_CPU = job timeout + `cpu_margin` (soft: SIGXCPU; hard 2 s later: SIGKILL),
/// RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC, RLIMIT_NOFILE from the options, RLIMIT_CORE 0.
/// RLIMIT_NPROC counts every process of the user (in its user namespace), atriumd's own
/// threads included, and does not apply to root.
///
/// The sandbox (bubblewrap, `bwrap`), when used, makes this visible to the script, and
/// nothing else:
/// - `/usr` read-only; `/bin`, `/sbin`, `/lib`, `/lib32`, `/lib64`, `/libx32` as the
///   host has them (symlinks into /usr, or read-only binds);
/// - of `/etc` only (read-only, where present): `alternatives`, `ld.so.cache`,
///   `ld.so.conf`, `ld.so.conf.d`, `localtime`, `passwd`, `group`, `nsswitch.conf`,
///   `hosts`, `mime.types`, `python3`, `python3.<minor>` of the interpreter;
/// - a new `/proc` (its own PID namespace: only the sandbox's processes), a minimal `/dev`
///   (null, zero, full, random, urandom, tty, shm, pts);
/// - the work dir, read-write, at `/job` (cwd, `HOME`, `TMPDIR`); no `/tmp`, no `/home`,
///   no `/var`, no `/root`, no `/run`, no `/sys`;
/// - every `hidden_paths` entry that would be visible through the binds above gets an
///   empty tmpfs (a directory) or /dev/null (a file) over it.
/// Namespaces: all of bwrap's `--unshare-all` (user where possible, IPC, PID, network
/// with only a loopback of its own — so no network, and the host's 127.0.0.1 is not
/// reachable —, UTS, cgroup); `--die-with-parent`. No `--new-session`: the session made
/// by setsid() before bwrap already has no controlling terminal (stdin is /dev/null),
/// and keeping the sandbox in bwrap's process group lets SIGTERM reach the script.
/// Without the sandbox (mode `never`, or `auto` where bwrap does not work) the script
/// runs as atriumd's user with its view of the file system: `hidden_paths` are NOT
/// hidden then, and a script can leave the process group with setsid(2) (only the
/// sandbox's PID namespace stops that).
///
/// Exit statuses under the sandbox come through bwrap, which reports a death by signal S
/// as exit status 128 + S: such statuses are reported as `killed by signal S`.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "events/error.hpp"
#include "ports/job_executor.hpp"

namespace atrium::process_adapter {

/// Whether scripts run inside bubblewrap.
enum class sandbox_mode {
  automatic,  ///< when `bwrap` is found and a probe run in the sandbox works, else without (a warning is logged)
  always,     ///< always; `create` fails when bwrap does not work
  never,      ///< never (hidden paths are not hidden)
};

/// Configuration of the script executor. atriumd passes `work_root = DATA_DIR/work` and
/// `hidden_paths = {DATA_DIR}`.
struct script_executor_options {
  std::filesystem::path work_root;  ///< each attempt runs in `<work_root>/<job_id>-<attempt>`, removed afterwards
  /// Where `python3`, `bash`, `bwrap` (and `true`, for the probe) are looked up, like PATH.
  /// The interpreters must be visible inside the sandbox, hence system dirs only.
  std::string search_path = "/usr/local/bin:/usr/bin:/bin";
  std::filesystem::path python;  ///< the Python 3 interpreter; empty: `python3` on `search_path`
  std::filesystem::path bash;    ///< Bash; empty: `bash` on `search_path`
  std::filesystem::path bwrap;   ///< bubblewrap; empty: `bwrap` on `search_path`
  sandbox_mode sandbox = sandbox_mode::automatic;
  std::vector<std::filesystem::path> hidden_paths;  ///< never readable by a sandboxed script (e.g. DATA_DIR)
  std::chrono::seconds cpu_margin{5};               ///< RLIMIT_CPU = spec.timeout + this
  std::uint64_t max_address_space = 1ULL << 30;     ///< RLIMIT_AS, bytes (1 GiB)
  std::uint64_t max_file_size = 1ULL << 30;         ///< RLIMIT_FSIZE, bytes (1 GiB)
  std::uint64_t max_processes = 64;                 ///< RLIMIT_NPROC (see the file comment)
  std::uint64_t max_open_files = 256;               ///< RLIMIT_NOFILE
  /// SIGTERM → SIGKILL on cancel. Short by default: the port promises `interrupted`
  /// within about 1 s of the request, also for a script that ignores SIGTERM.
  std::chrono::milliseconds grace{500};
  std::uint64_t max_log_bytes = 1ULL << 20;  ///< output passed to `append_log` (then a note of what was dropped)
  /// result.csv: rows gathered before an `append` (a batch holds what one 64 KiB read
  /// completes, so it may hold more; the first batch decides the column types).
  std::size_t batch_rows = 1000;
  std::size_t max_columns = 4096;                    ///< result.csv: header fields at most
  std::size_t max_field_bytes = 16ULL << 20;         ///< result.csv: bytes of one field at most
  std::chrono::milliseconds progress_interval{250};  ///< between progress reports
};

/// Runs `script` jobs (see the file comment). Thread-safe: `run` may be called from
/// several threads at once.
class script_executor final : public ports::job_executor {
 public:
  /// Resolves the programs, creates `work_root` (0700) if missing and, for the modes
  /// `automatic` and `always`, probes the sandbox once (`bwrap <the sandbox> -- true`).
  /// A missing interpreter is not an error (its jobs fail saying so; a warning is
  /// logged). Errors: `invalid_argument` (empty `work_root`), `unavailable` (the work
  /// root cannot be created, or mode `always` and bwrap is missing or does not work).
  [[nodiscard]] static result<std::unique_ptr<script_executor>> create(script_executor_options options);

  /// See ports::job_executor::run and the file comment. `spec.kind` must be `script`
  /// and `spec.language` `python` or `bash`, else the outcome is `failed`.
  [[nodiscard]] ports::job_outcome run(const ports::job_spec& spec, ports::result_writer& out,
                                       const ports::progress_fn& progress, ports::cancel_signal& cancel) override;

  /// True when scripts run inside bwrap.
  [[nodiscard]] bool sandboxed() const { return sandboxed_; }
  /// The options as resolved (interpreter and bwrap paths filled in where found).
  [[nodiscard]] const script_executor_options& options() const { return options_; }

  /// The arguments that start bwrap around a command with the work dir `work_dir`
  /// (everything before the command; ends with `--`). Exposed for tests and docs.
  [[nodiscard]] std::vector<std::string> sandbox_args(const std::filesystem::path& work_dir) const;

 private:
  explicit script_executor(script_executor_options options) : options_(std::move(options)) {}
  [[nodiscard]] bool probe_sandbox(std::string& why) const;
  /// bwrap and the binds that do not depend on the attempt (computed once by `create`).
  [[nodiscard]] std::vector<std::string> sandbox_base() const;
  /// The `/etc` entries bound into the sandbox (see the file comment).
  [[nodiscard]] static std::vector<std::string> etc_entries();

  script_executor_options options_;
  bool sandboxed_ = false;
  std::vector<std::filesystem::path> hidden_inside_;  ///< hidden paths visible through a bind: covered
  std::vector<std::string> sandbox_base_;             ///< see `sandbox_base`
};

}  // namespace atrium::process_adapter
