#pragma once
/// The embedded result store: each job's result table and log as files under one root
/// directory (atriumd passes `DATA_DIR/results`), implementing ports/result_store.hpp.
///
///   <root>/<job_id>/              the committed result (job_id: a UUID, lowercase)
///     meta.json                   {"format":1,"has_table","columns":[{"name","type"}],
///                                  "total_rows","bytes","truncated","log_bytes",
///                                  "log_dropped","index_every","committed_at" (RFC 3339),
///                                  "committed_at_ms" (Unix ms)}
///     rows                        cells in the encoding of result_format.hpp
///     index                       u64 little-endian byte offsets in `rows` of rows
///                                 0, N, 2N, … (N = index_every = 1024)
///     log                         captured output, at most max_log_bytes, then a line
///                                 `[… N bytes dropped]` if any was dropped
///   <root>/.tmp-<job_id>-<hex>/   a writer's work in progress (or an old result on its
///                                 way out); removed by the writer, or when the store opens
///
///   create ─▶ writer writes into .tmp-…  ─commit─▶ fsync files and dir
///            ─▶ renameat2(RENAME_EXCHANGE) with <job_id>/ (plain rename if none)
///            ─▶ fsync root ─▶ remove the old result, now at .tmp-…
///
/// A committed result stays readable until its replacement commits; a reader opens the
/// directory once and its files through that handle, so a reader keeps seeing the result
/// it opened even if it is replaced or removed meanwhile (Linux keeps unlinked files
/// alive while open). Nothing here assumes it runs inside atriumd.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "ports/result_store.hpp"

namespace atrium::results_adapter {

/// Rows between two entries of a result's `index` file.
inline constexpr std::uint64_t index_every = 1024;

/// The job id as a directory name: `id` lowercased if it is a UUID (36 characters, hex
/// digits in groups 8-4-4-4-12 separated by `-`), else `invalid_argument`. Only such
/// names reach the file system, so no id can escape the root.
[[nodiscard]] result<std::string> job_dir_name(std::string_view id);

/// The file result store (see the header comment). Thread-safe; its writers and readers
/// follow the port's rules (one thread at a time each).
class file_result_store final : public ports::result_store {
 public:
  /// Opens the store at `root`: creates the directory (and parents) if missing and
  /// removes every `.tmp-*` directory left by a writer that never finished. One store
  /// per root at a time (a second one would remove the first one's writers' work).
  /// Errors: `unavailable` (the directory cannot be created or listed).
  [[nodiscard]] static result<std::unique_ptr<file_result_store>> open_dir(const std::filesystem::path& root);

  /// The root directory.
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

  [[nodiscard]] result<std::unique_ptr<ports::result_writer>> create(std::string_view job_id,
                                                                     const ports::result_limits& limits) override;
  [[nodiscard]] result<std::unique_ptr<ports::result_reader>> open(std::string_view job_id) const override;
  [[nodiscard]] result<void> remove(std::string_view job_id) override;
  [[nodiscard]] result<std::vector<std::string>> committed_before(std::chrono::system_clock::time_point before,
                                                                  std::size_t limit) const override;

 private:
  explicit file_result_store(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

}  // namespace atrium::results_adapter
