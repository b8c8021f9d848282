// Tests of the SQLite job executor (adapters/connectors/sqlite_executor.hpp) and the
// SQLite root of the connection tester, against real SQLite files in temp directories.

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <limits>
#include <string>
#include <thread>

#include "adapters/connectors/sql_connector.hpp"
#include "adapters/connectors/sqlite_executor.hpp"
#include "adapters/connectors/sqlite_paths.hpp"
#include "tests/support/memory_result_writer.hpp"
#include "tests/support/process.hpp"

namespace {

namespace fs = std::filesystem;
using atrium::connectors_adapter::sqlite_executor;
using atrium::ports::cancel_signal;
using atrium::ports::job_outcome;
using atrium::ports::job_spec;
using atrium::ports::result_column;
using atrium::test::memory_result_writer;
using namespace std::chrono_literals;

void exec_sql(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  INFO((err != nullptr ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

job_spec spec_for(const std::string& path, std::string sql) {
  job_spec spec;
  spec.job_id = "0193a1c2-0000-7000-8000-000000000001";
  spec.kind = "sql";
  spec.driver = "sqlite";
  spec.params = {{"path", path}};
  spec.source = std::move(sql);
  return spec;
}

/// A root with `app.db` holding table `t`.
struct sqlite_fixture {
  atrium::test::temp_dir dir;
  fs::path db = dir.path() / "app.db";
  sqlite_executor executor{dir.path()};
  sqlite_fixture() {
    exec_sql(db,
             "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n NUMERIC, flag BOOLEAN, v VARCHAR(10), d DATE);"
             "INSERT INTO t VALUES (1, 1.5, 'one', x'00ff10', 10, 1, 'vee', '2024-01-02');"
             "INSERT INTO t VALUES (2, NULL, NULL, NULL, NULL, 0, NULL, NULL);");
  }
  job_outcome run(const std::string& sql, memory_result_writer& out, const std::string& path = "app.db") {
    cancel_signal cancel;
    return executor.run(spec_for(path, sql), out, {}, cancel);
  }
};

}  // namespace

TEST_CASE("sqlite executor: typed columns from declared types and values", "[sqlite_executor]") {
  sqlite_fixture f;
  memory_result_writer out;
  const auto o = f.run(
      "SELECT i, r, s, b, n, flag, v, d, i + 1 AS e, 'x' || s AS f, 2.5 AS g, x'ab' AS h, "
      "NULL AS z FROM t ORDER BY i",
      out);
  INFO(o.error);
  REQUIRE(o.state == job_outcome::status::succeeded);
  CHECK(o.sqlstate.empty());
  const std::vector<result_column> expected{{"i", "int"},     {"r", "float"},   {"s", "text"},  {"b", "bytes"},
                                            {"n", "numeric"}, {"flag", "bool"}, {"v", "text"},  {"d", "numeric"},
                                            {"e", "int"},     {"f", "text"},    {"g", "float"}, {"h", "bytes"},
                                            {"z", "unknown"}};
  CHECK(out.columns() == expected);
  REQUIRE(out.rows() == 2);
  CHECK(out.cell(0, 0) == "1");
  CHECK(out.cell(0, 1) == "1.5");
  CHECK(out.cell(0, 2) == "one");
  CHECK(out.cell(0, 3) == "00ff10");
  CHECK(out.cell(0, 4) == "10");
  CHECK(out.cell(0, 5) == "1");
  CHECK(out.cell(0, 7) == "2024-01-02");
  CHECK(out.cell(0, 9) == "xone");
  CHECK(out.cell(0, 11) == "ab");
  CHECK_FALSE(out.cell(0, 12).has_value());
  CHECK_FALSE(out.cell(1, 1).has_value());
  CHECK_FALSE(out.cell(1, 3).has_value());
  CHECK(out.cell(1, 0) == "2");
  CHECK_FALSE(out.committed());  // the caller commits
}

TEST_CASE("sqlite executor: every statement runs, the last one returning rows is the table", "[sqlite_executor]") {
  sqlite_fixture f;
  SECTION("temp table, insert, select") {
    memory_result_writer out;
    const auto o = f.run(
        "CREATE TEMP TABLE x (a INTEGER); INSERT INTO x VALUES (3), (1), (2);\n"
        "-- the table:\nSELECT a FROM x ORDER BY a; -- trailing comment\n",
        out);
    INFO(o.error);
    REQUIRE(o.state == job_outcome::status::succeeded);
    REQUIRE(out.rows() == 3);
    CHECK(out.columns() == std::vector<result_column>{{"a", "int"}});
    CHECK(out.cell(0, 0) == "1");
    CHECK(out.cell(2, 0) == "3");
  }
  SECTION("two selects: the second") {
    memory_result_writer out;
    REQUIRE(f.run("SELECT 1 AS one; SELECT 2 AS two, 3 AS three", out).state == job_outcome::status::succeeded);
    CHECK(out.columns().size() == 2);
    CHECK(out.columns().at(0).name == "two");
    CHECK(out.cell(0, 1) == "3");
  }
  SECTION("a select followed by statements without rows") {
    memory_result_writer out;
    REQUIRE(f.run("SELECT s FROM t WHERE i = 1; CREATE TEMP TABLE y (a); DROP TABLE y;", out).state ==
            job_outcome::status::succeeded);
    REQUIRE(out.rows() == 1);
    CHECK(out.cell(0, 0) == "one");
  }
  SECTION("no statement returns rows: no table") {
    memory_result_writer out;
    REQUIRE(f.run("CREATE TEMP TABLE y (a); INSERT INTO y VALUES (1);", out).state == job_outcome::status::succeeded);
    CHECK_FALSE(out.begun());
  }
  SECTION("an empty result still has its columns") {
    memory_result_writer out;
    REQUIRE(f.run("SELECT i, s FROM t WHERE i > 100", out).state == job_outcome::status::succeeded);
    CHECK(out.begun());
    CHECK(out.rows() == 0);
    CHECK(out.columns() == std::vector<result_column>{{"i", "int"}, {"s", "text"}});
  }
  SECTION("an error in a later statement fails the job with SQLite's message") {
    memory_result_writer out;
    const auto o = f.run("SELECT 1; SELECT * FROM no_such_table", out);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.error.find("no such table") != std::string::npos);
  }
  SECTION("the database is read-only") {
    memory_result_writer out;
    const auto o = f.run("INSERT INTO t (i) VALUES (3)", out);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.error.find("readonly") != std::string::npos);
  }
}

TEST_CASE("sqlite executor: rows arrive in batches with progress, truncated at the writer's bounds",
          "[sqlite_executor]") {
  sqlite_fixture f;
  const std::string endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c";
  SECTION("rows") {
    memory_result_writer out({.max_rows = 5000});
    std::vector<atrium::ports::job_progress> seen;
    cancel_signal cancel;
    const auto o = f.executor.run(
        spec_for("app.db",
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c "
                 "WHERE x < 3000) SELECT x, 'row ' || x AS label FROM c"),
        out, [&](const auto& p) { seen.push_back(p); }, cancel);
    INFO(o.error);
    REQUIRE(o.state == job_outcome::status::succeeded);
    CHECK(out.rows() == 3000);
    CHECK_FALSE(out.full());
    CHECK(out.batches() == 3);  // 1024 + 1024 + 952
    REQUIRE(seen.size() == 3);
    CHECK(seen.back().rows == 3000);
    CHECK(seen.back().bytes > 3000);
    CHECK_FALSE(seen.back().percent.has_value());
    CHECK(out.cell(2999, 1) == "row 3000");
  }
  SECTION("max_rows") {
    memory_result_writer out({.max_rows = 2500});
    const auto o = f.run(endless, out);
    REQUIRE(o.state == job_outcome::status::succeeded);
    CHECK(out.full());
    CHECK(out.rows() == 2500);
    CHECK(out.cell(2499, 0) == "2500");
  }
  SECTION("max_bytes") {
    memory_result_writer out({.max_bytes = 10000});
    const auto o = f.run(endless, out);
    REQUIRE(o.state == job_outcome::status::succeeded);
    CHECK(out.full());
    CHECK(out.bytes() <= 10000);
    CHECK(out.rows() > 1000);
  }
}

TEST_CASE("sqlite executor: an endless query is interrupted from another thread", "[sqlite_executor]") {
  sqlite_fixture f;
  const auto query =
      GENERATE(std::string("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"),
               std::string("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"));
  memory_result_writer out(
      {.max_rows = std::numeric_limits<std::uint64_t>::max(), .max_bytes = std::numeric_limits<std::uint64_t>::max()},
      false);
  cancel_signal cancel;
  std::atomic<bool> started{false};
  auto running = std::async(std::launch::async, [&] {
    return f.executor.run(
        spec_for("app.db", query), out, [&](const auto&) { started = true; }, cancel);
  });
  if (query.find("count") == std::string::npos) {
    REQUIRE(atrium::test::wait_until([&] { return started.load(); }, 10s));
  } else {
    std::this_thread::sleep_for(200ms);
  }
  const auto asked = std::chrono::steady_clock::now();
  cancel.request();
  REQUIRE(running.wait_for(10s) == std::future_status::ready);
  const auto took = std::chrono::steady_clock::now() - asked;
  const auto o = running.get();
  INFO(query << ": " << o.error);
  CHECK(o.state == job_outcome::status::interrupted);
  CHECK(took < 2s);  // the bound for an interrupt (a deadline, not a benchmark)
}

TEST_CASE("sqlite executor: a cancel before the run interrupts at once", "[sqlite_executor]") {
  sqlite_fixture f;
  memory_result_writer out;
  cancel_signal cancel;
  cancel.request();
  const auto o = f.executor.run(spec_for("app.db", "SELECT 1"), out, {}, cancel);
  CHECK(o.state == job_outcome::status::interrupted);
  CHECK_FALSE(out.begun());
}

TEST_CASE("sqlite executor: ATTACH stays inside the root, extensions never load", "[sqlite_executor]") {
  sqlite_fixture f;
  atrium::test::temp_dir elsewhere;
  exec_sql(elsewhere.path() / "other.db", "CREATE TABLE secret (x); INSERT INTO secret VALUES ('hidden');");
  exec_sql(f.dir.path() / "inside.db", "CREATE TABLE shared (x); INSERT INTO shared VALUES ('visible');");

  SECTION("a file outside the root") {
    memory_result_writer out;
    const auto o = f.run("ATTACH '" + (elsewhere.path() / "other.db").string() + "' AS o; SELECT x FROM o.secret", out);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.error.find("not authorized") != std::string::npos);
    CHECK_FALSE(out.begun());
  }
  SECTION("through .. , a relative name, a URI or a computed name") {
    const auto outside = (f.dir.path() / ".." / elsewhere.path().filename() / "other.db").string();
    for (const auto& name :
         {"'" + outside + "'", std::string("'other.db'"), "'file:" + (elsewhere.path() / "other.db").string() + "'",
          "'" + f.dir.path().string() + "/' || 'inside.db'"}) {
      memory_result_writer out;
      const auto o = f.run("ATTACH " + name + " AS o; SELECT 1", out);
      INFO(name);
      CHECK(o.state == job_outcome::status::failed);
    }
  }
  SECTION("a file inside the root, and a private temporary database") {
    memory_result_writer out;
    const auto o = f.run(
        "ATTACH '" + (f.dir.path() / "inside.db").string() + "' AS i; ATTACH ':memory:' AS m; SELECT x FROM i.shared",
        out);
    INFO(o.error);
    REQUIRE(o.state == job_outcome::status::succeeded);
    CHECK(out.cell(0, 0) == "visible");
  }
  SECTION("load_extension") {
    memory_result_writer out;
    const auto o = f.run("SELECT load_extension('/lib/x86_64-linux-gnu/libm.so.6')", out);
    CHECK(o.state == job_outcome::status::failed);
    CHECK_FALSE(o.error.empty());
  }
}

TEST_CASE("sqlite executor: a path outside the root is refused", "[sqlite_executor]") {
  sqlite_fixture f;
  atrium::test::temp_dir elsewhere;
  const auto other = elsewhere.path() / "other.db";
  exec_sql(other, "CREATE TABLE secret (x); INSERT INTO secret VALUES ('hidden');");
  fs::create_symlink(other, f.dir.path() / "link.db");
  fs::create_directory(f.dir.path() / "sub");
  fs::create_directory_symlink(elsewhere.path(), f.dir.path() / "sub" / "dirlink");
  const auto up = "../" + elsewhere.path().filename().string() + "/other.db";
  for (const auto& path : {up, other.string(), std::string("link.db"), std::string("sub/dirlink/other.db"),
                           std::string("sub/../../x.db"), std::string("/etc/passwd")}) {
    memory_result_writer out;
    const auto o = f.run("SELECT x FROM secret", out, path);
    INFO(path << ": " << o.error);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.error.find("SQLite root") != std::string::npos);
    CHECK_FALSE(out.begun());
  }
  SECTION("inside the root: relative, absolute, through sub/..") {
    for (const auto& path : {std::string("app.db"), f.db.string(), std::string("sub/../app.db")}) {
      memory_result_writer out;
      const auto o = f.run("SELECT count(*) AS n FROM t", out, path);
      INFO(path << ": " << o.error);
      CHECK(o.state == job_outcome::status::succeeded);
    }
  }
  SECTION("a missing file is not created") {
    memory_result_writer out;
    CHECK(f.run("SELECT 1", out, "missing.db").state == job_outcome::status::failed);
    CHECK_FALSE(fs::exists(f.dir.path() / "missing.db"));
  }
}

TEST_CASE("sqlite paths: resolution under the root", "[sqlite_executor][sqlite_paths]") {
  using atrium::connectors_adapter::resolve_sqlite_path;
  atrium::test::temp_dir dir;
  const auto root = fs::canonical(dir.path());
  CHECK(resolve_sqlite_path(root, "a.db").value() == root / "a.db");
  CHECK(resolve_sqlite_path(root, "x/../b.db").value() == root / "b.db");
  CHECK(resolve_sqlite_path(root, (root / "c.db").string()).value() == root / "c.db");
  CHECK(resolve_sqlite_path(root, "file:x.db").value() == root / "file:x.db");
  for (const auto& bad : {std::string(""), std::string("."), std::string(".."), std::string("../a.db"),
                          root.string() + "2/a.db", std::string("/tmp/a.db"), std::string("a\0b", 3)}) {
    const auto r = resolve_sqlite_path(root, bad);
    INFO(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == atrium::errc::invalid_argument);
    CHECK(r.error().details == nlohmann::json{{"field", "params.path"}});
  }
}

TEST_CASE("connection tester with a SQLite root: refuses paths outside, opens relative ones inside",
          "[sqlite_executor][connectors]") {
  atrium::test::temp_dir root;
  atrium::test::temp_dir elsewhere;
  exec_sql(root.path() / "in.db", "CREATE TABLE t (x)");
  exec_sql(elsewhere.path() / "out.db", "CREATE TABLE t (x)");
  fs::create_symlink(elsewhere.path() / "out.db", root.path() / "link.db");
  const atrium::connectors_adapter::sql_connection_tester tester(atrium::connectors_adapter::network_policy(),
                                                                 root.path());
  CHECK(tester.check_destination("sqlite", {{"path", "in.db"}}).has_value());
  CHECK(tester.check_destination("sqlite", {{"path", "not-yet.db"}}).has_value());
  const auto probe = tester.test("sqlite", {{"path", "in.db"}}, nlohmann::json::object(), 2s);
  INFO(probe.error);
  CHECK(probe.ok);
  for (const auto& path : {(elsewhere.path() / "out.db").string(), std::string("link.db"),
                           "../" + elsewhere.path().filename().string() + "/out.db"}) {
    INFO(path);
    const auto checked = tester.check_destination("sqlite", {{"path", path}});
    REQUIRE_FALSE(checked.has_value());
    CHECK(checked.error().code == atrium::errc::invalid_argument);
    CHECK(checked.error().details.at("field") == "params.path");
    CHECK(checked.error().message.find("SQLite root") != std::string::npos);
    const auto refused = tester.test("sqlite", {{"path", path}}, nlohmann::json::object(), 2s);
    CHECK_FALSE(refused.ok);
    CHECK(refused.error_class == "not_a_database");
  }
  // Without a root (existing callers) any path still goes.
  const atrium::connectors_adapter::sql_connection_tester open_tester;
  CHECK(open_tester.check_destination("sqlite", {{"path", (elsewhere.path() / "out.db").string()}}).has_value());
  CHECK(open_tester.test("sqlite", {{"path", (elsewhere.path() / "out.db").string()}}, nullptr, 2s).ok);
}

TEST_CASE("sqlite executor: waiting for a writer's lock stops on a cancel", "[sqlite_executor]") {
  sqlite_fixture f;
  sqlite3* writer = nullptr;
  REQUIRE(sqlite3_open(f.db.c_str(), &writer) == SQLITE_OK);
  REQUIRE(sqlite3_exec(writer, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  memory_result_writer out;
  cancel_signal cancel;
  auto running = std::async(std::launch::async,
                            [&] { return f.executor.run(spec_for("app.db", "SELECT * FROM t"), out, {}, cancel); });
  CHECK(running.wait_for(300ms) == std::future_status::timeout);
  cancel.request();
  REQUIRE(running.wait_for(5s) == std::future_status::ready);
  const auto o = running.get();
  INFO(o.error);
  CHECK(o.state == job_outcome::status::interrupted);
  sqlite3_exec(writer, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(writer);
}
