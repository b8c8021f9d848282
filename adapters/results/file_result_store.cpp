#include "adapters/results/file_result_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <system_error>
#include <utility>

#include "adapters/results/result_format.hpp"

namespace atrium::results_adapter {

namespace fs = std::filesystem;
using ports::result_column;
using ports::result_info;
using ports::result_limits;
using ports::row_batch;

namespace {

constexpr std::string_view k_tmp_prefix = ".tmp-";
constexpr std::size_t k_flush_bytes = 1 << 20;  // rows buffered before a write(2)
constexpr int k_format = 1;

// --- small POSIX helpers ------------------------------------------------------------

/// An owned file descriptor, closed on destruction.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::unexpected<error> io_error(std::string_view what, const fs::path& path, int err = errno) {
  return fail(errc::unavailable, std::string(what) + " " + path.string() + ": " + std::strerror(err),
              {{"path", path.string()}, {"errno", err}});
}

std::unexpected<error> corrupt(std::string_view what) {
  return fail(errc::unavailable, "result store: corrupt result (" + std::string(what) + ")");
}

result<void> write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", path);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

result<void> sync_fd(int fd, const fs::path& path) {
  if (::fsync(fd) != 0) return io_error("cannot fsync", path);
  return {};
}

result<void> sync_dir(const fs::path& dir) {
  unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open", dir);
  return sync_fd(fd.get(), dir);
}

/// Reads up to `size` bytes at `offset` (fewer only at the end of the file).
result<std::size_t> read_at(int fd, char* out, std::size_t size, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errc::unavailable, std::string("result store: read failed: ") + std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

result<std::uint64_t> file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return fail(errc::unavailable, std::string("result store: fstat: ") + std::strerror(errno));
  return static_cast<std::uint64_t>(st.st_size);
}

std::string random_hex() {
  thread_local std::mt19937_64 gen{(static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
  return buf;
}

/// Removes a directory tree, ignoring errors (the caller has nothing better to do; a
/// leftover `.tmp-*` is removed when the store next opens).
void remove_tree(const fs::path& path) noexcept {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// RFC 3339 UTC with milliseconds, e.g. `2025-01-02T03:04:05.678Z`.
std::string rfc3339(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

/// Moves `temp` (a finished result) to `target` atomically: exchanged with an existing
/// result (which then sits at `temp`, for the caller to remove), or renamed if none.
/// File systems without RENAME_EXCHANGE get a two-step swap through a fresh temp name
/// (readers may see `not_found` for that instant).
result<void> publish(const fs::path& temp, const fs::path& target) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) return {};
    if (errno == ENOENT) {
      if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) return {};
      if (errno == EEXIST) continue;  // another writer of this job committed meanwhile
      return io_error("cannot rename to", target);
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return io_error("cannot exchange with", target);
    fs::path aside = target.parent_path() / (std::string(k_tmp_prefix) + "old-" + random_hex());
    if (::rename(target.c_str(), aside.c_str()) != 0 && errno != ENOENT) return io_error("cannot move", target);
    if (::rename(temp.c_str(), target.c_str()) != 0) return io_error("cannot rename to", target);
    remove_tree(aside);
    return {};
  }
  return fail(errc::unavailable, "result store: cannot publish " + target.string() + " (concurrent commits)");
}

// --- the writer ---------------------------------------------------------------------

class file_writer final : public ports::result_writer {
 public:
  file_writer(fs::path root, fs::path target, fs::path temp, unique_fd rows, unique_fd log, const result_limits& limits)
      : root_(std::move(root)),
        target_(std::move(target)),
        temp_(std::move(temp)),
        rows_fd_(std::move(rows)),
        log_fd_(std::move(log)),
        limits_(limits) {
    buf_.reserve(k_flush_bytes + 64 * 1024);
  }
  file_writer(const file_writer&) = delete;
  file_writer& operator=(const file_writer&) = delete;
  ~file_writer() override {
    if (!committed_) {
      rows_fd_.reset();
      log_fd_.reset();
      remove_tree(temp_);
    }
  }

  result<void> begin(const std::vector<result_column>& columns) override {
    if (auto ok = usable(); !ok) return ok;
    if (began_) return fail(errc::failed_precondition, "result writer: begin called twice");
    columns_ = columns;
    began_ = true;
    return {};
  }

  result<std::size_t> append(const row_batch& batch) override;

  [[nodiscard]] bool full() const override { return full_; }
  result<void> append_log(std::string_view bytes) override;
  [[nodiscard]] std::uint64_t rows() const override { return rows_; }
  [[nodiscard]] std::uint64_t bytes() const override { return bytes_; }
  result<void> commit() override;

 private:
  result<void> usable() const {
    if (broken_) return fail(errc::unavailable, "result writer: an earlier write failed");
    if (committed_) return fail(errc::failed_precondition, "result writer: already committed");
    return {};
  }
  result<void> flush_rows();
  result<void> write_files();
  [[nodiscard]] nlohmann::json meta() const;

  fs::path root_, target_, temp_;
  unique_fd rows_fd_, log_fd_;
  result_limits limits_;
  std::vector<result_column> columns_;
  bool began_ = false, full_ = false, committed_ = false, broken_ = false;
  std::uint64_t rows_ = 0, bytes_ = 0;
  std::string buf_;                   // encoded rows not yet written
  std::uint64_t written_ = 0;         // bytes of `rows` already written
  std::vector<std::uint64_t> index_;  // offset of row k * index_every
  std::uint64_t log_kept_ = 0, log_dropped_ = 0;
  bool log_ends_newline_ = true;
  std::int64_t committed_ms_ = 0;
};

result<std::size_t> file_writer::append(const row_batch& batch) {
  if (auto ok = usable(); !ok) return std::unexpected(ok.error());
  if (!began_) return fail(errc::failed_precondition, "result writer: append before begin");
  if (batch.columns != columns_.size() || (batch.columns != 0 && batch.cells.size() % batch.columns != 0)) {
    return fail(errc::invalid_argument, "result writer: batch has the wrong column count",
                {{"expected", columns_.size()}, {"got", batch.columns}});
  }
  const std::size_t n = batch.rows(), cols = batch.columns;
  std::size_t kept = 0;
  for (; kept < n && !full_; ++kept) {
    const auto* row = batch.cells.data() + kept * cols;
    std::uint64_t row_bytes = 0;
    for (std::size_t c = 0; c < cols; ++c) row_bytes += row[c] ? row[c]->size() : 0;
    if (rows_ >= limits_.max_rows || row_bytes > limits_.max_bytes - std::min(bytes_, limits_.max_bytes)) {
      full_ = true;
      break;
    }
    if (rows_ % index_every == 0) index_.push_back(written_ + buf_.size());
    for (std::size_t c = 0; c < cols; ++c) append_cell(buf_, row[c]);
    ++rows_;
    bytes_ += row_bytes;
    if (buf_.size() >= k_flush_bytes) {
      if (auto ok = flush_rows(); !ok) return std::unexpected(ok.error());
    }
  }
  return kept;
}

result<void> file_writer::flush_rows() {
  if (buf_.empty()) return {};
  if (auto ok = write_all(rows_fd_.get(), buf_, temp_ / "rows"); !ok) {
    broken_ = true;
    return ok;
  }
  written_ += buf_.size();
  buf_.clear();
  return {};
}

result<void> file_writer::append_log(std::string_view bytes) {
  if (auto ok = usable(); !ok) return ok;
  if (bytes.empty()) return {};
  std::size_t take = 0;
  if (log_dropped_ == 0) {
    take = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), limits_.max_log_bytes - log_kept_));
    // Cut at a UTF-8 character boundary, so valid text stays valid.
    if (take < bytes.size()) {
      while (take > 0 && (static_cast<unsigned char>(bytes[take]) & 0xc0) == 0x80) --take;
    }
  }
  if (take > 0) {
    if (auto ok = write_all(log_fd_.get(), bytes.substr(0, take), temp_ / "log"); !ok) {
      broken_ = true;
      return ok;
    }
    log_kept_ += take;
    log_ends_newline_ = bytes[take - 1] == '\n';
  }
  log_dropped_ += bytes.size() - take;
  return {};
}

nlohmann::json file_writer::meta() const {
  return {{"format", k_format},
          {"has_table", began_},
          {"columns", columns_},
          {"total_rows", rows_},
          {"bytes", bytes_},
          {"truncated", full_},
          {"log_bytes", log_kept_},
          {"log_dropped", log_dropped_},
          {"index_every", index_every},
          {"committed_at", rfc3339(committed_ms_)},
          {"committed_at_ms", committed_ms_}};
}

result<void> file_writer::write_files() {
  if (auto ok = flush_rows(); !ok) return ok;
  if (log_dropped_ > 0) {
    std::string line = log_ends_newline_ ? "" : "\n";
    line += "[\xe2\x80\xa6 " + std::to_string(log_dropped_) + " bytes dropped]\n";
    if (auto ok = write_all(log_fd_.get(), line, temp_ / "log"); !ok) return ok;
    log_kept_ += line.size();
  }
  std::string index;
  index.reserve(index_.size() * 8);
  for (std::uint64_t off : index_) {
    for (int i = 0; i < 8; ++i) index += static_cast<char>((off >> (8 * i)) & 0xff);
  }
  committed_ms_ = unix_ms(std::chrono::system_clock::now());
  std::string meta_text = meta().dump();
  meta_text += '\n';
  for (auto& [name, text] : {std::pair{"index", &index}, std::pair{"meta.json", &meta_text}}) {
    fs::path path = temp_ / name;
    unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return io_error("cannot create", path);
    if (auto ok = write_all(fd.get(), *text, path); !ok) return ok;
    if (auto ok = sync_fd(fd.get(), path); !ok) return ok;
  }
  if (auto ok = sync_fd(rows_fd_.get(), temp_ / "rows"); !ok) return ok;
  if (auto ok = sync_fd(log_fd_.get(), temp_ / "log"); !ok) return ok;
  return sync_dir(temp_);
}

result<void> file_writer::commit() {
  if (auto ok = usable(); !ok) return ok;
  auto done = write_files();
  if (done) done = publish(temp_, target_);
  if (done) done = sync_dir(root_);
  if (!done) {
    broken_ = true;
    return done;
  }
  committed_ = true;
  rows_fd_.reset();
  log_fd_.reset();
  remove_tree(temp_);  // the replaced result, if there was one
  return {};
}

// --- the reader ---------------------------------------------------------------------

/// What a reader opened: the result's info, its index, and handles on its files (kept
/// open, so the result stays readable if it is replaced or removed meanwhile).
struct opened_result {
  result_info info;
  std::vector<json_kind> kinds;
  std::vector<std::uint64_t> index;
  unique_fd rows, log;
  std::uint64_t rows_size = 0;
};

/// Decodes cells from a `rows` file, buffered, from a byte offset on.
class cell_cursor {
 public:
  cell_cursor(int fd, std::uint64_t offset, std::uint64_t end) : fd_(fd), file_pos_(offset), file_end_(end) {
    buf_.resize(64 * 1024);
  }

  /// The next cell (a view valid until the next call), nullopt for NULL.
  result<std::optional<std::string_view>> next() {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(10, available() + (file_end_ - file_pos_)));
    if (auto ok = fill(want); !ok) return std::unexpected(ok.error());
    const char* p = buf_.data() + begin_;
    std::uint64_t h = 0;
    if (!decode_varint(&p, buf_.data() + end_, &h)) return corrupt("bad cell header");
    begin_ = static_cast<std::size_t>(p - buf_.data());
    if (h == 0) return std::optional<std::string_view>{};
    std::uint64_t len = h - 1;
    if (len > available() + (file_end_ - file_pos_)) return corrupt("cell past the end of the rows file");
    if (auto ok = fill(static_cast<std::size_t>(len)); !ok) return std::unexpected(ok.error());
    std::string_view cell(buf_.data() + begin_, static_cast<std::size_t>(len));
    begin_ += static_cast<std::size_t>(len);
    return std::optional<std::string_view>{cell};
  }

 private:
  [[nodiscard]] std::size_t available() const { return end_ - begin_; }

  /// Makes `need` bytes available contiguously at `begin_` (the caller checked that the
  /// file holds them).
  result<void> fill(std::size_t need) {
    if (available() >= need) return {};
    std::memmove(buf_.data(), buf_.data() + begin_, available());
    end_ -= begin_;
    begin_ = 0;
    if (buf_.size() < need) buf_.resize(std::max(need, buf_.size() * 2));
    while (end_ < need) {
      auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size() - end_, file_end_ - file_pos_));
      if (want == 0) return corrupt("rows file ends early");
      auto got = read_at(fd_, buf_.data() + end_, want, file_pos_);
      if (!got) return std::unexpected(got.error());
      if (*got == 0) return corrupt("rows file ends early");
      end_ += *got;
      file_pos_ += *got;
    }
    return {};
  }

  int fd_;
  std::uint64_t file_pos_, file_end_;
  std::string buf_;
  std::size_t begin_ = 0, end_ = 0;
};

/// The CSV rendering of an opened result, produced chunk by chunk.
class csv_source final : public ports::chunk_source {
 public:
  csv_source(std::shared_ptr<const opened_result> r, std::size_t chunk_bytes)
      : r_(std::move(r)), chunk_(std::max<std::size_t>(chunk_bytes, 1)), cursor_(r_->rows.get(), 0, r_->rows_size) {}

  result<bool> next(std::string& out) override {
    out.clear();
    const auto& info = r_->info;
    if (!header_done_) {
      for (std::size_t c = 0; c < info.columns.size(); ++c) {
        if (c > 0) out += ',';
        append_csv_field(out, info.columns[c].name);
      }
      out += "\r\n";
      header_done_ = true;
    }
    const std::size_t cols = info.columns.size();
    while (row_ < info.total_rows && out.size() < chunk_) {
      for (std::size_t c = 0; c < cols; ++c) {
        auto cell = cursor_.next();
        if (!cell) return std::unexpected(cell.error());
        if (c > 0) out += ',';
        if (*cell) append_csv_field(out, **cell);
      }
      out += "\r\n";
      ++row_;
    }
    return !out.empty();
  }

 private:
  std::shared_ptr<const opened_result> r_;
  std::size_t chunk_;
  cell_cursor cursor_;
  bool header_done_ = false;
  std::uint64_t row_ = 0;
};

class file_reader final : public ports::result_reader {
 public:
  explicit file_reader(std::shared_ptr<const opened_result> r) : r_(std::move(r)) {}

  [[nodiscard]] const result_info& info() const override { return r_->info; }

  result<std::vector<nlohmann::json>> rows(std::uint64_t offset, std::size_t limit) override {
    std::vector<nlohmann::json> out;
    const auto& info = r_->info;
    if (!info.has_table || offset >= info.total_rows || limit == 0) return out;
    const std::uint64_t count = std::min<std::uint64_t>(limit, info.total_rows - offset);
    const std::size_t cols = info.columns.size();
    cell_cursor cursor(r_->rows.get(), r_->index[offset / index_every], r_->rows_size);
    for (std::uint64_t skip = (offset % index_every) * cols; skip > 0; --skip) {
      if (auto cell = cursor.next(); !cell) return std::unexpected(cell.error());
    }
    out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, 100000)));
    for (std::uint64_t r = 0; r < count; ++r) {
      nlohmann::json row = nlohmann::json::array();
      row.get_ref<nlohmann::json::array_t&>().reserve(cols);
      for (std::size_t c = 0; c < cols; ++c) {
        auto cell = cursor.next();
        if (!cell) return std::unexpected(cell.error());
        row.push_back(*cell ? render_json(r_->kinds[c], **cell) : nlohmann::json(nullptr));
      }
      out.push_back(std::move(row));
    }
    return out;
  }

  result<std::unique_ptr<ports::chunk_source>> csv(std::size_t chunk_bytes) override {
    if (!r_->info.has_table) return fail(errc::failed_precondition, "the job's result has no table");
    return std::make_unique<csv_source>(r_, chunk_bytes);
  }

  result<std::string> log(std::size_t max_bytes) override {
    std::string out(static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, r_->info.log_bytes)), '\0');
    auto got = read_at(r_->log.get(), out.data(), out.size(), 0);
    if (!got) return std::unexpected(got.error());
    out.resize(*got);
    return out;
  }

 private:
  std::shared_ptr<const opened_result> r_;
};

/// Opens `name` under the directory `dir_fd`; ENOENT is reported as `not_found` (the
/// result was replaced or removed between opening the directory and the file).
result<unique_fd> open_in(int dir_fd, const char* name) {
  unique_fd fd(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC));
  if (fd.valid()) return fd;
  if (errno == ENOENT) return fail(errc::not_found, std::string("result file vanished: ") + name);
  return fail(errc::unavailable, std::string("result store: cannot open ") + name + ": " + std::strerror(errno));
}

result<std::string> read_whole(int fd) {
  auto size = file_size(fd);
  if (!size) return std::unexpected(size.error());
  if (*size > (64u << 20)) return corrupt("oversized file");
  std::string text(static_cast<std::size_t>(*size), '\0');
  auto got = read_at(fd, text.data(), text.size(), 0);
  if (!got) return std::unexpected(got.error());
  text.resize(*got);
  return text;
}

result<void> parse_meta(const std::string& text, opened_result& r) {
  try {
    auto meta = nlohmann::json::parse(text);
    if (meta.at("format").get<int>() != k_format) return corrupt("unknown format");
    if (meta.at("index_every").get<std::uint64_t>() != index_every) return corrupt("unknown index spacing");
    auto& info = r.info;
    info.has_table = meta.at("has_table").get<bool>();
    info.columns = meta.at("columns").get<std::vector<result_column>>();
    info.total_rows = meta.at("total_rows").get<std::uint64_t>();
    info.bytes = meta.at("bytes").get<std::uint64_t>();
    info.truncated = meta.at("truncated").get<bool>();
    info.log_bytes = meta.at("log_bytes").get<std::uint64_t>();
    info.committed_at = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(meta.at("committed_at_ms").get<std::int64_t>()));
  } catch (const nlohmann::json::exception& e) {
    return corrupt(std::string("meta.json: ") + e.what());
  }
  for (const auto& col : r.info.columns) r.kinds.push_back(json_kind_of(col.type));
  return {};
}

result<void> load_index(int fd, opened_result& r) {
  auto text = read_whole(fd);
  if (!text) return std::unexpected(text.error());
  const std::uint64_t entries = (r.info.total_rows + index_every - 1) / index_every;
  if (text->size() != entries * 8) return corrupt("index size");
  r.index.resize(static_cast<std::size_t>(entries));
  for (std::size_t e = 0; e < r.index.size(); ++e) {
    std::uint64_t off = 0;
    for (int i = 0; i < 8; ++i)
      off |= static_cast<std::uint64_t>(static_cast<unsigned char>((*text)[e * 8 + i])) << (8 * i);
    if (off > r.rows_size || (e > 0 && off < r.index[e - 1])) return corrupt("index entry");
    r.index[e] = off;
  }
  return {};
}

/// Opens the committed result in the directory `dir_fd`.
result<std::shared_ptr<const opened_result>> load(int dir_fd) {
  auto r = std::make_shared<opened_result>();
  auto meta_fd = open_in(dir_fd, "meta.json");
  if (!meta_fd) return std::unexpected(meta_fd.error());
  auto meta_text = read_whole(meta_fd->get());
  if (!meta_text) return std::unexpected(meta_text.error());
  if (auto ok = parse_meta(*meta_text, *r); !ok) return std::unexpected(ok.error());
  auto rows = open_in(dir_fd, "rows");
  if (!rows) return std::unexpected(rows.error());
  auto log = open_in(dir_fd, "log");
  if (!log) return std::unexpected(log.error());
  auto index = open_in(dir_fd, "index");
  if (!index) return std::unexpected(index.error());
  r->rows = std::move(*rows);
  r->log = std::move(*log);
  auto size = file_size(r->rows.get());
  if (!size) return std::unexpected(size.error());
  r->rows_size = *size;
  if (auto ok = load_index(index->get(), *r); !ok) return std::unexpected(ok.error());
  return r;
}

bool is_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

result<std::string> job_dir_name(std::string_view id) {
  bool ok = id.size() == 36;
  for (std::size_t i = 0; ok && i < id.size(); ++i) {
    bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    ok = dash_here ? id[i] == '-' : is_hex(id[i]);
  }
  if (!ok) return fail(errc::invalid_argument, "a job id must be a UUID", {{"field", "job_id"}});
  std::string name(id);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

result<std::unique_ptr<file_result_store>> file_result_store::open_dir(const fs::path& root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return io_error("cannot create", root, ec.value());
  fs::directory_iterator it(root, ec), end;
  if (ec) return io_error("cannot list", root, ec.value());
  for (; it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with(k_tmp_prefix)) remove_tree(it->path());
  }
  if (ec) return io_error("cannot list", root, ec.value());
  return std::unique_ptr<file_result_store>(new file_result_store(root));
}

result<std::unique_ptr<ports::result_writer>> file_result_store::create(std::string_view job_id,
                                                                        const result_limits& limits) {
  auto name = job_dir_name(job_id);
  if (!name) return std::unexpected(name.error());
  fs::path temp;
  for (int attempt = 0;; ++attempt) {
    temp = root_ / (std::string(k_tmp_prefix) + *name + "-" + random_hex());
    if (::mkdir(temp.c_str(), 0700) == 0) break;
    if (errno != EEXIST || attempt == 8) return io_error("cannot create", temp);
  }
  auto open_new = [&](const char* file) {
    return unique_fd(::open((temp / file).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  };
  unique_fd rows = open_new("rows"), log = open_new("log");
  if (!rows.valid() || !log.valid()) {
    auto err = io_error("cannot create files in", temp);
    remove_tree(temp);
    return err;
  }
  return std::make_unique<file_writer>(root_, root_ / *name, temp, std::move(rows), std::move(log), limits);
}

result<std::unique_ptr<ports::result_reader>> file_result_store::open(std::string_view job_id) const {
  auto name = job_dir_name(job_id);
  if (!name) return std::unexpected(name.error());
  const fs::path dir = root_ / *name;
  // A commit or remove can swap the directory between opening it and its files; a
  // fresh look then finds the new result (or none).
  for (int attempt = 0; attempt < 4; ++attempt) {
    unique_fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd.valid()) {
      if (errno == ENOENT) return fail(errc::not_found, "no result for this job");
      return io_error("cannot open", dir);
    }
    auto r = load(dir_fd.get());
    if (r) return std::make_unique<file_reader>(std::move(*r));
    if (r.error().code != errc::not_found) return std::unexpected(r.error());
  }
  return fail(errc::not_found, "no result for this job");
}

result<void> file_result_store::remove(std::string_view job_id) {
  auto name = job_dir_name(job_id);
  if (!name) return std::unexpected(name.error());
  const fs::path dir = root_ / *name;
  // Move it out of sight first (atomic), so readers see it gone at once.
  const fs::path aside = root_ / (std::string(k_tmp_prefix) + *name + "-" + random_hex());
  if (::rename(dir.c_str(), aside.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return io_error("cannot remove", dir);
  }
  std::error_code ec;
  fs::remove_all(aside, ec);
  if (ec) return io_error("cannot remove", aside, ec.value());
  return {};
}

result<std::vector<std::string>> file_result_store::committed_before(std::chrono::system_clock::time_point before,
                                                                     std::size_t limit) const {
  std::vector<std::string> out;
  const std::int64_t before_ms = unix_ms(before);
  std::error_code ec;
  fs::directory_iterator it(root_, ec), end;
  if (ec) return io_error("cannot list", root_, ec.value());
  for (; it != end && out.size() < limit; it.increment(ec)) {
    std::string name = it->path().filename().string();
    auto valid = job_dir_name(name);
    if (!valid || *valid != name) continue;
    unique_fd fd(::open((it->path() / "meta.json").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;  // removed or replaced meanwhile
    auto text = read_whole(fd.get());
    if (!text) continue;
    try {
      auto meta = nlohmann::json::parse(*text);
      if (meta.at("committed_at_ms").get<std::int64_t>() < before_ms) out.push_back(name);
    } catch (const nlohmann::json::exception&) {
      continue;  // unreadable meta: open() reports it; expiry leaves it alone
    }
  }
  if (ec) return io_error("cannot list", root_, ec.value());
  return out;
}

}  // namespace atrium::results_adapter
