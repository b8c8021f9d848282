/// The browser-security helpers (adapters/http/browser_security.hpp) and the static file
/// resolver (adapters/http/static_files.hpp): the Cookie parser, the Origin check, the
/// cookie attributes, path resolution, hashed names, content types, gzip negotiation,
/// and loading a real web root from a temp directory.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "adapters/http/browser_security.hpp"
#include "adapters/http/static_files.hpp"

namespace {

using namespace atrium::http_adapter;
namespace fs = std::filesystem;

std::optional<std::string> session(std::string_view header) {
  auto v = cookie_value(header, k_session_cookie);
  REQUIRE(v.has_value());
  return *v;
}

struct temp_root {
  fs::path path;
  temp_root() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("atrium-web-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path / "web");
  }
  ~temp_root() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& rel, const std::string& bytes) const {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel, std::ios::binary) << bytes;
  }
};

}  // namespace

TEST_CASE("cookie_value: finds the session cookie among others, robustly", "[http][browser]") {
  CHECK(session("atrium_session=abc") == "abc");
  CHECK(session("theme=dark; atrium_session=abc; lang=en") == "abc");
  CHECK(session("  atrium_session = abc ;") == "abc");
  CHECK(session("atrium_session=\"abc\"") == "abc");
  CHECK(session("a=1, atrium_session=abc") == "abc");  // repeated Cookie fields joined by ", "
  CHECK(session("atrium_session=abc; atrium_session=abc") == "abc");
  CHECK_FALSE(session("").has_value());
  CHECK_FALSE(session("atrium_session").has_value());
  CHECK_FALSE(session("atrium_session=").has_value());
  CHECK_FALSE(session(";;;==;=;").has_value());
  CHECK_FALSE(session("Atrium_Session=abc").has_value());  // names are case-sensitive
  CHECK_FALSE(session("xatrium_session=abc").has_value());
  CHECK_FALSE(session("atrium_session=a\\b").has_value());  // not a cookie-octet
  CHECK_FALSE(session("atrium_session=a b").has_value());
  CHECK_FALSE(session("atrium_session=\xff\xfe").has_value());
  CHECK_FALSE(session("atrium_session=" + std::string(257, 'a')).has_value());
  CHECK(session("atrium_session=" + std::string(256, 'a')) == std::string(256, 'a'));
  std::string many;
  for (int i = 0; i < 5000; ++i) many += "c" + std::to_string(i) + "=v; ";
  CHECK(session(many + "atrium_session=abc") == "abc");
  auto dup = cookie_value("atrium_session=abc; atrium_session=def", k_session_cookie);
  REQUIRE_FALSE(dup.has_value());
  CHECK(dup.error().code == atrium::errc::invalid_argument);
}

TEST_CASE("cookie attributes and the security headers", "[http][browser]") {
  CHECK(session_cookie("tok", 86400, false) == "atrium_session=tok; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400");
  CHECK(session_cookie("tok", 60, true) == "atrium_session=tok; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
  CHECK(cleared_session_cookie(false) == "atrium_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
  std::vector<std::pair<std::string, std::string>> h;
  add_security_headers(h);
  REQUIRE(h.size() == 4);
  CHECK(h[0].first == "Content-Security-Policy");
  CHECK(h[0].second.find("script-src 'self';") != std::string::npos);
  CHECK(h[0].second.find("frame-ancestors 'none'") != std::string::npos);
}

TEST_CASE("origin_allowed: this server's own origin or an allowed one, nothing else", "[http][browser]") {
  const std::vector<std::string> none;
  CHECK(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", none));
  CHECK(origin_allowed("https://atrium.example", "atrium.example", none));
  CHECK(origin_allowed("HTTP://Atrium.Example", "atrium.example", none));
  CHECK_FALSE(origin_allowed("", "127.0.0.1:8080", none));
  CHECK_FALSE(origin_allowed("null", "127.0.0.1:8080", none));
  CHECK_FALSE(origin_allowed("http://127.0.0.1:8081", "127.0.0.1:8080", none));
  CHECK_FALSE(origin_allowed("http://127.0.0.1:8080.evil.example", "127.0.0.1:8080", none));
  CHECK_FALSE(origin_allowed("http://evil.example/127.0.0.1:8080", "127.0.0.1:8080", none));
  CHECK_FALSE(origin_allowed("ws://127.0.0.1:8080", "127.0.0.1:8080", none));
  CHECK_FALSE(origin_allowed("http://", "", none));
  const std::vector<std::string> allowed{*normalize_origin("https://Console.Example/")};
  CHECK(allowed[0] == "https://console.example");
  CHECK(origin_allowed("https://console.example", "127.0.0.1:8080", allowed));
  CHECK_FALSE(origin_allowed("http://console.example", "127.0.0.1:8080", allowed));
  CHECK_FALSE(normalize_origin("console.example").has_value());
  CHECK_FALSE(normalize_origin("https://").has_value());
  CHECK_FALSE(normalize_origin("https://a.example/path").has_value());
  CHECK_FALSE(normalize_origin("https://user@a.example").has_value());
  CHECK_FALSE(normalize_origin("javascript://a").has_value());
}

TEST_CASE("static_path: only plain relative names, traversal and encodings resolve to nothing", "[http][browser]") {
  CHECK(static_path("/") == "index.html");
  CHECK(static_path("/index.html?v=2") == "index.html");
  CHECK(static_path("/assets/app-3F2A9C1B.js") == "assets/app-3F2A9C1B.js");
  CHECK(static_path("/a%20b.txt") == "a b.txt");
  for (const auto* bad :
       {"",          "index.html", "//",     "/a//b",  "/..",   "/../x",   "/a/../b", "/%2e%2e/x",
        "/%2E%2E/x", "/a%2fb",     "/a%2Fb", "/a%5cb", "/a\\b", "/.env",   "/%2eenv", "/a/.git/config",
        "/a%00b",    "/a%",        "/a%2",   "/a%zz",  "/a%0a", "/assets/"}) {
    INFO(bad);
    CHECK_FALSE(static_path(bad).has_value());
  }
  CHECK_FALSE(static_path("/" + std::string(2000, 'a')).has_value());
}

TEST_CASE("hashed names, content types and gzip negotiation", "[http][browser]") {
  CHECK(hashed_name("assets/app-3F2A9C1B.js"));
  CHECK(hashed_name("app-ABCDEFGH.css"));
  CHECK(hashed_name("chunk-3F2A9C1B.js.map"));
  CHECK_FALSE(hashed_name("index.html"));
  CHECK_FALSE(hashed_name("app-3f2a9c1b.js"));  // lowercase is not esbuild's hash
  CHECK_FALSE(hashed_name("app-3F2A9C1.js"));   // 7 characters
  CHECK_FALSE(hashed_name("app-3F2A9C1B"));     // no extension
  CHECK_FALSE(hashed_name("3F2A9C1B.js"));
  CHECK(content_type_for("a.html") == "text/html; charset=utf-8");
  CHECK(content_type_for("a.mjs") == "text/javascript; charset=utf-8");
  CHECK(content_type_for("a.js.map") == "application/json");
  CHECK(content_type_for("a.woff2") == "font/woff2");
  CHECK(content_type_for("a.svg") == "image/svg+xml");
  CHECK(content_type_for("a.png") == "image/png");
  CHECK(content_type_for("a.txt") == "text/plain; charset=utf-8");
  CHECK(content_type_for("a.exe") == "application/octet-stream");
  CHECK(content_type_for("noext") == "application/octet-stream");
  CHECK(accepts_gzip("gzip"));
  CHECK(accepts_gzip("gzip, deflate, br"));
  CHECK(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
  CHECK(accepts_gzip("*"));
  CHECK_FALSE(accepts_gzip(""));
  CHECK_FALSE(accepts_gzip("identity"));
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("gzip;q=0.000, *"));
  CHECK_FALSE(accepts_gzip("*;q=0"));
}

TEST_CASE("web_root::load: files into memory, .gz as variants, limits enforced", "[http][browser]") {
  temp_root t;
  t.write("web/index.html", "<!doctype html>");
  t.write("web/app-3F2A9C1B.js", std::string(1000, 'x'));
  t.write("web/app-3F2A9C1B.js.gz", "gz");
  t.write("web/style.css", std::string(1000, 'y'));
  t.write("web/.hidden", "no");
  t.write("web/.dir/file.js", "no");
  t.write("outside.txt", "no");
  fs::create_symlink(t.path / "outside.txt", t.path / "web" / "out.txt");
  auto root = web_root::load(t.path / "web");
  REQUIRE(root.has_value());
  const auto& files = (*root)->files();
  CHECK(files.size() == 3);
  CHECK(files.contains("index.html"));
  CHECK_FALSE(files.contains("app-3F2A9C1B.js.gz"));
  CHECK_FALSE(files.contains("out.txt"));
  CHECK_FALSE(files.contains(".hidden"));
  CHECK(files.at("app-3F2A9C1B.js").gzip == "gz");
  CHECK(files.at("app-3F2A9C1B.js").cache_control == "public, max-age=31536000, immutable");
  CHECK(files.at("style.css").gzip.size() < 100);  // gzipped at load
  CHECK(files.at("index.html").gzip.empty());      // too small to gain
  CHECK((*root)->find("/") == &files.at("index.html"));
  CHECK((*root)->find("/out.txt") == nullptr);

  http_request req;
  req.headers["accept-encoding"] = "gzip";
  auto r = static_response(files.at("app-3F2A9C1B.js"), req);
  CHECK(r.status == 200);
  CHECK(r.body == "gz");
  req.headers["if-none-match"] = "\"x\", " + files.at("app-3F2A9C1B.js").gzip_etag;
  CHECK(static_response(files.at("app-3F2A9C1B.js"), req).status == 304);

  web_root_limits small;
  small.max_file_bytes = 999;
  auto big = web_root::load(t.path / "web", small);
  REQUIRE_FALSE(big.has_value());
  CHECK(big.error().message.find("over the limit") != std::string::npos);
  web_root_limits total;
  total.max_total_bytes = 1500;
  CHECK_FALSE(web_root::load(t.path / "web", total).has_value());
  CHECK_FALSE(web_root::load(t.path / "missing").has_value());
}
