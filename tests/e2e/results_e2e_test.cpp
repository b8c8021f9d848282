/// The result API against the real atriumd: wiring of the file result store
/// (DATA_DIR/results), the checks before any result is read (401, 404, 400, 409), and a
/// finished job whose stored output the test wrote itself into DATA_DIR/results with the
/// same file result store (jobs do not run here; the in-process tests in
/// tests/adapters/http/results_api_test.cpp drive jobs to succeeded).

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "adapters/results/file_result_store.hpp"
#include "tests/support/atriumd.hpp"
#include "tests/support/e2e_json.hpp"

namespace {

using namespace atrium::test;
using json = nlohmann::json;

}  // namespace

TEST_CASE("result routes of the real atriumd answer 409 before the job finished, 400, 404 and a cancelled job's log",
          "[e2e][results]") {
  temp_dir dir;
  atriumd_server server(dir.path(), {"--job-slots", "0"});  // the job stays queued: its output is written below
  auto admin = server.admin();
  CHECK(std::filesystem::is_directory(server.data / "results"));  // opened at start

  const auto project = id_of(admin.post("/v1/projects", {{"name", "results"}}));
  const auto job = id_of(admin.post(
      "/v1/jobs", {{"project_id", project}, {"kind", "script"}, {"language", "bash"}, {"script", "echo hi"}}));

  // Output for the job, written as an executor would (a table and a log).
  {
    auto store = atrium::results_adapter::file_result_store::open_dir(server.data / "results");
    REQUIRE(store);
    auto writer = (*store)->create(job, {});
    REQUIRE(writer);
    REQUIRE((*writer)->begin({{"n", "int"}}));
    REQUIRE((*writer)->append(atrium::ports::row_batch{1, {"1", "2"}}));
    REQUIRE((*writer)->append_log("partial output\n"));
    REQUIRE((*writer)->commit());
  }

  const auto base = "/v1/jobs/" + job;
  for (const auto* route : {"/result", "/result?offset=0&limit=10", "/result.csv", "/log"}) {
    auto r = admin.get(base + route);
    INFO(route << " -> " << r.status << " " << r.body);
    CHECK(r.status == 409);
    CHECK(r.json["error"]["code"] == "failed_precondition");
    CHECK(r.json["error"]["message"] == "the job has not finished");
    CHECK(r.json["error"]["details"]["status"] == "queued");
  }
  for (const auto* bad : {"?limit=0", "?limit=10001", "?offset=-1", "?offset=x", "?limit=1e3"}) {
    auto r = admin.get(base + "/result" + bad);
    INFO(bad << " -> " << r.status << " " << r.body);
    CHECK(r.status == 400);
    CHECK(r.json["error"]["code"] == "invalid_argument");
  }
  CHECK(admin.get("/v1/jobs/0193a1b3-0f1e-7d2c-9b3a-4c5d6e7f8091/result").status == 404);
  CHECK(server.client("").get(base + "/result").status == 401);

  // A member outside the project cannot tell the job exists.
  REQUIRE(admin
              .post("/v1/users", {{"username", "outsider"},
                                  {"email", "o@example.org"},
                                  {"password", "o.u.t.s.i.d.e.r-pw-123456"},
                                  {"role", "member"}})
              .status == 201);
  auto outsider = server.client(server.login("outsider", "o.u.t.s.i.d.e.r-pw-123456"));
  for (const auto* route : {"/result", "/result.csv", "/log"}) CHECK(outsider.get(base + route).status == 404);

  // Cancelled: the stored table is not a result (404 no_result); the log is served.
  REQUIRE(admin.post(base + "/cancel", json::object()).status == 200);
  for (const auto* route : {"/result", "/result.csv"}) {
    auto r = admin.get(base + route);
    INFO(route << " -> " << r.status << " " << r.body);
    CHECK(r.status == 404);
    CHECK(r.json["error"]["details"]["reason"] == "no_result");
    CHECK(r.json["error"]["details"]["status"] == "cancelled");
  }
  auto log = admin.get(base + "/log");
  CHECK(log.status == 200);
  CHECK(log.headers["content-type"] == "text/plain; charset=utf-8");
  CHECK(log.body == "partial output\n");
}
