/// The project decider's cells as given events / when command / then events or error.
///
/// Cast as in project_decider_test.cpp: `owner-1` (owner), `editor-1` (editor),
/// `viewer-1` (viewer), `outsider-1` (a member with no role), `admin-1`, `auditor-1`.
/// Cell ids here are short names: the decider needs only distinct ids (the API insists
/// on UUIDv7).

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/domain.hpp"

#include "events/access/policy.hpp"
#include "events/project/project_decider.hpp"
#include "events/registry.hpp"

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
const principal admin{"admin-1", {global_role::admin}, false};
const principal auditor{"auditor-1", {global_role::auditor}, false};

/// A project shared with an editor and a viewer, followed by `more`.
project_state given(std::vector<project_event> more = {}) {
  std::vector<project_event> events{
      project_created{"p-1", "Apollo", "", "owner-1"}, project_member_added{"owner-1", "owner"},
      project_member_added{"editor-1", "editor"}, project_member_added{"viewer-1", "viewer"}};
  events.insert(events.end(), more.begin(), more.end());
  return test::fold<project_state>(events);
}

/// Folds decided events into `s` (as the entity actor does after the append).
project_state then(project_state s, const std::vector<proposed_event>& events) {
  for (const auto& p : events) {
    auto e = decode_event<project_event>(p.type, p.data);
    REQUIRE(e.has_value());
    s = evolve(std::move(s), *e);
    ++s.version;
  }
  return s;
}

/// Decides `cmd` as `who`, requires success, and folds the events into `s`.
template <class Command>
project_state run(project_state s, const Command& cmd, const principal& who = editor) {
  auto r = decide(s, cmd, who);
  INFO((r ? std::string("ok") : r.error().message));
  REQUIRE(r.has_value());
  return then(std::move(s), *r);
}

/// The cell ids in notebook order.
std::vector<std::string> order(const project_state& s) {
  std::vector<std::string> ids;
  for (const auto& c : s.cells) ids.push_back(c.cell_id);
  return ids;
}

using ids = std::vector<std::string>;

}  // namespace

// --- add --------------------------------------------------------------------------

TEST_CASE("cells: an editor adds a cell at version 1 after the last one by default", "[project][cells]") {
  const auto r = decide(given(), add_cell{"c-1", "sql", "select 1", std::nullopt}, editor);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == ids{"project.cell_added"});
  CHECK((*r)[0].data == json{{"cell_id", "c-1"}, {"kind", "sql"}, {"content", "select 1"}, {"after", ""}});
  auto s = then(given(), *r);
  REQUIRE(s.cells.size() == 1);
  CHECK(s.cells[0].version == 1);

  const auto r2 = decide(s, add_cell{"c-2", "markdown", "# notes", std::nullopt}, owner);
  REQUIRE(r2.has_value());
  CHECK((*r2)[0].data.at("after") == "c-1");
}

TEST_CASE("cells: after names the cell a new one follows and empty means first", "[project][cells]") {
  auto s = given();
  s = run(s, add_cell{"a", "sql", "", std::nullopt});
  s = run(s, add_cell{"b", "sql", "", std::nullopt});
  s = run(s, add_cell{"c", "python", "", std::string("a")});
  s = run(s, add_cell{"d", "chart", "", std::string("")});
  CHECK(order(s) == ids{"d", "a", "c", "b"});
}

TEST_CASE("cells: two adds after the same cell both land and the later one comes first", "[project][cells]") {
  // Alice and Bob both decided "after a" on the same state; the actor applies them in
  // turn, each decided on the state the other left.
  auto s = run(given(), add_cell{"a", "sql", "", std::nullopt});
  s = run(s, add_cell{"b", "sql", "", std::nullopt});
  s = run(s, add_cell{"alice", "sql", "", std::string("a")}, editor);
  s = run(s, add_cell{"bob", "sql", "", std::string("a")}, owner);
  CHECK(order(s) == ids{"a", "bob", "alice", "b"});
}

TEST_CASE("cells: kinds are markdown sql python and chart only", "[project][cells]") {
  for (const auto* kind : {"markdown", "sql", "python", "chart"}) {
    CHECK(decide(given(), add_cell{"c-1", kind, "", std::nullopt}, editor).has_value());
  }
  const auto r = decide(given(), add_cell{"c-1", "cobol", "", std::nullopt}, editor);
  require_error(r, errc::invalid_argument);
  CHECK(r.error().details.at("field") == "kind");
}

TEST_CASE("cells: content is limited to 256 KiB per cell", "[project][cells]") {
  CHECK(decide(given(), add_cell{"c-1", "sql", std::string(k_max_cell_bytes, 'x'), std::nullopt}, editor).has_value());
  const auto r = decide(given(), add_cell{"c-1", "sql", std::string(k_max_cell_bytes + 1, 'x'), std::nullopt}, editor);
  require_error(r, errc::payload_too_large);
  CHECK(r.error().details.at("limit") == k_max_cell_bytes);
}

TEST_CASE("cells: a retried add of the same cell is a no-op and a different one a conflict", "[project][cells]") {
  auto s = run(given(), add_cell{"c-1", "sql", "select 1", std::nullopt});
  auto same = decide(s, add_cell{"c-1", "sql", "select 1", std::nullopt}, editor);
  REQUIRE(same.has_value());
  CHECK(same->empty());
  require_error(decide(s, add_cell{"c-1", "sql", "select 2", std::nullopt}, editor), errc::already_exists);
  s = run(s, remove_cell{"c-1"});
  require_error(decide(s, add_cell{"c-1", "sql", "select 1", std::nullopt}, editor), errc::already_exists);
}

TEST_CASE("cells: adding after an unknown cell is invalid and after a removed cell a conflict", "[project][cells]") {
  auto s = run(given(), add_cell{"a", "sql", "", std::nullopt});
  s = run(s, remove_cell{"a"});
  const auto unknown = decide(s, add_cell{"b", "sql", "", std::string("nope")}, editor);
  require_error(unknown, errc::invalid_argument);
  CHECK(unknown.error().details.at("after") == "nope");
  const auto removed = decide(s, add_cell{"b", "sql", "", std::string("a")}, editor);
  require_error(removed, errc::failed_precondition);
  CHECK(removed.error().details.at("removed") == true);
}

// --- who may ----------------------------------------------------------------------

TEST_CASE("cells: viewers outsiders and auditors are refused and admins act as owners", "[project][cells][access]") {
  auto s = run(given(), add_cell{"c-1", "sql", "x", std::nullopt});
  for (const auto& who : {viewer, outsider, auditor}) {
    require_error(decide(s, add_cell{"c-2", "sql", "", std::nullopt}, who), errc::forbidden);
    require_error(decide(s, edit_cell{"c-1", "y", 1, "op-1"}, who), errc::forbidden);
    require_error(decide(s, move_cell{"c-1", ""}, who), errc::forbidden);
    require_error(decide(s, remove_cell{"c-1"}, who), errc::forbidden);
  }
  CHECK(decide(s, edit_cell{"c-1", "y", 1, "op-1"}, admin).has_value());
  CHECK(decide(s, edit_cell{"c-1", "y", 1, "op-1"}, owner).has_value());
}

TEST_CASE("cells: an archived project refuses cell changes", "[project][cells]") {
  auto s = run(given(), add_cell{"c-1", "sql", "x", std::nullopt});
  s = run(s, archive_project{""}, owner);
  require_error(decide(s, edit_cell{"c-1", "y", 1, "op-1"}, editor), errc::failed_precondition);
  require_error(decide(s, add_cell{"c-2", "sql", "", std::nullopt}, editor), errc::failed_precondition);
}

// --- edit -------------------------------------------------------------------------

TEST_CASE("cells: an edit based on the current version bumps the version", "[project][cells][edit]") {
  auto s = run(given(), add_cell{"c-1", "sql", "select 1", std::nullopt});
  const auto r = decide(s, edit_cell{"c-1", "select 2", 1, "op-1"}, editor);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == ids{"project.cell_edited"});
  CHECK((*r)[0].data == json{{"cell_id", "c-1"}, {"content", "select 2"}, {"version", 2}, {"op_id", "op-1"}});
  s = then(s, *r);
  REQUIRE(s.find_cell("c-1") != nullptr);
  CHECK(s.find_cell("c-1")->content == "select 2");
  CHECK(s.find_cell("c-1")->version == 2);
}

TEST_CASE("cells: a stale edit is refused with the current content and version", "[project][cells][edit]") {
  auto s = run(given(), add_cell{"c-1", "sql", "select 1", std::nullopt});
  s = run(s, edit_cell{"c-1", "select 2", 1, "op-alice"});
  const auto r = decide(s, edit_cell{"c-1", "select 3", 1, "op-bob"}, owner);
  require_error(r, errc::version_conflict);
  const auto& d = r.error().details;
  CHECK(d.at("cell_id") == "c-1");
  CHECK(d.at("base_version") == 1);
  CHECK(d.at("current_version") == 2);
  CHECK(d.at("cell") ==
        json{{"cell_id", "c-1"}, {"kind", "sql"}, {"content", "select 2"}, {"version", 2}, {"after", ""}});
  // Based on what it now knows, the second edit goes through.
  CHECK(decide(s, edit_cell{"c-1", "select 3", 2, "op-bob"}, owner).has_value());
}

TEST_CASE("cells: an edit retried with an applied op_id appends nothing", "[project][cells][edit]") {
  auto s = run(given(), add_cell{"c-1", "sql", "select 1", std::nullopt});
  s = run(s, edit_cell{"c-1", "select 2", 1, "op-1"});
  // The retry still names base version 1, now stale: the op_id answers it as done.
  const auto retry = decide(s, edit_cell{"c-1", "select 2", 1, "op-1"}, editor);
  REQUIRE(retry.has_value());
  CHECK(retry->empty());
  // Also after someone else's edit on top of it.
  s = run(s, edit_cell{"c-1", "select 3", 2, "op-2"}, owner);
  const auto late = decide(s, edit_cell{"c-1", "select 2", 1, "op-1"}, editor);
  REQUIRE(late.has_value());
  CHECK(late->empty());
  CHECK(s.find_cell("c-1")->version == 3);
}

TEST_CASE("cells: an op_id used on another cell is refused", "[project][cells][edit]") {
  auto s = run(given(), add_cell{"a", "sql", "", std::nullopt});
  s = run(s, add_cell{"b", "sql", "", std::nullopt});
  s = run(s, edit_cell{"a", "x", 1, "op-1"});
  const auto r = decide(s, edit_cell{"b", "x", 1, "op-1"}, editor);
  require_error(r, errc::already_exists);
  CHECK(r.error().details.at("field") == "op_id");
}

TEST_CASE("cells: op_ids are remembered for the last k_recent_edits edits only", "[project][cells][edit]") {
  auto s = run(given(), add_cell{"c-1", "sql", "", std::nullopt});
  for (std::uint64_t v = 1; v <= k_recent_edits + 1; ++v) {
    s = run(s, edit_cell{"c-1", std::to_string(v), v, "op-" + std::to_string(v)});
  }
  CHECK(s.recent_edits.size() == k_recent_edits);
  CHECK(s.recent_edits.front().op_id == "op-2");
  // op-1 fell out of the window: its retry is judged on its (stale) base version.
  require_error(decide(s, edit_cell{"c-1", "1", 1, "op-1"}, editor), errc::version_conflict);
  CHECK(decide(s, edit_cell{"c-1", "2", 2, "op-2"}, editor)->empty());
}

TEST_CASE("cells: edits need a valid op_id and a live cell", "[project][cells][edit]") {
  auto s = run(given(), add_cell{"c-1", "sql", "", std::nullopt});
  require_error(decide(s, edit_cell{"c-1", "x", 1, ""}, editor), errc::invalid_argument);
  require_error(decide(s, edit_cell{"c-1", "x", 1, "has space"}, editor), errc::invalid_argument);
  require_error(decide(s, edit_cell{"c-1", "x", 1, std::string(129, 'o')}, editor), errc::invalid_argument);
  require_error(decide(s, edit_cell{"c-9", "x", 1, "op-1"}, editor), errc::not_found);
  require_error(decide(s, edit_cell{"c-1", std::string(k_max_cell_bytes + 1, 'x'), 1, "op-1"}, editor),
                errc::payload_too_large);
  s = run(s, remove_cell{"c-1"});
  const auto gone = decide(s, edit_cell{"c-1", "x", 1, "op-1"}, editor);
  require_error(gone, errc::not_found);
  CHECK(gone.error().details.at("removed") == true);
}

// --- move and remove ----------------------------------------------------------------

TEST_CASE("cells: moves reorder by links and many moves keep every cell once", "[project][cells][move]") {
  auto s = given();
  for (const auto* id : {"a", "b", "c", "d", "e"}) s = run(s, add_cell{id, "markdown", id, std::nullopt});
  CHECK(order(s) == ids{"a", "b", "c", "d", "e"});
  s = run(s, move_cell{"e", ""});
  CHECK(order(s) == ids{"e", "a", "b", "c", "d"});
  s = run(s, move_cell{"a", "d"});
  CHECK(order(s) == ids{"e", "b", "c", "d", "a"});
  s = run(s, move_cell{"c", "e"});
  CHECK(order(s) == ids{"e", "c", "b", "d", "a"});
  // Rotate the last cell to the front many times: five rotations are the identity.
  for (int i = 0; i < 50; ++i) s = run(s, move_cell{s.cells.back().cell_id, ""});
  CHECK(order(s) == ids{"e", "c", "b", "d", "a"});
  // Versions and contents travel with their cells.
  for (const auto& c : s.cells) {
    CHECK(c.content == c.cell_id);
    CHECK(c.version == 1);
  }
}

TEST_CASE("cells: moving where a cell already is is a no-op", "[project][cells][move]") {
  auto s = run(given(), add_cell{"a", "sql", "", std::nullopt});
  s = run(s, add_cell{"b", "sql", "", std::nullopt});
  const auto r = decide(s, move_cell{"b", "a"}, editor);
  REQUIRE(r.has_value());
  CHECK(r->empty());
  const auto first = decide(s, move_cell{"a", ""}, editor);
  REQUIRE(first.has_value());
  CHECK(first->empty());
}

TEST_CASE("cells: moving after a removed or unknown cell or itself is an error", "[project][cells][move]") {
  auto s = given();
  for (const auto* id : {"a", "b", "c"}) s = run(s, add_cell{id, "sql", "", std::nullopt});
  s = run(s, remove_cell{"b"});
  const auto removed = decide(s, move_cell{"a", "b"}, editor);
  require_error(removed, errc::failed_precondition);
  CHECK(removed.error().details.at("after") == "b");
  require_error(decide(s, move_cell{"a", "zzz"}, editor), errc::invalid_argument);
  require_error(decide(s, move_cell{"a", "a"}, editor), errc::invalid_argument);
  require_error(decide(s, move_cell{"b", ""}, editor), errc::not_found);
  const auto r = decide(s, move_cell{"a", "c"}, editor);
  REQUIRE(r.has_value());
  CHECK((*r)[0].data == json{{"cell_id", "a"}, {"after", "c"}});
  CHECK(order(then(s, *r)) == ids{"c", "a"});
}

TEST_CASE("cells: removing takes the cell out and removing it again is a no-op", "[project][cells][remove]") {
  auto s = given();
  for (const auto* id : {"a", "b", "c"}) s = run(s, add_cell{id, "sql", "", std::nullopt});
  s = run(s, edit_cell{"b", "x", 1, "op-b"});
  const auto r = decide(s, remove_cell{"b"}, editor);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == ids{"project.cell_removed"});
  s = then(s, *r);
  CHECK(order(s) == ids{"a", "c"});
  CHECK(s.removed_cells.contains("b"));
  CHECK(s.recent_edits.empty());
  const auto again = decide(s, remove_cell{"b"}, editor);
  REQUIRE(again.has_value());
  CHECK(again->empty());
  require_error(decide(s, remove_cell{"zzz"}, editor), errc::not_found);
}

TEST_CASE("cells: a project holds at most k_max_cells cells", "[project][cells]") {
  auto s = given();
  for (std::size_t i = 0; i < k_max_cells; ++i) s.cells.push_back({"c-" + std::to_string(i), "sql", "", 1});
  require_error(decide(s, add_cell{"one-more", "sql", "", std::nullopt}, editor), errc::failed_precondition);
}

// --- connections of sql cells -------------------------------------------------------

TEST_CASE("cells: a sql cell added with a connection decides the add and the connection in one decision",
          "[project][cells][connection]") {
  const auto r = decide(given(), add_cell{"c-1", "sql", "select 1", std::nullopt, "conn-1", true}, editor);
  REQUIRE(r.has_value());
  REQUIRE(types_of(*r) == ids{"project.cell_added", "project.cell_connection_set"});
  CHECK((*r)[0].data == json{{"cell_id", "c-1"}, {"kind", "sql"}, {"content", "select 1"}, {"after", ""}});
  CHECK((*r)[1].data == json{{"cell_id", "c-1"}, {"connection_id", "conn-1"}});
  const auto s = then(given(), *r);
  REQUIRE(s.cells.size() == 1);
  CHECK(s.cells[0].connection_id == "conn-1");
  CHECK(s.cells[0].version == 1);

  SECTION("without a connection only the add") {
    const auto plain = decide(given(), add_cell{"c-2", "sql", "select 1", std::nullopt}, editor);
    REQUIRE(plain.has_value());
    CHECK(types_of(*plain) == ids{"project.cell_added"});
  }
  SECTION("a retried add with the same connection is a no-op; with another one it is refused") {
    const auto again = decide(s, add_cell{"c-1", "sql", "select 1", std::nullopt, "conn-1", true}, editor);
    REQUIRE(again.has_value());
    CHECK(again->empty());
    require_error(decide(s, add_cell{"c-1", "sql", "select 1", std::nullopt, "conn-2", true}, editor),
                  errc::already_exists);
    require_error(decide(s, add_cell{"c-1", "sql", "select 1", std::nullopt}, editor), errc::already_exists);
  }
}

TEST_CASE("cells: only sql cells take a connection, and only one the caller may use", "[project][cells][connection]") {
  for (const auto* kind : {"markdown", "python", "chart"}) {
    INFO(kind);
    const auto r = decide(given(), add_cell{"c-1", kind, "x", std::nullopt, "conn-1", true}, editor);
    require_error(r, errc::invalid_argument);
    CHECK(r.error().details.at("field") == "connection_id");
  }
  // Not usable by the caller: forbidden; admins use every connection.
  require_error(decide(given(), add_cell{"c-1", "sql", "select 1", std::nullopt, "conn-1", false}, editor),
                errc::forbidden);
  const auto by_admin = decide(given(), add_cell{"c-1", "sql", "select 1", std::nullopt, "conn-1", false}, admin);
  REQUIRE(by_admin.has_value());
  CHECK(by_admin->size() == 2);
  // A malformed id.
  require_error(decide(given(), add_cell{"c-1", "sql", "", std::nullopt, std::string(65, 'x'), true}, editor),
                errc::invalid_argument);
  require_error(decide(given(), add_cell{"c-1", "sql", "", std::nullopt, "conn\n1", true}, editor),
                errc::invalid_argument);
}

TEST_CASE("cells: set_cell_connection sets, clears, and is a no-op when unchanged", "[project][cells][connection]") {
  auto s =
      given({project_cell_added{"c-1", "sql", "select 1", ""}, project_cell_added{"c-2", "markdown", "# m", "c-1"}});

  const auto set = decide(s, set_cell_connection{"c-1", "conn-1", true}, editor);
  REQUIRE(set.has_value());
  REQUIRE(types_of(*set) == ids{"project.cell_connection_set"});
  CHECK((*set)[0].data == json{{"cell_id", "c-1"}, {"connection_id", "conn-1"}});
  s = then(std::move(s), *set);
  CHECK(s.find_cell("c-1")->connection_id == "conn-1");
  CHECK(s.find_cell("c-1")->version == 1);  // the content's version does not change

  // The same connection again: nothing to append.
  const auto same = decide(s, set_cell_connection{"c-1", "conn-1", true}, editor);
  REQUIRE(same.has_value());
  CHECK(same->empty());

  // Another connection the editor may not use: forbidden; an owner who may: set.
  require_error(decide(s, set_cell_connection{"c-1", "conn-2", false}, editor), errc::forbidden);
  s = run(std::move(s), set_cell_connection{"c-1", "conn-2", true}, owner);
  CHECK(s.find_cell("c-1")->connection_id == "conn-2");

  // Clearing needs no right on any connection.
  const auto cleared = decide(s, set_cell_connection{"c-1", "", false}, editor);
  REQUIRE(cleared.has_value());
  CHECK((*cleared)[0].data == json{{"cell_id", "c-1"}, {"connection_id", ""}});
  s = then(std::move(s), *cleared);
  CHECK(s.find_cell("c-1")->connection_id.empty());

  // An edit keeps the connection; so does a move.
  s = run(std::move(s), set_cell_connection{"c-1", "conn-1", true});
  s = run(std::move(s), edit_cell{"c-1", "select 2", 1, "op-1"});
  s = run(std::move(s), move_cell{"c-1", "c-2"});
  CHECK(s.find_cell("c-1")->connection_id == "conn-1");
  CHECK(s.find_cell("c-1")->version == 2);
}

TEST_CASE("cells: set_cell_connection is refused where a cell change is", "[project][cells][connection]") {
  auto s = given({project_cell_added{"c-1", "sql", "select 1", ""}, project_cell_added{"c-2", "chart", "{}", "c-1"},
                  project_cell_added{"c-3", "sql", "", "c-2"}, project_cell_removed{"c-3"}});
  require_error(decide(s, set_cell_connection{"c-2", "conn-1", true}, editor), errc::invalid_argument);
  // Clearing a cell that has none is a no-op, whatever its kind.
  const auto nothing = decide(s, set_cell_connection{"c-2", "", false}, editor);
  REQUIRE(nothing.has_value());
  CHECK(nothing->empty());
  require_error(decide(s, set_cell_connection{"c-9", "conn-1", true}, editor), errc::not_found);
  const auto removed = decide(s, set_cell_connection{"c-3", "conn-1", true}, editor);
  require_error(removed, errc::not_found);
  CHECK(removed.error().details.at("removed") == true);
  for (const auto* who : {&viewer, &outsider, &auditor}) {
    require_error(decide(s, set_cell_connection{"c-1", "conn-1", true}, *who), errc::forbidden);
  }
  const auto archived = then(s, {make_event(project_archived{"done"})});
  require_error(decide(archived, set_cell_connection{"c-1", "conn-1", true}, editor), errc::failed_precondition);
}

TEST_CASE("cells: the policy admits giving a connection and running a cell to editors who may use it",
          "[project][cells][connection][policy]") {
  using access::operation;
  const access::facts editor_with{.role = project_role::editor, .connection_user = true, .uses_connection = true};
  const access::facts editor_without{.role = project_role::editor, .uses_connection = true};
  const access::facts viewer_with{.role = project_role::viewer, .connection_user = true, .uses_connection = true};
  const access::facts no_role{.connection_user = true, .uses_connection = true};
  for (const auto op : {operation::project_cell_add, operation::project_cell_edit, operation::project_cell_run}) {
    INFO(access::to_string(op));
    CHECK(access::authorize(editor, op, editor_with).allowed);
    CHECK(access::authorize(editor, op, {.role = project_role::editor}).allowed);  // no connection involved
    const auto without = access::authorize(editor, op, editor_without);
    CHECK_FALSE(without.allowed);
    CHECK(without.code == errc::forbidden);
    CHECK(
        access::authorize(editor, op, {.role = project_role::owner, .connection_owner = true, .uses_connection = true})
            .allowed);
    CHECK(access::authorize(admin, op, {.uses_connection = true}).allowed);
    CHECK(access::authorize(viewer, op, viewer_with).code == errc::forbidden);
    CHECK(access::authorize(auditor, op, {.uses_connection = true}).code == errc::forbidden);
    CHECK(access::authorize(outsider, op, no_role).code == errc::not_found);
  }
  CHECK(access::to_string(operation::project_cell_run) == "project.cell_run");
}
