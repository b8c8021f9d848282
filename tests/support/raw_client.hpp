#pragma once
/// Test support: a raw TCP client for hostile HTTP input. It sends exactly the bytes it
/// is given (malformed request lines, duplicate headers, broken chunked bodies, lying
/// Content-Length), optionally half-closes, and reads the answer with a deadline,
/// reporting how the connection ended: answered, closed without an answer, reset, or
/// still silent at the deadline (a hang). POSIX sockets only (no Beast), so it cannot
/// "fix" what it sends.
///
///   raw_exchange(bytes) ──send (interleaved with reads)──▶ atriumd
///                        ◀──responses (Content-Length / chunked / until close)──
///   ends: answered (wanted responses read) | closed (EOF) | reset | timeout

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium::test {

/// One complete HTTP/1.1 response as read off the wire.
struct raw_response {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  ///< lowercase names; a repeated name keeps the last value
  std::string body;                            ///< de-chunked
  nlohmann::json json;                         ///< the body parsed as JSON, or null when it is not JSON
};

/// How reading ended.
enum class raw_end {
  answered,  ///< the wanted number of responses arrived
  closed,    ///< the server closed (EOF) first
  reset,     ///< the connection was reset (ECONNRESET/EPIPE) first
  timeout,   ///< the deadline passed first: a hang
  refused,   ///< connect() failed
};

/// A readable name for `e` ("answered", "closed", ...).
[[nodiscard]] const char* to_string(raw_end e);

/// What an exchange produced.
struct raw_result {
  std::vector<raw_response> responses;  ///< complete responses, in order
  raw_end end = raw_end::timeout;
  std::string leftover;  ///< bytes read after the last complete response
  std::chrono::milliseconds elapsed{0};
  /// The first response, if any.
  [[nodiscard]] const raw_response* first() const { return responses.empty() ? nullptr : &responses.front(); }
};

/// Options of one exchange.
struct raw_options {
  std::chrono::milliseconds deadline{10000};  ///< for the whole exchange, send and read
  std::size_t responses = 1;                  ///< stop reading after this many complete responses
  bool half_close = false;                    ///< shutdown(SHUT_WR) once everything is sent
  bool abort_after_send = false;              ///< close at once after sending (no read; `end` = closed)
  std::size_t rcvbuf = 0;                     ///< SO_RCVBUF before connect (0: the default)
  /// The first this many responses answer HEAD requests: a header only, whatever its
  /// Content-Length says (RFC 9110 §9.3.2).
  std::size_t head_responses = 0;
};

/// Connects to `address` ("host:port"), sends `bytes` (reading meanwhile, so that a server
/// answering early cannot deadlock a large send), then reads responses as `o` says.
[[nodiscard]] raw_result raw_exchange(const std::string& address, std::string_view bytes, const raw_options& o = {});

/// A request as bytes: `METHOD TARGET HTTP/1.1`, `Host`, the headers as given (in order,
/// duplicates kept), `Content-Length` of `body` unless `content_length` is false or a
/// header of that name (any case) or `Transfer-Encoding` is among `headers`, a blank
/// line, then `body` verbatim.
[[nodiscard]] std::string raw_request(std::string_view method, std::string_view target,
                                      const std::vector<std::pair<std::string, std::string>>& headers = {},
                                      std::string_view body = {}, bool content_length = true);

/// A connected TCP socket with deadline-bounded I/O; closed on destruction.
class raw_socket {
 public:
  /// Connects to "host:port"; `rcvbuf` > 0 sets SO_RCVBUF first. Throws std::runtime_error
  /// when the connection cannot be made.
  explicit raw_socket(const std::string& address, std::size_t rcvbuf = 0);
  /// The same from the local IPv4 address `source` (bound before connecting; any of
  /// 127.0.0.0/8 works on loopback): a second client address for per-address limits.
  raw_socket(const std::string& address, std::size_t rcvbuf, const std::string& source);
  ~raw_socket();
  raw_socket(raw_socket&& other) noexcept;
  raw_socket& operator=(raw_socket&& other) noexcept;
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;

  /// Sends everything before the deadline; false if the peer closed or reset, or time ran out.
  bool send_all(std::string_view bytes, std::chrono::milliseconds deadline = std::chrono::seconds(10));
  /// Reads what is available, waiting up to `wait` for something. Returns the bytes read
  /// (empty on timeout); `end` is set to closed/reset when the peer went away.
  std::string recv_some(std::chrono::milliseconds wait, std::optional<raw_end>* end = nullptr);
  /// Reads until `n` complete HTTP responses are parsed or the deadline, as `raw_exchange`.
  /// The first `heads` of them answer HEAD requests (no body).
  raw_result read_responses(std::size_t n, std::chrono::milliseconds deadline, std::size_t heads = 0);
  /// shutdown(SHUT_WR).
  void shutdown_write();
  /// Closes the socket now.
  void close();
  [[nodiscard]] int fd() const { return fd_; }
  /// Bytes read but not consumed yet (read_responses keeps what follows the last response).
  std::string& buffer() { return buffer_; }

 private:
  int fd_ = -1;
  std::string buffer_;
};

/// Parses one complete response from the front of `buf` into `out` and erases it;
/// false when `buf` does not hold a complete response yet (or `eof` must end a body
/// delimited by the connection's close; pass eof=true once the peer closed).
/// `head`: the response answers a HEAD request (a header only).
bool parse_raw_response(std::string& buf, raw_response& out, bool eof, bool head = false);

}  // namespace atrium::test
