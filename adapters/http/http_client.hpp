#pragma once
/// A small blocking HTTP/1.1 client (Boost.Beast behind a plain header) for `atriumd
/// worker`: one connection per request over TCP or TLS (OpenSSL; the server's
/// certificate and host name are verified), a deadline per request, and
/// `cancel_all` to abort every request in flight from another thread (a long-poll at
/// shutdown). Thread-safe: requests may run on several threads at once.

#include <chrono>
#include <memory>
#include <string>

#include "events/error.hpp"

namespace atrium::http_adapter {

/// An answer: the status and the raw body.
struct client_reply {
  unsigned status = 0;
  std::string body;
};

/// A client of one server.
class blocking_http_client {
 public:
  /// `base_url`: `http://HOST[:PORT]` or `https://HOST[:PORT]` (ports 80 and 443 by
  /// default; a trailing `/` is ignored); `token` is sent as `Authorization: Bearer`.
  /// Over https the server's certificate must chain to `ca_file` (PEM; "" : the system's
  /// CA store) and name HOST, with TLS 1.2 at least. Errors: `invalid_argument` (not such
  /// a URL, a CA file that cannot be loaded, or a CA file with an http:// URL).
  [[nodiscard]] static result<std::unique_ptr<blocking_http_client>> make(const std::string& base_url,
                                                                          std::string token,
                                                                          const std::string& ca_file = "");
  ~blocking_http_client();
  blocking_http_client(const blocking_http_client&) = delete;
  blocking_http_client& operator=(const blocking_http_client&) = delete;

  /// Sends `method target` with a JSON `body` (none when empty) and waits up to
  /// `timeout` for the whole answer. Errors: `unavailable` (cannot connect, connection
  /// lost, deadline passed, or cancelled).
  [[nodiscard]] result<client_reply> request(const std::string& method, const std::string& target,
                                             const std::string& body, std::chrono::milliseconds timeout);

  /// Aborts every request in flight and refuses new ones (`unavailable`).
  void cancel_all();

  struct impl;

 private:
  explicit blocking_http_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace atrium::http_adapter
