#pragma once
/// Port: storage of projection rows and checkpoints. Implemented by adapters/rocksdb
/// (one column family per projection, checkpoints in `checkpoints`).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/error.hpp"
#include "ports/read_model.hpp"

namespace atrium::ports {

/// A row as returned by a scan.
struct row {
  std::string key;
  nlohmann::json value;
};

/// The storage name of one of a projection's two slots: `<name>~0` or `<name>~1` (a bare
/// `<name>` also names slot 0 in `checkpoint`, `commit` and `reset`, and the active slot
/// in `get` and `scan`). Reads of a projection are served from its active slot;
/// an online rebuild fills the other one from position 0 and then activates it
/// (docs/architecture.md, "Projection rebuild").
[[nodiscard]] inline std::string slot_name(std::string_view projection, int slot) {
  return std::string(projection) + (slot == 0 ? "~0" : "~1");
}

/// Read-model storage. `get` and `scan` take a projection's name and read its active
/// slot (or a slot name, `<name>~1`, to read that slot); `checkpoint`, `commit` and
/// `reset` take a slot name (`slot_name`).
class read_model_store {
 public:
  virtual ~read_model_store() = default;

  /// The row at (projection, table, key); nullopt if absent. `unavailable` on I/O error,
  /// `not_found` for an unknown projection.
  [[nodiscard]] virtual result<std::optional<nlohmann::json>> get(std::string_view projection, std::string_view table,
                                                                  std::string_view key) const = 0;

  /// Up to `limit` rows of a table whose keys start with `prefix`, in key order: with
  /// `reverse == false` the rows with key > `after` (from the first when empty); with
  /// `reverse == true` the rows with key < `after` (from the last when empty), in
  /// descending key order.
  [[nodiscard]] virtual result<std::vector<row>> scan(std::string_view projection, std::string_view table,
                                                      std::string_view prefix, std::string_view after,
                                                      std::size_t limit, bool reverse = false) const = 0;

  /// The last position the projection applied; 0 if it never ran.
  [[nodiscard]] virtual result<std::uint64_t> checkpoint(std::string_view projection) const = 0;

  /// Stores the checkpoint of a reader that keeps no rows (the event relay's
  /// `relay:<topic>`), read back with `checkpoint`. Not synced: after a crash it may be
  /// older than the last call, never newer. `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> save_checkpoint(std::string_view name, std::uint64_t position) = 0;
  /// Applies `mutations` and sets the checkpoint to `position` in one atomic write.
  [[nodiscard]] virtual result<void> commit(std::string_view projection, const std::vector<mutation>& mutations,
                                            std::uint64_t position) = 0;

  /// Drops every row of every table of `projection` and its checkpoint (back to 0), in
  /// one atomic write: a reader sees the projection either as it was or empty. Used to
  /// rebuild a projection from position 0 (`atriumd replay`); the caller must make sure
  /// nothing commits to the projection meanwhile (rows committed concurrently may
  /// survive). `not_found` for an unknown projection, `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> reset(std::string_view projection) = 0;

  /// The slot (0 or 1) reads of `projection` are served from; 0 until `activate` chose
  /// another. `not_found` for an unknown projection.
  [[nodiscard]] virtual result<int> active_slot(std::string_view projection) const = 0;

  /// Serves reads of `projection` from `slot` from now on (durable, synced; readers
  /// switch at once). The slot's rows and checkpoint must be complete. `not_found` for an
  /// unknown projection, `invalid_argument` for a slot other than 0 and 1.
  [[nodiscard]] virtual result<void> activate(std::string_view projection, int slot) = 0;
};

/// How often the rows of a projection have changed since the process started: a counter
/// per projection that grows when a commit to any of its slots carried at least one row
/// mutation, and when a slot of it is reset or activated (a checkpoint-only commit does
/// not count). A reader that caches what it derived from a projection's rows keeps the
/// counter it read *before* reading the rows and trusts the cached value only while the
/// counter is unchanged: the counter grows only after the change is readable, so a
/// value read before a change is never trusted after it. Implemented by
/// `watched_read_models` (projections/read_model_watch.hpp); thread-safe.
class read_model_changes {
 public:
  virtual ~read_model_changes() = default;
  /// The counter of `projection` (its name, e.g. `users`); nullopt for a projection not
  /// watched (so a caller never mistakes "not counted" for "unchanged").
  [[nodiscard]] virtual std::optional<std::uint64_t> changes(std::string_view projection) const = 0;
};

}  // namespace atrium::ports
