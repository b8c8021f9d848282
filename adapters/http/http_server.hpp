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
///
/// A response with `producer` set streams a body the server pulls (a download such as a
/// job's CSV result), never held whole in memory:
///
///   header ─write─▶ producer.next(chunk) ─write chunk─▶ … next ─▶ false ─▶ last chunk
///                   (on the strand, only after the previous write completed)
///
/// Chunked transfer coding (RFC 9112 §7.1); keep-alive continues after the last chunk.
/// A producer error, or a client gone or silent for `idle_timeout` mid-body, ends the
/// connection without the last chunk (so the client sees a truncated body) and releases
/// the producer at once.

#include <array>
#include <atomic>
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

/// A message queued on a push channel: the concatenation of up to three immutable,
/// shared parts (null parts are skipped), written as one WebSocket text message or as
/// bytes of a streamed body. One event's serialized text is one part held by every
/// connection it goes to (a queued message costs a few reference counts, not a copy);
/// a WebSocket event is `{"op":"event","subscription":ID,"event":` (built once per
/// subscription) + the event (once per event) + `}`.
struct push_message {
  std::array<std::shared_ptr<const std::string>, 3> parts;
  /// Bytes of the message (the sum of its parts).
  [[nodiscard]] std::size_t size() const {
    std::size_t n = 0;
    for (const auto& p : parts) n += p ? p->size() : 0;
    return n;
  }
};

/// A server-push channel on one connection: an accepted WebSocket, or the body of a
/// streaming response (Server-Sent Events). Thread-safe; every write runs on the
/// connection's strand. The send queue is bounded (`server_options::push_queue_*`), and so
/// is the socket's kernel send buffer (`push_socket_buffer`): a consumer too slow to keep
/// up is never buffered for without limit.
///
///   send(text, tag) ─▶ queue ─▶ one write at a time ─▶ kernel send buffer ─▶ peer
///                              (every queued message, up to 64 and 16 KiB, in one
///                               gather write: `k_batch_messages`, `k_batch_bytes`)
///                        │ full: send refuses (the caller cuts the channel)
///                        │ no byte acknowledged for `push_write_stall`: `on_stalled`
///   cut(final) ─▶ drops what is queued but not started, raises the send buffer (room
///                 for `push_final_reserve` and more), writes `final` right after the message in
///                 flight, closes; ends the connection after `push_close_grace` at most.
class push_channel {
 public:
  /// Builds a cut channel's last message from the tags of the queued messages it dropped
  /// (in queue order; untagged ones are left out). Called once, synchronously, by `cut`.
  using final_fn = std::function<std::string(const std::vector<std::uint64_t>& dropped_tags)>;

  virtual ~push_channel() = default;
  /// Queues `message` (a WebSocket text message, or bytes of the streamed body) with an
  /// opaque `tag` that `cut` reports if the message is dropped (0: none). False,
  /// queueing nothing, when the queue is full or the channel is closing. The queue
  /// bound counts `message.size()` bytes, shared parts included.
  virtual bool send(push_message message, std::uint64_t tag = 0) = 0;
  /// `send` of one text of its own.
  bool send(std::string text, std::uint64_t tag = 0) {
    return send(push_message{{std::make_shared<const std::string>(std::move(text))}}, tag);
  }
  /// Graceful end: sends `final_message` (if not empty; beyond the queue bound) after
  /// everything queued, then closes: a WebSocket with close `code` and `reason`, a stream
  /// by ending its body. Nothing if the channel is already closing.
  virtual void close(std::uint16_t code, std::string reason, std::string final_message = {}) = 0;
  /// Ends a consumer that cannot keep up: drops every queued message whose write has not
  /// started (freeing their memory at once), asks `final_message` for the last message
  /// given the dropped messages' tags, and sends it right after the message being
  /// written (if any), in room reserved for it in the kernel's send buffer, so that it
  /// reaches a peer that reads again within `push_close_grace`; then closes like
  /// `close`. Nothing if the channel is already closing.
  virtual void cut(std::uint16_t code, std::string reason, final_fn final_message) = 0;
  /// True while the queue is over half full (in messages or bytes): producers that can
  /// wait (a replay) should.
  [[nodiscard]] virtual bool congested() const = 0;
  /// True once the channel is closing or closed (either side): `send` refuses for that
  /// reason, not because the consumer is slow.
  [[nodiscard]] virtual bool closing() const = 0;
  /// The peer address "ip:port".
  [[nodiscard]] virtual const std::string& remote() const = 0;
};

/// What the handler wants to hear from a channel. All run on the connection's strand.
struct push_callbacks {
  std::function<void(std::string)> on_message;  ///< a WebSocket text message (never for streams)
  std::function<void()> on_close;               ///< the channel closed (either side), once
  /// The peer acknowledged no byte for `push_write_stall` while a write waited: the
  /// handler should `cut` the channel (with its resume positions). Without this callback,
  /// or if the channel is still open `push_close_grace` later, the channel aborts.
  std::function<void()> on_stalled;
};

/// Opens a channel: called on the strand once the upgrade (or the response header) is
/// written. The channel owns the callbacks, which may own the handler's connection
/// state; keep only a `weak_ptr` to the channel there.
using open_fn = std::function<push_callbacks(std::shared_ptr<push_channel>)>;

/// A response body produced on demand (pull): the server asks for the next piece only
/// after the previous one is written to the socket, so a slow client holds at most one
/// chunk plus the kernel's send buffer. `next` runs on the connection's I/O thread: it
/// must not block long (reading ~64 KiB from a local file is fine). Destroyed (on any
/// thread) when the response ends, completely or not.
class body_producer {
 public:
  virtual ~body_producer() = default;
  /// Replaces `out` with the next bytes of the body and returns true (an empty `out` is
  /// skipped); returns false at the end. An error ends the response abruptly (logged).
  [[nodiscard]] virtual result<bool> next(std::string& out) = 0;
};

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
  /// For a handler that answers late (a long poll): starts watching the connection while
  /// the answer is pending and returns a flag that turns true once the peer has closed it
  /// (end of stream, also a half-close, or a reset). The watch ends when the answer is
  /// written, or when the peer sends more bytes (a pipelined request: it is alive). The
  /// flag is set on the connection's I/O thread; read it from any thread. Unset for a
  /// WebSocket command. Call it at most once, before answering.
  std::function<std::shared_ptr<const std::atomic<bool>>()> watch_peer;

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
  /// Set (and `open` not) to stream the body from this producer (chunked, see the top
  /// of this header); `body` is then ignored.
  std::shared_ptr<body_producer> producer;
};

/// Sends the response; call exactly once, from any thread.
using respond_fn = std::function<void(http_response)>;
/// Handles one request.
using handler_fn = std::function<void(http_request, respond_fn)>;

/// Server settings.
struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  ///< 0 picks a free port; see `http_server::port()`
  /// I/O threads (every connection's reads and writes, WebSocket and SSE fan-out
  /// included); 0: one per core (`std::thread::hardware_concurrency()`, at least 1).
  std::size_t threads = 0;
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::seconds idle_timeout{60};
  std::size_t push_queue_messages = 1024;  ///< a push channel's queue bound, in messages
  std::size_t push_queue_bytes = 4 << 20;  ///< … and in bytes
  /// SO_SNDBUF of a push channel's socket, in bytes (the kernel doubles it for its
  /// bookkeeping): what a peer that stopped reading can hold in the kernel. Kept at most
  /// half of `net.core.wmem_max` minus `push_final_reserve`; 0 leaves the kernel's
  /// autotuning (then a cut's final message may find no room).
  std::size_t push_socket_buffer = 128 << 10;
  /// When a channel is cut its send buffer is raised to twice `push_socket_buffer` plus
  /// this: room for the rest of the message in flight, the final message and the close,
  /// even behind a full buffer (Linux wakes a writer only once the free space is half of
  /// what is held).
  std::size_t push_final_reserve = 64 << 10;
  /// A write the peer acknowledges no byte of for this long marks the consumer as stalled.
  std::chrono::milliseconds push_write_stall{std::chrono::seconds(20)};
  /// How long a cut channel waits for the peer to take the final message and the close
  /// (the WebSocket closing handshake) before the connection ends.
  std::chrono::milliseconds push_close_grace{std::chrono::seconds(30)};
  std::chrono::seconds push_heartbeat{15};  ///< a stream writes a `:` comment line when idle this long
  std::chrono::seconds websocket_idle{60};  ///< a silent WebSocket is pinged after this, closed after twice

  /// HTTPS (and WSS, and SSE over TLS) on this port: the PEM files of the certificate
  /// chain (leaf first, then intermediates) and of its private key. Both empty: plain HTTP.
  /// OpenSSL through Beast's `ssl_stream`; a plain-HTTP request on a TLS port is answered
  /// 400 in plain HTTP ("this port serves HTTPS only"), then the connection closes.
  std::string tls_cert_file;
  std::string tls_key_file;
  /// The lowest protocol version a TLS client may use: "1.2" (default) or "1.3".
  std::string tls_min_version = "1.2";
  /// A connection on a TLS port must finish its handshake within this (from accept).
  std::chrono::milliseconds tls_handshake_timeout{std::chrono::seconds(30)};
};

/// The running server.
class http_server {
 public:
  /// Binds, listens and starts the I/O threads. `invalid_argument` for a bad host, for
  /// TLS files that cannot be read or do not match, or a bad `tls_min_version`;
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
  /// True when the server serves TLS (`tls_cert_file` set).
  [[nodiscard]] bool tls() const;
  /// Reads the certificate and key files again (after a renewal); connections accepted
  /// from now on use them, open ones keep theirs (nothing is dropped). On an error
  /// (`invalid_argument`, as `start`) the server keeps serving the previous certificate;
  /// `failed_precondition` when the server does not serve TLS. Thread-safe.
  [[nodiscard]] result<void> reload_tls();

  struct impl;

 private:
  explicit http_server(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace atrium::http_adapter
