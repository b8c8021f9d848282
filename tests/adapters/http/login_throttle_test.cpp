/// Login throttling (adapters/http/login_throttle.hpp) on a clock the test moves: the
/// budgets, the doubling delay and its caps, the trusted address's short cap, resets,
/// the audit's rate limit and the bounded memory.

#include <catch2/catch.hpp>

#include "adapters/http/login_throttle.hpp"

namespace {

using atrium::http_adapter::address_of;
using atrium::http_adapter::login_throttle;
using std::chrono::seconds;

const auto t0 = login_throttle::clock::time_point{} + std::chrono::hours(1000);

}  // namespace

TEST_CASE("throttle: five free failures per account, then 1 s, 2 s, 4 s … up to 15 min", "[http][throttle]") {
  login_throttle t;
  auto now = t0;
  for (int i = 0; i < 4; ++i) {
    CHECK_FALSE(t.check("alice", "10.0.0.1", now));
    t.failed("alice", "10.0.0.1", now);
  }
  CHECK_FALSE(t.check("alice", "10.0.0.1", now));
  t.failed("alice", "10.0.0.1", now);  // the fifth: the budget is used
  auto b = t.check("alice", "10.0.0.1", now);
  REQUIRE(b);
  CHECK(b->scope == "account");
  CHECK(b->retry_after_s == 1);
  CHECK(t.check("alice", "10.0.0.9", now));      // the account, from anywhere
  CHECK_FALSE(t.check("bob", "10.0.0.1", now));  // not another account
  CHECK_FALSE(t.check("alice", "10.0.0.1", now + seconds(1)));
  std::int64_t expected = 2;
  for (int i = 0; i < 14; ++i) {
    now += seconds(b->retry_after_s);  // each delay waited out, the next guess fails again
    CHECK_FALSE(t.check("alice", "10.0.0.1", now));
    t.failed("alice", "10.0.0.1", now);
    b = t.check("alice", "10.0.0.1", now);
    REQUIRE(b);
    CHECK(b->retry_after_s == std::min<std::int64_t>(expected, 900));
    expected *= 2;
  }
  // A window after the last block ended forgets them all.
  now += seconds(900 + 15 * 60);
  CHECK_FALSE(t.check("alice", "10.0.0.1", now));
  t.failed("alice", "10.0.0.1", now);
  CHECK_FALSE(t.check("alice", "10.0.0.1", now));
}

TEST_CASE("throttle: a success resets the account and trusts the address (short cap)", "[http][throttle]") {
  login_throttle t;
  auto now = t0;
  t.succeeded("alice", "10.0.0.2", now);                             // alice's own machine
  for (int i = 0; i < 15; ++i) t.failed("alice", "10.0.0.66", now);  // an attacker elsewhere
  auto attacker = t.check("alice", "10.0.0.66", now);
  REQUIRE(attacker);
  CHECK(attacker->retry_after_s == 900);  // 2^10 s, capped
  auto owner = t.check("alice", "10.0.0.2", now);
  REQUIRE(owner);
  CHECK(owner->retry_after_s == 5);  // the trusted cap
  CHECK_FALSE(t.check("alice", "10.0.0.2", now + seconds(5)));
  t.succeeded("alice", "10.0.0.2", now + seconds(5));
  CHECK_FALSE(t.check("alice", "10.0.0.66", now + seconds(5)));  // the account's failures are gone
}

TEST_CASE("throttle: an address's budget spans accounts and blocks only that address", "[http][throttle]") {
  login_throttle t;
  for (int i = 0; i < 20; ++i) t.failed("user" + std::to_string(i), "10.0.0.3", t0);
  auto b = t.check("someone", "10.0.0.3", t0);
  REQUIRE(b);
  CHECK(b->scope == "address");
  CHECK(b->retry_after_s == 1);
  CHECK_FALSE(t.check("someone", "10.0.0.4", t0));
  t.succeeded("user1", "10.0.0.3", t0);  // a success does not reset the address
  CHECK(t.check("someone", "10.0.0.3", t0));
  // A window later the failures count from zero again.
  CHECK_FALSE(t.check("someone", "10.0.0.3", t0 + seconds(15 * 60 + 1)));
  t.failed("someone", "10.0.0.3", t0 + seconds(15 * 60 + 1));
  CHECK_FALSE(t.check("someone", "10.0.0.3", t0 + seconds(15 * 60 + 1)));
}

TEST_CASE("throttle: one audit per scope and key per window", "[http][throttle]") {
  login_throttle t;
  const login_throttle::block account{"account", 1};
  CHECK(t.should_audit(account, "alice", "10.0.0.1", t0));
  CHECK_FALSE(t.should_audit(account, "alice", "10.0.0.2", t0 + seconds(60)));
  CHECK(t.should_audit(account, "bob", "10.0.0.1", t0));
  CHECK(t.should_audit({"address", 1}, "alice", "10.0.0.1", t0));
  CHECK(t.should_audit(account, "alice", "10.0.0.1", t0 + seconds(15 * 60)));
}

TEST_CASE("throttle: memory is bounded, the least recently used evicted", "[http][throttle]") {
  login_throttle t({.max_entries = 100});
  for (int i = 0; i < 10000; ++i) t.failed("u" + std::to_string(i), "10.1." + std::to_string(i), t0);
  CHECK(t.size() == 200);
  for (int i = 0; i < 5; ++i) t.failed("u9999", "10.9.9.9", t0);
  CHECK(t.check("u9999", "10.9.9.8", t0));  // the newest are kept
}

TEST_CASE("throttle: the address of a peer", "[http][throttle]") {
  CHECK(address_of("127.0.0.1:40000") == "127.0.0.1");
  CHECK(address_of("[::1]:8080") == "::1");
  CHECK(address_of("::1:8080") == "::1");
  CHECK(address_of("") == "");
}
