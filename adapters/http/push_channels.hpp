#pragma once
/// The server's push channels (Beast): the bounded send queue shared by WebSockets and
/// streamed bodies (`channel_base`), the WebSocket (`ws_channel`) and the streamed
/// response (`stream_channel`, Server-Sent Events). Internal to http_server.cpp, the one
/// translation unit that includes it (Beast headers are slow to compile).

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>

#include "adapters/http/http_server.hpp"

namespace atrium::http_adapter::push_detail {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

/// A JSON error body in the API's shape, for answers the server gives itself.
inline std::string error_body(std::string_view code, std::string_view message) {
  return R"({"error":{"code":")" + std::string(code) + R"(","message":")" + std::string(message) +
         R"(","details":{}}})";
}

/// Bytes of the socket's data the peer has acknowledged: Linux's TCP_INFO
/// `tcpi_bytes_acked` (`struct tcp_info` in <linux/tcp.h>, at offset 120 since Linux 4.1;
/// glibc's copy of the struct ends before it). 0 where unknown.
inline std::uint64_t bytes_acked(int fd) {
  constexpr std::size_t offset = 120;
  std::array<unsigned char, 256> info{};
  socklen_t len = info.size();
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, info.data(), &len) != 0 || len < offset + sizeof(std::uint64_t)) return 0;
  std::uint64_t acked = 0;
  std::memcpy(&acked, info.data() + offset, sizeof acked);
  return acked;
}

/// The largest SO_SNDBUF an unprivileged process may set: `net.core.wmem_max`.
inline std::size_t max_send_buffer() {
  static const std::size_t value = [] {
    std::ifstream f("/proc/sys/net/core/wmem_max");
    std::size_t n = 0;
    return f >> n && n > 0 ? n : std::size_t{212992};  // Linux's default
  }();
  return value;
}

/// The bounded send queue of a push channel, shared by WebSockets and streams. The
/// queue is guarded by a mutex, so that `send` refuses at once from any thread and `cut`
/// can drop what is not started; writes run one at a time on the strand.
///
/// Memory a peer that stopped reading can cost: the queue (`push_queue_*`) until the
/// queue overflows (the handler cuts) or no byte is acknowledged for `push_write_stall`
/// (`on_stalled`; the handler cuts), then only the kernel's send buffer
/// (`push_socket_buffer` + `push_final_reserve`) for at most `push_close_grace`.
class channel_base : public push_channel, public std::enable_shared_from_this<channel_base> {
 public:
  channel_base(net::any_io_executor ex, const server_options& options, std::string remote)
      : ex_(ex), options_(options), remote_(std::move(remote)), timer_(ex) {}

  bool send(std::string text, std::uint64_t tag) override {
    {
      std::lock_guard lock(mu_);
      const auto size = text.size();
      if (closing_ || queue_.size() >= options_.push_queue_messages || bytes_ + size > options_.push_queue_bytes) {
        return false;
      }
      bytes_ += size;
      queue_.push_back(item{std::move(text), tag, size});
      if (active_) return true;
      active_ = true;
    }
    net::post(ex_, [self = shared_from_this()] { self->pump(); });
    return true;
  }

  void close(std::uint16_t code, std::string reason, std::string final_message) override {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
    }
    net::post(ex_, [self = shared_from_this(), code, reason = std::move(reason),
                    final_message = std::move(final_message)]() mutable {
      self->end_after(code, std::move(reason), std::move(final_message));
    });
  }

  void cut(std::uint16_t code, std::string reason, final_fn final_message) override {
    std::vector<std::uint64_t> tags;
    std::deque<item> dropped;
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
      // The front's write may have started: it must finish (a WebSocket frame or an
      // HTTP chunk cannot be taken back), and the final message follows it.
      const auto first = queue_.begin() + (writing_ ? 1 : 0);
      for (auto it = first; it != queue_.end(); ++it) {
        if (it->tag != 0) tags.push_back(it->tag);
        bytes_ -= it->size;
      }
      dropped.insert(dropped.end(), std::make_move_iterator(first), std::make_move_iterator(queue_.end()));
      queue_.erase(first, queue_.end());
    }
    dropped.clear();
    auto text = final_message ? final_message(tags) : std::string();
    net::post(ex_, [self = shared_from_this(), code, reason = std::move(reason), text = std::move(text)]() mutable {
      self->reserve_room();
      self->arm_grace();
      self->end_after(code, std::move(reason), std::move(text));
    });
  }

  const std::string& remote() const override { return remote_; }

  bool closing() const override {
    std::lock_guard lock(mu_);
    return closing_;
  }

  bool congested() const override {
    std::lock_guard lock(mu_);
    return queue_.size() > options_.push_queue_messages / 2 || bytes_ > options_.push_queue_bytes / 2;
  }

 protected:
  struct item {
    std::string text;
    std::uint64_t tag = 0;
    std::size_t size = 0;  // as counted in bytes_ (write_one may frame `text` in place)
  };

  /// Writes `text` (the queue's front; may be modified in place, e.g. framed) and calls
  /// `done` on the strand.
  virtual void write_one(std::string& text, std::function<void(beast::error_code)> done) = 0;
  /// Ends the channel gracefully after the queue drained; calls `closed()` when done.
  virtual void finish() = 0;
  /// Closes the socket at once.
  virtual void abort() = 0;
  /// The connection's socket.
  virtual tcp::socket& socket() = 0;

  /// The send buffer a channel starts with (SO_SNDBUF), so that `reserve_room` can raise
  /// it to twice as much plus the reserve within `net.core.wmem_max`.
  [[nodiscard]] std::size_t send_buffer() const {
    const auto max = max_send_buffer();
    const auto reserve = std::min(options_.push_final_reserve, max / 2);
    return std::max<std::size_t>(std::min(options_.push_socket_buffer, (max - reserve) / 2), 4096);
  }

  /// Bounds the kernel's send buffer (before the first write).
  void limit_send_buffer() {
    if (options_.push_socket_buffer == 0) return;
    beast::error_code ec;
    socket().set_option(net::socket_base::send_buffer_size(static_cast<int>(send_buffer())), ec);
  }

  /// A cut's final message must fit behind a buffer the peer stopped draining. Linux
  /// calls a TCP socket writable (and wakes a blocked writer) only while its free space
  /// is at least half of what it holds, so the bound is more than doubled: the write in
  /// flight, the final message and the close then go into the kernel at once. Nothing
  /// more is written after them, so the memory held stays what was queued plus those.
  void reserve_room() {
    if (options_.push_socket_buffer == 0 || dead_) return;
    beast::error_code ec;
    socket().set_option(
        net::socket_base::send_buffer_size(static_cast<int>(2 * send_buffer() + options_.push_final_reserve)), ec);
    if (ec) spdlog::warn("push channel cannot reserve room remote={}: {}", remote_, ec.message());
  }

  /// On the strand: queues `final_message` after what is queued and closes once drained.
  void end_after(std::uint16_t code, std::string reason, std::string final_message) {
    close_code_ = code;
    close_reason_ = std::move(reason);
    {
      std::lock_guard lock(mu_);
      if (!final_message.empty()) {
        bytes_ += final_message.size();
        const auto size = final_message.size();
        queue_.push_back(item{std::move(final_message), 0, size});
      }
    }
    close_after_drain_ = true;
    kick();
  }

  /// On the strand: starts the pump unless it runs.
  void kick() {
    {
      std::lock_guard lock(mu_);
      if (active_) return;
      active_ = true;
    }
    pump();
  }

  /// On the strand, with `active_` set: writes the front, or finishes a closing channel
  /// whose queue drained.
  void pump() {
    std::string* text = nullptr;
    bool finish_now = false;
    {
      std::lock_guard lock(mu_);
      if (dead_) {
        active_ = false;
        return;
      }
      if (!queue_.empty()) {
        writing_ = true;
        text = &queue_.front().text;  // stable: a deque's push_back keeps references
      } else {
        active_ = false;
        finish_now = close_after_drain_ && !finishing_;
      }
    }
    if (finish_now) {
      finishing_ = true;
      return finish();
    }
    if (!text) return;
    watch();
    write_one(*text, [self = shared_from_this()](beast::error_code ec) { self->wrote(ec); });
  }

  void wrote(beast::error_code ec) {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!queue_.empty()) {
        bytes_ -= queue_.front().size;
        queue_.pop_front();
      }
      if (ec) active_ = false;
    }
    ++written_;
    if (ec) return closed();
    pump();
  }

  /// On the strand, when a write starts: checks every `push_write_stall` that the peer
  /// still takes bytes while writes wait.
  void watch() {
    if (watching_ || grace_ || dead_) return;
    watching_ = true;
    mark_written_ = written_;
    mark_acked_ = bytes_acked(socket().native_handle());
    timer_.expires_after(options_.push_write_stall);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      self->watching_ = false;
      if (ec || self->dead_ || self->grace_) return;
      bool writing = false;
      {
        std::lock_guard lock(self->mu_);
        writing = self->writing_;
      }
      if (!writing) return;  // the next write watches again
      if (self->written_ != self->mark_written_ || bytes_acked(self->socket().native_handle()) != self->mark_acked_) {
        return self->watch();
      }
      self->stalled();
    });
  }

  /// No byte acknowledged for a whole `push_write_stall` while a write waited.
  void stalled() {
    spdlog::info("push channel stalled remote={} stall_ms={}", remote_, options_.push_write_stall.count());
    if (auto on_stalled = callbacks_.on_stalled) on_stalled();  // the handler cuts with its resume positions
    cut(1013, "stalled", nullptr);                              // nothing if it did
    arm_grace();                                                // e.g. a graceful close that stalled
  }

  /// On the strand: the connection ends `push_close_grace` from now at the latest.
  void arm_grace() {
    if (grace_ || dead_) return;
    grace_ = true;
    timer_.expires_after(options_.push_close_grace);  // cancels a stall watch
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->dead_) return;
      spdlog::info("push channel closed after its grace time remote={}", self->remote_);
      self->closed();
    });
  }

  /// The channel is gone (either side): tells the handler once and lets go of it.
  void closed() {
    notify_closed();
    abort();
  }

  /// Tells the handler once that the channel ended; no more writes start.
  void notify_closed() {
    if (dead_) return;
    dead_ = true;
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    timer_.cancel();
    auto on_close = std::move(callbacks_.on_close);
    callbacks_ = {};
    // Queued texts stay until the channel is destroyed: a write in flight still uses
    // its buffer; no more are started.
    if (on_close) on_close();
  }

  net::any_io_executor ex_;
  const server_options& options_;
  std::string remote_;
  push_callbacks callbacks_;
  net::steady_timer timer_;  // stall watch, then the grace time of a closing channel

  mutable std::mutex mu_;  // guards the fields up to `writing_`
  std::deque<item> queue_;
  std::size_t bytes_ = 0;
  bool closing_ = false;
  bool active_ = false;   // a pump is posted or a write is in flight
  bool writing_ = false;  // the front's write has started

  // The strand's own.
  bool dead_ = false, close_after_drain_ = false, finishing_ = false, watching_ = false, grace_ = false;
  std::uint64_t written_ = 0, mark_written_ = 0, mark_acked_ = 0;
  std::uint16_t close_code_ = 1000;
  std::string close_reason_;
};

/// An accepted WebSocket (RFC 6455): text messages both ways; Beast answers pings and
/// pings an idle peer (`websocket_idle`), closing one that stays silent.
class ws_channel final : public channel_base {
 public:
  ws_channel(beast::tcp_stream stream, const server_options& options, std::string remote)
      : channel_base(stream.get_executor(), options, std::move(remote)), ws_(std::move(stream)) {}

  void start(bhttp::request<bhttp::string_body> req, open_fn open) {
    beast::get_lowest_layer(ws_).expires_never();  // the websocket's own timeouts take over
    limit_send_buffer();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = options_.websocket_idle;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(bhttp::field::server, "atriumd"); }));
    ws_.read_message_max(options_.max_body_bytes);
    auto self = std::static_pointer_cast<ws_channel>(shared_from_this());
    ws_.async_accept(req, [self, open = std::move(open)](beast::error_code ec) {
      if (ec) return self->closed();
      self->callbacks_ = open(self);
      self->read();
    });
  }

 private:
  void read() {
    auto self = std::static_pointer_cast<ws_channel>(shared_from_this());
    ws_.async_read(buffer_, [self](beast::error_code ec, std::size_t) {
      if (ec) return self->closed();
      auto text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      if (self->buffer_.capacity() > 16384) self->buffer_.shrink_to_fit();  // idle connections stay small
      if (self->callbacks_.on_message && !self->dead_) self->callbacks_.on_message(std::move(text));
      if (!self->dead_) self->read();
    });
  }

  void write_one(std::string& text, std::function<void(beast::error_code)> done) override {
    ws_.text(true);
    ws_.async_write(net::buffer(text), [done = std::move(done)](beast::error_code ec, std::size_t) { done(ec); });
  }

  void finish() override {
    // The closing handshake waits for the peer's close frame for the grace time at most.
    websocket::stream_base::timeout t{};
    t.handshake_timeout = options_.push_close_grace;
    t.idle_timeout = options_.websocket_idle;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    auto self = std::static_pointer_cast<ws_channel>(shared_from_this());
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
                    [self](beast::error_code ec) {
                      // The handshake's timeout and `arm_grace` both end a peer that does not
                      // answer after the grace time; whichever comes first says so.
                      if (ec == beast::error::timeout) {
                        spdlog::info("push channel closed after its grace time remote={}", self->remote_);
                      }
                      self->closed();
                    });
  }

  void abort() override {
    // A graceful shutdown: what is in the kernel's send buffer (e.g. a cut's final
    // message and close frame) still goes out before the FIN.
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }

  tcp::socket& socket() override { return beast::get_lowest_layer(ws_).socket(); }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

/// A streamed response body (chunked transfer coding, RFC 9112 §7.1), e.g. Server-Sent
/// Events. Idle for `push_heartbeat`, it writes a `:` comment line. It ends when the
/// client closes, or after its last chunk: the server's side is shut down and the
/// client has the grace time to take the rest and close.
class stream_channel final : public channel_base {
 public:
  stream_channel(beast::tcp_stream stream, const server_options& options, std::string remote)
      : channel_base(stream.get_executor(), options, std::move(remote)),
        stream_(std::move(stream)),
        heartbeat_(stream_.get_executor()) {}

  void start(const http_response& resp, open_fn open) {
    header_ = "HTTP/1.1 " + std::to_string(resp.status) + " " +
              std::string(bhttp::obsolete_reason(bhttp::int_to_status(resp.status))) +
              "\r\nServer: atriumd\r\nContent-Type: " + resp.content_type +
              "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
    for (const auto& [k, v] : resp.headers) header_ += k + ": " + v + "\r\n";
    header_ += "\r\n";
    limit_send_buffer();
    stream_.expires_after(options_.idle_timeout);
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    net::async_write(stream_, net::buffer(header_), [self, open = std::move(open)](beast::error_code ec, std::size_t) {
      std::string().swap(self->header_);
      if (ec) return self->closed();
      self->stream_.expires_never();  // writes are watched for stalls instead
      self->callbacks_ = open(self);
      self->watch_peer();
      self->beat();
    });
  }

 private:
  /// Reads (and discards) until the client goes away.
  void watch_peer() {
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    stream_.async_read_some(net::buffer(drain_), [self](beast::error_code ec, std::size_t) {
      if (ec) return self->closed();
      self->watch_peer();
    });
  }

  void beat() {
    heartbeat_.expires_after(options_.push_heartbeat);
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    heartbeat_.async_wait([self](beast::error_code ec) {
      if (ec || self->dead_ || self->finishing_) return;
      bool idle = false;
      {
        std::lock_guard lock(self->mu_);
        idle = self->queue_.empty() && !self->writing_;
      }
      if (idle) (void)self->send(":\n\n", 0);
      self->beat();
    });
  }

  void write_one(std::string& text, std::function<void(beast::error_code)> done) override {
    char size[20];
    const auto n = std::snprintf(size, sizeof size, "%zx\r\n", text.size());
    text.insert(0, size, static_cast<std::size_t>(n));
    text += "\r\n";
    net::async_write(stream_, net::buffer(text),
                     [done = std::move(done)](beast::error_code ec, std::size_t) { done(ec); });
  }

  void finish() override {
    static const std::string last = "0\r\n\r\n";
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    net::async_write(stream_, net::buffer(last), [self](beast::error_code ec, std::size_t) {
      if (ec) return self->closed();
      // Done on our side: the handler lets go now; the FIN follows the queued bytes,
      // and the client's close (seen by watch_peer) or the grace time ends the socket.
      self->notify_closed();
      beast::error_code ignored;
      self->socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->heartbeat_.expires_after(self->options_.push_close_grace);
      self->heartbeat_.async_wait([self](beast::error_code e) {
        if (e) return;
        spdlog::info("push channel closed after its grace time remote={}", self->remote_);
        self->abort();
      });
    });
  }

  void abort() override {
    heartbeat_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  tcp::socket& socket() override { return stream_.socket(); }

  beast::tcp_stream stream_;
  net::steady_timer heartbeat_;  // idle heartbeats, then the grace time after the last chunk
  std::string header_;
  std::array<char, 256> drain_{};
};

}  // namespace atrium::http_adapter::push_detail
