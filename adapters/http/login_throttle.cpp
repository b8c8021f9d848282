// Login throttling (login_throttle.hpp).
#include "adapters/http/login_throttle.hpp"

#include <algorithm>

namespace atrium::http_adapter {

login_throttle::entry* login_throttle::lru::find(const std::string& key) {
  auto it = items.find(key);
  if (it == items.end()) return nullptr;
  order.splice(order.begin(), order, it->second.second);
  return &it->second.first;
}

login_throttle::entry& login_throttle::lru::touch(const std::string& key, std::size_t cap) {
  if (auto* e = find(key)) return *e;
  while (!order.empty() && items.size() >= std::max<std::size_t>(cap, 1)) {
    items.erase(order.back());
    order.pop_back();
  }
  order.push_front(key);
  return items.emplace(key, std::pair{entry{}, order.begin()}).first->second.first;
}

std::chrono::seconds login_throttle::delay(const entry& e, std::size_t budget, std::chrono::seconds cap) {
  if (e.failures < budget) return std::chrono::seconds(0);
  // The n-th failure past the budget (n = 1 at the budget) blocks for 2^(n-1) s.
  const auto n = e.failures - budget;
  return n >= 31 ? cap : std::min<std::chrono::seconds>(cap, std::chrono::seconds(std::int64_t{1} << n));
}

void login_throttle::count(entry& e, std::size_t budget, std::chrono::seconds cap, clock::time_point now) const {
  // Failures are forgotten once a window has passed since the block they caused ended (a
  // slow, steady guesser keeps them, and the delay can grow to its cap).
  if (e.failures == 0 || now - e.last_failure >= delay(e, budget, cap) + config_.window) e.failures = 0;
  ++e.failures;
  e.last_failure = now;
}

std::optional<std::int64_t> login_throttle::wait(const entry& e, std::size_t budget, std::chrono::seconds cap,
                                                 clock::time_point now) const {
  const auto until = e.last_failure + delay(e, budget, cap);
  if (e.failures < budget || until <= now) return std::nullopt;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
  return std::max<std::int64_t>(1, (left + 999) / 1000);
}

std::optional<login_throttle::block> login_throttle::check(const std::string& account, const std::string& address,
                                                           clock::time_point now) {
  std::lock_guard lock(mu_);
  if (const auto* a = addresses_.find(address)) {
    if (auto s = wait(*a, config_.address_budget, config_.address_cap, now)) return block{"address", *s};
  }
  if (const auto* u = accounts_.find(account)) {
    const bool trusted = std::find(u->trusted.begin(), u->trusted.end(), address) != u->trusted.end();
    if (auto s = wait(*u, config_.account_budget, trusted ? config_.trusted_cap : config_.account_cap, now)) {
      return block{"account", *s};
    }
  }
  return std::nullopt;
}

void login_throttle::failed(const std::string& account, const std::string& address, clock::time_point now) {
  std::lock_guard lock(mu_);
  count(accounts_.touch(account, config_.max_entries), config_.account_budget, config_.account_cap, now);
  count(addresses_.touch(address, config_.max_entries), config_.address_budget, config_.address_cap, now);
}

void login_throttle::succeeded(const std::string& account, const std::string& address, clock::time_point) {
  std::lock_guard lock(mu_);
  auto& u = accounts_.touch(account, config_.max_entries);
  u.failures = 0;
  std::erase(u.trusted, address);
  u.trusted.push_back(address);
  if (u.trusted.size() > k_trusted_per_account) u.trusted.erase(u.trusted.begin());
}

bool login_throttle::should_audit(const block& b, const std::string& account, const std::string& address,
                                  clock::time_point now) {
  std::lock_guard lock(mu_);
  auto& e = b.scope == "address" ? addresses_.touch(address, config_.max_entries)
                                 : accounts_.touch(account, config_.max_entries);
  if (e.audited && now - *e.audited < config_.window) return false;
  e.audited = now;
  return true;
}

std::size_t login_throttle::size() const {
  std::lock_guard lock(mu_);
  return accounts_.items.size() + addresses_.items.size();
}

std::string address_of(const std::string& peer) {
  if (peer.starts_with('[')) {
    const auto close = peer.find(']');
    return close == std::string::npos ? peer : peer.substr(1, close - 1);
  }
  const auto colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

}  // namespace atrium::http_adapter
