// atriumd's options (app/options.hpp): subcommand selection, --help and --version,
// precedence command line > environment > config file > default, and bad input as one
// line with exit code 2.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <initializer_list>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/options.hpp"
#include "tests/support/process.hpp"

using atrium::app::command_line;
using atrium::app::parse_command_line;
using atrium::test::temp_dir;

namespace {

/// Sets environment variables for its lifetime and restores the previous values after.
class env_guard {
 public:
  env_guard(std::initializer_list<std::pair<std::string, std::string>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~env_guard() {
    for (const auto& [name, old] : saved_) {
      if (old) {
        ::setenv(name.c_str(), old->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

/// The parse of `args`, which must succeed.
command_line parsed(const std::vector<std::string>& args) {
  auto r = parse_command_line(args);
  INFO((r ? "" : r.error().text));
  REQUIRE(r.has_value());
  return *r;
}

/// The one line (ending in a newline) that bad `args` give; checks exit code 2.
std::string refusal(const std::vector<std::string>& args) {
  auto r = parse_command_line(args);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == 2);
  const auto& text = r.error().text;
  CHECK(text.starts_with("atriumd"));
  CHECK(text.ends_with("\n"));
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  return text;
}

std::string write_file(const temp_dir& dir, const std::string& name, const std::string& text) {
  const auto path = (dir.path() / name).string();
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("options: environment names", "[app][options]") {
  CHECK(atrium::app::env_name("--data-dir") == "ATRIUM_DATA_DIR");
  CHECK(atrium::app::env_name("--push-write-stall-ms") == "ATRIUM_PUSH_WRITE_STALL_MS");
  CHECK(atrium::app::env_name("listen") == "ATRIUM_LISTEN");
}

TEST_CASE("options: subcommand selection, serve being the default", "[app][options]") {
  const auto none = parsed({});
  CHECK(none.command == "serve");
  CHECK(none.serve.data_dir == "data");
  CHECK(none.serve.host == "127.0.0.1");
  CHECK(none.serve.port == 8080);
  CHECK(none.serve.log_level == "info");
  CHECK(none.serve.log_format == "text");
  CHECK(none.serve.snapshot_every == 100);
  CHECK_FALSE(none.serve.kafka_embedded);
  // `atriumd routes` (issue 21): the route table as JSON, no data dir.
  CHECK(parsed({"routes"}).command == "routes");

  const auto implicit = parsed({"--data-dir", "d", "--listen", "[::1]:0"});
  CHECK(implicit.command == "serve");
  CHECK(implicit.serve.data_dir == "d");
  CHECK(implicit.serve.host == "::1");
  CHECK(implicit.serve.port == 0);
  const auto explicit_serve = parsed({"serve", "--data-dir", "d", "--listen", "0.0.0.0:9000"});
  CHECK(explicit_serve.command == "serve");
  CHECK(explicit_serve.serve.host == "0.0.0.0");
  CHECK(explicit_serve.serve.port == 9000);

  const auto verify = parsed({"verify", "--data-dir", "v"});
  CHECK(verify.command == "verify");
  CHECK(verify.offline.data_dir == "v");
  const auto exp = parsed({"export", "--data-dir", "e", "--after", "3", "--until", "7"});
  CHECK(exp.command == "export");
  CHECK(exp.offline.after == 3);
  CHECK(exp.offline.until == 7);
  const auto whole = parsed({"export"});
  CHECK(whole.offline.after == 0);
  CHECK(whole.offline.until == std::numeric_limits<std::uint64_t>::max());
  const auto inspect = parsed({"inspect", "project-1", "--data-dir", "i"});
  CHECK(inspect.command == "inspect");
  CHECK(inspect.offline.stream == "project-1");
  CHECK(inspect.offline.data_dir == "i");
  const auto replay = parsed({"replay", "--projection", "users", "--data-dir", "r"});
  CHECK(replay.command == "replay");
  CHECK(replay.offline.projection == "users");
}

TEST_CASE("options: --version and --help", "[app][options]") {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--version"}, {"serve", "--version"}}) {
    auto r = parse_command_line(args);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == 0);
    CHECK(r.error().text == "atriumd " + std::string(atrium::app::version()) + "\n");
  }
  CHECK(atrium::app::version() == "0.1.0");

  auto top = parse_command_line({"--help"});
  REQUIRE_FALSE(top.has_value());
  CHECK(top.error().code == 0);
  for (const auto* word : {"serve", "verify", "export", "inspect", "replay"}) {
    CHECK(top.error().text.find(word) != std::string::npos);
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{"serve", "-h"}, {"--data-dir", "x", "--help"}}) {
    auto serve = parse_command_line(args);
    REQUIRE_FALSE(serve.has_value());
    CHECK(serve.error().code == 0);
    CHECK(serve.error().text.find("--connection-allow") != std::string::npos);
    CHECK(serve.error().text.find("ATRIUM_DATA_DIR") != std::string::npos);
  }
  auto replay = parse_command_line({"replay", "--help"});
  REQUIRE_FALSE(replay.has_value());
  CHECK(replay.error().text.find("--projection") != std::string::npos);
}

TEST_CASE("options: command line over environment over config file over default", "[app][options]") {
  temp_dir dir;
  const auto config = write_file(dir, "atriumd.toml",
                                 "# atriumd options\n"
                                 "data-dir = \"/from/file\"\n"
                                 "listen = \"10.0.0.1:1000\"\n"
                                 "snapshot-every = 7\n"
                                 "log-level = \"debug\"\n"
                                 "kafka-topic = \"file.topic\"\n"
                                 "connection-allow = [\"10.0.0.0/8\", \"db.example.com\"]\n");
  env_guard env{{"ATRIUM_LISTEN", "10.0.0.2:2000"}, {"ATRIUM_SNAPSHOT_EVERY", "8"}, {"ATRIUM_LOG_LEVEL", "warn"}};
  const auto o = parsed({"--config", config, "--snapshot-every", "9"}).serve;
  CHECK(o.config_file == config);
  CHECK(o.snapshot_every == 9);  // flag
  CHECK(o.host == "10.0.0.2");   // environment over file
  CHECK(o.port == 2000);
  CHECK(o.log_level == "warn");          // environment over file
  CHECK(o.data_dir == "/from/file");     // file over default
  CHECK(o.kafka_topic == "file.topic");  // file over default
  CHECK(o.max_live_entities == 100000);  // default
  CHECK(o.connection_allow == std::vector<std::string>{"10.0.0.0/8", "db.example.com"});

  SECTION("the config file itself may come from ATRIUM_CONFIG; an empty variable is unset") {
    env_guard more{{"ATRIUM_CONFIG", config}, {"ATRIUM_LISTEN", ""}};
    const auto from_env = parsed({}).serve;
    CHECK(from_env.data_dir == "/from/file");
    CHECK(from_env.host == "10.0.0.1");
    CHECK(from_env.snapshot_every == 8);
  }
  SECTION("a repeatable option on the command line replaces the file's list") {
    const auto flag = parsed({"--config", config, "--connection-allow", "192.168.0.0/16"}).serve;
    CHECK(flag.connection_allow == std::vector<std::string>{"192.168.0.0/16"});
  }
}

TEST_CASE("options: switches and lists from each source, and the documented clamps", "[app][options]") {
  temp_dir dir;
  const auto config = write_file(dir, "c.toml",
                                 "[serve]\n"
                                 "kafka = \"embedded\"\n"
                                 "kafka_transactions = true\n"
                                 "kafka-option = [\"acks=all\", \"linger.ms=5\"]\n");
  const auto file = parsed({"--config", config}).serve;
  CHECK(file.kafka_embedded);
  CHECK(file.kafka_transactions);
  CHECK(file.kafka_settings == std::vector<std::pair<std::string, std::string>>{{"acks", "all"}, {"linger.ms", "5"}});
  {
    env_guard env{{"ATRIUM_KAFKA_TRANSACTIONS", "false"}};
    CHECK_FALSE(parsed({"--config", config}).serve.kafka_transactions);
  }
  {
    env_guard env{{"ATRIUM_KAFKA", "embedded"}, {"ATRIUM_KAFKA_TRANSACTIONAL_ID", "tx-1"}};
    const auto o = parsed({}).serve;
    CHECK(o.kafka_embedded);
    CHECK(o.kafka_transactions);
    CHECK(o.kafka_transactional_id == "tx-1");
  }
  const auto last = parsed(
      {"--data-dir", "a", "--data-dir", "b", "--connection-deny", "10.0.0.0/8", "--connection-deny", "*.example"});
  CHECK(last.serve.data_dir == "b");
  CHECK(last.serve.connection_deny == std::vector<std::string>{"10.0.0.0/8", "*.example"});

  const auto clamped = parsed({"--passivate-after", "0", "--max-live-entities", "0", "--push-queue-messages", "0",
                               "--push-queue-bytes", "10", "--push-write-stall-ms", "1", "--snapshot-every", "0"})
                           .serve;
  CHECK(clamped.passivate_after_s == 1);
  CHECK(clamped.max_live_entities == 1);
  CHECK(clamped.push_queue_messages == 1);
  CHECK(clamped.push_queue_bytes == 1024);
  CHECK(clamped.push_write_stall_ms == 100);
  CHECK(clamped.snapshot_every == 0);

  // ATRIUM_ADMIN_PASSWORD and ATRIUM_MASTER_KEY_FILE keep their meaning.
  env_guard env{{"ATRIUM_ADMIN_PASSWORD", "secret"}, {"ATRIUM_MASTER_KEY_FILE", "/keys/master"}};
  CHECK(parsed({}).serve.master_key_file == "/keys/master");
}

TEST_CASE("options: bad input is one line and exit code 2", "[app][options]") {
  CHECK(refusal({"--bogus"}).find("--bogus") != std::string::npos);
  CHECK(refusal({"serve", "extra"}).find("extra") != std::string::npos);
  CHECK(refusal({"--data-dir"}).find("--data-dir") != std::string::npos);
  CHECK(refusal({"--snapshot-every", "abc"}).find("non-negative number") != std::string::npos);
  CHECK(refusal({"--snapshot-every", "-1"}).find("--snapshot-every") != std::string::npos);
  CHECK(refusal({"--push-queue-bytes", "99999999999999999999999"}).find("--push-queue-bytes") != std::string::npos);
  CHECK(refusal({"--passivate-after", "12x"}).find("12x") != std::string::npos);
  CHECK(refusal({"--listen", "8080"}).find("HOST:PORT") != std::string::npos);
  CHECK(refusal({"--listen", "localhost:65536"}).find("port") != std::string::npos);
  CHECK(refusal({"--listen", "localhost:http"}).find("port") != std::string::npos);
  CHECK(refusal({"--listen", ":8080"}).find("host") != std::string::npos);
  CHECK(refusal({"--log-level", "loud"}).find("--log-level") != std::string::npos);
  CHECK(refusal({"--log-format", "xml"}).find("--log-format") != std::string::npos);
  CHECK(refusal({"--kafka", "cluster"}).find("embedded") != std::string::npos);
  CHECK(refusal({"--kafka-topic", ""}).find("non-empty") != std::string::npos);
  CHECK(refusal({"--kafka-option", "novalue"}).find("KEY=VALUE") != std::string::npos);
  CHECK(refusal({"--kafka-content-mode", "xml"}).find("binary or structured") != std::string::npos);
  CHECK(refusal({"--kafka-transactions"}).find("needs --kafka-brokers") != std::string::npos);
  CHECK(refusal({"--kafka", "embedded", "--kafka-brokers", "h:1"}).find("exclude") != std::string::npos);
  CHECK(refusal({"--connection-deny", "10.0.0.0/33"}).find("10.0.0.0/33") != std::string::npos);
  CHECK(refusal({"--tls-cert", "c.pem"}).find("--tls-cert and --tls-key go together") != std::string::npos);
  CHECK(refusal({"--tls-key", "k.pem"}).find("--tls-cert and --tls-key go together") != std::string::npos);
  CHECK(refusal({"--tls-min-version", "1.1"}).find("1.2 or 1.3") != std::string::npos);

  CHECK(refusal({"export", "--after", "-1"}).starts_with("atriumd export: "));
  CHECK(refusal({"export", "--projection", "users"}).find("--projection") != std::string::npos);
  CHECK(refusal({"inspect", "--data-dir", "d"}).starts_with("atriumd inspect: "));
  CHECK(refusal({"replay", "--data-dir", "d"}).find("--projection") != std::string::npos);

  SECTION("from the environment") {
    env_guard env{{"ATRIUM_MAX_LIVE_ENTITIES", "many"}};
    CHECK(refusal({}).find("many") != std::string::npos);
  }
  SECTION("a bad serve setting in the environment does not stop an offline subcommand") {
    env_guard env{{"ATRIUM_SNAPSHOT_EVERY", "often"}, {"ATRIUM_DATA_DIR", "from-env"}};
    CHECK(refusal({}).find("often") != std::string::npos);
    const auto verify = parsed({"verify"});
    CHECK(verify.command == "verify");
    CHECK(verify.offline.data_dir == "from-env");
    CHECK(parsed({"export", "--data-dir", "flag"}).offline.data_dir == "flag");
  }
  SECTION("from the config file") {
    temp_dir dir;
    CHECK(refusal({"--config", (dir.path() / "missing.toml").string()}).find("missing.toml") != std::string::npos);
    const auto unknown = write_file(dir, "u.toml", "data-dir = \"d\"\nlisen = \"h:1\"\n");
    CHECK(refusal({"--config", unknown}).find("lisen") != std::string::npos);
    const auto bad = write_file(dir, "b.toml", "snapshot-every = \"often\"\n");
    CHECK(refusal({"--config", bad}).find("often") != std::string::npos);
    const auto nested = write_file(dir, "n.toml", "config = \"other.toml\"\n");
    CHECK(refusal({"--config", nested}).find("config") != std::string::npos);
  }
}

TEST_CASE("options: job options, their defaults and their sources", "[app][options]") {
  const auto d = parsed({}).serve;
  CHECK(d.job_slots == std::max(1U, std::thread::hardware_concurrency()));
  CHECK(d.sqlite_root.empty());  // DATA_DIR/files
  CHECK(d.job_max_result_rows == 1000000);
  CHECK(d.job_max_result_bytes == 1073741824);
  CHECK(d.job_result_ttl_s == 7 * 86400);
  CHECK(d.job_sandbox == "auto");
  CHECK(d.job_work_dir.empty());  // DATA_DIR/work

  temp_dir dir;
  const auto config = write_file(dir, "jobs.toml",
                                 "job-slots = 3\n"
                                 "job-result-ttl = \"2h\"\n"
                                 "job-sandbox = \"never\"\n"
                                 "sqlite-root = \"/from/file\"\n");
  env_guard env{{"ATRIUM_JOB_SLOTS", "5"}, {"ATRIUM_JOB_MAX_RESULT_ROWS", "10"}, {"ATRIUM_JOB_RESULT_TTL", "90m"}};
  const auto o =
      parsed({"--config", config, "--job-slots", "0", "--job-max-result-bytes", "4096", "--job-work-dir", "/w"}).serve;
  CHECK(o.job_slots == 0);                                   // flag
  CHECK(o.job_max_result_rows == 10);                        // environment
  CHECK(o.job_result_ttl_s == 90 * 60);                      // environment over file
  CHECK(o.job_sandbox == "never");                           // file
  CHECK(o.sqlite_root == "/from/file");                      // file
  CHECK(o.job_max_result_bytes == 4096);                     // flag
  CHECK(o.job_work_dir == "/w");                             // flag
  CHECK(parsed({"--config", config}).serve.job_slots == 5);  // environment over file

  CHECK(atrium::app::parse_duration_s("7d") == 7 * 86400);
  CHECK(atrium::app::parse_duration_s("30s") == 30);
  CHECK(atrium::app::parse_duration_s("12h") == 12 * 3600);
  CHECK(atrium::app::parse_duration_s("45") == 45);
  CHECK(atrium::app::parse_duration_s("0") == 0);
  CHECK_FALSE(atrium::app::parse_duration_s("d"));
  CHECK_FALSE(atrium::app::parse_duration_s("1w"));
  CHECK_FALSE(atrium::app::parse_duration_s("-1s"));
  CHECK_FALSE(atrium::app::parse_duration_s("99999999999999999999d"));

  CHECK(refusal({"--job-result-ttl", "soon"}).find("duration") != std::string::npos);
  CHECK(refusal({"--job-sandbox", "maybe"}).find("auto, always or never") != std::string::npos);
  CHECK(refusal({"--job-slots", "-1"}).find("--job-slots") != std::string::npos);
}

TEST_CASE("options: --job-lease and the worker subcommand", "[app][options][workers]") {
  CHECK(parsed({}).serve.job_lease_s == 30);
  CHECK(parsed({"--job-lease", "2s"}).serve.job_lease_s == 2);
  CHECK(parsed({"--job-lease", "0"}).serve.job_lease_s == 1);  // clamped to 1 s
  CHECK(refusal({"--job-lease", "soon"}).find("duration") != std::string::npos);

  const auto w = parsed({"worker", "--server", "http://127.0.0.1:8080", "--token-file", "/t", "--slots", "4", "--name",
                         "gpu-1", "--work-dir", "/w", "--job-sandbox", "never"});
  CHECK(w.command == "worker");
  CHECK(w.worker.server == "http://127.0.0.1:8080");
  CHECK(w.worker.token_file == "/t");
  CHECK(w.worker.slots == 4);
  CHECK(w.worker.name == "gpu-1");
  CHECK(w.worker.work_dir == "/w");
  CHECK(w.worker.job_sandbox == "never");
  CHECK(parsed({"worker", "--server", "http://h:1", "--token-file", "/t", "--slots", "0"}).worker.slots == 1);
  CHECK(refusal({"worker", "--token-file", "/t"}).find("--server") != std::string::npos);
  CHECK(refusal({"worker", "--server", "ftp://h:1", "--token-file", "/t"}).find("http(s)://") != std::string::npos);
  const auto tls = parsed({"worker", "--server", "https://h:1", "--token-file", "/t", "--ca-file", "/ca.pem"}).worker;
  CHECK(tls.server == "https://h:1");
  CHECK(tls.ca_file == "/ca.pem");
  CHECK(refusal({"worker", "--server", "http://h:1"}).find("--token-file") != std::string::npos);
  CHECK(refusal({"worker", "--server", "http://h:1", "--token-file", "/t", "--connection-deny", "not a net/99"})
            .find("connection") != std::string::npos);
}

TEST_CASE("options: the Kafka relay's CloudEvents source", "[app][options][kafka]") {
  CHECK(parsed({}).serve.kafka_source.empty());  // /atrium/<instance id>, made at start
  CHECK(parsed({"--kafka-source", "/acme/prod"}).serve.kafka_source == "/acme/prod");
  CHECK(refusal({"--kafka-source", ""}).find("--kafka-source") != std::string::npos);
}

TEST_CASE("options: TLS", "[app][options][tls]") {
  const auto defaults = parsed({}).serve;
  CHECK(defaults.tls_cert.empty());
  CHECK(defaults.tls_key.empty());
  CHECK(defaults.tls_min_version == "1.2");
  const auto o = parsed({"--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--tls-min-version", "1.3"}).serve;
  CHECK(o.tls_cert == "/c.pem");
  CHECK(o.tls_key == "/k.pem");
  CHECK(o.tls_min_version == "1.3");
  CHECK(o.cookie_secure);  // a cookie set over TLS is Secure without --cookie-secure
  temp_dir dir;
  const auto config = write_file(dir, "c.toml", "tls-cert = \"/f/c.pem\"\ntls-key = \"/f/k.pem\"\n");
  const auto file = parsed({"--config", config}).serve;
  CHECK(file.tls_cert == "/f/c.pem");
  CHECK(file.tls_key == "/f/k.pem");
  env_guard env{{"ATRIUM_TLS_CERT", "/e/c.pem"}, {"ATRIUM_TLS_KEY", "/e/k.pem"}};
  CHECK(parsed({}).serve.tls_cert == "/e/c.pem");
}

TEST_CASE("options: the web console and browser sessions", "[app][options][browser]") {
  const auto defaults = parsed({}).serve;
  CHECK(defaults.web_root.empty());
  CHECK(defaults.allowed_origins.empty());
  CHECK_FALSE(defaults.cookie_secure);
  const auto o = parsed({"--web-root", "/srv/web", "--allowed-origin", "HTTPS://Console.Example:5173/",
                         "--allowed-origin", "http://localhost:5173", "--cookie-secure"})
                     .serve;
  CHECK(o.web_root == "/srv/web");
  CHECK(o.allowed_origins == std::vector<std::string>{"https://console.example:5173", "http://localhost:5173"});
  CHECK(o.cookie_secure);
  temp_dir dir;
  const auto config = write_file(dir, "c.toml",
                                 "web-root = \"/from/file\"\n"
                                 "allowed-origin = [\"https://a.example\"]\n"
                                 "cookie-secure = true\n");
  const auto file = parsed({"--config", config}).serve;
  CHECK(file.web_root == "/from/file");
  CHECK(file.allowed_origins == std::vector<std::string>{"https://a.example"});
  CHECK(file.cookie_secure);
  CHECK(refusal({"--allowed-origin", "console.example"}).find("--allowed-origin") != std::string::npos);
  CHECK(refusal({"--allowed-origin", "https://a.example/path"}).find("origin") != std::string::npos);
  CHECK(refusal({"--web-root", ""}).find("non-empty") != std::string::npos);
}
