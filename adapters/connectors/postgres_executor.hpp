#pragma once
/// The PostgreSQL job executor (`sql` jobs on a `postgres` connection), implementing
/// ports/job_executor.hpp over libpq (the C library libpqxx wraps: its single-row mode
/// and cancel object are what streaming and cancelling need, and libpqxx 6.4 does not
/// expose its connection handle).
///
///   params + credentials ──postgres_conninfo (network policy, pinned hostaddr)──▶ conninfo
///     ──PQconnectStart/PQconnectPoll (10 s, interruptible)──▶ connection
///     ──PQsendQuery(whole text) + PQsetSingleRowMode──▶ one PGresult per row
///          rows of the table statement ──batches of 1024──▶ result_writer ──▶ progress
///     cancel.request() ──eventfd──▶ this thread wakes ──PQcancel──▶ server stops the query
///                                   ──results drained (≤ 2 s)──▶ PQfinish ──▶ interrupted
///
/// Connection. Always through `postgres_conninfo` (sql_connector.hpp): the destination is
/// checked against the network policy at every run and libpq connects only to the
/// checked addresses. The connect is bounded by 10 s and stops early on a cancel.
/// The client encoding is UTF8 (cells are UTF-8 whatever the database's encoding).
/// `statement_timeout` is the job's timeout plus 30 s, a server-side backstop only: the
/// dispatcher enforces the job's timeout through `cancel_signal` before it fires.
///
/// Statements. The whole text is sent as one simple query, so PostgreSQL runs it as
/// psql -c does: in one implicit transaction unless the text controls transactions
/// itself. Rows are streamed with single-row mode (never a whole result in memory; one
/// result per row, which is what lets rows flow while the query runs). The result table
/// is the one of the LAST statement that returns rows: the text is split into statements
/// here (`split_sql` in sql_split.hpp: quotes, `E''` strings, dollar quotes, quoted
/// identifiers, nested comments and parentheses), and a statement's rows become the
/// table when no later statement may return rows (judged by its leading keyword, see
/// `sql_statement::may_return_rows`). Rows of other statements are read and dropped.
/// Without a row-returning statement there is no table (`begin` is never called).
/// `COPY … TO STDOUT` / `FROM STDIN` fail the job (use a SELECT).
///
/// Truncation. When the writer is full and the table statement is the only statement,
/// the query is cancelled and the connection closed; with other statements the rest of
/// the rows is read and dropped so that the statements after it still run and the
/// implicit transaction commits.
///
/// Column types, from the result's type OIDs (pg_type.dat): bool → `bool`; int2, int4,
/// int8, oid → `int`; float4, float8 → `float`; numeric → `numeric`; text, varchar,
/// bpchar, char, name → `text`; bytea → `bytes` (PostgreSQL's hex text form, `\x…`);
/// date → `date`; time, timetz → `time`; timestamp → `timestamp`; timestamptz →
/// `timestamptz`; json, jsonb → `json`; anything else → `unknown`. Cells are
/// PostgreSQL's text output; NULL is nullopt. Notices go to the job's log.
///
/// Outcomes: `succeeded` (also when truncated), `interrupted` after `cancel.request()`
/// (the query cancelled on the server and the connection closed, so `pg_stat_activity`
/// no longer shows it), `failed` with PostgreSQL's message (every form of the password
/// masked, `mask_secret`) and SQLSTATE (`PG_DIAG_SQLSTATE`; empty for connection
/// failures), including a destination denied by the network policy.

#include <string_view>
#include <vector>

#include "adapters/connectors/network_policy.hpp"
#include "adapters/connectors/sql_split.hpp"
#include "ports/job_executor.hpp"

namespace atrium::connectors_adapter {

/// Runs `sql` jobs on PostgreSQL. Thread-safe: each `run` opens its own connection.
class postgres_executor final : public ports::job_executor {
 public:
  /// `policy`: where connections may go (atriumd's `--connection-allow/deny`).
  explicit postgres_executor(network_policy policy) : policy_(std::move(policy)) {}

  /// See the header comment. `spec.params` `{"host","port","database","sslmode"?}`,
  /// `spec.credentials` `{"user","password"?}`, `spec.source` the SQL.
  [[nodiscard]] ports::job_outcome run(const ports::job_spec& spec, ports::result_writer& out,
                                       const ports::progress_fn& progress, ports::cancel_signal& cancel) override;

  /// Rows per `result_writer::append` call.
  static constexpr std::size_t batch_rows = 1024;
  /// Bound of the connect (all pinned addresses together).
  static constexpr std::chrono::seconds connect_timeout{10};

 private:
  network_policy policy_;
};

}  // namespace atrium::connectors_adapter
