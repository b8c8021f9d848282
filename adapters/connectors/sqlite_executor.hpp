#pragma once
/// The SQLite job executor (`sql` jobs on a `sqlite` connection), through the sqlite3 C
/// API, implementing ports/job_executor.hpp.
///
///   params.path ──resolve_sqlite_path (sqlite_paths.hpp)──▶ file under the root
///     ──sqlite3_open_v2(READONLY, no URI)──▶ db: load_extension off, authorizer, limits
///     ──for each statement (prepare_v2 + tail): step──▶ rows of the table statement
///         in batches of 1024 ──▶ result_writer::append ──▶ progress
///     cancel.request() ──▶ sqlite3_interrupt(db) (from the dispatcher's thread)
///
/// Sandbox. The file is opened read-only (a missing file is an error, never created;
/// the path is absolute after resolution, so neither `file:` URIs nor `:memory:` apply).
/// Extension loading is off (SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION) and the authorizer
/// denies the `load_extension` function, `ATTACH` of anything but a file under the root
/// (an absolute path, resolved like `params.path`; `:memory:` and the empty name, a
/// private temporary database, are allowed; relative names and `file:` URIs are denied,
/// as SQLite would resolve them against the process's working directory), and the
/// pragmas that move temporary files (`temp_store_directory`, `data_store_directory`).
/// `sqlite3_limit` caps: 4 attached databases, 1 MB of SQL per statement, 100 MB per
/// string or blob, 2,000 columns. TEMP tables and views are allowed (they live in the
/// connection's private temporary database). A lock held by a writer of the file is
/// waited for up to 5 s (a busy handler that also stops on a cancel).
///
/// Statements. Every statement of the text runs in order. The result table is the one
/// of the LAST statement that returns rows (a statement with result columns: SELECT,
/// VALUES, most PRAGMAs, … RETURNING). Rows are streamed, so the decision is taken when
/// such a statement is about to run: the statements after it are compiled (not run); if
/// none of them has result columns, this statement's rows become the table. A later
/// statement that cannot be compiled yet (it names a table an intermediate statement
/// creates) is judged by its leading keyword instead (`split_sql`, sql_split.hpp: CREATE,
/// DROP, INSERT … without RETURNING return no rows; anything unknown may). Rows of
/// other statements are stepped
/// through and dropped. Without any row-returning statement the job has no table
/// (`result_writer::begin` is never called).
///
/// Column types (ports/result_store.hpp names), from the declared type of the column
/// when it has one, by SQLite's affinity rules (https://sqlite.org/datatype3.html
/// §3.1, checked in this order): containing `INT` → `int`; `CHAR`, `CLOB` or `TEXT` →
/// `text`; `BLOB` → `bytes`; `REAL`, `FLOA` or `DOUB` → `float`; `BOOL` → `bool`;
/// anything else → `numeric`. A column without a declared type (an expression) takes the
/// storage class of its first non-NULL value in the first batch: INTEGER → `int`, FLOAT
/// → `float`, TEXT → `text`, BLOB → `bytes`; all NULL → `unknown`.
/// Cells are `sqlite3_column_text` (REAL printed by SQLite, `%!.15g`), BLOB values as
/// lowercase hex, NULL as nullopt.
///
/// Progress is reported after every batch (rows and cell bytes read of the table
/// statement, elapsed; no percent). Outcomes: `succeeded` (also when the writer is full:
/// reading stops there), `interrupted` after `cancel.request()`, `failed` with SQLite's
/// message (no SQLSTATE) for anything else, including a path outside the root.

#include <filesystem>

#include "ports/job_executor.hpp"

namespace atrium::connectors_adapter {

/// Runs `sql` jobs against SQLite files under one root. Thread-safe: each `run` opens
/// its own connection.
class sqlite_executor final : public ports::job_executor {
 public:
  /// `sqlite_root`: the directory every `params.path` must lie under (resolved at each
  /// run, so it may be created later).
  explicit sqlite_executor(std::filesystem::path sqlite_root) : root_(std::move(sqlite_root)) {}

  /// See the header comment. `spec.params` is `{"path": string}`; `spec.source` the SQL.
  [[nodiscard]] ports::job_outcome run(const ports::job_spec& spec, ports::result_writer& out,
                                       const ports::progress_fn& progress, ports::cancel_signal& cancel) override;

  /// Rows per `result_writer::append` call.
  static constexpr std::size_t batch_rows = 1024;

 private:
  std::filesystem::path root_;
};

}  // namespace atrium::connectors_adapter
