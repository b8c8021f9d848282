// (postgres) The peer baseline, where PostgreSQL is installed: a throwaway cluster
// (initdb in a temp dir, started with pg_ctl on 127.0.0.1 and a free port, fsync and
// synchronous_commit on), an append-only `events` table with a bigserial position and a
// unique (stream, version) constraint, and N connections each appending the same
// payloads as the other paths to its own stream, one transaction per append, with
// version = last + 1 — the way PostgreSQL-based event stores append. The cluster is
// stopped by its postmaster PID and deleted at the end.
//
// Built without libpq (pkg-config finds none), the scenario reports itself skipped.
#include "tests/bench/bench.hpp"

#if ATRIUM_BENCH_HAVE_LIBPQ

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <latch>
#include <optional>
#include <thread>

#include <libpq-fe.h>

#include "tests/support/process.hpp"

extern char** environ;

namespace atrium::bench {
namespace {

namespace fs = std::filesystem;

constexpr const char* k_create_table = R"sql(
DROP TABLE IF EXISTS events;
CREATE TABLE events (
  position       bigserial   PRIMARY KEY,
  stream         text        NOT NULL,
  version        bigint      NOT NULL,
  id             uuid        NOT NULL UNIQUE,
  type           text        NOT NULL,
  schema         int         NOT NULL,
  time           timestamptz NOT NULL DEFAULT now(),
  actor          text        NOT NULL,
  correlation_id text        NOT NULL,
  causation_id   text        NOT NULL,
  data           jsonb       NOT NULL,
  UNIQUE (stream, version)
);)sql";

constexpr const char* k_insert =
    "INSERT INTO events (stream, version, id, type, schema, actor, correlation_id, causation_id, data) "
    "VALUES ($1, $2, $3::uuid, $4, $5, $6, $7, $8, $9::jsonb)";

/// The newest PostgreSQL server binaries under /usr/lib/postgresql/<version>/bin.
std::optional<fs::path> find_bin_dir() {
  std::optional<fs::path> best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "pg_ctl") || !fs::exists(bin / "postgres")) continue;
    int version = 0;
    try {
      version = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
    }
    if (version > best_version) {
      best_version = version;
      best = bin;
    }
  }
  return best;
}

std::optional<fs::path> find_runuser() {
  for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"}) {
    if (fs::exists(p)) return fs::path(p);
  }
  return std::nullopt;
}

/// Runs `argv` (prefixed with `<runuser> -u postgres --` when `runuser` is set), output
/// appended to `log`, and waits for it. Returns its exit code (-1 if it did not exit).
int run(std::vector<std::string> argv, const std::optional<fs::path>& runuser, const fs::path& log) {
  if (runuser) argv.insert(argv.begin(), {runuser->string(), "-u", "postgres", "--"});
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + " failed: " + std::to_string(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A free TCP port on 127.0.0.1, as the kernel picks it for port 0.
unsigned short free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// True while process `pid` exists and is not a zombie.
bool alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) return false;
  return state != "Z";
}

/// True once process `pid` has exited: reaped here if it is our child (the postmaster is,
/// through PR_SET_CHILD_SUBREAPER), else gone or a zombie.
bool exited(pid_t pid) {
  const pid_t r = ::waitpid(pid, nullptr, WNOHANG);
  if (r == pid) return true;
  if (r < 0 && errno == ECHILD) return !alive(pid);
  return false;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::string s{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  return s.size() <= 2000 ? s : s.substr(s.size() - 2000);
}

/// A throwaway cluster in a temp dir; its postmaster is stopped by PID on destruction.
class cluster {
 public:
  cluster(const fs::path& bin, std::size_t max_connections) {
    // pg_ctl daemonizes the postmaster; as a subreaper this process becomes its parent,
    // so stopping it ends with a waitpid on its PID rather than a zombie left to init.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::optional<fs::path> runuser;
    if (::geteuid() == 0) {
      // initdb refuses to run as root: the cluster belongs to the `postgres` user.
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("running as root and there is no postgres user");
      runuser = find_runuser();
      if (!runuser) throw std::runtime_error("running as root and runuser is missing");
      if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown temp dir");
    }
    const auto data = dir_.path() / "data";
    const auto log = dir_.path() / "commands.log";
    if (run({(bin / "initdb").string(), "-D", data.string(), "-U", "bench", "-A", "trust", "-E", "UTF8", "--locale=C",
             "--no-sync"},
            runuser, log) != 0) {
      throw std::runtime_error("initdb failed:\n" + slurp(log));
    }
    // The kernel's free port can be taken before the postmaster binds it: try again.
    for (int attempt = 0; attempt < 3 && pid_ <= 0; ++attempt) {
      port_ = free_port();
      const std::string settings =
          "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " + dir_.path().string() +
          " -c fsync=on -c synchronous_commit=on -c max_connections=" + std::to_string(max_connections);
      const int rc = run({(bin / "pg_ctl").string(), "-D", data.string(), "-l", (dir_.path() / "server.log").string(),
                          "-w", "-t", "60", "-o", settings, "start"},
                         runuser, log);
      std::ifstream pidfile(data / "postmaster.pid");
      pid_t pid = -1;
      if (pidfile >> pid && pid > 0) pid_ = pid;
      if (rc != 0 && pid_ > 0) stop();
    }
    if (pid_ <= 0) throw std::runtime_error("pg_ctl start failed:\n" + slurp(dir_.path() / "server.log"));
  }

  ~cluster() {
    stop();
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  }
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  [[nodiscard]] std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=postgres user=bench";
  }

  /// Fast shutdown (SIGINT to the postmaster), SIGKILL after 30 s.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGINT);
    if (!test::wait_until([this] { return exited(pid_); }, std::chrono::seconds(30))) {
      ::kill(pid_, SIGKILL);
      (void)test::wait_until([this] { return exited(pid_); }, std::chrono::seconds(10));
    }
    pid_ = -1;
  }

 private:
  test::temp_dir dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
};

struct pg_conn {
  explicit pg_conn(const std::string& conninfo) : c(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c) != CONNECTION_OK) {
      std::string err = PQerrorMessage(c);
      PQfinish(c);
      throw std::runtime_error("connect: " + err);
    }
    // Notices (e.g. "table does not exist, skipping") are not figures or progress.
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
  }
  ~pg_conn() { PQfinish(c); }
  pg_conn(const pg_conn&) = delete;
  pg_conn& operator=(const pg_conn&) = delete;

  void exec(const char* sql) const {
    PGresult* r = PQexec(c, sql);
    const auto st = PQresultStatus(r);
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error("exec: " + err);
  }

  void prepare() const {
    PGresult* r = PQprepare(c, "append", k_insert, 9, nullptr);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) throw std::runtime_error("prepare: " + err);
  }

  /// One INSERT in its own (implicit) transaction; "" on success, else the error.
  std::string append(const std::string& stream, std::uint64_t version, const proposed_event& e) const {
    const std::string v = std::to_string(version);
    const std::string id = new_uuid_v7();
    const std::string schema = std::to_string(e.schema);
    const std::string data = e.data.dump();
    const char* values[9] = {stream.c_str(),
                             v.c_str(),
                             id.c_str(),
                             e.type.c_str(),
                             schema.c_str(),
                             e.actor.c_str(),
                             e.correlation_id.c_str(),
                             e.causation_id.c_str(),
                             data.c_str()};
    PGresult* r = PQexecPrepared(c, "append", 9, values, nullptr, nullptr, 0);
    std::string err = PQresultStatus(r) == PGRES_COMMAND_OK ? "" : PQresultErrorMessage(r);
    PQclear(r);
    return err;
  }

  PGconn* c;
};

}  // namespace

figures run_postgres(const options& o, const figures& raw) {
  figures out;
  const auto bin = o.pg_bin.empty() ? find_bin_dir() : std::optional<fs::path>(o.pg_bin);
  if (!bin) {
    print_skipped("postgres", "postgres",
                  "PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin)");
    return out;
  }
  const auto counts = baseline_writers(o);
  const std::size_t most = counts.empty() ? 1 : *std::max_element(counts.begin(), counts.end());
  progress("postgres: initdb and start with " + bin->string());
  std::optional<cluster> pg;
  try {
    pg.emplace(*bin, most + 10);
  } catch (const std::exception& ex) {
    print_skipped("postgres", "postgres", std::string("cannot start a cluster: ") + ex.what());
    return out;
  }

  for (const std::size_t n : counts) {
    pg_conn(pg->conninfo()).exec(k_create_table);
    progress("postgres: " + std::to_string(n) + " connections");
    measurement m{"postgres", "postgres", n};
    std::vector<std::vector<std::int64_t>> samples(n);
    std::vector<std::uint64_t> errors(n, 0);
    std::optional<run_control> ctl;
    std::latch ready(static_cast<std::ptrdiff_t>(n));
    std::latch go(1);
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t w = 0; w < n; ++w) {
      threads.emplace_back([&, w] {
        std::optional<pg_conn> conn;
        const auto stream = writer_stream(w);
        std::uint64_t version = 1;
        // Connect and create the stream before the clock starts.
        try {
          conn.emplace(pg->conninfo());
          conn->prepare();
          if (auto err = conn->append(stream, version, make_renamed(0)); !err.empty()) throw std::runtime_error(err);
        } catch (const std::exception& ex) {
          ++errors[w];
          progress("postgres: writer " + std::to_string(w) + ": " + ex.what());
          conn.reset();
        }
        ready.count_down();
        go.wait();
        if (!conn) return;
        auto& lat = samples[w];
        while (ctl->next()) {
          const auto e = make_renamed(w * 1'000'000'000ULL + version + 1);
          const auto t0 = steady::now();
          auto err = conn->append(stream, version + 1, e);
          const auto t1 = steady::now();
          if (!err.empty()) {
            ++errors[w];
            progress("postgres: writer " + std::to_string(w) + ": " + err);
            return;
          }
          lat.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
          ++version;
        }
      });
    }
    ready.wait();
    ctl.emplace(o.seconds, o.events);
    go.count_down();
    for (auto& t : threads) t.join();
    m.seconds = std::chrono::duration<double>(steady::now() - ctl->start()).count();
    for (std::size_t w = 0; w < n; ++w) {
      m.events += samples[w].size();
      m.errors += errors[w];
      m.latencies_ns.insert(m.latencies_ns.end(), samples[w].begin(), samples[w].end());
    }
    m.commands = m.events;
    m.extra["connections"] = static_cast<double>(n);
    out[n] = print_measurement(m, raw_at(raw, n));
  }
  progress("postgres: stopping the cluster");
  pg.reset();
  return out;
}

}  // namespace atrium::bench

#else  // no libpq

namespace atrium::bench {

figures run_postgres(const options&, const figures&) {
  print_skipped("postgres", "postgres", "atrium-bench was built without libpq (install libpq-dev and rebuild)");
  return {};
}

}  // namespace atrium::bench

#endif
