// atriumd: the composition root. The only place that wires adapters to the core.
//
//   atriumd [serve] [OPTIONS]                     the server (options: app/options.hpp)
//   atriumd verify|export|inspect|replay …       offline (app/cli.hpp)
//
// Starts RocksDB in DIR/rocksdb, the actor system, and the HTTP API; on first start
// with an empty store creates the `admin` user (password from ATRIUM_ADMIN_PASSWORD,
// or generated and printed once). Stops cleanly on SIGINT/SIGTERM.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <thread>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "actors/runtime.hpp"
#include "adapters/kafka/kafka_publisher.hpp"
#include "adapters/http/api.hpp"
#include "adapters/http/http_server.hpp"
#include "adapters/rocksdb/backups.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "adapters/connectors/postgres_executor.hpp"
#include "adapters/connectors/sql_connector.hpp"
#include "adapters/connectors/sqlite_executor.hpp"
#include "adapters/process/script_executor.hpp"
#include "adapters/results/file_result_store.hpp"
#include "adapters/docker/docker_runtime.hpp"
#include "adapters/process/container_runtime.hpp"
#include "adapters/tz/iana_zones.hpp"
#include "adapters/sodium/sodium_security.hpp"
#include "adapters/vault/sodium_vault.hpp"
#include "app/cli.hpp"
#include "app/options.hpp"
#include "app/worker.hpp"
#include "app/log_format.hpp"
#include "app/process_metrics.hpp"
#include "events/user/user_decider.hpp"
#include "events/user/password_policy.hpp"
#include "projections/projections.hpp"
#include "projections/queries.hpp"
#include "projections/read_model_watch.hpp"

namespace {

/// Set when supervision gave up (an actor that keeps failing): main stops the server and
/// exits with `k_exit_fatal`, so that a service manager (systemd `Restart=on-failure`)
/// starts it afresh.
std::atomic<bool> g_fatal{false};
constexpr int k_exit_fatal = 70;  // EX_SOFTWARE

/// Logs go to stderr through spdlog's async logger: request threads only enqueue (a
/// bounded queue; they wait rather than drop when it is full), one thread formats into
/// a 64 KiB stdio buffer, flushed every second and at once for warnings and errors, so
/// the access log costs no write(2) per request.
void set_up_logging(const std::string& format) {
  static char buffer[1 << 16];
  std::setvbuf(stderr, buffer, _IOFBF, sizeof buffer);
  spdlog::init_thread_pool(1 << 15, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>("atriumd", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::block);
  // No raw control character from a request in a line, whatever the format.
  if (format == "json") {
    logger->set_formatter(std::make_unique<atrium::app::json_log_formatter>());
  } else {
    logger->set_formatter(atrium::app::escaped_formatter());
  }
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

/// Creates `admin` on an empty store. Returns false on failure.
bool bootstrap_admin(atrium::actor_runtime& runtime, const atrium::ports::password_hasher& hasher,
                     const atrium::ports::secret_source& secrets) {
  std::string password;
  bool generated = false;
  if (const char* env = std::getenv("ATRIUM_ADMIN_PASSWORD"); env != nullptr && *env != '\0') {
    password = env;
    // The bootstrap admin follows the password policy like every other user.
    if (auto ok = atrium::check_password_policy(password, "admin"); !ok) {
      spdlog::error("admin bootstrap failed: ATRIUM_ADMIN_PASSWORD: {} (reason {})", ok.error().message,
                    ok.error().details.value("reason", ""));
      return false;
    }
  } else {
    password = secrets.random_token().substr(0, 24);
    generated = true;
  }
  auto hash = hasher.hash(password);
  if (!hash) {
    spdlog::error("admin bootstrap failed: {}", hash.error().message);
    return false;
  }
  const auto id = atrium::new_uuid_v7();
  auto out = runtime.execute_blocking(
      id, atrium::register_user{id, "admin", "admin@localhost", "admin", *hash},
      atrium::ports::command_context{atrium::principal::system(), atrium::new_uuid_v7(), std::nullopt});
  if (!out) {
    spdlog::error("admin bootstrap failed: {}", out.error().message);
    return false;
  }
  spdlog::info("bootstrap created user=admin id={}", id);
  if (generated) {
    // Printed once, on stdout; the log (stderr) never carries it.
    std::cout << "admin password (shown once): " << password << std::endl;
  }
  return true;
}

/// The instance id kept in DATA_DIR/instance_id (a UUIDv7 made on first start): every
/// runtime container is labelled with it, so that installations sharing a Docker daemon
/// never touch each other's containers, and the Kafka relay's `ce_source` carries it
/// (`/atrium/<id>`), so that consumers of several deployments can tell them apart.
std::expected<std::string, std::string> instance_id(const std::string& data_dir) {
  const auto path = std::filesystem::path(data_dir) / "instance_id";
  std::string id;
  if (std::ifstream in(path); in) std::getline(in, id);
  if (!id.empty()) return id;
  id = atrium::new_uuid_v7();
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out.flush()) return std::unexpected("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return std::unexpected("cannot write " + path.string() + ": " + ec.message());
  return id;
}

/// The Kafka relay's target: an existing cluster (--kafka-brokers), the embedded one
/// (started into `embedded`), or none (nullptr). Returns why it cannot start.
std::expected<std::unique_ptr<atrium::ports::event_publisher>, std::string> start_kafka(
    const atrium::app::serve_options& opts, std::unique_ptr<atrium::kafka_adapter::embedded_cluster>& embedded) {
  std::string brokers = opts.kafka_brokers;
  if (opts.kafka_embedded) {
    auto cluster = atrium::kafka_adapter::embedded_cluster::start(1, opts.kafka_topic, 4);
    if (!cluster) return std::unexpected(cluster.error().message);
    embedded = std::move(*cluster);
    brokers = embedded->bootstraps();
    std::ofstream(opts.data_dir + "/kafka.bootstrap") << brokers << "\n";
    spdlog::info("embedded kafka bootstrap={} topic={} (in memory, for development)", brokers, opts.kafka_topic);
  }
  if (brokers.empty()) return nullptr;
  atrium::kafka_adapter::kafka_options kafka;
  kafka.brokers = brokers;
  kafka.topic = opts.kafka_topic;
  kafka.mode = opts.kafka_mode == "structured" ? atrium::kafka_adapter::content_mode::structured
                                               : atrium::kafka_adapter::content_mode::binary;
  kafka.settings = opts.kafka_settings;
  // `ce_source`: this deployment's, unless configured: /atrium/<DATA_DIR/instance_id>.
  if (!opts.kafka_source.empty()) {
    kafka.source = opts.kafka_source;
  } else {
    auto id = instance_id(opts.data_dir);
    if (!id) return std::unexpected(id.error());
    kafka.source = "/atrium/" + *id;
  }
  if (opts.kafka_transactions) {
    kafka.transactional_id =
        !opts.kafka_transactional_id.empty() ? opts.kafka_transactional_id : "atriumd-relay-" + opts.kafka_topic;
  }
  auto made = atrium::kafka_adapter::make_kafka_publisher(std::move(kafka));
  if (!made) return std::unexpected(made.error().message);
  return std::move(*made);
}

/// The actor runtime's settings from the options; a fatal supervision verdict stops the
/// process like SIGTERM, with `k_exit_fatal` as its status.
atrium::runtime_config runtime_settings(const atrium::app::serve_options& opts,
                                        atrium::ports::event_publisher* publisher) {
  atrium::runtime_config config;
  config.publisher = publisher;
  config.relay_checkpoint = "relay:" + opts.kafka_topic;
  config.snapshot_every = opts.snapshot_every;
  config.passivate_after = std::chrono::seconds(opts.passivate_after_s);
  config.max_live_entities = opts.max_live_entities;
  config.on_fatal = [](const std::string&) {
    // The runtime has logged why (one critical line).
    g_fatal = true;
    ::kill(::getpid(), SIGTERM);
  };
  return config;
}

/// What runs jobs: the result store under DATA_DIR/results and one executor per kind
/// (SQLite under the SQLite root, PostgreSQL behind the connection policy, scripts in
/// DATA_DIR/work or --job-work-dir, with DATA_DIR hidden from sandboxed scripts).
struct job_wiring {
  std::filesystem::path sqlite_root;
  std::unique_ptr<atrium::results_adapter::file_result_store> results;
  std::unique_ptr<atrium::connectors_adapter::sqlite_executor> sqlite;
  std::unique_ptr<atrium::connectors_adapter::postgres_executor> postgres;
  std::unique_ptr<atrium::process_adapter::script_executor> script;

  /// The dispatcher's settings over these, `vault` and `connections` (all must outlive the runtime).
  [[nodiscard]] atrium::job_execution execution(const atrium::app::serve_options& opts,
                                                atrium::ports::secret_vault& vault,
                                                const atrium::ports::connection_queries& connections) const {
    atrium::job_execution jobs;
    jobs.executors = {{"sqlite", sqlite.get()}, {"postgres", postgres.get()}, {"script", script.get()}};
    jobs.results = results.get();
    jobs.vault = &vault;
    jobs.connections = &connections;
    jobs.slots = opts.job_slots;
    jobs.limits.max_rows = opts.job_max_result_rows;
    jobs.limits.max_bytes = opts.job_max_result_bytes;
    jobs.result_ttl = std::chrono::seconds(opts.job_result_ttl_s);
    jobs.lease = std::chrono::seconds(opts.job_lease_s);
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "localhost");
    jobs.runner_name = std::string("atriumd/") + host;
    return jobs;
  }
};

/// Creates the job side's directories, result store and executors. Errors: one line.
std::expected<job_wiring, std::string> make_job_wiring(const atrium::app::serve_options& opts) {
  namespace fs = std::filesystem;
  job_wiring w;
  const fs::path data = opts.data_dir;
  w.sqlite_root = opts.sqlite_root.empty() ? data / "files" : fs::path(opts.sqlite_root);
  std::error_code ec;
  fs::create_directories(w.sqlite_root, ec);
  if (ec) return std::unexpected("cannot create the SQLite root " + w.sqlite_root.string() + ": " + ec.message());
  w.sqlite_root = fs::weakly_canonical(fs::absolute(w.sqlite_root), ec);
  auto results = atrium::results_adapter::file_result_store::open_dir(data / "results");
  if (!results) return std::unexpected("result store: " + results.error().message);
  w.results = std::move(*results);
  w.sqlite = std::make_unique<atrium::connectors_adapter::sqlite_executor>(w.sqlite_root);
  // Checked once already by the option parser, so this cannot fail.
  auto policy = atrium::connectors_adapter::network_policy::make(opts.connection_allow, opts.connection_deny);
  w.postgres = std::make_unique<atrium::connectors_adapter::postgres_executor>(std::move(*policy));
  atrium::process_adapter::script_executor_options so;
  so.work_root = opts.job_work_dir.empty() ? data / "work" : fs::path(opts.job_work_dir);
  so.sandbox = opts.job_sandbox == "always"  ? atrium::process_adapter::sandbox_mode::always
               : opts.job_sandbox == "never" ? atrium::process_adapter::sandbox_mode::never
                                             : atrium::process_adapter::sandbox_mode::automatic;
  so.hidden_paths = {fs::absolute(data, ec)};
  so.max_log_bytes = atrium::ports::result_limits{}.max_log_bytes;
  auto script = atrium::process_adapter::script_executor::create(std::move(so));
  if (!script) return std::unexpected("script executor: " + script.error().message);
  w.script = std::move(*script);
  return w;
}

/// The web console's directory: `--web-root` when given (it must load), else
/// `<directory of the atriumd executable>/web`, else `/usr/share/atrium/web`, whichever
/// exists first; nullopt when none does (no console).
std::optional<std::filesystem::path> web_root_dir(const atrium::app::serve_options& opts) {
  namespace fs = std::filesystem;
  if (!opts.web_root.empty()) return fs::path(opts.web_root);
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto beside = exe.parent_path() / "web";
    if (fs::is_directory(beside, ec)) return beside;
  }
  if (fs::path shared = "/usr/share/atrium/web"; fs::is_directory(shared, ec)) return shared;
  return std::nullopt;
}

/// Loads the web console (`web_root_dir`) into memory; nullptr with one warning when
/// there is none; an error when a directory is there but does not load (too large, unreadable).
std::expected<std::shared_ptr<const atrium::http_adapter::web_root>, std::string> load_console(
    const atrium::app::serve_options& opts) {
  const auto dir = web_root_dir(opts);
  if (!dir) {
    spdlog::warn("the web console is not installed (build web/ or pass --web-root): GET / answers 404");
    return nullptr;
  }
  auto web = atrium::http_adapter::web_root::load(*dir);
  if (!web) return std::unexpected(web.error().message);
  if ((*web)->files().find("index.html") == (*web)->files().end()) {
    spdlog::warn("web root {} has no index.html: GET / answers 404", (*web)->dir().string());
  }
  spdlog::info("web console dir={} files={} bytes={}", (*web)->dir().string(), (*web)->files().size(), (*web)->bytes());
  return *web;
}

/// The HTTP server's settings from the options.
atrium::http_adapter::server_options server_settings(const atrium::app::serve_options& opts) {
  atrium::http_adapter::server_options s{opts.host, opts.port, static_cast<std::size_t>(opts.http_threads), 1 << 20,
                                         std::chrono::seconds(60)};
  s.push_queue_messages = opts.push_queue_messages;
  s.push_queue_bytes = opts.push_queue_bytes;
  s.push_socket_buffer = opts.push_socket_buffer;
  s.push_write_stall = std::chrono::milliseconds(opts.push_write_stall_ms);
  s.tls_cert_file = opts.tls_cert;
  s.tls_key_file = opts.tls_key;
  s.tls_min_version = opts.tls_min_version;
  return s;
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread started after it
/// (main waits for them with sigwait); ignores SIGPIPE. Returns the signals waited for.
sigset_t block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reloads the TLS certificate (`run` waits for it too)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

/// After a fatal supervision verdict a clean stop is attempted, but a wedged actor
/// system must not keep the process from exiting and being restarted.
void exit_fatal_within(std::chrono::seconds limit) {
  std::thread([limit] {
    std::this_thread::sleep_for(limit);
    spdlog::shutdown();
    std::_Exit(k_exit_fatal);
  }).detach();
}

/// Runs the server until SIGINT/SIGTERM; returns the exit status.
/// The container runtimes and this installation's instance id.
struct container_wiring {
  std::string instance;
  std::map<std::string, std::shared_ptr<atrium::ports::container_runtime>> runtimes;
};

/// `process` always; `docker` with --container-runtime docker (its daemon must answer
/// and speak API ≥ 1.41 at start, else atriumd does not start).
std::expected<container_wiring, std::string> make_container_runtimes(const atrium::app::serve_options& opts) {
  container_wiring out;
  auto id = instance_id(opts.data_dir);
  if (!id) return std::unexpected(id.error());
  out.instance = *id;
  atrium::process_adapter::process_runtime_options p;
  p.data_dir = opts.data_dir;
  p.instance = out.instance;
  out.runtimes["process"] = atrium::process_adapter::make_process_runtime(std::move(p));
  if (opts.container_runtime == "docker") {
    atrium::docker_adapter::docker_runtime_options d;
    d.host = opts.docker_host;
    d.instance = out.instance;
    auto docker = atrium::docker_adapter::make_docker_runtime(std::move(d));
    if (!docker) return std::unexpected("--container-runtime docker: " + docker.error().message);
    out.runtimes["docker"] = std::shared_ptr<atrium::ports::container_runtime>(std::move(*docker));
  }
  spdlog::info("container runtimes instance={} default={}", out.instance, opts.container_runtime);
  return out;
}

/// `routes_only`: `atriumd routes` — wire everything in a scratch data dir, print the API's
/// route table (JSON, `api::routes`) on stdout instead of listening, and stop.
int serve(const atrium::app::serve_options& opts, bool routes_only = false) {
  // Logs go to stderr; stdout carries only the listening line and, on first start, the
  // generated admin password.
  set_up_logging(opts.log_format);
  spdlog::set_level(spdlog::level::from_str(opts.log_level));
  const sigset_t stop_signals = block_stop_signals();

  if (auto ok = atrium::sodium_adapter::initialize(); !ok) {
    spdlog::critical("{}", ok.error().message);
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(opts.data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data dir {}: {}", opts.data_dir, ec.message());
    return 1;
  }

  // The console's files are read once, before anything else starts: a bad web root
  // stops the start here.
  auto console = load_console(opts);
  if (!console) {
    spdlog::critical("{}", console.error());
    return 1;
  }

  auto projections = atrium::make_all_projections();
  std::vector<std::string> names;
  for (const auto& p : projections) names.emplace_back(p->name());
  auto store = atrium::rocksdb_adapter::rocksdb_store::open(opts.data_dir + "/rocksdb", names);
  if (!store) {
    spdlog::critical("cannot open store: {}", store.error().message);
    return 1;
  }
  spdlog::info("store opened dir={} head={}", opts.data_dir, (*store)->events().head_position());

  std::unique_ptr<atrium::kafka_adapter::embedded_cluster> embedded_kafka;
  auto publisher = start_kafka(opts, embedded_kafka);
  if (!publisher) {
    spdlog::critical("{}", publisher.error());
    return 1;
  }
  // Connection credentials: sealed under the master key (--master-key-file or
  // ATRIUM_MASTER_KEY_FILE, or DATA_DIR/master.key generated with mode 0600 on first start).
  std::optional<std::filesystem::path> key_file;
  if (!opts.master_key_file.empty()) key_file = opts.master_key_file;
  auto master_key = atrium::vault_adapter::load_master_key(key_file, opts.data_dir);
  if (!master_key) {
    spdlog::critical("master key: {}", master_key.error().message);
    return 1;
  }
  atrium::vault_adapter::sodium_vault vault(*master_key, (*store)->kv());
  // The projection runner writes and the query port reads through `read_models`, which
  // counts the changes of the rows authentication derives principals from (the API's
  // principal cache, adapters/http/auth_cache.hpp).
  atrium::watched_read_models read_models((*store)->read_models(), {"users", "groups"});
  auto queries = atrium::make_queries(read_models, (*store)->events());  // the read side the API asks
  auto jobs = make_job_wiring(opts);
  if (!jobs) {
    spdlog::critical("{}", jobs.error());
    return 1;
  }
  // Checked once already by the option parser, so this cannot fail.
  auto policy = atrium::connectors_adapter::network_policy::make(opts.connection_allow, opts.connection_deny);
  atrium::connectors_adapter::sql_connection_tester tester(std::move(*policy), jobs->sqlite_root);
  spdlog::info("connection policy rules={} sqlite_root={} job_slots={}", tester.policy().describe(),
               jobs->sqlite_root.string(), opts.job_slots);

  auto container_runtimes = make_container_runtimes(opts);
  if (!container_runtimes) {
    spdlog::critical("{}", container_runtimes.error());
    return 1;
  }
  auto settings = runtime_settings(opts, publisher->get());
  settings.jobs = jobs->execution(opts, vault, *queries);
  settings.containers.runtimes = container_runtimes->runtimes;
  settings.containers.instance = container_runtimes->instance;
  settings.containers.queries = queries.get();
  const auto zones = atrium::make_iana_zone_database();  // schedules' IANA time zones (adapters/tz)
  settings.schedules.zones = zones;
  settings.schedules.queries = queries.get();
  auto runtime =
      atrium::actor_runtime::start((*store)->events(), read_models, std::move(projections), std::move(settings));
  if (!runtime) {
    spdlog::critical("cannot start actors: {}", runtime.error().message);
    return 1;
  }

  atrium::sodium_adapter::argon2id_hasher hasher;
  atrium::sodium_adapter::sodium_secrets secrets;
  if (!routes_only && (*store)->events().head_position() == 0 && !bootstrap_admin(**runtime, hasher, secrets)) {
    return 1;
  }
  // Online backups (POST /v1/admin/backups), on a thread of their own; declared before
  // the API so that a running backup is waited for after the server stopped.
  std::optional<std::filesystem::path> backup_key;
  if (opts.include_master_key) backup_key = key_file.value_or(std::filesystem::path(opts.data_dir) / "master.key");
  atrium::rocksdb_adapter::backups backups((*store)->db(), (*store)->events(),
                                           opts.backup_dir.empty() ? std::filesystem::path(opts.data_dir) / "backups"
                                                                   : std::filesystem::path(opts.backup_dir),
                                           backup_key);
  atrium::http_adapter::api_dependencies api_deps{
      **runtime, (*store)->events(), *queries,  (*store)->kv(), (*store)->kv(), hasher, secrets, vault,
      tester,    **runtime,          **runtime, *jobs->results};
  api_deps.zones = zones;
  api_deps.leases = runtime->get();
  api_deps.backups = &backups;
  api_deps.web = std::move(*console);
  api_deps.allowed_origins = opts.allowed_origins;
  api_deps.secure_cookie = opts.cookie_secure;
  api_deps.login_throttle = !opts.no_login_throttle;
  api_deps.container_runtimes = container_runtimes->runtimes;
  api_deps.default_container_runtime = opts.container_runtime;
  api_deps.read_model_changes = &read_models;
  // GET /metrics: the store (group commit, RocksDB, disk), the actors, the process.
  static const atrium::app::process_metrics process;
  api_deps.metrics_sources = {store->get(), runtime->get(), &process};
  atrium::http_adapter::api api(api_deps);
  if (routes_only) {
    std::cout << api.routes().dump(2) << std::endl;
    api.stop();
    runtime->reset();
    publisher->reset();
    store->reset();
    spdlog::shutdown();
    return 0;
  }
  auto server = atrium::http_adapter::http_server::start(
      server_settings(opts), [&api](atrium::http_adapter::http_request req, atrium::http_adapter::respond_fn respond) {
        api.handle(std::move(req), std::move(respond));
      });
  if (!server) {
    spdlog::critical("{}", server.error().message);
    return 1;
  }
  const auto address = opts.host + ":" + std::to_string((*server)->port());
  // Tests and scripts read the bound address here (useful with port 0).
  std::ofstream(opts.data_dir + "/atriumd.addr") << address << "\n";
  spdlog::info("listening address={} data_dir={}", address, opts.data_dir);
  std::cout << "atriumd listening on " << ((*server)->tls() ? "https://" : "http://") << address << std::endl;

  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGHUP) break;
    // SIGHUP: a renewed certificate. Connections accepted from now on use it.
    if (!(*server)->tls()) {
      spdlog::info("SIGHUP: nothing to reload (no --tls-cert)");
    } else if (auto reloaded = (*server)->reload_tls(); !reloaded) {
      spdlog::error("SIGHUP: TLS certificate not reloaded, still serving the previous one: {}",
                    reloaded.error().message);
    } else {
      spdlog::info("SIGHUP: TLS certificate reloaded cert={}", opts.tls_cert);
    }
  }
  spdlog::info("stopping signal={}", sig);
  if (g_fatal) exit_fatal_within(std::chrono::seconds(10));
  (*server)->stop();   // no new requests
  api.stop();          // finish password hashing in flight
  runtime->reset();    // pending commands complete; actors stop (the relay saves its checkpoint)
  publisher->reset();  // undelivered events are dropped; the checkpoint has not passed them
  embedded_kafka.reset();
  server->reset();
  store->reset();  // RocksDB closes cleanly
  std::filesystem::remove(opts.data_dir + "/atriumd.addr", ec);
  if (opts.kafka_embedded) std::filesystem::remove(opts.data_dir + "/kafka.bootstrap", ec);
  spdlog::info("stopped");
  spdlog::shutdown();  // drains the async queue and flushes
  return g_fatal ? k_exit_fatal : 0;
}

/// `atriumd routes`: the route table as JSON on stdout (`[{"method","pattern","access",
/// "query"}]`), from the API wired in a scratch data dir that is removed afterwards.
int print_routes(atrium::app::serve_options opts) {
  char scratch[] = "/tmp/atriumd-routes-XXXXXX";
  if (::mkdtemp(scratch) == nullptr) {
    std::cerr << "atriumd routes: cannot make a scratch dir in /tmp\n";
    return 1;
  }
  opts.data_dir = scratch;
  opts.log_level = "off";
  opts.kafka_embedded = false;
  opts.kafka_brokers.clear();
  const int rc = serve(opts, true);
  std::error_code ec;
  std::filesystem::remove_all(scratch, ec);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  auto command_line = atrium::app::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
  if (!command_line) {
    const auto& exit = command_line.error();
    (exit.code == 0 ? std::cout : std::cerr) << exit.text << std::flush;
    return exit.code;
  }
  if (command_line->command == "worker") return atrium::app::run_worker(command_line->worker);
  if (command_line->command == "routes") return print_routes(command_line->serve);
  if (command_line->command != "serve") {
    return atrium::cli::run(command_line->command, command_line->offline, std::cout, std::cerr);
  }
  return serve(command_line->serve);
}
