#include "events/principal.hpp"

namespace atrium {

std::string_view to_string(global_role r) noexcept {
  switch (r) {
    case global_role::admin:
      return "admin";
    case global_role::member:
      return "member";
    case global_role::auditor:
      return "auditor";
  }
  return "member";
}

std::string_view to_string(project_role r) noexcept {
  switch (r) {
    case project_role::viewer:
      return "viewer";
    case project_role::editor:
      return "editor";
    case project_role::owner:
      return "owner";
  }
  return "viewer";
}

std::optional<global_role> parse_global_role(std::string_view s) noexcept {
  if (s == "admin") return global_role::admin;
  if (s == "member") return global_role::member;
  if (s == "auditor") return global_role::auditor;
  return std::nullopt;
}

std::optional<project_role> parse_project_role(std::string_view s) noexcept {
  if (s == "viewer") return project_role::viewer;
  if (s == "editor") return project_role::editor;
  if (s == "owner") return project_role::owner;
  return std::nullopt;
}

std::string_view to_string(token_scope s) noexcept {
  switch (s) {
    case token_scope::events_read:
      return "events:read";
    case token_scope::jobs_work:
      return "jobs:work";
    case token_scope::admin:
      return "admin";
  }
  return "admin";
}

std::optional<token_scope> parse_token_scope(std::string_view s) noexcept {
  if (s == "events:read") return token_scope::events_read;
  if (s == "jobs:work") return token_scope::jobs_work;
  if (s == "admin") return token_scope::admin;
  return std::nullopt;
}

}  // namespace atrium
