#include "app/options.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "adapters/connectors/network_policy.hpp"
#include "adapters/http/browser_security.hpp"

#ifndef ATRIUM_VERSION
#define ATRIUM_VERSION "unknown"
#endif

namespace atrium::app {
namespace {

constexpr std::array<std::string_view, 8> k_subcommands{"serve",  "verify",  "export", "inspect",
                                                        "replay", "restore", "worker", "routes"};

constexpr const char* k_description =
    "Atrium: the event-sourced control plane of a collaborative data-science platform.\n"
    "Without a subcommand atriumd serves: `atriumd --data-dir DIR` is `atriumd serve --data-dir DIR`.";

constexpr const char* k_serve_footer =
    "Every option --some-name can also be set by the environment variable ATRIUM_SOME_NAME and\n"
    "in the config file (--config FILE, TOML: `some-name = \"value\"`, `some-name = [\"a\", \"b\"]` for a\n"
    "repeatable option, `some-name = true` for a switch). Precedence: command line, then environment,\n"
    "then config file, then the default. A repeatable option set by the environment takes one value.\n"
    "ATRIUM_ADMIN_PASSWORD (environment only) is the admin password on first start; without it one\n"
    "is generated and printed once on stdout.\n"
    "Exit codes: 0 stopped cleanly; 1 could not start; 2 bad options; 70 supervision gave up.\n";

constexpr const char* k_offline_footer =
    "Offline subcommands need the server stopped. --data-dir may also come from ATRIUM_DATA_DIR.\n"
    "Exit codes: 0 success; 1 nothing found or the store cannot be read; 2 bad arguments or the store\n"
    "is in use; 3 verify found the hash chain broken.\n";

/// A CLI11 check from a function that returns "" for a good value or why it is not.
CLI::Validator check(std::function<std::string(const std::string&)> f) {
  return CLI::Validator([f = std::move(f)](std::string& v) { return f(v); }, "");
}

/// A non-negative decimal integer that fits 64 bits, nothing around it (CLI11's own
/// conversion lets "-1" wrap around).
bool is_count(std::string_view s) {
  std::uint64_t v = 0;
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  return !s.empty() && ec == std::errc() && p == end;
}

const CLI::Validator& k_number() {
  static const auto v = check([](const std::string& s) {
    return is_count(s) ? std::string() : "takes a non-negative number, not '" + s + "'";
  });
  return v;
}

const CLI::Validator& k_position() {
  static const auto v = check([](const std::string& s) {
    return is_count(s) ? std::string() : "takes a position (a non-negative integer), not '" + s + "'";
  });
  return v;
}

const CLI::Validator& k_not_empty() {
  static const auto v = check([](const std::string& s) { return s.empty() ? "needs a non-empty value" : ""; });
  return v;
}

/// HOST:PORT, the port 0..65535; "[::1]:8080" for an IPv6 host. Empty on success.
std::string split_listen(const std::string& v, std::string& host, std::uint16_t& port) {
  const auto colon = v.rfind(':');
  if (colon == std::string::npos) return "takes HOST:PORT, not '" + v + "'";
  std::string h = v.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const auto p = v.substr(colon + 1);
  if (h.empty()) return "takes HOST:PORT, the host is missing in '" + v + "'";
  if (!is_count(p) || p.size() > 5 || std::stoul(p) > 65535) return "bad port in '" + v + "' (0 to 65535)";
  host = std::move(h);
  port = static_cast<std::uint16_t>(std::stoul(p));
  return "";
}

const CLI::Validator& k_listen() {
  static const auto v = check([](const std::string& s) {
    std::string host;
    std::uint16_t port = 0;
    return split_listen(s, host, port);
  });
  return v;
}

const CLI::Validator& k_log_level() {
  static const auto v = check([](const std::string& s) {
    static constexpr std::array<std::string_view, 9> names{"trace", "debug", "info",     "warn", "warning",
                                                           "err",   "error", "critical", "off"};
    return std::ranges::find(names, s) != names.end()
               ? std::string()
               : "takes trace, debug, info, warn, error, critical or off, not '" + s + "'";
  });
  return v;
}

const CLI::Validator& k_duration() {
  static const auto v = check([](const std::string& s) {
    return parse_duration_s(s) ? std::string() : "takes a duration: <n>s, <n>m, <n>h, <n>d or seconds, not '" + s + "'";
  });
  return v;
}

/// The values as given, before they become serve_options fields.
struct serve_raw {
  std::string listen = "127.0.0.1:8080";
  std::string job_result_ttl = "7d";
  std::string job_lease = "30s";
  std::string kafka;
  std::vector<std::string> kafka_option;
};

/// Adds `--name` to `app`, bound to `var`, settable from ATRIUM_NAME; default shown in help.
template <typename T>
CLI::Option* option(CLI::App& app, const std::string& name, T& var, const std::string& help) {
  return app.add_option(name, var, help)->envname(env_name(name))->capture_default_str();
}

/// A repeatable option: one value per occurrence, all kept in order.
CLI::Option* repeatable(CLI::App& app, const std::string& name, std::vector<std::string>& var,
                        const std::string& help) {
  return app.add_option(name, var, help)
      ->envname(env_name(name))
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

/// The option table of `serve` (data: one entry per option).
void add_serve_options(CLI::App& s, serve_options& o, serve_raw& raw) {
  option(s, "--data-dir", o.data_dir, "where RocksDB keeps the events and read models (DIR/rocksdb)")
      ->type_name("DIR")
      ->check(k_not_empty());
  option(s, "--listen", raw.listen, "HTTP address; port 0 picks a free port (written to DIR/atriumd.addr)")
      ->type_name("HOST:PORT")
      ->check(k_listen());
  option(s, "--log-level", o.log_level, "trace, debug, info, warn, error, critical or off")
      ->type_name("LEVEL")
      ->check(k_log_level());
  option(s, "--log-format", o.log_format,
         "text (one escaped line per event) or json (one JSON object per line: time, level, message, "
         "request_id, fields)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  option(s, "--http-threads", o.http_threads,
         "HTTP I/O threads: every connection's reads and writes, WebSocket and SSE fan-out included "
         "(0: one per core)")
      ->type_name("N")
      ->check(k_number());
  const std::string tls = "TLS";
  option(s, "--tls-cert", o.tls_cert,
         "serve HTTPS, WSS and SSE over TLS with this PEM certificate chain (leaf first); re-read with the key on "
         "SIGHUP without dropping connections")
      ->type_name("FILE")
      ->group(tls);
  option(s, "--tls-key", o.tls_key, "the PEM private key of --tls-cert")->type_name("FILE")->group(tls);
  option(s, "--tls-min-version", o.tls_min_version, "the lowest TLS version a client may use: 1.2 or 1.3")
      ->type_name("VERSION")
      ->check(check([](const std::string& v) {
        return v == "1.2" || v == "1.3" ? std::string() : "takes 1.2 or 1.3, not '" + v + "'";
      }))
      ->group(tls);
  option(s, "--master-key-file", o.master_key_file,
         "the vault's master key (32 raw bytes or 64 hex characters); default DIR/master.key, "
         "generated on first start")
      ->type_name("FILE");
  option(s, "--backup-dir", o.backup_dir,
         "where POST /v1/admin/backups puts online backups (RocksDB BackupEngine; incremental); default "
         "DIR/backups: put it on another disk")
      ->type_name("DIR");
  s.add_flag("--include-master-key", o.include_master_key,
             "copy the vault's master key beside each backup (mode 0600); without it a restored server needs the "
             "key from elsewhere")
      ->envname(env_name("--include-master-key"));
  option(s, "--snapshot-every", o.snapshot_every, "entities snapshot their state every N events (0 disables)")
      ->type_name("N")
      ->check(k_number());
  option(s, "--passivate-after", o.passivate_after_s, "stop an entity's actor after S idle seconds (at least 1)")
      ->type_name("S")
      ->check(k_number());
  option(s, "--max-live-entities", o.max_live_entities, "entity actors alive at once, at most (at least 1)")
      ->type_name("N")
      ->check(k_number());

  const std::string kafka = "Kafka relay";
  option(s, "--kafka-brokers", o.kafka_brokers, "relay every event to this Kafka cluster (bootstrap servers)")
      ->type_name("HOST:PORT,...")
      ->check(k_not_empty())
      ->group(kafka);
  option(s, "--kafka", raw.kafka,
         "`embedded`: start an in-process development Kafka cluster (librdkafka's mock cluster; data in "
         "memory) and relay to it; its address goes to DIR/kafka.bootstrap and the log")
      ->type_name("embedded")
      ->check(check([](const std::string& v) {
        return v == "embedded" ? "" : "takes `embedded` (use --kafka-brokers for a cluster)";
      }))
      ->group(kafka);
  repeatable(s, "--kafka-option", raw.kafka_option, "a librdkafka setting of the relay's producer (SASL, TLS)")
      ->type_name("KEY=VALUE")
      ->check(check([](const std::string& v) {
        const auto eq = v.find('=');
        return eq == std::string::npos || eq == 0 ? "takes KEY=VALUE, not '" + v + "'" : std::string();
      }))
      ->group(kafka);
  option(s, "--kafka-topic", o.kafka_topic, "the topic")->type_name("NAME")->check(k_not_empty())->group(kafka);
  option(s, "--kafka-source", o.kafka_source,
         "CloudEvents `source` of every message (a URI reference); default /atrium/<the id in DIR/instance_id, made "
         "on first start>")
      ->type_name("URI")
      ->check(k_not_empty())
      ->group(kafka);
  option(s, "--kafka-content-mode", o.kafka_mode, "CloudEvents content mode")
      ->type_name("binary|structured")
      ->check(check([](const std::string& v) {
        return v == "binary" || v == "structured" ? "" : "takes binary or structured, not '" + v + "'";
      }))
      ->group(kafka);
  s.add_flag("--kafka-transactions", o.kafka_transactions,
             "exactly once: produce each batch in a Kafka transaction (transactional.id atriumd-relay-TOPIC; "
             "consumers read with isolation.level=read_committed)")
      ->envname(env_name("--kafka-transactions"))
      ->group(kafka);
  option(s, "--kafka-transactional-id", o.kafka_transactional_id, "--kafka-transactions under this transactional.id")
      ->type_name("ID")
      ->check(k_not_empty())
      ->group(kafka);

  const std::string push = "WebSocket and SSE push";
  option(s, "--push-queue-messages", o.push_queue_messages, "a connection's send queue bound in messages (>= 1)")
      ->type_name("N")
      ->check(k_number())
      ->group(push);
  option(s, "--push-queue-bytes", o.push_queue_bytes,
         "... and in bytes (>= 1024); a consumer beyond either bound is closed")
      ->type_name("N")
      ->check(k_number())
      ->group(push);
  option(s, "--push-socket-buffer", o.push_socket_buffer, "SO_SNDBUF of a push socket (0: kernel autotuning)")
      ->type_name("N")
      ->check(k_number())
      ->group(push);
  option(s, "--push-write-stall-ms", o.push_write_stall_ms,
         "a consumer that takes no byte for this long is closed (>= 100)")
      ->type_name("N")
      ->check(k_number())
      ->group(push);

  const std::string connections = "Where connections may go";
  repeatable(s, "--connection-allow", o.connection_allow,
             "networks (CIDR or address) and host patterns (db.example.com, *.corp.example, *) that connections "
             "may reach, comma-separated; lifts the built-in denies for them")
      ->type_name("LIST")
      ->group(connections);
  repeatable(s, "--connection-deny", o.connection_deny,
             "networks and host patterns that connections may not reach; by default loopback, link-local, "
             "0.0.0.0/8 and the cloud metadata address 169.254.169.254 are denied; the most specific rule wins")
      ->type_name("LIST")
      ->group(connections);
}

/// The web console and browser sessions (issue 17).
void add_console_options(CLI::App& s, serve_options& o) {
  const std::string console = "Web console and browser sessions";
  option(s, "--web-root", o.web_root,
         "serve the web console from DIR (default: the web folder next to atriumd, else /usr/share/atrium/web); "
         "loaded into memory at start (at most 64 MiB, 16 MiB a file)")
      ->type_name("DIR")
      ->check(k_not_empty())
      ->group(console);
  repeatable(s, "--allowed-origin", o.allowed_origins,
             "an origin (http(s)://HOST[:PORT]) besides this server's own whose pages may use a cookie session: "
             "changes, WebSockets and event streams from any other origin are refused")
      ->type_name("ORIGIN")
      ->check(check([](const std::string& v) {
        auto n = http_adapter::normalize_origin(v);
        return n ? std::string() : "takes an origin, not '" + v + "': " + n.error().message;
      }))
      ->group(console);
  s.add_flag("--cookie-secure", o.cookie_secure,
             "mark the session cookie Secure (browsers then send it only over HTTPS): set it when a TLS proxy "
             "serves atriumd")
      ->envname(env_name("--cookie-secure"))
      ->group(console);
  s.add_flag("--no-login-throttle", o.no_login_throttle,
             "do not throttle failed logins (docs/access.md \"Login throttling\"): for test rigs that fail logins "
             "on purpose, never for a server people use")
      ->envname(env_name("--no-login-throttle"))
      ->group(console);
}

/// The job options of `serve` (issue 15).
void add_job_options(CLI::App& s, serve_options& o, serve_raw& raw) {
  const std::string jobs = "Jobs";
  option(s, "--job-slots", o.job_slots,
         "job attempts running at once (default: the number of cores); 0 runs none (jobs stay queued)")
      ->type_name("N")
      ->check(k_number())
      ->group(jobs);
  option(s, "--sqlite-root", o.sqlite_root,
         "SQLite connections' files must lie under DIR (default DATA_DIR/files, created at start)")
      ->type_name("DIR")
      ->group(jobs);
  option(s, "--job-max-result-rows", o.job_max_result_rows, "rows kept per result; beyond: truncated")
      ->type_name("N")
      ->check(k_number())
      ->group(jobs);
  option(s, "--job-max-result-bytes", o.job_max_result_bytes, "bytes of cell text kept per result; beyond: truncated")
      ->type_name("N")
      ->check(k_number())
      ->group(jobs);
  option(s, "--job-result-ttl", raw.job_result_ttl,
         "results (and script logs) expire after this long: <n>s|m|h|d or seconds; 0 keeps them")
      ->type_name("DURATION")
      ->check(k_duration())
      ->group(jobs);
  option(s, "--job-sandbox", o.job_sandbox,
         "run scripts inside bwrap (no network, read-only system): auto (when bwrap is installed), always "
         "(refuse scripts without it) or never")
      ->type_name("auto|always|never")
      ->check(check([](const std::string& v) {
        return v == "auto" || v == "always" || v == "never" ? "" : "takes auto, always or never, not '" + v + "'";
      }))
      ->group(jobs);
  option(s, "--job-work-dir", o.job_work_dir, "scripts' working directories (default DATA_DIR/work)")
      ->type_name("DIR")
      ->group(jobs);
  const auto* containers = "Containers";
  option(s, "--container-runtime", o.container_runtime,
         "the runtime of containers declared without one: process (local supervised processes) or docker (the "
         "Docker Engine at --docker-host, which then runs too)")
      ->type_name("process|docker")
      ->check(check([](const std::string& v) {
        return v == "process" || v == "docker" ? "" : "takes process or docker, not '" + v + "'";
      }))
      ->group(containers);
  option(s, "--docker-host", o.docker_host,
         "the Docker Engine API socket, unix:///PATH (with --container-runtime docker)")
      ->type_name("unix:///PATH")
      ->check(check(
          [](const std::string& v) { return v.starts_with("unix:///") ? "" : "takes unix:///PATH, not '" + v + "'"; }))
      ->group(containers);
  option(s, "--job-lease", raw.job_lease,
         "a job leased to a remote worker (atriumd worker) that is not heartbeated for this long is lost: "
         "requeued as a new attempt or failed (<n>s|m|h|d or seconds, at least 1s)")
      ->type_name("DURATION")
      ->check(k_duration())
      ->group(jobs);
}

/// The `worker` subcommand: a remote worker that takes jobs from a server (issue 16).
void add_worker_command(CLI::App& app, worker_options& o) {
  auto* w = app.add_subcommand("worker", "run jobs for a server on this machine (claims them with leases)");
  w->footer(
      "Every option --some-name can also be set by ATRIUM_SOME_NAME. The token file holds an API token of an\n"
      "admin or a token with the jobs:work scope. SIGTERM stops the running jobs, reports them interrupted\n"
      "(the server requeues them) and exits 0. Exit codes: 0 stopped cleanly; 1 could not start; 2 bad options.\n");
  option(*w, "--server", o.server, "the server's base URL, http://HOST:PORT or https://HOST:PORT")
      ->type_name("URL")
      ->required()
      ->check(check([](const std::string& v) {
        return (v.starts_with("http://") && v.size() > 7) || (v.starts_with("https://") && v.size() > 8)
                   ? ""
                   : "takes http(s)://HOST:PORT, not '" + v + "'";
      }));
  option(*w, "--ca-file", o.ca_file,
         "with an https:// server: trust the CA certificates in this PEM file (default: the system's CA store)")
      ->type_name("FILE");
  option(*w, "--token-file", o.token_file, "a file holding the bearer token (first line)")
      ->type_name("FILE")
      ->required();
  option(*w, "--slots", o.slots, "jobs running at once (>= 1)")->type_name("N")->check(k_number());
  option(*w, "--name", o.name, "the worker's name in job.started and GET /v1/workers (default HOST-PID)")
      ->type_name("NAME");
  option(*w, "--work-dir", o.work_dir,
         "results kept until the server acknowledged them (WORK_DIR/results) and scripts' directories "
         "(WORK_DIR/work); one worker per directory")
      ->type_name("DIR");
  option(*w, "--sqlite-root", o.sqlite_root, "SQLite connections' files must lie under DIR (default WORK_DIR/files)")
      ->type_name("DIR");
  option(*w, "--job-sandbox", o.job_sandbox, "run scripts inside bwrap: auto, always or never")
      ->type_name("auto|always|never")
      ->check(check([](const std::string& v) {
        return v == "auto" || v == "always" || v == "never" ? "" : "takes auto, always or never, not '" + v + "'";
      }));
  repeatable(*w, "--connection-allow", o.connection_allow, "as atriumd serve --connection-allow")->type_name("LIST");
  repeatable(*w, "--connection-deny", o.connection_deny, "as atriumd serve --connection-deny")->type_name("LIST");
  option(*w, "--log-level", o.log_level, "trace, debug, info, warn, error, critical or off")
      ->type_name("LEVEL")
      ->check(k_log_level());
}

/// Applies the config file's values to the options of `serve` that neither the command
/// line nor the environment set. Returns why it cannot ("" on success).
std::string apply_config_file(CLI::App& serve, const std::string& file) {
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(file);
  } catch (const CLI::Error& e) {
    return "--config " + file + ": cannot read it (" + e.what() + ")";
  }
  for (auto& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // a [serve] section opening or closing
    std::string name = item.name;
    std::ranges::replace(name, '_', '-');
    const bool placed = item.parents.empty() || (item.parents.size() == 1 && item.parents[0] == "serve");
    CLI::Option* op = placed ? serve.get_option_no_throw("--" + name) : nullptr;
    if (op == nullptr || name == "config" || name == "help") {
      return "--config " + file + ": unknown option '" + item.fullname() + "'";
    }
    if (op->count() > 0) continue;  // the command line or the environment set it
    try {
      if (op->get_expected_min() == 0) {
        op->add_result(op->get_flag_value(name, CLI::ConfigTOML().to_flag(item)));
      } else {
        op->add_result(item.inputs);
      }
      op->run_callback();
    } catch (const CLI::Error& e) {
      return "--config " + file + ": " + e.what();
    }
  }
  return "";
}

/// Turns raw values into fields, applies the clamps, checks what excludes what. Returns
/// why the options cannot run ("" on success).
std::string finish_serve(serve_options& o, const serve_raw& raw) {
  if (auto why = split_listen(raw.listen, o.host, o.port); !why.empty()) return "--listen: " + why;
  o.kafka_embedded = raw.kafka == "embedded";
  for (const auto& kv : raw.kafka_option) {
    const auto eq = kv.find('=');
    o.kafka_settings.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (!o.kafka_transactional_id.empty()) o.kafka_transactions = true;
  o.job_result_ttl_s = parse_duration_s(raw.job_result_ttl).value_or(o.job_result_ttl_s);
  o.job_lease_s = std::max<std::uint64_t>(parse_duration_s(raw.job_lease).value_or(o.job_lease_s), 1);
  o.passivate_after_s = std::max<std::uint64_t>(o.passivate_after_s, 1);
  o.max_live_entities = std::max<std::uint64_t>(o.max_live_entities, 1);
  o.push_queue_messages = std::max<std::uint64_t>(o.push_queue_messages, 1);
  o.push_queue_bytes = std::max<std::uint64_t>(o.push_queue_bytes, 1024);
  o.push_write_stall_ms = std::max<std::uint64_t>(o.push_write_stall_ms, 100);
  if (auto policy = connectors_adapter::network_policy::make(o.connection_allow, o.connection_deny); !policy) {
    return "--connection-allow/--connection-deny: " + policy.error().message;
  }
  for (auto& origin : o.allowed_origins) origin = http_adapter::normalize_origin(origin).value_or(origin);
  if (o.tls_cert.empty() != o.tls_key.empty()) return "--tls-cert and --tls-key go together";
  if (!o.tls_cert.empty()) o.cookie_secure = true;  // the session cookie only ever travels over TLS
  if (o.kafka_embedded && !o.kafka_brokers.empty()) return "--kafka embedded and --kafka-brokers exclude each other";
  if (o.kafka_transactions && !o.kafka_embedded && o.kafka_brokers.empty()) {
    return "--kafka-transactions needs --kafka-brokers or --kafka embedded";
  }
  return "";
}

/// The offline subcommands, each bound to `o`.
void add_offline_commands(CLI::App& app, offline_options& o) {
  auto data_dir = [&o](CLI::App* sub) {
    sub->add_option("--data-dir", o.data_dir, "the stopped server's data dir (DIR/rocksdb)")
        ->type_name("DIR")
        ->envname(env_name("--data-dir"))
        ->capture_default_str();
    sub->footer(k_offline_footer);
  };
  data_dir(app.add_subcommand("verify", "recompute the event hash chain; exit 0 if intact, 3 if broken"));
  auto* exp = app.add_subcommand(
      "export", "the log as JSON Lines (public envelopes) in position order, after < position <= until");
  data_dir(exp);
  exp->add_option("--after", o.after, "first position exported is after this one")->type_name("P")->check(k_position());
  exp->add_option("--until", o.until, "last position exported (default: the head)")
      ->type_name("P")
      ->check(k_position());
  auto* inspect = app.add_subcommand("inspect", "a stream's events and its folded state, one JSON object");
  inspect->add_option("STREAM", o.stream, "the stream, e.g. project-<id>")->type_name("STREAM")->required();
  data_dir(inspect);
  auto* replay = app.add_subcommand("replay", "rebuild one projection from position 0");
  replay->add_option("--projection", o.projection, "the projection: users, projects, audit, groups, …")
      ->type_name("NAME")
      ->required();
  data_dir(replay);
  auto* restore = app.add_subcommand(
      "restore", "restore an online backup into a new, empty data dir, then verify its hash chain; one JSON line");
  restore->add_option("--from", o.from, "the backup directory (the server's --backup-dir)")
      ->type_name("BDIR")
      ->check(k_not_empty())
      ->required();
  restore->add_option("--backup-id", o.backup_id, "which backup (default: the newest)")
      ->type_name("ID")
      ->check(k_number());
  data_dir(restore);
}

/// `what` on one line, prefixed "atriumd: " (or "atriumd COMMAND: ").
early_exit bad_input(const std::string& command, std::string what) {
  std::ranges::replace(what, '\n', ' ');
  return {2, "atriumd" + (command.empty() ? "" : " " + command) + ": " + what + "\n"};
}

}  // namespace

std::string_view version() { return ATRIUM_VERSION; }

std::optional<std::uint64_t> parse_duration_s(std::string_view text) {
  std::uint64_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        unit = 0;
    }
    if (unit != 0) {
      text.remove_suffix(1);
    } else {
      unit = 1;
    }
  }
  if (!is_count(text)) return std::nullopt;
  std::uint64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  if (n > std::numeric_limits<std::uint64_t>::max() / unit) return std::nullopt;
  return n * unit;
}

std::string env_name(std::string_view option) {
  while (option.starts_with('-')) option.remove_prefix(1);
  std::string out = "ATRIUM_";
  for (const char c : option) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::expected<command_line, early_exit> parse_command_line(const std::vector<std::string>& args) {
  std::vector<std::string> argv = args;
  const bool top_level = !argv.empty() && (argv[0] == "-h" || argv[0] == "--help" || argv[0] == "--version");
  if (!top_level && (argv.empty() || std::ranges::find(k_subcommands, argv[0]) == k_subcommands.end())) {
    argv.insert(argv.begin(), "serve");
  }

  command_line cl;
  serve_raw raw;
  CLI::App app(k_description, "atriumd");
  // As the hand-written parser did: a repeated single-valued option keeps its last value.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", "atriumd " + std::string(version()));
  app.require_subcommand(1, 1);
  app.fallthrough();  // --version after a subcommand
  auto* serve = app.add_subcommand("serve", "run the server (the default subcommand)");
  serve->footer(k_serve_footer);
  serve->add_option("--config", cl.serve.config_file, "read options from this TOML file (see below)")
      ->type_name("FILE")
      ->envname(env_name("--config"));
  cl.serve.job_slots = std::max(1U, std::thread::hardware_concurrency());
  add_serve_options(*serve, cl.serve, raw);
  add_job_options(*serve, cl.serve, raw);
  add_console_options(*serve, cl.serve);
  add_offline_commands(app, cl.offline);
  app.add_subcommand("routes", "print the API's route table as JSON ([{method, pattern, access, query}]) and exit");
  add_worker_command(app, cl.worker);

  // CLI11 reads the environment for every subcommand's options, chosen or not: keep only
  // the chosen one's, so that a bad ATRIUM_* serve setting cannot stop `atriumd verify`.
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (top_level || sub->get_name() != argv[0]) {
      for (auto* opt : sub->get_options()) opt->envname("");
    }
  }

  std::string command;
  try {
    std::ranges::reverse(argv);  // CLI11 takes the arguments last first
    app.parse(argv);
    command = app.get_subcommands().at(0)->get_name();
  } catch (const CLI::CallForHelp& e) {
    std::ostringstream out, err;
    app.exit(e, out, err);
    return std::unexpected(early_exit{0, out.str()});
  } catch (const CLI::CallForVersion& e) {
    return std::unexpected(early_exit{0, std::string(e.what()) + "\n"});
  } catch (const CLI::ParseError& e) {
    const auto parsed = app.get_subcommands();
    const auto name = parsed.empty() ? std::string("serve") : parsed[0]->get_name();
    std::string what = e.what();
    if (e.get_name() == "ExtrasError" || e.get_exit_code() == static_cast<int>(CLI::ExitCodes::ExtrasError)) {
      what += " (atriumd " + name + " --help lists the options)";
    }
    return std::unexpected(bad_input(name == "serve" ? "" : name, what));
  }
  cl.command = command;
  if (command == "worker") {
    cl.worker.slots = std::max<std::uint64_t>(cl.worker.slots, 1);
    if (auto p = connectors_adapter::network_policy::make(cl.worker.connection_allow, cl.worker.connection_deny); !p) {
      return std::unexpected(bad_input("worker", "--connection-allow/--connection-deny: " + p.error().message));
    }
    return cl;
  }
  if (command != "serve") return cl;
  if (!cl.serve.config_file.empty()) {
    if (auto why = apply_config_file(*serve, cl.serve.config_file); !why.empty()) {
      return std::unexpected(bad_input("", why));
    }
  }
  if (auto why = finish_serve(cl.serve, raw); !why.empty()) return std::unexpected(bad_input("", why));
  return cl;
}

}  // namespace atrium::app
