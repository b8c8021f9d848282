#include "adapters/http/http_server.hpp"

#include "adapters/http/beast_request.hpp"
#include "adapters/http/browser_security.hpp"
#include "adapters/http/push_channels.hpp"

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

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <atomic>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

namespace atrium::http_adapter {
namespace {

// Beast namespace aliases, `error_body` and the channels: push_channels.hpp.
using namespace push_detail;  // NOLINT(google-build-using-namespace): one translation unit

/// An answer the server writes itself, before any route ran (a malformed or oversized
/// request): the error body with the security headers every answer carries.
http_response refusal(unsigned status, std::string body) {
  http_response r{status, std::move(body)};
  add_security_headers(r.headers);
  return r;
}

/// The peer of `socket` as "address:port", or "" when the socket cannot tell (closed).
std::string peer_of(const tcp::socket& socket) {
  beast::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
}

class session : public std::enable_shared_from_this<session> {
 public:
  /// `tls`: the server's TLS context when it serves HTTPS (null: plain HTTP).
  session(tcp::socket socket, const handler_fn& handler, const server_options& options,
          std::shared_ptr<ssl::context> tls)
      : stream_(beast::tcp_stream(std::move(socket))),
        remote_(peer_of(stream_.socket())),
        handler_(handler),
        options_(options),
        tls_(std::move(tls)) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(tls_ ? &session::detect : &session::read, shared_from_this()));
  }

 private:
  /// On a TLS port: reads the first bytes and tells a TLS ClientHello from anything else
  /// (Beast's `async_detect_ssl`, which looks at the record header and the handshake
  /// type). A ClientHello goes on to the handshake; a plain-HTTP request is read as one
  /// and refused with 400 (`plain_refused_`), not left to a TLS error or a hang.
  void detect() {
    stream_.expires_after(options_.tls_handshake_timeout);
    beast::async_detect_ssl(stream_.tcp(), buffer_, [self = shared_from_this()](beast::error_code ec, bool is_tls) {
      if (ec) return self->close();
      if (!is_tls) {
        self->plain_refused_ = true;
        return self->read();
      }
      self->stream_.start_tls(std::move(self->tls_));
      self->stream_.expires_after(self->options_.tls_handshake_timeout);
      self->stream_.tls().async_handshake(
          // `used = 0`: Boost 1.81's buffered async_handshake checks its handler against
          // void(error_code) though it calls it with (error_code, bytes used).
          ssl::stream_base::server, self->buffer_.data(), [self](beast::error_code hec, std::size_t used = 0) {
            if (hec) {
              spdlog::debug("tls handshake failed remote={} error={}", self->remote_, hec.message());
              return self->close();
            }
            self->buffer_.consume(used);
            self->read();
          });
    });
  }

  /// The status line and header fields every answer carries: Server, Date (RFC 9110
  /// §6.6.1), HSTS over TLS, the content type and the handler's own fields.
  template <class Body>
  void set_header(bhttp::response<Body>& res, const http_response& resp) const {
    res.result(resp.status);
    res.version(11);
    res.set(bhttp::field::server, "atriumd");
    res.set(bhttp::field::date, http_date());
    if (stream_.is_tls()) res.set(bhttp::field::strict_transport_security, k_hsts);
    if (!resp.content_type.empty()) res.set(bhttp::field::content_type, resp.content_type);
    for (const auto& [k, v] : resp.headers) res.set(k, v);
  }

  void read() {
    answered_ = false;
    head_ = false;  // set again by the next request, if it is a HEAD
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(k_header_limit_bytes);
    quick_ack();
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  /// ACKs what arrives at once instead of after Linux's delayed-ACK timer (≥ 40 ms).
  /// A browser sends a POST's headers and its body in two writes; with Nagle on the
  /// client's side the body waited for the ACK of the headers, which the delayed ACK held
  /// back: every fetch() POST took 40 ms more (docs/performance.md, "Console"). The
  /// kernel clears the flag by itself, so it is set again before every read.
  void quick_ack() {
    const int one = 1;
    (void)::setsockopt(stream_.socket().native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return close();
    }
    if (ec == bhttp::error::body_limit) {
      return write(refusal(413, error_body("payload_too_large", "request body is too large")), false);
    }
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
      // The header, a chunk header with its extensions, or the trailer outgrew the read
      // buffer (`k_max_unparsed_bytes`).
      return write(refusal(431, error_body("invalid_argument", "request header fields are too large")), false);
    }
    if (ec) return write(refusal(400, error_body("invalid_argument", "malformed HTTP request")), false);
    if (plain_refused_) {
      return write(refusal(400, error_body("invalid_argument",
                                           "this port serves HTTPS only: the request was sent in plain HTTP "
                                           "(use an https:// or wss:// URL)")),
                   false);
    }
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
    const bool keep_alive = req.keep_alive();
    head_ = req.method() == bhttp::verb::head;
    if (websocket::is_upgrade(req)) upgrade_ = req;  // its body is empty
    http_request r;
    if (auto refused = to_http_request(req, r)) {
      return write(refusal(400, error_body("invalid_argument", *refused)), false);
    }
    r.remote = remote_;

    auto self = shared_from_this();
    r.watch_peer = [weak = weak_from_this()]() -> std::shared_ptr<const std::atomic<bool>> {
      auto closed = std::make_shared<std::atomic<bool>>(false);
      if (auto s = weak.lock()) {
        net::dispatch(s->stream_.get_executor(), [s, closed] { s->watch(closed); });
      }
      return closed;
    };
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

  /// Waits for the socket to become readable while a request's answer is pending: no
  /// byte (end of stream) or an error means the peer closed the connection, and
  /// `closed` is set; bytes (a pipelined request) are left for the next read and the
  /// watch ends. Runs on the connection's executor.
  void watch(std::shared_ptr<std::atomic<bool>> closed) {
    if (answered_ || watching_ || !stream_.socket().is_open()) return;
    watching_ = true;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), closed](beast::error_code ec) {
      self->watching_ = false;
      if (ec == net::error::operation_aborted || self->answered_) return;
      if (ec) {
        closed->store(true);
        return;
      }
      char byte = 0;
      const auto n = ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;  // a pipelined request: the peer is alive
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->watch(closed);
      closed->store(true);
    });
  }

  void write(http_response resp, bool keep_alive) {
    answered_ = true;
    if (watching_) {
      beast::error_code ec;
      stream_.socket().cancel(ec);  // only the watch is pending while an answer waits
    }
    try {
      write_response(std::move(resp), keep_alive);
    } catch (const std::exception& ex) {
      spdlog::error("response not written: {}", ex.what());
      close();
    }
  }

  void write_response(http_response resp, bool keep_alive) {
    if (head_ && resp.status != 101 && (resp.open || resp.producer)) {
      // HEAD of a stream (SSE, a followed log, a streamed export): its header only; the
      // stream is never opened (RFC 9110 §9.3.2).
      resp.open = nullptr;
      resp.producer = nullptr;
      upgrade_.reset();
      return write_stream_head(std::move(resp), keep_alive);
    }
    if (resp.open) return open(std::move(resp));
    if (resp.producer) return write_streamed(std::move(resp), keep_alive);
    upgrade_.reset();
    if (head_) return write_head(std::move(resp), keep_alive, true);
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    set_header(*res, resp);
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

  /// Answers a HEAD request of a stream: the header the GET would send
  /// (`Transfer-Encoding: chunked`, so that a client knows the connection goes on) and
  /// nothing after it, not even the last chunk.
  void write_stream_head(http_response resp, bool keep_alive) {
    streamed_ = std::make_shared<bhttp::response<bhttp::empty_body>>();
    set_header(*streamed_, resp);
    streamed_->keep_alive(keep_alive);
    streamed_->chunked(true);
    serializer_ = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*streamed_);
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_write_header(stream_, *serializer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      const bool keep = self->streamed_ && self->streamed_->keep_alive();
      self->serializer_.reset();
      self->streamed_.reset();
      if (ec) return self->close();
      if (!keep) return self->linger();
      self->read();
    });
  }

  /// Answers a HEAD request: the header of `resp` with the Content-Length of its body,
  /// and no body (RFC 9110 §9.3.2).
  void write_head(http_response resp, bool keep_alive, bool sized) {
    auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
    set_header(*res, resp);
    if (sized && resp.status != 304 && resp.status != 204 && resp.status >= 200) {
      res->content_length(resp.body.size());
    }
    res->keep_alive(keep_alive);
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      if (!res->keep_alive()) return self->linger();
      self->read();
    });
  }

  /// Writes the header of a response whose body `resp.producer` makes, then its chunks
  /// one at a time (`pull`): the next is asked for only once the previous is written.
  void write_streamed(http_response resp, bool keep_alive) {
    upgrade_.reset();
    producer_ = std::move(resp.producer);
    streamed_ = std::make_shared<bhttp::response<bhttp::empty_body>>();
    auto& res = *streamed_;
    set_header(res, resp);
    res.keep_alive(keep_alive);
    res.chunked(true);
    serializer_ = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(res);
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_write_header(stream_, *serializer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->end_stream(false, "header not written: " + ec.message());
      self->pull();
    });
  }

  /// Asks the producer for the next chunk and writes it, or ends the body.
  void pull() {
    result<bool> more = false;
    try {
      do {
        more = producer_->next(chunk_);
      } while (more && *more && chunk_.empty());
    } catch (const std::exception& ex) {
      more = fail(errc::internal, ex.what());
    }
    if (!more) return end_stream(false, "producer failed: " + more.error().message);
    stream_.expires_after(options_.idle_timeout);  // a client that stops reading ends the stream
    if (!*more) {
      producer_.reset();  // released before the last write: nothing more is read
      return net::async_write(stream_, bhttp::make_chunk_last(),
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                if (ec) return self->end_stream(false, "last chunk not written: " + ec.message());
                                self->end_stream(true, {});
                              });
    }
    net::async_write(stream_, bhttp::make_chunk(net::buffer(chunk_)),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->end_stream(false, "client gone: " + ec.message());
                       self->pull();
                     });
  }

  /// Lets go of the streamed response; after a complete one, reads the next request
  /// (keep-alive) or closes gracefully; after a broken one, closes at once.
  void end_stream(bool complete, const std::string& why) {
    producer_.reset();
    std::string().swap(chunk_);
    const bool keep_alive = streamed_ && streamed_->keep_alive();
    serializer_.reset();
    streamed_.reset();
    if (!complete) {
      spdlog::info("streamed response ended early: {}", why);
      return close();
    }
    if (!keep_alive) return linger();
    read();
  }

  /// Hands the connection to a push channel; this session ends here.
  void open(http_response resp) {
    std::string remote = remote_;
    if (resp.status == 101) {
      if (!upgrade_) {
        return write(refusal(400, error_body("invalid_argument", "expected a WebSocket upgrade")), false);
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

  dual_stream stream_;
  std::string remote_;  // the peer's "address:port", read once per connection ("" if unknown)
  beast::flat_buffer buffer_{k_max_unparsed_bytes};
  std::shared_ptr<std::array<char, 16384>> drain_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::request<bhttp::string_body>> upgrade_;
  // A streamed response (`write_streamed`): its header, producer and the chunk in flight.
  std::shared_ptr<bhttp::response<bhttp::empty_body>> streamed_;
  std::shared_ptr<bhttp::response_serializer<bhttp::empty_body>> serializer_;
  std::shared_ptr<body_producer> producer_;
  std::string chunk_;
  bool head_ = false;           // the pending request is a HEAD: its answer has no body
  bool answered_ = false;       // the pending request's answer is being written (no watch from now on)
  bool watching_ = false;       // a `watch` waits for the socket to become readable
  bool plain_refused_ = false;  // a plain-HTTP request on the TLS port: it gets a 400, nothing else
  const handler_fn& handler_;
  const server_options& options_;
  std::shared_ptr<ssl::context> tls_;  // until the handshake starts (then the stream holds it)
};

/// Reads a PEM file whole; "" with `why` set when it cannot be read.
std::string read_pem(const std::string& option, const std::string& file, std::string& why) {
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) why = option + " " + file + ": cannot read it";
  if (why.empty() && text.empty()) why = option + " " + file + ": cannot read it or it is empty";
  return text;
}

/// The TLS server context of `o`: the certificate chain and key (PEM), TLS 1.2 or 1.3 at
/// least (`tls_min_version`), OpenSSL's default cipher suites otherwise (no SSLv2/3,
/// TLS 1.0/1.1 or compression). `invalid_argument` naming the option for a file that
/// cannot be read, is not PEM, or a key that does not match the certificate.
result<std::shared_ptr<ssl::context>> make_tls_context(const server_options& o) {
  std::string why;
  const auto cert = read_pem("--tls-cert", o.tls_cert_file, why);
  const auto key = why.empty() ? read_pem("--tls-key", o.tls_key_file, why) : std::string();
  if (!why.empty()) return fail(errc::invalid_argument, why);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  if (o.tls_min_version != "1.2" && o.tls_min_version != "1.3") {
    return fail(errc::invalid_argument, "--tls-min-version takes 1.2 or 1.3, not '" + o.tls_min_version + "'");
  }
  ::SSL_CTX_set_min_proto_version(ctx->native_handle(), o.tls_min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  beast::error_code ec;
  ctx->use_certificate_chain(net::buffer(cert), ec);
  if (ec)
    return fail(errc::invalid_argument,
                "--tls-cert " + o.tls_cert_file + ": not a PEM certificate chain (" + ec.message() + ")");
  ctx->use_private_key(net::buffer(key), ssl::context::pem, ec);
  // OpenSSL checks the key against the certificate as it loads it.
  const bool mismatch = ec && ec.category() == net::error::get_ssl_category() &&
                        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
  if (mismatch || (!ec && ::SSL_CTX_check_private_key(ctx->native_handle()) != 1)) {
    return fail(errc::invalid_argument,
                "--tls-key " + o.tls_key_file + " does not belong to the certificate in " + o.tls_cert_file);
  }
  if (ec)
    return fail(errc::invalid_argument,
                "--tls-key " + o.tls_key_file + ": not a PEM private key (" + ec.message() + ")");
  return ctx;
}

}  // namespace

struct http_server::impl {
  server_options options;
  handler_fn handler;
  net::io_context ioc;
  /// The TLS context new connections get (null: plain HTTP); replaced by `reload_tls`
  /// while connections keep the one they started with.
  std::mutex tls_mu;
  std::shared_ptr<ssl::context> tls;
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
        // Small answers and WebSocket frames go out at once: with Nagle's algorithm a
        // second small write (a presence message right after an event) waited for the
        // peer's delayed ACK, ~40 ms (docs/performance.md, "Console").
        beast::error_code nd;
        s.set_option(tcp::no_delay(true), nd);
        try {
          std::shared_ptr<ssl::context> tls;
          {
            std::lock_guard lock(self->tls_mu);
            tls = self->tls;
          }
          std::make_shared<session>(std::move(s), self->handler, self->options, std::move(tls))->run();
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
  if (!p->options.tls_cert_file.empty() || !p->options.tls_key_file.empty()) {
    if (p->options.tls_cert_file.empty() || p->options.tls_key_file.empty()) {
      return fail(errc::invalid_argument, "--tls-cert and --tls-key go together");
    }
    auto ctx = make_tls_context(p->options);
    if (!ctx) return std::unexpected(ctx.error());
    p->tls = std::move(*ctx);
  }
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
  const std::size_t threads =
      p->options.threads > 0 ? p->options.threads : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  spdlog::info("http io_threads={}", threads);
  for (std::size_t i = 0; i < threads; ++i) {
    p->threads.emplace_back([raw = p.get()] { raw->run_io(); });
  }
  return std::unique_ptr<http_server>(new http_server(std::move(p)));
}

bool http_server::tls() const { return !impl_->options.tls_cert_file.empty(); }

result<void> http_server::reload_tls() {
  if (!tls()) return fail(errc::failed_precondition, "the server does not serve TLS (no --tls-cert)");
  auto ctx = make_tls_context(impl_->options);
  if (!ctx) return std::unexpected(ctx.error());
  std::lock_guard lock(impl_->tls_mu);
  impl_->tls = std::move(*ctx);
  return {};
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
