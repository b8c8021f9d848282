/// HTTP semantics of every answer (adapters/http/http_semantics.hpp): media types, ETags,
/// gzip, 304, CORS headers, If-Match.

#include <catch2/catch.hpp>
#include <zlib.h>

#include "adapters/http/call.hpp"
#include "adapters/http/http_semantics.hpp"

namespace {

using namespace atrium::http_adapter;

const std::string* header(const http_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string gunzip(const std::string& in) {
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
  std::string out(in.size() * 50 + 1024, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(inflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

}  // namespace

TEST_CASE("http semantics: request bodies are application/json, parameters allowed", "[http][semantics]") {
  CHECK(json_media_type("application/json"));
  CHECK(json_media_type("Application/JSON; charset=utf-8"));
  CHECK(json_media_type(" application/json ;x=y"));
  CHECK_FALSE(json_media_type("application/jsonx"));
  CHECK_FALSE(json_media_type("text/plain"));
  CHECK_FALSE(refused_media_type("", 0));
  CHECK(refused_media_type("", 2));
  CHECK(refused_media_type("text/plain;charset=UTF-8", 2));
  CHECK(refused_media_type("text/plain", 0));
  CHECK_FALSE(refused_media_type("application/json; charset=utf-8", 10));
}

TEST_CASE("http semantics: a 200 to GET gets an ETag, gzip when asked, 304 when it matches", "[http][semantics]") {
  const std::string body = "{\"projects\":[" + std::string(3000, ' ') + "]}";
  representation_request q{"GET", "gzip, br", "", std::nullopt, false};
  http_response r{200, body, "application/json", {}};
  finish_representation(r, q);
  REQUIRE(header(r, "Content-Encoding") != nullptr);
  CHECK(gunzip(r.body) == body);
  const auto tag = *header(r, "ETag");
  CHECK(tag.ends_with("-gz\""));
  CHECK(*header(r, "Vary") == "Accept-Encoding");

  http_response plain{200, body, "application/json", {}};
  finish_representation(plain, representation_request{"GET", "gzip;q=0", "", std::nullopt, false});
  CHECK(header(plain, "Content-Encoding") == nullptr);
  CHECK(plain.body == body);
  CHECK(*header(plain, "ETag") == body_etag(body));

  http_response again{200, body, "application/json", {}};
  finish_representation(again, representation_request{"HEAD", "gzip", "\"other\", " + tag, std::nullopt, false});
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(*header(again, "ETag") == tag);

  // A single resource keeps its version tag; its gzip variant is "<version>-gz".
  http_response one{200, body, "application/json", {{"ETag", "\"7\""}}};
  finish_representation(one, q);
  CHECK(*header(one, "ETag") == "\"7-gz\"");
  // Small bodies, other methods and other statuses are left alone.
  http_response small{200, "{}", "application/json", {}};
  finish_representation(small, q);
  CHECK(header(small, "Content-Encoding") == nullptr);
  CHECK(header(small, "Vary") == nullptr);
  http_response post{201, body, "application/json", {}};
  finish_representation(post, representation_request{"POST", "gzip", "*", std::nullopt, false});
  CHECK(post.status == 201);
  CHECK(header(post, "ETag") == nullptr);
}

TEST_CASE("http semantics: CORS headers only for a listed origin, 429 has Retry-After", "[http][semantics]") {
  const std::vector<std::string> allowed{"https://app.example"};
  CHECK(listed_origin("https://APP.example", allowed) == std::optional<std::string>("https://app.example"));
  CHECK_FALSE(listed_origin("https://evil.example", allowed));
  CHECK_FALSE(listed_origin("null", allowed));
  CHECK_FALSE(listed_origin("https://app.example", {}));
  http_response r{200, "{}", "application/json", {}};
  finish_representation(r, representation_request{"GET", "", "", "https://app.example", true});
  CHECK(*header(r, "Access-Control-Allow-Origin") == "https://app.example");
  CHECK(*header(r, "Access-Control-Allow-Credentials") == "true");
  CHECK(header(r, "Access-Control-Expose-Headers")->find("ETag") != std::string::npos);
  CHECK(*header(r, "Vary") == "Origin");
  http_response other{429, "{}", "application/json", {}};
  finish_representation(other, representation_request{"GET", "", "", std::nullopt, true});
  CHECK(header(other, "Access-Control-Allow-Origin") == nullptr);
  CHECK(*header(other, "Retry-After") == "1");
  const auto pre = preflight_headers("https://app.example", "GET, HEAD, OPTIONS");
  CHECK(pre.front() == std::pair<std::string, std::string>{"Access-Control-Allow-Origin", "https://app.example"});
}

TEST_CASE("http semantics: If-None-Match and If-Match lists", "[http][semantics]") {
  CHECK(if_none_match_lists("W/\"3\"", "\"3\""));
  CHECK(if_none_match_lists(" \"1\" , * ", "\"3\""));
  std::string many;
  for (int i = 0; i < 100; ++i) many += "\"x\", ";
  CHECK_FALSE(if_none_match_lists(many + "\"3\"", "\"3\""));  // past k_max_listed_tags
  CHECK(parse_if_match("*").value() == std::nullopt);
  CHECK(parse_if_match("\"3-gz\"").value() == std::optional<std::uint64_t>(3));
  CHECK(parse_if_match("W/\"4\"").value() == std::optional<std::uint64_t>(4));
  CHECK_FALSE(parse_if_match("nope"));
  CHECK(parse_if_match("").error().code == atrium::errc::precondition_required);
}
