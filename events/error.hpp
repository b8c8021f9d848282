#pragma once
/// Domain errors as values.
///
/// Every expected failure in Atrium is an `atrium::error` carried in a
/// `std::expected<T, atrium::error>` (`atrium::result<T>`), never an exception.
/// Adapters map `errc` to their own vocabulary (HTTP status, exit code); see
/// `http_status()` in `adapters/http/api.hpp` for the HTTP mapping.

#include <expected>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace atrium {

/// The kinds of failure a command, a query or a port can report.
enum class errc {
  invalid_argument,       ///< malformed or out-of-range input (HTTP 400)
  unauthenticated,        ///< missing, unknown or expired credentials (HTTP 401)
  forbidden,              ///< the caller may not do this (HTTP 403)
  not_found,              ///< no such entity, or its existence is private (HTTP 404)
  version_conflict,       ///< expected version did not match; details carry `current_version` (HTTP 409)
  already_exists,         ///< a unique name or id is taken (HTTP 409)
  failed_precondition,    ///< the entity's state refuses the command, e.g. archived (HTTP 409)
  precondition_required,  ///< a required `If-Match` is missing (HTTP 428)
  payload_too_large,      ///< a request body over the limit (HTTP 413)
  gone,                   ///< it existed but was removed for good, e.g. an expired job result (HTTP 410)
  unavailable,            ///< a dependency is down or shutting down (HTTP 503)
  internal,               ///< a bug or storage corruption (HTTP 500)
};

/// The stable wire name of an error kind, e.g. `"version_conflict"`.
[[nodiscard]] std::string_view to_string(errc code) noexcept;

/// A domain error: a kind, a human-readable message and machine-readable details
/// (a JSON object, possibly empty), served as
/// `{"error": {"code": ..., "message": ..., "details": {...}}}`.
struct error {
  errc code = errc::internal;
  std::string message;
  nlohmann::json details = nlohmann::json::object();
};

/// A value or a domain error.
template <class T>
using result = std::expected<T, error>;

/// Shorthand to build an unexpected error: `return fail(errc::not_found, "no such project");`
[[nodiscard]] inline std::unexpected<error> fail(errc code, std::string message,
                                                 nlohmann::json details = nlohmann::json::object()) {
  return std::unexpected<error>(error{code, std::move(message), std::move(details)});
}

}  // namespace atrium
