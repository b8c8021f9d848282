// (postgres) The peer baseline, where PostgreSQL is installed: a throwaway cluster
// (initdb in a temp dir, started with pg_ctl on 127.0.0.1 and a free port, fsync and
// synchronous_commit on), an append-only `events` table with a bigserial position and a
// unique (stream, version) constraint, and N connections each appending the same
// payloads as the other paths to its own stream, one transaction per append, with
// version = last + 1 — the way PostgreSQL-based event stores append. The cluster is
// stopped (pg_ctl stop -m fast, then a wait on its postmaster PID) and deleted at the end;
// tests/support/postgres.hpp does the setup and teardown.
//
// Built without libpq (pkg-config finds none), the scenario reports itself skipped.
#include "tests/bench/bench.hpp"

#if ATRIUM_BENCH_HAVE_LIBPQ

#include <algorithm>
#include <latch>
#include <optional>
#include <thread>

#include <libpq-fe.h>

#include "tests/support/postgres.hpp"

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
  const auto bin = o.pg_bin.empty() ? test::find_postgres_bin_dir() : std::optional<fs::path>(o.pg_bin);
  if (!bin) {
    print_skipped("postgres", "postgres",
                  "PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin)");
    return out;
  }
  const auto counts = baseline_writers(o);
  const std::size_t most = counts.empty() ? 1 : *std::max_element(counts.begin(), counts.end());
  progress("postgres: initdb and start with " + bin->string());
  std::optional<test::postgres_server> pg;
  try {
    pg.emplace(test::postgres_options{.user = "bench",
                                      .max_connections = most + 10,
                                      .settings = {"fsync=on", "synchronous_commit=on"},
                                      .bin_dir = *bin});
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
