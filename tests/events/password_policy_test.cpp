/// The password policy (events/user/password_policy.hpp): length in code points and
/// bytes, the username, the common list and its variants.

#include <catch2/catch.hpp>

#include "events/user/password_policy.hpp"

namespace {

/// The refusal's `details.reason`, or "ok".
std::string reason(std::string_view password, std::string_view username = "alice") {
  auto r = atrium::check_password_policy(password, username);
  if (r) return "ok";
  CHECK(r.error().code == atrium::errc::invalid_argument);
  CHECK(r.error().details.at("field") == "password");
  return r.error().details.at("reason").get<std::string>();
}

}  // namespace

TEST_CASE("password policy: at least 12 code points, at most 1024 bytes", "[password]") {
  CHECK(reason("short-pass1") == "too_short");             // 11
  CHECK(reason("tall-ship-42") == "ok");                   // 12
  CHECK(reason("ééééééééééé") == "too_short");             // 11 code points, 22 bytes
  CHECK(reason("éééééééééééé") == "ok");                   // 12 code points
  CHECK(reason(std::string(1024, 'k') + "") == "common");  // one character repeated
  CHECK(reason(std::string(1025, 'k')) == "too_long");
  std::string mixed;
  for (int i = 0; mixed.size() < 1024; ++i) mixed += static_cast<char>('a' + (i * 7) % 26);
  CHECK(reason(mixed.substr(0, 1024)) == "ok");
  CHECK(reason(mixed.substr(0, 1020) + "xxxxx") == "too_long");
}

TEST_CASE("password policy: not the username, in any case", "[password]") {
  CHECK(reason("alice-in-wonderland", "alice") == "contains_username");
  CHECK(reason("My-ALICE-is-long", "alice") == "contains_username");
  CHECK(reason("dragonfly-meadow", "alice") == "ok");
  CHECK(reason("mallory1234567", "mallory") == "contains_username");
}

TEST_CASE("password policy: not common, nor common with digits or symbols around it", "[password]") {
  CHECK(reason("qwertyuiop123") == "common");
  CHECK(reason("Password2024!") == "common");
  CHECK(reason("123456password") == "common");
  CHECK(reason("monkeymonkey") == "common");
  CHECK(reason("1qaz2wsx3edc") == "common");
  CHECK(reason("correct horse battery staple") == "common");
  CHECK(reason("!!!!!!!!!!!!") == "common");
  CHECK(reason("sunshine-and-rain") == "ok");  // a list word inside a longer phrase is fine
  CHECK(reason("839201847362") == "ok");       // digits, but no list entry
}
