#pragma once
/// The web console's files (issue 17, point 2), served by atriumd at `/` from memory.
///
///   start: web root DIR ─walk─▶ regular files (no dotfiles, symlinks only to files inside
///          DIR) ─read─▶ memory (≤ 16 MiB a file, ≤ 64 MiB in all) ─▶ gzip variant:
///          FILE.gz if the build wrote one, else zlib at start for text types
///   request: raw target ─static_path─▶ key ("" → index.html) ─lookup─▶ file
///          ─▶ 304 (If-None-Match) | 200 (gzip when Accept-Encoding allows) | HEAD
///
/// No request touches the disk, and only a key that was loaded can match, so no path
/// (`..`, encoded slashes, dotfiles, symlinks out of the root) reaches outside the root.
///
/// Caching: a name carrying a content hash (esbuild's `[name]-[hash]`: `-` then at least
/// 8 characters of [A-Z0-9] before the first `.`) is `public, max-age=31536000,
/// immutable`; every other file (index.html above all) `no-cache` (revalidated with its
/// ETag). Beast-free.

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/http/http_server.hpp"
#include "events/error.hpp"

namespace atrium::http_adapter {

/// One file held in memory.
struct static_file {
  std::string body;           ///< the bytes as on disk
  std::string gzip;           ///< its gzip encoding (RFC 1952), "" when none
  std::string content_type;   ///< from the extension (`content_type_for`)
  std::string cache_control;  ///< `public, max-age=31536000, immutable` or `no-cache`
  std::string etag;           ///< strong ETag of `body`, quoted
  std::string gzip_etag;      ///< strong ETag of `gzip`, quoted ("" when none)
};

/// The bounds of a web root; a root beyond them does not load.
struct web_root_limits {
  std::size_t max_file_bytes = 16u << 20;   ///< the largest file
  std::size_t max_total_bytes = 64u << 20;  ///< all files together, as on disk (.gz included)
  std::size_t max_files = 10000;            ///< files (.gz included)
  bool gzip_at_start = true;                ///< gzip text files without a .gz (zlib, level 9)
};

/// The console's files, loaded once; immutable and thread-safe afterwards.
class web_root {
 public:
  /// Loads every regular file under `dir` (recursively): names starting with `.` (files and
  /// folders) are skipped, and so are symlinks whose target is not a regular file inside
  /// `dir`. `FILE.gz` next to `FILE` becomes FILE's gzip variant (and is not served by its
  /// own name). Errors: `invalid_argument` when `dir` is not a readable directory, a file
  /// is larger than `max_file_bytes`, the files together exceed `max_total_bytes`, or
  /// there are more than `max_files`; the message names the file and the limit.
  [[nodiscard]] static result<std::shared_ptr<const web_root>> load(const std::filesystem::path& dir,
                                                                    const web_root_limits& limits = {});

  /// The file a request target names (`static_path`), or nullptr.
  [[nodiscard]] const static_file* find(std::string_view target) const;

  /// The files, by key (path relative to the root, `/`-separated).
  [[nodiscard]] const std::map<std::string, static_file, std::less<>>& files() const { return files_; }
  /// The directory the files came from (canonical).
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  /// Bytes held in memory (bodies and gzip variants).
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  std::filesystem::path dir_;
  std::map<std::string, static_file, std::less<>> files_;
  std::size_t bytes_ = 0;
};

/// The key a request target names: the target's path (up to `?` or `#`), each segment
/// percent-decoded; `/` and `/index.html` give `index.html`. nullopt (404) for anything
/// that cannot name a loaded file: a target not starting with `/`, an empty segment
/// (`//`), a segment that is or starts with `.` (`..`, dotfiles), that holds `/`, `\`,
/// NUL or another control byte once decoded (encoded slashes), a bad `%` escape, or a
/// path longer than 1024 bytes. Never throws.
[[nodiscard]] std::optional<std::string> static_path(std::string_view target);

/// True when the file name (last segment of `key`) carries a content hash: `-` followed
/// by at least 8 of [A-Z0-9] right before the name's first `.` (`app-3F2A9C1B.js`,
/// `app-3F2A9C1B.js.map`).
[[nodiscard]] bool hashed_name(std::string_view key);

/// The Content-Type of a file by its extension: html, js, mjs, css, json, map, svg, png,
/// ico, woff2, txt (text types with `; charset=utf-8`); `application/octet-stream`
/// otherwise.
[[nodiscard]] std::string content_type_for(std::string_view key);

/// The answer to GET or HEAD of `file` for `req` (its `accept-encoding` and
/// `if-none-match` headers): 304 with the ETag when `If-None-Match` lists the ETag of the
/// representation chosen (or `*`), else 200 with the body: the gzip variant with
/// `Content-Encoding: gzip` when there is one and `Accept-Encoding` accepts gzip (RFC
/// 9110 §12.5.3: `gzip` or `*` without `q=0`). Headers: `Cache-Control`, `ETag`, and
/// `Vary: Accept-Encoding` when a gzip variant exists. The body is left in for HEAD too;
/// the server sends only its length.
[[nodiscard]] http_response static_response(const static_file& file, const http_request& req);

/// `bytes` gzip-encoded (RFC 1952) with zlib at `level` (1-9), or "" if zlib fails.
[[nodiscard]] std::string gzip_encode(std::string_view bytes, int level);

/// FNV-1a (64 bits) of `bytes` as 16 hex digits: a tag that changes with the bytes (not
/// a cryptographic hash).
[[nodiscard]] std::string fnv1a_hex(std::string_view bytes);

/// True when an `Accept-Encoding` value accepts gzip (`gzip`, `x-gzip` or `*` with a
/// non-zero q-value).
[[nodiscard]] bool accepts_gzip(std::string_view accept_encoding);

}  // namespace atrium::http_adapter
