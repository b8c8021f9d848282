#pragma once
/// A small asynchronous HTTP/1.1 server on Boost.Beast, behind a Beast-free interface.
///
///   accept ─▶ session (one strand per connection) ─read─▶ handler(request, respond)
///                       ▲                                        │ (any thread, later)
///                       └────────── post(write response) ◀───────┘
///
/// The handler runs on an I/O thread and must not block; it answers by calling
/// `respond` exactly once from any thread, which posts the write back onto the
/// connection's strand. Keep-alive is honoured; bodies over `max_body_bytes` get 413,
/// unparsable requests 400, idle connections are closed after `idle_timeout`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "events/error.hpp"

namespace atrium::http_adapter {

/// A parsed request. Header names are lowercase.
struct http_request {
  std::string method;  ///< e.g. "GET"
  std::string target;  ///< origin-form: path and optional query, still percent-encoded
  std::map<std::string, std::string> headers;
  std::string body;
  std::string remote;  ///< peer address "ip:port"

  /// The header's value, or "" when absent.
  [[nodiscard]] std::string header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// A response to send.
struct http_response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Sends the response; call exactly once, from any thread.
using respond_fn = std::function<void(http_response)>;
/// Handles one request.
using handler_fn = std::function<void(http_request, respond_fn)>;

/// Server settings.
struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  ///< 0 picks a free port; see `http_server::port()`
  std::size_t threads = 2;
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::seconds idle_timeout{60};
};

/// The running server.
class http_server {
 public:
  /// Binds, listens and starts the I/O threads. `invalid_argument` for a bad host,
  /// `unavailable` if the address cannot be bound (e.g. in use).
  [[nodiscard]] static result<std::unique_ptr<http_server>> start(server_options options, handler_fn handler);
  /// Stops accepting, closes connections and joins the I/O threads.
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// The bound port (useful with port 0).
  [[nodiscard]] std::uint16_t port() const;
  /// Stops the server; idempotent.
  void stop();

  struct impl;

 private:
  explicit http_server(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace atrium::http_adapter
