#pragma once
/// The API shapes of a container spec's `limits` and `health` (docs/api.md,
/// "Containers"), shared by the HTTP adapter (parsing request bodies) and the container
/// view (writing them back):
///
///   limits: {"memory_bytes": int, "cpus": number, "pids": int}      (each optional)
///   health: {"http": {"port": int, "path": "/…"}} | {"tcp": {"port": int}}
///           | {"exec": ["argv", …]}, plus optional "interval_s", "timeout_s",
///           "retries", "start_period_s" (integers; defaults 30, 30, 3, 0)
///
/// The parsers check shapes and types only; ranges (a negative limit, a health port not
/// declared) are the decider's, so that every entry point gets the same errors.

#include <optional>

#include <nlohmann/json.hpp>

#include "events/container/container_events.hpp"
#include "events/error.hpp"

namespace atrium {

/// `limits` in the API shape: cpus as a number of cores (millicpus / 1000), absent
/// members as null.
[[nodiscard]] nlohmann::json limits_to_api(const container_limits_spec& l);

/// Parses `limits` (an object; null or missing members are unlimited; `cpus` is rounded
/// to millicores). Errors: `invalid_argument` with details.field `limits` or
/// `limits.<member>` for another shape, a non-integer byte or pid count, an unknown member,
/// or a value out of the 64-bit range.
[[nodiscard]] result<container_limits_spec> limits_from_api(const nlohmann::json& j);

/// `health` in the API shape, or null when there is no check.
[[nodiscard]] nlohmann::json health_to_api(const std::optional<container_health_spec>& h);

/// Parses `health` (null: no check). Errors: `invalid_argument` with details.field
/// `health` or `health.<member>` when it is not an object with exactly one of `http`,
/// `tcp`, `exec` in its shape, has an unknown member, or a timing that is not an integer.
[[nodiscard]] result<std::optional<container_health_spec>> health_from_api(const nlohmann::json& j);

}  // namespace atrium
