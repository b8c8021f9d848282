#include "events/schedule/schedule_decider.hpp"

#include "events/chain.hpp"
#include "events/decide.hpp"
#include "events/exhaustive.hpp"
#include "events/job/job_decider.hpp"
#include "events/schedule/cron.hpp"
#include "events/validation.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;

constexpr std::size_t max_reason_bytes = 1000;
/// The namespace of Atrium's name-based ids: SHA-256 of "atrium name-based ids".
constexpr std::string_view id_namespace = "02bc1398d382be16e6a639ecda58c5350b316b88700e48a1a14fe2f4dcfce458";

std::unexpected<error> illegal(const schedule_state& s, const std::string& message) {
  return fail(errc::failed_precondition, message, {{"status", s.status}});
}

/// A name-based UUIDv8 (RFC 9562 §5.8, Appendix B.2) from SHA-256 over the namespace and `name`.
std::string name_uuid(const std::string& name) {
  auto h = chain_hash(id_namespace, name);  // 64 lowercase hex digits
  h[12] = '8';                              // version 8
  const auto v = h[16] >= 'a' ? h[16] - 'a' + 10 : h[16] - '0';
  h[16] = "89ab"[v & 0x3];  // RFC variant 10xx
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20, 12);
}

result<void> validate_source(const std::string& text, const char* field) {
  if (is_blank(text)) return fail(errc::invalid_argument, std::string(field) + " is empty", {{"field", field}});
  if (text.size() > max_job_source_bytes) {
    return fail(errc::invalid_argument, std::string(field) + " must be at most 100000 bytes", {{"field", field}});
  }
  return check_text(text, text_kind::multiline, field);
}

/// A job template's fields, as `submit_job` will check them when the schedule fires.
result<void> validate_target(const schedule_target& t) {
  auto bad = [](const std::string& m, const char* f) {
    return fail(errc::invalid_argument, "target: " + m, {{"field", std::string("target.") + f}});
  };
  if (t.run_cells) return {};
  if (t.kind == "sql") {
    if (t.connection_id.empty()) return bad("a sql job needs a connection", "connection_id");
    if (!t.language.empty()) return bad("a sql job has no language", "language");
    if (!t.script.empty()) return bad("a sql job has no script", "script");
    if (auto ok = validate_source(t.sql, "target.sql"); !ok) return ok;
  } else if (t.kind == "script") {
    if (t.language != "python" && t.language != "bash") return bad("language must be python or bash", "language");
    if (!t.sql.empty()) return bad("a script job has no sql", "sql");
    if (auto ok = validate_source(t.script, "target.script"); !ok) return ok;
  } else {
    return bad("kind must be sql or script (or the target {\"run_cells\": true})", "kind");
  }
  if (t.connection_id.size() > 128) return bad("connection_id is too long", "connection_id");
  if (t.timeout_s < 1 || t.timeout_s > max_job_timeout_s) return bad("timeout_s must be 1-86400", "timeout_s");
  return check_text(t.connection_id, text_kind::label, "target.connection_id");
}

result<void> validate_settings(const std::string& name, const std::string& cron, const std::string& zone,
                               bool zone_known, const schedule_target& target, const std::string& catch_up) {
  if (auto ok = validate_name(name); !ok) return ok;
  if (auto spec = parse_cron(cron); !spec) return std::unexpected(spec.error());
  if (!zone_known || zone.empty() || zone.size() > 64) {
    return fail(errc::invalid_argument, "unknown time zone: use an IANA name such as Europe/Berlin",
                {{"field", "time_zone"}});
  }
  if (catch_up != "none" && catch_up != "last") {
    return fail(errc::invalid_argument, "catch_up must be none or last", {{"field", "catch_up"}});
  }
  return validate_target(target);
}

/// Editors and owners of the project (admins count as owners); never auditors-only.
result<void> require_editor(const principal& actor, const std::optional<project_role>& role) {
  if (!actor.is_admin() && !actor.has(global_role::member)) {
    return fail(errc::forbidden, "only members and admins manage schedules");
  }
  const auto r = actor.is_admin() ? std::optional(project_role::owner) : role;
  if (!r || *r < project_role::editor) return fail(errc::forbidden, "only editors and owners manage schedules");
  return {};
}

bool is_system(const principal& p) { return p.user_id == principal::system().user_id; }

proposed_event emit(const schedule_created& e) { return make_event(e); }
proposed_event emit(const schedule_updated& e) { return make_event(e); }
proposed_event emit(const schedule_paused& e) { return make_event(e); }
proposed_event emit(const schedule_resumed& e) { return make_event(e); }
proposed_event emit(const schedule_deleted& e) { return make_event(e); }
proposed_event emit(const schedule_fired& e) { return make_event(e); }

struct decider {
  const schedule_state& state;
  const principal& actor;

  result<events> operator()(const create_schedule& c) const {
    if (auto ok = require_editor(actor, c.creator_role); !ok) return std::unexpected(ok.error());
    if (state.exists) return fail(errc::already_exists, "schedule already exists");
    if (c.schedule_id.empty() || c.project_id.empty()) {
      return fail(errc::invalid_argument, "schedule and project ids are required", {{"field", "project_id"}});
    }
    const auto zone = c.time_zone.empty() ? std::string("UTC") : c.time_zone;
    const auto catch_up = c.catch_up.empty() ? std::string("none") : c.catch_up;
    if (auto ok = validate_settings(c.name, c.cron, zone, c.time_zone_known, c.target, catch_up); !ok) {
      return std::unexpected(ok.error());
    }
    if (!c.target.connection_id.empty() && !c.connection_usable) {
      return fail(errc::forbidden, "you may not use this connection", {{"connection_id", c.target.connection_id}});
    }
    return events{emit(schedule_created{c.schedule_id, c.project_id, c.name, c.cron, zone, c.target, catch_up,
                                        actor.user_id, format_utc(c.now)})};
  }

  result<events> operator()(const update_schedule& c) const {
    if (auto ok = require_editor(actor, c.editor_role); !ok) return std::unexpected(ok.error());
    schedule_updated e{c.name.value_or(state.name),
                       c.cron.value_or(state.cron),
                       c.time_zone.value_or(state.time_zone),
                       c.target.value_or(state.target),
                       c.catch_up.value_or(state.catch_up),
                       state.anchor,
                       actor.user_id};
    if (auto ok = validate_settings(e.name, e.cron, e.time_zone, c.time_zone_known, e.target, e.catch_up); !ok) {
      return std::unexpected(ok.error());
    }
    if (c.target && !e.target.connection_id.empty() && !c.connection_usable) {
      return fail(errc::forbidden, "you may not use this connection", {{"connection_id", e.target.connection_id}});
    }
    if (e.cron != state.cron || e.time_zone != state.time_zone) e.anchor = format_utc(c.now);
    return events{emit(e)};
  }

  result<events> operator()(const pause_schedule& c) const {
    if (!is_system(actor)) {
      if (auto ok = require_editor(actor, c.editor_role); !ok) return std::unexpected(ok.error());
    }
    if (c.reason.size() > max_reason_bytes) {
      return fail(errc::invalid_argument, "reason must be at most 1000 bytes", {{"field", "reason"}});
    }
    if (auto ok = check_text(c.reason, text_kind::multiline, "reason"); !ok) return std::unexpected(ok.error());
    if (state.status == "paused") return events{};
    return events{emit(schedule_paused{c.reason, actor.user_id})};
  }

  result<events> operator()(const resume_schedule& c) const {
    if (auto ok = require_editor(actor, c.editor_role); !ok) return std::unexpected(ok.error());
    if (state.status == "active") return events{};
    return events{emit(schedule_resumed{actor.user_id, format_utc(c.now)})};
  }

  result<events> operator()(const delete_schedule& c) const {
    if (auto ok = require_editor(actor, c.editor_role); !ok) return std::unexpected(ok.error());
    return events{emit(schedule_deleted{actor.user_id})};
  }

  result<events> operator()(const fire_schedule& c) const {
    if (!is_system(actor)) return fail(errc::forbidden, "only the scheduler fires schedules");
    if (state.status != "active") return illegal(state, "only an active schedule fires");
    const auto when = format_utc(c.fire_time);
    if (!state.last_fired.empty() && c.fire_time <= *parse_utc(state.last_fired)) {
      return fail(errc::failed_precondition, "instant " + when + " is not after the last fired instant",
                  {{"status", state.status}, {"last_fired", state.last_fired}});
    }
    if (c.job_ids.size() > max_schedule_fire_jobs) {
      return fail(errc::invalid_argument, "too many jobs for one firing", {{"field", "job_ids"}});
    }
    for (const auto& id : c.job_ids) {
      if (id.empty() || id.size() > 128) return fail(errc::invalid_argument, "bad job id", {{"field", "job_ids"}});
    }
    auto e = emit(schedule_fired{when, c.job_ids, c.catch_up});
    e.id = schedule_fire_event_id(state.schedule_id, c.fire_time);
    return events{std::move(e)};
  }
};

// evolve: one overload per schedule_event alternative (see schedule_decider.hpp).

void evolve(schedule_state& s, const schedule_created& e) {
  s.exists = true;
  s.schedule_id = e.schedule_id;
  s.project_id = e.project_id;
  s.name = e.name;
  s.cron = e.cron;
  s.time_zone = e.time_zone;
  s.target = e.target;
  s.catch_up = e.catch_up;
  s.owner = e.created_by;
  s.anchor = e.anchor;
  s.status = "active";
}

void evolve(schedule_state& s, const schedule_updated& e) {
  s.name = e.name;
  s.cron = e.cron;
  s.time_zone = e.time_zone;
  s.target = e.target;
  s.catch_up = e.catch_up;
  s.anchor = e.anchor;
}

void evolve(schedule_state& s, const schedule_paused& e) {
  s.status = "paused";
  s.pause_reason = e.reason;
}

void evolve(schedule_state& s, const schedule_resumed& e) {
  s.status = "active";
  s.pause_reason.clear();
  s.resumed_at = e.resumed_at;
}

void evolve(schedule_state& s, const schedule_deleted&) { s.status = "deleted"; }

void evolve(schedule_state& s, const schedule_fired& e) {
  s.last_fired = e.fire_time;
  ++s.fired_count;
}

template <class E>
void evolve(schedule_state&, const E&) {
  static_assert(no_handler_for<E>, "a schedule_event alternative has no evolve(schedule_state&, const E&) overload");
}

}  // namespace

std::chrono::sys_seconds schedule_state::fire_after() const {
  std::chrono::sys_seconds t{};
  for (const auto* s : {&anchor, &last_fired, &resumed_at}) {
    if (s->empty()) continue;
    if (auto v = parse_utc(*s); v && *v > t) t = *v;
  }
  return t;
}

result<std::vector<proposed_event>> decide(const schedule_state& state, const schedule_command& command,
                                           const principal& actor) {
  return decide_admitted<decider>(state, command, actor, "schedule", state.exists && state.status != "deleted",
                                  std::holds_alternative<create_schedule>(command));
}

schedule_state evolve(schedule_state s, const schedule_event& event) {
  std::visit([&s](const auto& e) { evolve(s, e); }, event);
  return s;
}

std::string schedule_stream(std::string_view schedule_id) { return "schedule-" + std::string(schedule_id); }

std::string schedule_fire_event_id(std::string_view schedule_id, std::chrono::sys_seconds fire_time) {
  return name_uuid("schedule.fired\n" + std::string(schedule_id) + "\n" + format_utc(fire_time));
}

std::string schedule_job_id(std::string_view schedule_id, std::chrono::sys_seconds fire_time, std::size_t index) {
  return name_uuid("schedule.job\n" + std::string(schedule_id) + "\n" + format_utc(fire_time) + "\n" +
                   std::to_string(index));
}

}  // namespace atrium
