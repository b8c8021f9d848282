/// Co-editing of cells end to end against the real atriumd (docs/realtime.md,
/// "Co-editing"): `POST …/cells/{cell_id}/changes` with CodeMirror change sets (UTF-16
/// positions over non-ASCII text and emoji), conflicts that carry the missed updates,
/// `GET …/updates?since=`, whole-cell edits seen as one update, the limits (400, 403,
/// 404, 409, 410, 413), time travel and the audit log, and the kept history across a
/// restart that hydrates from a snapshot.

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {
using namespace atrium::test;
using json = nlohmann::json;

/// `{"version", "client_id", "updates":[{"changes"}…]}`.
json changes_body(std::uint64_t version, const std::vector<json>& changes, const std::string& client = "alice-1") {
  auto updates = json::array();
  for (const auto& c : changes) updates.push_back({{"changes", c}});
  return {{"version", version}, {"client_id", client}, {"updates", updates}};
}

}  // namespace

TEST_CASE("co-editing: change sets, conflicts, updates, limits, history", "[e2e][cells][collab]") {
  temp_dir dir;
  // Snapshots every 5 events: the restart below hydrates from a snapshot holding history.
  atriumd_server server(dir.path(), {"--snapshot-every", "5"});
  auto admin = server.admin();
  std::map<std::string, std::string> ids, tokens;
  for (const auto* name : {"alice", "bob", "vera", "otto"}) {
    const std::string n = name;
    ids[n] = id_of(admin.post("/v1/users", {{"username", n},
                                            {"email", n + "@example.org"},
                                            {"password", atrium::test::password_for(n, "-pw-123456")},
                                            {"role", "member"}}));
    tokens[n] = server.login(n, atrium::test::password_for(n, "-pw-123456"));
  }
  auto alice = server.client(tokens["alice"]);
  auto bob = server.client(tokens["bob"]);
  auto vera = server.client(tokens["vera"]);
  auto otto = server.client(tokens["otto"]);
  const auto p = id_of(alice.post("/v1/projects", {{"name", "Co-edit"}}));
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["bob"]}, {"role", "editor"}}).status == 200);
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["vera"]}, {"role", "viewer"}}).status == 200);
  const auto cells = "/v1/projects/" + p + "/cells";
  auto added = alice.post(cells, {{"kind", "sql"}, {"content", "select 1"}});
  REQUIRE(added.status == 201);
  const auto cell = added.json.at("cell_id").get<std::string>();
  const auto changes = cells + "/" + cell + "/changes";
  const auto updates = cells + "/" + cell + "/updates";
  const auto stream_version = [&] { return stream_events(admin, "project-" + p).size(); };

  // --- accepted on the current version: all updates, one event, version + n --------
  auto first = alice.post(
      changes, changes_body(1, {json::parse(R"([7, [1, "größe"]])"), json::parse(R"([[0, "-- 😀 naïve", ""], 12])")}));
  INFO(first.body);
  REQUIRE(first.status == 200);
  CHECK(first.json.at("version") == 3);
  CHECK(first.json.at("position").get<std::uint64_t>() > 0);
  CHECK(first.headers.at("etag") == "\"3\"");
  const auto after_first = first.json.at("position").get<std::uint64_t>();
  {
    auto got = bob.get(cells + "/" + cell);
    REQUIRE(got.status == 200);
    CHECK(got.json.at("content") == "-- 😀 naïve\nselect größe");
    CHECK(got.json.at("version") == 3);
    CHECK_FALSE(got.json.contains("updates"));
    auto project = bob.get("/v1/projects/" + p);
    CHECK_FALSE(project.json.contains("cell_updates"));
  }
  {
    const auto events = stream_events(admin, "project-" + p);
    const auto& last = events.back();
    CHECK(last.at("type") == "project.cell_changed");
    CHECK(last.at("data").at("version") == 3);
    CHECK(last.at("data").at("client_id") == "alice-1");
    CHECK(last.at("data").at("changes").size() == 2);
  }

  // --- GET updates?since= -------------------------------------------------------------
  {
    auto all = vera.get(updates + "?since=1");  // viewers read
    REQUIRE(all.status == 200);
    CHECK(all.json.at("version") == 3);
    REQUIRE(all.json.at("updates").size() == 2);
    CHECK(all.json.at("updates")[0] ==
          json{{"version", 2}, {"changes", json::parse(R"([7, [1, "größe"]])")}, {"client_id", "alice-1"}});
    CHECK(all.json.at("updates")[1].at("version") == 3);
    CHECK(vera.get(updates + "?since=2").json.at("updates").size() == 1);
    CHECK(vera.get(updates + "?since=3").json.at("updates") == json::array());
    CHECK(vera.get(updates + "?since=4").status == 400);
    CHECK(vera.get(updates + "?since=-1").status == 400);
    CHECK(vera.get(updates + "?since=x").status == 400);
    CHECK(vera.get(updates).status == 400);
    CHECK(vera.get(updates + "?since=0").status == 410);  // before the cell's first version
    CHECK(otto.get(updates + "?since=1").status == 404);
    CHECK(vera.get(cells + "/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70/updates?since=1").status == 404);
  }

  // --- conflicts: stale gets the updates since, newer none ------------------------------
  {
    const auto before = stream_version();
    auto stale = bob.post(changes, changes_body(2, {json::parse("[1]")}, "bob-1"));
    REQUIRE(stale.status == 409);
    const auto& e = stale.json.at("error");
    CHECK(e.at("code") == "version_conflict");
    CHECK(e.at("details").at("version") == 3);
    REQUIRE(e.at("details").at("updates").size() == 1);
    CHECK(e.at("details").at("updates")[0].at("version") == 3);
    CHECK(e.at("details").at("updates")[0].at("client_id") == "alice-1");
    auto newer = bob.post(changes, changes_body(7, {json::parse("[1]")}, "bob-1"));
    REQUIRE(newer.status == 409);
    CHECK(newer.json.at("error").at("details").at("updates") == json::array());
    CHECK(stream_version() == before);
  }

  // --- refused input: nothing appended -----------------------------------------------
  {
    const auto before = stream_version();
    // "-- 😀 naïve\nselect größe" is 24 UTF-16 units (the emoji counts 2).
    CHECK(bob.post(changes, changes_body(3, {json::parse("[24]")}, "bob-1")).status == 200);  // a no-change update
    CHECK(stream_version() == before + 1);
    auto mismatch = bob.post(changes, changes_body(4, {json::parse("[23]")}, "bob-1"));
    CHECK(mismatch.status == 400);
    CHECK(mismatch.json.at("error").at("code") == "invalid_argument");
    CHECK(mismatch.json.at("error").at("message").get<std::string>().find("24") != std::string::npos);
    auto cut = bob.post(changes, changes_body(4, {json::parse(R"([4, [0, "x"], 20])")}, "bob-1"));
    CHECK(cut.status == 400);
    CHECK(cut.json.at("error").at("message").get<std::string>().find("surrogate") != std::string::npos);
    for (const auto& bad : {json::parse(R"({"version":4,"client_id":"b","updates":[{"changes":[-1]}]})"),
                            json::parse(R"({"version":4,"client_id":"b","updates":[]})"),
                            json::parse(R"({"version":4,"client_id":"","updates":[{"changes":[24]}]})"),
                            json::parse(R"({"version":4,"updates":[{"changes":[24]}]})"),
                            json::parse(R"({"version":-4,"client_id":"b","updates":[{"changes":[24]}]})"),
                            json::parse(R"({"version":4,"client_id":"b","updates":[{"changes":[24],"x":1}]})"),
                            json::parse(R"({"version":4,"client_id":"b","updates":[[24]]})"),
                            json::parse(R"({"version":4,"client_id":"b","updates":[{"changes":[24]}],"extra":1})"),
                            json::parse(R"({"version":4,"client_id":"b","updates":[{"changes":[9007199254740993]}]})"),
                            json::parse(R"({"version":4,"client_id":"b","updates":[{"changes":[[0,"a\nb"],24]}]})")}) {
      INFO(bad.dump());
      CHECK(bob.post(changes, bad).status == 400);
    }
    CHECK(vera.post(changes, changes_body(4, {json::parse("[24]")}, "vera-1")).status == 403);
    CHECK(otto.post(changes, changes_body(4, {json::parse("[24]")}, "otto-1")).status == 404);
    CHECK(bob.post(cells + "/not-a-cell/changes", changes_body(4, {json::parse("[24]")})).status == 404);
    CHECK(bob.post(cells + "/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70/changes", changes_body(4, {json::parse("[24]")}))
              .status == 404);
    // Over 256 KiB: the body, and the resulting content.
    const std::string big(256 * 1024, 'z');
    CHECK(bob.post(changes, changes_body(4, {json::array({24, json::array({0, big})})})).status == 413);
    const std::string half(130 * 1024, 'h');
    CHECK(bob.post(changes, changes_body(4, {json::array({24, json::array({0, half})})})).status == 200);
    CHECK(bob.post(changes, changes_body(5, {json::array({24 + half.size(), json::array({0, half})})})).status == 413);
    CHECK(stream_version() == before + 2);
    // Back to something small.
    REQUIRE(bob.post(changes, changes_body(5, {json::array({json::array({24 + half.size(), "select 😀"})})})).status ==
            200);
  }

  // --- a whole-cell edit is one update replacing the document, client id "" ----------
  {
    auto edited = alice.request("PATCH", cells + "/" + cell,
                                json{{"content", "select 2\nfrom t"}, {"base_version", 6}, {"op_id", "op-1"}}.dump());
    REQUIRE(edited.status == 200);
    CHECK(edited.json.at("version") == 7);
    auto seen = bob.get(updates + "?since=6");
    REQUIRE(seen.status == 200);
    REQUIRE(seen.json.at("updates").size() == 1);
    CHECK(seen.json.at("updates")[0] ==
          json{{"version", 7}, {"changes", json::parse(R"([[9, "select 2", "from t"]])")}, {"client_id", ""}});
    // A co-editing client goes on from there.
    CHECK(bob.post(changes, changes_body(7, {json::parse(R"([15, [0, " ✓"]])")}, "bob-1")).status == 200);
    CHECK(bob.get(cells + "/" + cell).json.at("content") == "select 2\nfrom t ✓");
  }

  // --- time travel and the audit log ---------------------------------------------------
  {
    auto then = vera.get(cells + "/" + cell + "?as_of=" + std::to_string(after_first));
    REQUIRE(then.status == 200);
    CHECK(then.json.at("content") == "-- 😀 naïve\nselect größe");
    CHECK(then.json.at("version") == 3);
    auto audit = admin.get("/v1/audit?type=project.cell_changed&stream=project-" + p);
    REQUIRE(audit.status == 200);
    CHECK(audit.json.at("entries").size() == 5);
  }

  // --- the last 512 updates are kept; then 410 --------------------------------------
  std::uint64_t version = 8;
  {
    const std::vector<json> noop(256, json::parse("[17]"));  // "select 2\nfrom t ✓" is 17 units
    for (int i = 0; i < 3; ++i) {
      auto r = alice.post(changes, changes_body(version, noop));
      REQUIRE(r.status == 200);
      version += 256;
      CHECK(r.json.at("version") == version);
    }
    auto kept = bob.get(updates + "?since=" + std::to_string(version - 512));
    REQUIRE(kept.status == 200);
    CHECK(kept.json.at("updates").size() == 512);
    auto gone = bob.get(updates + "?since=" + std::to_string(version - 513));
    CHECK(gone.status == 410);
    CHECK(gone.json.at("error").at("code") == "gone");
    auto stale = bob.post(changes, changes_body(version - 513, {json::parse("[17]")}, "bob-1"));
    CHECK(stale.status == 410);
  }

  // --- after a restart (hydrated from a snapshot) the history is still there ---------------
  REQUIRE(server.stop() == 0);
  server.start();
  auto bob2 = server.client(server.login("bob", "b.o.b-pw-123456"));
  auto stale = bob2.post(changes, changes_body(version - 2, {json::parse("[17]")}, "bob-1"));
  REQUIRE(stale.status == 409);
  CHECK(stale.json.at("error").at("details").at("updates").size() == 2);
  CHECK(bob2.get(updates + "?since=" + std::to_string(version - 512)).json.at("updates").size() == 512);
  auto next = bob2.post(changes, changes_body(version, {json::parse(R"([[17, "done 🎉"]])")}, "bob-1"));
  REQUIRE(next.status == 200);
  CHECK(next.json.at("version") == version + 1);
  CHECK(bob2.get(cells + "/" + cell).json.at("content") == "done 🎉");
}
