#pragma once
/// The Docker Engine API's formats, as pure code (no I/O, no Beast): what the `docker`
/// runtime (docker_runtime.hpp) sends to the daemon and how it reads what comes back.
/// Every reader here takes bytes from the daemon as untrusted: a missing, mistyped or
/// absurd field gives an error value (or an ignored event), never an exception, and the
/// fuzz target `docker_fuzz` (tests/fuzz) feeds them arbitrary bytes.
///
/// Formats, from the Engine API reference v1.41 (docs.docker.com/engine/api/v1.41):
///   - `GET /containers/{id}/json` (ContainerInspect): `Id`, `State.{Status, ExitCode,
///     OOMKilled, Pid, StartedAt}`, `Config.{Labels, Tty}`;
///   - `GET /events` (SystemEvents): one JSON object per line, `Type`, `Action`,
///     `Actor.{ID, Attributes}` (labels and, for `die`, `exitCode` as a decimal string),
///     `time`, `timeNano`;
///   - `GET /containers/{id}/logs` (ContainerLogs) of a container without a TTY: the
///     multiplexed stream, frames of an 8-byte header `[stream, 0, 0, 0, size (u32 big
///     endian)]` (stream 0 stdin, 1 stdout, 2 stderr) and `size` payload bytes; with a
///     TTY, the raw bytes;
///   - error bodies: `{"message": "..."}`.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "events/error.hpp"
#include "ports/container_runtime.hpp"

namespace atrium::docker_adapter {

/// The label names every container of ours carries (ports/container_runtime.hpp).
inline constexpr std::string_view k_label_container_id = "atrium.container_id";
inline constexpr std::string_view k_label_instance = "atrium.instance";
inline constexpr std::string_view k_label_spec_version = "atrium.spec_version";

/// The longest log line handed to a `log_sink`, in bytes; longer lines are split into
/// pieces of at most this size (as Docker's own log drivers split at 16 KiB).
inline constexpr std::size_t k_max_log_line = 16 * 1024;

/// The longest line of the `/events` stream read (a larger one is an error).
inline constexpr std::size_t k_max_event_line = 1 << 20;

/// Deepest JSON nesting accepted from the daemon (its documents nest 4 levels).
inline constexpr std::size_t k_max_json_depth = 64;

/// The socket path of a `--docker-host` value. Only `unix://` followed by an absolute
/// path (at most 107 bytes, the size of `sockaddr_un::sun_path` less its NUL; no NUL,
/// no control characters) is accepted, e.g. `unix:///var/run/docker.sock` →
/// `/var/run/docker.sock`. `tcp://`, `ssh://`, `npipe://`, `fd://` and anything else are
/// `invalid_argument` naming what is supported.
[[nodiscard]] result<std::string> parse_docker_host(std::string_view host);

/// True when `id` can be a Docker container or exec id or name as we use them in a URL
/// path: 1–128 characters of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
[[nodiscard]] bool valid_object_id(std::string_view id) noexcept;

/// `s` percent-encoded for a URL query value (RFC 3986: unreserved characters kept).
[[nodiscard]] std::string url_encode(std::string_view s);

/// Parses daemon JSON defensively: size already bounded by the caller, nesting at most
/// `k_max_json_depth`, no exception. `internal` with `what` in the message otherwise.
[[nodiscard]] result<nlohmann::json> parse_daemon_json(std::string_view text, std::string_view what);

/// The daemon's error message from an error body (`{"message": "..."}`), else the body
/// itself cut to 512 bytes (ill-formed UTF-8 repaired), else "HTTP <status>".
[[nodiscard]] std::string daemon_message(unsigned status, std::string_view body);

/// An RFC 3339 time as Docker writes it (`2026-12-04T22:14:14.599477144Z`, or with a
/// `±hh:mm` offset; fraction up to 9 digits). nullopt for anything else and for Docker's
/// zero time (year 1, `0001-01-01T00:00:00Z`, "never started").
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_docker_time(std::string_view text);

/// `atrium-<name>-<first 8 characters of container_id>` (lowercased, `[a-z0-9]` only),
/// the Docker container name of a spec.
[[nodiscard]] std::string container_name(const ports::container_spec& spec);

/// The body of `POST /containers/create` for `spec` labelled with `instance`: `Image`,
/// `Cmd` (only when `command` is not empty: else the image's default), `Env`
/// (`KEY=value`), `Labels` (the three `atrium.*`), `Tty: false`, no stdin, and
/// `HostConfig` {`NetworkMode: host`, `RestartPolicy: {Name: no}`, `Memory` (bytes),
/// `NanoCpus` (cpus × 10^9), `PidsLimit`} with only the limits that are set.
/// `invalid_argument` for what the daemon would refuse less clearly: an empty image, a
/// name outside `[a-z0-9][a-z0-9_.-]{0,62}`, an env name that is empty or holds `=` or
/// NUL, a NUL anywhere, limits out of the port's ranges.
[[nodiscard]] result<nlohmann::json> create_body(const ports::container_spec& spec, std::string_view instance);

/// The query of `POST /images/create` that pulls `image`: `fromImage=<name>&tag=<tag>`
/// (a reference without a tag or digest pulls `latest`, not every tag; a digest
/// reference is passed whole as fromImage). `invalid_argument` for an empty reference
/// or one with characters outside Docker's reference grammar.
[[nodiscard]] result<std::string> pull_query(std::string_view image);

/// The `filters` query value selecting `instance`'s containers:
/// `{"label":["atrium.instance=<instance>"]}`, and with `events`, also
/// `"type":["container"]` (for `/events`).
[[nodiscard]] std::string instance_filter(std::string_view instance, bool events);

/// What `inspect` tells about a container: the port's view, and what the adapter needs
/// besides (its instance label, whether it has a TTY).
struct inspected {
  ports::runtime_container container;
  std::string instance;  ///< the `atrium.instance` label ("" when absent)
  bool tty = false;      ///< `Config.Tty`: its log stream is raw, not multiplexed
};

/// Maps a `GET /containers/{id}/json` document. State: `created` → created; `running`,
/// `paused`, `restarting` → running; `exited`, `dead`, `removing` → exited. Exited
/// reason: `oom` (`OOMKilled`), `killed` (exit code > 128, i.e. 128 + signal), `lost`
/// (`dead`), else `exited`. `pid` only while running and > 0; `started_at` from
/// `StartedAt` unless zero. `internal` when `Id` or `State.Status` is missing or not a
/// string, or the status is unknown; other odd fields are treated as absent.
[[nodiscard]] result<inspected> container_from_inspect(const nlohmann::json& doc);
/// The same from the response body.
[[nodiscard]] result<inspected> container_from_inspect_text(std::string_view body);

/// Maps one line of the `/events` stream. `die` → exited (`exitCode` attribute when it
/// is a decimal int; reason `killed` above 128, else `exited`), `oom` → exited with
/// reason `oom`, `destroy` → removed. nullopt for any other action or type, and for a
/// container whose `atrium.instance` attribute is not `instance` (the filter already
/// asks the daemon for those only). `internal` for a line that is not a JSON object or
/// lacks `Actor.ID`.
[[nodiscard]] result<std::optional<ports::runtime_event>> event_from_line(std::string_view line,
                                                                          std::string_view instance);

/// The `timeNano` of an `/events` line, when it has one (for `since=` after a reconnect).
[[nodiscard]] std::optional<std::int64_t> event_time_nano(std::string_view line);

/// Splits a container log stream into lines for a `log_sink`.
///
/// Multiplexed mode (no TTY): frames as in the file comment; stdin frames are dropped;
/// a stream byte other than 0, 1, 2 or non-zero padding bytes make the stream malformed
/// (`internal`; nothing more is read). Raw mode (TTY): all bytes are stdout.
/// Per stream (stdout, stderr), bytes are gathered into lines ending at `\n` (the `\n`
/// and one `\r` before it are not part of the line). A line that grows beyond
/// `k_max_log_line` bytes without a newline is cut: its first piece (at most
/// `k_max_log_line` bytes, not splitting a UTF-8 sequence where possible) is delivered as
/// a line of its own. Ill-formed UTF-8 is replaced by U+FFFD and a piece still longer
/// than `k_max_log_line` after that is split again, so every delivered line is valid
/// UTF-8 of at most `k_max_log_line` bytes. The lines delivered do not depend on how the
/// input is split into `feed` calls.
class log_demuxer {
 public:
  explicit log_demuxer(bool raw = false) : raw_(raw) {}

  /// Consumes `bytes`, calling `sink` for each completed line. Returns false once `sink`
  /// returned false (the caller stops reading), true to go on; `internal` for a
  /// malformed stream.
  [[nodiscard]] result<bool> feed(std::string_view bytes, const ports::log_sink& sink);

  /// At the end of the stream: delivers what is left of the stdout then the stderr line
  /// (when not empty). `internal` when the stream ended inside a frame header (a
  /// truncated payload is delivered as far as it came).
  [[nodiscard]] result<bool> finish(const ports::log_sink& sink);

 private:
  bool drain(std::string& buf, bool at_end, const ports::log_sink& sink);
  bool emit(std::string_view piece, const ports::log_sink& sink);

  bool raw_ = false;
  bool stopped_ = false;
  bool broken_ = false;
  std::string header_;            // the frame header read so far (< 8 bytes)
  std::uint64_t frame_left_ = 0;  // payload bytes of the current frame still to come
  int frame_stream_ = 0;          // its stream: 0 stdin, 1 stdout, 2 stderr
  std::string out_, err_;         // partial lines
};

}  // namespace atrium::docker_adapter
