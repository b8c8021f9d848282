// The web console's files in memory: loading, path resolution, caching and gzip.
#include "adapters/http/static_files.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <set>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

namespace atrium::http_adapter {
namespace fs = std::filesystem;

namespace {

bool compressible(std::string_view type) {
  return type.starts_with("text/") || type.starts_with("application/json") || type == "image/svg+xml";
}

constexpr std::size_t k_max_static_path = 1024;
constexpr std::size_t k_min_gzip_bytes = 256;  // smaller files gain nothing from gzip

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

std::string_view extension(std::string_view key) {
  const auto slash = key.rfind('/');
  const auto name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  const auto dot = name.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
}

result<std::string> read_file(const fs::path& p, std::size_t size) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail(errc::invalid_argument, "web root: cannot read " + p.string());
  std::string body(size, '\0');
  in.read(body.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::size_t>(in.gcount()) != size) {
    return fail(errc::invalid_argument, "web root: " + p.string() + " changed while being read");
  }
  return body;
}

/// Whether a `,`-separated header value lists `tag` (or `*`), compared weakly (RFC 9110
/// §13.1.2: `W/` ignored).
bool lists_etag(std::string_view header, std::string_view tag) {
  while (!header.empty()) {
    const auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == tag) return true;
  }
  return false;
}

}  // namespace

/// FNV-1a, 64 bits, as 16 hex digits: an ETag needs to change with the bytes, not to
/// resist an attacker (the bytes are our own build's).
std::string fnv1a_hex(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const unsigned char ch : bytes) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  static constexpr std::array<char, 16> digits{'0', '1', '2', '3', '4', '5', '6', '7',
                                               '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = digits[h & 0xf];
  return out;
}

/// `bytes` gzip-encoded (RFC 1952) at level 9 with zlib, or "" if zlib fails.
std::string gzip_encode(std::string_view bytes, int level) {
  z_stream zs{};
  // windowBits 15 + 16: a gzip wrapper instead of zlib's.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const auto written = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return {};
  out.resize(written);
  return out;
}

std::optional<std::string> static_path(std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target.front() != '/' || target.size() > k_max_static_path) return std::nullopt;
  if (target == "/" || target == "/index.html") return std::string("index.html");
  std::string key;
  target.remove_prefix(1);
  while (true) {
    const auto slash = target.find('/');
    const auto raw = target.substr(0, slash);
    std::string segment;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      char ch = raw[i];
      if (ch == '%') {
        if (i + 2 >= raw.size()) return std::nullopt;
        const int hi = hex_value(raw[i + 1]);
        const int lo = hex_value(raw[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        ch = static_cast<char>(hi * 16 + lo);
        i += 2;
      }
      const auto u = static_cast<unsigned char>(ch);
      if (u < 0x20 || u == 0x7f || ch == '/' || ch == '\\') return std::nullopt;
      segment += ch;
    }
    if (segment.empty() || segment.front() == '.') return std::nullopt;
    if (!key.empty()) key += '/';
    key += segment;
    if (slash == std::string_view::npos) break;
    target.remove_prefix(slash + 1);
  }
  return key;
}

bool hashed_name(std::string_view key) {
  const auto slash = key.rfind('/');
  auto name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return false;
  const auto stem = name.substr(0, dot);
  const auto dash = stem.rfind('-');
  if (dash == std::string_view::npos) return false;
  const auto hash = stem.substr(dash + 1);
  return hash.size() >= 8 && std::all_of(hash.begin(), hash.end(),
                                         [](char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'); });
}

std::string content_type_for(std::string_view key) {
  std::string ext(extension(key));
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

bool accepts_gzip(std::string_view value) {
  bool star = false;
  bool star_zero = false;
  while (!value.empty()) {
    const auto comma = value.find(',');
    auto item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const auto semi = item.find(';');
    auto coding = item.substr(0, semi);
    while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) coding.remove_prefix(1);
    while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) coding.remove_suffix(1);
    std::string lower(coding);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    // q=0 (also 0.0, 0.000) refuses the coding; any other weight accepts it.
    bool zero = false;
    if (semi != std::string_view::npos) {
      auto params = item.substr(semi + 1);
      const auto q = params.find("q=");
      if (q != std::string_view::npos) {
        auto w = params.substr(q + 2);
        w = w.substr(0, w.find_first_of("; \t"));
        zero = !w.empty() && std::all_of(w.begin(), w.end(), [](char ch) { return ch == '0' || ch == '.'; });
      }
    }
    if (lower == "gzip" || lower == "x-gzip") return !zero;
    if (lower == "*") {
      star = true;
      star_zero = zero;
    }
  }
  return star && !star_zero;
}

result<std::shared_ptr<const web_root>> web_root::load(const fs::path& dir, const web_root_limits& limits) {
  std::error_code ec;
  const auto root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root, ec)) {
    return fail(errc::invalid_argument, "web root " + dir.string() + " is not a readable directory");
  }
  auto out = std::make_shared<web_root>();
  out->dir_ = root;
  struct found {
    fs::path path;
    std::size_t size;
  };
  std::map<std::string, found> seen;  // key → where it is
  std::size_t total = 0;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return fail(errc::invalid_argument, "web root " + dir.string() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return fail(errc::invalid_argument, "web root " + dir.string() + ": " + ec.message());
    const auto& entry = *it;
    const auto name = entry.path().filename().string();
    if (name.starts_with(".")) {
      if (entry.is_directory(ec) && !entry.is_symlink(ec)) it.disable_recursion_pending();
      continue;
    }
    fs::path file = entry.path();
    if (entry.is_symlink(ec)) {
      // Only a link to a regular file inside the root is served (never followed into a folder).
      const auto target = fs::canonical(entry.path(), ec);
      if (ec || !fs::is_regular_file(target, ec)) continue;
      const auto rel = target.lexically_relative(root);
      if (rel.empty() || *rel.begin() == "..") {
        spdlog::warn("web root: skipped {} (a symlink pointing outside the web root)", entry.path().string());
        continue;
      }
      file = target;
    } else if (!entry.is_regular_file(ec)) {
      continue;
    }
    const auto size = fs::file_size(file, ec);
    if (ec) return fail(errc::invalid_argument, "web root: cannot stat " + entry.path().string());
    if (size > limits.max_file_bytes) {
      return fail(errc::invalid_argument, "web root: " + entry.path().string() + " is " + std::to_string(size) +
                                              " bytes, over the limit of " + std::to_string(limits.max_file_bytes));
    }
    total += size;
    if (total > limits.max_total_bytes) {
      return fail(errc::invalid_argument,
                  "web root " + dir.string() + " holds more than " + std::to_string(limits.max_total_bytes) + " bytes");
    }
    if (seen.size() >= limits.max_files) {
      return fail(errc::invalid_argument,
                  "web root " + dir.string() + " holds more than " + std::to_string(limits.max_files) + " files");
    }
    seen.emplace(entry.path().lexically_relative(root).generic_string(), found{file, size});
  }
  for (const auto& [key, where] : seen) {
    if (key.ends_with(".gz") && seen.contains(key.substr(0, key.size() - 3))) continue;  // a variant
    auto body = read_file(where.path, where.size);
    if (!body) return std::unexpected(body.error());
    static_file f;
    f.body = std::move(*body);
    f.content_type = content_type_for(key);
    f.cache_control = hashed_name(key) ? "public, max-age=31536000, immutable" : "no-cache";
    const auto tag = fnv1a_hex(f.body);
    f.etag = "\"" + tag + "\"";
    if (auto gz = seen.find(key + ".gz"); gz != seen.end()) {
      auto g = read_file(gz->second.path, gz->second.size);
      if (!g) return std::unexpected(g.error());
      f.gzip = std::move(*g);
    } else if (limits.gzip_at_start && compressible(f.content_type) && f.body.size() >= k_min_gzip_bytes) {
      auto g = gzip_encode(f.body, 9);
      if (!g.empty() && g.size() < f.body.size()) f.gzip = std::move(g);
    }
    if (!f.gzip.empty()) f.gzip_etag = "\"" + tag + "-gz\"";
    out->bytes_ += f.body.size() + f.gzip.size();
    out->files_.emplace(key, std::move(f));
  }
  return std::shared_ptr<const web_root>(std::move(out));
}

const static_file* web_root::find(std::string_view target) const {
  const auto key = static_path(target);
  if (!key) return nullptr;
  auto it = files_.find(*key);
  return it == files_.end() ? nullptr : &it->second;
}

http_response static_response(const static_file& file, const http_request& req) {
  const bool gz = !file.gzip.empty() && accepts_gzip(req.header("accept-encoding"));
  const auto& tag = gz ? file.gzip_etag : file.etag;
  http_response r;
  r.content_type = file.content_type;
  r.headers.emplace_back("Cache-Control", file.cache_control);
  r.headers.emplace_back("ETag", tag);
  if (!file.gzip.empty()) r.headers.emplace_back("Vary", "Accept-Encoding");
  if (const auto inm = req.header("if-none-match"); !inm.empty() && lists_etag(inm, tag)) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  if (gz) r.headers.emplace_back("Content-Encoding", "gzip");
  r.body = gz ? file.gzip : file.body;
  return r;
}

}  // namespace atrium::http_adapter
