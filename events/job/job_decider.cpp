#include "events/job/job_decider.hpp"

#include <algorithm>
#include <cctype>

#include "events/decide.hpp"
#include "events/exhaustive.hpp"
#include "events/text.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;

constexpr std::size_t max_reason_bytes = 1000;

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

/// The refusal of a command that is illegal in the job's current status.
std::unexpected<error> illegal(const job_state& s, const std::string& message) {
  return fail(errc::failed_precondition, message, {{"status", s.status}});
}

result<void> validate_source(const std::string& text, const char* field) {
  if (text.empty() || blank(text)) {
    return fail(errc::invalid_argument, std::string(field) + " is empty", {{"field", field}});
  }
  if (text.size() > max_job_source_bytes) {
    return fail(errc::invalid_argument, std::string(field) + " must be at most 100000 bytes", {{"field", field}});
  }
  return check_text(text, text_kind::multiline, field);
}

result<void> validate_submission(const submit_job& c) {
  if (c.job_id.empty()) return fail(errc::invalid_argument, "job id is empty", {{"field", "job_id"}});
  if (c.project_id.empty()) return fail(errc::invalid_argument, "project id is empty", {{"field", "project_id"}});
  if (c.kind == "sql") {
    if (!c.language.empty()) return fail(errc::invalid_argument, "a sql job has no language", {{"field", "language"}});
    if (c.connection_id.empty()) {
      return fail(errc::invalid_argument, "a sql job needs a connection", {{"field", "connection_id"}});
    }
    if (auto ok = validate_source(c.sql, "sql"); !ok) return ok;
    if (!c.script.empty()) return fail(errc::invalid_argument, "a sql job has no script", {{"field", "script"}});
  } else if (c.kind == "script") {
    if (c.language != "python" && c.language != "bash") {
      return fail(errc::invalid_argument, "language must be python or bash", {{"field", "language"}});
    }
    if (auto ok = validate_source(c.script, "script"); !ok) return ok;
    if (!c.sql.empty()) return fail(errc::invalid_argument, "a script job has no sql", {{"field", "sql"}});
  } else {
    return fail(errc::invalid_argument, "kind must be sql or script", {{"field", "kind"}});
  }
  if (c.timeout_s && (*c.timeout_s < 1 || *c.timeout_s > max_job_timeout_s)) {
    return fail(errc::invalid_argument, "timeout_s must be 1-86400", {{"field", "timeout_s"}});
  }
  if (c.max_attempts && (*c.max_attempts < 1 || *c.max_attempts > max_job_attempts)) {
    return fail(errc::invalid_argument, "max_attempts must be 1-10", {{"field", "max_attempts"}});
  }
  if (c.cell_id.size() > 64) return fail(errc::invalid_argument, "cell_id is too long", {{"field", "cell_id"}});
  return check_text(c.cell_id, text_kind::label, "cell_id");
}

// decide: the job events the decider builds, one overload each (an event of another
// stream has none, so building it here fails to compile).
proposed_event emit(const job_submitted& e) { return make_event(e); }
proposed_event emit(const job_queued& e) { return make_event(e); }
proposed_event emit(const job_started& e) { return make_event(e); }
proposed_event emit(const job_progressed& e) { return make_event(e); }
proposed_event emit(const job_succeeded& e) { return make_event(e); }
proposed_event emit(const job_failed& e) { return make_event(e); }
proposed_event emit(const job_cancel_requested& e) { return make_event(e); }
proposed_event emit(const job_cancelled& e) { return make_event(e); }
proposed_event emit(const job_timed_out& e) { return make_event(e); }
proposed_event emit(const job_requeued& e) { return make_event(e); }
proposed_event emit(const job_result_expired& e) { return make_event(e); }

constexpr std::size_t max_error_bytes = 10000;
constexpr std::size_t max_runner_bytes = 200;
constexpr std::size_t max_columns = 10000;

/// A runner's error text made storable: valid UTF-8 (bad bytes repaired), C0 controls
/// other than tab, LF and CR and DEL replaced by spaces, at most 10000 bytes.
std::string storable_error(std::string_view text) {
  auto s = repair_utf8(text);
  for (auto& ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) ch = ' ';
  }
  return truncate_utf8(s, max_error_bytes);
}

bool valid_sqlstate(const std::string& s) {
  return s.empty() || (s.size() == 5 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
                         return std::isdigit(c) || std::isupper(c);
                       }));
}

struct decider {
  const job_state& state;
  const principal& actor;

  /// Runner commands come only from the in-process runner, i.e. the system principal.
  [[nodiscard]] result<void> require_runner() const {
    if (actor.user_id != principal::system().user_id) {
      return fail(errc::forbidden, "only the job runner moves a job through its run states");
    }
    return {};
  }

  /// Runner command on a running job.
  [[nodiscard]] result<void> require_running(const char* what) const {
    if (auto ok = require_runner(); !ok) return ok;
    if (state.status != "running") return illegal(state, std::string("only a running job ") + what);
    return {};
  }

  result<events> operator()(const submit_job& c) const {
    // Auditors change nothing; a member who is also an auditor acts as a member.
    if (!actor.is_admin() && !actor.has(global_role::member)) {
      return fail(errc::forbidden, "only members and admins submit jobs");
    }
    // Admins act as owners of every project.
    const auto role = actor.is_admin() ? std::optional(project_role::owner) : c.submitter_role;
    if (!role || *role < project_role::editor) return fail(errc::forbidden, "only editors and owners run jobs");
    if (state.exists) return fail(errc::already_exists, "job already exists");
    if (auto ok = validate_submission(c); !ok) return std::unexpected(ok.error());
    if (!c.connection_id.empty() && !c.connection_usable) {
      return fail(errc::forbidden, "you may not use this connection", {{"connection_id", c.connection_id}});
    }
    return events{emit(job_submitted{c.job_id, c.project_id, c.kind, c.connection_id, c.sql, c.script,
                                     c.timeout_s.value_or(default_job_timeout_s), actor.user_id, c.language,
                                     c.max_attempts.value_or(1), c.cell_id}),
                  emit(job_queued{})};
  }

  result<events> operator()(const request_cancel& c) const {
    if (!actor.is_admin() && !actor.has(global_role::member)) {
      return fail(errc::forbidden, "only members and admins cancel jobs");
    }
    const bool submitter = actor.user_id == state.submitted_by;
    const bool editor = c.requester_role && *c.requester_role >= project_role::editor;
    if (!submitter && !actor.is_admin() && !editor) {
      return fail(errc::forbidden, "only the submitter, admins, editors and owners cancel a job");
    }
    if (c.reason.size() > max_reason_bytes) {
      return fail(errc::invalid_argument, "reason must be at most 1000 bytes", {{"field", "reason"}});
    }
    if (auto ok = check_text(c.reason, text_kind::multiline, "reason"); !ok) return std::unexpected(ok.error());
    if (state.status == "cancelled") return events{};
    if (state.terminal()) return illegal(state, "job already finished");
    if (state.cancel_requested) return events{};
    const auto requested = emit(job_cancel_requested{actor.user_id, c.reason});
    // Nothing runs before `started`, so a cancel of a waiting job completes at once;
    // a running job stops when the runner confirms.
    if (state.status == "running") return events{requested};
    return events{requested, emit(job_cancelled{})};
  }

  result<events> operator()(const start_job& c) const {
    if (auto ok = require_runner(); !ok) return std::unexpected(ok.error());
    if (state.status != "queued") return illegal(state, "only a queued job starts");
    if (c.runner.empty() || c.runner.size() > max_runner_bytes) {
      return fail(errc::invalid_argument, "runner must be 1-200 bytes", {{"field", "runner"}});
    }
    if (auto ok = check_text(c.runner, text_kind::label, "runner"); !ok) return std::unexpected(ok.error());
    return events{emit(job_started{c.runner, state.attempt + 1})};
  }

  result<events> operator()(const report_progress& c) const {
    if (auto ok = require_running("reports progress"); !ok) return std::unexpected(ok.error());
    if (c.percent && (*c.percent < 0 || *c.percent > 100)) {
      return fail(errc::invalid_argument, "percent must be 0-100", {{"field", "percent"}});
    }
    if (c.message.size() > max_reason_bytes) {
      return fail(errc::invalid_argument, "message must be at most 1000 bytes", {{"field", "message"}});
    }
    if (auto ok = check_text(c.message, text_kind::multiline, "message"); !ok) return std::unexpected(ok.error());
    return events{emit(job_progressed{c.rows, c.bytes, c.percent, c.elapsed_ms, c.message})};
  }

  result<events> operator()(const complete_job& c) const {
    if (auto ok = require_running("completes"); !ok) return std::unexpected(ok.error());
    if (c.columns.size() > max_columns) {
      return fail(errc::invalid_argument, "at most 10000 columns", {{"field", "columns"}});
    }
    for (const auto& col : c.columns) {
      if (auto ok = check_text(col.name, text_kind::multiline, "columns"); !ok) return std::unexpected(ok.error());
      if (auto ok = check_text(col.type, text_kind::label, "columns"); !ok) return std::unexpected(ok.error());
    }
    return events{emit(job_succeeded{c.rows, c.bytes, c.columns, c.duration_ms, c.truncated})};
  }

  result<events> operator()(const fail_job& c) const {
    if (auto ok = require_running("fails"); !ok) return std::unexpected(ok.error());
    if (!valid_sqlstate(c.sqlstate)) {
      return fail(errc::invalid_argument, "sqlstate must be 5 characters 0-9A-Z", {{"field", "sqlstate"}});
    }
    return events{emit(job_failed{storable_error(c.error), c.sqlstate})};
  }

  result<events> operator()(const time_out_job& c) const {
    if (auto ok = require_running("times out"); !ok) return std::unexpected(ok.error());
    return events{emit(job_timed_out{c.after_s})};
  }

  result<events> operator()(const confirm_cancel&) const {
    if (auto ok = require_running("is cancelled by its runner"); !ok) return std::unexpected(ok.error());
    if (!state.cancel_requested) return illegal(state, "no cancel was requested");
    return events{emit(job_cancelled{})};
  }

  result<events> operator()(const requeue_job& c) const {
    if (auto ok = require_running("is requeued"); !ok) return std::unexpected(ok.error());
    if (state.attempt >= state.max_attempts) return illegal(state, "no attempt left");
    if (c.reason.size() > max_reason_bytes) {
      return fail(errc::invalid_argument, "reason must be at most 1000 bytes", {{"field", "reason"}});
    }
    if (auto ok = check_text(c.reason, text_kind::multiline, "reason"); !ok) return std::unexpected(ok.error());
    return events{emit(job_requeued{state.attempt, c.reason, true})};
  }

  result<events> operator()(const release_job& c) const {
    if (auto ok = require_running("is released"); !ok) return std::unexpected(ok.error());
    if (c.reason.size() > max_reason_bytes) {
      return fail(errc::invalid_argument, "reason must be at most 1000 bytes", {{"field", "reason"}});
    }
    if (auto ok = check_text(c.reason, text_kind::multiline, "reason"); !ok) return std::unexpected(ok.error());
    return events{emit(job_requeued{state.attempt, c.reason, false})};
  }

  result<events> operator()(const expire_result&) const {
    if (auto ok = require_runner(); !ok) return std::unexpected(ok.error());
    if (!state.terminal()) return illegal(state, "only a finished job's result expires");
    if (state.result_expired) return events{};
    return events{emit(job_result_expired{})};
  }
};

// evolve: one overload per job_event alternative (see job_decider.hpp).

void evolve(job_state& s, const job_submitted& e) {
  s.exists = true;
  s.job_id = e.job_id;
  s.project_id = e.project_id;
  s.kind = e.kind;
  s.connection_id = e.connection_id;
  s.sql = e.sql;
  s.script = e.script;
  s.timeout_s = e.timeout_s;
  s.submitted_by = e.submitted_by;
  s.language = e.language;
  s.max_attempts = e.max_attempts;
  s.cell_id = e.cell_id;
  s.status = "submitted";
}

void evolve(job_state& s, const job_queued&) { s.status = "queued"; }

void evolve(job_state& s, const job_started& e) {
  s.status = "running";
  s.attempt = e.attempt;
  s.progress = 0;
  s.progress_message.clear();
  s.rows = s.bytes = s.elapsed_ms = 0;
}

void evolve(job_state& s, const job_progressed& e) {
  if (e.percent) s.progress = *e.percent;
  s.progress_message = e.message;
  s.rows = e.rows;
  s.bytes = e.bytes;
  s.elapsed_ms = e.elapsed_ms;
}

void evolve(job_state& s, const job_succeeded& e) {
  s.status = "succeeded";
  s.progress = 100;
  s.rows = e.rows;
  s.bytes = e.bytes;
  s.columns = e.columns;
  s.elapsed_ms = e.duration_ms;
  s.truncated = e.truncated;
}

void evolve(job_state& s, const job_failed& e) {
  s.status = "failed";
  s.error = e.error;
  s.sqlstate = e.sqlstate;
}

void evolve(job_state& s, const job_requeued& e) {
  s.status = "queued";
  if (!e.counted && e.attempt > 0) s.attempt = e.attempt - 1;  // given back: the next start repeats its number
}

void evolve(job_state& s, const job_result_expired&) { s.result_expired = true; }

void evolve(job_state& s, const job_cancel_requested&) { s.cancel_requested = true; }

void evolve(job_state& s, const job_cancelled&) { s.status = "cancelled"; }

void evolve(job_state& s, const job_timed_out& e) {
  s.status = "timed_out";
  s.error = "timed out after " + std::to_string(e.after_s) + " s";
}

/// The fallback: chosen only for a `job_event` alternative that has no overload above
/// (an exact non-template match beats it), and then it fails to compile.
template <class E>
void evolve(job_state&, const E&) {
  static_assert(no_handler_for<E>, "a job_event alternative has no evolve(job_state&, const E&) overload");
}

}  // namespace

bool job_state::terminal() const {
  return status == "succeeded" || status == "failed" || status == "cancelled" || status == "timed_out";
}

result<std::vector<proposed_event>> decide(const job_state& state, const job_command& command, const principal& actor) {
  return decide_admitted<decider>(state, command, actor, "job", state.exists,
                                  std::holds_alternative<submit_job>(command));
}

job_state evolve(job_state s, const job_event& event) {
  std::visit([&s](const auto& e) { evolve(s, e); }, event);
  return s;
}

std::string job_stream(std::string_view job_id) { return "job-" + std::string(job_id); }

}  // namespace atrium
