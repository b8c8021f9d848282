#pragma once
/// Test support: the real atriumd binary on 127.0.0.1:0 over a temp data dir, started
/// and stopped by its PID, with an HTTP client for it. Header-only (Catch2 macros).

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace atrium::test {

/// The admin password every test server is bootstrapped with.
inline constexpr const char* k_admin_password = "e2e-root-passphrase";

/// A password for the test user `name` that the password policy accepts (it must not
/// contain the username): the name's characters joined by dots, then `suffix`
/// (`password_for("alice", "-password")` is `a.l.i.c.e-password`).
inline std::string password_for(const std::string& name, const std::string& suffix = "-pw-123456") {
  std::string out;
  for (char ch : name) {
    if (!out.empty()) out += '.';
    out += ch;
  }
  return out + suffix;
}

/// `atriumd ARGS…` (the build's binary), run to completion: an offline subcommand.
inline process_output run_atriumd(std::vector<std::string> args) {
  args.insert(args.begin(), ATRIUMD_PATH);
  return run_process(args);
}

/// atriumd over `dir/data`, logging to `dir/atriumd.log`.
struct atriumd_server {
  std::filesystem::path data;
  std::filesystem::path log;
  std::vector<std::string> extra_args;
  std::optional<child_process> proc;
  std::string address;  ///< "127.0.0.1:PORT" once started
  std::string binary;   ///< the executable: the build's atriumd unless a test runs a copy

  explicit atriumd_server(const std::filesystem::path& dir, std::vector<std::string> args = {},
                          std::string executable = ATRIUMD_PATH)
      : data(dir / "data"), log(dir / "atriumd.log"), extra_args(std::move(args)), binary(std::move(executable)) {
    start();
  }

  /// Starts the process and waits (up to 30 s) until /readyz answers 200 (projections
  /// caught up) on the address it writes to DATA_DIR/atriumd.addr.
  void start() {
    std::filesystem::remove(data / "atriumd.addr");
    std::vector<std::string> argv{binary, "--data-dir", data.string(), "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    proc.emplace(argv, std::map<std::string, std::string>{{"ATRIUM_ADMIN_PASSWORD", k_admin_password}}, log);
    const bool up = wait_until(
        [&] {
          std::ifstream f(data / "atriumd.addr");
          std::string a;
          if (!(f >> a)) return false;
          try {
            if (http_client(a).get("/readyz").status != 200) return false;
          } catch (const std::exception&) {
            return false;
          }
          address = a;
          return true;
        },
        std::chrono::seconds(30));
    if (!up) FAIL("atriumd did not start; log:\n" << slurp(log));
  }

  /// Sends `signal` and waits; returns the wait status (0: exited cleanly).
  int stop(int signal = SIGTERM) { return proc->stop(signal); }

  static std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }

  [[nodiscard]] http_client client(const std::string& token = "") const {
    http_client c(address);
    c.token(token);
    return c;
  }

  /// Logs in and returns the token.
  [[nodiscard]] std::string login(const std::string& user, const std::string& password) const {
    auto r = client().post("/v1/auth/login", {{"username", user}, {"password", password}});
    REQUIRE(r.status == 200);
    return r.json.at("token").get<std::string>();
  }

  /// A client logged in as the bootstrap admin.
  [[nodiscard]] http_client admin() const { return client(login("admin", k_admin_password)); }
};

}  // namespace atrium::test
