#include "app/cli.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <ostream>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/actors.hpp"
#include "adapters/rocksdb/backups.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "events/chain.hpp"
#include "projections/history.hpp"
#include "projections/projections.hpp"

namespace atrium::cli {
namespace {

constexpr std::size_t k_page = 1000;

constexpr int k_ok = 0;
constexpr int k_failed = 1;
constexpr int k_usage_error = 2;
constexpr int k_chain_broken = 3;

using options = app::offline_options;

/// The store of a stopped server, or nullptr with the exit code in `code` after
/// explaining on `err` why it cannot be opened.
std::unique_ptr<rocksdb_adapter::rocksdb_store> open_store(std::string_view command, const std::string& data_dir,
                                                           std::ostream& err, int& code) {
  const auto dir = std::filesystem::path(data_dir) / "rocksdb";
  // Opening creates a missing database: refuse instead of making an empty one.
  std::error_code ec;
  if (!std::filesystem::exists(dir / "CURRENT", ec)) {
    err << "atriumd " << command << ": no store in " << data_dir << "\n";
    code = k_failed;
    return nullptr;
  }
  std::vector<std::string> names;
  for (const auto& p : make_all_projections()) names.emplace_back(p->name());
  auto store = rocksdb_adapter::rocksdb_store::open(dir.string(), names);
  if (!store) {
    std::string lower = store.error().message;
    std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower.find("lock") != std::string::npos) {
      // RocksDB holds DIR/rocksdb/LOCK while a process has the database open.
      err << "atriumd " << command << ": the store in " << data_dir
          << " is in use by another process (is atriumd running on it? stop it first): " << store.error().message
          << "\n";
      code = k_usage_error;
    } else {
      err << "atriumd " << command << ": cannot open the store in " << data_dir << ": " << store.error().message
          << "\n";
      code = k_failed;
    }
    return nullptr;
  }
  return std::move(*store);
}

int verify(rocksdb_adapter::rocksdb_store& store, std::ostream& out, std::ostream& err) {
  // The same check as GET /v1/audit/verify: the event log runs events/chain.hpp's
  // chain_verifier over the stored records.
  auto report = store.events().verify_chain();
  if (!report) {
    err << "atriumd verify: " << report.error().message << "\n";
    return k_failed;
  }
  out << to_json(*report).dump() << std::endl;
  if (!report->ok) {
    err << "atriumd verify: chain breaks at position " << report->broken_at << ": " << report->reason << "\n";
  }
  return report->ok ? k_ok : k_chain_broken;
}

/// `atriumd restore`: the backup into a new data dir, then the same chain check as
/// `verify`, plus the backup's own record: the event at its position must carry its
/// chain head. One JSON line: the backup restored, the restored head and the chain report.
int restore(const options& o, std::ostream& out, std::ostream& err) {
  const std::optional<std::uint32_t> id = o.backup_id == 0 ? std::nullopt : std::optional(o.backup_id);
  auto restored = rocksdb_adapter::restore(o.from, o.data_dir, id);
  if (!restored) {
    err << "atriumd restore: " << restored.error().message << "\n";
    return restored.error().code == errc::failed_precondition ? k_usage_error : k_failed;
  }
  int code = k_ok;
  auto store = open_store("restore", o.data_dir, err, code);
  if (store == nullptr) return code;
  auto report = store->events().verify_chain();
  if (!report) {
    err << "atriumd restore: " << report.error().message << "\n";
    return k_failed;
  }
  const auto& b = restored->backup;
  std::string at_position;  // the hash of the restored event at the backup's position
  if (b.position > 0) {
    if (auto e = store->events().read_all(b.position - 1, 1); e && !e->empty()) at_position = e->front().hash;
  }
  const bool head_matches = at_position == b.chain_head;
  out << nlohmann::json{{"backup_id", b.id},
                        {"position", b.position},
                        {"chain_head", b.chain_head},
                        {"head", store->events().head_position()},
                        {"chain", to_json(*report)},
                        {"chain_head_matches", head_matches},
                        {"master_key_restored", restored->master_key_restored}}
             .dump()
      << std::endl;
  if (!report->ok) {
    err << "atriumd restore: chain breaks at position " << report->broken_at << ": " << report->reason << "\n";
    return k_chain_broken;
  }
  if (!head_matches) {
    err << "atriumd restore: the event at position " << b.position << " does not carry the backup's chain head\n";
    return k_chain_broken;
  }
  return k_ok;
}

int export_log(const rocksdb_adapter::rocksdb_store& store, const options& o, std::ostream& out, std::ostream& err) {
  // One page in memory at a time, however long the log.
  for (std::uint64_t after = o.after; after < o.until;) {
    auto page = store.events().read_all(after, k_page);
    if (!page) {
      err << "atriumd export: " << page.error().message << "\n";
      return k_failed;
    }
    for (const auto& e : *page) {
      if (e.position > o.until) break;
      out << to_public_json(e).dump() << '\n';
      after = e.position;
    }
    if (page->size() < k_page || page->back().position > o.until) break;
  }
  out.flush();
  if (!out) {
    err << "atriumd export: cannot write to stdout\n";
    return k_failed;
  }
  return k_ok;
}

int inspect(const rocksdb_adapter::rocksdb_store& store, const options& o, std::ostream& out, std::ostream& err) {
  std::vector<envelope> events;
  for (std::uint64_t from = 1;;) {
    auto page = store.events().read_stream(o.stream, from, k_page);
    if (!page) {
      err << "atriumd inspect: " << page.error().message << "\n";
      return k_failed;
    }
    events.insert(events.end(), std::make_move_iterator(page->begin()), std::make_move_iterator(page->end()));
    if (page->size() < k_page) break;
    from = page->back().version + 1;
  }
  if (events.empty()) {
    err << "atriumd inspect: no stream " << o.stream << " in " << o.data_dir << "\n";
    return k_failed;
  }
  auto state = fold_view(o.stream, events);
  if (!state) {
    err << "atriumd inspect: " << state.error().message << "\n";
    return k_failed;
  }
  nlohmann::json j{{"stream", o.stream},
                   {"version", events.back().version},
                   {"events", nlohmann::json::array()},
                   {"state", state->value_or(nullptr)}};
  for (const auto& e : events) j["events"].push_back(to_public_json(e));
  out << j.dump() << std::endl;
  return k_ok;
}

int replay(rocksdb_adapter::rocksdb_store& store, std::unique_ptr<projection> p, std::ostream& out, std::ostream& err) {
  const std::string name(p->name());
  // The slot that serves reads is the one rebuilt (a projection rebuilt online may live
  // in slot 1).
  auto slot = store.read_models().active_slot(name);
  if (!slot) {
    err << "atriumd replay: " << slot.error().message << "\n";
    return k_failed;
  }
  if (auto ok = store.read_models().reset(ports::slot_name(name, *slot)); !ok) {
    err << "atriumd replay: " << ok.error().message << "\n";
    return k_failed;
  }
  // The runner's own apply loop (pages of 1000, rows and checkpoint committed together),
  // with only this projection: the others keep their rows and checkpoints.
  std::vector<std::unique_ptr<projection>> only;
  only.push_back(std::move(p));
  actors::projection_engine engine(store.events(), store.read_models(), std::move(only));
  auto position = engine.catch_up();
  if (!position) {
    err << "atriumd replay: " << position.error().message << "\n";
    return k_failed;
  }
  // Positions are gapless from 1, so the position reached is the number of events applied.
  out << nlohmann::json{{"projection", name}, {"position", *position}, {"events", *position}}.dump() << std::endl;
  return k_ok;
}

}  // namespace

int run(std::string_view command, const options& o, std::ostream& out, std::ostream& err) {
  // Results go to stdout; the few log lines (e.g. a projection that cannot apply an
  // event) go to stderr, synchronously: there is no server to keep responsive.
  auto logger = std::make_shared<spdlog::logger>("atriumd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(logger);

  std::unique_ptr<projection> target;
  if (command == "replay") {
    std::string names;
    for (auto& p : make_all_projections()) {
      names += (names.empty() ? "" : ", ") + std::string(p->name());
      if (p->name() == o.projection) target = std::move(p);
    }
    if (target == nullptr) {
      err << "atriumd replay: unknown projection " << o.projection << "; one of: " << names << "\n";
      return k_usage_error;
    }
  }

  if (command == "restore") {
    try {
      return restore(o, out, err);
    } catch (const std::exception& ex) {
      err << "atriumd restore: " << ex.what() << "\n";
      return k_failed;
    }
  }
  int code = k_ok;
  auto store = open_store(command, o.data_dir, err, code);
  if (store == nullptr) return code;
  try {
    if (command == "verify") return verify(*store, out, err);
    if (command == "export") return export_log(*store, o, out, err);
    if (command == "inspect") return inspect(*store, o, out, err);
    return replay(*store, std::move(target), out, err);
  } catch (const std::exception& ex) {
    // Third-party exceptions (e.g. nlohmann::json on a payload it cannot dump) end here.
    err << "atriumd " << command << ": " << ex.what() << "\n";
    return k_failed;
  }
}

}  // namespace atrium::cli
