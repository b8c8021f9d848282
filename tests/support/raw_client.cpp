#include "tests/support/raw_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace atrium::test {
namespace {

using clock_type = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int connect_to(const std::string& address, std::size_t rcvbuf, const std::string& source = {}) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("bad address " + address);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    throw std::runtime_error("bad host in " + address);
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (rcvbuf > 0) {
    const int v = static_cast<int>(rcvbuf);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("bind " + source + ": " + std::strerror(e));
    }
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("connect " + address + ": " + std::strerror(e));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

int ms_left(clock_type::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

/// Reads a CRLF-terminated line at `pos`; npos when incomplete.
std::size_t line_end(const std::string& buf, std::size_t pos) { return buf.find("\r\n", pos); }

}  // namespace

const char* to_string(raw_end e) {
  switch (e) {
    case raw_end::answered:
      return "answered";
    case raw_end::closed:
      return "closed without an answer";
    case raw_end::reset:
      return "reset";
    case raw_end::timeout:
      return "no answer before the deadline (hang)";
    case raw_end::refused:
      return "connection refused";
  }
  return "?";
}

bool parse_raw_response(std::string& buf, raw_response& out, bool eof, bool head) {
  const auto head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  raw_response r;
  // Status line: HTTP/1.1 SP status SP reason.
  const auto first = buf.find("\r\n");
  const auto status_line = buf.substr(0, first);
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/")) {
    r.status = 0;
  } else {
    r.status = static_cast<unsigned>(std::atoi(status_line.c_str() + 9));
  }
  std::size_t pos = first + 2;
  while (pos < head_end) {
    const auto e = buf.find("\r\n", pos);
    const auto line = buf.substr(pos, e - pos);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      r.headers[lower(line.substr(0, colon))] = value;
    }
    pos = e + 2;
  }
  std::size_t body_start = head_end + 4;
  std::size_t consumed = 0;
  const bool no_body = head || r.status / 100 == 1 || r.status == 204 || r.status == 304;
  if (r.status == 101) {
    consumed = body_start;  // the connection speaks another protocol from here
  } else if (no_body) {
    consumed = body_start;
  } else if (auto te = r.headers.find("transfer-encoding");
             te != r.headers.end() && lower(te->second).find("chunked") != std::string::npos) {
    std::size_t p = body_start;
    std::string body;
    while (true) {
      const auto le = line_end(buf, p);
      if (le == std::string::npos) return false;
      const auto size = std::strtoull(buf.substr(p, le - p).c_str(), nullptr, 16);
      p = le + 2;
      if (size == 0) {
        // Trailers until an empty line.
        while (true) {
          const auto te2 = line_end(buf, p);
          if (te2 == std::string::npos) return false;
          const bool empty = te2 == p;
          p = te2 + 2;
          if (empty) break;
        }
        break;
      }
      if (buf.size() < p + size + 2) return false;
      body.append(buf, p, size);
      p += size + 2;
    }
    r.body = std::move(body);
    consumed = p;
  } else if (auto cl = r.headers.find("content-length"); cl != r.headers.end()) {
    const auto n = std::strtoull(cl->second.c_str(), nullptr, 10);
    if (buf.size() < body_start + n) return false;
    r.body = buf.substr(body_start, n);
    consumed = body_start + n;
  } else {
    if (!eof) return false;  // delimited by the close
    r.body = buf.substr(body_start);
    consumed = buf.size();
  }
  buf.erase(0, consumed);
  r.json = nlohmann::json::parse(r.body, nullptr, false);
  if (r.json.is_discarded()) r.json = nullptr;
  out = std::move(r);
  return true;
}

raw_socket::raw_socket(const std::string& address, std::size_t rcvbuf) : fd_(connect_to(address, rcvbuf)) {}

raw_socket::raw_socket(const std::string& address, std::size_t rcvbuf, const std::string& source)
    : fd_(connect_to(address, rcvbuf, source)) {}

raw_socket::~raw_socket() { close(); }

raw_socket::raw_socket(raw_socket&& other) noexcept : fd_(other.fd_), buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

raw_socket& raw_socket::operator=(raw_socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    buffer_ = std::move(other.buffer_);
    other.fd_ = -1;
  }
  return *this;
}

void raw_socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void raw_socket::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool raw_socket::send_all(std::string_view bytes, std::chrono::milliseconds deadline) {
  const auto until = clock_type::now() + deadline;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    // Keep reading meanwhile: a server that answers early must not deadlock us.
    pollfd p{fd_, POLLOUT | POLLIN, 0};
    if (::poll(&p, 1, std::min(ms_left(until), 100)) < 0 && errno != EINTR) return false;
    if (p.revents & POLLIN) {
      char tmp[65536];
      const auto r = ::recv(fd_, tmp, sizeof tmp, 0);
      if (r > 0) buffer_.append(tmp, static_cast<std::size_t>(r));
      if (r == 0) return false;
    }
    if (p.revents & (POLLERR | POLLHUP) && !(p.revents & POLLOUT)) return false;
    if (clock_type::now() >= until) return false;
  }
  return true;
}

std::string raw_socket::recv_some(std::chrono::milliseconds wait, std::optional<raw_end>* end) {
  std::string out;
  if (!buffer_.empty()) {
    out.swap(buffer_);
    return out;
  }
  pollfd p{fd_, POLLIN, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(wait.count()));
  if (rc <= 0) return out;
  char tmp[65536];
  const auto n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n > 0) {
    out.assign(tmp, static_cast<std::size_t>(n));
  } else if (end != nullptr) {
    if (n == 0) *end = raw_end::closed;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) *end = raw_end::reset;
  }
  return out;
}

raw_result raw_socket::read_responses(std::size_t n, std::chrono::milliseconds deadline, std::size_t heads) {
  const auto start = clock_type::now();
  const auto until = start + deadline;
  raw_result out;
  bool eof = false;
  while (true) {
    raw_response r;
    while (out.responses.size() < n && parse_raw_response(buffer_, r, eof, out.responses.size() < heads)) {
      const bool upgraded = r.status == 101;
      out.responses.push_back(std::move(r));
      if (upgraded) break;
    }
    if (out.responses.size() >= n || (!out.responses.empty() && out.responses.back().status == 101)) {
      out.end = raw_end::answered;
      break;
    }
    if (eof) {
      out.end = raw_end::closed;
      break;
    }
    const int left = ms_left(until);
    if (left == 0) {
      out.end = raw_end::timeout;
      break;
    }
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, left);
    if (rc < 0 && errno != EINTR) {
      out.end = raw_end::reset;
      break;
    }
    if (rc <= 0) continue;
    char tmp[65536];
    const auto got = ::recv(fd_, tmp, sizeof tmp, 0);
    if (got > 0) {
      buffer_.append(tmp, static_cast<std::size_t>(got));
    } else if (got == 0) {
      eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // A reset: whatever complete response arrived before it still counts.
      raw_response last;
      while (out.responses.size() < n && parse_raw_response(buffer_, last, true, out.responses.size() < heads)) {
        out.responses.push_back(last);
      }
      out.end = out.responses.size() >= n ? raw_end::answered : raw_end::reset;
      break;
    }
  }
  out.leftover = buffer_;
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
  return out;
}

raw_result raw_exchange(const std::string& address, std::string_view bytes, const raw_options& o) {
  const auto start = clock_type::now();
  raw_result out;
  std::optional<raw_socket> s;
  try {
    s.emplace(address, o.rcvbuf);
  } catch (const std::exception&) {
    out.end = raw_end::refused;
    return out;
  }
  // A send that fails (the server answered and closed early) still lets us read the answer.
  (void)s->send_all(bytes, o.deadline);
  if (o.abort_after_send) {
    s->close();
    out.end = raw_end::closed;
    return out;
  }
  if (o.half_close) s->shutdown_write();
  const auto left = o.deadline - std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
  out = s->read_responses(o.responses, std::max(left, std::chrono::milliseconds(1)), o.head_responses);
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
  return out;
}

std::string raw_request(std::string_view method, std::string_view target,
                        const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body,
                        bool content_length) {
  std::string out;
  out.reserve(256 + body.size());
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  bool framed = false;
  for (const auto& [k, v] : headers) {
    const auto name = lower(k);
    if (name == "content-length" || name == "transfer-encoding") framed = true;
    out.append(k).append(": ").append(v).append("\r\n");
  }
  if (content_length && !framed) out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  out.append("\r\n").append(body);
  return out;
}

}  // namespace atrium::test
