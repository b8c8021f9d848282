// The hostile campaign over WebSocket: malformed frames (each on its own connection, which
// the server must end, not hang on), malformed and hostile messages (answered with an
// error on a connection that stays open), and every HTTP route family's hostile paths and
// bodies sent as WebSocket commands (answered like HTTP: 4xx with the error shape).
#include "tests/hostile/campaign.hpp"

namespace {

using namespace atrium::hostile;
using atrium::test::raw_websocket;
using atrium::test::ws_binary;
using atrium::test::ws_close;
using atrium::test::ws_continuation;
using atrium::test::ws_event;
using atrium::test::ws_frame_spec;
using atrium::test::ws_ping;
using atrium::test::ws_text;

raw_websocket open_ws(const world& w, const std::string& token) {
  raw_websocket ws(w.address(), "/v1/ws", {{"Authorization", "Bearer " + token}});
  REQUIRE(ws.ok());
  return ws;
}

/// After a protocol violation the server must end the connection (a close frame or a
/// TCP close), within the deadline; a connection that just goes on is a failure too.
void expect_ended(tally& t, const std::string& what, raw_websocket& ws) {
  ++t.requests;
  // Anything the server still sends before ending the connection is fine.
  for (int i = 0; i < 100; ++i) {
    auto e = ws.next(k_deadline);
    if (e.what == ws_event::message) continue;
    if (e.what == ws_event::timeout) {
      ++t.hangs;
      t.fail(what, "the connection neither answered nor ended (hang)");
    }
    return;  // closed or reset: the violation ended the connection
  }
  t.fail(what, "the server kept talking instead of ending the connection");
}

/// A message the server must answer (with an error or a result) on a connection that
/// stays open. Returns the answer.
std::optional<json> expect_answer(tally& t, const std::string& what, raw_websocket& ws, const std::string& text,
                                  bool must_refuse = true) {
  ++t.requests;
  ws.send_text(text);
  auto m = ws.await([](const json& m) {
    const auto op = m.value("op", "");
    return op == "error" || op == "result" || op == "pong";
  });
  if (!m) {
    if (ws.last().what == ws_event::timeout) {
      ++t.hangs;
      t.fail(what, "no answer (hang)");
    } else {
      ++t.unanswered;
      t.fail(what, "the connection ended without an answer");
    }
    return std::nullopt;
  }
  const auto op = m->value("op", "");
  if (op == "error") {
    if (!m->contains("code") || !(*m)["code"].is_string() || !m->contains("message")) {
      ++t.wrong;
      t.fail(what, "an error message without code/message: " + excerpt(m->dump()));
    }
    return m;
  }
  if (op == "result" && m->contains("status")) {
    const auto status = m->value("status", 0u);
    const auto& body = m->contains("body") ? (*m)["body"] : json{{"error", m->value("error", json())}};
    t.verdict(what, status, body, must_refuse ? expect::reject : expect::any);
  } else if (op == "result" && must_refuse && m->value("ok", false)) {
    ++t.wrong;
    t.fail(what, "accepted: " + excerpt(m->dump()));
  }
  return m;
}

void expect_alive_ws(tally& t, const std::string& what, raw_websocket& ws) {
  ws.send_json({{"op", "ping"}});
  if (!ws.await([](const json& m) { return m.value("op", "") == "pong"; })) {
    t.fail(what, "the connection stopped answering ping");
  }
}

}  // namespace

TEST_CASE("campaign: WebSocket frames", "[hostile][campaign][ws]") {
  world w({}, false);
  tally t{.name = "WebSocket frames"};
  const std::string ping = R"({"op":"ping"})";
  struct frame_case {
    std::string label;
    std::vector<ws_frame_spec> frames;
    std::string tail;  // raw bytes after the frames
  };
  const std::vector<frame_case> violations{
      {"unmasked text frame", {{.payload = ping, .mask = false}}},
      {"RSV1 set", {{.payload = ping, .rsv = 4}}},
      {"RSV3 set", {{.payload = ping, .rsv = 1}}},
      {"reserved opcode 3", {{.opcode = 3, .payload = ping}}},
      {"reserved control opcode 0xB", {{.opcode = 0xB, .payload = "x"}}},
      {"fragmented ping", {{.opcode = ws_ping, .payload = "x", .fin = false}}},
      {"ping of 200 bytes", {{.opcode = ws_ping, .payload = std::string(200, 'p')}}},
      {"continuation without a start", {{.opcode = ws_continuation, .payload = ping}}},
      {"invalid UTF-8 in a text frame", {{.payload = "{\"op\":\"ping\",\"x\":\"\xC3\x28\xFF\"}"}}},
      {"invalid UTF-8 split over fragments",
       {{.payload = "{\"op\":\"ping\",\"x\":\"\xE2\x82", .fin = false},
        {.opcode = ws_continuation, .payload = "\xFF\"}"}}},
      {"length 2^63", {{.payload = "x", .length = 0x8000000000000000ull}}},
      {"length 2^64-1", {{.payload = "x", .length = 0xFFFFFFFFFFFFFFFFull}}},
      {"text frame over 1 MiB", {{.payload = std::string(1100 * 1024, ' ')}}},
      {"fragments adding up to over 1 MiB",
       {{.payload = std::string(600 * 1024, ' '), .fin = false},
        {.opcode = ws_continuation, .payload = std::string(600 * 1024, ' ')}}},
      {"new message inside a fragmented one",
       {{.payload = "{\"op\":", .fin = false}, {.opcode = ws_text, .payload = ping}}},
      {"close code 999", {{.opcode = ws_close, .payload = std::string("\x03\xE7", 2)}}},
      {"close code 1005", {{.opcode = ws_close, .payload = std::string("\x03\xED", 2)}}},
      {"close with a 1-byte payload", {{.opcode = ws_close, .payload = "\x03"}}},
      {"close reason invalid UTF-8", {{.opcode = ws_close, .payload = std::string("\x03\xE8\xFF\xFE", 4)}}},
      {"garbage bytes", {}, std::string(32, '\xFF')},
  };
  for (const auto& c : violations) {
    auto ws = open_ws(w, w.alice);
    for (const auto& f : c.frames) ws.send_frame(f);
    if (!c.tail.empty()) ws.send_raw(c.tail);
    expect_ended(t, "frame " + c.label, ws);
  }
  w.prove_alive("frame violations");

  // Unusual but legal framing: answered, and the connection goes on.
  {
    auto ws = open_ws(w, w.alice);
    std::string big = R"({"op":"ping","pad":")" + std::string(100000, 'x') + "\"}";
    for (std::size_t i = 0; i < big.size(); i += 10) {
      ws.send_frame({.opcode = static_cast<std::uint8_t>(i == 0 ? ws_text : ws_continuation),
                     .payload = big.substr(i, 10),
                     .fin = i + 10 >= big.size()});
    }
    expect_answer(t, "frame a message in 10,000 fragments", ws, ping, false);
    for (int i = 0; i < 1000; ++i) ws.send_frame({.opcode = ws_ping, .payload = "p"});
    expect_answer(t, "frame after 1000 pings", ws, ping, false);
    ws.send_frame({.opcode = ws_text, .payload = "{\"op\":", .fin = false});
    ws.send_frame({.opcode = ws_ping, .payload = "between"});
    ws.send_frame({.opcode = ws_continuation, .payload = "\"ping\"}"});
    expect_answer(t, "frame a ping between fragments", ws, ping, false);
    expect_answer(t, "frame empty text frame", ws, "", true);
    ws.send_frame({.opcode = ws_binary, .payload = ping});
    ++t.requests;
    auto e = ws.next(k_deadline);
    if (e.what == ws_event::timeout) {
      ++t.hangs;
      t.fail("frame binary message", "neither answered nor closed (hang)");
    }
  }
  w.prove_alive("legal framing");
  t.report();
}

TEST_CASE("campaign: WebSocket messages", "[hostile][campaign][ws][needs-lead]") {
  world w;
  tally t{.name = "WebSocket messages"};
  auto ws = open_ws(w, w.alice);
  const std::string P = w.project;
  const std::vector<std::string> malformed{
      "{",
      "[]",
      "null",
      "42",
      "\"ping\"",
      R"({"op":1})",
      R"({"op":null})",
      R"({})",
      R"({"op":"nope"})",
      R"({"op":"ping\u0000"})",
      R"({"op":"\u202Eping"})",
      R"({"op":"ping","x":"\ud800"})",
      R"({"op":")" + std::string(100000, 'o') + "\"}",
      R"({"op":"ping",)" + std::string(1, '"') + R"(a":)" + deep_array(100000) + "}",
      R"({"op":"ping","a":)" + deep_object(100000) + "}",
      deep_array(100000),
      R"({"op":"subscribe"})",
      R"({"op":"subscribe","id":{}})",
      R"({"op":"subscribe","id":[1]})",
      R"({"op":"subscribe","id":1.5})",
      R"({"op":"subscribe","id":"s","streams":"x"})",
      R"({"op":"subscribe","id":"s","streams":[1]})",
      R"({"op":"subscribe","id":"s","streams":[null]})",
      R"({"op":"subscribe","id":"s","streams":[["project-x"]]})",
      R"({"op":"subscribe","id":"s","streams":["project-\u0000"]})",
      R"({"op":"subscribe","id":"s","streams":["project-a\nb"]})",
      R"({"op":"subscribe","id":"s","streams":["\u202Eproject"]})",
      R"({"op":"subscribe","id":"s","streams":[")" + std::string(10000, 's') + "\"]}",
      R"({"op":"subscribe","id":"s","streams":[]})",
      R"({"op":"subscribe","id":"s","projects":[")" + P + R"("],"after":-1})",
      R"({"op":"subscribe","id":"s","projects":[")" + P + R"("],"after":1.5})",
      R"({"op":"subscribe","id":"s","projects":[")" + P + R"("],"after":"1"})",
      R"({"op":"subscribe","id":"s","projects":[")" + P + R"("],"after":1e30})",
      R"({"op":"subscribe","id":"s","projects":[")" + P + R"("],"after":18446744073709551615})",
      R"({"op":"subscribe","id":"s","projects":[")" + P + R"("],"after":99999999999999999999999})",
      R"({"op":"subscribe","id":"s","projects":["%FF"]})",
      R"({"op":"subscribe","id":"s","projects":["a\u0000"]})",
      R"({"op":"subscribe","id":"s","projects":[{}]})",
      R"({"op":"unsubscribe"})",
      R"({"op":"unsubscribe","id":{}})",
      R"({"op":"unsubscribe","id":"never"})",
      R"({"op":"command"})",
      R"({"op":"command","id":"c"})",
      R"({"op":"command","id":"c","command":"GET /v1/projects"})",
      R"({"op":"command","id":"c","command":{"method":1,"path":"/v1/projects"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":1}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/healthz"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"http://127.0.0.1/v1/projects"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/projects","headers":"x"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/projects","headers":{"X":1}}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/projects","headers":{"X":["a"]}}})",
      R"({"op":"command","id":"c","command":{"method":"","path":"/v1/projects"}})",
      R"({"op":"command","id":"c","command":{"method":"GET\r\n","path":"/v1/projects"}})",
      R"({"op":"command","id":"c","command":{"method":")" + std::string(10000, 'M') + R"(","path":"/v1/projects"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/projects/\u0000"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/projects/%FF"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/projects/a b"}})",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/)" + std::string(70000, 'p') + "\"}}",
      R"({"op":"command","id":"c","command":{"method":"GET","path":"/v1/projects","headers":{"If-Match":"\u0000"}}})",
      R"({"op":"command","id":"c","command":{"method":"POST","path":"/v1/projects","body":{"name":"\u0000"}}})",
      R"({"op":"command","id":"c","command":{"method":"POST","path":"/v1/projects","body":"{"}})",
      R"({"op":"command","id":"c","command":{"method":"POST","path":"/v1/projects","body":)" + deep_array(1000) + "}}",
      R"({"op":"presence"})",
      R"({"op":"presence","id":"p","project":1})",
      R"({"op":"presence","id":"p","project":"\u0000"})",
      R"({"op":"presence","id":"p","project":"%FF"})",
      R"({"op":"presence","id":"p","project":")" + P + R"(","state":")" + std::string(5000, 's') + "\"}",
      R"({"op":"presence","id":"p","project":")" + P + R"(","state":)" + deep_array(1000) + "}",
      R"({"op":"presence","id":"p","project":")" + P + R"(","state":)" + deep_object(100000) + "}",
  };
  for (const auto& m : malformed) {
    expect_answer(t, "message " + excerpt(m, 100), ws, m, true);
  }
  expect_alive_ws(t, "after malformed messages", ws);
  w.prove_alive("malformed messages");

  // 64 subscriptions is the documented limit; the 65th is refused, the connection lives.
  for (int i = 0; i < 64; ++i) {
    ws.send_json({{"op", "subscribe"}, {"id", "lim" + std::to_string(i)}, {"projects", {P}}});
    (void)ws.await([](const json& m) { return m.value("op", "") == "result"; });
  }
  expect_answer(t, "65th subscription", ws, json{{"op", "subscribe"}, {"id", "lim64"}, {"projects", {P}}}.dump(), true);
  expect_answer(
      t, "257 streams in one subscription", ws,
      json{{"op", "subscribe"}, {"id", "big"}, {"streams", std::vector<std::string>(257, "project-" + P)}}.dump(),
      true);
  expect_alive_ws(t, "after limits", ws);
  w.prove_alive("subscription limits");
  t.report();
}

TEST_CASE("campaign: WebSocket commands over every route family",
          "[hostile][campaign][ws][needs-lead][needs-accounts]") {
  world w;
  tally t{.name = "WebSocket commands"};
  int id = 0;
  for (const auto& f : http_families()) {
    for (const auto& r : f.routes) {
      if (r.streaming || r.as.empty()) continue;  // commands run as the connection's user
      auto ws = open_ws(w, token_for(w, r));
      const auto name = "ws " + r.method + " " + r.path;
      auto command = [&](const std::string& label, json cmd, expect e) {
        json m{{"op", "command"}, {"id", ++id}, {"command", std::move(cmd)}};
        auto answer = expect_answer(t, name + " " + label, ws, m.dump(), e == expect::reject);
        if (!answer && ws.last().what != ws_event::timeout) ws = open_ws(w, token_for(w, r));  // go on with the rest
      };
      auto headers = json::object();
      if (r.if_match) headers["If-Match"] = "1";
      const json body = r.body.is_null() ? json() : w.fill(r.body);
      for (const auto& c : path_variants(w, r)) {
        // A WebSocket text frame is UTF-8: raw bytes that are not cannot travel.
        if (json(c.target).dump(-1, ' ', false, json::error_handler_t::ignore) !=
            json(c.target).dump(-1, ' ', false, json::error_handler_t::replace))
          continue;
        command(c.label, {{"method", r.method}, {"path", c.target}, {"body", body}, {"headers", headers}}, c.want);
      }
      expect_alive_ws(t, name + " after path variants", ws);
      if (!r.destructive) {
        for (const auto& v : body_variants(w, r, true)) {
          // Over 1 MiB is over the WebSocket message limit (the frames test covers it); the
          // per-field variants are sampled (HTTP runs them all).
          if (v.body.size() > 900 * 1024) continue;
          if (v.label.find(" as ") != std::string::npos && !v.label.ends_with(" as number") &&
              !v.label.ends_with(" as object")) {
            continue;
          }
          if (v.label.ends_with("DEL") || v.label.ends_with("C1 NEL") || v.label.ends_with("emoji") ||
              v.label.ends_with("U+2066") || v.label.ends_with("empty") || v.label.ends_with("ANSI escape")) {
            continue;
          }
          // The body travels as a string: sent to the API as is.
          command(v.label, {{"method", r.method}, {"path", w.fill(r.path)}, {"body", v.body}, {"headers", headers}},
                  v.want);
        }
        expect_alive_ws(t, name + " after body variants", ws);
        for (const auto& [label, hv] : std::vector<std::pair<std::string, json>>{
                 {"If-Match NUL", {{"If-Match", std::string("\0", 1)}}},
                 {"If-Match U+202E", {{"If-Match", "\xE2\x80\xAE"}}},
                 {"Idempotency-Key NUL", {{"Idempotency-Key", std::string("a\0", 2)}}},
                 {"header name with CRLF", {{"X-A\r\nX-B", "1"}}},
                 {"header value with CRLF", {{"X-A", "1\r\nX-B: 2"}}},
                 {"Authorization override", {{"Authorization", "Bearer nope"}}},
                 {"Content-Length lie", {{"Content-Length", "99999"}}},
                 {"Transfer-Encoding chunked", {{"Transfer-Encoding", "chunked"}}}}) {
          json h = headers;
          h.update(hv);
          const bool strict = label.starts_with("If-Match")      ? r.if_match
                              : label.starts_with("Idempotency") ? r.method != "GET"
                                                                 : false;
          command(label, {{"method", r.method}, {"path", w.fill(r.path)}, {"body", body}, {"headers", h}},
                  strict ? expect::reject : expect::any);
        }
        expect_alive_ws(t, name + " after header variants", ws);
      }
      ws.close();
      w.prove_alive(name);
    }
  }
  t.report();
}

TEST_CASE("campaign: WebSocket upgrade requests", "[hostile][campaign][ws][needs-realtime]") {
  world w({}, false);
  tally t{.name = "WebSocket upgrades"};
  using atrium::test::raw_request;
  const auto bearer = "Bearer " + w.alice;
  const header_list upgrade{{"Upgrade", "websocket"},
                            {"Connection", "Upgrade"},
                            {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                            {"Sec-WebSocket-Version", "13"}};
  auto with = [&](header_list extra, const std::string& drop = "") {
    header_list h;
    for (const auto& x : upgrade) {
      if (x.first != drop) h.push_back(x);
    }
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
  };
  auto one = [&](const std::string& label, const std::string& target, header_list h, expect e) {
    t.judge("upgrade " + label,
            atrium::test::raw_exchange(w.address(), raw_request("GET", target, h, {}, false), {.deadline = k_deadline}),
            e);
  };
  one("no token", "/v1/ws", with({}), expect::reject);
  one("token with NUL", "/v1/ws", with({{"Authorization", "Bearer a" + std::string(1, '\0')}}), expect::reject);
  one("token 0xFF", "/v1/ws", with({{"Authorization", "Bearer \xFF"}}), expect::reject);
  one("query token %FF", "/v1/ws?token=%FF", with({}), expect::reject);
  one("query token %00", "/v1/ws?token=a%00b", with({}), expect::reject);
  one("query token 10 KB", "/v1/ws?token=" + std::string(10000, 't'), with({}), expect::reject);
  one("no key", "/v1/ws", with({{"Authorization", bearer}}, "Sec-WebSocket-Key"), expect::reject);
  one("version 99", "/v1/ws",
      with({{"Authorization", bearer}, {"Sec-WebSocket-Version", "99"}}, "Sec-WebSocket-Version"), expect::reject);
  one("key 0xFF", "/v1/ws", with({{"Authorization", bearer}, {"Sec-WebSocket-Key", "\xFF\xFE"}}, "Sec-WebSocket-Key"),
      expect::reject);
  one("upgrade to h2c", "/v1/ws", with({{"Authorization", bearer}, {"Upgrade", "h2c"}}, "Upgrade"), expect::any);
  one("upgrade on another route", "/v1/projects", with({{"Authorization", bearer}}), expect::any);
  w.prove_alive("upgrades");
  t.report();
}
