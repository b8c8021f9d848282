/// Project cells end to end against the real atriumd: collaborative edits converge,
/// stale edits are refused with the current cell, retried op_ids append once (across a
/// restart too), viewers cannot edit, and the order follows the "after" links.

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {
using namespace atrium::test;
using json = nlohmann::json;

http_reply patch(const http_client& c, const std::string& target, const json& body) {
  return c.request("PATCH", target, body.dump());
}

/// The `project.cell_edited` events of the project's stream that carry `op_id`.
std::size_t edits_with(const http_client& admin, const std::string& project, const std::string& op_id) {
  std::size_t n = 0;
  for (const auto& e : stream_events(admin, "project-" + project)) {
    if (e.at("type") == "project.cell_edited" && e.at("data").at("op_id") == op_id) ++n;
  }
  return n;
}

/// Each cell's `after` names the cell before it ("" for the first).
void require_linked(const json& cells) {
  std::string previous;
  for (const auto& c : cells) {
    CHECK(c.at("after") == previous);
    previous = c.at("cell_id").get<std::string>();
  }
}

std::vector<std::string> order(const json& cells) {
  std::vector<std::string> ids;
  for (const auto& c : cells) ids.push_back(c.at("cell_id").get<std::string>());
  return ids;
}

}  // namespace

TEST_CASE("project cells: collaborative edits and conflicts and retries and order", "[e2e][cells]") {
  temp_dir dir;
  // Snapshots every 7 events: the restart below hydrates from a snapshot holding cells.
  atriumd_server server(dir.path(), {"--snapshot-every", "7"});
  auto admin = server.admin();

  std::map<std::string, std::string> ids, tokens;
  for (const auto* name : {"alice", "bob", "vera", "otto"}) {
    const std::string n = name;
    auto r = admin.post("/v1/users", {{"username", n},
                                      {"email", n + "@example.org"},
                                      {"password", atrium::test::password_for(n, "-pw-123456")},
                                      {"role", "member"}});
    ids[n] = id_of(r);
    tokens[n] = server.login(n, atrium::test::password_for(n, "-pw-123456"));
  }
  auto alice = server.client(tokens["alice"]);
  auto bob = server.client(tokens["bob"]);
  auto vera = server.client(tokens["vera"]);
  auto otto = server.client(tokens["otto"]);
  const auto p = id_of(alice.post("/v1/projects", {{"name", "Assay QC"}}));
  const auto cells = "/v1/projects/" + p + "/cells";
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["bob"]}, {"role", "editor"}}).status == 200);
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["vera"]}, {"role", "viewer"}}).status == 200);

  // --- adding: at the end by default, or after a named cell ("" = first) -------------
  auto a = alice.post(cells, {{"kind", "sql"}, {"content", "select 1"}});
  INFO(a.body);
  REQUIRE(a.status == 201);
  const auto cell_a = a.json.at("cell_id").get<std::string>();
  CHECK(cell_a.size() == 36);
  CHECK(a.json.at("version") == 1);
  CHECK(a.json.at("after") == "");
  CHECK(a.json.at("kind") == "sql");
  CHECK(a.json.contains("updated_at"));
  CHECK(a.headers.at("etag") == "\"1\"");
  auto b = bob.post(cells, {{"kind", "markdown"}, {"content", "# notes"}});
  REQUIRE(b.status == 201);
  const auto cell_b = b.json.at("cell_id").get<std::string>();
  CHECK(b.json.at("after") == cell_a);
  // A client-chosen id (UUIDv7), placed first.
  const std::string cell_c = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70";
  auto c = alice.post(cells, {{"kind", "python"}, {"content", "print(1)"}, {"after", ""}, {"cell_id", cell_c}});
  REQUIRE(c.status == 201);
  CHECK(c.json.at("cell_id") == cell_c);
  // Retrying that add is answered with the same cell and appends nothing.
  auto c_again = alice.post(cells, {{"kind", "python"}, {"content", "print(1)"}, {"after", ""}, {"cell_id", cell_c}});
  CHECK(c_again.status == 201);
  CHECK(c_again.json == c.json);
  {
    auto list = bob.get(cells);
    REQUIRE(list.status == 200);
    CHECK(order(list.json.at("cells")) == std::vector<std::string>{cell_c, cell_a, cell_b});
    require_linked(list.json.at("cells"));
    CHECK(list.json.at("project_id") == p);
  }

  // --- bad input -------------------------------------------------------------------
  CHECK(alice.post(cells, {{"kind", "cobol"}}).status == 400);
  CHECK(alice.post(cells, {{"kind", "sql"}, {"colour", "red"}}).status == 400);
  CHECK(alice.post(cells, {{"kind", "sql"}, {"cell_id", "not-a-uuid"}}).status == 400);
  CHECK(alice.post(cells, {{"kind", "sql"}, {"content", std::string(256 * 1024 + 1, 'x')}}).status == 413);
  CHECK(patch(alice, cells + "/" + cell_a, {{"content", "x"}, {"base_version", 1}, {"op_id", "o"}, {"after", ""}})
            .status == 400);
  CHECK(patch(alice, cells + "/" + cell_a, {{"content", "x"}, {"base_version", -1}, {"op_id", "o"}}).status == 400);
  CHECK(patch(alice, cells + "/" + cell_a, {{"content", "x"}, {"op_id", "o"}}).status == 400);

  // --- two users edit the same cell at once and converge ------------------------------
  // Each edits cell A 10 times; on a 409 it rebases on the current version the error
  // carries and tries again with a new op_id. No edit is lost: A ends at version 21.
  // Catch2 assertions are not thread-safe: the threads only record what went wrong.
  std::atomic<int> conflicts{0};
  auto editor_loop = [&](const http_client& who, const std::string& tag, std::string& failure) {
    try {
      std::uint64_t base = 1;
      for (int i = 0; i < 10; ++i) {
        for (int attempt = 0;; ++attempt) {
          if (attempt == 100) return void(failure = "no progress after 100 attempts");
          const auto op = tag + "-" + std::to_string(i) + "-" + std::to_string(attempt);
          auto r = patch(who, cells + "/" + cell_a,
                         {{"content", tag + " edit " + std::to_string(i)}, {"base_version", base}, {"op_id", op}});
          if (r.status == 200) {
            base = r.json.at("version").get<std::uint64_t>();
            break;
          }
          if (r.status != 409 || r.json.at("error").at("code") != "version_conflict") {
            return void(failure = std::to_string(r.status) + " " + r.body);
          }
          base = r.json.at("error").at("details").at("cell").at("version").get<std::uint64_t>();
          ++conflicts;
        }
      }
    } catch (const std::exception& ex) {
      failure = ex.what();
    }
  };
  std::string failure1, failure2;
  std::thread t1([&] { editor_loop(alice, "alice", failure1); });
  std::thread t2([&] { editor_loop(bob, "bob", failure2); });
  t1.join();
  t2.join();
  CHECK(failure1.empty());
  CHECK(failure2.empty());
  WARN("concurrent edits of one cell: " << conflicts.load() << " conflicts rebased");
  {
    auto seen_by_alice = alice.get(cells);
    auto seen_by_bob = bob.get(cells);
    REQUIRE(seen_by_alice.status == 200);
    CHECK(seen_by_alice.json == seen_by_bob.json);
    CHECK(seen_by_alice.json.at("cells").at(1).at("cell_id") == cell_a);
    CHECK(seen_by_alice.json.at("cells").at(1).at("version") == 21);
    // The project's own view has the same cells; the list of projects only counts them.
    CHECK(alice.get("/v1/projects/" + p).json.at("cells") == seen_by_alice.json.at("cells"));
    auto listed = bob.get("/v1/projects");
    REQUIRE(listed.json.at("projects").size() == 1);
    CHECK(listed.json.at("projects").at(0).at("cell_count") == 3);
    CHECK_FALSE(listed.json.at("projects").at(0).contains("cells"));
  }

  // --- a stale edit gets 409 with the current content --------------------------------
  const auto current = alice.get(cells).json.at("cells").at(1);
  auto stale = patch(bob, cells + "/" + cell_a, {{"content", "late"}, {"base_version", 5}, {"op_id", "bob-stale"}});
  INFO(stale.body);
  REQUIRE(stale.status == 409);
  const auto& details = stale.json.at("error").at("details");
  CHECK(stale.json.at("error").at("code") == "version_conflict");
  CHECK(details.at("cell_id") == cell_a);
  CHECK(details.at("base_version") == 5);
  CHECK(details.at("current_version") == 21);
  CHECK(details.at("cell").at("content") == current.at("content"));
  CHECK(details.at("cell").at("version") == 21);

  // --- a retried op_id appends once ----------------------------------------------------
  const json edit{{"content", "## findings"}, {"base_version", 1}, {"op_id", "alice-op-42"}};
  auto first = patch(alice, cells + "/" + cell_b, edit);
  REQUIRE(first.status == 200);
  CHECK(first.json.at("version") == 2);
  auto retry = patch(alice, cells + "/" + cell_b, edit);
  REQUIRE(retry.status == 200);
  CHECK(retry.headers.at("idempotency-replayed") == "true");
  CHECK(retry.json.at("content") == "## findings");
  CHECK(retry.json.at("version") == 2);
  CHECK(edits_with(admin, p, "alice-op-42") == 1);

  // --- viewers read and cannot change; outsiders do not see the project ----------------
  CHECK(vera.get(cells).status == 200);
  CHECK(patch(vera, cells + "/" + cell_b, {{"content", "x"}, {"base_version", 2}, {"op_id", "vera-1"}}).status == 403);
  CHECK(patch(vera, cells + "/" + cell_b, {{"after", ""}}).status == 403);
  CHECK(vera.post(cells, {{"kind", "sql"}}).status == 403);
  CHECK(vera.request("DELETE", cells + "/" + cell_b).status == 403);
  CHECK(otto.get(cells).status == 404);
  CHECK(patch(otto, cells + "/" + cell_b, {{"after", ""}}).status == 404);
  CHECK(otto.post(cells, {{"kind", "sql"}}).status == 404);
  CHECK(otto.request("DELETE", cells + "/" + cell_b).status == 404);
  CHECK(edits_with(admin, p, "vera-1") == 0);

  // --- moves follow the links ----------------------------------------------------------
  // Now: C, A, B. Move B first, then C after A: B, A, C.
  auto moved = patch(bob, cells + "/" + cell_b, {{"after", ""}});
  REQUIRE(moved.status == 200);
  CHECK(moved.json.at("after") == "");
  CHECK(moved.json.at("version") == 2);  // a move does not change the content's version
  REQUIRE(patch(alice, cells + "/" + cell_c, {{"after", cell_a}}).status == 200);
  auto list = alice.get(cells);
  CHECK(order(list.json.at("cells")) == std::vector<std::string>{cell_b, cell_a, cell_c});
  require_linked(list.json.at("cells"));
  const auto before_removal = last_position(admin, "project-" + p);

  // --- removing; nothing may follow a removed cell ---------------------------------------
  auto removed = bob.request("DELETE", cells + "/" + cell_a);
  REQUIRE(removed.status == 200);
  CHECK(order(removed.json.at("cells")) == std::vector<std::string>{cell_b, cell_c});
  CHECK(removed.json.at("cells").at(0).contains("updated_at"));
  require_linked(removed.json.at("cells"));
  CHECK(bob.request("DELETE", cells + "/" + cell_a).status == 200);  // again: a no-op
  auto after_removed = patch(alice, cells + "/" + cell_c, {{"after", cell_a}});
  CHECK(after_removed.status == 409);
  CHECK(after_removed.json.at("error").at("details").at("after") == cell_a);
  CHECK(patch(alice, cells + "/" + cell_a, {{"content", "x"}, {"base_version", 21}, {"op_id", "gone"}}).status == 404);

  // --- time travel: the cells as they were -----------------------------------------------
  auto then = alice.get(cells + "?as_of=" + std::to_string(before_removal));
  REQUIRE(then.status == 200);
  CHECK(order(then.json.at("cells")) == std::vector<std::string>{cell_b, cell_a, cell_c});
  CHECK(then.json.at("as_of").at("position") == before_removal);
  CHECK(alice.get("/v1/projects/" + p + "?as_of=" + std::to_string(before_removal)).json.at("cells").size() == 3);
  // One cell: now gone, then there.
  CHECK(vera.get(cells + "/" + cell_a).status == 404);
  auto one_then = vera.get(cells + "/" + cell_a + "?as_of=" + std::to_string(before_removal));
  REQUIRE(one_then.status == 200);
  CHECK(one_then.json.at("version") == 21);
  CHECK(one_then.json.at("after") == cell_b);
  auto one_now = vera.get(cells + "/" + cell_b);
  REQUIRE(one_now.status == 200);
  CHECK(one_now.json.at("content") == "## findings");
  CHECK(one_now.headers.at("etag") == "\"2\"");
  CHECK(otto.get(cells + "/" + cell_b).status == 404);

  // --- after a restart the op_id is still remembered -------------------------------------
  REQUIRE(server.stop() == 0);
  server.start();
  auto alice2 = server.client(tokens["alice"]);
  auto replay = patch(alice2, cells + "/" + cell_b, edit);
  INFO(replay.body);
  REQUIRE(replay.status == 200);
  CHECK(replay.headers.at("idempotency-replayed") == "true");
  CHECK(replay.json.at("version") == 2);
  auto admin2 = server.admin();
  CHECK(edits_with(admin2, p, "alice-op-42") == 1);
  CHECK(order(alice2.get(cells).json.at("cells")) == std::vector<std::string>{cell_b, cell_c});
}

TEST_CASE("project cells: a sql cell with a connection runs as a job and shows its last job", "[e2e][cells][run]") {
  temp_dir dir;
  atriumd_server server(dir.path());
  auto admin = server.admin();

  std::map<std::string, std::string> ids, tokens;
  for (const auto* name : {"alice", "bob", "carol", "vera", "otto"}) {
    const std::string n = name;
    auto r = admin.post("/v1/users", {{"username", n},
                                      {"email", n + "@example.org"},
                                      {"password", atrium::test::password_for(n, "-pw-123456")},
                                      {"role", "member"}});
    ids[n] = id_of(r);
    tokens[n] = server.login(n, atrium::test::password_for(n, "-pw-123456"));
  }
  auto alice = server.client(tokens["alice"]);  // owner of the project and the connection
  auto bob = server.client(tokens["bob"]);      // editor, user of the connection
  auto carol = server.client(tokens["carol"]);  // editor without a grant on the connection
  auto vera = server.client(tokens["vera"]);    // viewer, user of the connection
  auto otto = server.client(tokens["otto"]);    // no role on the project
  const auto p = id_of(alice.post("/v1/projects", {{"name", "Assay QC"}}));
  const auto cells = "/v1/projects/" + p + "/cells";
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["bob"]}, {"role", "editor"}}).status == 200);
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["carol"]}, {"role", "editor"}}).status == 200);
  REQUIRE(alice.post("/v1/projects/" + p + "/members", {{"user_id", ids["vera"]}, {"role", "viewer"}}).status == 200);

  // A SQLite connection whose file lies under the data dir's `files` (the default
  // `--sqlite-root`).
  const auto db = server.data / "files" / "assays.sqlite";
  std::filesystem::create_directories(db.parent_path());
  std::ofstream(db).flush();  // an empty file is an empty SQLite database
  const auto conn = id_of(alice.post("/v1/connections", {{"name", "assays"},
                                                         {"driver", "sqlite"},
                                                         {"params", {{"path", db.string()}}},
                                                         {"credentials", json::object()}}));
  for (const auto* who : {"bob", "vera"}) {
    REQUIRE(alice.post("/v1/connections/" + conn + "/members", {{"user_id", ids[who]}, {"role", "user"}}).status ==
            200);
  }

  // --- a cell added with a connection -------------------------------------------------
  auto added = bob.post(cells, {{"kind", "sql"}, {"content", "select 1 as one"}, {"connection_id", conn}});
  INFO(added.body);
  REQUIRE(added.status == 201);
  const auto cell = added.json.at("cell_id").get<std::string>();
  CHECK(added.json.at("connection_id") == conn);
  CHECK(added.json.at("last_job_id") == "");
  CHECK(added.json.at("version") == 1);
  {
    // One decision, one append: the add and the connection.
    auto history = stream_events(admin, "project-" + p);
    REQUIRE(history.size() >= 2);
    CHECK(history[history.size() - 2].at("type") == "project.cell_added");
    CHECK(history.back().at("type") == "project.cell_connection_set");
    CHECK(history.back().at("data") == json{{"cell_id", cell}, {"connection_id", conn}});
    CHECK(history.back().at("position").get<std::uint64_t>() ==
          history[history.size() - 2].at("position").get<std::uint64_t>() + 1);
  }
  // Only sql cells take one, and only a connection the caller may use.
  CHECK(bob.post(cells, {{"kind", "markdown"}, {"content", "# x"}, {"connection_id", conn}}).status == 400);
  CHECK(carol.post(cells, {{"kind", "sql"}, {"content", "select 2"}, {"connection_id", conn}}).status == 403);
  CHECK(bob.post(cells, {{"kind", "sql"}, {"connection_id", 42}}).status == 400);

  // --- PATCH sets and clears it -------------------------------------------------------
  auto bare = carol.post(cells, {{"kind", "sql"}, {"content", "select 2 as two"}});
  REQUIRE(bare.status == 201);
  const auto cell2 = bare.json.at("cell_id").get<std::string>();
  CHECK(bare.json.at("connection_id") == "");
  CHECK(patch(carol, cells + "/" + cell2, {{"connection_id", conn}}).status == 403);
  auto set = patch(bob, cells + "/" + cell2, {{"connection_id", conn}});
  INFO(set.body);
  REQUIRE(set.status == 200);
  CHECK(set.json.at("connection_id") == conn);
  CHECK(set.json.at("version") == 1);  // the content's version does not change
  auto cleared = patch(carol, cells + "/" + cell2, {{"connection_id", nullptr}});  // clearing needs no grant
  REQUIRE(cleared.status == 200);
  CHECK(cleared.json.at("connection_id") == "");
  REQUIRE(patch(bob, cells + "/" + cell2, {{"connection_id", conn}}).status == 200);
  REQUIRE(patch(bob, cells + "/" + cell2, {{"connection_id", ""}}).json.at("connection_id") == "");
  CHECK(patch(bob, cells + "/" + cell2, {{"connection_id", conn}, {"after", ""}}).status == 400);
  CHECK(patch(vera, cells + "/" + cell2, {{"connection_id", conn}}).status == 403);
  CHECK(patch(otto, cells + "/" + cell2, {{"connection_id", conn}}).status == 404);

  // --- running the cell -----------------------------------------------------------------
  auto ran = bob.request("POST", cells + "/" + cell + "/run");
  INFO(ran.body);
  REQUIRE(ran.status == 202);
  const auto job = ran.json.at("id").get<std::string>();
  CHECK(ran.json.at("project_id") == p);
  CHECK(ran.json.at("kind") == "sql");
  CHECK(ran.json.at("cell_id") == cell);
  CHECK(ran.json.at("connection_id") == conn);
  CHECK(ran.json.at("sql") == "select 1 as one");
  CHECK(ran.json.at("submitted_by") == ids["bob"]);
  CHECK(ran.json.at("max_attempts") == 1);
  CHECK(ran.headers.count("etag") == 1);
  {
    // The job as GET /v1/jobs/{id} shows it (its status may have moved on since).
    auto got = bob.get("/v1/jobs/" + job);
    REQUIRE(got.status == 200);
    CHECK(got.json.at("id") == job);
    CHECK(got.json.at("cell_id") == cell);
    auto events = job_events(admin, job);
    REQUIRE(events.size() >= 2);
    CHECK(events[0].at("type") == "job.submitted");
    CHECK(events[0].at("data").at("cell_id") == cell);
    CHECK(events[1].at("type") == "job.queued");
  }
  // The cell shows its last job, in the cell, the list and the project.
  CHECK(bob.get(cells + "/" + cell).json.at("last_job_id") == job);
  CHECK(vera.get("/v1/projects/" + p).json.at("cells").at(0).at("last_job_id") == job);
  CHECK(vera.get(cells).json.at("cells").at(0).at("last_job_id") == job);
  CHECK(vera.get(cells).json.at("cells").at(1).at("last_job_id") == "");

  // With options; the owner of the connection runs it too.
  auto again = alice.post(cells + "/" + cell + "/run", {{"timeout_s", 5}, {"max_attempts", 2}});
  INFO(again.body);
  REQUIRE(again.status == 202);
  const auto job2 = again.json.at("id").get<std::string>();
  CHECK(job2 != job);
  CHECK(again.json.at("timeout_s") == 5);
  CHECK(again.json.at("max_attempts") == 2);
  CHECK(admin.get(cells + "/" + cell).json.at("last_job_id") == job2);

  // --- who may run it, and what cannot run -----------------------------------------------
  const auto run_of = [&](const std::string& id) { return cells + "/" + id + "/run"; };
  CHECK(vera.request("POST", run_of(cell)).status == 403);   // a viewer, though a user of the connection
  CHECK(carol.request("POST", run_of(cell)).status == 403);  // an editor without the connection
  CHECK(otto.request("POST", run_of(cell)).status == 404);   // not in the project
  CHECK(bob.request("POST", "/v1/projects/" + ids["bob"] + "/cells/" + cell + "/run").status == 404);
  auto unknown = bob.request("POST", run_of("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a99"));
  CHECK(unknown.status == 404);
  CHECK(unknown.json.at("error").at("details").at("cell_id") == "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a99");
  auto md = bob.post(cells, {{"kind", "markdown"}, {"content", "# notes"}});
  REQUIRE(md.status == 201);
  auto not_sql = bob.request("POST", run_of(md.json.at("cell_id").get<std::string>()));
  CHECK(not_sql.status == 400);
  CHECK(not_sql.json.at("error").at("message").get<std::string>().find("only sql cells run") != std::string::npos);
  auto no_conn = bob.request("POST", run_of(cell2));
  CHECK(no_conn.status == 400);
  CHECK(no_conn.json.at("error").at("details").at("field") == "connection_id");
  auto empty = bob.post(cells, {{"kind", "sql"}, {"content", "  \n"}, {"connection_id", conn}});
  REQUIRE(empty.status == 201);
  auto empty_run = bob.request("POST", run_of(empty.json.at("cell_id").get<std::string>()));
  CHECK(empty_run.status == 400);
  CHECK(empty_run.json.at("error").at("details").at("field") == "content");
  CHECK(bob.post(run_of(cell), {{"colour", "red"}}).status == 400);
  CHECK(bob.post(run_of(cell), {{"timeout_s", -1}}).status == 400);
  CHECK(bob.post(run_of(cell), {{"timeout_s", 0}}).status == 400);
  CHECK(bob.post(run_of(cell), {{"max_attempts", 11}}).status == 400);
  CHECK(bob.request("POST", run_of(cell), "[1]").status == 400);
  CHECK(bob.request("GET", run_of(cell)).status == 405);
  // None of the refused runs submitted a job.
  CHECK(admin.get(cells + "/" + cell).json.at("last_job_id") == job2);

  // --- a rebuilt projects projection shows the same last jobs ---------------------------
  const auto before = admin.get(cells).json;
  REQUIRE(admin.request("POST", "/v1/admin/projections/projects/rebuild").status == 202);
  REQUIRE(wait_until(
      [&] {
        auto report = admin.get("/v1/admin/projections").json;
        for (const auto& pr : report.at("projections")) {
          if (pr.at("name") == "projects") return pr.at("status") == "live" && pr.at("slot") == 1;
        }
        return false;
      },
      std::chrono::seconds(30)));
  CHECK(admin.get(cells).json == before);
}
