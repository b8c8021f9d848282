#pragma once
/// HTTP/1.1 for the `docker` runtime, behind a plain header: the one translation unit of
/// adapters/docker that includes Boost.Beast (docker_http.cpp). Three things:
///   - `docker_client`: requests to the Docker daemon over its local stream socket
///     (AF_UNIX), one connection per request (connecting to a local socket costs
///     microseconds, and the daemon closes hijacked and streamed connections anyway);
///   - its streaming variant for `/events` and `/containers/{id}/logs`, cancellable from
///     another thread at once (`stream_control::cancel` closes the socket);
///   - the host-side health probes (HTTP GET and TCP connect to 127.0.0.1:<port>).
/// Every call is blocking, thread-safe, bounded by a deadline, and reports failures as
/// values: nothing throws.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "events/error.hpp"

namespace atrium::docker_adapter {

/// A complete answer.
struct http_reply {
  unsigned status = 0;
  std::string body;          ///< the whole body (bounded by the request's limit)
  std::string content_type;  ///< the Content-Type header, "" when absent
};

/// Stops a stream from another thread: `cancel()` closes its socket at once; `stop`
/// (when set) is polled at least every 250 ms. One control may serve several streams,
/// one after the other (a reconnecting watch); once cancelled it stays cancelled.
class stream_control {
 public:
  stream_control() = default;
  explicit stream_control(const std::atomic<bool>* stop) : stop_(stop) {}
  stream_control(const stream_control&) = delete;
  stream_control& operator=(const stream_control&) = delete;

  /// Ends the stream in progress (if any) and every later one. Thread-safe.
  void cancel();
  /// True after `cancel()` or once `stop` became true.
  [[nodiscard]] bool cancelled() const;

  /// Internal (docker_http.cpp): the closer of the stream in progress.
  void attach(std::function<void()> closer);
  void detach();

 private:
  const std::atomic<bool>* stop_ = nullptr;
  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> closer_;
};

/// A client of one daemon socket.
class docker_client {
 public:
  /// `socket_path`: the daemon's AF_UNIX socket (from `parse_docker_host`).
  explicit docker_client(std::string socket_path) : path_(std::move(socket_path)) {}

  [[nodiscard]] const std::string& socket_path() const { return path_; }

  /// Sends `method target` (the target with its `/v1.41` prefix and query) with `body`
  /// (none when empty; `content_type` then names it) and reads the whole answer, all
  /// within `timeout`. A body over `body_limit` bytes is an error. Errors: `unavailable`
  /// (cannot connect, connection lost, deadline passed, malformed HTTP: the message says
  /// which).
  [[nodiscard]] result<http_reply> request(std::string_view method, const std::string& target, const std::string& body,
                                           std::chrono::milliseconds timeout,
                                           std::string_view content_type = "application/json",
                                           std::size_t body_limit = 64 << 20) const;

  /// Sends a request whose answer is a stream. The status line and headers must come
  /// within `header_timeout`. A 2xx answer's body is handed to `on_data` piece by piece
  /// (chunked or not) until it ends, `on_data` returns false, or `control` is cancelled;
  /// its reply then has an empty body. Any other status's body is read whole (at most
  /// 64 KiB) into the reply, `on_data` is not called. Errors: `unavailable` as
  /// `request`, also when the connection breaks mid-stream; not when cancelled (the
  /// reply so far is returned).
  [[nodiscard]] result<http_reply> stream(std::string_view method, const std::string& target, const std::string& body,
                                          std::chrono::milliseconds header_timeout,
                                          const std::function<bool(std::string_view)>& on_data,
                                          stream_control& control) const;

 private:
  std::string path_;
};

/// One HTTP health-check attempt: `GET path` on 127.0.0.1:`port` (HTTP/1.1, `Host:
/// 127.0.0.1:<port>`, `Connection: close`), healthy on a 2xx or 3xx status within
/// `timeout` (as Kubernetes' httpGet probe; the body is read and dropped, at most 1 MiB).
/// `detail` names the status or the failure (connect refused, timeout, bad answer).
struct host_probe_outcome {
  bool healthy = false;
  std::string detail;
};
[[nodiscard]] host_probe_outcome http_probe(int port, const std::string& path, std::chrono::milliseconds timeout);

/// One TCP health-check attempt: healthy when a connection to 127.0.0.1:`port` is
/// accepted within `timeout`; then closed at once.
[[nodiscard]] host_probe_outcome tcp_probe(int port, std::chrono::milliseconds timeout);

}  // namespace atrium::docker_adapter
