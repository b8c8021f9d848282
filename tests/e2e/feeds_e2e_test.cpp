// End to end: the event feeds for everyone (docs/realtime.md "Feeds"): a project's events
// (`GET /v1/projects/{id}/events` and its SSE twin) for whoever may read the project, the
// `?types=`/`?streams=` filters on every feed, paging through a filtered feed to its end,
// and `?event_names=message` on the SSE feeds. The real atriumd over loopback.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "tests/support/atriumd.hpp"
#include "tests/support/raw_client.hpp"

using atrium::test::http_client;
using atrium::test::http_reply;
using atrium::test::raw_request;
using atrium::test::raw_socket;
using atrium::test::temp_dir;
using nlohmann::json;

namespace {

using server = atrium::test::atriumd_server;
using atrium::test::k_admin_password;

std::string id_of(const http_reply& r) {
  INFO(r.body);
  REQUIRE((r.status == 200 || r.status == 201));
  return r.json.at("id").get<std::string>();
}

/// Every event of a feed at `base` (which has its own `?…`), paging `limit` at a time
/// from 0 until `next` reaches `head`; checks that every page advances.
std::vector<json> read_to_end(const http_client& c, const std::string& base, std::size_t limit) {
  std::vector<json> out;
  std::uint64_t after = 0;
  for (int pages = 0; pages < 10000; ++pages) {
    auto r = c.get(base + "&limit=" + std::to_string(limit) + "&after=" + std::to_string(after));
    INFO(base << " after=" << after << ": " << r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json.at("events").size() <= limit);
    for (const auto& e : r.json.at("events")) out.push_back(e);
    const auto next = r.json.at("next").get<std::uint64_t>();
    const auto head = r.json.at("head").get<std::uint64_t>();
    if (next >= head) return out;
    REQUIRE(next > after);  // a page always advances
    after = next;
  }
  FAIL("the feed never ended");
  return out;
}

std::vector<std::uint64_t> positions(const std::vector<json>& events) {
  std::vector<std::uint64_t> out;
  for (const auto& e : events) out.push_back(e.at("position").get<std::uint64_t>());
  return out;
}

/// Opens an SSE feed and reads until `until` appears in what arrived (10 s at most).
/// Returns the status line's code and the body bytes read.
std::pair<unsigned, std::string> read_sse(const server& s,
                                          const std::vector<std::pair<std::string, std::string>>& headers,
                                          const std::string& target, const std::string& until) {
  raw_socket sock(s.address);
  REQUIRE(sock.send_all(raw_request("GET", target, headers)));
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto end = got.find("\r\n\r\n");
    if (end != std::string::npos && got.compare(9, 3, "200") != 0) break;  // refused: the answer is whole
    if (end != std::string::npos && got.find(until, end) != std::string::npos) break;
    std::optional<atrium::test::raw_end> how;
    got += sock.recv_some(std::chrono::milliseconds(200), &how);
    if (how) break;
  }
  INFO(got);
  REQUIRE(got.size() > 12);
  const auto end = got.find("\r\n\r\n");
  return {static_cast<unsigned>(std::stoul(got.substr(9, 3))), end == std::string::npos ? "" : got.substr(end + 4)};
}

std::pair<unsigned, std::string> read_sse(const server& s, const std::string& token, const std::string& target,
                                          const std::string& until) {
  return read_sse(s, {{"Authorization", "Bearer " + token}}, target, until);
}

}  // namespace

TEST_CASE("project feeds: readers of the project read its events, others get 404, filters and paging", "[e2e]") {
  temp_dir dir;
  // No job slots: the job stays queued, so the log holds still while it is compared.
  server srv(dir.path(), {"--job-slots", "0"});
  const auto admin = srv.admin();
  std::map<std::string, http_client> as;
  std::map<std::string, std::string> ids;
  for (const auto* name : {"alice", "bob", "carol"}) {
    ids[name] = id_of(admin.post("/v1/users", {{"username", name},
                                               {"email", std::string(name) + "@example.org"},
                                               {"password", atrium::test::password_for(name)},
                                               {"role", "member"}}));
    as.emplace(name, srv.client(srv.login(name, atrium::test::password_for(name))));
  }
  const auto carol = ids.at("carol");

  // P (alice's): a cell, a job, a schedule, carol as viewer. Q (bob's): a cell.
  const auto& alice = as.at("alice");
  const auto p = id_of(alice.post("/v1/projects", {{"name", "Feeds P"}}));
  REQUIRE(alice.post("/v1/projects/" + p + "/cells", {{"kind", "sql"}, {"content", "select 1"}}).status == 201);
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", carol}, {"role", "viewer"}}).status == 200);
  const auto db = srv.data / "files" / "feeds.sqlite";
  std::ofstream(db).flush();
  const auto conn = id_of(alice.post("/v1/connections", {{"name", "feeds-db"},
                                                         {"driver", "sqlite"},
                                                         {"params", {{"path", db.string()}}},
                                                         {"credentials", json::object()}}));
  const auto job =
      id_of(alice.post("/v1/jobs", {{"project_id", p}, {"kind", "sql"}, {"connection_id", conn}, {"sql", "select 1"}}));
  const auto schedule =
      id_of(alice.post("/v1/schedules", {{"name", "nightly"},
                                         {"project_id", p},
                                         {"cron", "0 6 * * 1-5"},
                                         {"time_zone", "UTC"},
                                         {"target", {{"kind", "sql"}, {"connection_id", conn}, {"sql", "select 1"}}}}));
  const auto q = id_of(as.at("bob").post("/v1/projects", {{"name", "Feeds Q"}}));
  REQUIRE(as.at("bob").post("/v1/projects/" + q + "/cells", {{"kind", "sql"}, {"content", "select 2"}}).status == 201);

  const std::set<std::string> p_streams{"project-" + p, "job-" + job, "schedule-" + schedule};
  auto whole_log = admin.get("/v1/events?limit=1000");
  REQUIRE(whole_log.status == 200);
  std::vector<json> expected;
  for (const auto& e : whole_log.json.at("events"))
    if (p_streams.contains(e.at("stream").get<std::string>())) expected.push_back(e);

  SECTION("a member, a viewer and an admin read the same feed: the project's, its jobs' and schedules' streams") {
    for (const auto* who : {"alice", "carol"}) {
      auto r = as.at(who).get("/v1/projects/" + p + "/events?limit=1000");
      INFO(who << ": " << r.body);
      REQUIRE(r.status == 200);
      CHECK(r.json.at("events") == json(expected));
      CHECK(r.json.at("next") == r.json.at("head"));
    }
    auto r = admin.get("/v1/projects/" + p + "/events?limit=1000");
    REQUIRE(r.status == 200);
    CHECK(r.json.at("events") == json(expected));
    std::set<std::string> types;
    for (const auto& e : expected) types.insert(e.at("type").get<std::string>());
    for (const auto* t :
         {"project.created", "project.cell_added", "project.member_added", "job.submitted", "schedule.created"}) {
      CHECK(types.contains(t));
    }
  }

  SECTION("a non-member gets 404 as for the project itself; an unknown project is 404; the whole log stays 403") {
    auto r = as.at("bob").get("/v1/projects/" + p + "/events");
    CHECK(r.status == 404);
    CHECK(r.json.at("error").at("code") == "not_found");
    CHECK(as.at("bob").get("/v1/projects/" + p).status == 404);
    CHECK(admin.get("/v1/projects/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a99/events").status == 404);
    CHECK(srv.client().get("/v1/projects/" + p + "/events").status == 401);
    CHECK(alice.get("/v1/events").status == 403);
    // Bob's own project feed holds his project only.
    auto own = as.at("bob").get("/v1/projects/" + q + "/events?limit=1000");
    REQUIRE(own.status == 200);
    for (const auto& e : own.json.at("events")) CHECK(e.at("stream") == "project-" + q);
  }

  SECTION("types (exact and prefix) and streams filter every feed") {
    auto jobs = alice.get("/v1/projects/" + p + "/events?types=job.*");
    REQUIRE(jobs.status == 200);
    REQUIRE(!jobs.json.at("events").empty());
    for (const auto& e : jobs.json.at("events")) CHECK(e.at("type").get<std::string>().starts_with("job."));
    auto two = alice.get("/v1/projects/" + p + "/events?types=project.cell_added,schedule.*");
    REQUIRE(two.status == 200);
    std::set<std::string> types;
    for (const auto& e : two.json.at("events")) types.insert(e.at("type").get<std::string>());
    CHECK(types == std::set<std::string>{"project.cell_added", "schedule.created"});
    auto one_stream = alice.get("/v1/projects/" + p + "/events?streams=schedule-" + schedule);
    REQUIRE(one_stream.status == 200);
    REQUIRE(!one_stream.json.at("events").empty());
    for (const auto& e : one_stream.json.at("events")) CHECK(e.at("stream") == "schedule-" + schedule);
    // Another project's stream named in a project feed yields nothing (never its events).
    auto other = alice.get("/v1/projects/" + p + "/events?streams=project-" + q);
    REQUIRE(other.status == 200);
    CHECK(other.json.at("events").empty());
    // The whole log, filtered: both projects' creations, nothing else.
    auto created = admin.get("/v1/events?types=project.created&limit=1000");
    REQUIRE(created.status == 200);
    std::set<std::string> streams;
    for (const auto& e : created.json.at("events")) {
      CHECK(e.at("type") == "project.created");
      streams.insert(e.at("stream").get<std::string>());
    }
    CHECK(streams == std::set<std::string>{"project-" + p, "project-" + q});
    auto by_stream = admin.get("/v1/events?streams=project-" + q + ",job-" + job + "&limit=1000");
    REQUIRE(by_stream.status == 200);
    for (const auto& e : by_stream.json.at("events")) {
      CHECK((e.at("stream") == "project-" + q || e.at("stream") == "job-" + job));
    }
  }

  SECTION("paging a filtered feed one event at a time reaches its end, every page advancing") {
    auto paged = read_to_end(alice, "/v1/projects/" + p + "/events?types=project.*", 1);
    std::vector<json> want;
    for (const auto& e : expected)
      if (e.at("type").get<std::string>().starts_with("project.")) want.push_back(e);
    CHECK(positions(paged) == positions(want));
    auto created = read_to_end(admin, "/v1/events?types=project.created", 1);
    CHECK(created.size() == 2);
    // A filter nothing matches still ends (pages of no events, `next` moving to the head).
    CHECK(read_to_end(admin, "/v1/events?types=no.such.type", 5).empty());
  }

  SECTION("bad filter values are 400 naming the value, on every feed") {
    const std::string many = [] {
      std::string s;
      for (int i = 0; i < 65; ++i) s += (i ? ",t" : "t") + std::to_string(i);
      return s;
    }();
    for (const auto& [query, value] : std::vector<std::pair<std::string, std::string>>{
             {"types=a,,b", "a,,b"},
             {"types=", ""},
             {"types=*.created", "*.created"},
             {"streams=project-*", "project-*"},
             {"types=" + std::string(257, 'x'), std::string(256, 'x')},
         }) {
      for (const std::string base : {std::string("/v1/events?"), std::string("/v1/events/stream?"),
                                     "/v1/projects/" + p + "/events?", "/v1/projects/" + p + "/events/stream?"}) {
        auto r = admin.get(base + query);
        INFO(base << query << ": " << r.body);
        CHECK(r.status == 400);
        CHECK(r.json.at("error").at("code") == "invalid_argument");
        CHECK(r.json.at("error").at("details").at("value") == value);
      }
    }
    auto over = admin.get("/v1/events?streams=" + many);
    CHECK(over.status == 400);
    CHECK(over.json.at("error").at("details").at("parameter") == "streams");
    for (const std::string base : {std::string("/v1/events/stream?"), "/v1/projects/" + p + "/events/stream?"}) {
      auto r = admin.get(base + "event_names=Message");
      CHECK(r.status == 400);
      CHECK(r.json.at("error").at("details").at("value") == "Message");
    }
  }

  SECTION("the project's SSE feed: default event names, event_names=message, filters, 404 for others") {
    const auto token = srv.login("alice", atrium::test::password_for("alice"));
    auto [status, body] = read_sse(srv, token, "/v1/projects/" + p + "/events/stream?after=0", "schedule.created");
    CHECK(status == 200);
    CHECK(body.find("event: project.created\n") != std::string::npos);
    CHECK(body.find("project-" + q) == std::string::npos);
    auto plain = read_sse(srv, token, "/v1/projects/" + p + "/events/stream?after=0&event_names=message&types=job.*",
                          "\"job.submitted\"");
    CHECK(plain.first == 200);
    CHECK(plain.second.find("event:") == std::string::npos);
    CHECK(plain.second.find("data: {") != std::string::npos);
    CHECK(plain.second.find("\"project.created\"") == std::string::npos);
    CHECK(plain.second.find("id: ") != std::string::npos);
    const auto bob = srv.login("bob", atrium::test::password_for("bob"));
    CHECK(read_sse(srv, bob, "/v1/projects/" + p + "/events/stream", "x").first == 404);
    // The whole log's SSE feed takes the filters too.
    const auto admin_token = srv.login("admin", k_admin_password);
    auto whole = read_sse(srv, admin_token, "/v1/events/stream?after=0&streams=project-" + q + "&event_names=message",
                          "project.cell_added");
    CHECK(whole.first == 200);
    CHECK(whole.second.find("project-" + p) == std::string::npos);
    CHECK(whole.second.find("event:") == std::string::npos);
  }

  SECTION("a console page's EventSource: the cookie without Origin passes with Sec-Fetch-Site: same-origin only") {
    const std::string own = "http://" + srv.address;
    auto login = srv.client().request(
        "POST", "/v1/auth/login",
        json{{"username", "alice"}, {"password", atrium::test::password_for("alice")}, {"cookie", true}}.dump(),
        {{"Origin", own}, {"Host", srv.address}});
    REQUIRE(login.status == 200);
    const auto set = login.headers.at("set-cookie");
    const auto cookie = set.substr(0, set.find(';'));
    const auto target = "/v1/projects/" + p + "/events/stream?after=0&event_names=message";
    auto same = read_sse(srv, {{"Cookie", cookie}, {"Sec-Fetch-Site", "same-origin"}}, target, "project.created");
    CHECK(same.first == 200);
    CHECK(read_sse(srv, {{"Cookie", cookie}}, target, "x").first == 403);
    CHECK(read_sse(srv, {{"Cookie", cookie}, {"Sec-Fetch-Site", "same-site"}}, target, "x").first == 403);
    CHECK(read_sse(srv, {{"Cookie", cookie}, {"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://evil.example"}},
                   target, "x")
              .first == 403);
  }
  CHECK(srv.stop() == 0);
}
