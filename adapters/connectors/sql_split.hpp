#pragma once
/// Splitting a SQL text into statements without a server, the way psql does: at the `;`
/// outside quotes, `E''` strings, dollar quotes, quoted identifiers, comments and
/// parentheses (PostgreSQL's lexical rules with standard conforming strings). The job
/// executors use it to tell which statement's rows are the result table while the
/// rows stream (postgres_executor.hpp; sqlite_executor.hpp for statements SQLite cannot
/// compile ahead).

#include <string_view>
#include <vector>

namespace atrium::connectors_adapter {

/// One statement of a SQL text.
struct sql_statement {
  std::string_view text;  ///< the statement without its `;` (a view into the text)
  /// False when the leading keyword says the statement returns no rows (ABORT, ALTER,
  /// ANALYZE, ATTACH, BEGIN, CHECKPOINT, CLOSE, CLUSTER, COMMENT, COMMIT, CREATE, DEALLOCATE,
  /// DECLARE, DELETE, DETACH, DISCARD, DO, DROP, END, GRANT, IMPORT, INSERT, LISTEN, LOAD, LOCK,
  /// MERGE, MOVE, NOTIFY, PREPARE, REASSIGN, REFRESH, REINDEX, RELEASE, REPLACE, RESET, REVOKE,
  /// ROLLBACK, SAVEPOINT, SECURITY, SET, START, TRUNCATE, UNLISTEN, UPDATE, VACUUM) and
  /// no RETURNING word appears; true otherwise (SELECT, WITH, VALUES, TABLE, SHOW,
  /// EXPLAIN, FETCH, CALL, EXECUTE, PRAGMA, and anything unknown).
  bool may_return_rows = true;
};

/// The statements of `sql`, in order; those holding only blanks and comments are left
/// out. Not understood: `BEGIN ATOMIC … END` bodies and SQLite trigger bodies (their
/// inner `;` split them), SQLite's `[…]` and backquoted identifiers (a `;` inside them
/// splits). Never throws but for allocation.
[[nodiscard]] std::vector<sql_statement> split_sql(std::string_view sql);

}  // namespace atrium::connectors_adapter
