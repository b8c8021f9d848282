// HTTP/1.1 to the Docker daemon and the host-side probes (Boost.Beast); see docker_http.hpp.
// Every operation is asynchronous on a private io_context that the calling thread runs in
// slices of at most 250 ms, so that a deadline, `stream_control::cancel` (which posts a
// close of the socket) and a polled stop flag all end it promptly.
#include "adapters/docker/docker_http.hpp"

#include <algorithm>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace atrium::docker_adapter {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

void stream_control::cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (closer_) closer_();
}

bool stream_control::cancelled() const {
  if (stop_ != nullptr && stop_->load()) return true;
  std::lock_guard lock(mu_);
  return cancelled_;
}

void stream_control::attach(std::function<void()> closer) {
  std::lock_guard lock(mu_);
  closer_ = std::move(closer);
  if (cancelled_) closer_();
}

void stream_control::detach() {
  std::lock_guard lock(mu_);
  closer_ = nullptr;
}

namespace {

enum class waited { done, timeout, cancelled };

// Runs `ioc` until `done`, the deadline, or cancellation; on the latter two, closes the
// socket and lets the aborted handlers run, so nothing refers to the caller's frame after.
template <class Socket>
waited run_until(net::io_context& ioc, Socket& sock, const bool& done, clock_type::time_point deadline,
                 const stream_control* control) {
  for (;;) {
    if (done) return waited::done;
    const auto now = clock_type::now();
    const bool cancelled = control != nullptr && control->cancelled();
    if (cancelled || now >= deadline) {
      error_code ignored;
      sock.close(ignored);
      ioc.restart();
      ioc.run();
      return cancelled ? waited::cancelled : waited::timeout;
    }
    const auto slice = std::min<clock_type::duration>(std::chrono::milliseconds(250), deadline - now);
    ioc.restart();
    ioc.run_for(slice);
  }
}

// Attaches a closer of `sock` to `control` for the duration of a stream.
template <class Socket>
class attached {
 public:
  attached(stream_control* control, net::io_context& ioc, Socket& sock) : control_(control) {
    if (control_ == nullptr) return;
    control_->attach([&ioc, &sock] {
      net::post(ioc, [&sock] {
        error_code ignored;
        sock.shutdown(Socket::shutdown_both, ignored);
        sock.close(ignored);
      });
    });
  }
  ~attached() {
    if (control_ != nullptr) control_->detach();
  }
  attached(const attached&) = delete;
  attached& operator=(const attached&) = delete;

 private:
  stream_control* control_;
};

std::string describe(const char* what, const std::string& target, const error_code& ec) {
  return std::string(what) + " " + target + ": " + ec.message();
}

// One request/answer exchange over a connected socket. On success, `parser` holds the
// header (and, for a string body, the body).
template <class Socket, class Parser>
result<void> send_and_read_header(net::io_context& ioc, Socket& sock, bhttp::request<bhttp::string_body>& req,
                                  beast::flat_buffer& buf, Parser& parser, clock_type::time_point deadline,
                                  const stream_control* control, const std::string& what) {
  bool done = false;
  error_code ec;
  bhttp::async_write(sock, req, [&](const error_code& e, std::size_t) {
    ec = e;
    done = true;
  });
  auto w = run_until(ioc, sock, done, deadline, control);
  if (w == waited::timeout) return fail(errc::unavailable, what + ": no answer in time (sending)");
  if (w == waited::cancelled) return fail(errc::unavailable, what + ": cancelled");
  if (ec) return fail(errc::unavailable, describe("sending", what, ec));
  done = false;
  bhttp::async_read_header(sock, buf, parser, [&](const error_code& e, std::size_t) {
    ec = e;
    done = true;
  });
  w = run_until(ioc, sock, done, deadline, control);
  if (w == waited::timeout) return fail(errc::unavailable, what + ": no answer in time");
  if (w == waited::cancelled) return fail(errc::unavailable, what + ": cancelled");
  if (ec) return fail(errc::unavailable, describe("reading the answer to", what, ec));
  return {};
}

template <class Socket, class Endpoint>
result<void> connect(net::io_context& ioc, Socket& sock, const Endpoint& ep, clock_type::time_point deadline,
                     const stream_control* control, const std::string& where) {
  bool done = false;
  error_code ec;
  sock.async_connect(ep, [&](const error_code& e) {
    ec = e;
    done = true;
  });
  const auto w = run_until(ioc, sock, done, deadline, control);
  if (w == waited::timeout) return fail(errc::unavailable, "connecting to " + where + ": timed out");
  if (w == waited::cancelled) return fail(errc::unavailable, "connecting to " + where + ": cancelled");
  if (ec) return fail(errc::unavailable, "cannot connect to " + where + ": " + ec.message());
  return {};
}

bhttp::request<bhttp::string_body> make_request(std::string_view method, const std::string& target,
                                                const std::string& body, std::string_view content_type) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "docker");
  req.set(bhttp::field::user_agent, "atriumd");
  if (!body.empty()) req.set(bhttp::field::content_type, content_type);
  req.body() = body;
  req.prepare_payload();
  return req;
}

}  // namespace

result<http_reply> docker_client::request(std::string_view method, const std::string& target, const std::string& body,
                                          std::chrono::milliseconds timeout, std::string_view content_type,
                                          std::size_t body_limit) const {
  const std::string what = std::string(method) + " " + target;
  try {
    const auto deadline = clock_type::now() + timeout;
    net::io_context ioc;
    net::local::stream_protocol::socket sock(ioc);
    if (auto c = connect(ioc, sock, net::local::stream_protocol::endpoint(path_), deadline, nullptr,
                         "the docker daemon at " + path_);
        !c)
      return std::unexpected(c.error());
    auto req = make_request(method, target, body, content_type);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(body_limit);
    if (auto h = send_and_read_header(ioc, sock, req, buf, parser, deadline, nullptr, what); !h) {
      return std::unexpected(h.error());
    }
    bool done = false;
    error_code ec;
    bhttp::async_read(sock, buf, parser, [&](const error_code& e, std::size_t) {
      ec = e;
      done = true;
    });
    const auto w = run_until(ioc, sock, done, deadline, nullptr);
    if (w != waited::done) return fail(errc::unavailable, what + ": no complete answer in time");
    if (ec) return fail(errc::unavailable, describe("reading the answer to", what, ec));
    http_reply out;
    out.status = parser.get().result_int();
    out.content_type = std::string(parser.get()[bhttp::field::content_type]);
    out.body = std::move(parser.get().body());
    error_code ignored;
    sock.close(ignored);
    return out;
  } catch (const std::exception& ex) {
    return fail(errc::unavailable, what + ": " + ex.what());
  }
}

result<http_reply> docker_client::stream(std::string_view method, const std::string& target, const std::string& body,
                                         std::chrono::milliseconds header_timeout,
                                         const std::function<bool(std::string_view)>& on_data,
                                         stream_control& control) const {
  const std::string what = std::string(method) + " " + target;
  try {
    net::io_context ioc;
    net::local::stream_protocol::socket sock(ioc);
    attached<net::local::stream_protocol::socket> guard(&control, ioc, sock);
    auto deadline = clock_type::now() + header_timeout;
    if (auto c = connect(ioc, sock, net::local::stream_protocol::endpoint(path_), deadline, &control,
                         "the docker daemon at " + path_);
        !c)
      return std::unexpected(c.error());
    auto req = make_request(method, target, body, "application/json");
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(boost::none);
    if (auto h = send_and_read_header(ioc, sock, req, buf, parser, deadline, &control, what); !h) {
      return std::unexpected(h.error());
    }
    http_reply out;
    out.status = parser.get().result_int();
    out.content_type = std::string(parser.get()[bhttp::field::content_type]);
    const bool ok = out.status >= 200 && out.status < 300;
    // Error bodies are short and come at once; a stream has no deadline but the control.
    if (ok) deadline = clock_type::time_point::max();
    std::string chunk(64 * 1024, '\0');
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      bool done = false;
      error_code ec;
      // read_some: hand over what arrived (an event, a log line) without waiting for
      // the buffer to fill.
      bhttp::async_read_some(sock, buf, parser, [&](const error_code& e, std::size_t) {
        ec = e;
        done = true;
      });
      const auto w = run_until(ioc, sock, done, deadline, &control);
      // Cancelled: by the polled flag (waited::cancelled) or by `cancel()`'s close, which
      // completes the read with operation_aborted.
      if (w == waited::cancelled || control.cancelled()) return out;
      if (w == waited::timeout) return fail(errc::unavailable, what + ": the answer did not come in time");
      if (ec && ec != bhttp::error::need_buffer) {
        return fail(errc::unavailable, describe("reading the stream of", what, ec));
      }
      const std::size_t n = chunk.size() - parser.get().body().size;
      if (n == 0) continue;
      if (!ok) {
        if (out.body.size() < 64 * 1024) out.body.append(chunk.data(), std::min(n, 64 * 1024 - out.body.size()));
        continue;
      }
      if (!on_data(std::string_view(chunk.data(), n))) break;
    }
    error_code ignored;
    sock.close(ignored);
    return out;
  } catch (const std::exception& ex) {
    return fail(errc::unavailable, what + ": " + ex.what());
  }
}

host_probe_outcome http_probe(int port, const std::string& path, std::chrono::milliseconds timeout) {
  const std::string where = "127.0.0.1:" + std::to_string(port);
  try {
    const auto deadline = clock_type::now() + timeout;
    net::io_context ioc;
    net::ip::tcp::socket sock(ioc);
    const net::ip::tcp::endpoint ep(net::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port));
    if (auto c = connect(ioc, sock, ep, deadline, nullptr, where); !c) return {false, c.error().message};
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, path, 11};
    req.set(bhttp::field::host, where);
    req.set(bhttp::field::user_agent, "atriumd-health");
    req.set(bhttp::field::connection, "close");
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::empty_body> parser;
    parser.header_limit(64 * 1024);
    if (auto h = send_and_read_header(ioc, sock, req, buf, parser, deadline, nullptr, "GET http://" + where + path); !h)
      return {false, h.error().message};
    const unsigned status = parser.get().result_int();
    error_code ignored;
    sock.close(ignored);
    const bool healthy = status >= 200 && status < 400;
    return {healthy, "HTTP " + std::to_string(status)};
  } catch (const std::exception& ex) {
    return {false, std::string("GET ") + where + ": " + ex.what()};
  }
}

host_probe_outcome tcp_probe(int port, std::chrono::milliseconds timeout) {
  const std::string where = "127.0.0.1:" + std::to_string(port);
  try {
    net::io_context ioc;
    net::ip::tcp::socket sock(ioc);
    const net::ip::tcp::endpoint ep(net::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port));
    if (auto c = connect(ioc, sock, ep, clock_type::now() + timeout, nullptr, where); !c) {
      return {false, c.error().message};
    }
    error_code ignored;
    sock.close(ignored);
    return {true, "connected to " + where};
  } catch (const std::exception& ex) {
    return {false, "connect " + where + ": " + ex.what()};
  }
}

}  // namespace atrium::docker_adapter
