#pragma once
/// Test support: a real RocksDB store in a temp dir with every projection's column
/// families, and those projections (for `actor_runtime::start`). Header-only (Catch2).

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "adapters/rocksdb/rocksdb_store.hpp"
#include "projections/projections.hpp"

namespace atrium::test {

/// A store and the projections it was opened for.
struct store_with_projections {
  std::unique_ptr<rocksdb_adapter::rocksdb_store> store;
  std::vector<std::unique_ptr<projection>> projections;
};

/// Opens (creating if needed) the store at `path` with `make_all_projections()`;
/// REQUIREs that it opens.
inline store_with_projections open_store(const std::filesystem::path& path) {
  store_with_projections out;
  out.projections = make_all_projections();
  std::vector<std::string> names;
  for (const auto& p : out.projections) names.emplace_back(p->name());
  auto s = rocksdb_adapter::rocksdb_store::open(path.string(), names);
  REQUIRE(s.has_value());
  out.store = std::move(*s);
  return out;
}

}  // namespace atrium::test
