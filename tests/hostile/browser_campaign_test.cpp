// Hostile input for the browser side of atriumd (issue 17): Cookie headers, Origin
// headers on cookie-authenticated requests, and static file paths against a real web
// root (docs/hostile.md, "Browser: cookies, origins, static paths"). The oracle is the
// suite's (`tally::judge`): an answer within the deadline, no 5xx, the error shape on
// every 4xx, a 4xx wherever the input is refused.
#include <filesystem>
#include <fstream>

#include "tests/hostile/hostile.hpp"

namespace {

using namespace atrium::hostile;
namespace fs = std::filesystem;

/// raw_request sends `Host: 127.0.0.1`: the server's own origin for these requests.
constexpr const char* k_own = "http://127.0.0.1";

/// A web root with an index, a hashed asset and things that must stay unreachable.
struct web_files {
  atrium::test::temp_dir dir;
  fs::path root = dir.path() / "web";
  web_files() {
    fs::create_directories(root / "assets");
    fs::create_directories(root / ".git");
    std::ofstream(root / "index.html") << "<!doctype html><title>Atrium</title>";
    std::ofstream(root / "assets" / "app-3F2A9C1B.js") << "console.log(1)";
    std::ofstream(root / ".git" / "config") << "secret";
    std::ofstream(dir.path() / "secret.txt") << "secret";
    fs::create_symlink(dir.path() / "secret.txt", root / "leak.txt");
  }
};

/// The session cookie of `user` signed in with `cookie: true` from the own origin.
std::string cookie_of(world& w, const std::string& user, const std::string& password) {
  auto r = w.call("POST", "/v1/auth/login", "", {{"username", user}, {"password", password}, {"cookie", true}},
                  {{"Origin", k_own}});
  REQUIRE(r.first() != nullptr);
  INFO(r.first()->body);
  REQUIRE(r.first()->status == 200);
  const auto& set = r.first()->headers.at("set-cookie");
  return set.substr(0, set.find(';'));
}

}  // namespace

TEST_CASE("campaign: Cookie headers", "[hostile][campaign][browser]") {
  world w({}, false);
  tally t{.name = "cookies"};
  const auto cookie = cookie_of(w, "alice", "a.l.i.c.e-password");
  const auto token = cookie.substr(cookie.find('=') + 1);
  std::string many;
  for (int i = 0; i < 1500; ++i) many += "c" + std::to_string(i) + "=v;";
  std::string near_limit = "pad=" + std::string(8200, 'p') + "; " + cookie;
  struct cookie_case {
    std::string name;
    std::string value;
    expect e;
  };
  const std::vector<cookie_case> cases{
      {"huge cookie over the header limit", "atrium_session=" + std::string(70000, 'a'), expect::reject},
      {"cookie just under the header value limit", near_limit.substr(near_limit.size() - 8190), expect::any},
      {"huge session value", "atrium_session=" + std::string(8000, 'a'), expect::reject},
      {"1500 pairs, none the session", many, expect::reject},
      {"1500 pairs then the session", many.substr(0, 7000) + "; " + cookie, expect::any},
      {"no =", "atrium_session", expect::reject},
      {"only separators", ";;;,,,;= ;=", expect::reject},
      {"empty value", "atrium_session=", expect::reject},
      {"empty name", "=" + token, expect::reject},
      {"0xFF in the value", "atrium_session=\xff\xfe", expect::reject},
      {"invalid UTF-8 elsewhere", "x=\xc3\x28; " + cookie, expect::reject},
      {"NUL",
       std::string("atrium_session=a\0"
                   "b",
                   18),
       expect::reject},
      {"bare CR", "atrium_session=a\rb", expect::reject},
      {"duplicate, different values", cookie + "; atrium_session=" + std::string(64, 'b'), expect::reject},
      {"duplicate, same value", cookie + "; " + cookie, expect::any},
      {"quoted", "atrium_session=\"" + token + "\"", expect::any},
      {"name in other case", "ATRIUM_SESSION=" + token, expect::reject},
      {"U+202E in value", "atrium_session=\xe2\x80\xae" + token, expect::reject},
      {"backslash in value", "atrium_session=" + token + "\\", expect::reject},
      {"a wrong token", "atrium_session=" + std::string(64, '0'), expect::reject},
  };
  for (const auto& c : cases) {
    for (const auto* target : {"/v1/auth/session", "/v1/projects"}) {
      t.judge("GET " + std::string(target) + " cookie " + c.name,
              w.call_raw("GET", target, "", "", {{"Cookie", c.value}}), c.e);
    }
    // A change with the own origin: the cookie decides.
    t.judge("POST /v1/projects cookie " + c.name,
            w.call("POST", "/v1/projects", "", {{"name", "c" + std::to_string(++w.serial)}},
                   {{"Cookie", c.value}, {"Origin", k_own}}),
            c.e);
  }
  // Two Cookie fields are joined by ", " and parsed as one list.
  t.judge("two Cookie fields", w.call_raw("GET", "/v1/auth/session", "", "", {{"Cookie", "a=1"}, {"Cookie", cookie}}),
          expect::success);
  w.prove_alive("cookies");
  t.report();
}

TEST_CASE("campaign: Origin headers on cookie requests", "[hostile][campaign][browser]") {
  world w({"--allowed-origin", "https://console.example"}, false);
  tally t{.name = "origins"};
  const auto cookie = cookie_of(w, "alice", "a.l.i.c.e-password");
  struct origin_case {
    std::string name;
    header_list headers;
    expect e;
  };
  const std::vector<origin_case> cases{
      {"missing", {}, expect::reject},
      {"empty", {{"Origin", ""}}, expect::reject},
      {"null", {{"Origin", "null"}}, expect::reject},
      {"foreign", {{"Origin", "https://evil.example"}}, expect::reject},
      {"own host as a prefix", {{"Origin", std::string(k_own) + ".evil.example"}}, expect::reject},
      {"own host as user info", {{"Origin", "http://127.0.0.1@evil.example"}}, expect::reject},
      {"own with a path", {{"Origin", std::string(k_own) + "/x"}}, expect::reject},
      {"own with another port", {{"Origin", std::string(k_own) + ":1"}}, expect::reject},
      {"file scheme", {{"Origin", "file://"}}, expect::reject},
      {"8 KB origin", {{"Origin", "https://" + std::string(8000, 'a') + ".example"}}, expect::reject},
      {"70 KB origin", {{"Origin", "https://" + std::string(70000, 'a')}}, expect::reject},
      {"invalid UTF-8", {{"Origin", "https://\xff.example"}}, expect::reject},
      {"U+202E",
       {{"Origin",
         "https://\xe2\x80\xae"
         "elpmaxe.live"}},
       expect::reject},
      {"NUL", {{"Origin", std::string("http://127.0.0.1\0", 17)}}, expect::reject},
      {"two Origin fields", {{"Origin", k_own}, {"Origin", k_own}}, expect::reject},
      {"allowed origin with a path", {{"Origin", "https://console.example/"}}, expect::reject},
      {"allowed origin, other scheme", {{"Origin", "http://console.example"}}, expect::reject},
      {"own, upper case", {{"Origin", "HTTP://127.0.0.1"}}, expect::success},
      {"own over https", {{"Origin", "https://127.0.0.1"}}, expect::success},
      {"allowed", {{"Origin", "https://console.example"}}, expect::success},
  };
  for (const auto& c : cases) {
    auto headers = c.headers;
    headers.emplace_back("Cookie", cookie);
    t.judge("POST /v1/projects origin " + c.name,
            w.call("POST", "/v1/projects", "", {{"name", "o" + std::to_string(++w.serial)}}, headers), c.e);
    // (An accepted upgrade is a WebSocket, which the raw client does not read: the e2e tests
    // and the WebSocket campaign cover it.)
    if (c.e != expect::success) {
      t.judge("WebSocket upgrade origin " + c.name,
              w.call_raw("GET", "/v1/ws", "", "",
                         [&] {
                           auto h = headers;
                           h.insert(h.end(), {{"Upgrade", "websocket"},
                                              {"Connection", "Upgrade"},
                                              {"Sec-WebSocket-Version", "13"},
                                              {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
                           return h;
                         }()),
              c.e);
    }
    t.judge("login cookie:true origin " + c.name,
            w.call("POST", "/v1/auth/login", "",
                   {{"username", "alice"}, {"password", "a.l.i.c.e-password"}, {"cookie", true}}, c.headers),
            c.e);
  }
  w.prove_alive("origins");
  t.report();
}

TEST_CASE("campaign: static file paths", "[hostile][campaign][browser]") {
  web_files web;
  world w({"--web-root", web.root.string()}, false);
  tally t{.name = "static paths"};
  const std::vector<std::string> refused{
      "/..",
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/%2E%2E%2Fsecret.txt",
      "/assets/..%2f..%2fsecret.txt",
      "/assets%2fapp-3F2A9C1B.js",
      "/assets%5capp-3F2A9C1B.js",
      "/assets/./app-3F2A9C1B.js",
      "/./index.html",
      "//index.html",
      "/assets//app-3F2A9C1B.js",
      "/.git/config",
      "/%2egit/config",
      "/leak.txt",
      "/index.html%00.js",
      "/index.html%0a",
      "/%ff",
      "/%c3%28",
      "/%",
      "/%g1",
      "/" + std::string(5000, 'a'),
      "/" +
          [] {
            std::string s;
            for (int i = 0; i < 1000; ++i) s += "a/";
            return s;
          }(),
      "/index.html/.",
      "/assets/",
      "/nope",
      "/\xff",
      "/a b",
  };
  for (const auto& target : refused) {
    // (HEAD answers carry a Content-Length without a body, which the raw client would wait
    // for: the e2e tests cover HEAD.)
    t.judge("GET " + excerpt(target, 60),
            atrium::test::raw_exchange(w.address(), atrium::test::raw_request("GET", target, {{"Connection", "close"}}),
                                       {.deadline = k_deadline}),
            expect::reject);
  }
  for (const auto* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    t.judge(std::string(method) + " /", w.call_raw(method, "/", "", "{}"), expect::reject);
  }
  // OPTIONS of a console file: 204 with Allow (issue 21); of a path that is none, 404.
  t.judge("OPTIONS /", w.call_raw("OPTIONS", "/", "", ""), expect::success);
  t.judge("OPTIONS /nope", w.call_raw("OPTIONS", "/nope", "", ""), expect::reject);
  for (const auto* target : {"/", "/index.html", "/assets/app-3F2A9C1B.js", "/index.html?%ff=1"}) {
    t.judge(std::string("GET ") + target, w.call_raw("GET", target, "", ""),
            std::string(target).find("%ff") != std::string::npos ? expect::reject : expect::success);
  }
  const std::vector<std::string> encodings{"gzip;q=\xff", "*;q=0, gzip;q=0", ",,,,", "gzip;q=", std::string(8000, 'g')};
  for (const auto& h : encodings) {
    t.judge("Accept-Encoding " + excerpt(h, 20), w.call_raw("GET", "/", "", "", {{"Accept-Encoding", h}}), expect::any);
  }
  for (const auto* h : {"*", "W/", "\"", ",,,", "W/\"x\", *"}) {
    t.judge(std::string("If-None-Match ") + h, w.call_raw("GET", "/", "", "", {{"If-None-Match", h}}), expect::any);
  }
  w.prove_alive("static paths");
  t.report();
}
