#pragma once
/// Port: the event store, the source of truth. Implemented by
/// adapters/rocksdb (RocksDB) and used by the event-store writer actor (appends) and
/// by entity actors, projections and the API (reads). Reads are thread-safe; appends
/// are serialized by the writer actor.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/chain.hpp"
#include "events/envelope.hpp"
#include "events/error.hpp"

namespace atrium::ports {

/// Optimistic concurrency condition of an append (the "expected version").
struct expected_version {
  enum class kind { any, no_stream, exact };
  kind k = kind::any;
  std::uint64_t value = 0;  ///< for `exact`: the stream's current last version

  static expected_version any() { return {kind::any, 0}; }
  static expected_version no_stream() { return {kind::no_stream, 0}; }
  static expected_version exact(std::uint64_t v) { return {kind::exact, v}; }
  /// True if a stream whose last version is `current` (0: no stream) satisfies it.
  [[nodiscard]] bool matches(std::uint64_t current) const {
    switch (k) {
      case kind::any:
        return true;
      case kind::no_stream:
        return current == 0;
      case kind::exact:
        return current == value;
    }
    return false;
  }
};

/// Events to append to one stream under one expected version.
struct stream_append {
  std::string stream;
  expected_version expected;
  std::vector<proposed_event> events;
};

/// Called once with the outcome of an append, on the store's commit thread: keep it
/// short (post or send the result elsewhere).
using append_callback = std::function<void(result<std::vector<envelope>>)>;

/// The result of checking the hash chain (defined with the chain, in events/chain.hpp).
using chain_report = atrium::chain_report;

/// A snapshot of an entity's folded state at a stream version.
struct snapshot {
  std::uint64_t version = 0;  ///< the stream version the state includes
  int schema = 0;             ///< the state's serialization schema; a reader ignores other schemas
  nlohmann::json state;       ///< the state, as the aggregate serializes it
};

/// The event store.
class event_store {
 public:
  virtual ~event_store() = default;

  /// Appends to one or more streams atomically (all or nothing) and calls `done` only
  /// after the synced write that carries it is durable. Appends that arrive while a
  /// write is in flight are committed together in the next WriteBatch (group commit);
  /// each keeps its own all-or-nothing outcome. Assigns gapless global positions in
  /// arrival order, stream versions, commit time, a UUIDv7 id where none is set, and the
  /// chain hash. An append whose event ids are all stored already is answered with the
  /// stored events and writes nothing. Never throws: every failure reaches `done`.
  /// Errors: `version_conflict` (details: stream, expected, current_version) when an
  /// expected version fails — nothing of that append is written; `invalid_argument` for
  /// an empty stream id, a stream or an event id named twice, no events, or text that
  /// is not valid UTF-8 (JSON text must be; the store never rewrites what the hash covers);
  /// `already_exists` when only some of its event ids are stored; `unavailable` on a
  /// storage failure or shutdown.
  virtual void append_async(std::vector<stream_append> appends, append_callback done) = 0;

  /// `append_async`, blocking until the outcome is known. Virtual so that a store can
  /// wake its blocked callers more cheaply than one promise each (the RocksDB store wakes
  /// every caller of a committed group with one call).
  [[nodiscard]] virtual result<std::vector<envelope>> append(std::vector<stream_append> appends) {
    std::promise<result<std::vector<envelope>>> p;
    auto f = p.get_future();
    append_async(std::move(appends), [&p](result<std::vector<envelope>> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  /// Recomputes the hash chain from position 1 with `atrium::chain_verifier` (events/chain.hpp):
  /// every stored record must parse, sit at its own position, be in canonical form, and
  /// carry SHA-256(previous hash ‖ canonical bytes). Storage errors are `unavailable`; a
  /// broken chain is a report with `ok == false`, not an error.
  [[nodiscard]] virtual result<chain_report> verify_chain() const = 0;

  /// Up to `limit` events of `stream` with version >= `from_version`, in version order.
  /// An unknown stream yields an empty vector.
  [[nodiscard]] virtual result<std::vector<envelope>> read_stream(std::string_view stream, std::uint64_t from_version,
                                                                  std::size_t limit) const = 0;

  /// Up to `limit` events of the global log with position > `after`, in position order.
  [[nodiscard]] virtual result<std::vector<envelope>> read_all(std::uint64_t after, std::size_t limit) const = 0;

  /// The last version of `stream`, 0 if it has no events.
  [[nodiscard]] virtual result<std::uint64_t> stream_version(std::string_view stream) const = 0;

  /// Stores the newest snapshot of `stream` (replacing the previous one). Not synced: a
  /// lost snapshot only means a longer replay. `unavailable` on I/O error.
  [[nodiscard]] virtual result<void> save_snapshot(std::string_view stream, const snapshot& s) = 0;

  /// The newest snapshot of `stream`, nullopt if none (or unreadable: a snapshot is
  /// never a reason to fail, the stream is the truth).
  [[nodiscard]] virtual result<std::optional<snapshot>> load_snapshot(std::string_view stream) const = 0;

  /// The position of the last committed event, 0 for an empty store.
  [[nodiscard]] virtual std::uint64_t head_position() const = 0;

  /// Why writes fail now (`unavailable`: the disk is full, or a storage failure the store
  /// is recovering from), or nullopt when they should succeed. Cheap and thread-safe:
  /// `/healthz` asks it on every call. Stores that cannot fail to write keep the default.
  [[nodiscard]] virtual std::optional<error> write_fault() const { return std::nullopt; }
};

}  // namespace atrium::ports
