#include "adapters/connectors/postgres_executor.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "adapters/connectors/sql_connector.hpp"
#include "adapters/connectors/sql_split.hpp"

namespace atrium::connectors_adapter {
namespace {

using steady = std::chrono::steady_clock;
using ports::job_outcome;

/// What the interrupter (on the dispatcher's thread) may touch: it sets `stop` and
/// writes the eventfd that the executor's poll waits on. `fd` is set to -1 under `mu`
/// before it is closed.
struct wake_state {
  std::mutex mu;
  int fd = -1;
  std::atomic<bool> stop{false};
};

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string type_of_oid(Oid oid) {
  switch (oid) {
    case 16:
      return "bool";
    case 20:
    case 21:
    case 23:
    case 26:
      return "int";
    case 700:
    case 701:
      return "float";
    case 1700:
      return "numeric";
    case 25:
    case 1043:
    case 1042:
    case 18:
    case 19:
      return "text";
    case 17:
      return "bytes";
    case 1082:
      return "date";
    case 1083:
    case 1266:
      return "time";
    case 1114:
      return "timestamp";
    case 1184:
      return "timestamptz";
    case 114:
    case 3802:
      return "json";
    default:
      return "unknown";
  }
}

enum class woken { ready, stop, timeout };

/// Waits until `sock` is ready for `events`, the wake fd fires, or `timeout_ms` passes
/// (-1: no bound).
woken wait_socket(int sock, short events, int wake_fd, int timeout_ms) {
  std::array<pollfd, 2> fds{pollfd{sock, events, 0}, pollfd{wake_fd, POLLIN, 0}};
  for (;;) {
    const int rc = ::poll(fds.data(), fds.size(), timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return woken::timeout;
    if (rc > 0 && fds[1].revents != 0) return woken::stop;
    return woken::ready;  // also on poll errors: libpq then reports the failure
  }
}

int remaining_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

struct pg_conn_deleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using conn_ptr = std::unique_ptr<PGconn, pg_conn_deleter>;

/// Connects without blocking past `deadline` or a stop; nullptr with `error` set.
conn_ptr connect(const std::string& conninfo, const wake_state& wake, steady::time_point deadline, std::string& error) {
  conn_ptr conn(PQconnectStart(conninfo.c_str()));
  if (!conn) {
    error = "out of memory";
    return nullptr;
  }
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED || PQstatus(conn.get()) == CONNECTION_BAD) {
      error = trimmed(PQerrorMessage(conn.get()));
      if (error.empty()) error = "connection failed";
      return nullptr;
    }
    const short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    const auto w = wait_socket(PQsocket(conn.get()), events, wake.fd, remaining_ms(deadline));
    if (w == woken::stop) return nullptr;
    if (w == woken::timeout) {
      error = "connection timed out after " + std::to_string(postgres_executor::connect_timeout.count()) + " s";
      return nullptr;
    }
    st = PQconnectPoll(conn.get());
  }
  return conn;
}

/// Appends a notice to the job's log.
void on_notice(void* writer, const char* message) {
  if (message != nullptr) (void)static_cast<ports::result_writer*>(writer)->append_log(message);
}

struct pg_result_deleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, pg_result_deleter>;

/// One run of the job's text on an open connection: sends it, reads every result and
/// streams the table's rows into the writer.
class query_run {
 public:
  query_run(PGconn* conn, PGcancel* cancel, std::vector<sql_statement> statements, ports::result_writer& out,
            const ports::progress_fn& progress, const wake_state& wake, std::string_view password)
      : conn_(conn),
        cancel_(cancel),
        statements_(std::move(statements)),
        later_rows_(statements_.size(), false),
        out_(out),
        progress_(progress),
        wake_(wake),
        password_(password),
        start_(steady::now()) {
    for (std::size_t i = statements_.size(); i-- > 1;) {
      later_rows_[i - 1] = later_rows_[i] || statements_[i].may_return_rows;
    }
  }

  job_outcome run(const std::string& sql) {
    if (PQsendQuery(conn_, sql.c_str()) == 0) return connection_failure();
    PQsetSingleRowMode(conn_);
    for (;;) {
      while (PQisBusy(conn_) != 0) {
        if (wake_.stop.load()) return cancel_query();
        if (wait_socket(PQsocket(conn_), POLLIN, wake_.fd, -1) == woken::stop) return cancel_query();
        if (PQconsumeInput(conn_) == 0) return connection_failure();
      }
      result_ptr r(PQgetResult(conn_));
      if (!r) break;
      switch (handle(r.get())) {
        case next::more:
          break;
        case next::truncated:
          // The only statement: stop the server's work, the caller closes the connection.
          send_cancel();
          return job_outcome{job_outcome::status::succeeded, {}, {}};
        case next::abort:
          return *error_;
      }
    }
    // An error after a cancel request is the cancel's doing; a text that ran to its
    // end despite a late request succeeded.
    if (error_) return wake_.stop.load() ? job_outcome::interrupted() : *error_;
    return job_outcome{job_outcome::status::succeeded, {}, {}};
  }

 private:
  enum class next { more, truncated, abort };

  next handle(PGresult* r) {
    switch (PQresultStatus(r)) {
      case PGRES_SINGLE_TUPLE:
        if (!in_result_ && !start_result(r)) return next::abort;
        if (table_ && !dropping_) return add_row(r);
        return next::more;
      case PGRES_TUPLES_OK:
        if (!in_result_ && !start_result(r)) return next::abort;
        if (table_ && !dropping_ && !flush()) return next::abort;
        if (table_) table_done_ = true;
        end_result();
        return next::more;
      case PGRES_COMMAND_OK:
        end_result();
        return next::more;
      case PGRES_COPY_OUT:
      case PGRES_COPY_IN:
      case PGRES_COPY_BOTH:
        error_ =
            job_outcome::failed("COPY … TO STDOUT and COPY … FROM STDIN are not supported in a job (use a SELECT)");
        return next::abort;
      case PGRES_FATAL_ERROR:
      case PGRES_BAD_RESPONSE:
        if (!error_) {
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          error_ = job_outcome::failed(masked(PQresultErrorMessage(r)), state != nullptr ? state : "");
        }
        end_result();
        return next::more;
      default:
        return next::more;
    }
  }

  /// The first result of a statement: is it the table? False on a result-store error.
  bool start_result(PGresult* r) {
    in_result_ = true;
    const int n = PQnfields(r);
    table_ = n > 0 && !table_done_ && index_ < statements_.size() && !later_rows_[index_];
    if (!table_) return true;
    std::vector<ports::result_column> columns;
    for (int c = 0; c < n; ++c) {
      const char* name = PQfname(r, c);
      columns.push_back({name != nullptr ? name : "", type_of_oid(PQftype(r, c))});
    }
    batch_.columns = static_cast<std::size_t>(n);
    batch_.cells.reserve(postgres_executor::batch_rows * batch_.columns);
    if (auto ok = out_.begin(columns); !ok) {
      error_ = job_outcome::failed("result store: " + ok.error().message);
      return false;
    }
    return true;
  }

  void end_result() {
    in_result_ = false;
    table_ = false;
    ++index_;
  }

  next add_row(PGresult* r) {
    const int n = PQnfields(r);
    for (int c = 0; c < n; ++c) {
      if (PQgetisnull(r, 0, c) != 0) {
        batch_.cells.emplace_back(std::nullopt);
      } else {
        const auto len = static_cast<std::size_t>(PQgetlength(r, 0, c));
        bytes_ += len;
        batch_.cells.emplace_back(std::in_place, PQgetvalue(r, 0, c), len);
      }
    }
    ++rows_;
    if (batch_.rows() < postgres_executor::batch_rows) return next::more;
    if (!flush()) return next::abort;
    if (!out_.full()) return next::more;
    if (statements_.size() <= 1) return next::truncated;
    dropping_ = true;  // read the rest and drop it, so that later statements still run
    return next::more;
  }

  bool flush() {
    if (batch_.rows() > 0) {
      if (auto kept = out_.append(batch_); !kept) {
        error_ = job_outcome::failed("result store: " + kept.error().message);
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

  void send_cancel() {
    std::array<char, 256> errbuf{};
    if (cancel_ != nullptr) (void)PQcancel(cancel_, errbuf.data(), static_cast<int>(errbuf.size()));
  }

  /// Asks the server to cancel, then drains what it still sends for at most 2 s (the
  /// caller closes the connection either way, which also ends the backend).
  job_outcome cancel_query() {
    send_cancel();
    const auto deadline = steady::now() + std::chrono::seconds(2);
    for (;;) {
      while (PQisBusy(conn_) != 0) {
        if (wait_socket(PQsocket(conn_), POLLIN, -1, remaining_ms(deadline)) != woken::ready)
          return job_outcome::interrupted();
        if (PQconsumeInput(conn_) == 0) return job_outcome::interrupted();
      }
      result_ptr r(PQgetResult(conn_));
      if (!r) return job_outcome::interrupted();
    }
  }

  job_outcome connection_failure() const {
    if (wake_.stop.load()) return job_outcome::interrupted();
    return job_outcome::failed(masked(PQerrorMessage(conn_)));
  }

  [[nodiscard]] std::string masked(const char* text) const {
    auto t = mask_secret(trimmed(text != nullptr ? text : ""), password_);
    return t.empty() ? std::string("query failed") : t;
  }

  PGconn* conn_;
  PGcancel* cancel_;
  std::vector<sql_statement> statements_;
  std::vector<bool> later_rows_;  ///< [i]: a statement after i may return rows
  ports::result_writer& out_;
  const ports::progress_fn& progress_;
  const wake_state& wake_;
  std::string_view password_;
  steady::time_point start_;
  std::size_t index_ = 0;  ///< the statement whose results are being read
  bool in_result_ = false;
  bool table_ = false;
  bool table_done_ = false;
  bool dropping_ = false;
  ports::row_batch batch_;
  std::uint64_t rows_ = 0;
  std::uint64_t bytes_ = 0;
  std::optional<job_outcome> error_;
};

/// The wake eventfd and the interrupter, registered for the run; unregistered and closed
/// on destruction.
class wake_guard {
 public:
  wake_guard(std::shared_ptr<wake_state> state, ports::cancel_signal& cancel)
      : state_(std::move(state)), cancel_(cancel) {
    state_->fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    cancel_.on_request([state = state_] {
      state->stop.store(true);
      std::lock_guard lock(state->mu);
      if (state->fd >= 0) {
        const std::uint64_t one = 1;
        (void)!::write(state->fd, &one, sizeof one);
      }
    });
  }
  ~wake_guard() {
    cancel_.on_request({});
    int fd = -1;
    {
      std::lock_guard lock(state_->mu);
      std::swap(fd, state_->fd);
    }
    if (fd >= 0) ::close(fd);
  }
  wake_guard(const wake_guard&) = delete;
  wake_guard& operator=(const wake_guard&) = delete;
  [[nodiscard]] bool ok() const { return state_->fd >= 0; }

 private:
  std::shared_ptr<wake_state> state_;
  ports::cancel_signal& cancel_;
};

std::string password_of(const nlohmann::json& credentials) {
  if (!credentials.is_object()) return {};
  const auto it = credentials.find("password");
  return it != credentials.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

ports::job_outcome postgres_executor::run(const ports::job_spec& spec, ports::result_writer& out,
                                          const ports::progress_fn& progress, ports::cancel_signal& cancel) {
  try {
    if (cancel.requested()) return job_outcome::interrupted();
    std::string password = password_of(spec.credentials);
    const auto statement_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(spec.timeout) + std::chrono::milliseconds(30000);
    auto pinned = postgres_conninfo(policy_, spec.params, spec.credentials, connect_timeout, statement_timeout);
    if (!pinned) return job_outcome::failed(mask_secret(pinned.error().message, password));

    pinned->conninfo += " client_encoding='UTF8'";  // cells are UTF-8 whatever the server's encoding

    auto state = std::make_shared<wake_state>();
    const wake_guard guard(state, cancel);
    if (!guard.ok()) return job_outcome::failed("cannot create an eventfd");
    std::string error;
    conn_ptr conn = connect(pinned->conninfo, *state, steady::now() + connect_timeout, error);
    std::fill(pinned->conninfo.begin(), pinned->conninfo.end(), '\0');  // it held the password
    if (!conn) {
      auto outcome =
          state->stop.load() ? job_outcome::interrupted() : job_outcome::failed(mask_secret(error, password));
      std::fill(password.begin(), password.end(), '\0');
      return outcome;
    }
    PQsetNoticeProcessor(conn.get(), on_notice, &out);
    const std::unique_ptr<PGcancel, void (*)(PGcancel*)> pg_cancel(PQgetCancel(conn.get()), PQfreeCancel);
    query_run q(conn.get(), pg_cancel.get(), split_sql(spec.source), out, progress, *state, password);
    auto outcome = q.run(spec.source);
    conn.reset();
    std::fill(password.begin(), password.end(), '\0');
    return outcome;
  } catch (const std::exception& ex) {
    return job_outcome::failed(std::string("postgres executor: ") + ex.what());
  } catch (...) {
    return job_outcome::failed("postgres executor: unexpected error");
  }
}

}  // namespace atrium::connectors_adapter
