#pragma once
/// The connection aggregate as pure code: a named link to an external database (driver
/// plus parameters) whose credentials live in the vault.
///
/// Invariants: no event carries a secret (only `vault_ref` and `fingerprint`); owners
/// update, rotate credentials, share and delete; users of a connection may only use it
/// in jobs and test it; admins act as owners; a connection keeps at least one direct
/// user owner; a deleted connection is gone (every command on it is `not_found`); a
/// disabled user cannot act.
///
/// Access is granted to users and to groups. A principal's role is the most permissive
/// of its direct user grant and the grants to any group in `principal::groups` (the
/// adapter resolves those transitively):
///
///   user_grants[p.user_id]          ─┐
///   group_grants[g] for g ∈ p.groups ─┴─▶ most permissive ─▶ role_of(p)   (admin ─▶ owner)

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/connection/connection_commands.hpp"
#include "events/connection/connection_events.hpp"
#include "events/error.hpp"
#include "events/principal.hpp"
#include "events/registry.hpp"

namespace atrium {

/// Roles on a connection, from least to most permissive: a `user` may use the
/// connection in jobs and test it; an `owner` also updates it, rotates its credentials,
/// shares it and deletes it.
enum class connection_role { user, owner };

/// `"user"`, `"owner"`.
[[nodiscard]] std::string_view to_string(connection_role r) noexcept;
/// Parses a connection role name; nullopt if unknown.
[[nodiscard]] std::optional<connection_role> parse_connection_role(std::string_view s) noexcept;

/// The outcome of the last `connection.tested`.
struct connection_test_result {
  bool tested = false;  ///< false until the first test
  bool ok = false;
  std::string error;
  std::uint64_t latency_ms = 0;
};

/// The folded state of one connection.
struct connection_state {
  bool exists = false;
  bool deleted = false;
  std::string connection_id;
  std::string name;
  std::string driver;
  nlohmann::json params = nlohmann::json::object();
  std::string vault_ref;
  std::string fingerprint;
  std::string created_by;
  std::map<std::string, connection_role> user_grants;   ///< user id → role
  std::map<std::string, connection_role> group_grants;  ///< group id → role
  connection_test_result last_test;
  std::uint64_t version = 0;  ///< stream version of the last folded event

  /// The principal's role: `owner` for admins; otherwise the most permissive of its
  /// direct user grant and the grants to the groups in `p.groups`. Nullopt when it has
  /// none, or when the connection does not exist or is deleted.
  [[nodiscard]] std::optional<connection_role> role_of(const principal& p) const;
  /// True when the principal holds any role here (may use it in jobs and test it).
  [[nodiscard]] bool can_use(const principal& p) const;
  /// Number of users granted `owner` directly (group grants do not count).
  [[nodiscard]] std::size_t owner_count() const;
};

/// Checks a connection definition before anything is stored. It is pure, and the HTTP
/// adapter calls it before the credentials reach the vault.
///
/// - `sqlite`: `params` is exactly `{"path": <path, at most 4096 bytes, no NUL>}` (relative: inside `--sqlite-root`);
///   `credentials` is `{}` or null.
/// - `postgres`: `params` is `{"host", "port"?, "database", "sslmode"?}`. `host` is 1–253
///   characters of letters, digits, `.`, `-` and `:`. `port` is an integer 1–65535
///   (default 5432). `database` is 1–63 bytes without NUL. `sslmode` is one of `disable`,
///   `allow`, `prefer` (the default), `require`, `verify-ca` or `verify-full`.
///   `credentials` is `{"user": 1–63 bytes, "password"?: at most 1024 bytes}`.
///
/// Errors: `invalid_argument` with details `{"field": …}`, for example `"driver"`,
/// `"params.port"`, `"params.xyz"` for an unknown key, or `"credentials.user"`. No error
/// message or detail ever contains a credential value.
[[nodiscard]] result<void> validate_connection_spec(std::string_view driver, const nlohmann::json& params,
                                                    const nlohmann::json& credentials);

/// The parameter half of `validate_connection_spec` (the decider runs it on create and
/// update). Same rules and errors.
[[nodiscard]] result<void> validate_connection_params(std::string_view driver, const nlohmann::json& params);

/// `params` with the driver's defaults filled in (`postgres`: `port` 5432, `sslmode`
/// `"prefer"`). Expects params that passed `validate_connection_params`; others are
/// returned unchanged.
[[nodiscard]] nlohmann::json normalized_params(std::string_view driver, const nlohmann::json& params);

/// Decides a command. Errors: `forbidden` (caller disabled; an auditor or role-less
/// user creating; no role or not an owner), `not_found` (no such connection, deleted,
/// or revoking a grant that does not exist), `already_exists` (creating an existing
/// id), `invalid_argument` (bad id, name, driver, params, grantee or role; details name
/// the `field`), `failed_precondition` (the last direct user owner would be revoked or
/// demoted).
///
/// A create decides `connection.created` and then `connection.access_granted` (the
/// creator as `owner`), with params normalized. An update decides one
/// `connection.updated` with the full merged values. These decide no events: an update
/// that changes nothing, a rotation to the same fingerprint, and a grant of the role
/// already held. A test error longer than 4096 bytes is cut at a UTF-8 character
/// boundary.
[[nodiscard]] result<std::vector<proposed_event>> decide(const connection_state& state,
                                                         const connection_command& command, const principal& actor);

/// Folds one event into the state (does not touch `version`).
///
/// Exhaustive by construction (events/exhaustive.hpp): connection_decider.cpp has one overload
/// `evolve(connection_state&, const <event>&)` per `connection_event` alternative, dispatched with
/// `std::visit`, and a `static_assert` fallback template, so an alternative added to
/// `connection_event` without its overload fails to compile. `decide` builds each event through
/// `emit(const <event>&)`, so `git grep "<event>&"` finds where it is decided and folded.
[[nodiscard]] connection_state evolve(connection_state state, const connection_event& event);

/// The stream id of a connection: `connection-<id>`.
[[nodiscard]] std::string connection_stream(std::string_view connection_id);

}  // namespace atrium
