#pragma once
/// Internal to the HTTP adapter (and its fuzz target): how a request Beast has parsed
/// becomes an `http_request`, and what is refused on the way. One place, so that the
/// fuzz target (tests/fuzz/http_request_fuzz.cpp) tests exactly what the server does.
/// Includes Beast: only http_server.cpp and the fuzz target include it.

#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/http/http_server.hpp"

namespace atrium::http_adapter {

/// The most bytes of a request line and header block (Beast's `header_limit`).
inline constexpr std::size_t k_header_limit_bytes = 64 * 1024;
/// The most bytes read but not yet parsed: the session's read buffer limit. Bounds a
/// chunk header with its extensions and the trailer, which Beast's parser does not bound
/// by itself (a trailer field over 64 KiB made Beast throw `std::length_error`).
inline constexpr std::size_t k_max_unparsed_bytes = 64 * 1024;

/// Fields that hold a single value (RFC 9110): a request that repeats one is refused.
inline bool singleton_header(std::string_view lowercase_name) {
  static constexpr std::array<std::string_view, 11> names{
      "authorization", "content-type", "host",       "idempotency-key", "if-match",      "if-none-match",
      "last-event-id", "x-request-id", "user-agent", "origin",          "content-length"};
  return std::find(names.begin(), names.end(), lowercase_name) != names.end();
}

/// True when a Transfer-Encoding value is exactly `chunked` (case-insensitive, blanks
/// around it ignored): the one transfer coding the server reads.
inline bool only_chunked(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  constexpr std::string_view chunked = "chunked";
  return value.size() == chunked.size() && std::equal(value.begin(), value.end(), chunked.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

/// Fills `out` from `req` (method, target, headers with lowercase names, WebSocket
/// upgrade flag, body — moved out of `req`; not `remote`). A repeated field becomes one
/// comma-separated list (RFC 9110 §5.3). Returns the message of a 400 when the request is
/// refused instead: a repeated single-value header (which one did a proxy check?), or a
/// transfer coding other than chunked (RFC 9112 §6.3: 400, and the connection closes).
inline std::optional<std::string> to_http_request(boost::beast::http::request<boost::beast::http::string_body>& req,
                                                  http_request& out) {
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, fresh] = out.headers.try_emplace(name, f.value());
    if (fresh) continue;
    if (singleton_header(name)) return "header " + name + " is repeated";
    it->second += ", ";
    it->second += f.value();
  }
  if (auto te = out.headers.find("transfer-encoding"); te != out.headers.end() && !only_chunked(te->second)) {
    return "Transfer-Encoding must be chunked";
  }
  out.websocket = boost::beast::websocket::is_upgrade(req);
  out.body = std::move(req.body());
  return std::nullopt;
}

}  // namespace atrium::http_adapter
