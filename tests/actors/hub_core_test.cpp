// The subscription hub's logic (actors/hub_core.hpp) over an in-memory log: catch-up
// then live without gaps or duplicates, job events following their project, access
// re-checks, overflow and stalled replays.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "actors/hub_core.hpp"

using namespace atrium;
using actors::hub_core;

namespace {

/// The global log in memory; only reads are used by the hub.
class memory_log final : public ports::event_store {
 public:
  std::vector<envelope> events;

  std::uint64_t add(std::string stream, std::string type, nlohmann::json data = nlohmann::json::object()) {
    envelope e;
    e.position = events.size() + 1;
    e.stream = std::move(stream);
    e.type = std::move(type);
    e.data = std::move(data);
    e.id = "e" + std::to_string(e.position);
    events.push_back(e);
    return e.position;
  }

  void append_async(std::vector<ports::stream_append>, ports::append_callback done) override {
    done(fail(errc::unavailable, "read only"));
  }
  result<ports::chain_report> verify_chain() const override { return ports::chain_report{}; }
  result<std::vector<envelope>> read_stream(std::string_view stream, std::uint64_t from,
                                            std::size_t limit) const override {
    std::vector<envelope> out;
    std::uint64_t version = 0;
    for (const auto& e : events) {
      if (e.stream != stream || ++version < from) continue;
      if (out.size() == limit) break;
      out.push_back(e);
    }
    return out;
  }
  result<std::vector<envelope>> read_all(std::uint64_t after, std::size_t limit) const override {
    std::vector<envelope> out;
    for (auto i = after; i < events.size() && out.size() < limit; ++i) out.push_back(events[i]);
    return out;
  }
  result<std::uint64_t> stream_version(std::string_view) const override { return 0; }
  result<void> save_snapshot(std::string_view, const ports::snapshot&) override { return {}; }
  result<std::optional<ports::snapshot>> load_snapshot(std::string_view) const override { return std::nullopt; }
  std::uint64_t head_position() const override { return events.size(); }
};

/// Records what the hub gives it.
class recorder final : public ports::subscriber {
 public:
  std::map<std::string, std::vector<std::uint64_t>> got;
  std::size_t capacity = SIZE_MAX;  // deliveries accepted before the queue is "full"
  bool busy = false;                // congested
  std::set<std::string> denied;     // streams it may no longer read
  std::vector<std::pair<std::string, std::optional<error>>> endings;
  std::vector<std::pair<std::string, std::uint64_t>> ended_at, resume;
  bool overflow = false;
  std::string user = "u1";

  std::vector<std::shared_ptr<const std::string>> texts;  // every event text given, in order

  bool deliver(const std::string& sub, const envelope& e, const std::shared_ptr<const std::string>& json) override {
    if (capacity == 0) return false;
    --capacity;
    REQUIRE(json);
    REQUIRE(json->find("\"position\":" + std::to_string(e.position)) != std::string::npos);
    got[sub].push_back(e.position);
    texts.push_back(json);
    return true;
  }
  bool congested() const override { return busy; }
  bool may_read(const std::string& stream) override { return !denied.contains(stream); }
  const std::string& user_id() const override { return user; }
  void ended(const std::string& sub, std::optional<error> why, std::uint64_t resume_after) override {
    endings.emplace_back(sub, why);
    ended_at.emplace_back(sub, resume_after);
  }
  void overflowed(const std::vector<std::pair<std::string, std::uint64_t>>& r) override {
    overflow = true;
    resume = r;
  }
};

ports::subscription projects(std::string id, std::vector<std::string> ids, std::uint64_t after) {
  return ports::subscription{std::move(id), {.projects = std::move(ids)}, after};
}

void drain(hub_core& hub) {
  for (int i = 0; i < 100; ++i) {
    auto r = hub.catch_up(1);
    REQUIRE(r.has_value());
    if (!r->behind) return;
  }
  FAIL("catch-up did not finish");
}

std::vector<std::uint64_t> positions_of(const memory_log& log, const std::set<std::string>& streams,
                                        std::uint64_t after) {
  std::vector<std::uint64_t> out;
  for (const auto& e : log.events) {
    if (e.position > after && streams.contains(e.stream)) out.push_back(e.position);
  }
  return out;
}

}  // namespace

TEST_CASE("a subscription replays from the store, then follows live without gaps or duplicates", "[hub]") {
  memory_log log;
  for (int i = 0; i < 25; ++i) log.add(i % 2 ? "project-a" : "project-b", "project.renamed");
  hub_core hub(log, nullptr, log.head_position(), 4);  // small pages: several per replay
  auto s = std::make_shared<recorder>();
  REQUIRE(hub.subscribe(s, projects("\"p\"", {"a"}, 3)));  // lags: must catch up
  // Live events arrive while it still replays: it must not get them twice or early.
  REQUIRE(hub.catch_up(1).has_value());
  for (int i = 0; i < 6; ++i) log.add(i % 2 ? "project-a" : "user-x", "project.renamed");
  REQUIRE(hub.advance(log.head_position()).has_value());
  drain(hub);
  log.add("project-a", "project.described");
  REQUIRE(hub.advance(log.head_position()).has_value());
  CHECK(s->got["\"p\""] == positions_of(log, {"project-a"}, 3));
  CHECK(hub.dispatched() == log.head_position());

  SECTION("unsubscribing answers with the cursor") {
    hub.unsubscribe(s, "\"p\"");
    REQUIRE(s->ended_at.size() == 1);
    CHECK(s->ended_at[0].second == log.head_position());
    CHECK_FALSE(s->endings[0].second.has_value());
    CHECK(hub.size() == 0);
  }
}

TEST_CASE("a subscription may start ahead of what the hub has dispatched", "[hub]") {
  memory_log log;
  for (int i = 0; i < 5; ++i) log.add("project-a", "project.renamed");
  hub_core hub(log, nullptr, 3);  // the hub has not heard of 4 and 5 yet
  auto s = std::make_shared<recorder>();
  CHECK_FALSE(hub.subscribe(s, projects("1", {"a"}, 5)));
  log.add("project-a", "project.renamed");
  REQUIRE(hub.advance(6).has_value());
  CHECK(s->got["1"] == std::vector<std::uint64_t>{6});
}

TEST_CASE("job events follow the project named by job.submitted, or by the lookup for older jobs", "[hub]") {
  memory_log log;
  log.add("job-old", "job.submitted", {{"project_id", "a"}});
  std::size_t lookups = 0;
  hub_core hub(
      log,
      [&](const std::string& job) -> std::optional<std::string> {
        ++lookups;
        return job == "old" ? std::optional<std::string>("a") : std::nullopt;
      },
      log.head_position());
  auto s = std::make_shared<recorder>();
  hub.subscribe(s, projects("p", {"a"}, 1));
  log.add("job-old", "job.started");
  log.add("job-new", "job.submitted", {{"project_id", "a"}});
  log.add("job-other", "job.submitted", {{"project_id", "b"}});
  log.add("job-new", "job.succeeded");
  log.add("job-old", "job.succeeded");
  REQUIRE(hub.advance(log.head_position()).has_value());
  CHECK(s->got["p"] == std::vector<std::uint64_t>{2, 3, 5, 6});
  CHECK(lookups == 1);  // cached afterwards
}

TEST_CASE("schedule events follow the project named by schedule.created, read from the store when unknown", "[hub]") {
  memory_log log;
  log.add("schedule-old", "schedule.created", {{"project_id", "a"}});
  hub_core hub(log, nullptr, log.head_position());
  auto s = std::make_shared<recorder>();
  hub.subscribe(s, projects("p", {"a"}, 1));
  log.add("schedule-old", "schedule.fired");  // its first event is before the hub started
  log.add("schedule-new", "schedule.created", {{"project_id", "a"}});
  log.add("schedule-other", "schedule.created", {{"project_id", "b"}});
  log.add("schedule-other", "schedule.paused");
  log.add("schedule-new", "schedule.deleted");
  REQUIRE(hub.advance(log.head_position()).has_value());
  CHECK(s->got["p"] == std::vector<std::uint64_t>{2, 3, 6});
}

TEST_CASE("a subscriber whose queue overflows is cut, with each subscription's resume position", "[hub]") {
  memory_log log;
  hub_core hub(log, nullptr, 0);
  auto s = std::make_shared<recorder>();
  hub.subscribe(s, projects("a", {"a"}, 0));
  hub.subscribe(s, projects("b", {"b"}, 0));
  auto other = std::make_shared<recorder>();
  hub.subscribe(other, projects("a", {"a"}, 0));
  s->capacity = 3;
  for (auto stream : {"project-a", "project-b", "project-a", "project-b", "project-a", "project-a"}) {
    log.add(stream, "project.renamed");
  }
  REQUIRE(hub.advance(log.head_position()).has_value());
  REQUIRE(s->overflow);
  // Given: a@1, b@2, a@3; b@4 failed. a resumes after 3, b after 3 (it got 2, and 3 is not its).
  CHECK(s->got["a"] == std::vector<std::uint64_t>{1, 3});
  CHECK(s->got["b"] == std::vector<std::uint64_t>{2});
  CHECK(s->resume == std::vector<std::pair<std::string, std::uint64_t>>{{"a", 3}, {"b", 3}});
  // The others are not held back.
  CHECK(other->got["a"] == std::vector<std::uint64_t>{1, 3, 5, 6});
  CHECK(hub.size() == 1);
}

TEST_CASE("losing read access ends a subscription before the event that took it away", "[hub]") {
  memory_log log;
  hub_core hub(log, nullptr, 0);
  auto s = std::make_shared<recorder>();
  hub.subscribe(s, projects("p", {"a"}, 0));
  log.add("project-a", "project.renamed");
  REQUIRE(hub.advance(1).has_value());
  s->denied.insert("project-a");  // the read models already say so when the hub sees the event
  log.add("project-a", "project.member_removed", {{"user_id", "u1"}});
  log.add("project-a", "project.renamed");
  REQUIRE(hub.advance(3).has_value());
  CHECK(s->got["p"] == std::vector<std::uint64_t>{1});
  REQUIRE(s->endings.size() == 1);
  CHECK(s->endings[0].second->code == errc::forbidden);
  CHECK(s->ended_at[0].second == 1);

  SECTION("a disabled user's subscriptions are re-checked, others' are not asked") {
    auto t = std::make_shared<recorder>();
    t->user = "u2";
    t->denied.insert("project-b");  // would fail if asked
    hub.subscribe(t, projects("q", {"b"}, 3));
    log.add("user-u1", "user.disabled");
    REQUIRE(hub.advance(4).has_value());
    CHECK(t->endings.empty());
    log.add("user-u2", "user.disabled");
    REQUIRE(hub.advance(5).has_value());
    REQUIRE(t->endings.size() == 1);
  }
}

TEST_CASE("replay waits for a congested subscriber and cuts one stalled too long", "[hub]") {
  memory_log log;
  for (int i = 0; i < 10; ++i) log.add("project-a", "project.renamed");
  hub_core hub(log, nullptr, log.head_position(), 1000, std::chrono::seconds(5));
  auto s = std::make_shared<recorder>();
  hub.subscribe(s, projects("p", {"a"}, 0));
  s->capacity = 4;  // a queue that takes 4, then the subscriber reports congestion
  const auto t0 = hub_core::clock::now();
  auto r = hub.catch_up(1, t0);
  REQUIRE(r.has_value());
  CHECK(s->overflow);  // it overflowed before it said it was congested: cut like live
  CHECK(s->resume == std::vector<std::pair<std::string, std::uint64_t>>{{"p", 4}});

  auto w = std::make_shared<recorder>();
  hub.subscribe(w, projects("p", {"a"}, 0));
  w->busy = true;
  r = hub.catch_up(1, t0);
  REQUIRE(r.has_value());
  CHECK(r->behind);
  CHECK_FALSE(r->progressed);
  w->busy = false;
  r = hub.catch_up(1, t0 + std::chrono::seconds(1));  // drained in time: continues
  CHECK(r->progressed);
  CHECK(w->got["p"].size() == 10);

  auto z = std::make_shared<recorder>();
  hub.subscribe(z, projects("p", {"a"}, 0));
  z->busy = true;
  REQUIRE(hub.catch_up(1, t0).has_value());
  CHECK_FALSE(z->overflow);
  REQUIRE(hub.catch_up(1, t0 + std::chrono::seconds(6)).has_value());
  CHECK(z->overflow);
  CHECK(z->resume == std::vector<std::pair<std::string, std::uint64_t>>{{"p", 0}});
}

TEST_CASE("duplicate streams and projects in a filter are collapsed: each event is given once", "[hub]") {
  memory_log log;
  log.add("project-a", "project.created");
  hub_core hub(log, nullptr, log.head_position());
  auto s = std::make_shared<recorder>();
  ports::subscription sub{
      "d", {.streams = std::vector<std::string>(300, "project-a"), .projects = std::vector<std::string>(300, "a")}, 0};
  REQUIRE(hub.subscribe(s, std::move(sub)));
  drain(hub);
  log.add("project-a", "project.renamed");
  log.add("project-b", "project.renamed");
  REQUIRE(hub.advance(log.head_position()).has_value());
  CHECK(s->got["d"] == std::vector<std::uint64_t>{1, 2});
  hub.drop(s.get());
  CHECK(hub.size() == 0);
  // Nothing of it stays indexed: a new event reaches nobody.
  log.add("project-a", "project.renamed");
  REQUIRE(hub.advance(log.head_position()).has_value());
  CHECK(s->got["d"] == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("one live event is serialized once: every subscriber it goes to shares the same text", "[hub]") {
  memory_log log;
  log.add("project-a", "project.created");
  hub_core hub(log, nullptr, log.head_position());
  std::vector<std::shared_ptr<recorder>> subs;
  for (int i = 0; i < 3; ++i) {
    subs.push_back(std::make_shared<recorder>());
    REQUIRE_FALSE(hub.subscribe(subs.back(), projects("1", {"a"}, log.head_position())));
  }
  log.add("project-a", "project.renamed");
  log.add("project-a", "project.described");
  REQUIRE(hub.advance(log.head_position()).has_value());
  for (const auto& s : subs) {
    REQUIRE(s->texts.size() == 2);
    CHECK(s->got["1"] == std::vector<std::uint64_t>{2, 3});
    // The same object, not equal copies: one serialization and one buffer per event.
    CHECK(s->texts[0] == subs[0]->texts[0]);
    CHECK(s->texts[1] == subs[0]->texts[1]);
  }
  CHECK(subs[0]->texts[0] != subs[0]->texts[1]);
}
