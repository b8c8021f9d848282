// The password policy (password_policy.hpp).
#include "events/user/password_policy.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <unordered_set>

namespace atrium {
namespace {

constexpr std::string_view k_common[] = {
#include "events/user/common_passwords.inc"
};

const std::unordered_set<std::string_view>& common_set() {
  static const std::unordered_set<std::string_view> set(std::begin(k_common), std::end(k_common));
  return set;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

bool digit_or_punct(char ch) {
  const auto u = static_cast<unsigned char>(ch);
  return (u >= '0' && u <= '9') || (u < 0x80 && std::ispunct(u)) || u == ' ';
}

/// Whether `s` is a list entry, or one repeated (`abcabc`).
bool listed(std::string_view s) {
  if (s.empty()) return false;
  const auto& set = common_set();
  if (set.contains(s)) return true;
  for (std::size_t period = 1; period <= s.size() / 2; ++period) {
    if (s.size() % period != 0) continue;
    bool repeats = true;
    for (std::size_t i = period; i < s.size() && repeats; ++i) repeats = s[i] == s[i - period];
    if (repeats && (set.contains(s.substr(0, period)) || period == 1)) return true;
  }
  return false;
}

error refuse(const char* reason, std::string message) {
  return error{errc::invalid_argument, std::move(message), {{"field", "password"}, {"reason", reason}}};
}

}  // namespace

result<void> check_password_policy(std::string_view password, std::string_view username) {
  if (password.size() > k_max_password_bytes) {
    return std::unexpected(refuse("too_long", "password must be at most 1024 bytes"));
  }
  // Code points: every byte that does not continue a UTF-8 sequence starts one.
  const auto code_points = static_cast<std::size_t>(std::count_if(
      password.begin(), password.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; }));
  if (code_points < k_min_password_code_points) {
    return std::unexpected(refuse("too_short", "password must be at least 12 characters"));
  }
  const auto pw = lower(password);
  const auto name = lower(username);
  if (!name.empty() && pw.find(name) != std::string::npos) {
    return std::unexpected(refuse("contains_username", "password must not contain the username"));
  }
  // The whole, then the core without the digits and punctuation around it.
  std::string_view core(pw);
  while (!core.empty() && digit_or_punct(core.back())) core.remove_suffix(1);
  while (!core.empty() && digit_or_punct(core.front())) core.remove_prefix(1);
  if (listed(pw) || listed(core)) {
    return std::unexpected(
        refuse("common", "password is too common: choose one that is not on lists of leaked passwords"));
  }
  return {};
}

}  // namespace atrium
