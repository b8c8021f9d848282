#pragma once
/// Test support for projections: an in-memory read model that applies the mutations a
/// projection emits, a `feed` that drives one envelope through a projection, and
/// `committed` to build hand-made envelopes.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/envelope.hpp"
#include "ports/read_model.hpp"

namespace atrium::test {

/// A std::map-backed read model: (table, key) → row.
class memory_rows final : public row_reader {
 public:
  const nlohmann::json* get(std::string_view table, std::string_view key) const override {
    auto it = rows_.find({std::string(table), std::string(key)});
    return it == rows_.end() ? nullptr : &it->second;
  }

  /// A copy of the row at (table, key), or JSON null when absent (for comparisons).
  nlohmann::json row(std::string_view table, std::string_view key) const {
    const auto* r = get(table, key);
    return r != nullptr ? *r : nlohmann::json();
  }

  /// Applies mutations in order: puts replace, deletes of absent rows are fine.
  void apply(const std::vector<mutation>& mutations) {
    for (const auto& m : mutations) {
      if (const auto* put = std::get_if<row_put>(&m)) {
        rows_[{put->table, put->key}] = put->value;
      } else {
        const auto& del = std::get<row_delete>(m);
        rows_.erase({del.table, del.key});
      }
    }
  }

  /// The keys of a table, in key order.
  std::vector<std::string> keys(std::string_view table) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : rows_) {
      if (k.first == table) out.push_back(k.second);
    }
    return out;
  }

  /// Number of rows over all tables.
  std::size_t size() const { return rows_.size(); }

 private:
  std::map<std::pair<std::string, std::string>, nlohmann::json> rows_;
};

/// Feeds one envelope to a projection, applies what it emits, and returns the mutations.
inline std::vector<mutation> feed(const projection& p, memory_rows& rows, const envelope& e) {
  std::vector<mutation> out;
  p.apply(e, rows, out);
  rows.apply(out);
  return out;
}

/// A committed envelope carrying `payload`; its time is `2026-01-01T00:00:<position>`
/// (two digits for positions below 100), its ids derived from the position.
template <class T>
envelope committed(std::uint64_t position, std::string stream, std::uint64_t version, const T& payload,
                   std::string actor = "user-admin-1") {
  envelope e;
  e.position = position;
  e.stream = std::move(stream);
  e.version = version;
  e.id = "evt-" + std::to_string(position);
  e.type = std::string(T::type);
  e.schema = T::schema;
  e.time = "2026-01-01T00:00:" + std::string(position < 10 ? "0" : "") + std::to_string(position) + ".000000Z";
  e.actor = std::move(actor);
  e.correlation_id = "req-" + std::to_string(position);
  e.causation_id = "cmd-" + std::to_string(position);
  e.data = payload;
  return e;
}

}  // namespace atrium::test
