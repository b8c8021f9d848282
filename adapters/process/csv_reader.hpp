#pragma once
/// A streaming reader of `result.csv` files (RFC 4180) over Debian's libcsv 3.0.3
/// (`csv.h`, strict mode), turning the bytes into the header's column names and batches
/// of rows for a `result_writer` (ports/result_store.hpp).
///
///   bytes (any chunking) ──feed──▶ libcsv (strict) ──field/record callbacks──▶ header
///                                                                         └──▶ row_batch
///
/// Rules, in RFC 4180's terms (§2):
/// - the first record is the header: one column per field (an empty name becomes
///   `column_<n>`, n from 1); a file with no record has no header and no rows;
/// - records end with CRLF, LF or CR; blank lines are skipped (libcsv reports no record
///   for them), so a one-column table cannot hold a row that is a single NULL;
/// - fields may be quoted (`"a,b"`, `"say ""hi"""`, line breaks inside quotes); spaces are
///   kept as they are (not trimmed); a quote inside an unquoted field, text after a
///   closing quote, or a quote still open at the end is an error;
/// - an unquoted empty field is SQL NULL (nullopt), a quoted empty field `""` is the empty
///   string;
/// - every record must have as many fields as the header ("ragged" records are errors),
///   every field must be valid UTF-8 (RFC 3629), the header has at most `max_columns`
///   fields and no field is longer than `max_field_bytes`.
/// Records are counted from 1 (the header is record 1) in error messages.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"
#include "ports/result_store.hpp"

struct csv_parser;

namespace atrium::process_adapter {

/// Bounds of one CSV file.
struct csv_limits {
  std::size_t max_columns = 4096;             ///< fields of the header at most
  std::size_t max_field_bytes = 16ULL << 20;  ///< bytes of one field at most (16 MiB)
};

/// Streaming RFC 4180 reader (see the file comment). Not thread-safe; one per file.
class csv_reader {
 public:
  explicit csv_reader(csv_limits limits = {});
  ~csv_reader();
  csv_reader(const csv_reader&) = delete;
  csv_reader& operator=(const csv_reader&) = delete;

  /// Parses the next `bytes` of the file (any split, even inside a field or a CRLF):
  /// the header, once complete, is in `header()`, complete rows are appended to `batch()`.
  /// Errors (`invalid_argument`, message saying what and in which record): malformed
  /// quoting, a ragged record, invalid UTF-8, too many columns, a field too long. After
  /// an error the reader stays failed and returns the same error.
  [[nodiscard]] result<void> feed(std::string_view bytes);
  /// Ends the file: completes a last record without a line break. Errors: as `feed`, and
  /// a quoted field left open.
  [[nodiscard]] result<void> finish();

  /// The column names once the header record is complete, else nullopt.
  [[nodiscard]] const std::optional<std::vector<std::string>>& header() const { return header_; }
  /// Complete rows not yet taken: `columns` is the header's size. The caller appends it
  /// to its writer and clears it (`batch().clear()`).
  [[nodiscard]] ports::row_batch& batch() { return batch_; }
  /// Data records completed so far (the header not counted).
  [[nodiscard]] std::size_t rows() const { return rows_; }

 private:
  static void on_field(void* data, std::size_t len, void* self);
  static void on_record(int terminator, void* self);
  void field(const char* data, std::size_t len);
  void record();
  void set_error(std::string message);
  [[nodiscard]] result<void> status() const;

  csv_limits limits_;
  csv_parser* parser_ = nullptr;
  std::optional<std::vector<std::string>> header_;
  std::vector<std::string> header_fields_;
  ports::row_batch batch_;
  std::vector<std::optional<std::string>> current_;  ///< cells of the record being read
  std::size_t fields_in_record_ = 0;                 ///< fields seen in the current record
  std::size_t record_no_ = 1;                        ///< 1-based number of the current record
  std::size_t rows_ = 0;
  std::optional<std::string> error_;
  bool finished_ = false;
};

}  // namespace atrium::process_adapter
