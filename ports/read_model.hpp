#pragma once
/// The vocabulary of read models: a projection folds committed events into row
/// mutations of its own tables, reading earlier rows through a `row_reader`. No
/// storage calls here: the runner (actors/) applies the mutations together with the
/// projection's checkpoint in one atomic write of the read-model store.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/envelope.hpp"

namespace atrium {

/// Insert or replace a row.
struct row_put {
  std::string table;
  std::string key;
  nlohmann::json value;
};

/// Delete a row (absent rows are fine).
struct row_delete {
  std::string table;
  std::string key;
};

/// One change to a projection's rows.
using mutation = std::variant<row_put, row_delete>;

/// Read access to a projection's current rows (including its pending mutations).
class row_reader {
 public:
  virtual ~row_reader() = default;
  /// The row at (table, key), or nullptr when absent. The row is owned by the reader and
  /// stays valid while the projection's `apply` runs (the reader keeps what it read);
  /// copy what must outlive it. Throws std::runtime_error if the store cannot read it.
  [[nodiscard]] virtual const nlohmann::json* get(std::string_view table, std::string_view key) const = 0;
};

/// A read model built from the global log.
class projection {
 public:
  virtual ~projection() = default;
  /// Stable name; also the name of its checkpoint and storage namespace.
  [[nodiscard]] virtual std::string_view name() const = 0;
  /// Folds one committed event: appends the resulting mutations to `out`.
  /// Events the projection does not care about add nothing.
  virtual void apply(const envelope& event, const row_reader& rows, std::vector<mutation>& out) const = 0;
};

/// A zero-padded 20-digit decimal key for a position, so that keys sort by position.
[[nodiscard]] inline std::string position_key(std::uint64_t position) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(position));
  return buf;
}

/// The id part of a stream id `<entity>-<id>` (`id_of("project-42", "project")` is
/// `"42"`), or empty if the stream belongs to another entity.
[[nodiscard]] inline std::string id_of(const std::string& stream, std::string_view entity) {
  if (stream.size() <= entity.size() + 1 || stream.compare(0, entity.size(), entity) != 0 ||
      stream[entity.size()] != '-') {
    return {};
  }
  return stream.substr(entity.size() + 1);
}

}  // namespace atrium
