#include "adapters/connectors/sqlite_executor.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "adapters/connectors/sql_split.hpp"
#include "adapters/connectors/sqlite_paths.hpp"

namespace atrium::connectors_adapter {
namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using ports::job_outcome;

/// What the interrupter (called from the dispatcher's thread) may touch. `db` is cleared
/// under `mu` before the connection closes, so a late interrupter never sees a closed
/// handle; `stop` is also polled by the progress handler, which catches an interrupt
/// that came between two statements (sqlite3_step clears sqlite3_interrupt's flag when
/// no statement is active).
struct interrupt_state {
  std::mutex mu;
  sqlite3* db = nullptr;
  std::atomic<bool> stop{false};
};

/// What the authorizer needs: the canonical root.
struct authorizer_context {
  fs::path root;
};

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// ATTACH is allowed for a private temporary database (`""`, `:memory:`) or an absolute
/// path that resolves under the root; a non-literal name (the authorizer then gets NULL),
/// a relative name (SQLite takes it from the working directory) or a URI is denied.
bool attach_allowed(const fs::path& root, const char* name) {
  if (name == nullptr) return false;
  const std::string_view n(name);
  if (n.empty() || n == ":memory:") return true;
  if (n.front() != '/' || lowercase(n.substr(0, 5)) == "file:") return false;
  return resolve_sqlite_path(root, n).has_value();
}

int authorize(void* ctx, int action, const char* arg1, const char* arg2, const char*, const char*) {
  const auto& auth = *static_cast<const authorizer_context*>(ctx);
  switch (action) {
    case SQLITE_ATTACH:
      return attach_allowed(auth.root, arg1) ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_FUNCTION:
      return arg2 != nullptr && lowercase(arg2) == "load_extension" ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_PRAGMA: {
      const auto pragma = arg1 == nullptr ? std::string() : lowercase(arg1);
      return pragma == "temp_store_directory" || pragma == "data_store_directory" ? SQLITE_DENY : SQLITE_OK;
    }
    default:
      return SQLITE_OK;
  }
}

int stop_requested(void* state) { return static_cast<interrupt_state*>(state)->stop.load() ? 1 : 0; }

/// Waits for a lock held by another connection (a writer of the file) in 10 ms steps,
/// for at most 5 s, and not at all once a stop was requested (sqlite3_busy_timeout's
/// sleep would not notice an interrupt).
int wait_for_lock(void* state, int attempts) {
  if (stop_requested(state) != 0 || attempts >= 500) return 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return 1;
}

/// The result type of a declared column type, by SQLite's affinity rules (see header).
std::string type_of_decltype(std::string_view declared) {
  const auto d = lowercase(declared);
  auto has = [&](std::string_view s) { return d.find(s) != std::string::npos; };
  if (has("int")) return "int";
  if (has("char") || has("clob") || has("text")) return "text";
  if (has("blob")) return "bytes";
  if (has("real") || has("floa") || has("doub")) return "float";
  if (has("bool")) return "bool";
  return "numeric";
}

std::string type_of_storage_class(int type) {
  switch (type) {
    case SQLITE_INTEGER:
      return "int";
    case SQLITE_FLOAT:
      return "float";
    case SQLITE_TEXT:
      return "text";
    case SQLITE_BLOB:
      return "bytes";
    default:
      return "unknown";
  }
}

/// Columns of `stmt`; types of undeclared columns from the first non-NULL value of
/// `first`, a batch of its rows, and its per-cell storage classes.
std::vector<ports::result_column> columns_of(sqlite3_stmt* stmt, const std::vector<int>& first_classes) {
  const int n = sqlite3_column_count(stmt);
  std::vector<ports::result_column> cols;
  for (int c = 0; c < n; ++c) {
    ports::result_column col;
    const char* name = sqlite3_column_name(stmt, c);
    col.name = name != nullptr ? name : "";
    if (const char* declared = sqlite3_column_decltype(stmt, c); declared != nullptr && *declared != '\0') {
      col.type = type_of_decltype(declared);
    } else {
      col.type = "unknown";
      for (std::size_t i = static_cast<std::size_t>(c); i < first_classes.size(); i += static_cast<std::size_t>(n)) {
        if (first_classes[i] != SQLITE_NULL) {
          col.type = type_of_storage_class(first_classes[i]);
          break;
        }
      }
    }
    cols.push_back(std::move(col));
  }
  return cols;
}

std::optional<std::string> cell_of(sqlite3_stmt* stmt, int c, int type) {
  if (type == SQLITE_NULL) return std::nullopt;
  if (type == SQLITE_BLOB) {
    const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, c));
    const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (std::size_t i = 0; i < n; ++i) {
      out[2 * i] = digits[p[i] >> 4];
      out[2 * i + 1] = digits[p[i] & 15];
    }
    return out;
  }
  const auto* text = sqlite3_column_text(stmt, c);
  const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text), n);
}

/// The end of the statement that starts at `sql`: just past the first `;` at which
/// the text is a complete statement (sqlite3_complete, which knows trigger bodies), or
/// `end`.
const char* statement_end(const char* sql, const char* end) {
  std::string prefix;
  for (const char* p = sql; p < end; ++p) {
    if (*p != ';') continue;
    prefix.assign(sql, p + 1);
    if (sqlite3_complete(prefix.c_str()) != 0) return p + 1;
  }
  return end;
}

/// True unless no statement in [sql, end) returns rows (see the header). A statement
/// that compiles has rows when it has result columns; one that does not compile yet (it
/// depends on an earlier statement's effect) is judged by its leading keyword
/// (sql_split.hpp). Runs nothing.
bool later_statement_returns_rows(sqlite3* db, const char* sql, const char* end) {
  while (sql < end) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql, static_cast<int>(end - sql), &stmt, &tail);
    if (rc != SQLITE_OK) {
      tail = statement_end(sql, end);
      for (const auto& s : split_sql(std::string_view(sql, static_cast<std::size_t>(tail - sql)))) {
        if (s.may_return_rows) return true;
      }
    } else {
      const bool rows = stmt != nullptr && sqlite3_column_count(stmt) > 0;
      sqlite3_finalize(stmt);
      if (rows) return true;
    }
    if (tail == nullptr || tail <= sql) break;
    sql = tail;
  }
  return false;
}

/// Streams the rows of one statement, the table, into `out`.
class table_reader {
 public:
  table_reader(sqlite3_stmt* stmt, ports::result_writer& out, const ports::progress_fn& progress,
               steady::time_point start)
      : stmt_(stmt), out_(out), progress_(progress), start_(start), columns_(sqlite3_column_count(stmt)) {
    batch_.columns = static_cast<std::size_t>(columns_);
    batch_.cells.reserve(sqlite_executor::batch_rows * batch_.columns);
  }

  /// Steps to the end (or until the writer is full); the rc of the last step, SQLITE_DONE
  /// on success, or nullopt with `error_` set for a result-store failure.
  std::optional<int> run() {
    for (;;) {
      const int rc = sqlite3_step(stmt_);
      if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE && !flush()) return std::nullopt;
        return rc;
      }
      for (int c = 0; c < columns_; ++c) {
        const int type = sqlite3_column_type(stmt_, c);
        if (!begun_) classes_.push_back(type);
        auto cell = cell_of(stmt_, c, type);
        if (cell) bytes_ += cell->size();
        batch_.cells.push_back(std::move(cell));
      }
      ++rows_;
      if (batch_.rows() >= sqlite_executor::batch_rows) {
        if (!flush()) return std::nullopt;
        if (out_.full()) return SQLITE_DONE;
      }
    }
  }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  bool flush() {
    if (!begun_) {
      begun_ = true;
      if (auto r = out_.begin(columns_of(stmt_, classes_)); !r) {
        error_ = "result store: " + r.error().message;
        return false;
      }
    }
    if (batch_.rows() > 0) {
      if (auto r = out_.append(batch_); !r) {
        error_ = "result store: " + r.error().message;
        return false;
      }
      batch_.clear();
    }
    if (progress_) {
      ports::job_progress p;
      p.rows = rows_;
      p.bytes = bytes_;
      p.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start_);
      progress_(p);
    }
    return true;
  }

  sqlite3_stmt* stmt_;
  ports::result_writer& out_;
  const ports::progress_fn& progress_;
  steady::time_point start_;
  int columns_;
  ports::row_batch batch_;
  std::vector<int> classes_;
  bool begun_ = false;
  std::uint64_t rows_ = 0;
  std::uint64_t bytes_ = 0;
  std::string error_;
};

/// Runs every statement of `sql` on the open `db` (see the header for which one is the
/// table).
job_outcome run_statements(sqlite3* db, const std::string& source, ports::result_writer& out,
                           const ports::progress_fn& progress, const interrupt_state& state) {
  const auto start = steady::now();
  const char* sql = source.c_str();
  const char* const end = sql + source.size();
  bool table_done = false;
  auto sqlite_error = [&](int rc) {
    if (state.stop.load() || rc == SQLITE_INTERRUPT) return job_outcome::interrupted();
    return job_outcome::failed(sqlite3_errmsg(db));
  };
  while (sql < end) {
    if (state.stop.load()) return job_outcome::interrupted();
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, static_cast<int>(end - sql), &stmt, &tail);
    if (rc != SQLITE_OK) return sqlite_error(rc);
    if (tail == nullptr || tail <= sql) tail = end;
    sql = tail;
    if (stmt == nullptr) continue;  // whitespace or a comment
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
    if (!table_done && sqlite3_column_count(stmt) > 0 && !later_statement_returns_rows(db, sql, end)) {
      table_done = true;
      table_reader reader(stmt, out, progress, start);
      const auto last = reader.run();
      if (!last) return job_outcome::failed(reader.error());
      if (*last != SQLITE_DONE) return sqlite_error(*last);
      if (out.full()) return job_outcome{job_outcome::status::succeeded, {}, {}};
      continue;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return sqlite_error(rc);
  }
  return job_outcome{job_outcome::status::succeeded, {}, {}};
}

/// Owns the open connection: on destruction the interrupter is unregistered and
/// disarmed, then the connection closed.
class connection_guard {
 public:
  connection_guard(sqlite3* db, std::shared_ptr<interrupt_state> state, ports::cancel_signal& cancel)
      : db_(db), state_(std::move(state)), cancel_(cancel) {
    {
      std::lock_guard lock(state_->mu);
      state_->db = db_;
    }
    cancel_.on_request([state = state_] {
      state->stop.store(true);
      std::lock_guard lock(state->mu);
      if (state->db != nullptr) sqlite3_interrupt(state->db);
    });
  }
  ~connection_guard() {
    cancel_.on_request({});
    {
      std::lock_guard lock(state_->mu);
      state_->db = nullptr;  // a late interrupter (already copied by request()) does nothing
    }
    sqlite3_close_v2(db_);
  }
  connection_guard(const connection_guard&) = delete;
  connection_guard& operator=(const connection_guard&) = delete;

 private:
  sqlite3* db_;
  std::shared_ptr<interrupt_state> state_;
  ports::cancel_signal& cancel_;
};

/// Opens `path` read-only and locks the connection down (see the header).
sqlite3* open_locked_down(const fs::path& path, authorizer_context& auth, interrupt_state& state, std::string& error) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, nullptr);
  if (rc != SQLITE_OK) {
    error = std::string("cannot open the database: ") + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return nullptr;
  }
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 4);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1000000);
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 100000000);
  sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 2000);
  sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
  sqlite3_busy_handler(db, wait_for_lock, &state);
  sqlite3_set_authorizer(db, authorize, &auth);
  sqlite3_progress_handler(db, 10000, stop_requested, &state);
  return db;
}

}  // namespace

ports::job_outcome sqlite_executor::run(const ports::job_spec& spec, ports::result_writer& out,
                                        const ports::progress_fn& progress, ports::cancel_signal& cancel) {
  try {
    if (cancel.requested()) return job_outcome::interrupted();
    if (!spec.params.is_object() || !spec.params.contains("path") || !spec.params.at("path").is_string()) {
      return job_outcome::failed("params.path must be a string");
    }
    auto path = resolve_sqlite_path(root_, spec.params.at("path").get_ref<const std::string&>());
    if (!path) return job_outcome::failed(path.error().message);
    std::error_code ec;
    authorizer_context auth{fs::weakly_canonical(fs::absolute(root_), ec)};
    if (ec) return job_outcome::failed("the SQLite root cannot be resolved");

    auto state = std::make_shared<interrupt_state>();
    std::string error;
    sqlite3* db = open_locked_down(*path, auth, *state, error);
    if (db == nullptr) return job_outcome::failed(error);
    const connection_guard guard(db, state, cancel);
    return run_statements(db, spec.source, out, progress, *state);
  } catch (const std::exception& ex) {
    return job_outcome::failed(std::string("sqlite executor: ") + ex.what());
  } catch (...) {
    return job_outcome::failed("sqlite executor: unexpected error");
  }
}

}  // namespace atrium::connectors_adapter
