/// The web console's serving half and browser security end to end against the real
/// atriumd (issue 17, points 2 and 3): static files from a temp web root (content types,
/// caching, gzip, 304, HEAD, traversal), the security headers, the cookie session
/// (login, `GET /v1/auth/session`, logout) and the Origin check of cookie-authenticated
/// changes, WebSockets and SSE streams.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"
#include "tests/support/raw_client.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* k_csp =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'";
constexpr const char* k_asset = "assets/app-3F2A9C1B.js";
constexpr const char* k_asset_gz = "\x1f\x8b pretend-gzip-bytes-of-the-build";

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

/// A web root as esbuild leaves it, plus what must never be served.
struct console_files {
  fs::path root;
  std::string index = "<!doctype html><title>Atrium</title><script src=\"/assets/app-3F2A9C1B.js\"></script>";
  std::string script = "console.log('atrium');\n";
  std::string style;

  explicit console_files(const fs::path& dir) : root(dir / "web") {
    for (int i = 0; i < 64; ++i) style += ".cell-" + std::to_string(i) + " { margin: 0; padding: 4px; }\n";
    write(root / "index.html", index);
    write(root / k_asset, script);
    write(root / (std::string(k_asset) + ".gz"), k_asset_gz);
    write(root / "style.css", style);  // no .gz: gzipped at start
    write(root / "favicon.ico", "\0\0\1\0");
    write(root / ".env", "SECRET=1");
    write(root / ".git" / "config", "[core]");
    write(dir / "outside" / "secret.txt", "outside the root");
    fs::create_symlink(dir / "outside" / "secret.txt", root / "leak.txt");
    fs::create_symlink(dir / "outside", root / "outdir");
    fs::create_symlink(root / "index.html", root / "inner.html");
  }
};

/// A request with `Host` set to the server's address, as a browser sends it.
http_reply browser(const atriumd_server& s, const std::string& method, const std::string& target,
                   std::map<std::string, std::string> headers = {}, const std::string& body = "") {
  headers.emplace("Host", s.address);
  if (!body.empty()) headers.emplace("Content-Type", "application/json");
  return s.client().request(method, target, body, headers);
}

/// The status line and lowercase headers of the answer to raw `bytes` (read up to the
/// blank line only: fine for HEAD, 101 and error answers).
struct head_reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;
  std::string rest;
};
head_reply raw_head(const atriumd_server& s, const std::string& bytes) {
  raw_socket sock(s.address);
  REQUIRE(sock.send_all(bytes));
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    got += sock.recv_some(std::chrono::milliseconds(200));
  }
  const auto end = got.find("\r\n\r\n");
  INFO(got);
  REQUIRE(end != std::string::npos);
  head_reply out;
  out.status = static_cast<unsigned>(std::stoul(got.substr(9, 3)));
  std::size_t at = got.find("\r\n") + 2;
  while (at < end) {
    const auto eol = got.find("\r\n", at);
    const auto line = got.substr(at, eol - at);
    const auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    at = eol + 2;
  }
  // Whatever arrives soon after the header (a HEAD answer must have nothing).
  out.rest = got.substr(end + 4) + sock.recv_some(std::chrono::milliseconds(300));
  return out;
}

/// The session token of a `Set-Cookie: atrium_session=…` value.
std::string cookie_token(const std::string& set_cookie) {
  const auto eq = set_cookie.find('=');
  return set_cookie.substr(eq + 1, set_cookie.find(';') - eq - 1);
}

/// Signs in as the bootstrap admin with `cookie: true` from the server's own origin;
/// returns the `Cookie` header value.
std::string cookie_login(const atriumd_server& s) {
  auto r = browser(s, "POST", "/v1/auth/login", {{"Origin", "http://" + s.address}},
                   json{{"username", "admin"}, {"password", k_admin_password}, {"cookie", true}}.dump());
  INFO(r.body);
  REQUIRE(r.status == 200);
  return "atrium_session=" + cookie_token(r.headers.at("set-cookie"));
}

std::string websocket_upgrade(const atriumd_server& s, const std::string& cookie, const std::string& origin) {
  std::string req = "GET /v1/ws HTTP/1.1\r\nHost: " + s.address +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: " +
                    cookie + "\r\n";
  if (!origin.empty()) req += "Origin: " + origin + "\r\n";
  return req + "\r\n";
}

}  // namespace

TEST_CASE("the web console's files are served from memory with types, caching, gzip and ETags", "[e2e][browser]") {
  temp_dir dir;
  console_files files(dir.path());
  atriumd_server server(dir.path(), {"--web-root", files.root.string()});

  SECTION("/ and /index.html: the index, no-cache, security headers") {
    for (const auto* target : {"/", "/index.html", "/?x=1"}) {
      auto r = browser(server, "GET", target);
      INFO(target << " " << r.status << " " << r.body);
      CHECK(r.status == 200);
      CHECK(r.body == files.index);
      CHECK(r.headers["content-type"] == "text/html; charset=utf-8");
      CHECK(r.headers["cache-control"] == "no-cache");
      CHECK(r.headers["content-security-policy"] == k_csp);
      CHECK(r.headers["x-content-type-options"] == "nosniff");
      CHECK(r.headers["referrer-policy"] == "no-referrer");
      CHECK(r.headers["x-frame-options"] == "DENY");
      CHECK_FALSE(r.headers["etag"].empty());
    }
  }
  SECTION("a hashed asset: immutable; its .gz when gzip is accepted") {
    auto plain = browser(server, "GET", std::string("/") + k_asset);
    CHECK(plain.status == 200);
    CHECK(plain.body == files.script);
    CHECK(plain.headers["content-type"] == "text/javascript; charset=utf-8");
    CHECK(plain.headers["cache-control"] == "public, max-age=31536000, immutable");
    CHECK(plain.headers["vary"] == "Accept-Encoding");
    CHECK(plain.headers.count("content-encoding") == 0);

    auto gz = browser(server, "GET", std::string("/") + k_asset, {{"Accept-Encoding", "br, gzip;q=0.8"}});
    CHECK(gz.status == 200);
    CHECK(gz.body == k_asset_gz);
    CHECK(gz.headers["content-encoding"] == "gzip");
    CHECK(gz.headers["vary"] == "Accept-Encoding");
    CHECK(gz.headers["etag"] != plain.headers["etag"]);

    auto refused = browser(server, "GET", std::string("/") + k_asset, {{"Accept-Encoding", "gzip;q=0, br"}});
    CHECK(refused.body == files.script);
    CHECK(refused.headers.count("content-encoding") == 0);
  }
  SECTION("a text file without .gz is gzipped at start; other types as their extension says") {
    auto css = browser(server, "GET", "/style.css", {{"Accept-Encoding", "gzip"}});
    CHECK(css.status == 200);
    CHECK(css.headers["content-type"] == "text/css; charset=utf-8");
    CHECK(css.headers["cache-control"] == "no-cache");
    CHECK(css.headers["content-encoding"] == "gzip");
    REQUIRE(css.body.size() > 2);
    CHECK(static_cast<unsigned char>(css.body[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(css.body[1]) == 0x8b);
    CHECK(css.body.size() < files.style.size());
    CHECK(browser(server, "GET", "/favicon.ico").headers["content-type"] == "image/x-icon");
  }
  SECTION("If-None-Match with the ETag: 304 without a body") {
    auto first = browser(server, "GET", "/");
    auto again = browser(server, "GET", "/", {{"If-None-Match", first.headers["etag"]}});
    CHECK(again.status == 304);
    CHECK(again.body.empty());
    CHECK(again.headers["etag"] == first.headers["etag"]);
    CHECK(browser(server, "GET", "/", {{"If-None-Match", "\"other\""}}).status == 200);
    auto gz = browser(server, "GET", std::string("/") + k_asset, {{"Accept-Encoding", "gzip"}});
    CHECK(browser(server, "GET", std::string("/") + k_asset,
                  {{"Accept-Encoding", "gzip"}, {"If-None-Match", "W/" + gz.headers["etag"]}})
              .status == 304);
  }
  SECTION("HEAD: the headers with the length, no body") {
    auto h = raw_head(server, "HEAD / HTTP/1.1\r\nHost: " + server.address + "\r\nConnection: close\r\n\r\n");
    CHECK(h.status == 200);
    CHECK(h.headers["content-length"] == std::to_string(files.index.size()));
    CHECK(h.headers["content-type"] == "text/html; charset=utf-8");
    CHECK(h.headers["content-security-policy"] == k_csp);
    CHECK(h.rest.empty());

    // Keep-alive after a HEAD: the next answer on the connection is whole.
    raw_socket sock(server.address);
    REQUIRE(sock.send_all("HEAD /index.html HTTP/1.1\r\nHost: " + server.address +
                          "\r\n\r\nGET / HTTP/1.1\r\nHost: " + server.address + "\r\nConnection: close\r\n\r\n"));
    std::string all;
    std::optional<raw_end> end;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!end && std::chrono::steady_clock::now() < deadline)
      all += sock.recv_some(std::chrono::milliseconds(200), &end);
    INFO(all);
    CHECK(all.starts_with("HTTP/1.1 200 OK"));
    const auto second = all.find("HTTP/1.1 200 OK", 10);
    REQUIRE(second != std::string::npos);
    CHECK(all.find(files.index) == all.size() - files.index.size());  // once, at the very end
    CHECK(all.find(files.index) > second);
  }
  SECTION("traversal, encoded slashes, dotfiles and symlinks out of the root: 404") {
    for (const auto* target :
         {"/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/assets/..%2f..%2foutside%2fsecret.txt",
          "/assets%2fapp-3F2A9C1B.js", "/assets%2Fapp-3F2A9C1B.js", "/assets/../index.html", "//index.html", "/.env",
          "/.git/config", "/%2eenv", "/leak.txt", "/outdir/secret.txt", "/assets/", "/assets",
          "/assets\\app-3F2A9C1B.js", "/index.html/", "/nope.js"}) {
      auto r = raw_exchange(server.address, raw_request("GET", target, {{"Connection", "close"}}));
      INFO(target << " " << to_string(r.end));
      REQUIRE(r.first() != nullptr);
      INFO(r.first()->body);
      // The edge may refuse a malformed target with 400 first; nothing is ever served.
      CHECK((r.first()->status == 404 || r.first()->status == 400));
      CHECK(r.first()->body.find("outside the root") == std::string::npos);
      CHECK(r.first()->body.find("SECRET") == std::string::npos);
    }
    CHECK(browser(server, "GET", "/inner.html").body == files.index);  // a link inside the root
  }
  SECTION("API answers carry the security headers; other methods and unknown paths 404 JSON") {
    auto api = browser(server, "GET", "/v1/projects");
    CHECK(api.status == 401);
    CHECK(api.headers["content-security-policy"] == k_csp);
    CHECK(api.headers["x-frame-options"] == "DENY");
    CHECK(browser(server, "GET", "/healthz").headers["content-security-policy"] == k_csp);
    auto post = browser(server, "POST", "/", {}, "{}");
    CHECK(post.status == 404);
    CHECK(post.json.at("error").at("code") == "not_found");
    auto unknown = browser(server, "GET", "/no/such/file.js");
    CHECK(unknown.status == 404);
    CHECK(unknown.json.at("error").at("code") == "not_found");
  }
  SECTION("answers the server writes before any route (400, 413, 431) carry them too") {
    const std::vector<std::pair<std::string, unsigned>> cases{
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
        {raw_request("POST", "/v1/projects", {{"Content-Length", "999999999"}}, "", false), 413},
        {raw_request("GET", "/", {{"X-Big", std::string(70000, 'a')}}), 431},
    };
    for (const auto& [bytes, status] : cases) {
      auto r = raw_exchange(server.address, bytes);
      REQUIRE(r.first() != nullptr);
      CHECK(r.first()->status == status);
      auto headers = r.first()->headers;
      CHECK(headers["content-security-policy"] == k_csp);
      CHECK(headers["x-content-type-options"] == "nosniff");
    }
  }
}

TEST_CASE("without a console GET / says so, a web root over the limits stops the start", "[e2e][browser]") {
  temp_dir dir;
  SECTION("no console installed") {
    // The build puts the console next to atriumd (build/web): a copy of the binary in a
    // folder of its own has none beside it.
    if (fs::exists("/usr/share/atrium/web")) {
      WARN("a console is installed in /usr/share/atrium/web; not checked");
      return;
    }
    const auto bin = dir.path() / "bin";
    fs::create_directories(bin);
    fs::copy_file(ATRIUMD_PATH, bin / "atriumd");
    REQUIRE_FALSE(fs::exists(bin / "web"));
    atriumd_server server(dir.path(), {}, (bin / "atriumd").string());
    auto r = browser(server, "GET", "/");
    CHECK(r.status == 404);
    CHECK(r.json.at("error").at("message") == "the web console is not installed (build web/ or pass --web-root)");
    CHECK(r.headers["content-security-policy"] == k_csp);
    CHECK(atriumd_server::slurp(server.log).find("the web console is not installed") != std::string::npos);
  }
  SECTION("a file over 16 MiB") {
    write(dir.path() / "web" / "index.html", "<!doctype html>");
    { std::ofstream(dir.path() / "web" / "huge.js"); }
    fs::resize_file(dir.path() / "web" / "huge.js", (16u << 20) + 1);
    auto out = run_process({ATRIUMD_PATH, "--data-dir", (dir.path() / "data").string(), "--listen", "127.0.0.1:0",
                            "--web-root", (dir.path() / "web").string()},
                           std::chrono::seconds(60));
    INFO(out.err);
    CHECK(out.exit_code == 1);
    CHECK(out.err.find("huge.js") != std::string::npos);
    CHECK(out.err.find("over the limit") != std::string::npos);
  }
  SECTION("--web-root that is not a directory") {
    auto out = run_process({ATRIUMD_PATH, "--data-dir", (dir.path() / "data").string(), "--listen", "127.0.0.1:0",
                            "--web-root", (dir.path() / "missing").string()},
                           std::chrono::seconds(60));
    INFO(out.err);
    CHECK(out.exit_code == 1);
    CHECK(out.err.find("not a readable directory") != std::string::npos);
  }
}

TEST_CASE("a cookie login keeps the token out of page script, the session route tells who is signed in",
          "[e2e][browser]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  const auto own = "http://" + server.address;
  const auto creds = json{{"username", "admin"}, {"password", k_admin_password}, {"cookie", true}}.dump();

  auto r = browser(server, "POST", "/v1/auth/login", {{"Origin", own}}, creds);
  INFO(r.body);
  REQUIRE(r.status == 200);
  const auto set = r.headers.at("set-cookie");
  const auto token = cookie_token(set);
  CHECK(token.size() == 64);
  CHECK(set == "atrium_session=" + token + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400");
  CHECK_FALSE(r.json.contains("token"));
  CHECK(r.body.find(token) == std::string::npos);
  CHECK(r.json.at("user").at("username") == "admin");
  CHECK(r.json.at("expires_at").is_number());
  const auto cookie = "atrium_session=" + token;

  SECTION("GET /v1/auth/session by cookie, by bearer, and without either") {
    auto s = browser(server, "GET", "/v1/auth/session", {{"Cookie", "theme=dark; " + cookie + "; lang=en"}});
    INFO(s.body);
    CHECK(s.status == 200);
    CHECK(s.json.at("via") == "cookie");
    CHECK(s.json.at("user").at("username") == "admin");
    CHECK(s.json.at("user").at("roles").dump().find("admin") != std::string::npos);
    CHECK(s.json.at("user").at("disabled") == false);
    CHECK_FALSE(s.json.at("user").contains("password_hash"));
    CHECK(s.body.find("argon2") == std::string::npos);
    CHECK(s.json.at("expires_at") == r.json.at("expires_at"));

    auto bearer = server.client(server.login("admin", k_admin_password)).get("/v1/auth/session");
    CHECK(bearer.status == 200);
    CHECK(bearer.json.at("via") == "bearer");

    auto none = browser(server, "GET", "/v1/auth/session");
    CHECK(none.status == 401);
    CHECK(none.headers.count("set-cookie") == 0);
    auto stale = browser(server, "GET", "/v1/auth/session", {{"Cookie", "atrium_session=" + std::string(64, 'a')}});
    CHECK(stale.status == 401);
    CHECK(stale.headers["set-cookie"] == "atrium_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
  }
  SECTION("login with cookie: true from another origin or none is refused (login CSRF)") {
    auto foreign = browser(server, "POST", "/v1/auth/login", {{"Origin", "http://evil.example"}}, creds);
    CHECK(foreign.status == 403);
    CHECK(foreign.headers.count("set-cookie") == 0);
    CHECK(foreign.json.at("error").at("details").at("origin") == "http://evil.example");
    CHECK(browser(server, "POST", "/v1/auth/login", {}, creds).status == 403);
    // Without `cookie` the answer is the bearer token, Origin or not (API clients).
    auto api = browser(server, "POST", "/v1/auth/login", {{"Origin", "http://evil.example"}},
                       json{{"username", "admin"}, {"password", k_admin_password}}.dump());
    CHECK(api.status == 200);
    CHECK(api.json.contains("token"));
    CHECK(api.headers.count("set-cookie") == 0);
    CHECK(browser(server, "POST", "/v1/auth/login", {},
                  json{{"username", "admin"}, {"password", k_admin_password}, {"cookie", "yes"}}.dump())
              .status == 400);
  }
  SECTION("logout with the cookie ends the session and clears the cookie") {
    auto out = browser(server, "POST", "/v1/auth/logout", {{"Cookie", cookie}, {"Origin", own}}, "{}");
    INFO(out.body);
    CHECK(out.status == 200);
    CHECK(out.headers["set-cookie"] == "atrium_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    CHECK(browser(server, "GET", "/v1/auth/session", {{"Cookie", cookie}}).status == 401);
  }
}

TEST_CASE("cookie-authenticated changes, WebSockets and streams need this server's Origin", "[e2e][browser]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--allowed-origin", "http://Console.Example:5173/"});
  const auto own = "http://" + server.address;
  const auto cookie = cookie_login(server);
  const auto project = json{{"name", "Assay QC"}}.dump();

  SECTION("POST with a foreign Origin, none, or Origin null: 403, recorded") {
    auto foreign =
        browser(server, "POST", "/v1/projects", {{"Cookie", cookie}, {"Origin", "https://evil.example"}}, project);
    INFO(foreign.body);
    CHECK(foreign.status == 403);
    CHECK(foreign.json.at("error").at("code") == "forbidden");
    CHECK(foreign.json.at("error").at("message") ==
          "cross-origin request refused: Origin https://evil.example is not this server's");
    CHECK(foreign.json.at("error").at("details").at("origin") == "https://evil.example");
    CHECK(browser(server, "POST", "/v1/projects", {{"Cookie", cookie}}, project).status == 403);
    CHECK(browser(server, "POST", "/v1/projects", {{"Cookie", cookie}, {"Origin", "null"}}, project).status == 403);
    // A look-alike: the server's host as a prefix of another.
    CHECK(browser(server, "POST", "/v1/projects", {{"Cookie", cookie}, {"Origin", own + ".evil.example"}}, project)
              .status == 403);
    CHECK(
        browser(server, "DELETE", "/v1/projects/x", {{"Cookie", cookie}, {"Origin", "https://evil.example"}}).status ==
        403);
    auto admin = server.admin();
    const auto security = stream_events(admin, "security");
    std::size_t refusals = 0;
    for (const auto& e : security) {
      if (e.at("type") == "security.access_denied" && e.at("data").dump().find("origin") != std::string::npos) {
        ++refusals;
      }
    }
    CHECK(refusals >= 4);
  }
  SECTION("own Origin and an --allowed-origin: accepted") {
    CHECK(browser(server, "POST", "/v1/projects", {{"Cookie", cookie}, {"Origin", own}}, project).status == 201);
    CHECK(browser(server, "POST", "/v1/projects", {{"Cookie", cookie}, {"Origin", "http://console.example:5173"}},
                  project)
              .status == 201);
  }
  SECTION("reads need no Origin; bearer requests are never Origin-checked") {
    CHECK(browser(server, "GET", "/v1/projects", {{"Cookie", cookie}, {"Origin", "https://evil.example"}}).status ==
          200);
    CHECK(browser(server, "GET", "/v1/projects", {{"Cookie", cookie}}).status == 200);
    const auto token = server.login("admin", k_admin_password);
    auto bearer = browser(server, "POST", "/v1/projects",
                          {{"Authorization", "Bearer " + token}, {"Origin", "https://evil.example"}}, project);
    CHECK(bearer.status == 201);
  }
  SECTION("WebSocket upgrade with the cookie: foreign Origin 403, own 101") {
    auto foreign = raw_head(server, websocket_upgrade(server, cookie, "https://evil.example"));
    CHECK(foreign.status == 403);
    CHECK(raw_head(server, websocket_upgrade(server, cookie, "")).status == 403);
    auto ok = raw_head(server, websocket_upgrade(server, cookie, own));
    CHECK(ok.status == 101);
  }
  SECTION("SSE with the cookie: foreign Origin 403; ?token= is not Origin-checked") {
    auto foreign =
        raw_head(server, "GET /v1/events/stream HTTP/1.1\r\nHost: " + server.address + "\r\nCookie: " + cookie +
                             "\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n");
    CHECK(foreign.status == 403);
    auto own_stream = raw_head(server, "GET /v1/events/stream HTTP/1.1\r\nHost: " + server.address +
                                           "\r\nCookie: " + cookie + "\r\nOrigin: " + own + "\r\n\r\n");
    CHECK(own_stream.status == 200);
    const auto token = server.login("admin", k_admin_password);
    auto query = raw_head(server, "GET /v1/events/stream?token=" + token + " HTTP/1.1\r\nHost: " + server.address +
                                      "\r\nOrigin: https://evil.example\r\n\r\n");
    CHECK(query.status == 200);
  }
}
