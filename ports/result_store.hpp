#pragma once
/// Port: the bulk output of jobs (result tables and captured logs), kept outside the
/// event log. Events say that a job succeeded and how big its result is; the rows live
/// here. The embedded adapter keeps files under `DATA_DIR/results`
/// (adapters/results); an object store can implement the same port later.
///
///   executor ──begin/append/append_log──▶ result_writer ──commit──▶ readable result
///   HTTP adapter ──open──▶ result_reader ──rows(offset, limit) | csv chunks | log
///   expiry sweep ──committed_before(t)──▶ remove(job)
///
/// Nothing here assumes the writer runs inside atriumd: a remote worker (issue 16)
/// writes through the same interface.
///
/// Values. A result is a table of typed columns (`result_column::type`, below); each
/// cell is SQL NULL or the value's text form, as the database prints it (PostgreSQL's
/// text output, SQLite's `sqlite3_column_text`). The store renders cells by type: JSON
/// numbers for `int`/`float`/`numeric` whose text is a JSON number (else a string, e.g.
/// `NaN`), JSON booleans for `bool` (`t`/`true`/`1` are true), strings otherwise, and
/// `null` for NULL; CSV per RFC 4180 (NULL as an empty field).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/error.hpp"

namespace atrium::ports {

/// One column of a result. `type` is one of `bool`, `int`, `float`, `numeric`, `text`,
/// `bytes`, `date`, `time`, `timestamp`, `timestamptz`, `json`, `unknown` (each
/// executor documents how its database's types map onto these).
struct result_column {
  std::string name;
  std::string type;
  friend bool operator==(const result_column&, const result_column&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(result_column, name, type)

/// A batch of rows, row-major: `cells.size()` is a multiple of the column count; cell
/// `r * columns + c` is row r, column c; nullopt is SQL NULL.
struct row_batch {
  std::size_t columns = 0;
  std::vector<std::optional<std::string>> cells;
  [[nodiscard]] std::size_t rows() const { return columns == 0 ? 0 : cells.size() / columns; }
  void clear() { cells.clear(); }
};

/// Bounds of one result. Past either bound the writer keeps nothing more and reports
/// `full()`; the job then succeeds with `truncated: true`.
struct result_limits {
  std::uint64_t max_rows = 1000000;          ///< rows kept at most
  std::uint64_t max_bytes = 1ULL << 30;      ///< bytes of cell text kept at most (1 GiB)
  std::uint64_t max_log_bytes = 1ULL << 20;  ///< bytes of captured log kept at most (1 MiB)
};

/// Writes one job attempt's result. Used by one thread at a time (the executor's);
/// the destructor of a writer that was not committed discards what it wrote.
class result_writer {
 public:
  virtual ~result_writer() = default;
  /// Sets the columns; must be called once, before `append` (a script without
  /// `result.csv` calls it never and the result has no table). Errors: `unavailable`
  /// (I/O), `failed_precondition` (called twice).
  [[nodiscard]] virtual result<void> begin(const std::vector<result_column>& columns) = 0;
  /// Appends `rows` (its `columns` must equal the column count given to `begin`).
  /// Returns how many rows were kept: fewer than given once a bound is reached, after
  /// which `full()` is true and further appends keep nothing. Errors: `unavailable`,
  /// `invalid_argument` (wrong column count), `failed_precondition` (before `begin`).
  [[nodiscard]] virtual result<std::size_t> append(const row_batch& rows) = 0;
  /// True once a row or byte bound was reached (the result is truncated).
  [[nodiscard]] virtual bool full() const = 0;
  /// Appends captured output (stdout/stderr of a script, notices of a query) to the
  /// job's log; past `max_log_bytes` the rest is dropped and the log ends with a line
  /// saying how much was dropped. Errors: `unavailable`.
  [[nodiscard]] virtual result<void> append_log(std::string_view bytes) = 0;
  /// Rows and bytes of cell text kept so far.
  [[nodiscard]] virtual std::uint64_t rows() const = 0;
  [[nodiscard]] virtual std::uint64_t bytes() const = 0;
  /// Makes the result and log durable and readable (replacing any earlier attempt's).
  /// Called for every outcome (a failed script's log is read too). Errors: `unavailable`.
  [[nodiscard]] virtual result<void> commit() = 0;
};

/// What is known of a committed result.
struct result_info {
  bool has_table = false;              ///< `begin` was called
  std::vector<result_column> columns;  ///< empty without a table
  std::uint64_t total_rows = 0;
  std::uint64_t bytes = 0;  ///< bytes of cell text
  bool truncated = false;
  std::uint64_t log_bytes = 0;
  std::chrono::system_clock::time_point committed_at;
};

/// Pulls a CSV rendering chunk by chunk (for a streamed HTTP response).
class chunk_source {
 public:
  virtual ~chunk_source() = default;
  /// Replaces `out` with the next chunk (about the requested chunk size, never empty)
  /// and returns true; returns false at the end. Errors: `unavailable`.
  [[nodiscard]] virtual result<bool> next(std::string& out) = 0;
};

/// Reads one committed result. Thread-compatible (one reader per request).
class result_reader {
 public:
  virtual ~result_reader() = default;
  [[nodiscard]] virtual const result_info& info() const = 0;
  /// Rows [offset, offset + limit) as JSON arrays rendered by column type (see above);
  /// fewer at the end, none past it. Cost: O(limit) plus a seek, not O(offset).
  /// Errors: `unavailable`.
  [[nodiscard]] virtual result<std::vector<nlohmann::json>> rows(std::uint64_t offset, std::size_t limit) = 0;
  /// The whole table as RFC 4180 CSV (a header line of column names, CRLF line ends),
  /// produced lazily in chunks of about `chunk_bytes`. Errors: `failed_precondition`
  /// (no table), `unavailable`.
  [[nodiscard]] virtual result<std::unique_ptr<chunk_source>> csv(std::size_t chunk_bytes = 64 * 1024) = 0;
  /// The captured log, at most `max_bytes` from its start. Errors: `unavailable`.
  [[nodiscard]] virtual result<std::string> log(std::size_t max_bytes) = 0;
};

/// The store. Thread-safe.
class result_store {
 public:
  virtual ~result_store() = default;
  /// A writer for `job_id`'s result (a UUID; anything else is `invalid_argument`). An
  /// uncommitted earlier writer's data is discarded; a committed result stays readable
  /// until the new one commits. Errors: `invalid_argument`, `unavailable`.
  [[nodiscard]] virtual result<std::unique_ptr<result_writer>> create(std::string_view job_id,
                                                                      const result_limits& limits) = 0;
  /// The committed result of `job_id`. Errors: `not_found` (none, or removed),
  /// `invalid_argument` (not a UUID), `unavailable`.
  [[nodiscard]] virtual result<std::unique_ptr<result_reader>> open(std::string_view job_id) const = 0;
  /// Deletes `job_id`'s result and log; removing an absent one succeeds.
  /// Errors: `invalid_argument`, `unavailable`.
  [[nodiscard]] virtual result<void> remove(std::string_view job_id) = 0;
  /// Job ids whose result was committed before `before` (for expiry), at most `limit`.
  /// Errors: `unavailable`.
  [[nodiscard]] virtual result<std::vector<std::string>> committed_before(std::chrono::system_clock::time_point before,
                                                                          std::size_t limit) const = 0;
};

}  // namespace atrium::ports
