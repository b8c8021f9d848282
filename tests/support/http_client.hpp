#pragma once
/// Test support: a blocking HTTP/1.1 client over loopback (Boost.Beast), one
/// connection per request, for driving the real atriumd.

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace atrium::test {

/// A response: status, lowercase header names, raw body, and the body parsed as JSON
/// (null when it is not JSON).
struct http_reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
  nlohmann::json json;
};

/// A client for one server address.
class http_client {
 public:
  /// `address` is "host:port".
  explicit http_client(std::string address);
  /// Sets the bearer token sent with every request ("" for none).
  void token(std::string t) { token_ = std::move(t); }
  /// Sends a request; throws std::runtime_error when the connection fails.
  http_reply request(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {}) const;
  http_reply get(const std::string& target) const { return request("GET", target); }
  http_reply post(const std::string& target, const nlohmann::json& body) const {
    return request("POST", target, body.dump());
  }

 private:
  std::string host_;
  std::string port_;
  std::string token_;
};

}  // namespace atrium::test
