/// The event feeds' query filters (adapters/http/event_filter.hpp): `?types=` with `*`
/// prefix patterns, `?streams=`, `?event_names=`, and the values they refuse.

#include <catch2/catch.hpp>

#include "adapters/http/event_filter.hpp"

namespace {

using namespace atrium::http_adapter;
using query = std::map<std::string, std::string>;

atrium::envelope event(std::string stream, std::string type) {
  atrium::envelope e;
  e.stream = std::move(stream);
  e.type = std::move(type);
  return e;
}

/// The error's `details.value` of a refused query, or "" when it parsed.
std::string refused_value(const query& q) {
  auto f = parse_event_filter(q);
  if (f) return "";
  CHECK(f.error().code == atrium::errc::invalid_argument);
  return f.error().details.value("value", "?");
}

}  // namespace

TEST_CASE("filters: types are exact or end in a * prefix pattern, streams are exact", "[http][filter]") {
  auto f = parse_event_filter(query{{"types", "job.*,project.cell_added"}, {"streams", "project-a,job-1"}});
  REQUIRE(f.has_value());
  CHECK(f->types == std::vector<std::string>{"project.cell_added"});
  CHECK(f->type_prefixes == std::vector<std::string>{"job."});
  CHECK(f->matches(event("job-1", "job.queued")));
  CHECK(f->matches(event("project-a", "project.cell_added")));
  CHECK_FALSE(f->matches(event("project-a", "project.renamed")));  // type not listed
  CHECK_FALSE(f->matches(event("job-2", "job.queued")));           // stream not listed
  CHECK_FALSE(f->matches(event("job-1", "jobs.queued")));          // `job.*` is the prefix `job.`

  auto all = parse_event_filter(query{});
  REQUIRE(all.has_value());
  CHECK(all->empty());
  CHECK(all->matches(event("anything", "any.type")));
  auto star = parse_event_filter(query{{"types", "*"}});
  REQUIRE(star.has_value());
  CHECK(star->matches(event("x", "user.registered")));
  auto dup = parse_event_filter(query{{"streams", "s,s,s"}});
  REQUIRE(dup.has_value());
  CHECK(dup->streams.size() == 1);
}

TEST_CASE("filters: bad lists are refused, naming the value", "[http][filter]") {
  CHECK_FALSE(parse_event_filter(query{{"types", ""}}).has_value());
  CHECK(refused_value({{"types", "a,,b"}}) == "a,,b");
  CHECK(refused_value({{"types", "a,"}}) == "a,");
  CHECK(refused_value({{"types", "*.created"}}) == "*.created");
  CHECK(refused_value({{"types", "job.**"}}) == "job.**");
  CHECK(refused_value({{"streams", "project-*"}}) == "project-*");
  CHECK(refused_value({{"streams", ","}}) == ",");
  const std::string long_entry(257, 'x');
  CHECK(refused_value({{"types", "a," + long_entry}}) == std::string(256, 'x'));
  CHECK(parse_event_filter(query{{"types", std::string(256, 'x')}}).has_value());
  std::string many;
  for (int i = 0; i < 64; ++i) many += (i ? ",t" : "t") + std::to_string(i);
  CHECK(parse_event_filter(query{{"streams", many}}).has_value());
  auto over = parse_event_filter(query{{"streams", many + ",t64"}});
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().details.at("parameter") == "streams");
  CHECK(over.error().message.find("64") != std::string::npos);
}

TEST_CASE("filters: event_names is type (the default) or message", "[http][filter]") {
  CHECK(parse_event_names(query{}) == sse_event_names::type);
  CHECK(parse_event_names(query{{"event_names", "type"}}) == sse_event_names::type);
  CHECK(parse_event_names(query{{"event_names", "message"}}) == sse_event_names::message);
  for (const auto* bad : {"", "Message", "types", "message,type", "error"}) {
    auto n = parse_event_names(query{{"event_names", bad}});
    REQUIRE_FALSE(n.has_value());
    CHECK(n.error().details.at("value") == bad);
  }
}
