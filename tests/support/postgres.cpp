#include "tests/support/postgres.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <iterator>
#include <stdexcept>

extern char** environ;

namespace atrium::test {
namespace {

namespace fs = std::filesystem;

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

std::string tail(const fs::path& p) {
  std::ifstream f(p);
  std::string s{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  return s.size() <= 2000 ? s : s.substr(s.size() - 2000);
}

/// Servers alive in this process: the subreaper mark is cleared with the last one.
std::atomic<int> live_servers{0};

}  // namespace

std::optional<fs::path> find_postgres_bin_dir() {
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

unsigned short free_loopback_port() {
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

postgres_server::postgres_server(postgres_options options) : options_(std::move(options)) {
  const auto bin = options_.bin_dir ? options_.bin_dir : find_postgres_bin_dir();
  if (!bin) throw std::runtime_error("PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin)");
  bin_ = *bin;
  const passwd* pw = nullptr;
  if (::geteuid() == 0) {
    // initdb refuses to run as root: the cluster belongs to the `postgres` user.
    pw = ::getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root and there is no postgres user");
    runuser_ = find_runuser();
    if (!runuser_) throw std::runtime_error("running as root and runuser is missing");
    if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown temp dir");
  }
  const auto data = dir_.path() / "data";
  const auto log = dir_.path() / "commands.log";
  std::vector<std::string> initdb{
      (bin_ / "initdb").string(), "-D", data.string(), "-U", options_.user, "-E", "UTF8", "--locale=C", "--no-sync"};
  const auto pwfile = dir_.path() / "pwfile";
  if (options_.password.empty()) {
    initdb.insert(initdb.end(), {"--auth=trust"});
  } else {
    {
      std::ofstream f(pwfile);
      f << options_.password << '\n';
      if (!f) throw std::runtime_error("cannot write " + pwfile.string());
    }
    ::chmod(pwfile.c_str(), 0600);
    if (pw != nullptr && ::chown(pwfile.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("chown " + pwfile.string());
    }
    initdb.insert(initdb.end(), {"--auth=scram-sha-256", "--pwfile=" + pwfile.string()});
  }
  const int initdb_rc = run(initdb, runuser_, log);
  std::error_code ec;
  fs::remove(pwfile, ec);
  if (initdb_rc != 0) throw std::runtime_error("initdb failed:\n" + tail(log));

  // pg_ctl daemonizes the postmaster; as a subreaper this process becomes its parent,
  // so stopping it ends with a waitpid on its PID rather than a zombie left to init.
  if (live_servers.fetch_add(1) == 0) ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::string settings = "-c listen_addresses=127.0.0.1 -k " + dir_.path().string() +
                         " -c max_connections=" + std::to_string(options_.max_connections);
  for (const auto& s : options_.settings) settings += " -c " + s;
  // The kernel's free port can be taken before the postmaster binds it: try again.
  for (int attempt = 0; attempt < 3 && pid_ <= 0; ++attempt) {
    port_ = free_loopback_port();
    const int rc = run({(bin_ / "pg_ctl").string(), "-D", data.string(), "-l", (dir_.path() / "server.log").string(),
                        "-w", "-t", "60", "-o", settings + " -p " + std::to_string(port_), "start"},
                       runuser_, log);
    std::ifstream pidfile(data / "postmaster.pid");
    pid_t pid = -1;
    if (pidfile >> pid && pid > 0) pid_ = pid;
    if (rc != 0 && pid_ > 0) stop();
  }
  if (pid_ <= 0) {
    if (live_servers.fetch_sub(1) == 1) ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    throw std::runtime_error("pg_ctl start failed:\n" + tail(dir_.path() / "server.log") + tail(log));
  }
}

postgres_server::~postgres_server() {
  stop();
  if (live_servers.fetch_sub(1) == 1) ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

std::string postgres_server::conninfo() const {
  std::string s = "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=postgres user=" + options_.user;
  if (!options_.password.empty()) {
    s += " password='";
    for (const char c : options_.password) {
      if (c == '\\' || c == '\'') s.push_back('\\');
      s.push_back(c);
    }
    s.push_back('\'');
  }
  return s;
}

void postgres_server::stop() {
  if (pid_ <= 0) return;
  try {
    (void)run(
        {(bin_ / "pg_ctl").string(), "-D", (dir_.path() / "data").string(), "-m", "fast", "-w", "-t", "30", "stop"},
        runuser_, dir_.path() / "commands.log");
  } catch (const std::exception&) {
    // Fall back to the signal pg_ctl would send (SIGINT: fast shutdown).
    ::kill(pid_, SIGINT);
  }
  if (!wait_until([this] { return exited(pid_); }, std::chrono::seconds(30))) {
    ::kill(pid_, SIGKILL);
    (void)wait_until([this] { return exited(pid_); }, std::chrono::seconds(10));
  }
  pid_ = -1;
}

}  // namespace atrium::test
