// Fuzz target: raw bytes from a client → Beast's request parser with the limits of
// adapters/http/http_server.cpp's `session` (header 64 KiB, body 1 MiB, at most 64 KiB
// read but unparsed, chunked transfer coding, pipelining on one buffer) → the same
// `http_request` conversion as `session::dispatch_request` (repeated fields joined,
// repeated single-value fields refused; keep the two in step) → `api::handle` on the real dependencies
// (tests/fuzz/harness.hpp), waiting for each answer. Placeholders such as @TOKEN@ and @PROJECT@ in the input are
// replaced first, so that inputs reach authenticated routes on existing entities.
//
// Findings: any crash or sanitizer report; an exception escaping the read (it would
// escape `io_context::run()` in the server); a request never answered; a 500; a store
// that no longer writes (see harness.hpp).
#include <boost/asio/error.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/http/beast_request.hpp"
#include "tests/fuzz/harness.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;

constexpr std::size_t k_max_body_bytes = 1 << 20;  // server_options::max_body_bytes, as app/main.cpp sets it
using atrium::http_adapter::k_max_unparsed_bytes;  // session::buffer_'s bound
constexpr auto k_header_limit = atrium::http_adapter::k_header_limit_bytes;  // session::read
constexpr int k_max_pipelined = 4;

/// A SyncReadStream over the input: what a client wrote, then end of stream.
class input_stream {
 public:
  explicit input_stream(std::string_view data) : data_(data) {}

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    ec = {};
    if (data_.empty()) {
      ec = net::error::eof;
      return 0;
    }
    const auto n = net::buffer_copy(buffers, net::buffer(data_.data(), std::min<std::size_t>(data_.size(), 65536)));
    data_.remove_prefix(n);
    return n;
  }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    const auto n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  std::string_view data_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& w = atrium::fuzz::world::get();
  w.note_input(data, size);
  const auto input = w.substitute(std::string(reinterpret_cast<const char*>(data), size));
  input_stream stream(input);
  beast::flat_buffer buffer{k_max_unparsed_bytes};  // kept across pipelined requests, as the session's is
  for (int i = 0; i < k_max_pipelined; ++i) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(k_max_body_bytes);
    parser.header_limit(k_header_limit);
    beast::error_code ec;
    bhttp::read(stream, buffer, parser, ec);  // an exception here is a finding: the server does not catch it
    if (ec) break;                            // the server answers 400/413 (or closes) and stops reading

    // session::dispatch_request's conversion (adapters/http/beast_request.hpp).
    auto req = parser.release();
    const bool keep_alive = req.keep_alive();
    atrium::http_adapter::http_request r;
    if (atrium::http_adapter::to_http_request(req, r)) break;  // 400, and the connection closes
    r.remote = "127.0.0.1:40000";

    auto resp = w.call(std::move(r));
    if (resp.status == 101) break;  // the connection would now be a WebSocket
    if (!keep_alive) break;
  }
  w.after_input();
  return 0;
}
