#pragma once
/// atriumd's command line, environment and config file, parsed with CLI11 into plain
/// values; `main()` only wires what comes out.
///
///   atriumd [serve] [OPTIONS]          the server (the default subcommand)
///   atriumd verify|export|inspect|replay …   offline, on a stopped server's data dir
///   atriumd worker --server URL --token-file FILE [--slots N] …   a remote worker
///   atriumd --help | --version
///
/// Every `serve` option `--some-name` can also come from the environment variable
/// `ATRIUM_SOME_NAME` and from a config file (`--config FILE`, TOML: `some-name = value`,
/// a list `["a", "b"]` for a repeatable option, `true`/`false` for a switch). The first
/// source that sets an option wins: command line, then environment, then config file,
/// then the built-in default. An empty environment variable counts as unset.
///
/// Bad input (unknown option, a value of the wrong shape or out of range, options that
/// exclude each other, an unreadable config file) is reported as one line for stderr and
/// exit code 2; `--help` and `--version` as text for stdout and exit code 0.

#include <cstdint>
#include <expected>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atrium::app {

/// What `atriumd serve` runs with, validated and with its documented clamps applied.
struct serve_options {
  std::string config_file;  ///< --config: the file the other options were read from ("" if none)
  std::string data_dir = "data";
  std::string host = "127.0.0.1";            ///< from --listen HOST:PORT, brackets of an IPv6 host removed
  std::uint16_t port = 8080;                 ///< 0: a free port
  std::string log_level = "info";            ///< one of spdlog's level names
  std::string log_format = "text";           ///< `text` or `json` (app/log_format.hpp)
  std::string master_key_file;               ///< "" : DATA_DIR/master.key (generated on first start)
  std::string backup_dir;                    ///< online backups (`POST /v1/admin/backups`); "": DATA_DIR/backups
  bool include_master_key = false;           ///< copy the master key beside each backup
  std::uint64_t snapshot_every = 100;        ///< 0 disables snapshots
  std::uint64_t passivate_after_s = 300;     ///< at least 1
  std::uint64_t max_live_entities = 100000;  ///< at least 1
  std::string kafka_brokers;                 ///< empty: Kafka off (unless embedded)
  bool kafka_embedded = false;
  std::string kafka_topic = "atrium.events";
  std::string kafka_source;                                         ///< `ce_source`; "": /atrium/<DATA_DIR/instance_id>
  std::string kafka_mode = "binary";                                ///< binary or structured
  std::vector<std::pair<std::string, std::string>> kafka_settings;  ///< --kafka-option KEY=VALUE, in order
  bool kafka_transactions = false;                                  ///< also set by --kafka-transactional-id
  std::string kafka_transactional_id;                               ///< empty: atriumd-relay-<topic>
  std::uint64_t http_threads = 0;                                   ///< 0: one per core
  std::string tls_cert;                      ///< --tls-cert: PEM certificate chain; "" (with tls_key ""): plain HTTP
  std::string tls_key;                       ///< --tls-key: PEM private key of tls_cert
  std::string tls_min_version = "1.2";       ///< --tls-min-version: 1.2 or 1.3
  std::uint64_t push_queue_messages = 1024;  ///< at least 1
  std::uint64_t push_queue_bytes = 4 << 20;  ///< at least 1024
  std::uint64_t push_socket_buffer = 128 << 10;  ///< 0: kernel autotuning
  std::uint64_t push_write_stall_ms = 20000;     ///< at least 100
  std::vector<std::string> connection_allow;     ///< --connection-allow entries, as given (checked to parse)
  std::vector<std::string> connection_deny;      ///< --connection-deny entries, as given (checked to parse)
  std::uint64_t job_slots = 1;  ///< attempts running at once (default: the number of cores); 0 runs none
  std::string sqlite_root;      ///< SQLite connections' files lie under it; "": DATA_DIR/files
  std::uint64_t job_max_result_rows = 1000000;      ///< rows kept per result, at most
  std::uint64_t job_max_result_bytes = 1ULL << 30;  ///< bytes of cell text kept per result, at most
  std::uint64_t job_result_ttl_s = 7 * 24 * 3600;   ///< results expire after this many seconds; 0 never
  std::string job_sandbox = "auto";                 ///< script sandbox (bwrap): auto, always or never
  std::string job_work_dir;                         ///< scripts' working directories; "": DATA_DIR/work
  std::uint64_t job_lease_s = 30;                   ///< a remote worker's lease is lost after this long (>= 1)
  /// --web-root: the web console's files; "": `<atriumd's directory>/web`, else
  /// `/usr/share/atrium/web`, else no console.
  std::string web_root;
  /// --allowed-origin: origins besides the server's own for cookie sessions, normalized
  /// (`scheme://host[:port]`, lowercase).
  std::vector<std::string> allowed_origins;
  bool cookie_secure = false;      ///< --cookie-secure: the session cookie is `Secure` (TLS proxy in front)
  bool no_login_throttle = false;  ///< --no-login-throttle: failed logins are never throttled (test rigs)
  /// --container-runtime: the runtime of a container declared without `runtime`, and
  /// (`docker`) whether the Docker runtime runs; `process` always does.
  std::string container_runtime = "process";
  std::string docker_host = "unix:///var/run/docker.sock";  ///< --docker-host: the Engine API's socket
};

/// What `atriumd worker` runs with (app/worker.cpp).
struct worker_options {
  std::string server;       ///< http(s)://HOST:PORT (required)
  std::string ca_file;      ///< https: the CA certificates to trust (PEM); "": the system's store
  std::string token_file;   ///< the bearer token's file (required)
  std::uint64_t slots = 1;  ///< jobs at once, at least 1
  std::string name;         ///< "": HOST-PID
  std::string work_dir = "atrium-worker";
  std::string sqlite_root;  ///< "": WORK_DIR/files
  std::string job_sandbox = "auto";
  std::vector<std::string> connection_allow;
  std::vector<std::string> connection_deny;
  std::string log_level = "info";
};

/// Parses a duration for `--job-result-ttl`: `<n>s`, `<n>m`, `<n>h`, `<n>d` or a bare
/// number of seconds. Returns the seconds, or nullopt for anything else (or overflow).
[[nodiscard]] std::optional<std::uint64_t> parse_duration_s(std::string_view text);

/// What an offline subcommand (app/cli.hpp) runs with.
struct offline_options {
  std::string data_dir = "data";
  std::string from;                                                 ///< restore: the backup directory (required)
  std::uint32_t backup_id = 0;                                      ///< restore: which backup (0: the newest)
  std::uint64_t after = 0;                                          ///< export: positions > after
  std::uint64_t until = std::numeric_limits<std::uint64_t>::max();  ///< export: positions <= until
  std::string stream;                                               ///< inspect: the stream id (required)
  std::string projection;  ///< replay: the projection's name (required; checked against the list by cli::run)
};

/// A parsed command line: which subcommand, and its options.
struct command_line {
  std::string command = "serve";  ///< serve, verify, export, inspect, replay, restore or worker
  serve_options serve;            ///< meaningful when command == "serve"
  offline_options offline;        ///< meaningful for verify, export, inspect, replay and restore
  worker_options worker;          ///< meaningful when command == "worker"
};

/// Parsing ended the run: `--help`/`--version` (code 0, `text` for stdout) or bad input
/// (code 2, `text` one line for stderr, "atriumd: …" ending in a newline).
struct early_exit {
  int code = 0;
  std::string text;
};

/// The version atriumd reports: the CMake project version.
[[nodiscard]] std::string_view version();

/// `ATRIUM_` followed by `option` (with or without its leading dashes) upper-cased, dashes
/// to underscores: `--data-dir` gives `ATRIUM_DATA_DIR`.
[[nodiscard]] std::string env_name(std::string_view option);

/// Parses `args` (argv without the program name) together with the process environment
/// (`getenv`) and, for `serve`, the config file that `--config`/`ATRIUM_CONFIG` names.
/// A first argument that is not a subcommand, `-h`, `--help` or `--version` means
/// `serve`. Returns the command line, or the early exit to take (see `early_exit`).
[[nodiscard]] std::expected<command_line, early_exit> parse_command_line(const std::vector<std::string>& args);

}  // namespace atrium::app
