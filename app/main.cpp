// atriumd: the composition root. The only place that wires adapters to the core.
//
//   atriumd [serve] --data-dir DIR --listen HOST:PORT
//   atriumd verify|export|inspect|replay … --data-dir DIR   (offline: app/cli.hpp)
//
// Starts RocksDB in DIR/rocksdb, the actor system, and the HTTP API; on first start
// with an empty store creates the `admin` user (password from ATRIUM_ADMIN_PASSWORD,
// or generated and printed once). Stops cleanly on SIGINT/SIGTERM.
#include <atomic>
#include <csignal>
#include <cstdlib>
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
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "adapters/connectors/sql_connector.hpp"
#include "adapters/sodium/sodium_security.hpp"
#include "adapters/vault/sodium_vault.hpp"
#include "app/cli.hpp"
#include "app/log_format.hpp"
#include "events/user/user_decider.hpp"
#include "projections/projections.hpp"
#include "projections/queries.hpp"

namespace {

/// Set when supervision gave up (an actor that keeps failing): main stops the server and
/// exits with `k_exit_fatal`, so that a service manager (systemd `Restart=on-failure`)
/// starts it afresh.
std::atomic<bool> g_fatal{false};
constexpr int k_exit_fatal = 70;  // EX_SOFTWARE

constexpr const char* k_usage_serve =
    "usage: atriumd [serve] [--data-dir DIR] [--listen HOST:PORT] [--log-level LEVEL]\n"
    "               [--kafka-brokers HOST:PORT,... | --kafka embedded] [--kafka-option KEY=VALUE]...\n"
    "               [--kafka-transactions | --kafka-transactional-id ID]\n"
    "               [--connection-allow LIST]... [--connection-deny LIST]...\n";
constexpr const char* k_usage_options =
    "  --data-dir DIR      where RocksDB keeps the events and read models (default ./data)\n"
    "  --listen HOST:PORT  HTTP address (default 127.0.0.1:8080; port 0 picks a free port)\n"
    "  --log-level LEVEL   trace, debug, info, warn, error (default info)\n"
    "  --snapshot-every N  entities snapshot their state every N events (default 100; 0 disables)\n"
    "  --passivate-after S stop an entity's actor after S idle seconds (default 300)\n"
    "  --max-live-entities N  entity actors alive at once, at most (default 100000)\n"
    "  --kafka-brokers LIST   relay every event to this Kafka cluster (bootstrap HOST:PORT,...)\n"
    "  --kafka embedded       start an in-process development Kafka cluster (librdkafka's mock\n"
    "                         cluster; data in memory) and relay to it; its address goes to\n"
    "                         DATA_DIR/kafka.bootstrap and the log\n"
    "  --kafka-option K=V     a librdkafka setting for the relay's producer (repeatable; SASL, TLS)\n"
    "  --kafka-topic NAME     the topic (default atrium.events)\n"
    "  --kafka-content-mode binary|structured  CloudEvents content mode (default binary)\n"
    "  --kafka-transactions   exactly once: produce each batch in a Kafka transaction\n"
    "                         (transactional.id atriumd-relay-TOPIC; consumers read with\n"
    "                         isolation.level=read_committed)\n"
    "  --kafka-transactional-id ID  the same, under this transactional.id\n"
    "  --push-queue-messages N  a WebSocket/SSE connection's send queue bound (default 1024 messages)\n"
    "  --push-queue-bytes N     ... and in bytes (default 4194304); a consumer beyond it is closed\n"
    "  --push-socket-buffer N   SO_SNDBUF of a WebSocket/SSE socket (default 131072; 0: kernel autotuning)\n"
    "  --push-write-stall-ms N  a consumer that takes no byte for this long is closed (default 20000)\n"
    "  --connection-allow LIST  networks (CIDR or address) and host patterns (db.example.com,\n"
    "                         *.corp.example, *) that connections may reach, comma-separated,\n"
    "                         repeatable; lifts the built-in denies for them\n"
    "  --connection-deny LIST   networks and host patterns that connections may not reach; by\n"
    "                         default loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16,\n"
    "                         fe80::/10), 0.0.0.0/8 and the cloud metadata address\n"
    "                         169.254.169.254 are denied; the most specific rule wins\n"
    "environment: ATRIUM_ADMIN_PASSWORD sets the admin password on first start\n";

/// The whole usage text: the server's line, the offline subcommands', then the options.
void print_usage(std::ostream& out) { out << k_usage_serve << atrium::cli::usage() << k_usage_options; }

struct options {
  std::string command = "serve";  ///< serve (the offline subcommands are parsed by app/cli.cpp)
  std::string data_dir = "data";
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string log_level = "info";
  std::uint64_t snapshot_every = 100;
  std::uint64_t passivate_after_s = 300;
  std::uint64_t max_live_entities = 100000;
  std::string kafka_brokers;  ///< empty: Kafka off (unless embedded)
  bool kafka_embedded = false;
  std::string kafka_topic = "atrium.events";
  std::string kafka_mode = "binary";
  std::vector<std::pair<std::string, std::string>> kafka_settings;
  bool kafka_transactions = false;
  std::string kafka_transactional_id;  ///< empty: atriumd-relay-<topic>
  std::uint64_t push_queue_messages = 1024;
  std::uint64_t push_queue_bytes = 4 << 20;
  std::uint64_t push_socket_buffer = 128 << 10;
  std::uint64_t push_write_stall_ms = 20000;
  std::vector<std::string> connection_allow;  ///< --connection-allow entries, as given
  std::vector<std::string> connection_deny;   ///< --connection-deny entries, as given
};

std::optional<options> parse_args(int argc, char** argv, std::string& err) {
  options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  std::size_t i = 0;
  if (i < args.size() && args[i] == "serve") o.command = args[i++];
  for (; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        err = a + " needs a value";
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "--data-dir") {
      auto v = value();
      if (!v) return std::nullopt;
      o.data_dir = *v;
    } else if (a == "--listen") {
      auto v = value();
      if (!v) return std::nullopt;
      const auto colon = v->rfind(':');
      if (colon == std::string::npos) {
        err = "--listen takes HOST:PORT";
        return std::nullopt;
      }
      o.host = v->substr(0, colon);
      if (o.host.size() >= 2 && o.host.front() == '[' && o.host.back() == ']')
        o.host = o.host.substr(1, o.host.size() - 2);
      try {
        const auto port = std::stoul(v->substr(colon + 1));
        if (port > 65535) throw std::out_of_range("port");
        o.port = static_cast<std::uint16_t>(port);
      } catch (const std::exception&) {
        err = "--listen: bad port in " + *v;
        return std::nullopt;
      }
    } else if (a == "--snapshot-every" || a == "--passivate-after" || a == "--max-live-entities" ||
               a == "--push-queue-messages" || a == "--push-queue-bytes" || a == "--push-socket-buffer" ||
               a == "--push-write-stall-ms") {
      auto v = value();
      if (!v) return std::nullopt;
      std::uint64_t n = 0;
      try {
        if (v->empty() || v->front() == '-') throw std::invalid_argument("negative");
        n = std::stoull(*v);
      } catch (const std::exception&) {
        err = a + " takes a non-negative number";
        return std::nullopt;
      }
      if (a == "--snapshot-every") o.snapshot_every = n;
      if (a == "--passivate-after") o.passivate_after_s = std::max<std::uint64_t>(n, 1);
      if (a == "--max-live-entities") o.max_live_entities = std::max<std::uint64_t>(n, 1);
      if (a == "--push-queue-messages") o.push_queue_messages = std::max<std::uint64_t>(n, 1);
      if (a == "--push-queue-bytes") o.push_queue_bytes = std::max<std::uint64_t>(n, 1024);
      if (a == "--push-socket-buffer") o.push_socket_buffer = n;
      if (a == "--push-write-stall-ms") o.push_write_stall_ms = std::max<std::uint64_t>(n, 100);
    } else if (a == "--kafka-transactions") {
      o.kafka_transactions = true;
    } else if (a == "--kafka-brokers" || a == "--kafka" || a == "--kafka-topic" || a == "--kafka-content-mode" ||
               a == "--kafka-option" || a == "--kafka-transactional-id") {
      auto v = value();
      if (!v) return std::nullopt;
      if (v->empty()) {
        err = a + " needs a non-empty value";
        return std::nullopt;
      }
      if (a == "--kafka-brokers") o.kafka_brokers = *v;
      if (a == "--kafka-topic") o.kafka_topic = *v;
      if (a == "--kafka-transactional-id") {
        o.kafka_transactional_id = *v;
        o.kafka_transactions = true;
      }
      if (a == "--kafka") {
        if (*v != "embedded") {
          err = "--kafka takes `embedded` (use --kafka-brokers for a cluster)";
          return std::nullopt;
        }
        o.kafka_embedded = true;
      }
      if (a == "--kafka-content-mode") {
        if (*v != "binary" && *v != "structured") {
          err = "--kafka-content-mode takes binary or structured";
          return std::nullopt;
        }
        o.kafka_mode = *v;
      }
      if (a == "--kafka-option") {
        const auto eq = v->find('=');
        if (eq == std::string::npos || eq == 0) {
          err = "--kafka-option takes KEY=VALUE";
          return std::nullopt;
        }
        o.kafka_settings.emplace_back(v->substr(0, eq), v->substr(eq + 1));
      }
    } else if (a == "--connection-allow" || a == "--connection-deny") {
      auto v = value();
      if (!v) return std::nullopt;
      (a == "--connection-allow" ? o.connection_allow : o.connection_deny).push_back(*v);
    } else if (a == "--log-level") {
      auto v = value();
      if (!v) return std::nullopt;
      o.log_level = *v;
    } else if (a == "--help" || a == "-h") {
      print_usage(std::cout);
      std::exit(0);
    } else {
      err = "unknown argument: " + a;
      return std::nullopt;
    }
  }
  if (auto policy = atrium::connectors_adapter::network_policy::make(o.connection_allow, o.connection_deny); !policy) {
    err = "--connection-allow/--connection-deny: " + policy.error().message;
    return std::nullopt;
  }
  if (o.kafka_embedded && !o.kafka_brokers.empty()) {
    err = "--kafka embedded and --kafka-brokers exclude each other";
    return std::nullopt;
  }
  if (o.kafka_transactions && !o.kafka_embedded && o.kafka_brokers.empty()) {
    err = "--kafka-transactions needs --kafka-brokers or --kafka embedded";
    return std::nullopt;
  }
  return o;
}

/// Logs go to stderr through spdlog's async logger: request threads only enqueue (a
/// bounded queue; they wait rather than drop when it is full), one thread formats into
/// a 64 KiB stdio buffer, flushed every second and at once for warnings and errors, so
/// the access log costs no write(2) per request.
void set_up_logging() {
  static char buffer[1 << 16];
  std::setvbuf(stderr, buffer, _IOFBF, sizeof buffer);
  spdlog::init_thread_pool(1 << 15, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>("atriumd", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::block);
  logger->set_formatter(atrium::app::escaped_formatter());  // no raw control character from a request in a line
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

}  // namespace

int main(int argc, char** argv) {
  // Offline subcommands (verify, export, inspect, replay) never reach the serve path.
  if (argc > 1 && atrium::cli::is_offline_command(argv[1])) {
    return atrium::cli::run(argv[1], std::vector<std::string>(argv + 2, argv + argc), std::cout, std::cerr);
  }
  std::string err;
  auto opts = parse_args(argc, argv, err);
  if (!opts) {
    std::cerr << "atriumd: " << err << "\n";
    print_usage(std::cerr);
    return 2;
  }
  // Logs go to stderr; stdout carries only the listening line and, on first start, the
  // generated admin password.
  set_up_logging();
  spdlog::set_level(spdlog::level::from_str(opts->log_level));

  // Block the stop signals in every thread we start; main waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (auto ok = atrium::sodium_adapter::initialize(); !ok) {
    spdlog::critical("{}", ok.error().message);
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(opts->data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data dir {}: {}", opts->data_dir, ec.message());
    return 1;
  }

  auto projections = atrium::make_all_projections();
  std::vector<std::string> names;
  for (const auto& p : projections) names.emplace_back(p->name());
  auto store = atrium::rocksdb_adapter::rocksdb_store::open(opts->data_dir + "/rocksdb", names);
  if (!store) {
    spdlog::critical("cannot open store: {}", store.error().message);
    return 1;
  }
  spdlog::info("store opened dir={} head={}", opts->data_dir, (*store)->head_position());

  // Kafka: an existing cluster (--kafka-brokers), the embedded one, or off.
  std::unique_ptr<atrium::kafka_adapter::embedded_cluster> embedded_kafka;
  std::unique_ptr<atrium::ports::event_publisher> publisher;
  std::string brokers = opts->kafka_brokers;
  if (opts->kafka_embedded) {
    auto cluster = atrium::kafka_adapter::embedded_cluster::start(1, opts->kafka_topic, 4);
    if (!cluster) {
      spdlog::critical("{}", cluster.error().message);
      return 1;
    }
    embedded_kafka = std::move(*cluster);
    brokers = embedded_kafka->bootstraps();
    std::ofstream(opts->data_dir + "/kafka.bootstrap") << brokers << "\n";
    spdlog::info("embedded kafka bootstrap={} topic={} (in memory, for development)", brokers, opts->kafka_topic);
  }
  if (!brokers.empty()) {
    atrium::kafka_adapter::kafka_options kafka;
    kafka.brokers = brokers;
    kafka.topic = opts->kafka_topic;
    kafka.mode = opts->kafka_mode == "structured" ? atrium::kafka_adapter::content_mode::structured
                                                  : atrium::kafka_adapter::content_mode::binary;
    kafka.settings = opts->kafka_settings;
    if (opts->kafka_transactions) {
      kafka.transactional_id =
          !opts->kafka_transactional_id.empty() ? opts->kafka_transactional_id : "atriumd-relay-" + opts->kafka_topic;
    }
    auto made = atrium::kafka_adapter::make_kafka_publisher(std::move(kafka));
    if (!made) {
      spdlog::critical("{}", made.error().message);
      return 1;
    }
    publisher = std::move(*made);
  }

  atrium::runtime_config runtime_config;
  runtime_config.publisher = publisher.get();
  runtime_config.relay_checkpoint = "relay:" + opts->kafka_topic;
  runtime_config.snapshot_every = opts->snapshot_every;
  runtime_config.passivate_after = std::chrono::seconds(opts->passivate_after_s);
  runtime_config.max_live_entities = opts->max_live_entities;
  runtime_config.on_fatal = [](const std::string&) {
    // The runtime has logged why (one critical line). Stop like on SIGTERM; the exit
    // status says it was a failure.
    g_fatal = true;
    ::kill(::getpid(), SIGTERM);
  };
  auto runtime = atrium::actor_runtime::start(**store, **store, std::move(projections), runtime_config);
  if (!runtime) {
    spdlog::critical("cannot start actors: {}", runtime.error().message);
    return 1;
  }

  atrium::sodium_adapter::argon2id_hasher hasher;
  atrium::sodium_adapter::sodium_secrets secrets;
  if ((*store)->head_position() == 0 && !bootstrap_admin(**runtime, hasher, secrets)) return 1;

  // Connection credentials: sealed under the master key (ATRIUM_MASTER_KEY_FILE, or
  // DATA_DIR/master.key generated with mode 0600 on first start).
  std::optional<std::filesystem::path> key_file;
  if (const char* f = std::getenv("ATRIUM_MASTER_KEY_FILE"); f && *f) key_file = f;
  auto master_key = atrium::vault_adapter::load_master_key(key_file, opts->data_dir);
  if (!master_key) {
    spdlog::critical("master key: {}", master_key.error().message);
    return 1;
  }
  atrium::vault_adapter::sodium_vault vault(*master_key, **store);
  // Parsed once already by parse_args, so this cannot fail.
  auto policy = atrium::connectors_adapter::network_policy::make(opts->connection_allow, opts->connection_deny);
  atrium::connectors_adapter::sql_connection_tester tester(std::move(*policy));
  spdlog::info("connection policy rules={}", tester.policy().describe());

  auto queries = atrium::make_queries(**store, **store);  // the read side the API asks
  atrium::http_adapter::api api(
      {**runtime, **store, *queries, **store, **store, hasher, secrets, vault, tester, **runtime, **runtime});
  atrium::http_adapter::server_options server_options{opts->host, opts->port, 2, 1 << 20, std::chrono::seconds(60)};
  server_options.push_queue_messages = opts->push_queue_messages;
  server_options.push_queue_bytes = opts->push_queue_bytes;
  server_options.push_socket_buffer = opts->push_socket_buffer;
  server_options.push_write_stall = std::chrono::milliseconds(opts->push_write_stall_ms);
  auto server = atrium::http_adapter::http_server::start(
      server_options, [&api](atrium::http_adapter::http_request req, atrium::http_adapter::respond_fn respond) {
        api.handle(std::move(req), std::move(respond));
      });
  if (!server) {
    spdlog::critical("{}", server.error().message);
    return 1;
  }
  const auto address = opts->host + ":" + std::to_string((*server)->port());
  {
    // Tests and scripts read the bound address here (useful with port 0).
    std::ofstream(opts->data_dir + "/atriumd.addr") << address << "\n";
  }
  spdlog::info("listening address={} data_dir={}", address, opts->data_dir);
  std::cout << "atriumd listening on http://" << address << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("stopping signal={}", sig);
  if (g_fatal) {
    // A clean stop is attempted, but a wedged actor system must not keep the process
    // from exiting and being restarted.
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(10));
      spdlog::shutdown();
      std::_Exit(k_exit_fatal);
    }).detach();
  }
  (*server)->stop();  // no new requests
  api.stop();         // finish password hashing in flight
  runtime->reset();   // pending commands complete; actors stop (the relay saves its checkpoint)
  publisher.reset();  // undelivered events are dropped; the checkpoint has not passed them
  embedded_kafka.reset();
  server->reset();
  store->reset();  // RocksDB closes cleanly
  std::filesystem::remove(opts->data_dir + "/atriumd.addr", ec);
  if (opts->kafka_embedded) std::filesystem::remove(opts->data_dir + "/kafka.bootstrap", ec);
  spdlog::info("stopped");
  spdlog::shutdown();  // drains the async queue and flushes
  return g_fatal ? k_exit_fatal : 0;
}
