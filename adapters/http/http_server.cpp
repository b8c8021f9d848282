#include "adapters/http/http_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <thread>

namespace atrium::http_adapter {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

/// Fields that hold a single value (RFC 9110): a request that repeats one is refused.
bool singleton_header(std::string_view lowercase_name) {
  static constexpr std::array<std::string_view, 11> names{
      "authorization", "content-type", "host",       "idempotency-key", "if-match",      "if-none-match",
      "last-event-id", "x-request-id", "user-agent", "origin",          "content-length"};
  return std::find(names.begin(), names.end(), lowercase_name) != names.end();
}

std::string error_body(std::string_view code, std::string_view message) {
  return R"({"error":{"code":")" + std::string(code) + R"(","message":")" + std::string(message) +
         R"(","details":{}}})";
}

/// The bounded send queue of a push channel. Counters are atomic so that `send` can
/// refuse at once from any thread; the queue itself lives on the strand.
class channel_base : public push_channel, public std::enable_shared_from_this<channel_base> {
 public:
  channel_base(net::any_io_executor ex, const server_options& options, std::string remote)
      : ex_(std::move(ex)), options_(options), remote_(std::move(remote)) {}

  bool send(std::string text) override {
    if (closing_.load()) return false;
    const auto size = text.size();
    const auto count = count_.fetch_add(1) + 1;
    const auto bytes = bytes_.fetch_add(size) + size;
    if (count > options_.push_queue_messages || bytes > options_.push_queue_bytes) {
      count_.fetch_sub(1);
      bytes_.fetch_sub(size);
      return false;
    }
    net::post(ex_, [self = shared_from_this(), text = std::move(text)]() mutable {
      self->queue_.push_back(std::move(text));
      self->pump();
    });
    return true;
  }

  void close(std::uint16_t code, std::string reason, std::string final_message) override {
    if (closing_.exchange(true)) return;
    net::post(ex_, [self = shared_from_this(), code, reason = std::move(reason),
                    final_message = std::move(final_message)]() mutable {
      if (!final_message.empty()) {
        self->count_.fetch_add(1);
        self->bytes_.fetch_add(final_message.size());
        self->queue_.push_back(std::move(final_message));
      }
      self->close_code_ = code;
      self->close_reason_ = std::move(reason);
      self->close_after_drain_ = true;
      self->pump();
    });
  }

  const std::string& remote() const override { return remote_; }

  bool closing() const override { return closing_.load(); }

  bool congested() const override {
    return count_.load() > options_.push_queue_messages / 2 || bytes_.load() > options_.push_queue_bytes / 2;
  }

 protected:
  /// Writes `text` (the queue's front; may be modified in place, e.g. framed) and calls
  /// `done` on the strand.
  virtual void write_one(std::string& text, std::function<void(beast::error_code)> done) = 0;
  /// Ends the channel gracefully after the queue drained; calls `closed()` when done.
  virtual void finish() = 0;
  /// Closes the socket at once.
  virtual void abort() = 0;

  void pump() {
    if (writing_ || dead_) return;
    if (queue_.empty()) {
      if (close_after_drain_ && !finishing_) {
        finishing_ = true;
        finish();
      }
      return;
    }
    writing_ = true;
    write_one(queue_.front(), [self = shared_from_this()](beast::error_code ec) {
      self->writing_ = false;
      if (self->queue_.empty()) return;
      self->count_.fetch_sub(1);
      self->bytes_.fetch_sub(self->queue_.front().size());
      self->queue_.pop_front();
      if (ec) return self->closed();
      self->pump();
    });
  }

  /// The channel is gone (either side): tells the handler once and lets go of it.
  void closed() {
    if (dead_) return;
    dead_ = true;
    closing_ = true;
    auto on_close = std::move(callbacks_.on_close);
    callbacks_ = {};
    // Queued texts stay until the channel is destroyed: a write in flight still uses
    // its buffer; no more are started.
    if (on_close) on_close();
    abort();
  }

  net::any_io_executor ex_;
  const server_options& options_;
  std::string remote_;
  push_callbacks callbacks_;
  std::deque<std::string> queue_;
  std::atomic<std::size_t> count_{0}, bytes_{0};
  std::atomic<bool> closing_{false};
  bool writing_ = false, dead_ = false, close_after_drain_ = false, finishing_ = false;
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
    auto self = std::static_pointer_cast<ws_channel>(shared_from_this());
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
                    [self](beast::error_code) { self->closed(); });
  }

  void abort() override {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

/// A streamed response body (chunked transfer coding, RFC 9112 §7.1), e.g. Server-Sent
/// Events. Idle for `push_heartbeat`, it writes a `:` comment line; a write stuck for
/// `idle_timeout` or the client closing ends it.
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
    stream_.expires_after(options_.idle_timeout);
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    net::async_write(stream_, net::buffer(header_), [self, open = std::move(open)](beast::error_code ec, std::size_t) {
      std::string().swap(self->header_);
      if (ec) return self->closed();
      self->stream_.expires_never();
      self->callbacks_ = open(self);
      self->watch();
      self->beat();
    });
  }

 private:
  /// Reads (and discards) until the client goes away.
  void watch() {
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    stream_.async_read_some(net::buffer(drain_), [self](beast::error_code ec, std::size_t) {
      if (ec) return self->closed();
      self->watch();
    });
  }

  void beat() {
    heartbeat_.expires_after(options_.push_heartbeat);
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    heartbeat_.async_wait([self](beast::error_code ec) {
      if (ec || self->dead_ || self->finishing_) return;
      if (self->queue_.empty() && !self->writing_) (void)self->send(":\n\n");
      self->beat();
    });
  }

  void write_one(std::string& text, std::function<void(beast::error_code)> done) override {
    char size[20];
    const auto n = std::snprintf(size, sizeof size, "%zx\r\n", text.size());
    text.insert(0, size, static_cast<std::size_t>(n));
    text += "\r\n";
    // Accounting uses the framed size when the write completes: add the framing now.
    bytes_.fetch_add(static_cast<std::size_t>(n) + 2);
    stream_.expires_after(options_.idle_timeout);
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    net::async_write(stream_, net::buffer(text), [self, done = std::move(done)](beast::error_code ec, std::size_t) {
      self->stream_.expires_never();
      done(ec);
    });
  }

  void finish() override {
    static const std::string last = "0\r\n\r\n";
    auto self = std::static_pointer_cast<stream_channel>(shared_from_this());
    net::async_write(stream_, net::buffer(last), [self](beast::error_code, std::size_t) { self->closed(); });
  }

  void abort() override {
    heartbeat_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  net::steady_timer heartbeat_;
  std::string header_;
  std::array<char, 256> drain_{};
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, const handler_fn& handler, const server_options& options)
      : stream_(std::move(socket)), handler_(handler), options_(options) {}

  void run() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&session::read, shared_from_this())); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return close();
    }
    if (ec == bhttp::error::body_limit) {
      return write(http_response{413, error_body("payload_too_large", "request body is too large")}, false);
    }
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
      // The header, a chunk header with its extensions, or the trailer outgrew the read
      // buffer (`k_max_unparsed_bytes`).
      return write(http_response{431, error_body("invalid_argument", "request header fields are too large")}, false);
    }
    if (ec) return write(http_response{400, error_body("invalid_argument", "malformed HTTP request")}, false);
    try {
      dispatch_request();
    } catch (const std::exception& ex) {
      // Nothing below should throw; if it does, this connection ends, never the server.
      spdlog::error("request setup failed: {}", ex.what());
      close();
    }
  }

  /// Turns the parsed request into an `http_request` and calls the handler.
  void dispatch_request() {
    auto req = parser_->release();
    http_request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto [it, fresh] = r.headers.try_emplace(name, f.value());
      if (fresh) continue;
      // A repeated field is one list (RFC 9110 §5.3), except for fields that hold one
      // value: two of those are ambiguous (which did a proxy check?) and refused.
      if (singleton_header(name)) {
        return write(http_response{400, error_body("invalid_argument", "header " + name + " is repeated")}, false);
      }
      it->second += ", ";
      it->second += f.value();
    }
    r.websocket = websocket::is_upgrade(req);
    if (r.websocket) upgrade_ = req;  // the body is empty on an upgrade request
    r.body = std::move(req.body());
    beast::error_code ep_ec;
    const auto ep = stream_.socket().remote_endpoint(ep_ec);
    if (!ep_ec) r.remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    const bool keep_alive = req.keep_alive();

    auto self = shared_from_this();
    auto responded = std::make_shared<std::atomic<bool>>(false);
    respond_fn respond = [self, keep_alive, responded](http_response resp) {
      if (responded->exchange(true)) return;  // exactly once, whatever the handler does
      net::post(self->stream_.get_executor(),
                [self, keep_alive, resp = std::move(resp)]() mutable { self->write(std::move(resp), keep_alive); });
    };
    try {
      handler_(std::move(r), respond);
    } catch (const std::exception& ex) {
      spdlog::error("http handler threw: {}", ex.what());
      respond(http_response{500, error_body("internal", "internal error")});
    }
  }

  void write(http_response resp, bool keep_alive) {
    try {
      write_response(std::move(resp), keep_alive);
    } catch (const std::exception& ex) {
      spdlog::error("response not written: {}", ex.what());
      close();
    }
  }

  void write_response(http_response resp, bool keep_alive) {
    if (resp.open) return open(std::move(resp));
    upgrade_.reset();
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->result(resp.status);
    res->version(11);
    res->set(bhttp::field::server, "atriumd");
    res->set(bhttp::field::content_type, resp.content_type);
    for (auto& [k, v] : resp.headers) res->set(k, v);
    res->body() = std::move(resp.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      if (!res->keep_alive()) return self->linger();
      self->read();
    });
  }

  /// Hands the connection to a push channel; this session ends here.
  void open(http_response resp) {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    std::string remote = ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
    if (resp.status == 101) {
      if (!upgrade_) {
        return write(http_response{400, error_body("invalid_argument", "expected a WebSocket upgrade")}, false);
      }
      auto ch = std::make_shared<ws_channel>(std::move(stream_), options_, std::move(remote));
      ch->start(std::move(*upgrade_), std::move(resp.open));
      return;
    }
    auto ch = std::make_shared<stream_channel>(std::move(stream_), options_, std::move(remote));
    ch->start(resp, std::move(resp.open));
  }

  /// Graceful close after a final response: stop sending, then read and discard what the
  /// client is still sending (e.g. the rest of a body over the limit) until it closes or
  /// 5 s pass, so that it can read our answer instead of meeting a reset.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(5));
    drain_ = std::make_shared<std::array<char, 16384>>();
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(*drain_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  /// The most bytes read but not yet parsed: bounds the header (as `header_limit`
  /// does), a chunk header with its extensions and the trailer, which Beast's parser
  /// does not bound by itself (a trailer field over 64 KiB made Beast throw).
  static constexpr std::size_t k_max_unparsed_bytes = 64 * 1024;

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{k_max_unparsed_bytes};
  std::shared_ptr<std::array<char, 16384>> drain_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::request<bhttp::string_body>> upgrade_;
  const handler_fn& handler_;
  const server_options& options_;
};

}  // namespace

struct http_server::impl {
  server_options options;
  handler_fn handler;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};

  /// Accept errors such as EMFILE (out of file descriptors) or ENOBUFS repeat at once
  /// while their cause lasts: the loop waits before it tries again, doubling from 10 ms
  /// up to 1 s, and logs the first error of a run and then at most one line a minute.
  net::steady_timer backoff{ioc};
  std::chrono::milliseconds delay{0};
  clock_type::time_point last_warning{};
  std::uint64_t failures = 0;

  void accept() {
    // Captures `this`, not a shared_ptr: the io_context (a member) owns this handler, and
    // a shared_ptr here would keep the server alive forever after stop().
    acceptor.async_accept(net::make_strand(ioc), [self = this](beast::error_code ec, tcp::socket s) {
      if (self->stopped) return;
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        if (self->failures > 0) spdlog::info("accept recovered after failures={}", self->failures);
        self->failures = 0;
        self->delay = std::chrono::milliseconds(0);
        try {
          std::make_shared<session>(std::move(s), self->handler, self->options)->run();
        } catch (const std::exception& ex) {
          spdlog::error("session setup failed: {}", ex.what());
        }
        return self->accept();
      }
      ++self->failures;
      const auto now = clock_type::now();
      if (self->failures == 1 || now - self->last_warning >= std::chrono::minutes(1)) {
        self->last_warning = now;
        spdlog::warn("accept failed error={} failures={} (retrying with back-off)", ec.message(), self->failures);
      }
      self->delay = std::clamp(self->delay * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
      self->backoff.expires_after(self->delay);
      self->backoff.async_wait([self](beast::error_code wait_ec) {
        if (!wait_ec && !self->stopped) self->accept();
      });
    });
  }

  /// Runs the I/O loop on one thread. An exception escaping a handler (none should:
  /// this is the last line of defence) is logged and the loop goes on, so that one
  /// request can never take the process down.
  void run_io() {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& ex) {
        spdlog::error("I/O handler threw, continuing: {}", ex.what());
      } catch (...) {
        spdlog::error("I/O handler threw a non-standard exception, continuing");
      }
    }
  }
};

http_server::http_server(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

http_server::~http_server() { stop(); }

result<std::unique_ptr<http_server>> http_server::start(server_options options, handler_fn handler) {
  auto p = std::make_shared<impl>();
  p->options = std::move(options);
  p->handler = std::move(handler);
  beast::error_code ec;
  const auto address = net::ip::make_address(p->options.host, ec);
  if (ec) return fail(errc::invalid_argument, "bad listen host: " + p->options.host);
  const tcp::endpoint ep{address, p->options.port};
  p->acceptor.open(ep.protocol(), ec);
  if (!ec) p->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) p->acceptor.bind(ep, ec);
  if (!ec) p->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(errc::unavailable,
                "cannot listen on " + p->options.host + ":" + std::to_string(p->options.port) + ": " + ec.message());
  }
  p->accept();
  for (std::size_t i = 0; i < std::max<std::size_t>(1, p->options.threads); ++i) {
    p->threads.emplace_back([raw = p.get()] { raw->run_io(); });
  }
  return std::unique_ptr<http_server>(new http_server(std::move(p)));
}

std::uint16_t http_server::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void http_server::stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->ioc.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  // No I/O thread runs any more: the acceptor may be closed from here. Pending
  // handlers (and the sessions they hold) are destroyed with the io_context.
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace atrium::http_adapter
