#include "events/connection/connection_decider.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "events/decide.hpp"
#include "events/exhaustive.hpp"
#include "events/validation.hpp"

namespace atrium {
namespace {

using events = std::vector<proposed_event>;
using json = nlohmann::json;

constexpr std::size_t max_test_error = 4096;

std::unexpected<error> invalid(std::string field, std::string message) {
  return fail(errc::invalid_argument, std::move(message), {{"field", std::move(field)}});
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

/// The first key of `object` not in `allowed`, reported as `<prefix>.<key>`.
result<void> reject_unknown_keys(const json& object, std::initializer_list<std::string_view> allowed,
                                 const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return invalid(prefix + "." + key, "unknown field " + prefix + "." + key);
    }
  }
  return {};
}

/// A required or optional string member of `object`, at most `max` bytes, no NUL.
/// Never echoes the value: it may be a credential.
result<void> check_string(const json& object, const char* key, const std::string& field, std::size_t min,
                          std::size_t max, bool required) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (required) return invalid(field, field + " is required");
    return {};
  }
  if (!it->is_string()) return invalid(field, field + " must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() < min || s.size() > max || has_nul(s)) {
    return invalid(
        field, field + " must be " + std::to_string(min) + "-" + std::to_string(max) + " bytes without NUL characters");
  }
  return {};
}

result<void> validate_sqlite_params(const json& params) {
  if (auto ok = reject_unknown_keys(params, {"path"}, "params"); !ok) return ok;
  if (auto ok = check_string(params, "path", "params.path", 1, 4096, true); !ok) return ok;
  // Relative paths are taken inside atriumd's --sqlite-root; where a path may point is
  // the connection adapter's check (check_destination), not the aggregate's.
  return {};
}

result<void> validate_postgres_params(const json& params) {
  if (auto ok = reject_unknown_keys(params, {"host", "port", "database", "sslmode"}, "params"); !ok) return ok;
  if (auto ok = check_string(params, "host", "params.host", 1, 253, true); !ok) return ok;
  const auto& host = params.at("host").get_ref<const std::string&>();
  const bool host_chars = std::all_of(
      host.begin(), host.end(), [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-' || c == ':'; });
  if (!host_chars) return invalid("params.host", "params.host may hold only letters, digits, '.', '-' and ':'");
  if (auto it = params.find("port"); it != params.end()) {
    const bool in_range =
        (it->is_number_unsigned() && it->get<std::uint64_t>() >= 1 && it->get<std::uint64_t>() <= 65535) ||
        (it->is_number_integer() && it->get<std::int64_t>() >= 1 && it->get<std::int64_t>() <= 65535);
    if (!in_range) return invalid("params.port", "params.port must be an integer 1-65535");
  }
  if (auto ok = check_string(params, "database", "params.database", 1, 63, true); !ok) return ok;
  if (auto it = params.find("sslmode"); it != params.end()) {
    static constexpr std::array<std::string_view, 6> modes{"disable", "allow",     "prefer",
                                                           "require", "verify-ca", "verify-full"};
    if (!it->is_string() || std::find(modes.begin(), modes.end(), it->get_ref<const std::string&>()) == modes.end()) {
      return invalid("params.sslmode",
                     "params.sslmode must be disable, allow, prefer, require, verify-ca or verify-full");
    }
  }
  return {};
}

/// Ids end up in projection keys such as `user:<id>/<connection id>`, so a `/` (or a
/// space or a control character) would make a key ambiguous.
result<void> validate_id(const std::string& id, const char* field) {
  const bool bad_char =
      std::any_of(id.begin(), id.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f || c == '/'; });
  if (id.empty() || id.size() > 128 || bad_char) {
    return invalid(field, std::string(field) + " must be 1-128 characters without '/', spaces or control characters");
  }
  return {};
}

/// Vault references and fingerprints are opaque to the domain; only their size is bounded.
result<void> validate_ref(const std::string& value, const char* field) {
  if (value.size() > 1024 || has_nul(value)) {
    return invalid(field, std::string(field) + " must be at most 1024 bytes without NUL characters");
  }
  return {};
}

result<void> validate_grantee_type(const std::string& t) {
  if (t != "user" && t != "group") return invalid("grantee_type", "grantee_type must be user or group");
  return {};
}

// decide: the connection events the decider builds, one overload each (an event of another
// stream has none, so building it here fails to compile).
proposed_event emit(const connection_created& e) { return make_event(e); }
proposed_event emit(const connection_updated& e) { return make_event(e); }
proposed_event emit(const connection_credentials_rotated& e) { return make_event(e); }
proposed_event emit(const connection_tested& e) { return make_event(e); }
proposed_event emit(const connection_access_granted& e) { return make_event(e); }
proposed_event emit(const connection_access_revoked& e) { return make_event(e); }
proposed_event emit(const connection_deleted& e) { return make_event(e); }

struct decider {
  const connection_state& state;
  const principal& actor;

  [[nodiscard]] result<void> require_owner(const char* what) const {
    const auto role = state.role_of(actor);
    if (!role) return fail(errc::forbidden, "no access to this connection");
    if (*role < connection_role::owner) {
      return fail(errc::forbidden, std::string("only owners ") + what, {{"role", std::string(to_string(*role))}});
    }
    return {};
  }

  [[nodiscard]] const std::map<std::string, connection_role>& grants_of(const std::string& type) const {
    return type == "user" ? state.user_grants : state.group_grants;
  }

  /// True when taking the owner role from (type, id) would leave no direct user owner.
  [[nodiscard]] bool last_owner(const std::string& type, const std::string& id) const {
    if (type != "user") return false;
    const auto it = state.user_grants.find(id);
    return it != state.user_grants.end() && it->second == connection_role::owner && state.owner_count() == 1;
  }

  result<events> operator()(const create_connection& c) const {
    if (!actor.is_admin() && !actor.has(global_role::member)) {
      return fail(errc::forbidden, "only members and admins create connections");
    }
    if (state.exists) return fail(errc::already_exists, "connection already exists");
    if (auto ok = validate_id(c.connection_id, "connection_id"); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_name(c.name); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_connection_params(c.driver, c.params); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_ref(c.vault_ref, "vault_ref"); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_ref(c.fingerprint, "fingerprint"); !ok) return std::unexpected(ok.error());
    return events{emit(connection_created{c.connection_id, c.name, c.driver, normalized_params(c.driver, c.params),
                                          c.vault_ref, c.fingerprint, actor.user_id}),
                  emit(connection_access_granted{"user", actor.user_id, "owner"})};
  }

  result<events> operator()(const update_connection& c) const {
    if (auto ok = require_owner("update a connection"); !ok) return std::unexpected(ok.error());
    if (c.name) {
      if (auto ok = validate_name(*c.name); !ok) return std::unexpected(ok.error());
    }
    if (c.params) {
      if (auto ok = validate_connection_params(state.driver, *c.params); !ok) return std::unexpected(ok.error());
    }
    auto name = c.name.value_or(state.name);
    auto params = c.params ? normalized_params(state.driver, *c.params) : state.params;
    if (name == state.name && params == state.params) return events{};
    return events{emit(connection_updated{std::move(name), std::move(params)})};
  }

  result<events> operator()(const rotate_credentials& c) const {
    if (auto ok = require_owner("rotate credentials"); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_ref(c.vault_ref, "vault_ref"); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_ref(c.fingerprint, "fingerprint"); !ok) return std::unexpected(ok.error());
    if (c.fingerprint == state.fingerprint) return events{};
    return events{emit(connection_credentials_rotated{c.vault_ref, c.fingerprint})};
  }

  result<events> operator()(const record_test& c) const {
    if (!state.can_use(actor)) return fail(errc::forbidden, "no access to this connection");
    if (c.ok && !c.error.empty()) return invalid("error", "a successful test carries no error");
    return events{emit(connection_tested{c.ok, truncate_utf8(c.error, max_test_error), c.latency_ms})};
  }

  result<events> operator()(const grant_connection_access& c) const {
    if (auto ok = require_owner("share a connection"); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_grantee_type(c.grantee_type); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_id(c.grantee_id, "grantee_id"); !ok) return std::unexpected(ok.error());
    const auto role = parse_connection_role(c.role);
    if (!role) return invalid("role", "role must be user or owner");
    const auto& grants = grants_of(c.grantee_type);
    if (auto it = grants.find(c.grantee_id); it != grants.end() && it->second == *role) return events{};
    if (*role != connection_role::owner && last_owner(c.grantee_type, c.grantee_id)) {
      return fail(errc::failed_precondition, "a connection keeps at least one user owner");
    }
    return events{emit(connection_access_granted{c.grantee_type, c.grantee_id, c.role})};
  }

  result<events> operator()(const revoke_connection_access& c) const {
    if (auto ok = require_owner("revoke access"); !ok) return std::unexpected(ok.error());
    if (auto ok = validate_grantee_type(c.grantee_type); !ok) return std::unexpected(ok.error());
    if (!grants_of(c.grantee_type).contains(c.grantee_id)) {
      return fail(errc::not_found, "no such grant", {{"grantee_type", c.grantee_type}, {"grantee_id", c.grantee_id}});
    }
    if (last_owner(c.grantee_type, c.grantee_id)) {
      return fail(errc::failed_precondition, "a connection keeps at least one user owner");
    }
    return events{emit(connection_access_revoked{c.grantee_type, c.grantee_id})};
  }

  result<events> operator()(const delete_connection&) const {
    if (auto ok = require_owner("delete a connection"); !ok) return std::unexpected(ok.error());
    return events{emit(connection_deleted{})};
  }
};

// evolve: one overload per connection_event alternative (see connection_decider.hpp).

void evolve(connection_state& s, const connection_created& e) {
  s.exists = true;
  s.connection_id = e.connection_id;
  s.name = e.name;
  s.driver = e.driver;
  s.params = e.params;
  s.vault_ref = e.vault_ref;
  s.fingerprint = e.fingerprint;
  s.created_by = e.created_by;
}

void evolve(connection_state& s, const connection_updated& e) {
  s.name = e.name;
  s.params = e.params;
}

void evolve(connection_state& s, const connection_credentials_rotated& e) {
  s.vault_ref = e.vault_ref;
  s.fingerprint = e.fingerprint;
}

void evolve(connection_state& s, const connection_tested& e) {
  s.last_test = connection_test_result{true, e.ok, e.error, e.latency_ms};
}

void evolve(connection_state& s, const connection_access_granted& e) {
  auto& grants = e.grantee_type == "group" ? s.group_grants : s.user_grants;
  if (auto r = parse_connection_role(e.role)) grants[e.grantee_id] = *r;
}

void evolve(connection_state& s, const connection_access_revoked& e) {
  (e.grantee_type == "group" ? s.group_grants : s.user_grants).erase(e.grantee_id);
}

void evolve(connection_state& s, const connection_deleted&) { s.deleted = true; }

/// The fallback: chosen only for a `connection_event` alternative that has no overload above
/// (an exact non-template match beats it), and then it fails to compile.
template <class E>
void evolve(connection_state&, const E&) {
  static_assert(no_handler_for<E>,
                "a connection_event alternative has no evolve(connection_state&, const E&) overload");
}

}  // namespace

std::string_view to_string(connection_role r) noexcept { return r == connection_role::owner ? "owner" : "user"; }

std::optional<connection_role> parse_connection_role(std::string_view s) noexcept {
  if (s == "user") return connection_role::user;
  if (s == "owner") return connection_role::owner;
  return std::nullopt;
}

result<void> validate_connection_params(std::string_view driver, const nlohmann::json& params) {
  if (driver != "sqlite" && driver != "postgres") return invalid("driver", "driver must be sqlite or postgres");
  if (!params.is_object()) return invalid("params", "params must be an object");
  return driver == "sqlite" ? validate_sqlite_params(params) : validate_postgres_params(params);
}

result<void> validate_connection_spec(std::string_view driver, const nlohmann::json& params,
                                      const nlohmann::json& credentials) {
  if (auto ok = validate_connection_params(driver, params); !ok) return ok;
  if (!credentials.is_null() && !credentials.is_object())
    return invalid("credentials", "credentials must be an object");
  const json creds = credentials.is_null() ? json::object() : credentials;
  if (driver == "sqlite") return reject_unknown_keys(creds, {}, "credentials");
  if (auto ok = reject_unknown_keys(creds, {"user", "password"}, "credentials"); !ok) return ok;
  if (auto ok = check_string(creds, "user", "credentials.user", 1, 63, true); !ok) return ok;
  return check_string(creds, "password", "credentials.password", 0, 1024, false);
}

nlohmann::json normalized_params(std::string_view driver, const nlohmann::json& params) {
  json out = params;
  if (driver == "postgres" && out.is_object()) {
    if (!out.contains("port")) out["port"] = 5432;
    if (!out.contains("sslmode")) out["sslmode"] = "prefer";
  }
  return out;
}

std::optional<connection_role> connection_state::role_of(const principal& p) const {
  if (!exists || deleted) return std::nullopt;
  if (p.is_admin()) return connection_role::owner;
  std::optional<connection_role> best;
  const auto consider = [&](connection_role r) {
    if (!best || *best < r) best = r;
  };
  if (auto it = user_grants.find(p.user_id); it != user_grants.end()) consider(it->second);
  for (const auto& g : p.groups) {
    if (auto it = group_grants.find(g); it != group_grants.end()) consider(it->second);
  }
  return best;
}

bool connection_state::can_use(const principal& p) const { return role_of(p).has_value(); }

std::size_t connection_state::owner_count() const {
  return static_cast<std::size_t>(std::count_if(user_grants.begin(), user_grants.end(),
                                                [](const auto& g) { return g.second == connection_role::owner; }));
}

result<std::vector<proposed_event>> decide(const connection_state& state, const connection_command& command,
                                           const principal& actor) {
  return decide_admitted<decider>(state, command, actor, "connection", state.exists && !state.deleted,
                                  std::holds_alternative<create_connection>(command));
}

connection_state evolve(connection_state s, const connection_event& event) {
  std::visit([&s](const auto& e) { evolve(s, e); }, event);
  return s;
}

std::string connection_stream(std::string_view connection_id) { return "connection-" + std::string(connection_id); }

}  // namespace atrium
