/// Co-editing of cells in the project decider (`change_cell`, `project.cell_changed`) as
/// given events / when command / then events or error, plus the kept update history in
/// the state, the row and the snapshot form (projections/views.hpp).
///
/// Cast as in project_cells_test.cpp: `owner-1`, `editor-1`, `viewer-1`, `outsider-1`.

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/project/change_set.hpp"
#include "events/project/project_decider.hpp"
#include "events/registry.hpp"
#include "projections/views.hpp"

namespace {

using namespace atrium;
using json = nlohmann::json;
using test::require_error;
using test::types_of;

principal member(std::string id) { return principal{std::move(id), {global_role::member}, false}; }
const principal owner = member("owner-1");
const principal editor = member("editor-1");
const principal viewer = member("viewer-1");
const principal outsider = member("outsider-1");

/// A project shared with an editor and a viewer, holding cell `c-1` ("select 1", version 1).
project_state given() {
  return test::fold<project_state>(std::vector<project_event>{
      project_created{"p-1", "Apollo", "", "owner-1"}, project_member_added{"owner-1", "owner"},
      project_member_added{"editor-1", "editor"}, project_member_added{"viewer-1", "viewer"},
      project_cell_added{"c-1", "sql", "select 1", ""}});
}

project_state then(project_state s, const std::vector<proposed_event>& events) {
  for (const auto& p : events) {
    auto e = decode_event<project_event>(p.type, p.data);
    REQUIRE(e.has_value());
    s = evolve(std::move(s), *e);
    ++s.version;
  }
  return s;
}

template <class Command>
project_state run(project_state s, const Command& cmd, const principal& who = editor) {
  auto r = decide(s, cmd, who);
  INFO((r ? std::string("ok") : r.error().message));
  REQUIRE(r.has_value());
  return then(std::move(s), *r);
}

change_cell change(std::uint64_t base, std::vector<json> updates, std::string client = "alice") {
  return change_cell{"c-1", base, std::move(client), std::move(updates)};
}

const project_cell& cell(const project_state& s) {
  const auto* c = s.find_cell("c-1");
  REQUIRE(c != nullptr);
  return *c;
}

}  // namespace

TEST_CASE("collab: changes on the current version append one event and advance by the number of updates",
          "[project][collab]") {
  const auto s = given();
  const auto r =
      decide(s, change(1, {json::parse(R"([7, [1, "2"]])"), json::parse(R"([[0, "-- 😀 ü", ""], 8])")}), editor);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == std::vector<std::string>{"project.cell_changed"});
  const auto& data = (*r)[0].data;
  CHECK(data.at("cell_id") == "c-1");
  CHECK(data.at("client_id") == "alice");
  CHECK(data.at("version") == 3);
  CHECK(data.at("changes").size() == 2);
  const auto after = then(s, *r);
  CHECK(cell(after).content == "-- 😀 ü\nselect 2");
  CHECK(cell(after).version == 3);
  REQUIRE(cell(after).updates.size() == 2);
  CHECK(cell(after).updates[0].version == 2);
  CHECK(cell(after).updates[1].version == 3);
  CHECK(cell(after).updates[1].client_id == "alice");
}

TEST_CASE("collab: a stale version gets every update since, a newer one none", "[project][collab]") {
  auto s = run(given(), change(1, {json::parse(R"([8, [0, " "]])")}, "alice"));
  s = run(std::move(s), change(2, {json::parse(R"([9, [0, "+"]])"), json::parse(R"([10, [0, "1"]])")}, "bob"));
  REQUIRE(cell(s).version == 4);
  REQUIRE(cell(s).content == "select 1 +1");

  const auto stale = decide(s, change(2, {json::parse("[11]")}), editor);
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error().code == errc::version_conflict);
  CHECK(stale.error().details.at("version") == 4);
  const auto& missed = stale.error().details.at("updates");
  REQUIRE(missed.size() == 2);
  CHECK(missed[0] == json{{"version", 3}, {"changes", json::parse(R"([9, [0, "+"]])")}, {"client_id", "bob"}});
  CHECK(missed[1].at("version") == 4);

  const auto from_start = decide(s, change(1, {json::parse("[8]")}), editor);
  REQUIRE_FALSE(from_start.has_value());
  CHECK(from_start.error().details.at("updates").size() == 3);

  const auto newer = decide(s, change(9, {json::parse("[11]")}), editor);
  REQUIRE_FALSE(newer.has_value());
  CHECK(newer.error().code == errc::version_conflict);
  CHECK(newer.error().details.at("updates") == json::array());
}

TEST_CASE("collab: a whole-cell edit counts as one update replacing the document", "[project][collab]") {
  auto s = run(given(), change(1, {json::parse(R"([8, [0, "😀"]])")}));
  s = run(std::move(s), edit_cell{"c-1", "select\n2", 2, "op-1"});
  CHECK(cell(s).version == 3);
  REQUIRE(cell(s).updates.size() == 2);
  CHECK(cell(s).updates[1].client_id.empty());
  CHECK(cell(s).updates[1].changes == json::parse(R"([[10, "select", "2"]])"));  // "select 1😀" is 10 units
  // A client on version 2 rebases over it; one on 3 goes on.
  const auto stale = decide(s, change(2, {json::parse("[10]")}), editor);
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error().details.at("updates").size() == 1);
  s = run(std::move(s), change(3, {json::parse(R"([8, [0, ";"]])")}));
  CHECK(cell(s).content == "select\n2;");
  // And an edit based on a co-edited version works as before.
  s = run(std::move(s), edit_cell{"c-1", "x", 4, "op-2"});
  CHECK(cell(s).version == 5);
}

TEST_CASE("collab: the last 512 updates are kept, older bases are gone", "[project][collab]") {
  auto s = given();
  for (std::uint64_t v = 1; v <= k_cell_updates_kept + 9; ++v) {
    const auto len = utf16_length(cell(s).content);
    s = run(std::move(s), change(v, {json::array({len, json::array({0, "x"})})}));
  }
  const auto& c = cell(s);
  CHECK(c.version == k_cell_updates_kept + 10);
  CHECK(c.updates.size() == k_cell_updates_kept);
  CHECK(c.oldest_base() == 10);
  const auto gone = decide(s, change(9, {json::parse("[1]")}), editor);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().code == errc::gone);
  CHECK(gone.error().details.at("oldest_version") == 10);
  const auto oldest = decide(s, change(10, {json::parse("[1]")}), editor);
  REQUIRE_FALSE(oldest.has_value());
  CHECK(oldest.error().code == errc::version_conflict);
  CHECK(oldest.error().details.at("updates").size() == k_cell_updates_kept);
}

TEST_CASE("collab: large updates are dropped beyond the byte budget, the newest kept", "[project][collab]") {
  auto s = given();
  const std::string big(100 * 1024, 'b');
  for (std::uint64_t v = 1; v <= 4; ++v)
    s = run(std::move(s), edit_cell{"c-1", big + std::to_string(v), v, "op-" + std::to_string(v)});
  CHECK(cell(s).version == 5);
  CHECK(cell(s).updates.size() == 2);  // 2 × 100 KiB fit in 256 KiB, 3 do not
  CHECK(cell(s).updates_bytes <= k_cell_updates_bytes);
  CHECK(cell(s).oldest_base() == 3);
}

TEST_CASE("collab: malformed, misfit and oversized changes are refused, nothing appended", "[project][collab]") {
  const auto s = given();
  auto code_of = [&](const change_cell& c) {
    const auto r = decide(s, c, editor);
    REQUIRE_FALSE(r.has_value());
    return r.error();
  };
  CHECK(code_of(change(1, {json::parse("[7]")})).code == errc::invalid_argument);  // length mismatch
  const auto second = code_of(change(1, {json::parse("[8]"), json::parse("[9]")}));
  CHECK(second.code == errc::invalid_argument);
  CHECK(second.details.at("index") == 1);  // the second fits the first's result, not the original
  CHECK(second.details.at("field") == "updates");
  CHECK(code_of(change(1, {json::parse(R"({"a":1})")})).code == errc::invalid_argument);
  // Malformed is refused even on a stale version.
  CHECK(code_of(change(0, {json::parse("[-1]")})).code == errc::invalid_argument);
  CHECK(code_of(change(1, {})).code == errc::invalid_argument);
  CHECK(code_of(change(1, std::vector<json>(k_max_cell_updates + 1, json::parse("[8]")))).code ==
        errc::invalid_argument);
  CHECK(code_of(change(1, {json::parse("[8]")}, "")).code == errc::invalid_argument);
  CHECK(code_of(change(1, {json::parse("[8]")}, std::string(65, 'c'))).code == errc::invalid_argument);
  CHECK(code_of(change(1, {json::parse("[8]")}, "tab\there")).code == errc::invalid_argument);
  CHECK(code_of(change(1, {json::parse("[8]")}, "ü")).code == errc::invalid_argument);
  const std::string half(k_max_cell_bytes / 2 + 1, 'y');
  const auto big = code_of(
      change(1, {json::array({8, json::array({0, half})}), json::array({8 + half.size(), json::array({0, half})})}));
  CHECK(big.code == errc::payload_too_large);
  CHECK(code_of(change_cell{"c-9", 1, "alice", {json::parse("[8]")}}).code == errc::not_found);
  // Exactly the limits: 256 updates, a 64-character client id.
  CHECK(decide(s, change(1, std::vector<json>(k_max_cell_updates, json::parse("[8]")), std::string(64, 'c')), editor)
            .has_value());
}

TEST_CASE("collab: only editors and owners change cells, archived projects refuse", "[project][collab]") {
  const auto s = given();
  require_error(decide(s, change(1, {json::parse("[8]")}), viewer), errc::forbidden);
  require_error(decide(s, change(1, {json::parse("[8]")}), outsider), errc::forbidden);
  CHECK(decide(s, change(1, {json::parse("[8]")}), owner).has_value());
  const auto archived = then(s, {make_event(project_archived{"done"})});
  require_error(decide(archived, change(1, {json::parse("[8]")}), editor), errc::failed_precondition);
  const auto removed = then(s, {make_event(project_cell_removed{"c-1"})});
  require_error(decide(removed, change(1, {json::parse("[8]")}), editor), errc::not_found);
}

TEST_CASE("collab: the kept updates survive the row (snapshot) form and stay out of the view", "[project][collab]") {
  auto s = run(given(), change(1, {json::parse(R"([8, [0, " 😀"]])")}, "alice"));
  s = run(std::move(s), edit_cell{"c-1", "x", 2, "op-1"});
  const auto row = project_row(s);
  CHECK(row.at("cell_updates").at("c-1").size() == 2);
  CHECK_FALSE(project_view_of_row(row).contains("cell_updates"));
  CHECK_FALSE(project_view(s).contains("cell_updates"));
  const auto back = project_from_row(row);
  const auto& c = cell(back);
  REQUIRE(c.updates.size() == 2);
  CHECK(c.updates[0].changes == json::parse(R"([8, [0, " 😀"]])"));
  CHECK(c.updates[0].client_id == "alice");
  CHECK(c.updates[1].version == 3);
  CHECK(c.updates_bytes == cell(s).updates_bytes);
  const auto served = cell_updates_of_row(row, "c-1");
  REQUIRE(served.has_value());
  CHECK(served->at("version") == 3);
  CHECK(served->at("updates").size() == 2);
  CHECK_FALSE(cell_updates_of_row(row, "c-9").has_value());
  // A row written before co-editing: the cell keeps no history, its version is its oldest base.
  auto old = row;
  old.erase("cell_updates");
  CHECK(cell(project_from_row(old)).oldest_base() == 3);
  CHECK(cell_updates_of_row(old, "c-1")->at("updates") == json::array());
}
