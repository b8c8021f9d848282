#pragma once
/// The offline subcommands of atriumd. Each works on a STOPPED server's data dir: it
/// opens DIR/rocksdb itself, and RocksDB's LOCK file makes the open fail while a server
/// (or another subcommand) holds the store.
///
///   atriumd verify  --data-dir DIR                        hash chain check, one JSON line
///   atriumd export  --data-dir DIR [--after P] [--until P] public envelopes, JSON Lines
///   atriumd inspect STREAM --data-dir DIR                 events + folded state, one JSON object
///   atriumd replay  --projection NAME --data-dir DIR      rebuild one projection from position 0
///
/// Exit codes: 0 success; 1 nothing to show or the store cannot be read (no store in
/// DIR, unknown or empty stream, storage error); 2 usage error (bad arguments, unknown
/// projection) or the store is in use by a running server; 3 `verify` found the hash
/// chain broken.

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace atrium::cli {

/// True if `command` names an offline subcommand: `verify`, `export`, `inspect` or `replay`.
[[nodiscard]] bool is_offline_command(std::string_view command);

/// Runs the offline subcommand `command` with its arguments `args` (everything after
/// the subcommand's name on the command line). Writes results to `out` and
/// diagnostics to `err`; returns the process exit code (see the header comment).
[[nodiscard]] int run(std::string_view command, const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err);

/// The usage lines of the offline subcommands, for atriumd's usage text.
[[nodiscard]] std::string_view usage();

}  // namespace atrium::cli
