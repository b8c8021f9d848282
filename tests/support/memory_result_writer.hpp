#pragma once
/// Test support: a `result_writer` (ports/result_store.hpp) that keeps everything in
/// memory, honoring `result_limits` (max_rows, max_bytes of cell text, max_log_bytes with
/// a closing line saying how much of the log was dropped), for executor tests.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ports/result_store.hpp"

namespace atrium::test {

/// The writer; one per test run. `commit` only counts calls (the executor must make none).
class memory_result_writer final : public ports::result_writer {
 public:
  /// A writer bounded by `limits` (row, cell-byte and log-byte bounds as the port describes).
  explicit memory_result_writer(ports::result_limits limits = {}) : limits_(limits) {}

  result<void> begin(const std::vector<ports::result_column>& columns) override {
    if (begun_) return fail(errc::failed_precondition, "begin called twice");
    begun_ = true;
    columns_ = columns;
    return {};
  }

  result<std::size_t> append(const ports::row_batch& rows) override {
    if (!begun_) return fail(errc::failed_precondition, "append before begin");
    if (rows.columns != columns_.size()) return fail(errc::invalid_argument, "wrong column count");
    std::size_t kept = 0;
    for (std::size_t r = 0; r < rows.rows() && !full_; ++r) {
      std::uint64_t row_bytes = 0;
      for (std::size_t c = 0; c < rows.columns; ++c) {
        const auto& cell = rows.cells[r * rows.columns + c];
        if (cell) row_bytes += cell->size();
      }
      if (cells_.size() / std::max<std::size_t>(1, columns_.size()) >= limits_.max_rows ||
          bytes_ + row_bytes > limits_.max_bytes) {
        full_ = true;
        break;
      }
      cells_.insert(cells_.end(), rows.cells.begin() + static_cast<std::ptrdiff_t>(r * rows.columns),
                    rows.cells.begin() + static_cast<std::ptrdiff_t>((r + 1) * rows.columns));
      bytes_ += row_bytes;
      ++rows_;
      ++kept;
    }
    ++appends_;
    return kept;
  }

  [[nodiscard]] bool full() const override { return full_; }

  result<void> append_log(std::string_view bytes) override {
    ++log_calls_;
    const std::uint64_t room = limits_.max_log_bytes > log_.size() ? limits_.max_log_bytes - log_.size() : 0;
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size()));
    log_.append(bytes.substr(0, take));
    log_dropped_ += bytes.size() - take;
    return {};
  }

  [[nodiscard]] std::uint64_t rows() const override { return rows_; }
  [[nodiscard]] std::uint64_t bytes() const override { return bytes_; }

  result<void> commit() override {
    ++commits_;
    return {};
  }

  // --- what the test inspects ---
  /// True once `begin` was called.
  [[nodiscard]] bool begun() const { return begun_; }
  /// The columns given to `begin`.
  [[nodiscard]] const std::vector<ports::result_column>& columns() const { return columns_; }
  /// Row r, column c (nullopt: NULL).
  [[nodiscard]] const std::optional<std::string>& cell(std::size_t r, std::size_t c) const {
    return cells_.at(r * columns_.size() + c);
  }
  /// The log as committed (with the note of dropped bytes, if any).
  [[nodiscard]] std::string log() const {
    if (log_dropped_ == 0) return log_;
    return log_ + "\n[" + std::to_string(log_dropped_) + " bytes of log dropped]\n";
  }
  /// Calls of `append_log`, `append` and `commit` so far.
  [[nodiscard]] std::uint64_t log_calls() const { return log_calls_; }
  [[nodiscard]] std::uint64_t appends() const { return appends_; }
  [[nodiscard]] int commits() const { return commits_; }

 private:
  ports::result_limits limits_;
  bool begun_ = false;
  bool full_ = false;
  std::vector<ports::result_column> columns_;
  std::vector<std::optional<std::string>> cells_;
  std::uint64_t rows_ = 0, bytes_ = 0, appends_ = 0, log_calls_ = 0, log_dropped_ = 0;
  std::string log_;
  int commits_ = 0;
};

}  // namespace atrium::test
