// The Docker Engine API formats of the docker runtime (adapters/docker/docker_wire.hpp):
// pure code, no daemon. Documents are shaped as dockerd 20.10 (API 1.41) writes them.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/docker/docker_wire.hpp"
#include "events/text.hpp"

namespace {

using namespace atrium::docker_adapter;
using atrium::errc;
using atrium::ports::runtime_container;
using atrium::ports::runtime_event;
using nlohmann::json;

std::string frame(int stream, std::string_view payload) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  const auto n = static_cast<std::uint32_t>(payload.size());
  h[4] = static_cast<char>(n >> 24);
  h[5] = static_cast<char>(n >> 16);
  h[6] = static_cast<char>(n >> 8);
  h[7] = static_cast<char>(n);
  return h + std::string(payload);
}

struct demuxed {
  bool ok = true;
  std::vector<std::string> lines;
};

demuxed demux(std::string_view in, std::size_t piece, bool raw = false) {
  log_demuxer d(raw);
  demuxed out;
  auto sink = [&](std::string_view l) {
    out.lines.emplace_back(l);
    return true;
  };
  for (std::size_t i = 0; i < in.size(); i += piece) {
    auto r = d.feed(in.substr(i, piece), sink);
    if (!r) {
      out.ok = false;
      return out;
    }
  }
  out.ok = d.finish(sink).has_value();
  return out;
}

const char* k_inspect = R"({
  "Id": "9b1f0c3c2a5d4e6f9b1f0c3c2a5d4e6f9b1f0c3c2a5d4e6f9b1f0c3c2a5d4e6f",
  "Created": "2026-12-04T22:14:14.1Z",
  "State": {"Status": "exited", "Running": false, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 137, "Error": "",
            "StartedAt": "2026-12-04T22:14:14.599477144Z", "FinishedAt": "2026-12-04T22:15:00Z"},
  "Name": "/atrium-web-c0ffee00",
  "Config": {"Tty": false, "Labels": {"atrium.container_id": "c0ffee00-1", "atrium.instance": "inst",
                                      "atrium.spec_version": "7"}}
})";

}  // namespace

TEST_CASE("docker wire: --docker-host accepts unix:// with an absolute path only", "[docker-wire]") {
  CHECK(parse_docker_host("unix:///var/run/docker.sock") == "/var/run/docker.sock");
  for (const char* bad : {"tcp://127.0.0.1:2375", "unix://relative.sock", "unix://", "/var/run/docker.sock",
                          "npipe:////./pipe/docker_engine", "ssh://me@host", "fd://", ""}) {
    auto r = parse_docker_host(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
  }
  CHECK(parse_docker_host("tcp://h:1").error().message.find("unix:///") != std::string::npos);
  CHECK_FALSE(parse_docker_host("unix:///" + std::string(200, 'a')));
  CHECK_FALSE(parse_docker_host(std::string("unix:///a\0b", 11)));
  CHECK_FALSE(parse_docker_host("unix:///a\nb"));
}

TEST_CASE("docker wire: the log stream is demultiplexed into lines, whatever the pieces", "[docker-wire]") {
  const std::string in = frame(1, "one\ntw") + frame(2, "err\r\n") + frame(1, "o\n") + frame(0, "stdin\n") +
                         frame(1, "") + frame(1, "last");
  for (std::size_t piece : {in.size(), std::size_t{1}, std::size_t{3}, std::size_t{9}}) {
    const auto r = demux(in, piece);
    REQUIRE(r.ok);
    CHECK(r.lines == std::vector<std::string>{"one", "err", "two", "last"});
  }
  SECTION("a line over 16 KiB is cut into pieces of 16 KiB, UTF-8 sequences kept whole") {
    std::string big(16383, 'x');
    big += "\xC3\xA9";  // é across the 16 KiB boundary
    big += std::string(20000, 'y');
    const std::string s = frame(1, big + "\n");
    for (std::size_t piece : {s.size(), std::size_t{1000}, std::size_t{7}}) {
      const auto r = demux(s, piece);
      REQUIRE(r.ok);
      REQUIRE(r.lines.size() == 3);
      CHECK(r.lines[0] == std::string(16383, 'x'));
      CHECK(r.lines[1].size() == 16384);
      CHECK(r.lines[1].starts_with("\xC3\xA9"));
      for (const auto& l : r.lines) CHECK(atrium::valid_utf8(l));
      std::string joined;
      for (const auto& l : r.lines) joined += l;
      CHECK(joined == big);
    }
    // Exactly 16 KiB then a newline is one line, however it arrives.
    const std::string exact = frame(1, std::string(16384, 'z') + "\n");
    CHECK(demux(exact, exact.size()).lines == std::vector<std::string>{std::string(16384, 'z')});
    CHECK(demux(exact, 16392).lines == std::vector<std::string>{std::string(16384, 'z')});
  }
  SECTION("ill-formed UTF-8 is replaced, lines stay within 16 KiB") {
    const std::string s = frame(1, std::string(16384, '\xFF') + "\n");
    const auto r = demux(s, s.size());
    REQUIRE(r.ok);
    for (const auto& l : r.lines) {
      CHECK(l.size() <= 16384);
      CHECK(atrium::valid_utf8(l));
    }
    // 16384 × U+FFFD (3 bytes each): 48 KiB in pieces that end on whole characters.
    CHECK(r.lines.size() == 4);
    std::size_t total = 0;
    for (const auto& l : r.lines) total += l.size();
    CHECK(total == 3 * 16384);
  }
  SECTION("hostile frames: a bad stream byte or padding, a truncated header") {
    std::string bad = frame(1, "ok\n");
    bad += frame(3, "x");
    auto r = demux(bad, bad.size());
    CHECK_FALSE(r.ok);
    CHECK(r.lines == std::vector<std::string>{"ok"});
    std::string pad = frame(1, "x\n");
    pad[1] = 1;
    CHECK_FALSE(demux(pad, 1).ok);
    CHECK_FALSE(demux(frame(1, "a\n").substr(0, 5), 5).ok);
    // A frame announcing 4 GiB that ends early: what came is delivered.
    std::string huge = frame(1, "");
    huge[4] = huge[5] = huge[6] = huge[7] = '\xFF';
    r = demux(huge + "partial", 3);
    CHECK(r.ok);
    CHECK(r.lines == std::vector<std::string>{"partial"});
  }
  SECTION("raw (TTY) streams are all stdout") {
    const auto r = demux(std::string("a\r\nb\nc"), 2, true);
    REQUIRE(r.ok);
    CHECK(r.lines == std::vector<std::string>{"a", "b", "c"});
  }
  SECTION("a sink that says stop ends the reading") {
    log_demuxer d;
    int calls = 0;
    auto r = d.feed(frame(1, "1\n2\n3\n"), [&](std::string_view) { return ++calls < 2; });
    REQUIRE(r);
    CHECK_FALSE(*r);
    CHECK(calls == 2);
  }
}

TEST_CASE("docker wire: container inspection maps to the port's view", "[docker-wire]") {
  auto r = container_from_inspect_text(k_inspect);
  REQUIRE(r);
  const auto& c = r->container;
  CHECK(c.runtime_id.size() == 64);
  CHECK(c.container_id == "c0ffee00-1");
  CHECK(c.spec_version == 7);
  CHECK(r->instance == "inst");
  CHECK_FALSE(r->tty);
  CHECK(c.status == runtime_container::state::exited);
  CHECK(c.exit_code == 137);
  CHECK(c.reason == "killed");
  REQUIRE(c.started_at);
  CHECK(std::chrono::duration_cast<std::chrono::nanoseconds>(c.started_at->time_since_epoch()).count() % 1000000000 ==
        599477144);

  auto doc = json::parse(k_inspect);
  doc["State"]["OOMKilled"] = true;
  CHECK(container_from_inspect(doc)->container.reason == "oom");
  doc["State"]["OOMKilled"] = "yes";  // odd type: treated as absent
  CHECK(container_from_inspect(doc)->container.reason == "killed");
  doc["State"]["ExitCode"] = 0;
  CHECK(container_from_inspect(doc)->container.reason == "exited");
  doc["State"]["Status"] = "dead";
  CHECK(container_from_inspect(doc)->container.reason == "lost");
  doc["State"]["Status"] = "running";
  doc["State"]["Pid"] = 4242;
  CHECK(container_from_inspect(doc)->container.status == runtime_container::state::running);
  CHECK(container_from_inspect(doc)->container.pid == 4242);
  CHECK_FALSE(container_from_inspect(doc)->container.exit_code);
  doc["State"]["StartedAt"] = "0001-01-01T00:00:00Z";
  CHECK_FALSE(container_from_inspect(doc)->container.started_at);
  doc["State"]["Status"] = "created";
  CHECK(container_from_inspect(doc)->container.status == runtime_container::state::created);
  doc["Config"]["Labels"]["atrium.spec_version"] = "-1";
  CHECK(container_from_inspect(doc)->container.spec_version == 0);
  doc["Config"]["Labels"] = nullptr;
  CHECK(container_from_inspect(doc)->instance.empty());

  for (const char* bad : {"", "null", "[]", "{}", R"({"Id": 5, "State": {"Status": "running"}})",
                          R"({"Id": "abc", "State": {"Status": "flying"}})", R"({"Id": "abc", "State": []})",
                          R"({"Id": "../x", "State": {"Status": "running"}})", "{\"Id\": \"abc\""}) {
    auto e = container_from_inspect_text(bad);
    REQUIRE_FALSE(e);
    CHECK(e.error().code == errc::internal);
  }
  std::string deep(100000, '[');
  CHECK_FALSE(container_from_inspect_text(deep));
  CHECK_FALSE(container_from_inspect_text(R"({"Id":"abc","State":{"Status":"exited","ExitCode":1e400}})"));
}

TEST_CASE("docker wire: /events lines map to exits and removals of this instance", "[docker-wire]") {
  const std::string die =
      R"({"status":"die","id":"abc123","from":"atrium-busybox:1","Type":"container","Action":"die",)"
      R"("Actor":{"ID":"abc123","Attributes":{"atrium.container_id":"c1","atrium.instance":"inst",)"
      R"("exitCode":"137","image":"atrium-busybox:1","name":"atrium-web-c1"}},"scope":"local",)"
      R"("time":1764886454,"timeNano":1764886454599477144})";
  auto e = event_from_line(die, "inst");
  REQUIRE(e);
  REQUIRE(*e);
  CHECK((*e)->type == runtime_event::kind::exited);
  CHECK((*e)->runtime_id == "abc123");
  CHECK((*e)->container_id == "c1");
  CHECK((*e)->exit_code == 137);
  CHECK((*e)->reason == "killed");
  CHECK(event_time_nano(die) == 1764886454599477144);

  auto doc = json::parse(die);
  doc["Action"] = "destroy";
  e = event_from_line(doc.dump(), "inst");
  REQUIRE((e && *e));
  CHECK((*e)->type == runtime_event::kind::removed);
  doc["Action"] = "oom";
  CHECK((*event_from_line(doc.dump(), "inst"))->reason == "oom");
  doc["Action"] = "start";
  CHECK_FALSE(*event_from_line(doc.dump(), "inst"));
  doc["Action"] = "die";
  CHECK_FALSE(*event_from_line(doc.dump(), "other"));  // another instance's
  doc["Type"] = "network";
  CHECK_FALSE(*event_from_line(doc.dump(), "inst"));
  doc["Type"] = "container";
  doc["Actor"]["Attributes"]["exitCode"] = "x1";
  CHECK_FALSE((*event_from_line(doc.dump(), "inst"))->exit_code);
  doc["Actor"]["Attributes"]["exitCode"] = 3;  // not a string: unknown
  CHECK_FALSE((*event_from_line(doc.dump(), "inst"))->exit_code);

  for (const char* bad : {"", "garbage", "[]", "{}", R"({"Type":"container","Action":"die","Actor":{}})",
                          R"({"Type":"container","Action":"die","Actor":{"ID":"a/b"}})"}) {
    CHECK_FALSE(event_from_line(bad, "inst"));
  }
}

TEST_CASE("docker wire: requests built for the daemon", "[docker-wire]") {
  atrium::ports::container_spec s;
  s.container_id = "C0FFEE00-aaaa-4bbb-8ccc-dddddddddddd";
  s.name = "web";
  s.image = "atrium-busybox:1";
  s.env = {{"A", "1"}, {"B", "x=y"}};
  s.limits.memory_bytes = 64ull << 20;
  s.limits.cpus = 1.5;
  s.spec_version = 2;
  CHECK(container_name(s) == "atrium-web-c0ffee00");
  auto b = create_body(s, "inst");
  REQUIRE(b);
  CHECK_FALSE(b->contains("Cmd"));  // the image's default command
  CHECK((*b)["Env"] == json::array({"A=1", "B=x=y"}));
  CHECK((*b)["Labels"]["atrium.spec_version"] == "2");
  CHECK((*b)["HostConfig"]["NetworkMode"] == "host");
  CHECK((*b)["HostConfig"]["NanoCpus"] == 1500000000);
  CHECK((*b)["HostConfig"]["Memory"] == 64 << 20);
  CHECK_FALSE((*b)["HostConfig"].contains("PidsLimit"));
  CHECK((*b)["HostConfig"]["RestartPolicy"]["Name"] == "no");
  s.command = {"sh", "-c", "true"};
  CHECK(create_body(s, "inst")->at("Cmd").size() == 3);

  auto bad = s;
  bad.env = {{"A=B", "1"}};
  CHECK_FALSE(create_body(bad, "inst"));
  bad = s;
  bad.image.clear();
  CHECK_FALSE(create_body(bad, "inst"));
  bad = s;
  bad.limits.cpus = 0.0;
  CHECK_FALSE(create_body(bad, "inst"));
  bad = s;
  bad.limits.pids = 0;
  CHECK_FALSE(create_body(bad, "inst"));
  bad = s;
  bad.command = {std::string("a\0b", 3)};
  CHECK_FALSE(create_body(bad, "inst"));

  CHECK(pull_query("busybox") == "fromImage=busybox&tag=latest");
  CHECK(pull_query("registry.local:5000/team/app:1.2") == "fromImage=registry.local%3A5000%2Fteam%2Fapp&tag=1.2");
  CHECK(pull_query("registry.local:5000/team/app") == "fromImage=registry.local%3A5000%2Fteam%2Fapp&tag=latest");
  CHECK(pull_query("app@sha256:abcd") == "fromImage=app%40sha256%3Aabcd");
  for (const char* bad_ref : {"", "-x", "a b", "a:", "a?b", "a\nb", "../x"}) CHECK_FALSE(pull_query(bad_ref));

  CHECK(instance_filter("inst", true) == R"({"label":["atrium.instance=inst"],"type":["container"]})");
  CHECK(url_encode("a b/{}") == "a%20b%2F%7B%7D");
  CHECK(valid_object_id("abc_1.2-x"));
  CHECK_FALSE(valid_object_id("../x"));
  CHECK_FALSE(valid_object_id(""));
  CHECK_FALSE(valid_object_id(std::string(129, 'a')));

  CHECK(daemon_message(404, R"({"message":"No such container: x"})") == "No such container: x");
  CHECK(daemon_message(500, "plain text\n") == "plain text");
  CHECK(daemon_message(502, "") == "HTTP 502");
  CHECK(atrium::valid_utf8(daemon_message(500, "\xFF\xFE")));
}

TEST_CASE("docker wire: Docker's times", "[docker-wire]") {
  using namespace std::chrono;
  auto t = parse_docker_time("2026-12-04T22:14:14.599477144Z");
  REQUIRE(t);
  CHECK(duration_cast<nanoseconds>(t->time_since_epoch()).count() % 1000000000 == 599477144);
  auto z = parse_docker_time("2026-12-04T23:14:14+01:00");
  REQUIRE(z);
  CHECK(duration_cast<seconds>(*z - *t).count() == 0);
  CHECK_FALSE(parse_docker_time("0001-01-01T00:00:00Z"));
  for (const char* bad :
       {"", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-12-04 22:14:14Z", "2026-12-04T22:14:14",
        "2026-12-04T22:14:14.Z", "2026-12-04T22:14:14.1234567891Z", "2026-12-04T22:14:14Zjunk"}) {
    CHECK_FALSE(parse_docker_time(bad));
  }
}
