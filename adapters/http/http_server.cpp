#include "adapters/http/http_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <thread>

namespace atrium::http_adapter {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string error_body(std::string_view code, std::string_view message) {
  return R"({"error":{"code":")" + std::string(code) + R"(","message":")" + std::string(message) +
         R"(","details":{}}})";
}

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
    if (ec) return write(http_response{400, error_body("invalid_argument", "malformed HTTP request")}, false);

    auto req = parser_->release();
    http_request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(f.value());
    }
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

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<std::array<char, 16384>> drain_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
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

  void accept() {
    // Captures `this`, not a shared_ptr: the io_context (a member) owns this handler, and
    // a shared_ptr here would keep the server alive forever after stop().
    acceptor.async_accept(net::make_strand(ioc), [self = this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        spdlog::warn("accept failed: {}", ec.message());
      } else {
        std::make_shared<session>(std::move(s), self->handler, self->options)->run();
      }
      if (!self->stopped) self->accept();
    });
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
    p->threads.emplace_back([raw = p.get()] { raw->ioc.run(); });
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
