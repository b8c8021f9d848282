#pragma once
/// Test support: a `result_writer` (ports/result_store.hpp) that keeps everything in
/// memory and honours `max_rows` and `max_bytes` like the real store. A fixture for
/// executor tests, not production code (it holds the whole result).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ports/result_store.hpp"

namespace atrium::test {

class memory_result_writer final : public ports::result_writer {
 public:
  explicit memory_result_writer(ports::result_limits limits = {}, bool keep_cells = true)
      : limits_(limits), keep_cells_(keep_cells) {}

  result<void> begin(const std::vector<ports::result_column>& columns) override {
    if (begun_) return fail(errc::failed_precondition, "begin called twice");
    begun_ = true;
    columns_ = columns;
    return {};
  }

  result<std::size_t> append(const ports::row_batch& rows) override {
    if (!begun_) return fail(errc::failed_precondition, "append before begin");
    if (rows.columns != columns_.size()) return fail(errc::invalid_argument, "wrong column count");
    ++batches_;
    ++appends_;
    std::size_t kept = 0;
    for (std::size_t r = 0; r < rows.rows() && !full_; ++r) {
      std::uint64_t size = 0;
      for (std::size_t c = 0; c < rows.columns; ++c) {
        if (const auto& cell = rows.cells[r * rows.columns + c]) size += cell->size();
      }
      if (rows_ + 1 > limits_.max_rows || bytes_ + size > limits_.max_bytes) {
        full_ = true;
        break;
      }
      if (keep_cells_) {
        for (std::size_t c = 0; c < rows.columns; ++c) cells_.push_back(rows.cells[r * rows.columns + c]);
      }
      ++rows_;
      bytes_ += size;
      ++kept;
      if (rows_ == limits_.max_rows) full_ = true;
    }
    return kept;
  }

  [[nodiscard]] bool full() const override { return full_; }
  /// Keeps at most `max_log_bytes`; `log()` then ends with a note of what was dropped.
  result<void> append_log(std::string_view bytes) override {
    ++log_calls_;
    const std::uint64_t room = limits_.max_log_bytes > log_.size() ? limits_.max_log_bytes - log_.size() : 0;
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size()));
    log_.append(bytes.substr(0, take));
    log_dropped_ += bytes.size() - take;
    return {};
  }
  [[nodiscard]] std::uint64_t rows() const override { return rows_; }
  [[nodiscard]] std::uint64_t bytes() const override { return bytes_; }
  result<void> commit() override {
    committed_ = true;
    ++commits_;
    return {};
  }

  [[nodiscard]] bool begun() const { return begun_; }
  [[nodiscard]] bool committed() const { return committed_; }
  [[nodiscard]] std::size_t batches() const { return batches_; }
  [[nodiscard]] const std::vector<ports::result_column>& columns() const { return columns_; }
  /// The log as committed (with the note of dropped bytes, if any).
  [[nodiscard]] std::string log() const {
    if (log_dropped_ == 0) return log_;
    return log_ + "\n[" + std::to_string(log_dropped_) + " bytes of log dropped]\n";
  }
  /// Calls of `append_log`, `append` and `commit` so far.
  [[nodiscard]] std::uint64_t log_calls() const { return log_calls_; }
  [[nodiscard]] std::uint64_t appends() const { return appends_; }
  [[nodiscard]] int commits() const { return commits_; }
  /// Cell (row, column); nullopt for NULL. Only with `keep_cells`.
  [[nodiscard]] const std::optional<std::string>& cell(std::size_t row, std::size_t column) const {
    return cells_.at(row * columns_.size() + column);
  }

 private:
  ports::result_limits limits_;
  bool keep_cells_ = true;
  bool begun_ = false;
  bool full_ = false;
  bool committed_ = false;
  std::uint64_t appends_ = 0, log_calls_ = 0, log_dropped_ = 0;
  int commits_ = 0;
  std::size_t batches_ = 0;
  std::uint64_t rows_ = 0;
  std::uint64_t bytes_ = 0;
  std::vector<ports::result_column> columns_;
  std::vector<std::optional<std::string>> cells_;
  std::string log_;
};

}  // namespace atrium::test
