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
///
/// A response with `open` set turns the connection into a `push_channel`: a WebSocket
/// (RFC 6455; pings on idle, messages up to `max_body_bytes`) or a streamed body.

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

/// A server-push channel on one connection: an accepted WebSocket, or the body of a
/// streaming response (Server-Sent Events). Thread-safe; every write is posted onto
/// the connection's strand. The send queue is bounded (`server_options::push_queue_*`):
/// a consumer too slow to keep up is never buffered for without limit.
class push_channel {
 public:
  virtual ~push_channel() = default;
  /// Queues `text` (a WebSocket text message, or bytes of the streamed body). False,
  /// queueing nothing, when the queue is full or the channel is closing.
  virtual bool send(std::string text) = 0;
  /// Sends `final_message` (if not empty; beyond the queue bound) after everything
  /// queued, then closes: a WebSocket with close `code` and `reason`, a stream by ending
  /// its body. Idempotent.
  virtual void close(std::uint16_t code, std::string reason, std::string final_message = {}) = 0;
  /// True while the queue is over half full (in messages or bytes): producers that can
  /// wait (a replay) should.
  [[nodiscard]] virtual bool congested() const = 0;
  /// True once the channel is closing or closed (either side): `send` refuses for that
  /// reason, not because the consumer is slow.
  [[nodiscard]] virtual bool closing() const = 0;
  /// The peer address "ip:port".
  [[nodiscard]] virtual const std::string& remote() const = 0;
};

/// What the handler wants to hear from a channel. Both run on the connection's strand.
struct push_callbacks {
  std::function<void(std::string)> on_message;  ///< a WebSocket text message (never for streams)
  std::function<void()> on_close;               ///< the channel closed (either side), once
};

/// Opens a channel: called on the strand once the upgrade (or the response header) is
/// written. The channel owns the callbacks, which may own the handler's connection
/// state; keep only a `weak_ptr` to the channel there.
using open_fn = std::function<push_callbacks(std::shared_ptr<push_channel>)>;

/// A parsed request. Header names are lowercase.
struct http_request {
  std::string method;  ///< e.g. "GET"
  std::string target;  ///< origin-form: path and optional query, still percent-encoded
  std::map<std::string, std::string> headers;
  std::string body;
  std::string remote;      ///< peer address "ip:port"
  bool websocket = false;  ///< a WebSocket upgrade request (RFC 6455 §4.1)
  /// Set for a command sent over a WebSocket (`{"op":"command"}`): routes that open a
  /// push channel refuse it.
  bool via_websocket = false;

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
  /// Set to turn the connection into a push channel: with status 101 on a WebSocket
  /// upgrade request (`http_request::websocket`) the server accepts the WebSocket;
  /// with any other status it writes the header and streams the body (chunked), e.g.
  /// `text/event-stream`. `body` is then ignored.
  open_fn open;
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
  std::size_t push_queue_messages = 1024;   ///< a push channel's queue bound, in messages
  std::size_t push_queue_bytes = 4 << 20;   ///< … and in bytes
  std::chrono::seconds push_heartbeat{15};  ///< a stream writes a `:` comment line when idle this long
  std::chrono::seconds websocket_idle{60};  ///< a silent WebSocket is pinged after this, closed after twice
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
