#pragma once
/// Port: the event store, the source of truth. Implemented by
/// adapters/rocksdb (RocksDB) and used by the event-store writer actor (appends) and
/// by entity actors, projections and the API (reads). Reads are thread-safe; appends
/// are serialized by the writer actor.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

/// The event store.
class event_store {
 public:
  virtual ~event_store() = default;

  /// Appends to one or more streams atomically (all or nothing) in one synced write;
  /// returns only after the write is durable. Assigns gapless global positions in the
  /// order given, stream versions, commit time, and a UUIDv7 id where none is set.
  /// Errors: `version_conflict` (details: stream, expected, current_version) when an
  /// expected version fails — nothing is written; `invalid_argument` for an empty
  /// stream id or a stream named twice; `unavailable` on a storage failure.
  [[nodiscard]] virtual result<std::vector<envelope>> append(std::vector<stream_append> appends) = 0;

  /// Up to `limit` events of `stream` with version >= `from_version`, in version order.
  /// An unknown stream yields an empty vector.
  [[nodiscard]] virtual result<std::vector<envelope>> read_stream(std::string_view stream, std::uint64_t from_version,
                                                                  std::size_t limit) const = 0;

  /// Up to `limit` events of the global log with position > `after`, in position order.
  [[nodiscard]] virtual result<std::vector<envelope>> read_all(std::uint64_t after, std::size_t limit) const = 0;

  /// The last version of `stream`, 0 if it has no events.
  [[nodiscard]] virtual result<std::uint64_t> stream_version(std::string_view stream) const = 0;

  /// The position of the last committed event, 0 for an empty store.
  [[nodiscard]] virtual std::uint64_t head_position() const = 0;
};

}  // namespace atrium::ports
