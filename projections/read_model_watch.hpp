#pragma once
/// A read-model store that counts changes: it passes every call to the store it wraps
/// and, after a write that changed rows of a watched projection has returned, increments
/// that projection's counter (ports::read_model_changes). The projection runner writes
/// through it and the query port reads through it, so a cache of derived values (the
/// HTTP adapter's principal cache: a user's roles, disabled flag and groups) learns of
/// every event that changed the rows it was derived from, at the moment those rows
/// become readable, before any command waiting for them is answered:
///
///   runner ──commit(users~0, mutations, pos)──▶ watched_read_models ──▶ RocksDB
///                                                 └─ mutations not empty: ++changes("users")
///   cache: c = changes("users"); read rows; keep (value, c) ── valid while changes("users") == c

#include <atomic>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ports/read_model_store.hpp"

namespace atrium {

/// Counts row changes of the projections named at construction; `base` must outlive it.
/// Thread-safe as `base` is (the counters are atomics).
class watched_read_models final : public ports::read_model_store, public ports::read_model_changes {
 public:
  /// Watches `projections` (names such as `users`, `groups`) of `base`.
  watched_read_models(ports::read_model_store& base, std::initializer_list<std::string_view> projections);

  // ports::read_model_store: each call goes to `base`; `commit` with at least one
  // mutation, `reset` and `activate` that succeed then count one change of the
  // projection the slot belongs to (`users~1` belongs to `users`).
  [[nodiscard]] result<std::optional<nlohmann::json>> get(std::string_view projection, std::string_view table,
                                                          std::string_view key) const override;
  [[nodiscard]] result<std::vector<ports::row>> scan(std::string_view projection, std::string_view table,
                                                     std::string_view prefix, std::string_view after, std::size_t limit,
                                                     bool reverse = false) const override;
  [[nodiscard]] result<std::uint64_t> checkpoint(std::string_view projection) const override;
  [[nodiscard]] result<void> save_checkpoint(std::string_view name, std::uint64_t position) override;
  [[nodiscard]] result<void> commit(std::string_view projection, const std::vector<mutation>& mutations,
                                    std::uint64_t position) override;
  [[nodiscard]] result<void> reset(std::string_view projection) override;
  [[nodiscard]] result<int> active_slot(std::string_view projection) const override;
  [[nodiscard]] result<void> activate(std::string_view projection, int slot) override;

  // ports::read_model_changes
  [[nodiscard]] std::optional<std::uint64_t> changes(std::string_view projection) const override;

 private:
  struct counter {
    std::string name;
    std::atomic<std::uint64_t> value{0};
  };
  /// The counter of the projection that `slot` (a name or a slot name) belongs to, or nullptr.
  [[nodiscard]] counter* find(std::string_view slot) const;

  ports::read_model_store& base_;
  std::vector<std::unique_ptr<counter>> counters_;  // fixed after construction
};

}  // namespace atrium
