// Fuzz target: the browser-facing parsers of the HTTP adapter (issue 17): the static
// file path resolver (`static_path`, adapters/http/static_files.hpp), the Cookie parser
// (`cookie_value`), the Origin check and `--allowed-origin` normalization, and the
// Accept-Encoding / If-None-Match negotiation of a static answer
// (adapters/http/browser_security.hpp). The first byte picks the parser; the rest is
// its input. Properties:
//   static_path: a key is never empty, has no empty, `.`-led, `/`-holding or control
//     segment, no `\`, and resolves to itself again when it holds no `%`, `?` or `#`;
//   cookie_value: a value is non-empty, at most 256 bytes of cookie-octets, and occurs
//     in the input;
//   normalize_origin: the result is lowercase http(s)://…, normalizes to itself, and is
//     allowed as an origin against itself; origin_allowed with no list and a host is
//     true only for http(s)://host;
//   static_response: never throws; 304 only with an empty body;
//   finish_representation (issue 21; input: method, Accept-Encoding, If-None-Match and a
//     body, split at newlines): never throws; 304 only with an empty body and an ETag; a
//     gzip answer gunzips to the body it replaced (checked by its size bound) and has an
//     ETag ending `-gz"`; CORS headers only for a listed origin;
//   refused_media_type / json_media_type / parse_if_match (issue 21): JSON types are
//     accepted, a body without a type is refused, If-Match never throws.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/http/browser_security.hpp"
#include "adapters/http/call.hpp"
#include "adapters/http/http_semantics.hpp"
#include "adapters/http/static_files.hpp"

namespace {

using namespace atrium::http_adapter;

[[noreturn]] void finding(const char* what, std::string_view in, std::string_view out) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input:  %.*s\n  output: %.*s\n", what,
               static_cast<int>(in.size()), in.data(), static_cast<int>(out.size()), out.data());
  std::abort();
}

void check_path(std::string_view in) {
  const auto key = static_path(in);
  if (!key) return;
  if (key->empty()) finding("empty key", in, *key);
  std::string_view rest = *key;
  while (true) {
    const auto slash = rest.find('/');
    const auto seg = rest.substr(0, slash);
    if (seg.empty() || seg.front() == '.') finding("empty or dot segment", in, *key);
    for (const unsigned char ch : seg) {
      if (ch < 0x20 || ch == 0x7f || ch == '\\') finding("control byte or backslash in a segment", in, *key);
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (key->find_first_of("%?#") == std::string::npos && *key != "index.html") {
    const auto again = static_path("/" + *key);
    if (again != key) finding("key does not resolve to itself", in, *key);
  }
}

void check_cookie(std::string_view in) {
  const auto v = cookie_value(in, k_session_cookie);
  if (!v || !*v) return;
  const auto& s = **v;
  if (s.empty() || s.size() > k_max_session_cookie_bytes) finding("cookie value of a bad size", in, s);
  for (const unsigned char ch : s) {
    if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == ',' || ch == ';' || ch == '\\') {
      finding("cookie value outside cookie-octet", in, s);
    }
  }
  if (in.find(s) == std::string_view::npos) finding("cookie value not in the input", in, s);
}

void check_origin(std::string_view in) {
  if (auto n = normalize_origin(in)) {
    if (!n->starts_with("http://") && !n->starts_with("https://")) finding("origin without http(s)", in, *n);
    for (const unsigned char ch : *n) {
      if (ch >= 'A' && ch <= 'Z') finding("origin not lowercase", in, *n);
    }
    auto again = normalize_origin(*n);
    if (!again || *again != *n) finding("origin does not normalize to itself", in, *n);
    if (!origin_allowed(*n, "", {*n})) finding("normalized origin not allowed against itself", in, *n);
  }
  // The input split at its first newline: an Origin value and a Host value.
  const auto nl = in.find('\n');
  const auto origin = in.substr(0, nl);
  const auto host = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  if (origin_allowed(origin, host, {})) {
    const std::string a = "http://" + std::string(host), b = "https://" + std::string(host);
    if (host.empty() || (origin.size() != a.size() && origin.size() != b.size())) {
      finding("origin allowed that is not http(s)://host", in, origin);
    }
  }
}

void check_negotiation(std::string_view in) {
  static const static_file file{
      std::string(300, 'x'), "gz", "text/plain; charset=utf-8", "no-cache", "\"e\"", "\"e-gz\""};
  const auto nl = in.find('\n');
  http_request req;
  req.headers["accept-encoding"] = std::string(in.substr(0, nl));
  if (nl != std::string_view::npos) req.headers["if-none-match"] = std::string(in.substr(nl + 1));
  const auto r = static_response(file, req);
  if (r.status == 304 && !r.body.empty()) finding("304 with a body", in, r.body);
  if (r.status != 304 && r.status != 200) finding("status neither 200 nor 304", in, std::to_string(r.status));
}

std::string_view next_line(std::string_view& in) {
  const auto nl = in.find('\n');
  const auto line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  return line;
}

const std::string* find_header(const http_response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

void check_representation(std::string_view in) {
  representation_request q;
  q.method = std::string(next_line(in));
  q.accept_encoding = std::string(next_line(in));
  q.if_none_match = std::string(next_line(in));
  q.cors_configured = true;
  http_response r{200, std::string(in), "application/json", {}};
  // Half the inputs carry a version tag, as a single resource's answer does.
  if (!in.empty() && (in.front() & 1) != 0) r.headers.emplace_back("ETag", "\"7\"");
  const auto size = r.body.size();
  finish_representation(r, q);
  if (find_header(r, "Access-Control-Allow-Origin") != nullptr) finding("CORS for an unlisted origin", in, "");
  const auto* tag = find_header(r, "ETag");
  const bool safe = q.method == "GET" || q.method == "HEAD";
  if (!safe) {
    if (r.status != 200 || r.body.size() != size) finding("an unsafe method's answer changed", in, r.body);
    return;
  }
  if (tag == nullptr) finding("a 200 to GET without an ETag", in, "");
  if (r.status == 304 && !r.body.empty()) finding("304 with a body", in, r.body);
  const auto* coding = find_header(r, "Content-Encoding");
  if (coding != nullptr) {
    if (r.status == 304) finding("304 with Content-Encoding", in, *coding);
    if (!tag->ends_with("-gz\"")) finding("gzip answer without its own tag", in, *tag);
    if (size < k_min_gzip_response_bytes || r.body.size() >= size) finding("gzip of a small body", in, *tag);
  }
}

void check_media(std::string_view in) {
  const auto type = next_line(in);
  const bool json = json_media_type(type);
  if (json && refused_media_type(type, in.size())) finding("a JSON type refused", type, "");
  if (type.empty() && !in.empty() && !refused_media_type(type, in.size())) finding("a typeless body accepted", in, "");
  auto v = parse_if_match(std::string(in));
  if (v && *v && std::string(in).find_first_of("0123456789") == std::string::npos) {
    finding("If-Match version without a digit", in, std::to_string(**v));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      check_path(in);
      break;
    case 1:
      check_cookie(in);
      break;
    case 2:
      check_origin(in);
      break;
    case 3:
      check_negotiation(in);
      break;
    case 4:
      check_representation(in);
      break;
    default:
      check_media(in);
      break;
  }
  return 0;
}
