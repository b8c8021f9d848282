#pragma once
/// The offline subcommands of atriumd. Each works on a STOPPED server's data dir: it
/// opens DIR/rocksdb itself, and RocksDB's LOCK file makes the open fail while a server
/// (or another subcommand) holds the store.
///
///   atriumd verify  --data-dir DIR                        hash chain check, one JSON line
///   atriumd export  --data-dir DIR [--after P] [--until P] public envelopes, JSON Lines
///   atriumd inspect STREAM --data-dir DIR                 events + folded state, one JSON object
///   atriumd replay  --projection NAME --data-dir DIR      rebuild one projection from position 0
///   atriumd restore --from BDIR --data-dir NEW [--backup-id N]
///                                                         an online backup into a new data dir,
///                                                         then the chain check, one JSON line
///
/// Exit codes: 0 success; 1 nothing to show or the store cannot be read (no store in
/// DIR, unknown or empty stream, storage error); 2 usage error (bad arguments, unknown
/// projection) or the store is in use by a running server; 3 `verify` found the hash
/// chain broken (for `restore`: also when the event at the backup's position does not
/// carry the backup's chain head). `restore` exits 2 when NEW already holds a store or a
/// master key.

#include <iosfwd>
#include <string_view>

#include "app/options.hpp"

namespace atrium::cli {

/// Runs the offline subcommand `command` (verify, export, inspect, replay or restore; parsed by
/// app/options.hpp) with its options `o`. Writes results to `out` and diagnostics to
/// `err`; returns the process exit code (see the header comment).
[[nodiscard]] int run(std::string_view command, const app::offline_options& o, std::ostream& out, std::ostream& err);

}  // namespace atrium::cli
