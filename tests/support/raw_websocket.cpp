#include "tests/support/raw_websocket.hpp"

#include <random>

namespace atrium::test {
namespace {

using clock_type = std::chrono::steady_clock;

std::uint32_t random_key() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return rng();
}

}  // namespace

std::string ws_encode(const ws_frame_spec& f) {
  std::string out;
  out.push_back(static_cast<char>((f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0F)));
  const std::uint64_t len = f.length.value_or(f.payload.size());
  const int form = f.length_form.value_or(len < 126 ? 7 : len <= 0xFFFF ? 16 : 64);
  const char mask_bit = f.mask ? static_cast<char>(0x80) : 0;
  if (form == 7) {
    out.push_back(static_cast<char>(mask_bit | static_cast<char>(len & 0x7F)));
  } else if (form == 16) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>((len >> 8) & 0xFF));
    out.push_back(static_cast<char>(len & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xFF));
  }
  if (f.mask) {
    const auto key = random_key();
    char k[4] = {static_cast<char>(key >> 24), static_cast<char>(key >> 16), static_cast<char>(key >> 8),
                 static_cast<char>(key)};
    out.append(k, 4);
    for (std::size_t i = 0; i < f.payload.size(); ++i) out.push_back(static_cast<char>(f.payload[i] ^ k[i % 4]));
  } else {
    out += f.payload;
  }
  return out;
}

raw_websocket::raw_websocket(const std::string& address, const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             std::chrono::milliseconds deadline, std::size_t rcvbuf) {
  try {
    socket_.emplace(address, rcvbuf);
  } catch (const std::exception&) {
    refusal_end_ = raw_end::refused;
    return;
  }
  auto all = headers;
  all.emplace_back("Upgrade", "websocket");
  all.emplace_back("Connection", "Upgrade");
  all.emplace_back("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  all.emplace_back("Sec-WebSocket-Version", "13");
  if (!socket_->send_all(raw_request("GET", target, all, {}, false), deadline)) {
    refusal_end_ = raw_end::reset;
    return;
  }
  auto r = socket_->read_responses(1, deadline);
  if (r.responses.empty()) {
    refusal_end_ = r.end;
    return;
  }
  if (r.responses.front().status != 101) {
    refusal_ = r.responses.front();
    return;
  }
  buf_ = std::move(socket_->buffer());
  socket_->buffer().clear();
  ok_ = true;
}

bool raw_websocket::send_raw(std::string_view bytes) { return socket_ && socket_->send_all(bytes); }

bool raw_websocket::send_frame(const ws_frame_spec& f) { return send_raw(ws_encode(f)); }

bool raw_websocket::send_text(std::string_view text) {
  return send_frame(ws_frame_spec{.opcode = ws_text, .payload = std::string(text)});
}

ws_event raw_websocket::next(std::chrono::milliseconds wait) {
  const auto until = clock_type::now() + wait;
  while (true) {
    // A complete frame in the buffer?
    if (buf_.size() >= 2) {
      const auto b0 = static_cast<unsigned char>(buf_[0]), b1 = static_cast<unsigned char>(buf_[1]);
      std::size_t header = 2;
      std::uint64_t len = b1 & 0x7F;
      if (len == 126) {
        header = 4;
        if (buf_.size() >= 4) len = (static_cast<unsigned char>(buf_[2]) << 8) | static_cast<unsigned char>(buf_[3]);
      } else if (len == 127) {
        header = 10;
        if (buf_.size() >= 10) {
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buf_[2 + i]);
        }
      }
      if (b1 & 0x80) header += 4;  // a server must not mask, but tolerate it
      if (buf_.size() >= header && buf_.size() >= header + len) {
        std::string payload = buf_.substr(header, len);
        if (b1 & 0x80) {
          for (std::size_t i = 0; i < payload.size(); ++i)
            payload[i] = static_cast<char>(payload[i] ^ buf_[header - 4 + i % 4]);
        }
        buf_.erase(0, header + len);
        const std::uint8_t op = b0 & 0x0F;
        const bool fin = b0 & 0x80;
        if (op == ws_ping) {
          send_frame(ws_frame_spec{.opcode = ws_pong, .payload = payload});
          continue;
        }
        if (op == ws_pong) continue;
        if (op == ws_close) {
          ws_event e;
          e.what = ws_event::closed;
          if (payload.size() >= 2) {
            e.close_code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                                      static_cast<unsigned char>(payload[1]));
            e.close_reason = payload.substr(2);
          }
          last_ = e;
          return e;
        }
        if (op == ws_continuation) {
          partial_ += payload;
        } else {
          partial_ = std::move(payload);
          partial_opcode_ = op;
        }
        if (!fin) continue;
        ws_event e;
        e.what = ws_event::message;
        e.opcode = partial_opcode_;
        e.payload = std::move(partial_);
        partial_.clear();
        return e;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
    if (left.count() <= 0) {
      last_ = ws_event{.what = ws_event::timeout};
      return last_;
    }
    std::optional<raw_end> end;
    auto got = socket_->recv_some(left, &end);
    if (!got.empty()) {
      buf_ += got;
      continue;
    }
    if (end == raw_end::closed) {
      last_ = ws_event{.what = ws_event::closed};
      return last_;
    }
    if (end == raw_end::reset) {
      last_ = ws_event{.what = ws_event::reset};
      return last_;
    }
  }
}

std::optional<nlohmann::json> raw_websocket::await(const std::function<bool(const nlohmann::json&)>& pred,
                                                   std::chrono::milliseconds deadline,
                                                   const std::function<void(const nlohmann::json&)>& skipped) {
  const auto until = clock_type::now() + deadline;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
    if (left.count() <= 0) {
      last_ = ws_event{.what = ws_event::timeout};
      return std::nullopt;
    }
    auto e = next(left);
    if (e.what != ws_event::message) return std::nullopt;
    auto j = nlohmann::json::parse(e.payload, nullptr, false);
    if (j.is_discarded()) continue;
    if (pred(j)) return j;
    if (skipped) skipped(j);
  }
}

void raw_websocket::close() {
  if (!ok_ || !socket_) return;
  std::string code("\x03\xE8", 2);
  send_frame(ws_frame_spec{.opcode = ws_close, .payload = code});
  for (int i = 0; i < 50; ++i) {
    auto e = next(std::chrono::milliseconds(100));
    if (e.what != ws_event::message) break;
  }
  socket_->close();
}

}  // namespace atrium::test
