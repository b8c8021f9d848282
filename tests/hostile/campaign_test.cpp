// The generated hostile HTTP campaign against the real atriumd: one test per route family
// (tests/hostile/campaign.cpp generates the variants; docs/hostile.md lists what each must
// answer). Each prints `hostile campaign <family>: N requests, 0 5xx, 0 hangs, ...`.
#include "tests/hostile/campaign.hpp"

namespace {

using namespace atrium::hostile;

void campaign(const std::string& family) {
  world w;
  for (const auto& f : http_families()) {
    if (f.name != family) continue;
    tally t{.name = family};
    run_family(w, t, f);
    t.report();
    return;
  }
  FAIL("no route family " << family);
}

}  // namespace

TEST_CASE("campaign: auth/login", "[hostile][campaign]") { campaign("auth/login"); }
TEST_CASE("campaign: users", "[hostile][campaign][needs-lead]") { campaign("users"); }
TEST_CASE("campaign: users/{id}", "[hostile][campaign][needs-lead]") { campaign("users/{id}"); }
TEST_CASE("campaign: projects", "[hostile][campaign]") { campaign("projects"); }
TEST_CASE("campaign: projects/{id}", "[hostile][campaign][needs-lead]") { campaign("projects/{id}"); }
TEST_CASE("campaign: cells", "[hostile][campaign][needs-lead]") { campaign("cells"); }
TEST_CASE("campaign: members", "[hostile][campaign][needs-lead]") { campaign("members"); }
TEST_CASE("campaign: groups", "[hostile][campaign][needs-lead]") { campaign("groups"); }
TEST_CASE("campaign: connections", "[hostile][campaign][needs-lead][needs-accounts]") { campaign("connections"); }
TEST_CASE("campaign: jobs", "[hostile][campaign][needs-lead]") { campaign("jobs"); }
TEST_CASE("campaign: schedules", "[hostile][campaign][needs-lead]") { campaign("schedules"); }
TEST_CASE("campaign: containers", "[hostile][campaign][needs-lead]") { campaign("containers"); }
TEST_CASE("campaign: workers", "[hostile][campaign][workers]") { campaign("workers"); }
TEST_CASE("campaign: audit", "[hostile][campaign][needs-lead]") { campaign("audit"); }
TEST_CASE("campaign: audit/export", "[hostile][campaign][needs-lead]") { campaign("audit/export"); }
TEST_CASE("campaign: events", "[hostile][campaign][needs-lead]") { campaign("events"); }
TEST_CASE("campaign: schemas/events", "[hostile][campaign]") { campaign("schemas/events"); }
TEST_CASE("campaign: streams/{s}", "[hostile][campaign][needs-lead]") { campaign("streams/{s}"); }
TEST_CASE("campaign: admin/projections", "[hostile][campaign][needs-lead]") { campaign("admin/projections"); }
TEST_CASE("campaign: admin/backups", "[hostile][campaign][needs-lead]") { campaign("admin/backups"); }
TEST_CASE("campaign: service-accounts", "[hostile][campaign]") { campaign("service-accounts"); }
TEST_CASE("campaign: tokens", "[hostile][campaign]") { campaign("tokens"); }

TEST_CASE("campaign: request line and header syntax", "[hostile][campaign]") {
  world w({}, false);
  tally t{.name = "request syntax"};
  run_request_syntax(w, t);
  w.prove_alive("request syntax");
  t.report();
}
