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
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>

#include "adapters/http/http_server.hpp"

namespace atrium::http_adapter::push_detail {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

/// A connection's byte stream: plain TCP, or TLS over TCP (OpenSSL through Beast's
/// `ssl_stream`, which coalesces a gather write into few TLS records). It starts plain;
/// `start_tls` wraps it once the server saw a TLS ClientHello. Reads and writes go to
/// whichever it is, so the session, the WebSocket and the streamed body are written once
/// for both. It is its own lowest layer (`beast::get_lowest_layer` stops here): the TCP
/// stream's timeouts and socket are reached through `expires_after`, `socket()`.
class dual_stream {
 public:
  using executor_type = beast::tcp_stream::executor_type;
  using tls_stream = beast::ssl_stream<beast::tcp_stream>;

  explicit dual_stream(beast::tcp_stream&& stream) : plain_(std::move(stream)) {}
  dual_stream(dual_stream&&) = default;
  dual_stream& operator=(dual_stream&&) = default;

  /// Wraps the stream in TLS with `context` (kept alive as long as the stream: a
  /// certificate reload replaces the server's context, not this connection's).
  void start_tls(std::shared_ptr<ssl::context> context) {
    context_ = std::move(context);
    tls_.emplace(std::move(*plain_), *context_);
    plain_.reset();
  }
  [[nodiscard]] bool is_tls() const noexcept { return tls_.has_value(); }
  /// The TLS stream (only after `start_tls`).
  tls_stream& tls() noexcept { return *tls_; }

  executor_type get_executor() noexcept { return tcp().get_executor(); }
  beast::tcp_stream& tcp() noexcept { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  tcp::socket& socket() noexcept { return tcp().socket(); }
  template <class Duration>
  void expires_after(Duration d) {
    tcp().expires_after(d);
  }
  void expires_never() { tcp().expires_never(); }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return net::async_initiate<ReadHandler, void(beast::error_code, std::size_t)>(
        [this](auto h, const MutableBufferSequence& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(h));
          } else {
            plain_->async_read_some(b, std::move(h));
          }
        },
        handler, buffers);
  }

  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return net::async_initiate<WriteHandler, void(beast::error_code, std::size_t)>(
        [this](auto h, const ConstBufferSequence& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(h));
          } else {
            plain_->async_write_some(b, std::move(h));
          }
        },
        handler, buffers);
  }

  /// Beast's socket closing (a WebSocket's timeout): the TCP socket's.
  friend void beast_close_socket(dual_stream& s) { beast::close_socket(s.tcp()); }

  /// Beast's WebSocket teardown: TLS's (close_notify, then TCP) or TCP's.
  friend void teardown(beast::role_type role, dual_stream& s, beast::error_code& ec) {
    using beast::websocket::teardown;
    if (s.tls_) {
      teardown(role, *s.tls_, ec);
    } else {
      teardown(role, *s.plain_, ec);
    }
  }
  template <class TeardownHandler>
  friend void async_teardown(beast::role_type role, dual_stream& s, TeardownHandler&& handler) {
    using beast::websocket::async_teardown;
    if (s.tls_) {
      async_teardown(role, *s.tls_, std::forward<TeardownHandler>(handler));
    } else {
      async_teardown(role, *s.plain_, std::forward<TeardownHandler>(handler));
    }
  }

 private:
  std::optional<beast::tcp_stream> plain_;
  std::optional<tls_stream> tls_;
  std::shared_ptr<ssl::context> context_;
};

/// The current time as an HTTP date (IMF-fixdate, RFC 9110 §5.6.7), e.g.
/// "Sun, 06 Nov 1994 08:49:37 GMT", for the `Date` every answer carries (§6.6.1);
/// formatted at most once a second per I/O thread.
inline const std::string& http_date() {
  thread_local std::time_t cached = -1;
  thread_local std::string text;
  const std::time_t now = std::time(nullptr);
  if (now != cached) {
    cached = now;
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char buf[64];
    const auto n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);  // C locale: English names
    text.assign(buf, n);
  }
  return text;
}

/// Every answer over TLS tells browsers to use HTTPS only for this host for a year
/// (RFC 6797): the port serves nothing else.
inline constexpr const char* k_hsts = "max-age=31536000";

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

  using push_channel::send;

  bool send(push_message message, std::uint64_t tag) override {
    {
      std::lock_guard lock(mu_);
      const auto size = message.size();
      if (closing_ || queue_.size() >= options_.push_queue_messages || bytes_ + size > options_.push_queue_bytes) {
        return false;
      }
      bytes_ += size;
      queue_.push_back(item{std::move(message), tag, size});
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
      const auto first = queue_.begin() + static_cast<std::ptrdiff_t>(writing_);
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
    push_message message;
    std::uint64_t tag = 0;
    std::size_t size = 0;  // as counted in bytes_
  };

  /// At most this many queued messages, and about this many bytes, go in one write.
  /// Small enough that a cut's final message still fits behind the rest of a write in
  /// flight in the room `reserve_room` makes (`push_final_reserve`, 64 KiB by default).
  static constexpr std::size_t k_batch_messages = 64;
  static constexpr std::size_t k_batch_bytes = 16 << 10;

  /// Writes `batch` (the queue's first messages, in order; they stay queued, and so
  /// alive, until `done`) and calls `done` on the strand once all of it is written.
  virtual void write_batch(const std::vector<const push_message*>& batch,
                           std::function<void(beast::error_code)> done) = 0;
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
        queue_.push_back(item{{{std::make_shared<const std::string>(std::move(final_message))}}, 0, size});
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
    batch_.clear();
    bool finish_now = false;
    {
      std::lock_guard lock(mu_);
      if (dead_) {
        active_ = false;
        return;
      }
      if (!queue_.empty()) {
        // Every message queued meanwhile goes in this write (bounded): one system call
        // for many messages when a connection falls behind. References into a deque
        // stay valid across push_back.
        std::size_t bytes = 0;
        for (auto it = queue_.begin(); it != queue_.end() && batch_.size() < k_batch_messages &&
                                       (batch_.empty() || bytes + it->size <= k_batch_bytes);
             ++it) {
          bytes += it->size;
          batch_.push_back(&it->message);
        }
        writing_ = batch_.size();
      } else {
        active_ = false;
        finish_now = close_after_drain_ && !finishing_;
      }
    }
    if (finish_now) {
      finishing_ = true;
      return finish();
    }
    if (batch_.empty()) return;
    watch();
    write_batch(batch_, [self = shared_from_this()](beast::error_code ec) { self->wrote(ec); });
  }

  void wrote(beast::error_code ec) {
    std::size_t n = 0;
    {
      std::lock_guard lock(mu_);
      n = std::min(writing_, queue_.size());
      for (std::size_t i = 0; i < n; ++i) {
        bytes_ -= queue_.front().size;
        queue_.pop_front();
      }
      writing_ = 0;
      if (ec) active_ = false;
    }
    written_ += n;
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
        writing = self->writing_ > 0;
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
  bool active_ = false;      // a pump is posted or a write is in flight
  std::size_t writing_ = 0;  // the first `writing_` queued messages are being written

  // The strand's own.
  std::vector<const push_message*> batch_;  // the write in flight
  bool dead_ = false, close_after_drain_ = false, finishing_ = false, watching_ = false, grace_ = false;
  std::uint64_t written_ = 0, mark_written_ = 0, mark_acked_ = 0;
  std::uint16_t close_code_ = 1000;
  std::string close_reason_;
};

/// The WebSocket's next layer: every byte bound for the socket goes through one ordered
/// queue, written by one gather write at a time (`net::async_write` of up to 64 buffers
/// per system call). Beast writes only its control frames through it (ping, pong, close:
/// each a whole frame in one `async_write_some`, copied and completed at once); the
/// channel appends its data messages as pre-framed unmasked server frames (RFC 6455
/// §5.2, FIN + text, no extension: permessage-deflate is compiled out of `ws_stream`)
/// that reference the queued messages' shared parts. A control frame may sit between two
/// whole data messages (§5.4 allows that); nothing is appended after Beast's close frame.
class gather_stream {
 public:
  using next_layer_type = dual_stream;
  using executor_type = next_layer_type::executor_type;

  explicit gather_stream(dual_stream&& stream) : stream_(std::move(stream)) { state_->owner = this; }
  ~gather_stream() { state_->owner = nullptr; }
  gather_stream(const gather_stream&) = delete;
  gather_stream& operator=(const gather_stream&) = delete;

  executor_type get_executor() noexcept { return stream_.get_executor(); }
  next_layer_type& next_layer() noexcept { return stream_; }
  const next_layer_type& next_layer() const noexcept { return stream_; }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return stream_.async_read_some(buffers, std::forward<ReadHandler>(handler));
  }

  /// Beast's frames: copied into the queue; completes (posted) at once with all of it
  /// taken, or with the error a previous write failed with.
  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return net::async_initiate<WriteHandler, void(beast::error_code, std::size_t)>(
        [this](auto h, const ConstBufferSequence& b) {
          auto n = net::buffer_size(b);
          beast::error_code ec = state_->error;
          if (!ec && n > 0) {
            auto copy = std::make_shared<std::string>(n, '\0');
            net::buffer_copy(net::buffer(copy->data(), n), b);
            // Beast's close frame (FIN + close; control frames are never fragmented): the last.
            if (state_->framing && static_cast<unsigned char>((*copy)[0]) == 0x88) state_->closed = true;
            append(copy, net::buffer(*copy));
            flush();
          }
          if (ec) n = 0;
          net::post(stream_.get_executor(), beast::bind_front_handler(std::move(h), ec, n));
        },
        handler, buffers);
  }

  /// Call once the opening handshake (an HTTP answer) is written: from then on Beast
  /// writes only frames, and its close frame is recognised.
  void handshake_done() { state_->framing = true; }

  /// Appends `batch` as one unmasked text frame per message and starts writing;
  /// `done(ec)` runs on the strand once all of it is written (or the socket failed).
  void write_messages(const std::vector<const push_message*>& batch, std::function<void(beast::error_code)> done) {
    auto& st = *state_;
    if (st.error || st.closed) {
      net::post(stream_.get_executor(),
                [done = std::move(done),
                 ec = st.error ? st.error : net::error::make_error_code(net::error::shut_down)] { done(ec); });
      return;
    }
    // The frame headers of the batch, in one buffer (10 bytes at most each).
    auto heads = std::make_shared<std::string>();
    heads->reserve(batch.size() * 10);
    std::vector<std::pair<std::size_t, std::size_t>> at;  // offset, length in `heads`
    at.reserve(batch.size());
    for (const auto* m : batch) {
      const auto start = heads->size();
      const std::uint64_t n = m->size();
      heads->push_back(static_cast<char>(0x81));  // FIN, text
      if (n < 126) {
        heads->push_back(static_cast<char>(n));
      } else if (n <= 0xffff) {
        heads->push_back(static_cast<char>(126));
        for (int shift = 8; shift >= 0; shift -= 8) heads->push_back(static_cast<char>((n >> shift) & 0xff));
      } else {
        heads->push_back(static_cast<char>(127));
        for (int shift = 56; shift >= 0; shift -= 8) heads->push_back(static_cast<char>((n >> shift) & 0xff));
      }
      at.emplace_back(start, heads->size() - start);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      append(heads, net::buffer(heads->data() + at[i].first, at[i].second));
      for (const auto& part : batch[i]->parts) {
        if (part && !part->empty()) append(part, net::buffer(*part));
      }
    }
    st.waiters.emplace_back(st.appended, std::move(done));
    flush();
  }

 private:
  struct segment {
    std::shared_ptr<const std::string> keep;  // owns the bytes `bytes` points into
    net::const_buffer bytes;
  };
  /// Shared with the write in flight, which may outlive the stream (a closed socket
  /// still completes its operation).
  struct state {
    std::vector<segment> pending, flying;
    std::vector<net::const_buffer> buffers;  // of `flying`
    std::uint64_t appended = 0, written = 0;
    std::vector<std::pair<std::uint64_t, std::function<void(beast::error_code)>>> waiters;  // (bytes, done)
    bool framing = false;  // the handshake is done: Beast writes frames now
    bool busy = false, closed = false;
    beast::error_code error;
    gather_stream* owner = nullptr;  // null once the stream is gone
  };

  void append(std::shared_ptr<const std::string> keep, net::const_buffer bytes) {
    state_->appended += bytes.size();
    state_->pending.push_back(segment{std::move(keep), bytes});
  }

  void flush() {
    auto st = state_;
    if (st->busy || st->pending.empty() || st->error) return;
    st->busy = true;
    st->flying.swap(st->pending);
    st->buffers.clear();
    for (const auto& s : st->flying) st->buffers.push_back(s.bytes);
    net::async_write(stream_, st->buffers, [st](beast::error_code ec, std::size_t n) {
      st->busy = false;
      st->flying.clear();
      st->written += n;
      if (ec) st->error = ec;
      auto waiters = std::move(st->waiters);
      st->waiters.clear();
      for (auto& w : waiters) {
        if (ec || w.first <= st->written) {
          w.second(ec);
        } else {
          st->waiters.push_back(std::move(w));
        }
      }
      if (!ec && !st->pending.empty() && st->owner) st->owner->flush();
    });
  }

  dual_stream stream_;
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// Beast's websocket teardown for `gather_stream`: that of the TCP stream under it.
inline void teardown(beast::role_type role, gather_stream& s, beast::error_code& ec) {
  using beast::websocket::teardown;
  teardown(role, s.next_layer(), ec);
}
template <class TeardownHandler>
void async_teardown(beast::role_type role, gather_stream& s, TeardownHandler&& handler) {
  using beast::websocket::async_teardown;
  async_teardown(role, s.next_layer(), std::forward<TeardownHandler>(handler));
}

/// The server's WebSocket stream: permessage-deflate compiled out (frames are written
/// pre-framed by `gather_stream::write_messages`).
using ws_stream = websocket::stream<gather_stream, false>;

/// An accepted WebSocket (RFC 6455): text messages both ways; Beast answers pings and
/// pings an idle peer (`websocket_idle`), closing one that stays silent.
class ws_channel final : public channel_base {
 public:
  ws_channel(dual_stream stream, const server_options& options, std::string remote)
      : channel_base(stream.get_executor(), options, std::move(remote)), ws_(std::move(stream)) {}

  void start(bhttp::request<bhttp::string_body> req, open_fn open) {
    beast::get_lowest_layer(ws_).expires_never();  // the websocket's own timeouts take over
    limit_send_buffer();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = options_.websocket_idle;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(bhttp::field::server, "atriumd");
      res.set(bhttp::field::date, http_date());
    }));
    ws_.read_message_max(options_.max_body_bytes);
    auto self = std::static_pointer_cast<ws_channel>(shared_from_this());
    ws_.async_accept(req, [self, open = std::move(open)](beast::error_code ec) {
      if (ec) return self->closed();
      self->ws_.next_layer().handshake_done();
      self->callbacks_ = open(self);
      self->read();
    });
  }

 private:
  void read() {
    auto self = std::static_pointer_cast<ws_channel>(shared_from_this());
    ws_.async_read(buffer_, [self](beast::error_code ec, std::size_t) {
      if (ec == beast::error::timeout) {
        // Silent for `websocket_idle` (no pong either): e.g. a client that stopped reading
        // before a cut's grace time could end the connection.
        spdlog::info("push channel closed after its idle timeout remote={}", self->remote_);
      }
      if (ec) return self->closed();
      auto text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      if (self->buffer_.capacity() > 16384) self->buffer_.shrink_to_fit();  // idle connections stay small
      if (self->callbacks_.on_message && !self->dead_) self->callbacks_.on_message(std::move(text));
      if (!self->dead_) self->read();
    });
  }

  void write_batch(const std::vector<const push_message*>& batch,
                   std::function<void(beast::error_code)> done) override {
    ws_.next_layer().write_messages(batch, std::move(done));
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

  ws_stream ws_;
  beast::flat_buffer buffer_;
};

/// A streamed response body (chunked transfer coding, RFC 9112 §7.1), e.g. Server-Sent
/// Events. Idle for `push_heartbeat`, it writes a `:` comment line. It ends when the
/// client closes, or after its last chunk: the server's side is shut down and the
/// client has the grace time to take the rest and close.
class stream_channel final : public channel_base {
 public:
  stream_channel(dual_stream stream, const server_options& options, std::string remote)
      : channel_base(stream.get_executor(), options, std::move(remote)),
        stream_(std::move(stream)),
        heartbeat_(stream_.get_executor()) {}

  void start(const http_response& resp, open_fn open) {
    header_ = "HTTP/1.1 " + std::to_string(resp.status) + " " +
              std::string(bhttp::obsolete_reason(bhttp::int_to_status(resp.status))) +
              "\r\nServer: atriumd\r\nDate: " + http_date() + "\r\nContent-Type: " + resp.content_type +
              "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
    if (stream_.is_tls()) header_ += std::string("Strict-Transport-Security: ") + k_hsts + "\r\n";
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
        idle = self->queue_.empty() && self->writing_ == 0;
      }
      if (idle) (void)self->send(":\n\n", 0);
      self->beat();
    });
  }

  /// One chunk per message, all in one gather write: `size CRLF parts CRLF` each.
  void write_batch(const std::vector<const push_message*>& batch,
                   std::function<void(beast::error_code)> done) override {
    sizes_.clear();
    sizes_.reserve(batch.size() * 20);  // no reallocation below: the buffers point into it
    buffers_.clear();
    for (const auto* m : batch) {
      char size[20];
      const auto n = std::snprintf(size, sizeof size, "%zx\r\n", m->size());
      const auto start = sizes_.size();
      sizes_.append(size, static_cast<std::size_t>(n));
      buffers_.push_back(net::buffer(sizes_.data() + start, static_cast<std::size_t>(n)));
      for (const auto& part : m->parts) {
        if (part && !part->empty()) buffers_.push_back(net::buffer(*part));
      }
      buffers_.push_back(net::buffer("\r\n", 2));
    }
    net::async_write(stream_, buffers_, [done = std::move(done)](beast::error_code ec, std::size_t) { done(ec); });
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

  dual_stream stream_;
  net::steady_timer heartbeat_;  // idle heartbeats, then the grace time after the last chunk
  std::string header_;
  std::string sizes_;                       // the chunk-size lines of the write in flight
  std::vector<net::const_buffer> buffers_;  // the write in flight
  std::array<char, 256> drain_{};
};

}  // namespace atrium::http_adapter::push_detail
