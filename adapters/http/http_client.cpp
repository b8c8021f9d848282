// The worker's blocking HTTP client (Boost.Beast); see http_client.hpp.
#include "adapters/http/http_client.hpp"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <mutex>
#include <set>

namespace atrium::http_adapter {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;

struct blocking_http_client::impl {
  std::string host;
  std::string port;
  std::string token;
  std::shared_ptr<ssl::context> tls;  // https://: verifies the server's certificate and name
  std::mutex mu;
  std::set<int> in_flight;  // native sockets of requests in flight
  bool cancelled = false;
};

result<std::unique_ptr<blocking_http_client>> blocking_http_client::make(const std::string& base_url, std::string token,
                                                                         const std::string& ca_file) {
  std::string rest = base_url;
  const bool https = rest.starts_with("https://");
  if (!https && !rest.starts_with("http://")) {
    return fail(errc::invalid_argument, "the server URL must start with http:// or https://");
  }
  rest = rest.substr(https ? 8 : 7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (rest.empty() || rest.find('/') != std::string::npos) {
    return fail(errc::invalid_argument, "the server URL must be http(s)://HOST[:PORT]");
  }
  auto p = std::make_unique<impl>();
  const bool bracketed = !rest.empty() && rest.back() == ']';  // [v6] without a port
  p->host = colon == std::string::npos || bracketed ? rest : rest.substr(0, colon);
  p->port = colon == std::string::npos || bracketed ? (https ? "443" : "80") : rest.substr(colon + 1);
  if (p->host.size() >= 2 && p->host.front() == '[' && p->host.back() == ']') {
    p->host = p->host.substr(1, p->host.size() - 2);
  }
  p->token = std::move(token);
  if (https) {
    p->tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    ::SSL_CTX_set_min_proto_version(p->tls->native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (ca_file.empty()) {
      p->tls->set_default_verify_paths(ec);
    } else {
      p->tls->load_verify_file(ca_file, ec);
    }
    if (ec) return fail(errc::invalid_argument, "cannot load the CA certificates " + ca_file + ": " + ec.message());
    p->tls->set_verify_mode(ssl::verify_peer);
  } else if (!ca_file.empty()) {
    return fail(errc::invalid_argument, "a CA file is for an https:// server URL");
  }
  return std::unique_ptr<blocking_http_client>(new blocking_http_client(std::move(p)));
}

blocking_http_client::blocking_http_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
blocking_http_client::~blocking_http_client() = default;

void blocking_http_client::cancel_all() {
  std::lock_guard lock(impl_->mu);
  impl_->cancelled = true;
  // shutdown(2) wakes a thread blocked in recv on that socket; the fd stays owned by it.
  for (int fd : impl_->in_flight) ::shutdown(fd, SHUT_RDWR);
}

namespace {

/// Writes `req` on `stream` and reads the answer (a body of 64 MiB at most).
template <class Stream>
client_reply exchange(Stream& stream, bhttp::request<bhttp::string_body>& req) {
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 << 20);
  bhttp::read(stream, buffer, parser);
  return client_reply{parser.get().result_int(), parser.get().body()};
}

}  // namespace

result<client_reply> blocking_http_client::request(const std::string& method, const std::string& target,
                                                   const std::string& body, std::chrono::milliseconds timeout) {
  auto& d = *impl_;
  int fd = -1;
  try {
    net::io_context ioc;
    net::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(d.host, d.port));
    {
      std::lock_guard lock(d.mu);
      if (d.cancelled) return fail(errc::unavailable, "cancelled");
      fd = stream.socket().native_handle();
      d.in_flight.insert(fd);
    }
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, d.host);
    req.set(bhttp::field::user_agent, "atriumd-worker");
    if (!d.token.empty()) req.set(bhttp::field::authorization, "Bearer " + d.token);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    client_reply out;
    beast::error_code ec;
    if (d.tls) {
      beast::ssl_stream<beast::tcp_stream&> tls(stream, *d.tls);
      // The certificate must name the host (RFC 6125: DNS name or IP address); SNI for names.
      tls.set_verify_callback(ssl::host_name_verification(d.host));
      net::ip::make_address(d.host, ec);
      if (ec && ::SSL_set_tlsext_host_name(tls.native_handle(), d.host.c_str()) != 1) {
        return fail(errc::unavailable, "cannot set the TLS server name " + d.host);
      }
      tls.handshake(ssl::stream_base::client);
      out = exchange(tls, req);
      tls.shutdown(ec);  // close_notify; the server may close first (ignored)
    } else {
      out = exchange(stream, req);
    }
    {
      std::lock_guard lock(d.mu);
      d.in_flight.erase(fd);
    }
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    return out;
  } catch (const std::exception& ex) {
    if (fd >= 0) {
      std::lock_guard lock(d.mu);
      d.in_flight.erase(fd);
    }
    return fail(errc::unavailable, method + " " + target + ": " + ex.what());
  }
}

}  // namespace atrium::http_adapter
