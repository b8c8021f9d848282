// The offline subcommands against the real binary: a server writes users and projects
// over HTTP and stops; then `atriumd export`, `inspect` and `replay` run on its data
// dir, and a restarted server serves what it served before the replay.
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"

using atrium::test::run_atriumd;
using atrium::test::temp_dir;
using nlohmann::json;

namespace {

/// The JSON values of the lines of `text` (each line must parse).
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

TEST_CASE("cli: offline export and inspect and replay on a stopped server's data dir", "[e2e][cli]") {
  temp_dir dir;
  atrium::test::atriumd_server d(dir.path());
  const auto data = d.data.string();
  const auto admin = d.admin();

  auto alice = admin.post(
      "/v1/users",
      {{"username", "alice"}, {"email", "alice@example.org"}, {"password", "a.l.i.c.e-password"}, {"role", "member"}});
  REQUIRE(alice.status == 201);
  const auto alice_id = alice.json.at("id").get<std::string>();
  auto created = admin.post("/v1/projects", {{"name", "Apollo"}, {"description", "to the moon"}});
  REQUIRE(created.status == 201);
  const auto pid = created.json.at("id").get<std::string>();
  REQUIRE(admin.post("/v1/projects", {{"name", "Gemini"}}).status == 201);
  auto version = created.json.at("version").get<std::uint64_t>();
  for (const auto* name : {"Artemis", "Artemis II"}) {
    auto r = admin.request("PATCH", "/v1/projects/" + pid, json{{"name", name}}.dump(),
                           {{"If-Match", std::to_string(version)}});
    REQUIRE(r.status == 200);
    version = r.json.at("version").get<std::uint64_t>();
  }
  auto before = admin.get("/v1/projects/" + pid);
  REQUIRE(before.status == 200);
  CHECK(before.json.at("name") == "Artemis II");
  auto verified = admin.get("/v1/audit/verify");
  REQUIRE(verified.status == 200);
  const auto head = verified.json.at("count").get<std::uint64_t>();
  REQUIRE(head >= 10);

  // While the server holds the store, RocksDB's lock refuses a second opener.
  auto busy = run_atriumd({"export", "--data-dir", data});
  CHECK(busy.exit_code == 2);
  CHECK(busy.out.empty());
  CHECK(busy.err.find("in use") != std::string::npos);
  CHECK(d.stop() == 0);

  SECTION("export prints every event once, in position order, redacted") {
    auto all = run_atriumd({"export", "--data-dir", data});
    INFO(all.err);
    REQUIRE(all.exit_code == 0);
    const auto lines = json_lines(all.out);
    REQUIRE(lines.size() == head);
    for (std::size_t i = 0; i < lines.size(); ++i) CHECK(lines[i].at("position") == i + 1);
    CHECK(all.out.find("password_hash") == std::string::npos);
    CHECK(all.out.find("$argon2id") == std::string::npos);

    auto window = run_atriumd({"export", "--data-dir", data, "--after", "3", "--until", "7"});
    REQUIRE(window.exit_code == 0);
    const auto part = json_lines(window.out);
    REQUIRE(part.size() == 4);
    for (std::size_t i = 0; i < part.size(); ++i) CHECK(part[i] == lines[3 + i]);

    auto tail = run_atriumd({"export", "--data-dir", data, "--after", std::to_string(head - 2)});
    REQUIRE(tail.exit_code == 0);
    CHECK(json_lines(tail.out).size() == 2);
    auto none = run_atriumd({"export", "--data-dir", data, "--after", std::to_string(head)});
    CHECK(none.exit_code == 0);
    CHECK(none.out.empty());

    auto bad = run_atriumd({"export", "--data-dir", data, "--after", "-1"});
    CHECK(bad.exit_code == 2);
    CHECK_FALSE(bad.err.empty());
  }

  SECTION("inspect shows a stream's events and its folded state") {
    auto project = run_atriumd({"inspect", "project-" + pid, "--data-dir", data});
    INFO(project.err);
    REQUIRE(project.exit_code == 0);
    auto j = json::parse(project.out);
    CHECK(j.at("stream") == "project-" + pid);
    CHECK(j.at("version") == version);
    REQUIRE(j.at("events").size() == version);
    CHECK(j.at("events").back().at("type") == "project.renamed");
    CHECK(j.at("state").at("name") == "Artemis II");
    CHECK(j.at("state").at("version") == version);
    CHECK(j.at("state").at("members") == before.json.at("members"));

    auto user = run_atriumd({"inspect", "user-" + alice_id, "--data-dir", data});
    REQUIRE(user.exit_code == 0);
    auto u = json::parse(user.out);
    CHECK(u.at("state").at("username") == "alice");
    CHECK(user.out.find("password_hash") == std::string::npos);

    // A stream of another kind has no state; an unknown stream is an error.
    auto claim = run_atriumd({"inspect", "username-alice", "--data-dir", data});
    REQUIRE(claim.exit_code == 0);
    CHECK(json::parse(claim.out).at("state").is_null());
    auto missing = run_atriumd({"inspect", "project-nope", "--data-dir", data});
    CHECK(missing.exit_code == 1);
    CHECK(missing.out.empty());
    CHECK(missing.err.find("project-nope") != std::string::npos);
  }

  SECTION("replay rebuilds a projection; the restarted server serves the same rows") {
    auto unknown = run_atriumd({"replay", "--projection", "nope", "--data-dir", data});
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.err.find("projects") != std::string::npos);

    auto replay = run_atriumd({"replay", "--projection", "projects", "--data-dir", data});
    INFO(replay.err);
    REQUIRE(replay.exit_code == 0);
    auto j = json::parse(replay.out);
    CHECK(j.at("projection") == "projects");
    CHECK(j.at("position") == head);
    CHECK(j.at("events") == head);

    d.start();
    const auto again = d.admin();
    auto after = again.get("/v1/projects/" + pid);
    REQUIRE(after.status == 200);
    CHECK(after.json == before.json);
    auto list = again.get("/v1/projects");
    REQUIRE(list.status == 200);
    CHECK(list.json.at("projects").size() == 2);
  }

  SECTION("a missing store is an error, not a new empty store") {
    auto r = run_atriumd({"export", "--data-dir", (dir.path() / "elsewhere").string()});
    CHECK(r.exit_code == 1);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "elsewhere"));
  }
}

TEST_CASE("cli: bad options stop atriumd at start with one line on stderr and exit code 2", "[e2e][cli]") {
  temp_dir dir;
  const auto data = (dir.path() / "data").string();
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--data-dir", data, "--listen", "127.0.0.1:0", "--no-such-flag"},
                                             {"--data-dir", data, "--snapshot-every", "often"},
                                             {"serve", "--data-dir", data, "--listen", "127.0.0.1:99999"},
                                             {"--data-dir", data, "--kafka-transactions"},
                                             {"export", "--data-dir", data, "--until", "-3"},
                                             {"inspect", "--data-dir", data}}) {
    const auto r = run_atriumd(args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.starts_with("atriumd"));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.ends_with("\n"));
  }
  CHECK_FALSE(std::filesystem::exists(data));  // refused before anything was created

  const auto version = run_atriumd({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.starts_with("atriumd "));
  const auto help = run_atriumd({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("replay") != std::string::npos);
}

TEST_CASE("cli: serve options from the environment win over the config file", "[e2e][cli]") {
  temp_dir dir;
  const auto data = dir.path() / "from-env";
  const auto config = (dir.path() / "atriumd.toml").string();
  // The file's data dir and address lose to the environment's; its log level applies.
  std::ofstream(config) << "data-dir = \"" << (dir.path() / "from-file").string() << "\"\n"
                        << "listen = \"127.0.0.1:1\"\nlog-level = \"warn\"\n";
  atrium::test::child_process proc({ATRIUMD_PATH, "--config", config},
                                   {{"ATRIUM_DATA_DIR", data.string()},
                                    {"ATRIUM_LISTEN", "127.0.0.1:0"},
                                    {"ATRIUM_ADMIN_PASSWORD", atrium::test::k_admin_password}},
                                   dir.path() / "atriumd.log");
  std::string address;
  const bool up = atrium::test::wait_until(
      [&] {
        std::ifstream f(data / "atriumd.addr");
        return static_cast<bool>(f >> address);
      },
      std::chrono::seconds(30));
  INFO(atrium::test::atriumd_server::slurp(dir.path() / "atriumd.log"));
  REQUIRE(up);
  CHECK(address.starts_with("127.0.0.1:"));
  CHECK(address != "127.0.0.1:1");
  CHECK_FALSE(std::filesystem::exists(dir.path() / "from-file"));
  REQUIRE(atrium::test::wait_until(
      [&] {
        try {
          return atrium::test::http_client(address).get("/readyz").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(30)));
  auto login = atrium::test::http_client(address).post(
      "/v1/auth/login", {{"username", "admin"}, {"password", atrium::test::k_admin_password}});
  CHECK(login.status == 200);
  CHECK(proc.stop(SIGTERM) == 0);
  // The file's log level applies (nothing overrode it): no info line such as "listening".
  const auto log = atrium::test::atriumd_server::slurp(dir.path() / "atriumd.log");
  CHECK(log.find("atriumd listening on") != std::string::npos);
  CHECK(log.find(" info ") == std::string::npos);
}
