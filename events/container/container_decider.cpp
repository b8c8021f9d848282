#include "events/container/container_decider.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "events/decide.hpp"
#include "events/exhaustive.hpp"
#include "events/text.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;

constexpr std::uint64_t max_backoff_ms = 300000;

std::unexpected<error> invalid(std::string message, const char* field) {
  return fail(errc::invalid_argument, std::move(message), {{"field", field}});
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool env_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool env_key_char(char c) { return env_key_start(c) || (c >= '0' && c <= '9'); }

/// The spec members a declaration and a spec change share, validated together.
struct spec_view {
  const std::string& image;
  const std::vector<std::string>& command;
  const std::map<std::string, std::string>& env;
  const std::vector<int>& ports;
  const std::string& runtime;
  const container_limits_spec& limits;
  const std::string& restart;
  const std::optional<container_health_spec>& health;
};

bool in_range(std::int64_t v, std::int64_t lo, std::int64_t hi) { return v >= lo && v <= hi; }

result<void> validate_limits(const container_limits_spec& l) {
  if (l.memory_bytes && !in_range(*l.memory_bytes, 4ll << 20, 1ll << 40)) {
    return invalid("limits.memory_bytes must be 4194304 (4 MiB) to 1099511627776 (1 TiB)", "limits.memory_bytes");
  }
  if (l.millicpus && !in_range(*l.millicpus, 10, 1024000)) {
    return invalid("limits.cpus must be 0.01 to 1024 cores", "limits.cpus");
  }
  if (l.pids && !in_range(*l.pids, 1, 1048576)) return invalid("limits.pids must be 1 to 1048576", "limits.pids");
  return {};
}

result<void> validate_health(const container_health_spec& h, const std::vector<int>& ports) {
  if (h.kind == "http" || h.kind == "tcp") {
    if (std::find(ports.begin(), ports.end(), h.port) == ports.end()) {
      return invalid("health." + h.kind + ".port must be one of the declared ports", "health.port");
    }
    if (h.kind == "http") {
      if (h.path.empty() || h.path[0] != '/' || h.path.size() > 1024 || first_refused(h.path, text_kind::label) >= 0 ||
          std::any_of(h.path.begin(), h.path.end(), [](unsigned char ch) { return ch <= 0x20 || ch == 0x7f; })) {
        return invalid("health.http.path must start with / and have at most 1024 visible characters", "health.path");
      }
    }
  } else if (h.kind == "exec") {
    if (h.exec.empty() || h.exec.size() > 64 || h.exec[0].empty()) {
      return invalid("health.exec must be 1 to 64 arguments, the first not empty", "health.exec");
    }
    for (const auto& arg : h.exec) {
      if (arg.size() > 4096) return invalid("each health.exec argument is at most 4096 bytes", "health.exec");
    }
  } else {
    return invalid("health must have one of http, tcp or exec", "health");
  }
  if (!in_range(h.interval_s, 1, 86400)) return invalid("health.interval_s must be 1 to 86400", "health.interval_s");
  if (!in_range(h.timeout_s, 1, 3600)) return invalid("health.timeout_s must be 1 to 3600", "health.timeout_s");
  if (!in_range(h.retries, 1, 100)) return invalid("health.retries must be 1 to 100", "health.retries");
  if (!in_range(h.start_period_s, 0, 86400)) {
    return invalid("health.start_period_s must be 0 to 86400", "health.start_period_s");
  }
  return {};
}

result<void> validate_spec(const spec_view& c) {
  if (c.runtime != "process" && c.runtime != "docker") {
    return invalid("runtime must be process or docker", "runtime");
  }
  const bool image_ok =
      c.image.size() <= 255 &&
      std::none_of(c.image.begin(), c.image.end(), [](unsigned char ch) { return std::isspace(ch); }) &&
      first_refused(c.image, text_kind::label) < 0;
  if (!image_ok || (c.runtime == "docker" && c.image.empty())) {
    return invalid(c.runtime == "docker" && c.image.empty()
                       ? "image is required by the docker runtime"
                       : "image must be 1-255 bytes of UTF-8 without whitespace or control characters",
                   "image");
  }
  if (c.runtime == "process" && (c.command.empty() || c.command[0].empty())) {
    return invalid("command is required by the process runtime (an argv, the first argument not empty)", "command");
  }
  if (c.command.size() > 64) return invalid("command has at most 64 arguments", "command");
  for (const auto& arg : c.command) {
    if (arg.size() > 4096) return invalid("each command argument is at most 4096 bytes", "command");
  }
  if (c.env.size() > 128) return invalid("env has at most 128 variables", "env");
  for (const auto& [key, value] : c.env) {
    if (key.empty() || !env_key_start(key[0]) || !std::all_of(key.begin(), key.end(), env_key_char)) {
      return invalid("env keys must match [A-Za-z_][A-Za-z0-9_]*", "env");
    }
    if (value.size() > 32768) return invalid("env values are at most 32768 bytes", "env");
  }
  if (c.ports.size() > 32) return invalid("at most 32 ports", "ports");
  std::set<int> seen;
  for (int port : c.ports) {
    if (port < 1 || port > 65535) return invalid("ports must be 1-65535", "ports");
    if (!seen.insert(port).second) return invalid("ports must be distinct", "ports");
  }
  if (auto ok = validate_limits(c.limits); !ok) return ok;
  if (c.restart != "always" && c.restart != "on-failure" && c.restart != "never") {
    return invalid("restart must be always, on-failure or never", "restart");
  }
  if (c.health) return validate_health(*c.health, c.ports);
  return {};
}

result<void> validate(const declare_container& c) {
  if (c.container_id.empty()) return invalid("container id is empty", "container_id");
  // [a-z0-9][a-z0-9_.-]{0,62}
  const bool name_ok = !c.name.empty() && c.name.size() <= 63 && lower_alnum(c.name[0]) &&
                       std::all_of(c.name.begin(), c.name.end(),
                                   [](char ch) { return lower_alnum(ch) || ch == '_' || ch == '.' || ch == '-'; });
  if (!name_ok) return invalid("name must match [a-z0-9][a-z0-9_.-]{0,62}", "name");
  return validate_spec({c.image, c.command, c.env, c.ports, c.runtime, c.limits, c.restart, c.health});
}

bool reason_ok(const std::string& r) {
  return !r.empty() && r.size() <= 64 &&
         std::all_of(r.begin(), r.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || ch == '_'; });
}

// decide: the container events the decider builds, one overload each (an event of another
// stream has none, so building it here fails to compile).
proposed_event emit(const container_declared& e) { return make_event(e); }
proposed_event emit(const container_start_requested& e) { return make_event(e); }
proposed_event emit(const container_started& e) { return make_event(e); }
proposed_event emit(const container_health_changed& e) { return make_event(e); }
proposed_event emit(const container_exited& e) { return make_event(e); }
proposed_event emit(const container_restarted& e) { return make_event(e); }
proposed_event emit(const container_stop_requested& e) { return make_event(e); }
proposed_event emit(const container_stopped& e) { return make_event(e); }
proposed_event emit(const container_removed& e) { return make_event(e); }
proposed_event emit(const container_spec_changed& e) { return make_event(e); }

struct decider {
  const container_state& state;
  const principal& actor;

  [[nodiscard]] std::unexpected<error> illegal(std::string message) const {
    return fail(errc::failed_precondition, std::move(message),
                {{"observed", state.observed}, {"desired", state.desired}});
  }

  [[nodiscard]] result<void> require_admin() const {
    if (!actor.is_admin()) return fail(errc::forbidden, "only admins manage containers");
    return {};
  }

  /// Runtime reports come only from the in-process runtime, i.e. the system principal.
  [[nodiscard]] result<void> require_runtime() const {
    if (actor.user_id != principal::system().user_id) {
      return fail(errc::forbidden, "only the container runtime reports container state");
    }
    return {};
  }

  result<events> operator()(const declare_container& c) const {
    if (auto ok = require_admin(); !ok) return std::unexpected(ok.error());
    if (state.exists) return fail(errc::already_exists, "container already exists");
    if (auto ok = validate(c); !ok) return std::unexpected(ok.error());
    return events{emit(container_declared{c.container_id, c.name, c.image, c.command, c.env, c.ports, actor.user_id,
                                          c.runtime, c.limits, c.restart, c.health})};
  }

  result<events> operator()(const change_spec& c) const {
    if (auto ok = require_admin(); !ok) return std::unexpected(ok.error());
    if (c.runtime && *c.runtime != state.runtime) {
      return invalid("the runtime of a container cannot change; declare a new container", "runtime");
    }
    container_spec_changed e{c.image.value_or(state.image),
                             c.command.value_or(state.command),
                             c.env.value_or(state.env),
                             c.ports.value_or(state.ports),
                             state.runtime,
                             c.limits.value_or(state.limits),
                             c.restart.value_or(state.restart),
                             c.health.value_or(state.health_check),
                             actor.user_id};
    if (auto ok = validate_spec({e.image, e.command, e.env, e.ports, e.runtime, e.limits, e.restart, e.health}); !ok) {
      return std::unexpected(ok.error());
    }
    if (e.image == state.image && e.command == state.command && e.env == state.env && e.ports == state.ports &&
        e.limits == state.limits && e.restart == state.restart && e.health == state.health_check) {
      return events{};
    }
    return events{emit(std::move(e))};
  }

  result<events> operator()(const request_start&) const {
    if (auto ok = require_admin(); !ok) return std::unexpected(ok.error());
    if (state.desired == "running") return events{};
    return events{emit(container_start_requested{})};
  }

  result<events> operator()(const request_stop&) const {
    if (auto ok = require_admin(); !ok) return std::unexpected(ok.error());
    if (state.desired == "stopped") return events{};
    return events{emit(container_stop_requested{})};
  }

  result<events> operator()(const remove_container&) const {
    if (auto ok = require_admin(); !ok) return std::unexpected(ok.error());
    if (state.observed == "running" || state.observed == "starting") {
      return illegal("stop the container before removing it");
    }
    return events{emit(container_removed{})};
  }

  result<events> operator()(const report_started& c) const {
    if (auto ok = require_runtime(); !ok) return std::unexpected(ok.error());
    if (state.desired != "running") return illegal("the container should not run");
    if (state.observed == "running") return illegal("the container is already running");
    if (c.runtime_id.empty()) return invalid("runtime id is empty", "runtime_id");
    return events{emit(container_started{c.runtime_id})};
  }

  result<events> operator()(const report_health& c) const {
    if (auto ok = require_runtime(); !ok) return std::unexpected(ok.error());
    if (state.observed != "running") return illegal("only a running container has a health");
    if (c.health != "healthy" && c.health != "unhealthy" && c.health != "starting") {
      return invalid("health must be healthy, unhealthy or starting", "health");
    }
    if (c.health == state.health) return events{};
    return events{emit(container_health_changed{c.health})};
  }

  result<events> operator()(const report_exited& c) const {
    if (auto ok = require_runtime(); !ok) return std::unexpected(ok.error());
    if (state.observed != "running" && state.observed != "starting") {
      return illegal("only a running or starting container exits");
    }
    if (!reason_ok(c.reason)) return invalid("reason must be 1-64 characters of [a-z_]", "reason");
    if (c.ran_ms < 0) return invalid("ran_ms must not be negative", "ran_ms");
    return events{emit(container_exited{c.exit_code, c.reason, c.ran_ms})};
  }

  result<events> operator()(const report_restarted&) const {
    if (auto ok = require_runtime(); !ok) return std::unexpected(ok.error());
    if (state.observed != "exited" || state.desired != "running") {
      return illegal("only an exited container that should run is restarted");
    }
    if (!restart_due(state)) return illegal("the restart policy " + state.restart + " does not restart this exit");
    const auto attempt = static_cast<std::uint32_t>(state.restarts + 1);
    return events{emit(container_restarted{attempt, restart_backoff_ms(attempt)})};
  }

  result<events> operator()(const report_stopped&) const {
    if (auto ok = require_runtime(); !ok) return std::unexpected(ok.error());
    if (state.observed == "stopped") return events{};
    if (state.observed != "running" && state.observed != "starting" && state.observed != "exited") {
      return illegal("only a started container stops");
    }
    return events{emit(container_stopped{})};
  }
};

// evolve: one overload per container_event alternative (see container_decider.hpp).

void evolve(container_state& s, const container_declared& e) {
  s.exists = true;
  s.container_id = e.container_id;
  s.name = e.name;
  s.image = e.image;
  s.command = e.command;
  s.env = e.env;
  s.ports = e.ports;
  s.runtime = e.runtime;
  s.limits = e.limits;
  s.restart = e.restart;
  s.health_check = e.health;
  s.spec_version = 1;
  s.declared_by = e.declared_by;
  s.desired = "stopped";
  s.observed = "declared";
}

void evolve(container_state& s, const container_spec_changed& e) {
  s.image = e.image;
  s.command = e.command;
  s.env = e.env;
  s.ports = e.ports;
  s.limits = e.limits;
  s.restart = e.restart;
  s.health_check = e.health;
  // The version of this event: evolve does not know it, so the entity's folded version
  // + 1 is used (every event advances the version by one; see `version`).
  s.spec_version = s.version + 1;
}

void evolve(container_state& s, const container_start_requested&) {
  s.desired = "running";
  s.restarts = 0;
}

void evolve(container_state& s, const container_started& e) {
  s.observed = "running";
  s.runtime_id = e.runtime_id;
  s.health.clear();
}

void evolve(container_state& s, const container_health_changed& e) { s.health = e.health; }

void evolve(container_state& s, const container_exited& e) {
  s.observed = "exited";
  s.exit_code = e.exit_code;
  s.exit_reason = e.reason;
  s.health.clear();
  if (e.ran_ms >= 600000) s.restarts = 0;
}

void evolve(container_state& s, const container_restarted& e) {
  s.observed = "starting";
  s.restarts = e.attempt;
}

void evolve(container_state& s, const container_stop_requested&) { s.desired = "stopped"; }

void evolve(container_state& s, const container_stopped&) {
  s.observed = "stopped";
  s.health.clear();
}

void evolve(container_state& s, const container_removed&) {
  s.removed = true;
  s.desired = "removed";
  s.observed = "removed";
  s.health.clear();
}

/// The fallback: chosen only for a `container_event` alternative that has no overload above
/// (an exact non-template match beats it), and then it fails to compile.
template <class E>
void evolve(container_state&, const E&) {
  static_assert(no_handler_for<E>, "a container_event alternative has no evolve(container_state&, const E&) overload");
}

}  // namespace

bool restart_due(const container_state& s) noexcept {
  if (s.exit_reason == "rolled" || s.restart == "never") return false;
  if (s.restart == "always") return true;
  return !(s.exit_reason == "exited" && s.exit_code == 0);
}

std::uint64_t restart_backoff_ms(std::uint32_t attempt) noexcept {
  if (attempt == 0) return 0;
  // 1000 · 2^9 already exceeds the cap, so larger shifts never run (and never overflow).
  if (attempt > 10) return max_backoff_ms;
  return std::min<std::uint64_t>(1000ull << (attempt - 1), max_backoff_ms);
}

result<std::vector<proposed_event>> decide(const container_state& state, const container_command& command,
                                           const principal& actor) {
  return decide_admitted<decider>(state, command, actor, "container", state.exists && !state.removed,
                                  std::holds_alternative<declare_container>(command));
}

container_state evolve(container_state s, const container_event& event) {
  std::visit([&s](const auto& e) { evolve(s, e); }, event);
  return s;
}

std::string container_stream(std::string_view container_id) { return "container-" + std::string(container_id); }

}  // namespace atrium
