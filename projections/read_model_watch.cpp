// A read-model store that counts row changes per projection (read_model_watch.hpp).
#include "projections/read_model_watch.hpp"

namespace atrium {

watched_read_models::watched_read_models(ports::read_model_store& base,
                                         std::initializer_list<std::string_view> projections)
    : base_(base) {
  for (auto name : projections) {
    auto c = std::make_unique<counter>();
    c->name = std::string(name);
    counters_.push_back(std::move(c));
  }
}

watched_read_models::counter* watched_read_models::find(std::string_view slot) const {
  const auto name = slot.substr(0, slot.find('~'));
  for (const auto& c : counters_) {
    if (c->name == name) return c.get();
  }
  return nullptr;
}

result<std::optional<nlohmann::json>> watched_read_models::get(std::string_view projection, std::string_view table,
                                                               std::string_view key) const {
  return base_.get(projection, table, key);
}

result<std::vector<ports::row>> watched_read_models::scan(std::string_view projection, std::string_view table,
                                                          std::string_view prefix, std::string_view after,
                                                          std::size_t limit, bool reverse) const {
  return base_.scan(projection, table, prefix, after, limit, reverse);
}

result<std::uint64_t> watched_read_models::checkpoint(std::string_view projection) const {
  return base_.checkpoint(projection);
}

result<void> watched_read_models::save_checkpoint(std::string_view name, std::uint64_t position) {
  return base_.save_checkpoint(name, position);
}

result<void> watched_read_models::commit(std::string_view projection, const std::vector<mutation>& mutations,
                                         std::uint64_t position) {
  auto ok = base_.commit(projection, mutations, position);
  // Counted after the write returned (readable), whether or not it succeeded: a failed
  // write may have been partly visible to nobody, and one change too many costs a miss.
  if (!mutations.empty()) {
    if (auto* c = find(projection)) c->value.fetch_add(1, std::memory_order_release);
  }
  return ok;
}

result<void> watched_read_models::reset(std::string_view projection) {
  auto ok = base_.reset(projection);
  if (auto* c = find(projection)) c->value.fetch_add(1, std::memory_order_release);
  return ok;
}

result<int> watched_read_models::active_slot(std::string_view projection) const {
  return base_.active_slot(projection);
}

result<void> watched_read_models::activate(std::string_view projection, int slot) {
  auto ok = base_.activate(projection, slot);
  if (auto* c = find(projection)) c->value.fetch_add(1, std::memory_order_release);
  return ok;
}

std::optional<std::uint64_t> watched_read_models::changes(std::string_view projection) const {
  const auto* c = find(projection);
  if (!c || c->name != projection) return std::nullopt;
  return c->value.load(std::memory_order_acquire);
}

}  // namespace atrium
