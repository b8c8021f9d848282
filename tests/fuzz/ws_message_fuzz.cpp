// Fuzz target: the WebSocket message parser (`ws_connection::on_message`,
// adapters/http/api_ws.cpp) and everything behind it (subscribe, unsubscribe, command,
// presence), on the real dependencies (tests/fuzz/harness.hpp).
//
// The connection is opened the way the server opens it, through the public seam
// http_server.hpp defines: `GET /v1/ws` (a WebSocket upgrade request) goes to
// `api::handle`, which answers 101 with `open`; `open` is called with a recording
// `push_channel` and returns the `on_message`/`on_close` callbacks the server would call
// on the connection's strand. No socket and no Beast WebSocket code is involved (Beast
// delivers only whole, valid UTF-8 text messages of at most 1 MiB to `on_message`; its
// frame parser is Beast's to fuzz), which keeps runs fast and deterministic enough.
//
// Per input: the message (placeholders replaced) goes to the admin's connection; then a
// `ping` must be answered with a `pong`, and a probe command must get its result within
// the deadline. Every message the server sends, on that connection and on a member's
// connection that listens to the same project (presence), must be valid JSON; a command
// result with status 500 is a finding. A connection the server closed (e.g. as a slow
// consumer) is replaced, and both are replaced every 256 inputs so that per-connection
// limits do not saturate.
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/fuzz/harness.hpp"

namespace {

using atrium::fuzz::recording_channel;
using atrium::fuzz::world;
using nlohmann::json;

struct connection {
  std::shared_ptr<recording_channel> channel;
  atrium::http_adapter::push_callbacks callbacks;
  std::string token;

  void close() {
    if (callbacks.on_close) callbacks.on_close();
    callbacks = {};
    channel.reset();
  }
};

connection open_ws(world& w, const std::string& token) {
  atrium::http_adapter::http_request req;
  req.method = "GET";
  req.target = "/v1/ws";
  req.websocket = true;
  req.headers["authorization"] = "Bearer " + token;
  req.headers["upgrade"] = "websocket";
  req.headers["connection"] = "Upgrade";
  req.headers["sec-websocket-key"] = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3's example
  req.headers["sec-websocket-version"] = "13";
  req.headers["user-agent"] = "atrium-fuzz";
  req.remote = "127.0.0.1:40002";
  auto resp = w.call(std::move(req), true);
  if (resp.status != 101 || !resp.open)
    world::finding("GET /v1/ws answered " + std::to_string(resp.status) + " " + resp.body);
  connection c;
  c.channel = std::make_shared<recording_channel>();
  c.callbacks = resp.open(c.channel);
  c.token = token;
  if (!c.callbacks.on_message) world::finding("a WebSocket connection without on_message");
  return c;
}

/// Every message the server sends must be JSON; a command result must not be a 500.
void check(const std::vector<std::string>& messages) {
  for (const auto& m : messages) {
    json j;
    try {
      j = json::parse(m);
    } catch (const json::exception& ex) {
      world::finding(std::string("the server sent a message that is not JSON (") + ex.what() +
                     "): " + m.substr(0, 2000));
    }
    if (j.is_object() && j.value("op", "") == "result" && j.contains("status") && j["status"] == 500) {
      world::finding("a WebSocket command answered 500: " + m.substr(0, 2000));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& w = world::get();
  static connection admin, member;
  static std::size_t runs = 0;
  static std::uint64_t probe = 0;
  w.note_input(data, size);

  if (!admin.channel || admin.channel->closing() || admin.token != w.admin_token() || runs % 256 == 0) {
    admin.close();
    admin = open_ws(w, w.admin_token());
  }
  if (!member.channel || member.channel->closing() || runs % 256 == 0) {
    member.close();
    member = open_ws(w, w.member_token());
    // The member listens to the fixture project's presence (denied unless shared: both
    // paths are exercised as inputs change the project's members).
    member.callbacks.on_message(w.substitute(R"({"op":"presence","id":1,"project":"@PROJECT@","state":{}})"));
  }
  ++runs;

  admin.callbacks.on_message(w.substitute(std::string(reinterpret_cast<const char*>(data), size)));

  if (!admin.channel->closing()) {
    admin.callbacks.on_message(R"({"op":"ping"})");
    const bool ponged =
        admin.channel->wait_for([](const std::string& m) { return m == R"({"op":"pong"})"; },
                                std::chrono::duration_cast<std::chrono::milliseconds>(atrium::fuzz::k_answer_deadline));
    if (!ponged && !admin.channel->closing()) world::finding("no pong to a ping after the input");
  }
  if (!admin.channel->closing()) {
    const auto id = "probe-" + std::to_string(++probe);
    admin.callbacks.on_message(w.substitute(R"({"op":"command","id":")" + id +
                                            R"(","command":{"method":"GET","path":"/v1/projects/@PROJECT@"}})"));
    const auto needle = R"("id":")" + id + "\"";
    const bool answered =
        admin.channel->wait_for([&](const std::string& m) { return m.find(needle) != std::string::npos; },
                                std::chrono::duration_cast<std::chrono::milliseconds>(atrium::fuzz::k_answer_deadline));
    // A full queue (the input made the server send 1024 messages) closes the connection
    // as a slow consumer: then no answer is due.
    if (!answered && !admin.channel->closing()) world::finding("no result to a command after the input");
  }
  check(admin.channel->take());
  check(member.channel->take());
  w.after_input();
  return 0;
}
