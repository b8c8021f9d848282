// Tests of the SQL connection tester (adapters/connectors) against real SQLite files in
// a temporary directory and a real PostgreSQL server started for the test.

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/connectors/sql_connector.hpp"
#include "tests/support/postgres.hpp"
#include "tests/support/process.hpp"

namespace {

namespace fs = std::filesystem;
using atrium::connectors_adapter::sql_connection_tester;
using namespace std::chrono_literals;

constexpr const char* k_password = "s3cret-Pa55'word\\x";

void create_sqlite_db(const fs::path& p) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'a');",
                              nullptr, nullptr, &err);
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

/// A tester whose policy allows 127.0.0.1 (the test servers listen there; the built-in
/// policy denies loopback).
sql_connection_tester loopback_tester() {
  auto policy = atrium::connectors_adapter::network_policy::make({"127.0.0.1/32"}, {});
  REQUIRE(policy.has_value());
  return sql_connection_tester(std::move(*policy));
}

nlohmann::json pg_params(const atrium::test::postgres_server& pg) {
  return {{"host", pg.host()}, {"port", pg.port()}, {"database", "postgres"}, {"sslmode", "disable"}};
}

}  // namespace

TEST_CASE("connectors: sqlite on a real database file", "[connectors][sqlite]") {
  atrium::test::temp_dir dir;
  const auto db = dir.path() / "app.db";
  create_sqlite_db(db);
  const sql_connection_tester tester;
  const auto probe = tester.test("sqlite", {{"path", db.string()}}, nlohmann::json::object(), 2s);
  INFO(probe.error);
  CHECK(probe.ok);
  CHECK(probe.error.empty());
  CHECK(probe.server_version == sqlite3_libversion());
}

TEST_CASE("connectors: sqlite on a missing file fails and does not create it", "[connectors][sqlite]") {
  atrium::test::temp_dir dir;
  const sql_connection_tester tester;
  for (const auto& path :
       {(dir.path() / "missing.db").string(), std::string("file:") + (dir.path() / "uri.db").string() + "?mode=rwc"}) {
    const auto probe = tester.test("sqlite", {{"path", path}}, nlohmann::json::object(), 2s);
    INFO(path << ": " << probe.error);
    CHECK_FALSE(probe.ok);
    CHECK_FALSE(probe.error.empty());
    CHECK(probe.error_class == "not_a_database");
  }
  CHECK_FALSE(fs::exists(dir.path() / "missing.db"));
  CHECK_FALSE(fs::exists(dir.path() / "uri.db"));
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("connectors: sqlite on a file that is not a database fails", "[connectors][sqlite]") {
  atrium::test::temp_dir dir;
  const auto file = dir.path() / "notes.txt";
  {
    std::ofstream f(file);
    f << "this is not an SQLite database, just some text that is long enough to fill a header page.\n";
  }
  const sql_connection_tester tester;
  const auto probe = tester.test("sqlite", {{"path", file.string()}}, nlohmann::json::object(), 2s);
  INFO(probe.error);
  CHECK_FALSE(probe.ok);
  CHECK(probe.error.find("not a database") != std::string::npos);
  // The same class as a missing file: a member cannot tell which files exist.
  CHECK(probe.error_class == "not_a_database");
}

TEST_CASE("connectors: malformed input and unknown drivers fail without throwing", "[connectors]") {
  const sql_connection_tester tester;
  CHECK_FALSE(tester.test("oracle", nlohmann::json::object(), nlohmann::json::object(), 1s).ok);
  CHECK_FALSE(tester.test("sqlite", nlohmann::json::array({1, 2}), nullptr, 1s).ok);
  CHECK_FALSE(tester.test("sqlite", {{"path", 42}}, nullptr, 1s).ok);
  CHECK_FALSE(tester.test("sqlite", {{"path", ""}}, nullptr, 1s).ok);
  CHECK_FALSE(tester.test("postgres", "host", nullptr, 1s).ok);
  CHECK_FALSE(
      tester.test("postgres", {{"host", "127.0.0.1"}, {"port", 70000}, {"database", "x"}}, {{"user", "u"}}, 1s).ok);
  CHECK_FALSE(
      tester.test("postgres", {{"host", "/var/run/postgresql"}, {"port", 5432}, {"database", "x"}}, {{"user", "u"}}, 1s)
          .ok);
  CHECK_FALSE(tester
                  .test("postgres", {{"host", "127.0.0.1"}, {"port", 5432}, {"database", "x"}},
                        {{"user", "u"}, {"password", 12}}, 1s)
                  .ok);
  const auto no_user = tester.test("postgres", {{"host", "127.0.0.1"}, {"port", 5432}, {"database", "x"}}, {}, 1s);
  CHECK_FALSE(no_user.ok);
  CHECK(no_user.error.find("user") != std::string::npos);
}

TEST_CASE("connectors: postgres against a real server", "[connectors][postgres]") {
  std::optional<atrium::test::postgres_server> pg;
  try {
    pg.emplace(atrium::test::postgres_options{.password = k_password});
  } catch (const std::exception& ex) {
    FAIL("cannot start PostgreSQL (deploy/install-deps.sh installs it): " << ex.what());
  }
  // One server for all the checks below (a start costs about a second).
  const auto tester = loopback_tester();

  {  // the right password connects and reports the server version
    const auto probe = tester.test("postgres", pg_params(*pg), {{"user", "atrium"}, {"password", k_password}}, 5s);
    INFO(probe.error);
    REQUIRE(probe.ok);
    CHECK(probe.server_version.find("PostgreSQL") != std::string::npos);
    CHECK(probe.error.empty());
  }
  {  // a wrong password fails with an authentication error that does not quote it
    const std::string wrong = "wrong-Pa55word-42";
    const auto probe = tester.test("postgres", pg_params(*pg), {{"user", "atrium"}, {"password", wrong}}, 5s);
    INFO(probe.error);
    CHECK_FALSE(probe.ok);
    CHECK(probe.error_class == "auth_failed");
    CHECK(probe.error.find("authentication") != std::string::npos);
    CHECK(probe.error.find(wrong) == std::string::npos);
  }
  {  // a password that the server's message quotes is redacted
    // The server names the user in its message; here the user is the password.
    const std::string secret = "user-is-the-password";
    const auto probe = tester.test("postgres", pg_params(*pg), {{"user", secret}, {"password", secret}}, 5s);
    INFO(probe.error);
    CHECK_FALSE(probe.ok);
    CHECK(probe.error.find(secret) == std::string::npos);
    CHECK(probe.error.find("***") != std::string::npos);
  }
  {  // an unknown database fails
    auto params = pg_params(*pg);
    params["database"] = "no_such_db";
    const auto probe = tester.test("postgres", params, {{"user", "atrium"}, {"password", k_password}}, 5s);
    CHECK_FALSE(probe.ok);
    CHECK(probe.error_class == "auth_failed");
    CHECK(probe.error.find("no_such_db") != std::string::npos);
  }
}

TEST_CASE("connectors: postgres on a closed port fails quickly", "[connectors][postgres]") {
  const auto tester = loopback_tester();
  const auto port = atrium::test::free_loopback_port();  // nothing listens there
  const auto probe =
      tester.test("postgres", {{"host", "127.0.0.1"}, {"port", port}, {"database", "postgres"}, {"sslmode", "disable"}},
                  {{"user", "atrium"}, {"password", "closed-port-password"}}, 5s);
  INFO(probe.error);
  CHECK_FALSE(probe.ok);
  CHECK_FALSE(probe.error.empty());
  CHECK(probe.error_class == "refused");
}

TEST_CASE("connectors: postgres on a server that never answers returns (connect_timeout)", "[connectors][postgres]") {
  // A listening socket that is never accepted: the kernel completes the TCP handshake,
  // libpq sends its startup packet and waits for an answer that never comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);

  const auto tester = loopback_tester();
  const auto start = std::chrono::steady_clock::now();
  const auto probe = tester.test(
      "postgres",
      {{"host", "127.0.0.1"}, {"port", ntohs(addr.sin_port)}, {"database", "postgres"}, {"sslmode", "disable"}},
      {{"user", "atrium"}, {"password", "silent-server-password"}}, 1s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  ::close(fd);
  INFO(probe.error << " after " << took.count() << " ms");
  CHECK_FALSE(probe.ok);
  CHECK(probe.error.find("timeout") != std::string::npos);
  CHECK(probe.error_class == "timeout");
}

TEST_CASE("connectors: postgres on a black-hole address returns (connect_timeout)", "[connectors][postgres]") {
  const sql_connection_tester tester;
  const auto start = std::chrono::steady_clock::now();
  const auto probe = tester.test(
      "postgres", {{"host", "10.255.255.1"}, {"port", 5432}, {"database", "postgres"}, {"sslmode", "disable"}},
      {{"user", "atrium"}, {"password", "black-hole-password"}}, 1s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  // No timing assertion (it depends on the network here: unreachable at once, a dropped
  // SYN until libpq's 2-second minimum connect_timeout, or a sandbox proxy answering
  // for every address); only that it returned.
  INFO(probe.error << " after " << took.count() << " ms");
  CHECK_FALSE(probe.ok);
  CHECK_FALSE(probe.error.empty());
}

TEST_CASE("connectors: the built-in policy keeps a probe off loopback and the metadata address",
          "[connectors][postgres][policy]") {
  const sql_connection_tester tester;  // built-in policy
  for (const char* host : {"127.0.0.1", "localhost", "169.254.169.254", "::1", "0.0.0.0"}) {
    INFO(host);
    const auto probe = tester.test("postgres", {{"host", host}, {"port", 5432}, {"database", "postgres"}},
                                   {{"user", "atrium"}, {"password", "policy-password"}}, 1s);
    CHECK_FALSE(probe.ok);
    CHECK(probe.error_class == "denied_by_policy");
    CHECK(probe.error.find("policy") != std::string::npos);
    auto checked = tester.check_destination("postgres", {{"host", host}, {"port", 5432}, {"database", "postgres"}});
    REQUIRE_FALSE(checked.has_value());
    CHECK(checked.error().code == atrium::errc::forbidden);
    CHECK(checked.error().details.at("class") == "denied_by_policy");
  }
  // SQLite has no network destination; an unresolvable name is checked again at use.
  CHECK(tester.check_destination("sqlite", {{"path", "/tmp/x.db"}}).has_value());
  CHECK(tester.check_destination("postgres", {{"host", "no-such-host.invalid"}, {"database", "d"}}).has_value());
  const auto unresolved = tester.test("postgres", {{"host", "no-such-host.invalid"}, {"port", 5432}, {"database", "d"}},
                                      {{"user", "u"}}, 1s);
  CHECK(unresolved.error_class == "unreachable");
}

TEST_CASE("connectors: the conninfo is pinned to the checked address and closes libpq's fall-backs",
          "[connectors][postgres][policy]") {
  auto policy = atrium::connectors_adapter::network_policy::make({"127.0.0.1/32"}, {});
  REQUIRE(policy.has_value());
  auto info = atrium::connectors_adapter::postgres_conninfo(
      *policy, {{"host", "127.0.0.1"}, {"port", 5432}, {"database", "postgres"}}, {{"user", "u"}}, 2s);
  REQUIRE(info.has_value());
  CHECK(info->conninfo.find("host='127.0.0.1'") != std::string::npos);
  CHECK(info->conninfo.find("hostaddr='127.0.0.1'") != std::string::npos);
  CHECK(info->conninfo.find("passfile='/nonexistent") != std::string::npos);
  CHECK(info->conninfo.find("sslcert='/nonexistent") != std::string::npos);
  CHECK(info->conninfo.find("password=''") != std::string::npos);  // PGPASSWORD is not consulted
  REQUIRE(info->addresses.size() == 1);

  auto denied = atrium::connectors_adapter::postgres_conninfo(
      atrium::connectors_adapter::network_policy(), {{"host", "127.0.0.1"}, {"port", 5432}, {"database", "postgres"}},
      {{"user", "u"}}, 2s);
  REQUIRE_FALSE(denied.has_value());
  CHECK(denied.error().code == atrium::errc::forbidden);
}

TEST_CASE("connectors: a peer that is not PostgreSQL is not_a_database", "[connectors][postgres]") {
  // A server that answers the startup packet with an SSH banner, then closes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::thread peer([fd] {
    const int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) return;
    char buf[512];
    (void)::read(c, buf, sizeof buf);
    const std::string banner = "SSH-2.0-OpenSSH_9.2\r\n";
    (void)::write(c, banner.data(), banner.size());
    ::close(c);
  });
  const auto tester = loopback_tester();
  const auto probe = tester.test(
      "postgres",
      {{"host", "127.0.0.1"}, {"port", ntohs(addr.sin_port)}, {"database", "postgres"}, {"sslmode", "disable"}},
      {{"user", "atrium"}, {"password", "peer-password"}}, 2s);
  peer.join();
  ::close(fd);
  INFO(probe.error);
  CHECK_FALSE(probe.ok);
  CHECK(probe.error_class == "not_a_database");
}

TEST_CASE("connectors: every form of the password is masked", "[connectors][mask]") {
  using atrium::connectors_adapter::mask_secret;
  const std::string secret = "Pa55 w/rd+x'\\";
  const std::vector<std::string> forms{
      secret,
      std::string(secret.rbegin(), secret.rend()),
      "Pa55%20w%2Frd%2Bx%27%5C",
      "Pa55%20w%2frd%2bx%27%5c",
      "Pa55+w%2Frd%2Bx%27%5C",
      "UGE1NSB3L3JkK3gnXA==",
      "UGE1NSB3L3JkK3gnXA",
      "5061353520772f72642b78275c",
      "5061353520772F72642B78275C",
      "5061353520772f72642B78275c",  // mixed case
      "Pa55 w/rd+x\\'\\\\",          // conninfo-escaped
      "Pa55 w/rd+x'\\\\",            // JSON-escaped
  };
  for (const auto& f : forms) {
    INFO(f);
    const auto masked = mask_secret("before " + f + " after", secret);
    CHECK(masked.find(f) == std::string::npos);
    CHECK(masked.starts_with("before "));
    CHECK(masked.ends_with(" after"));
  }
  CHECK(mask_secret("nothing here", "") == "nothing here");
  CHECK(mask_secret("nothing here", secret) == "nothing here");
}

TEST_CASE("connectors: libpq messages are classified", "[connectors][postgres]") {
  using atrium::connectors_adapter::classify_postgres_error;
  CHECK(classify_postgres_error("connection to server at \"10.0.0.1\", port 5432 failed: Connection refused\n\tIs the "
                                "server running on that host and accepting TCP/IP connections?") == "refused");
  CHECK(classify_postgres_error("connection to server at \"10.0.0.1\", port 5432 failed: timeout expired") ==
        "timeout");
  CHECK(classify_postgres_error("connection to server at \"10.0.0.1\", port 22 failed: received invalid response to "
                                "SSL negotiation: S") == "not_a_database");
  CHECK(classify_postgres_error("expected authentication request from server, but received H") == "not_a_database");
  CHECK(classify_postgres_error("FATAL:  password authentication failed for user \"u\"") == "auth_failed");
  CHECK(classify_postgres_error("FATAL:  database \"x\" does not exist") == "auth_failed");
  CHECK(classify_postgres_error("fe_sendauth: no password supplied") == "auth_failed");
  CHECK(classify_postgres_error("server does not support SSL, but SSL was required") == "tls");
  CHECK(classify_postgres_error("SSL error: certificate verify failed") == "tls");
  CHECK(classify_postgres_error("connection to server at \"10.9.9.9\", port 5432 failed: No route to host") ==
        "unreachable");
  CHECK(classify_postgres_error("something else entirely") == "failed");
}
