#pragma once
/// Test support: a WebSocket client (RFC 6455) written on `raw_socket`, so that it can
/// send what a well-behaved client never would: unmasked or reserved-bit frames, unknown
/// opcodes, fragmented or oversized control frames, lying 64-bit lengths, invalid UTF-8
/// in text frames. It reassembles the server's fragmented messages, answers its pings,
/// and reports a close frame's code.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/raw_client.hpp"

namespace atrium::test {

/// Opcodes (RFC 6455 §5.2).
enum ws_opcode : std::uint8_t {
  ws_continuation = 0,
  ws_text = 1,
  ws_binary = 2,
  ws_close = 8,
  ws_ping = 9,
  ws_pong = 10
};

/// One frame as the client sends it.
struct ws_frame_spec {
  std::uint8_t opcode = ws_text;
  std::string payload;
  bool fin = true;
  bool mask = true;                     ///< clients must mask (§5.3)
  std::uint8_t rsv = 0;                 ///< RSV1-3 bits (0-7); must be 0 without an extension
  std::optional<std::uint64_t> length;  ///< the length to announce, if not the payload's
  std::optional<int> length_form;       ///< force the 7/16/64-bit length form (7, 16 or 64)
};

/// Encodes `f` as wire bytes.
[[nodiscard]] std::string ws_encode(const ws_frame_spec& f);

/// What `raw_websocket::next` saw.
struct ws_event {
  enum kind { message, closed, reset, timeout } what = timeout;
  std::uint8_t opcode = 0;                  ///< of a message: text or binary
  std::string payload;                      ///< a message's data
  std::optional<std::uint16_t> close_code;  ///< a close frame's code (none when it had no payload)
  std::string close_reason;
};

/// A client WebSocket connection.
class raw_websocket {
 public:
  /// Connects and sends the upgrade for `target` with `headers` (e.g. Authorization).
  /// When the server does not answer 101, `ok()` is false and `refusal()` holds its
  /// response (or the way the connection ended in `refusal_end()`).
  raw_websocket(const std::string& address, const std::string& target,
                const std::vector<std::pair<std::string, std::string>>& headers,
                std::chrono::milliseconds deadline = std::chrono::seconds(10), std::size_t rcvbuf = 0);

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const std::optional<raw_response>& refusal() const { return refusal_; }
  [[nodiscard]] raw_end refusal_end() const { return refusal_end_; }

  /// Sends one text message (masked, one frame). False if the connection is gone.
  bool send_text(std::string_view text);
  /// Sends a JSON message.
  bool send_json(const nlohmann::json& j) { return send_text(j.dump()); }
  /// Sends a frame as specified.
  bool send_frame(const ws_frame_spec& f);
  /// Sends raw bytes.
  bool send_raw(std::string_view bytes);

  /// The next message (pings are answered, pongs skipped), or how the connection ended;
  /// waits at most `wait`.
  ws_event next(std::chrono::milliseconds wait = std::chrono::seconds(10));

  /// Reads messages until a JSON text message for which `pred` holds; messages that do
  /// not match are passed to `skipped` (if given). nullopt on close, reset or deadline
  /// (then `last()` says which).
  std::optional<nlohmann::json> await(const std::function<bool(const nlohmann::json&)>& pred,
                                      std::chrono::milliseconds deadline = std::chrono::seconds(10),
                                      const std::function<void(const nlohmann::json&)>& skipped = nullptr);
  /// The result of the last `next` that ended the connection or timed out.
  [[nodiscard]] const ws_event& last() const { return last_; }

  /// Sends a close frame (code 1000) and waits briefly for the server's.
  void close();
  raw_socket& socket() { return *socket_; }

 private:
  std::optional<raw_socket> socket_;
  bool ok_ = false;
  std::optional<raw_response> refusal_;
  raw_end refusal_end_ = raw_end::answered;
  std::string buf_;
  std::string partial_;  // a fragmented message being reassembled
  std::uint8_t partial_opcode_ = 0;
  ws_event last_;
};

}  // namespace atrium::test
