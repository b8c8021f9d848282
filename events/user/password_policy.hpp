#pragma once
/// The password policy (docs/access.md "Password policy"): what a new password must be,
/// on `POST /v1/users`, `PATCH /v1/users/{id}` (own change or an admin's reset) and the
/// bootstrap admin's first start. Checked on the clear text before it is hashed.

#include <cstddef>
#include <string_view>

#include "events/error.hpp"

namespace atrium {

inline constexpr std::size_t k_min_password_code_points = 12;
inline constexpr std::size_t k_max_password_bytes = 1024;

/// Checks `password` (UTF-8) for the user `username`. Errors: `invalid_argument` with
/// `details` `{"field":"password","reason":R}`, R being
/// * `too_short`: fewer than 12 code points;
/// * `too_long`: more than 1024 bytes;
/// * `contains_username`: equal to or containing the username, ignoring ASCII case;
/// * `common`: in the list of common passwords (events/user/common_passwords.inc),
///   ignoring ASCII case, also once trailing digits and punctuation (and leading digits)
///   are taken off (`Password2024!`), or a list entry repeated (`monkeymonkey`).
[[nodiscard]] result<void> check_password_policy(std::string_view password, std::string_view username);

}  // namespace atrium
