#pragma once
/// Who issues a command: the authenticated user, with the global roles and status
/// the adapter resolved. Deciders use it for the "who may act" invariants.

#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace atrium {

/// Global roles (docs/design.md, "Domain"; docs/access.md, "Roles").
enum class global_role { admin, member, auditor };

/// Per-project roles, from least to most permissive.
enum class project_role { viewer, editor, owner };

/// `"admin"`, `"member"`, `"auditor"`.
[[nodiscard]] std::string_view to_string(global_role r) noexcept;
/// `"viewer"`, `"editor"`, `"owner"`.
[[nodiscard]] std::string_view to_string(project_role r) noexcept;
/// Parses a global role name; nullopt if unknown.
[[nodiscard]] std::optional<global_role> parse_global_role(std::string_view s) noexcept;
/// Parses a project role name; nullopt if unknown.
[[nodiscard]] std::optional<project_role> parse_project_role(std::string_view s) noexcept;

/// What an API token may be used for (docs/access.md, "API tokens"). A request made
/// with a token may do what its owner may do *and* what one of its scopes allows.
enum class token_scope {
  events_read,  ///< `events:read`: the read routes of the event log, streams, SSE and WebSocket
  jobs_work,    ///< `jobs:work`: reading jobs and their output, and the worker routes
  admin,        ///< `admin`: everything the token's owner may do
};

/// `"events:read"`, `"jobs:work"`, `"admin"`.
[[nodiscard]] std::string_view to_string(token_scope s) noexcept;
/// Parses a scope name; nullopt if unknown.
[[nodiscard]] std::optional<token_scope> parse_token_scope(std::string_view s) noexcept;

/// The acting user of a command.
struct principal {
  std::string user_id;          ///< bare id (no `user-` prefix); `system` for bootstrap
  std::set<global_role> roles;  ///< global roles held now
  bool disabled = false;        ///< a disabled user cannot act
  /// Ids of every group the user belongs to, directly or through nested groups (resolved
  /// by the adapter from the groups projection). Grants to any of them count as the user's.
  std::set<std::string> groups;
  /// The scopes of the API token the request was made with; nullopt for a session (a
  /// login), which carries all of its user's permissions.
  std::optional<std::set<token_scope>> scopes;

  /// True when this principal may use `s`: a session always, a token when it holds `s`
  /// or `admin`.
  [[nodiscard]] bool scoped_to(token_scope s) const {
    return !scopes || scopes->contains(s) || scopes->contains(token_scope::admin);
  }

  [[nodiscard]] bool has(global_role r) const { return roles.contains(r); }
  [[nodiscard]] bool is_admin() const { return has(global_role::admin); }
  /// The stream id used as the `actor` of events: `user-<id>`, or `system`.
  [[nodiscard]] std::string actor_stream() const { return user_id == "system" ? user_id : "user-" + user_id; }
  /// The built-in principal used for first-start bootstrap.
  [[nodiscard]] static principal system() { return principal{"system", {global_role::admin}, false, {}}; }
};

}  // namespace atrium
