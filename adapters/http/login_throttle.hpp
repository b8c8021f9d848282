#pragma once
/// Login throttling (docs/access.md "Login throttling"): a failure budget per account
/// (the username as claimed, whether or not it exists) and per client address, then an
/// exponential delay during which `POST /v1/auth/login` is answered 429 with
/// `Retry-After` without checking the password.
///
/// Failures count until a whole `window` has passed since the block they caused ended
/// (or since the last one, within the budget); then they are forgotten.
///
/// * Account: `account_budget` failures are free; the n-th failure past
///   them (n = 1, 2, …) blocks the account for 2^(n-1) s, at most `account_cap`. An
///   address that has logged in successfully as that user before ("trusted", at most
///   `k_trusted_per_account` remembered per account) is blocked at most `trusted_cap`
///   (the address budget still applies to it): an attacker elsewhere cannot lock the
///   real user out for long. A successful login resets the account's failures.
/// * Address: `address_budget` failures (over any accounts), then the
///   same doubling up to `address_cap`; it blocks only that address.
/// * Audit: `should_audit` lets one `security.login_throttled` per account or address
///   through per `window`.
///
/// State lives in memory only (a restart clears it), at most `max_entries` accounts and
/// as many addresses, the least recently used evicted first. Thread-safe. Pure: no
/// Beast, no store; the clock is passed in (tests drive it).

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace atrium::http_adapter {

class login_throttle {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t k_trusted_per_account = 16;

  struct config {
    std::size_t account_budget = 5;             ///< free failures of one account per window
    std::size_t address_budget = 20;            ///< free failures of one address per window
    std::chrono::seconds window{15 * 60};       ///< failures are forgotten after this long without one
    std::chrono::seconds account_cap{15 * 60};  ///< the longest account delay
    std::chrono::seconds trusted_cap{5};        ///< … for an address the user logged in from before
    std::chrono::seconds address_cap{15 * 60};  ///< the longest address delay
    std::size_t max_entries = 100000;           ///< accounts, and addresses, kept (LRU)
  };

  /// A refusal: which scope blocks and for how long (whole seconds, rounded up, >= 1).
  struct block {
    std::string scope;  ///< "account" or "address"
    std::int64_t retry_after_s = 0;
  };

  explicit login_throttle(config c) : config_(c) {}
  login_throttle() : login_throttle(config{}) {}

  /// Whether a login for `account` (normalized username) from `address` (an IP, no
  /// port) must wait; the address scope is asked first.
  [[nodiscard]] std::optional<block> check(const std::string& account, const std::string& address,
                                           clock::time_point now = clock::now());
  /// Counts a failed login (wrong password, unknown or disabled user).
  void failed(const std::string& account, const std::string& address, clock::time_point now = clock::now());
  /// A successful login: resets the account's failures and trusts `address` for it.
  void succeeded(const std::string& account, const std::string& address, clock::time_point now = clock::now());
  /// True (and remembered) when no `security.login_throttled` was let through for this
  /// scope and key within the last window.
  [[nodiscard]] bool should_audit(const block& b, const std::string& account, const std::string& address,
                                  clock::time_point now = clock::now());
  /// Accounts and addresses held (for tests: bounded by `max_entries` each).
  [[nodiscard]] std::size_t size() const;

 private:
  struct entry {
    std::size_t failures = 0;
    clock::time_point last_failure{};
    std::optional<clock::time_point> audited;
    std::vector<std::string> trusted;  // accounts only: addresses that logged in, newest last
  };
  /// A map with least-recently-used eviction.
  struct lru {
    std::list<std::string> order;  // most recent first
    std::unordered_map<std::string, std::pair<entry, std::list<std::string>::iterator>> items;
    entry* find(const std::string& key);
    entry& touch(const std::string& key, std::size_t cap);
  };
  [[nodiscard]] std::optional<std::int64_t> wait(const entry& e, std::size_t budget, std::chrono::seconds cap,
                                                 clock::time_point now) const;
  /// The block the entry's failures call for (0 s within the budget).
  [[nodiscard]] static std::chrono::seconds delay(const entry& e, std::size_t budget, std::chrono::seconds cap);
  void count(entry& e, std::size_t budget, std::chrono::seconds cap, clock::time_point now) const;

  config config_;
  mutable std::mutex mu_;
  lru accounts_;
  lru addresses_;
};

/// The address part of a peer "ip:port" (`[v6]:port` or `v6:port` alike), for the
/// address scope.
[[nodiscard]] std::string address_of(const std::string& peer);

}  // namespace atrium::http_adapter
