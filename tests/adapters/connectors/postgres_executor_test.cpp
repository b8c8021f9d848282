// Tests of the PostgreSQL job executor (adapters/connectors/postgres_executor.hpp)
// against a real PostgreSQL server started for the test on 127.0.0.1, and of the
// statement splitter (sql_split.hpp).

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include "adapters/connectors/postgres_executor.hpp"
#include "adapters/connectors/sql_split.hpp"
#include "adapters/results/file_result_store.hpp"
#include "tests/support/memory_result_writer.hpp"
#include "tests/support/postgres.hpp"
#include "tests/support/process.hpp"

namespace {

using atrium::connectors_adapter::network_policy;
using atrium::connectors_adapter::postgres_executor;
using atrium::ports::cancel_signal;
using atrium::ports::job_outcome;
using atrium::ports::job_spec;
using atrium::ports::result_column;
using atrium::test::memory_result_writer;
using namespace std::chrono_literals;

constexpr const char* k_password = "pg-Secret'42\\x";

/// One server for every test case of this file (starting one takes about a second).
atrium::test::postgres_server& server() {
  static atrium::test::postgres_server pg(atrium::test::postgres_options{.password = k_password});
  return pg;
}

/// The built-in policy denies loopback, where the test server listens.
network_policy loopback_policy() {
  auto policy = network_policy::make({"127.0.0.1/32"}, {});
  REQUIRE(policy.has_value());
  return std::move(*policy);
}

job_spec spec_for(std::string sql, std::string password = k_password) {
  auto& pg = server();
  job_spec spec;
  spec.job_id = "0193a1c2-0000-7000-8000-000000000002";
  spec.kind = "sql";
  spec.driver = "postgres";
  spec.params = {{"host", pg.host()}, {"port", pg.port()}, {"database", "postgres"}, {"sslmode", "disable"}};
  spec.credentials = {{"user", pg.user()}, {"password", std::move(password)}};
  spec.source = std::move(sql);
  return spec;
}

job_outcome run(const std::string& sql, memory_result_writer& out) {
  postgres_executor executor(loopback_policy());
  cancel_signal cancel;
  return executor.run(spec_for(sql), out, {}, cancel);
}

/// A second, plain libpq connection for looking at the server from the side.
class observer {
 public:
  observer() : conn_(PQconnectdb(server().conninfo().c_str()), PQfinish) {
    REQUIRE(PQstatus(conn_.get()) == CONNECTION_OK);
  }
  /// The first cell of `sql`'s first row.
  std::string scalar(const std::string& sql) {
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(conn_.get(), sql.c_str()), PQclear);
    INFO(PQresultErrorMessage(r.get()));
    REQUIRE(PQresultStatus(r.get()) == PGRES_TUPLES_OK);
    REQUIRE(PQntuples(r.get()) == 1);
    return PQgetvalue(r.get(), 0, 0);
  }

 private:
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
};

constexpr const char* k_running_sleep =
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'select pg_sleep(60)'";
constexpr const char* k_any_sleep =
    "SELECT count(*) FROM pg_stat_activity WHERE query = 'select pg_sleep(60)' AND pid <> pg_backend_pid()";

}  // namespace

TEST_CASE("sql split: statements end at semicolons outside quotes, comments and parentheses", "[sql_split]") {
  using atrium::connectors_adapter::split_sql;
  const auto s = split_sql(
      "select ';' as a, \"x;y\" from t; -- c;\n"
      "insert into t values (E'it\\'s;', $$a;b$$, $tag$ $$; $tag$); /* one /* two; */ still; */ "
      "create rule r as on insert to t do also (delete from u; delete from v);"
      "update t set a = 1 returning a; ;  ; with x as (select 1) select * from x; set x = 1");
  REQUIRE(s.size() == 6);
  CHECK(s[0].text == "select ';' as a, \"x;y\" from t");
  CHECK(s[0].may_return_rows);
  CHECK_FALSE(s[1].may_return_rows);
  CHECK(s[1].text.find("$tag$ $$; $tag$") != std::string_view::npos);
  CHECK_FALSE(s[2].may_return_rows);
  CHECK(s[3].may_return_rows);  // RETURNING
  CHECK(s[4].may_return_rows);
  CHECK_FALSE(s[5].may_return_rows);
  CHECK(split_sql("  -- only a comment\n /* and another */ ; ").empty());
  CHECK(split_sql("select 'unterminated; string").size() == 1);
}

TEST_CASE("postgres executor: 200,000 rows stream into the writer in batches", "[postgres_executor]") {
  memory_result_writer out;
  postgres_executor executor(loopback_policy());
  cancel_signal cancel;
  std::uint64_t progressed = 0;
  const auto o = executor.run(
      spec_for("SELECT g AS n, 'row ' || g AS label, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 2 END AS twice "
               "FROM generate_series(1, 200000) AS g ORDER BY g"),
      out, [&](const auto& p) { progressed = p.rows; }, cancel);
  INFO(o.error);
  REQUIRE(o.state == job_outcome::status::succeeded);
  CHECK(out.columns() == std::vector<result_column>{{"n", "int"}, {"label", "text"}, {"twice", "int"}});
  REQUIRE(out.rows() == 200000);
  CHECK(progressed == 200000);
  CHECK(out.batches() == (200000 + postgres_executor::batch_rows - 1) / postgres_executor::batch_rows);
  bool all_equal = true;
  for (std::size_t r = 0; r < 200000 && all_equal; ++r) {
    const auto g = r + 1;
    all_equal = out.cell(r, 0) == std::to_string(g) && out.cell(r, 1) == "row " + std::to_string(g) &&
                (g % 7 == 0 ? !out.cell(r, 2).has_value() : out.cell(r, 2) == std::to_string(g * 2));
    if (!all_equal) INFO("row " << r);
  }
  CHECK(all_equal);
  CHECK_FALSE(out.full());
  CHECK_FALSE(out.committed());
}

TEST_CASE("postgres executor: into the file result store, read back page by page and as CSV",
          "[postgres_executor][results]") {
  atrium::test::temp_dir dir;
  auto store = atrium::results_adapter::file_result_store::open_dir(dir.path() / "results");
  REQUIRE(store.has_value());
  const std::string job = "0193a1c2-0000-7000-8000-0000000000aa";
  {
    auto writer = (*store)->create(job, {});
    REQUIRE(writer.has_value());
    postgres_executor executor(loopback_policy());
    cancel_signal cancel;
    const auto o = executor.run(
        spec_for("SELECT g AS n, 'a,\"b\" ' || g AS label FROM generate_series(1, 200000) AS g ORDER BY g"), **writer,
        {}, cancel);
    INFO(o.error);
    REQUIRE(o.state == job_outcome::status::succeeded);
    REQUIRE((*writer)->commit().has_value());
  }
  auto reader = (*store)->open(job);
  REQUIRE(reader.has_value());
  CHECK((*reader)->info().total_rows == 200000);
  CHECK_FALSE((*reader)->info().truncated);
  bool equal = true;
  for (std::uint64_t offset = 0; offset < 200000 && equal; offset += 5000) {
    auto page = (*reader)->rows(offset, 5000);
    REQUIRE(page.has_value());
    REQUIRE(page->size() == 5000);
    for (std::size_t i = 0; i < page->size() && equal; ++i) {
      const auto g = offset + i + 1;
      equal = (*page)[i] == nlohmann::json::array({g, "a,\"b\" " + std::to_string(g)});
    }
  }
  CHECK(equal);
  auto csv = (*reader)->csv();
  REQUIRE(csv.has_value());
  std::string all, chunk;
  for (;;) {
    auto more = (*csv)->next(chunk);
    REQUIRE(more.has_value());
    if (!*more) break;
    all += chunk;
  }
  CHECK(all.rfind("n,label\r\n1,\"a,\"\"b\"\" 1\"\r\n", 0) == 0);
  CHECK(all.ends_with("200000,\"a,\"\"b\"\" 200000\"\r\n"));
}

TEST_CASE("postgres executor: column types from type OIDs", "[postgres_executor]") {
  memory_result_writer out;
  const auto o =
      run("SELECT true AS b, 1::int2 AS i2, 2::int4 AS i4, 3::int8 AS i8, 1.5::float4 AS f4, 2.25::float8 AS f8, "
          "3.14::numeric AS n, 'x'::text AS t, 'y'::varchar AS v, 'z'::name AS nm, 'c'::char(2) AS ch, "
          "'\\xdead'::bytea AS by, date '2024-01-02' AS d, time '03:04:05' AS tm, "
          "timestamp '2024-01-02 03:04:05' AS ts, timestamptz '2024-01-02 03:04:05+00' AS tz, "
          "'{\"a\": 1}'::json AS j, '{\"b\": 2}'::jsonb AS jb, '10.0.0.1'::inet AS ip, NULL::int AS nul",
          out);
  INFO(o.error);
  REQUIRE(o.state == job_outcome::status::succeeded);
  const std::vector<result_column> expected{
      {"b", "bool"},         {"i2", "int"},    {"i4", "int"},  {"i8", "int"},     {"f4", "float"},
      {"f8", "float"},       {"n", "numeric"}, {"t", "text"},  {"v", "text"},     {"nm", "text"},
      {"ch", "text"},        {"by", "bytes"},  {"d", "date"},  {"tm", "time"},    {"ts", "timestamp"},
      {"tz", "timestamptz"}, {"j", "json"},    {"jb", "json"}, {"ip", "unknown"}, {"nul", "int"}};
  CHECK(out.columns() == expected);
  REQUIRE(out.rows() == 1);
  CHECK(out.cell(0, 0) == "t");
  CHECK(out.cell(0, 5) == "2.25");
  CHECK(out.cell(0, 6) == "3.14");
  CHECK(out.cell(0, 10) == "c ");
  CHECK(out.cell(0, 11) == "\\xdead");
  CHECK(out.cell(0, 12) == "2024-01-02");
  CHECK(out.cell(0, 17) == "{\"b\": 2}");
  CHECK_FALSE(out.cell(0, 19).has_value());
}

TEST_CASE("postgres executor: several statements, the last one returning rows is the table", "[postgres_executor]") {
  SECTION("temp table, insert, select, and statements after it") {
    memory_result_writer out;
    const auto o =
        run("CREATE TEMP TABLE x (a int); INSERT INTO x VALUES (3), (1), (2);\n"
            "SELECT a FROM x ORDER BY a; DROP TABLE x; -- done\n",
            out);
    INFO(o.error);
    REQUIRE(o.state == job_outcome::status::succeeded);
    REQUIRE(out.rows() == 3);
    CHECK(out.cell(0, 0) == "1");
    CHECK(out.cell(2, 0) == "3");
  }
  SECTION("two selects: the second") {
    memory_result_writer out;
    REQUIRE(run("SELECT 1 AS one; SELECT 2 AS two", out).state == job_outcome::status::succeeded);
    REQUIRE(out.columns().size() == 1);
    CHECK(out.columns()[0].name == "two");
    CHECK(out.cell(0, 0) == "2");
  }
  SECTION("no statement returns rows: no table") {
    memory_result_writer out;
    REQUIRE(run("CREATE TEMP TABLE y (a int); INSERT INTO y VALUES (1)", out).state == job_outcome::status::succeeded);
    CHECK_FALSE(out.begun());
  }
  SECTION("notices go to the log") {
    memory_result_writer out;
    REQUIRE(run("DO $$BEGIN RAISE NOTICE 'hello from plpgsql'; END$$; SELECT 1 AS one", out).state ==
            job_outcome::status::succeeded);
    CHECK(out.log().find("hello from plpgsql") != std::string::npos);
    CHECK(out.rows() == 1);
  }
  SECTION("COPY TO STDOUT is refused") {
    memory_result_writer out;
    const auto o = run("COPY (SELECT 1) TO STDOUT", out);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.error.find("COPY") != std::string::npos);
  }
}

TEST_CASE("postgres executor: errors carry PostgreSQL's message and SQLSTATE", "[postgres_executor]") {
  SECTION("syntax error") {
    memory_result_writer out;
    const auto o = run("SELEC 1", out);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.sqlstate == "42601");
    CHECK(o.error.find("syntax error") != std::string::npos);
  }
  SECTION("an error after some rows") {
    memory_result_writer out;
    const auto o = run("SELECT 1 / (5000 - g) FROM generate_series(1, 10000) AS g", out);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.sqlstate == "22012");
    CHECK(o.error.find("division by zero") != std::string::npos);
  }
  SECTION("wrong password: failed, the password nowhere") {
    const std::string wrong = "Wr0ng-pass'word";
    memory_result_writer out;
    postgres_executor executor(loopback_policy());
    cancel_signal cancel;
    const auto o = executor.run(spec_for("SELECT 1", wrong), out, {}, cancel);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.error.find("password authentication failed") != std::string::npos);
    CHECK(o.error.find(wrong) == std::string::npos);
    CHECK(o.error.find(k_password) == std::string::npos);
    CHECK_FALSE(out.begun());
  }
  SECTION("the built-in network policy refuses loopback") {
    memory_result_writer out;
    postgres_executor executor{network_policy()};
    cancel_signal cancel;
    const auto o = executor.run(spec_for("SELECT 1"), out, {}, cancel);
    CHECK(o.state == job_outcome::status::failed);
    CHECK(o.error.find("policy") != std::string::npos);
  }
  SECTION("malformed params") {
    memory_result_writer out;
    postgres_executor executor(loopback_policy());
    cancel_signal cancel;
    auto spec = spec_for("SELECT 1");
    spec.params["port"] = "not a port";
    CHECK(executor.run(spec, out, {}, cancel).state == job_outcome::status::failed);
  }
}

TEST_CASE("postgres executor: truncated at the writer's bound, the query stopped", "[postgres_executor]") {
  memory_result_writer out({.max_rows = 5000});
  // A set-returning function in the select list streams (in FROM it would be
  // materialized first).
  const auto o = run("SELECT generate_series(1, 1000000000) AS g, 'truncate-me' AS tag", out);
  INFO(o.error);
  REQUIRE(o.state == job_outcome::status::succeeded);
  CHECK(out.full());
  CHECK(out.rows() == 5000);
  CHECK(out.cell(4999, 0) == "5000");
  observer side;
  CHECK(atrium::test::wait_until(
      [&] {
        return side.scalar(
                   "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%truncate-me%' AND pid <> "
                   "pg_backend_pid()") == "0";
      },
      5s));
}

TEST_CASE("postgres executor: a cancelled query ends on the server", "[postgres_executor]") {
  observer side;
  memory_result_writer out;
  postgres_executor executor(loopback_policy());
  cancel_signal cancel;
  auto running =
      std::async(std::launch::async, [&] { return executor.run(spec_for("select pg_sleep(60)"), out, {}, cancel); });
  REQUIRE(atrium::test::wait_until([&] { return side.scalar(k_running_sleep) == "1"; }, 10s));
  const auto asked = std::chrono::steady_clock::now();
  cancel.request();
  REQUIRE(running.wait_for(10s) == std::future_status::ready);
  const auto o = running.get();
  INFO(o.error);
  CHECK(o.state == job_outcome::status::interrupted);
  CHECK(std::chrono::steady_clock::now() - asked < 2s);
  // Gone from pg_stat_activity within 2 s of the request (a deadline, not a benchmark).
  CHECK(atrium::test::wait_until(
      [&] { return side.scalar(k_any_sleep) == "0"; },
      std::chrono::duration_cast<std::chrono::milliseconds>(asked + 2s - std::chrono::steady_clock::now())));
}

TEST_CASE("postgres executor: a cancel before the run, or during the connect, interrupts", "[postgres_executor]") {
  memory_result_writer out;
  postgres_executor executor(loopback_policy());
  SECTION("before") {
    cancel_signal cancel;
    cancel.request();
    CHECK(executor.run(spec_for("SELECT 1"), out, {}, cancel).state == job_outcome::status::interrupted);
    CHECK_FALSE(out.begun());
  }
  SECTION("during the connect to a server that never answers") {
    // A listening socket nobody accepts on: the kernel completes the TCP handshake and
    // libpq waits for an answer to its startup packet.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    auto spec = spec_for("SELECT 1");
    spec.params["port"] = ntohs(addr.sin_port);
    cancel_signal cancel;
    auto running = std::async(std::launch::async, [&] { return executor.run(spec, out, {}, cancel); });
    CHECK(running.wait_for(300ms) == std::future_status::timeout);
    cancel.request();
    REQUIRE(running.wait_for(5s) == std::future_status::ready);
    CHECK(running.get().state == job_outcome::status::interrupted);
    ::close(fd);
  }
}

TEST_CASE("postgres executor: statement_timeout is the job's timeout plus a margin", "[postgres_executor]") {
  memory_result_writer out;
  postgres_executor executor(loopback_policy());
  cancel_signal cancel;
  auto spec = spec_for("SHOW statement_timeout");
  spec.timeout = std::chrono::seconds(7200);
  const auto o = executor.run(spec, out, {}, cancel);
  INFO(o.error);
  REQUIRE(o.state == job_outcome::status::succeeded);
  CHECK(out.cell(0, 0) == "7230s");
}

TEST_CASE("postgres executor: throughput of a 1,000,000-row result", "[.][postgres_executor][bench]") {
  const std::string query = "SELECT g, g * 2 AS twice, 'row ' || g AS label FROM generate_series(1, 1000000) AS g";
  const auto psql_bin = atrium::test::find_postgres_bin_dir().value() / "psql";
  double best = 1e9, best_psql = 1e9;
  for (int i = 0; i < 3; ++i) {
    memory_result_writer out(
        {.max_rows = std::numeric_limits<std::uint64_t>::max(), .max_bytes = std::numeric_limits<std::uint64_t>::max()},
        false);
    const auto start = std::chrono::steady_clock::now();
    const auto o = run(query, out);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    REQUIRE(o.state == job_outcome::status::succeeded);
    REQUIRE(out.rows() == 1000000);
    const auto psql_start = std::chrono::steady_clock::now();
    const auto p = atrium::test::run_process(
        {psql_bin.string(), "-X", "-q", "--csv", "-o", "/dev/null", "-d", server().conninfo(), "-c", query});
    best_psql =
        std::min(best_psql, std::chrono::duration<double>(std::chrono::steady_clock::now() - psql_start).count());
    REQUIRE(p.exit_code == 0);
  }
  atrium::test::temp_dir dir;
  auto store = atrium::results_adapter::file_result_store::open_dir(dir.path() / "results");
  REQUIRE(store.has_value());
  double best_store = 1e9;
  for (int i = 0; i < 3; ++i) {
    auto writer = (*store)->create("0193a1c2-0000-7000-8000-0000000000bb", {});
    REQUIRE(writer.has_value());
    postgres_executor executor(loopback_policy());
    cancel_signal cancel;
    const auto start = std::chrono::steady_clock::now();
    const auto o = executor.run(spec_for(query), **writer, {}, cancel);
    REQUIRE(o.state == job_outcome::status::succeeded);
    REQUIRE((*writer)->commit().has_value());
    best_store = std::min(best_store, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  WARN("best of 3 into the file result store (with commit): " << best_store << " s, " << 1e6 / best_store
                                                              << " rows/s; executor/psql " << best_psql / best_store);
  WARN("best of 3: executor " << best << " s, " << 1e6 / best << " rows/s; psql --csv " << best_psql << " s, "
                              << 1e6 / best_psql << " rows/s; executor/psql throughput " << best_psql / best);
}
