#include "tests/support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <stdexcept>

#include <unistd.h>

namespace atrium::test {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;

namespace {

/// Appends one exchange to `$ATRIUM_API_RECORD/<pid>.jsonl` when that variable names a
/// directory (tests/api/validate-recorded.mjs checks each against docs/openapi.json):
/// `{method, target, status, headers (lower-cased), body (text, at most 1 MiB), truncated}`.
void record_exchange(const std::string& method, const std::string& target, const http_reply& r) {
  static const char* dir = std::getenv("ATRIUM_API_RECORD");
  if (dir == nullptr || *dir == '\0') return;
  constexpr std::size_t k_cap = 1 << 20;
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [k, v] : r.headers) headers[k] = v;
  const bool truncated = r.body.size() > k_cap;
  nlohmann::json line{{"method", method},
                      {"target", target},
                      {"status", r.status},
                      {"headers", std::move(headers)},
                      {"body", truncated ? r.body.substr(0, k_cap) : r.body},
                      {"truncated", truncated}};
  static std::mutex m;
  const std::lock_guard lock(m);
  std::ofstream out(std::string(dir) + "/" + std::to_string(::getpid()) + ".jsonl", std::ios::app);
  out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

}  // namespace

http_client::http_client(std::string address) {
  const auto colon = address.rfind(':');
  host_ = address.substr(0, colon);
  port_ = address.substr(colon + 1);
}

http_reply http_client::request(const std::string& method, const std::string& target, const std::string& body,
                                const std::map<std::string, std::string>& headers) const {
  try {
    net::io_context ioc;
    net::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(resolver.resolve(host_, port_));
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, host_);
    if (!token_.empty()) req.set(bhttp::field::authorization, "Bearer " + token_);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    // The answer to HEAD has the header of a GET and no body (RFC 9110 §9.3.2): the
    // parser must not wait for the Content-Length bytes.
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (method == "HEAD") parser.skip(true);
    bhttp::read(stream, buffer, parser);
    auto res = parser.release();
    http_reply out;
    out.status = res.result_int();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
    out.json = nlohmann::json::parse(out.body, nullptr, false);
    if (out.json.is_discarded()) out.json = nullptr;
    beast::error_code ec;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    record_exchange(method, target, out);
    return out;
  } catch (const boost::system::system_error& ex) {
    throw std::runtime_error(method + " " + target + ": " + ex.what());
  }
}

}  // namespace atrium::test
