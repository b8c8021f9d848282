// HTTP semantics of every answer: media types, ETags, gzip, 304, CORS.
#include "adapters/http/http_semantics.hpp"

#include <algorithm>
#include <cctype>

#include "adapters/http/browser_security.hpp"
#include "adapters/http/static_files.hpp"

namespace atrium::http_adapter {
namespace {

bool has_header(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); });
}

std::string* header_value(std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
  for (auto& [k, v] : headers) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

/// Text worth compressing: JSON, text (CSV, the Prometheus exposition, logs), NDJSON.
bool compressible_type(std::string_view type) {
  const auto semi = type.find(';');
  const auto bare = trim_ows(type.substr(0, semi));
  std::string lower(bare);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return lower.starts_with("text/") || lower == "application/json" || lower.ends_with("+json") ||
         lower == "application/x-ndjson" || lower == "application/openmetrics-text";
}

}  // namespace

bool json_media_type(std::string_view content_type) {
  const auto semi = content_type.find(';');
  return iequals(trim_ows(content_type.substr(0, semi)), "application/json");
}

std::optional<std::string> refused_media_type(std::string_view content_type, std::size_t body_bytes) {
  if (content_type.empty()) {
    if (body_bytes == 0) return std::nullopt;
    return std::string("a request body needs Content-Type: application/json");
  }
  if (json_media_type(content_type)) return std::nullopt;
  return std::string("request bodies are application/json");
}

std::optional<std::string> listed_origin(std::string_view origin, const std::vector<std::string>& allowed) {
  if (origin.empty() || allowed.empty()) return std::nullopt;
  auto normalized = normalize_origin(origin);
  if (!normalized) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), *normalized) == allowed.end()) return std::nullopt;
  return std::move(*normalized);
}

void add_vary(std::vector<std::pair<std::string, std::string>>& headers, std::string_view token) {
  auto* vary = header_value(headers, "Vary");
  if (vary == nullptr) {
    headers.emplace_back("Vary", std::string(token));
    return;
  }
  std::string_view rest = *vary;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    if (iequals(trim_ows(rest.substr(0, comma)), token)) return;
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  *vary += ", ";
  *vary += token;
}

std::vector<std::pair<std::string, std::string>> preflight_headers(const std::string& origin,
                                                                   const std::string& methods) {
  return {{"Access-Control-Allow-Origin", origin},
          {"Access-Control-Allow-Credentials", "true"},
          {"Access-Control-Allow-Methods", methods},
          {"Access-Control-Allow-Headers", std::string(k_cors_allow_headers)},
          {"Access-Control-Max-Age", std::to_string(k_cors_max_age_seconds)},
          {"Vary", "Origin"}};
}

bool if_none_match_lists(std::string_view header, std::string_view tag) {
  std::size_t seen = 0;
  while (!header.empty() && seen++ < k_max_listed_tags) {
    const auto comma = header.find(',');
    auto item = trim_ows(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == tag) return true;
  }
  return false;
}

std::string body_etag(std::string_view bytes) { return "\"b" + fnv1a_hex(bytes) + "\""; }

void finish_representation(http_response& r, const representation_request& q) {
  if (q.cors_configured) add_vary(r.headers, "Origin");
  if (q.cors_origin) {
    r.headers.emplace_back("Access-Control-Allow-Origin", *q.cors_origin);
    r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
    r.headers.emplace_back("Access-Control-Expose-Headers", std::string(k_cors_expose_headers));
  }
  // RFC 6585 §4: a 429 says when to come back (the routes that answer it set their own).
  if (r.status == 429 && !has_header(r.headers, "Retry-After")) r.headers.emplace_back("Retry-After", "1");
  const bool safe = q.method == "GET" || q.method == "HEAD";
  if (!q.representation || !safe || r.status != 200 || r.open || r.producer) return;
  if (has_header(r.headers, "Content-Encoding")) return;
  // Read, not held: the headers grow below.
  const auto* given = header_value(r.headers, "ETag");
  const bool had_tag = given != nullptr;
  std::string tag = had_tag ? *given : body_etag(r.body);
  if (r.body.size() >= k_min_gzip_response_bytes && compressible_type(r.content_type)) {
    add_vary(r.headers, "Accept-Encoding");
    if (accepts_gzip(q.accept_encoding)) {
      auto gz = gzip_encode(r.body, k_response_gzip_level);
      if (!gz.empty() && gz.size() < r.body.size()) {
        r.body = std::move(gz);
        r.headers.emplace_back("Content-Encoding", "gzip");
        // The gzip bytes are another representation: another strong tag (RFC 9110 §8.8.3).
        if (tag.size() >= 2 && tag.back() == '"') tag.insert(tag.size() - 1, "-gz");
      }
    }
  }
  if (had_tag) {
    *header_value(r.headers, "ETag") = tag;
  } else {
    r.headers.emplace_back("ETag", tag);
  }
  if (!q.if_none_match.empty() && if_none_match_lists(q.if_none_match, tag)) {
    r.status = 304;  // RFC 9110 §15.4.5: the fields a 200 would carry, no content
    r.body.clear();
    std::erase_if(r.headers, [](const auto& h) { return iequals(h.first, "Content-Encoding"); });
  }
}

}  // namespace atrium::http_adapter
