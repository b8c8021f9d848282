/// Remote workers end to end (issue 16, point 3), against the real atriumd with
/// `--job-slots 0` (no local job): the lease protocol driven by hand (claim, heartbeat,
/// upload, complete; a lease left to expire is requeued as attempt 2 and refused
/// afterwards; bad worker requests answer clear 4xx), then real `atriumd worker`
/// processes: 50 SQLite jobs over two workers, each run exactly once, and a worker
/// SIGKILLed mid-job whose job is re-run on the other worker as attempt 2.

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"
#include "tests/support/raw_client.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

/// A server without local slots, a project and a SQLite connection to `plates.sqlite`.
struct fleet_fixture {
  temp_dir dir;
  atriumd_server server;
  http_client admin;
  std::string project;
  std::string connection;

  explicit fleet_fixture(std::vector<std::string> args) : server(dir.path(), std::move(args)), admin(server.admin()) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((server.data / "files" / "plates.sqlite").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "create table plates(id integer, name text); insert into plates values (1, 'alpha');",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    project = id_of(admin.post("/v1/projects", {{"name", "fleet"}, {"description", ""}}));
    connection = id_of(admin.post("/v1/connections", {{"name", "plates"},
                                                      {"driver", "sqlite"},
                                                      {"params", {{"path", "plates.sqlite"}}},
                                                      {"credentials", json::object()}}));
  }

  std::string submit_sql(const std::string& sql, int max_attempts = 1) {
    return id_of(admin.post("/v1/jobs", {{"project_id", project},
                                         {"kind", "sql"},
                                         {"connection_id", connection},
                                         {"sql", sql},
                                         {"max_attempts", max_attempts}}));
  }

  /// Claims as `worker` (the admin's token), waiting up to `wait_s`.
  http_reply claim(const std::string& worker, int wait_s = 5) const {
    return admin.post("/v1/workers/claim", {{"worker", worker}, {"slots_free", 1}, {"wait_s", wait_s}});
  }

  http_reply on_lease(const std::string& lease, const std::string& what, json body) const {
    return admin.post("/v1/workers/leases/" + lease + "/" + what, body);
  }

  /// Starts `atriumd worker` named `name` with its own work dir.
  std::unique_ptr<child_process> worker(const std::string& name, int slots) {
    const auto token_file = dir.path() / (name + ".token");
    std::ofstream(token_file) << server.login("admin", k_admin_password) << "\n";
    std::vector<std::string> argv{ATRIUMD_PATH,    "worker",
                                  "--server",      "http://" + server.address,
                                  "--token-file",  token_file.string(),
                                  "--slots",       std::to_string(slots),
                                  "--name",        name,
                                  "--work-dir",    (dir.path() / name).string(),
                                  "--sqlite-root", (server.data / "files").string(),
                                  "--job-sandbox", "never"};
    return std::make_unique<child_process>(argv, std::map<std::string, std::string>{}, dir.path() / (name + ".log"));
  }
};

}  // namespace

TEST_CASE("workers: a job is claimed, heartbeated, uploaded and completed through the lease protocol",
          "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0", "--job-lease", "5s"});
  CHECK(f.claim("hand-1", 1).status == 204);  // nothing queued: none after the wait

  const auto job = f.submit_sql("select id, name from plates");
  const auto claimed = f.claim("hand-1");
  INFO(claimed.body);
  REQUIRE(claimed.status == 200);
  const auto lease = claimed.json.at("lease_id").get<std::string>();
  const auto& spec = claimed.json.at("job");
  CHECK(spec.at("id") == job);
  CHECK(spec.at("kind") == "sql");
  CHECK(spec.at("driver") == "sqlite");
  CHECK(spec.at("params").at("path") == "plates.sqlite");
  CHECK(spec.at("attempt") == 1);
  CHECK(claimed.json.at("lease_ms") == 5000);
  CHECK(wait_status(f.admin, job, {"running"}) == "running");

  const auto workers = f.admin.get("/v1/workers");
  REQUIRE(workers.status == 200);
  REQUIRE(workers.json.at("workers").size() == 1);
  CHECK(workers.json.at("workers")[0].at("name") == "hand-1");
  REQUIRE(workers.json.at("workers")[0].at("leases").size() == 1);
  CHECK(workers.json.at("workers")[0].at("leases")[0].at("lease_id") == lease);
  CHECK(workers.json.at("workers")[0].at("leases")[0].at("job_id") == job);

  auto beat = f.on_lease(lease, "heartbeat", {{"worker", "hand-1"}, {"rows", 1}, {"elapsed_ms", 10}});
  REQUIRE(beat.status == 200);
  CHECK(beat.json.at("cancel") == false);

  auto up = f.on_lease(lease, "result",
                       {{"worker", "hand-1"},
                        {"seq", 0},
                        {"columns", {{{"name", "id"}, {"type", "int"}}, {{"name", "name"}, {"type", "text"}}}},
                        {"rows", json::array({json::array({"1", "alpha"}), json::array({"2", nullptr})})}});
  INFO(up.body);
  REQUIRE(up.status == 200);
  CHECK(up.json.at("next_seq") == 1);
  CHECK(up.json.at("rows") == 2);
  // A retried batch is acknowledged, not applied twice; a batch from the future is refused.
  auto again =
      f.on_lease(lease, "result", {{"worker", "hand-1"}, {"seq", 0}, {"rows", json::array({json::array({"9", "x"})})}});
  CHECK(again.status == 200);
  CHECK(again.json.at("duplicate") == true);
  CHECK(f.on_lease(lease, "result", {{"worker", "hand-1"}, {"seq", 5}, {"log", "x"}}).status == 409);
  CHECK(f.on_lease(lease, "result", {{"worker", "hand-1"}, {"seq", 1}, {"log", "done\n"}}).status == 200);
  // The completion names how many batches it sent: a mismatch is refused.
  CHECK(f.on_lease(lease, "complete", {{"worker", "hand-1"}, {"outcome", "succeeded"}, {"batches", 1}}).status == 409);
  auto done = f.on_lease(lease, "complete", {{"worker", "hand-1"}, {"outcome", "succeeded"}, {"batches", 2}});
  INFO(done.body);
  REQUIRE(done.status == 200);
  // A retried completion succeeds again; anything else on the lease is refused.
  CHECK(f.on_lease(lease, "complete", {{"worker", "hand-1"}, {"outcome", "succeeded"}, {"batches", 2}}).status == 200);
  CHECK(f.on_lease(lease, "heartbeat", {{"worker", "hand-1"}}).status == 409);

  REQUIRE(wait_status(f.admin, job, {"succeeded", "failed"}) == "succeeded");
  const auto events = job_events(f.admin, job);
  CHECK(terminals(events) == 1);
  CHECK(count_of(events, "job.started") == 1);
  for (const auto& e : events) {
    if (e.at("type") == "job.started") CHECK(e.at("data").at("runner") == "hand-1");
    CHECK(e.dump().find("credentials") == std::string::npos);
  }
  CHECK(events.back().at("data").at("rows") == 2);
  auto rows = f.admin.get("/v1/jobs/" + job + "/result");
  REQUIRE(rows.status == 200);
  CHECK(rows.json.at("rows") == json::parse(R"([[1, "alpha"], [2, null]])"));
  CHECK(f.admin.get("/v1/jobs/" + job + "/log").body == "done\n");
}

TEST_CASE("workers: a lease not heartbeated is lost, the job is requeued as attempt 2 and the old lease refused",
          "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0", "--job-lease", "2s"});
  const auto job = f.submit_sql("select 1", 2);
  const auto first = f.claim("hand-1");
  REQUIRE(first.status == 200);
  const auto lease = first.json.at("lease_id").get<std::string>();

  // No heartbeat: after the lease (2 s) the job goes back to the queue.
  REQUIRE(
      wait_until([&] { return count_of(job_events(f.admin, job), "job.requeued") == 1; }, std::chrono::seconds(10)));
  for (const auto& e : job_events(f.admin, job)) {
    if (e.at("type") == "job.requeued")
      CHECK(e.at("data").dump().find("worker hand-1 lost its lease") != std::string::npos);
  }
  // Every later call with the old lease is refused as gone.
  auto late = f.on_lease(lease, "complete", {{"worker", "hand-1"}, {"outcome", "succeeded"}, {"batches", 0}});
  CHECK(late.status == 410);
  CHECK(late.json.at("error").at("code") == "gone");
  CHECK(f.on_lease(lease, "heartbeat", {{"worker", "hand-1"}}).status == 410);
  CHECK(f.on_lease(lease, "result", {{"worker", "hand-1"}, {"seq", 0}, {"log", "x"}}).status == 410);

  // Another worker gets attempt 2; its failure is the job's.
  const auto second = f.claim("hand-2");
  REQUIRE(second.status == 200);
  CHECK(second.json.at("job").at("attempt") == 2);
  const auto lease2 = second.json.at("lease_id").get<std::string>();
  CHECK(f.on_lease(lease2, "complete", {{"worker", "hand-1"}, {"outcome", "failed"}, {"batches", 0}}).status == 403);
  REQUIRE(f.on_lease(lease2, "complete",
                     {{"worker", "hand-2"}, {"outcome", "failed"}, {"error", "disk full"}, {"batches", 0}})
              .status == 200);
  REQUIRE(wait_status(f.admin, job, {"failed"}) == "failed");
  const auto events = job_events(f.admin, job);
  CHECK(count_of(events, "job.started") == 2);
  CHECK(terminals(events) == 1);
  CHECK(events.back().at("data").at("error") == "disk full");

  // With no attempt left, a lost lease fails the job with the reason.
  const auto once = f.submit_sql("select 2", 1);
  REQUIRE(f.claim("hand-3").status == 200);
  REQUIRE(wait_status(f.admin, once, {"failed"}, std::chrono::seconds(10)) == "failed");
  CHECK(job_events(f.admin, once).back().at("data").at("error") == "worker hand-3 lost its lease");
}

TEST_CASE("workers: bad worker requests answer clear 4xx", "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0"});
  const auto unknown = std::string("0193a1c2-0000-7000-8000-000000000000");
  const auto& a = f.admin;
  const auto code = [](const http_reply& r) { return r.json.is_object() ? r.json["error"].value("code", "") : ""; };

  auto r = f.on_lease(unknown, "heartbeat", {{"worker", "w"}});
  CHECK(r.status == 410);
  CHECK(code(r) == "gone");
  CHECK(f.on_lease("not-a-lease", "heartbeat", {{"worker", "w"}}).status == 400);
  CHECK(a.request("POST", "/v1/workers/claim", "{not json").status == 400);
  CHECK(a.request("POST", "/v1/workers/claim", "[]").status == 400);
  CHECK(a.post("/v1/workers/claim", {{"slots_free", 1}}).status == 400);                       // no worker
  CHECK(a.post("/v1/workers/claim", {{"worker", "bad name!"}, {"wait_s", 0}}).status == 400);  // bad name
  CHECK(a.post("/v1/workers/claim", {{"worker", std::string(65, 'w')}}).status == 400);        // too long
  CHECK(a.post("/v1/workers/claim", {{"worker", "w"}, {"slots_free", -1}}).status == 400);     // negative
  CHECK(a.post("/v1/workers/claim", {{"worker", "w"}, {"wait_s", 99}}).status == 400);         // too long a wait
  CHECK(a.post("/v1/workers/claim", {{"worker", "w"}, {"slots_free", "one"}}).status == 400);  // not a number
  CHECK(a.request("POST", "/v1/workers/claim", R"({"worker":"w","wait_s":0})", {{"Idempotency-Key", "k1"}}).status ==
        400);
  CHECK(f.on_lease(unknown, "result", {{"worker", "w"}}).status == 400);  // no seq
  CHECK(f.on_lease(unknown, "result", {{"worker", "w"}, {"seq", 0}, {"rows", "x"}}).status == 400);
  CHECK(
      f.on_lease(unknown, "result", {{"worker", "w"}, {"seq", 0}, {"rows", json::array({json::array({1})})}}).status ==
      400);
  CHECK(f.on_lease(unknown, "result", {{"worker", "w"}, {"seq", 0}, {"columns", {{{"name", 1}}}}}).status == 400);
  CHECK(f.on_lease(unknown, "complete", {{"worker", "w"}, {"outcome", "maybe"}}).status == 400);
  CHECK(f.on_lease(unknown, "complete", {{"worker", "w"}}).status == 400);
  CHECK(f.on_lease(unknown, "complete", {{"worker", "w"}, {"outcome", "failed"}, {"truncated", "no"}}).status == 400);
  CHECK(a.request("GET", "/v1/workers/claim").status == 405);

  // Authentication and the policy: no token 401; members may not work nor list workers.
  CHECK(f.server.client().post("/v1/workers/claim", {{"worker", "w"}}).status == 401);
  REQUIRE(a.post("/v1/users", {{"username", "mia"}, {"email", "mia@example.org"}, {"password", "m.i.a-password-1234"}})
              .status == 201);
  const auto member = f.server.client(f.server.login("mia", "m.i.a-password-1234"));
  CHECK(member.post("/v1/workers/claim", {{"worker", "w"}, {"wait_s", 0}}).status == 403);
  CHECK(member.get("/v1/workers").status == 403);

  // A lease of another worker is refused, and the job is untouched by it.
  const auto job = f.submit_sql("select 1");
  const auto claimed = f.claim("owner-w");
  REQUIRE(claimed.status == 200);
  const auto lease = claimed.json.at("lease_id").get<std::string>();
  CHECK(f.on_lease(lease, "heartbeat", {{"worker", "thief"}}).status == 403);
  CHECK(f.on_lease(lease, "result", {{"worker", "owner-w"}, {"seq", 0}, {"rows", json::array({json::array({"1"})})}})
            .status == 400);  // no columns
  CHECK(f.on_lease(lease, "result",
                   {{"worker", "owner-w"},
                    {"seq", 0},
                    {"columns", {{{"name", "a"}, {"type", "int"}}}},
                    {"rows", json::array({json::array({"1", "2"})})}})
            .status == 400);  // two cells for one column
  CHECK(wait_status(f.admin, job, {"running"}) == "running");
}

TEST_CASE("workers: two atriumd worker processes run 50 SQLite jobs, each exactly once", "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0"});
  auto w1 = f.worker("fleet-1", 2);
  auto w2 = f.worker("fleet-2", 2);
  std::vector<std::string> jobs;
  for (int i = 0; i < 50; ++i) jobs.push_back(f.submit_sql("select " + std::to_string(i) + " as n"));
  std::set<std::string> runners;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    INFO("job " << i << "\n" << atriumd_server::slurp(f.dir.path() / "fleet-1.log"));
    REQUIRE(wait_status(f.admin, jobs[i], {"succeeded", "failed"}, std::chrono::seconds(60)) == "succeeded");
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto events = job_events(f.admin, jobs[i]);
    CHECK(count_of(events, "job.started") == 1);
    CHECK(terminals(events) == 1);
    for (const auto& e : events) {
      if (e.at("type") == "job.started") runners.insert(e.at("data").at("runner").get<std::string>());
    }
    auto rows = f.admin.get("/v1/jobs/" + jobs[i] + "/result");
    REQUIRE(rows.status == 200);
    CHECK(rows.json.at("rows") == json::array({json::array({static_cast<int>(i)})}));
  }
  CHECK(runners == std::set<std::string>{"fleet-1", "fleet-2"});
  auto listed = f.admin.get("/v1/workers");
  REQUIRE(listed.status == 200);
  CHECK(listed.json.at("workers").size() == 2);
  // SIGTERM: each worker stops cleanly; the local results were removed once acknowledged.
  CHECK(w1->stop(SIGTERM) == 0);
  CHECK(w2->stop(SIGTERM) == 0);
  CHECK(std::filesystem::is_empty(f.dir.path() / "fleet-1" / "results"));
}

TEST_CASE("workers: a worker SIGKILLed mid-job loses its lease and the other worker re-runs it as attempt 2",
          "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0", "--job-lease", "2s"});
  auto doomed = f.worker("doomed", 2);  // a free slot: it also has a claim waiting when it dies
  const auto job = id_of(f.admin.post("/v1/jobs", {{"project_id", f.project},
                                                   {"kind", "script"},
                                                   {"language", "bash"},
                                                   {"script", "sleep 2; echo rerun-ok"},
                                                   {"max_attempts", 2}}));
  REQUIRE(wait_status(f.admin, job, {"running"}) == "running");
  std::string lease;
  REQUIRE(wait_until(
      [&] {
        const auto w = f.admin.get("/v1/workers").json;
        for (const auto& worker : w.at("workers")) {
          for (const auto& l : worker.at("leases")) {
            if (l.at("job_id") == job) lease = l.at("lease_id").get<std::string>();
          }
        }
        return !lease.empty();
      },
      std::chrono::seconds(5)));
  doomed->stop(SIGKILL);
  auto rescuer = f.worker("rescuer", 1);
  INFO(atriumd_server::slurp(f.dir.path() / "rescuer.log"));
  REQUIRE(wait_status(f.admin, job, {"succeeded", "failed"}, std::chrono::seconds(20)) == "succeeded");
  const auto events = job_events(f.admin, job);
  auto types = types_of(events);
  std::erase(types, "job.progressed");
  CHECK(types == std::vector<std::string>{"job.submitted", "job.queued", "job.started", "job.requeued", "job.started",
                                          "job.succeeded"});
  std::vector<json> started;
  for (const auto& e : events) {
    if (e.at("type") == "job.started") started.push_back(e.at("data"));
    if (e.at("type") == "job.requeued")
      CHECK(e.at("data").dump().find("worker doomed lost its lease") != std::string::npos);
  }
  REQUIRE(started.size() == 2);
  CHECK(started[0].at("runner") == "doomed");
  CHECK(started[0].at("attempt") == 1);
  CHECK(started[1].at("runner") == "rescuer");
  CHECK(started[1].at("attempt") == 2);
  CHECK(f.admin.get("/v1/jobs/" + job + "/log").body.find("rerun-ok") != std::string::npos);
  // The dead worker's lease is refused if its report comes late.
  auto late = f.on_lease(lease, "complete", {{"worker", "doomed"}, {"outcome", "succeeded"}, {"batches", 0}});
  CHECK(late.status == 410);
  // The server stops cleanly while the worker long-polls; the worker keeps retrying and
  // stops cleanly too.
  CHECK(f.server.stop(SIGTERM) == 0);
  REQUIRE(wait_until(
      [&] { return atriumd_server::slurp(f.dir.path() / "rescuer.log").find("claim failed") != std::string::npos; },
      std::chrono::seconds(10)));
  CHECK(rescuer->stop(SIGTERM) == 0);
}

TEST_CASE("workers: SIGTERM gives a running job back to the queue and the worker exits 0", "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0"});
  auto w = f.worker("leaving", 1);
  const auto job = id_of(f.admin.post("/v1/jobs", {{"project_id", f.project},
                                                   {"kind", "script"},
                                                   {"language", "bash"},
                                                   {"script", "sleep 60"},
                                                   {"max_attempts", 2}}));
  REQUIRE(wait_status(f.admin, job, {"running"}) == "running");
  INFO(atriumd_server::slurp(f.dir.path() / "leaving.log"));
  CHECK(w->stop(SIGTERM, std::chrono::seconds(20)) == 0);
  REQUIRE(wait_status(f.admin, job, {"queued"}, std::chrono::seconds(10)) == "queued");
  const auto events = job_events(f.admin, job);
  CHECK(terminals(events) == 0);
  bool reason = false;
  for (const auto& e : events) {
    if (e.at("type") == "job.requeued") {
      reason = e.at("data").dump().find("worker leaving stopped while running it") != std::string::npos;
    }
  }
  CHECK(reason);
}

TEST_CASE("workers: a jobs:work token of a service account runs jobs, and once revoked the worker gets none",
          "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0"});
  const auto account = id_of(f.admin.post("/v1/service-accounts", {{"name", "fleet-bot"}, {"role", "admin"}}));
  const auto made = f.admin.post("/v1/service-accounts/" + account + "/tokens",
                                 {{"name", "worker"}, {"scopes", json::array({"jobs:work"})}});
  INFO(made.body);
  REQUIRE(made.status == 201);
  const auto token_file = f.dir.path() / "scoped.token";
  std::ofstream(token_file) << made.json.at("token").get<std::string>() << "\n";
  std::vector<std::string> argv{ATRIUMD_PATH,    "worker",
                                "--server",      "http://" + f.server.address,
                                "--token-file",  token_file.string(),
                                "--name",        "scoped",
                                "--work-dir",    (f.dir.path() / "scoped").string(),
                                "--sqlite-root", (f.server.data / "files").string(),
                                "--job-sandbox", "never"};
  child_process w(argv, {}, f.dir.path() / "scoped.log");
  const auto first = f.submit_sql("select 1");
  const auto status = wait_status(f.admin, first, {"succeeded", "failed"});
  INFO(atriumd_server::slurp(f.dir.path() / "scoped.log"));
  REQUIRE(status == "succeeded");
  // The scope allows the worker routes and nothing else.
  auto scoped = f.server.client(made.json.at("token").get<std::string>());
  CHECK(scoped.get("/v1/users").status == 403);

  REQUIRE(f.admin.request("DELETE", "/v1/tokens/" + made.json.at("id").get<std::string>()).status < 300);
  const auto second = f.submit_sql("select 2");
  REQUIRE(wait_until(
      [&] {
        return atriumd_server::slurp(f.dir.path() / "scoped.log").find("refuses this worker's token") !=
               std::string::npos;
      },
      std::chrono::seconds(40)));
  CHECK(wait_status(f.admin, second, {"running", "succeeded"}, std::chrono::seconds(1)) == "queued");
  CHECK(w.stop(SIGTERM) == 0);
}

namespace {

/// Starts `atriumd worker` `name` (1 slot) and waits until its claim waits at the server
/// (listed in `GET /v1/workers` with a free slot).
std::unique_ptr<atrium::test::child_process> idle_worker(fleet_fixture& f, const std::string& name) {
  auto w = f.worker(name, 1);
  json listed;
  const bool waiting = wait_until(
      [&] {
        listed = f.admin.get("/v1/workers").json;
        for (const auto& worker : listed.at("workers")) {
          if (worker.at("name") == name && worker.at("slots_free") == 1) return true;
        }
        return false;
      },
      std::chrono::seconds(10));
  INFO(listed.dump() << "\n" << atriumd_server::slurp(f.dir.path() / (name + ".log")));
  REQUIRE(waiting);
  return w;
}

/// After the idle worker `gone` was stopped: a job with `max_attempts` 1 runs on a worker
/// started later, as attempt 1, with no trace of `gone`.
void job_runs_on_a_later_worker(fleet_fixture& f, const std::string& gone) {
  const auto job = f.submit_sql("select 42 as answer");
  auto live = f.worker("live", 1);
  INFO(atriumd_server::slurp(f.dir.path() / "live.log"));
  REQUIRE(wait_status(f.admin, job, {"succeeded", "failed"}, std::chrono::seconds(10)) == "succeeded");
  const auto events = job_events(f.admin, job);
  INFO(events.dump());
  auto types = types_of(events);
  std::erase(types, "job.progressed");
  CHECK(types == std::vector<std::string>{"job.submitted", "job.queued", "job.started", "job.succeeded"});
  for (const auto& e : events) {
    if (e.at("type") == "job.started") {
      CHECK(e.at("data").at("runner") == "live");
      CHECK(e.at("data").at("attempt") == 1);
    }
    CHECK(e.dump().find(gone) == std::string::npos);
  }
  CHECK(live->stop(SIGTERM) == 0);
}

}  // namespace

TEST_CASE("workers: a worker SIGTERMed while its claim waits withdraws it, and no job is leased to it",
          "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0", "--job-lease", "2s"});
  auto ghost = idle_worker(f, "ghost");
  CHECK(ghost->stop(SIGTERM) == 0);
  const auto log = atriumd_server::slurp(f.dir.path() / "ghost.log");
  INFO(log);
  CHECK(log.find("claims withdrawn") != std::string::npos);
  // The withdrawal (a claim with no free slot) is what GET /v1/workers shows last.
  for (const auto& worker : f.admin.get("/v1/workers").json.at("workers")) {
    if (worker.at("name") == "ghost") CHECK(worker.at("slots_free") == 0);
  }
  job_runs_on_a_later_worker(f, "ghost");
}

TEST_CASE("workers: a worker SIGKILLed while its claim waits gets no job: the server saw its connection close",
          "[e2e][workers]") {
  fleet_fixture f({"--job-slots", "0", "--job-lease", "2s"});
  auto ghost = idle_worker(f, "ghost");
  ghost->stop(SIGKILL);
  job_runs_on_a_later_worker(f, "ghost");
}

TEST_CASE("workers: a claim whose connection closed is dropped, not leased a job", "[e2e][workers]") {
  // The lease protocol by hand: a raw connection sends a claim and closes at once.
  fleet_fixture f({"--job-slots", "0", "--job-lease", "2s"});
  const auto body = json{{"worker", "hand-gone"}, {"slots_free", 1}, {"wait_s", 10}}.dump();
  raw_socket gone(f.server.address);
  REQUIRE(gone.send_all(raw_request(
      "POST", "/v1/workers/claim",
      {{"Authorization", "Bearer " + f.server.login("admin", k_admin_password)}, {"Content-Type", "application/json"}},
      body)));
  json listed;
  const bool waiting = wait_until(
      [&] {
        listed = f.admin.get("/v1/workers").json;
        for (const auto& worker : listed.at("workers")) {
          if (worker.at("name") == "hand-gone") return true;
        }
        return false;
      },
      std::chrono::seconds(5));
  INFO(listed.dump());
  REQUIRE(waiting);
  gone.close();  // while its claim waits
  const auto job = f.submit_sql("select 1");
  const auto claimed = f.claim("hand-live");
  INFO(claimed.body);
  REQUIRE(claimed.status == 200);
  CHECK(claimed.json.at("job").at("id") == job);
  CHECK(claimed.json.at("job").at("attempt") == 1);
}
