// Authentication caches: token records and principals (auth_cache.hpp).
#include "adapters/http/auth_cache.hpp"

namespace atrium::http_adapter {

namespace {

/// Makes room for one more entry in `m` (at most `capacity`): drops an arbitrary one.
template <class Map>
void make_room(Map& m, std::size_t capacity) {
  while (!m.empty() && m.size() >= capacity) m.erase(m.begin());
}

}  // namespace

// ---- tokens ------------------------------------------------------------------------------

void cached_token_store::invalidate(std::string_view token_hash) {
  std::lock_guard lock(mutex_);
  ++generation_;
  if (token_hash.empty()) {
    entries_.clear();
  } else {
    entries_.erase(std::string(token_hash));
  }
}

result<void> cached_token_store::put(std::string_view token_hash, const ports::session_record& s) {
  auto ok = base_.put(token_hash, s);
  invalidate(token_hash);
  return ok;
}

result<std::optional<ports::session_record>> cached_token_store::get(std::string_view token_hash) const {
  std::uint64_t seen = 0;
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(std::string(token_hash)); it != entries_.end()) {
      return std::optional<ports::session_record>{it->second};
    }
    seen = generation_;
  }
  auto found = base_.get(token_hash);
  if (found && *found) {
    std::lock_guard lock(mutex_);
    // A write since the read may have changed or removed it: then it is not kept.
    if (generation_ == seen && capacity_ > 0) {
      make_room(entries_, capacity_);
      entries_.insert_or_assign(std::string(token_hash), **found);
    }
  }
  return found;
}

result<void> cached_token_store::erase(std::string_view token_hash) {
  auto ok = base_.erase(token_hash);
  invalidate(token_hash);
  return ok;
}

result<std::size_t> cached_token_store::erase_user(std::string_view user_id, std::string_view except_token_hash) {
  auto ended = base_.erase_user(user_id, except_token_hash);
  invalidate({});  // rare (password changes, disabling): every entry goes
  return ended;
}

result<std::vector<ports::token_entry>> cached_token_store::api_tokens_of(std::string_view user_id) const {
  return base_.api_tokens_of(user_id);
}

result<std::optional<ports::token_entry>> cached_token_store::api_token(std::string_view token_id) const {
  return base_.api_token(token_id);
}

result<void> cached_token_store::touch(std::string_view token_hash, std::int64_t at) {
  auto ok = base_.touch(token_hash, at);
  if (ok) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(std::string(token_hash)); it != entries_.end()) it->second.last_used_at = at;
  }
  return ok;
}

std::size_t cached_token_store::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

// ---- principals --------------------------------------------------------------------------

std::optional<principal_cache::stamp> principal_cache::now() const {
  if (!changes_) return std::nullopt;
  const auto users = changes_->changes("users");
  const auto groups = changes_->changes("groups");
  if (!users || !groups) return std::nullopt;
  return stamp{*users, *groups};
}

result<std::optional<resolved_user>> principal_cache::resolve(const std::string& user_id) const {
  // Read before the rows: a change after this point makes the entry stale at once.
  const auto at = now();
  if (at) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(user_id); it != entries_.end() && it->second.at == *at) {
      return std::optional<resolved_user>{it->second.user};
    }
  }
  auto found = users_.user(user_id);
  if (!found) return std::unexpected(found.error());
  if (!*found) return std::optional<resolved_user>{};
  const auto& state = (*found)->state;
  resolved_user out{principal{state.user_id, state.roles, state.disabled, users_.groups_of(state.user_id)},
                    state.username};
  if (at && capacity_ > 0) {
    std::lock_guard lock(mutex_);
    make_room(entries_, capacity_);
    entries_.insert_or_assign(user_id, entry{*at, out});
  }
  return std::optional<resolved_user>{std::move(out)};
}

std::size_t principal_cache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace atrium::http_adapter
