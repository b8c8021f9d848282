#pragma once
/// Where a SQLite connection's file may be: under the server's SQLite root
/// (`atriumd --sqlite-root DIR`, default `DATA_DIR/files`). Shared by the connection
/// tester (sql_connector.hpp: create, change and test of a connection) and the SQLite
/// job executor (sqlite_executor.hpp: every run, and every `ATTACH` a job tries).
///
///   params.path ──relative? taken inside the root──▶ root / path
///               ──weakly_canonical (symlinks of the existing part resolved, `..` folded)──▶
///               under canonical(root)? ──yes──▶ the path to open
///                                        └─no──▶ invalid_argument {"field":"params.path"}
///
/// The check resolves symlinks at the time of the call; a symlink swapped between the
/// check and the open is not caught here (the root is the server's own directory: who can
/// write symlinks there can write databases there too).

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "events/error.hpp"

namespace atrium::connectors_adapter {

/// True when `path` (absolute, normalized) is `root` itself or lies below it,
/// compared component by component (so `/data/files2` is not under `/data/files`).
[[nodiscard]] inline bool path_is_under(const std::filesystem::path& path, const std::filesystem::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator of the root
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

/// The file a SQLite `params.path` names, resolved under `root`: a relative `path` is
/// taken inside `root`; the result (symlinks of its existing parts resolved, `.` and `..`
/// folded) must lie strictly below the resolved `root`. The file need not exist. Never
/// throws. Errors: `invalid_argument` with details `{"field":"params.path"}` for an empty
/// path, one holding a NUL byte, or one that resolves outside the root; the message
/// names neither the root nor the resolved target (they would reveal the server's layout).
[[nodiscard]] inline result<std::filesystem::path> resolve_sqlite_path(const std::filesystem::path& root,
                                                                       std::string_view path) {
  namespace fs = std::filesystem;
  const nlohmann::json details{{"field", "params.path"}};
  if (path.empty()) return fail(errc::invalid_argument, "params.path must be a non-empty string", details);
  if (path.find('\0') != std::string_view::npos) {
    return fail(errc::invalid_argument, "params.path must not contain a NUL byte", details);
  }
  try {
    std::error_code ec;
    const fs::path base = fs::weakly_canonical(fs::absolute(root), ec);
    if (ec || base.empty()) return fail(errc::invalid_argument, "the SQLite root cannot be resolved", details);
    const fs::path given{std::string(path)};
    const fs::path candidate = given.is_absolute() ? given : base / given;
    const fs::path resolved = fs::weakly_canonical(candidate, ec);
    if (ec) return fail(errc::invalid_argument, "params.path cannot be resolved: " + ec.message(), details);
    if (resolved == base || !path_is_under(resolved, base)) {
      return fail(errc::invalid_argument,
                  "params.path must name a file under the server's SQLite root (--sqlite-root; a relative "
                  "path is taken inside it, symbolic links are followed)",
                  details);
    }
    return resolved;
  } catch (const std::exception& ex) {  // allocation failures, path conversion
    return fail(errc::invalid_argument, std::string("params.path cannot be resolved: ") + ex.what(), details);
  }
}

}  // namespace atrium::connectors_adapter
