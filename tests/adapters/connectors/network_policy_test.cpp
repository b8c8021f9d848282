// Tests of the connection network policy (adapters/connectors/network_policy): rule
// parsing, the built-in denies, longest-prefix decisions, host patterns, and resolution
// through the real resolver (IP literals, `localhost`, an unresolvable name).

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "adapters/connectors/network_policy.hpp"

namespace {

using atrium::errc;
using atrium::connectors_adapter::ip_address;
using atrium::connectors_adapter::network_policy;

network_policy make(const std::vector<std::string>& allow, const std::vector<std::string>& deny = {}) {
  auto p = network_policy::make(allow, deny);
  INFO((p ? std::string() : p.error().message));
  REQUIRE(p.has_value());
  return std::move(*p);
}

bool allows(const network_policy& p, const std::string& address, bool name_allowed = false) {
  auto a = ip_address::parse(address);
  INFO(address);
  REQUIRE(a.has_value());
  return p.judge_address(*a, name_allowed).allowed;
}

}  // namespace

TEST_CASE("network policy: loopback, link-local, 'this host' and metadata are denied by default",
          "[connectors][policy]") {
  const network_policy p;
  for (const char* denied :
       {"127.0.0.1", "127.255.0.9", "0.0.0.0", "169.254.169.254", "169.254.1.1", "::1", "::", "fe80::1",
        "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1"}) {
    INFO(denied);
    CHECK_FALSE(allows(p, denied));
  }
  for (const char* allowed :
       {"10.1.2.3", "192.168.1.1", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8", "64:ff9b::808:808"}) {
    INFO(allowed);
    CHECK(allows(p, allowed));
  }
  const auto v = p.judge_address(*ip_address::parse("169.254.169.254"));
  CHECK(v.rule == "169.254.169.254/32 (built in: cloud metadata)");
}

TEST_CASE("network policy: the most specific rule wins, at equal length deny beats allow beats built-in",
          "[connectors][policy]") {
  SECTION("allowing one loopback address") {
    const auto p = make({"127.0.0.1/32"});
    CHECK(allows(p, "127.0.0.1"));
    CHECK(allows(p, "::ffff:127.0.0.1"));
    CHECK_FALSE(allows(p, "127.0.0.2"));
    CHECK_FALSE(allows(p, "::1"));
  }
  SECTION("allowing all of link-local still leaves the metadata address denied") {
    const auto p = make({"169.254.0.0/16"});
    CHECK(allows(p, "169.254.10.10"));
    CHECK_FALSE(allows(p, "169.254.169.254"));
    CHECK(allows(make({"169.254.169.254"}), "169.254.169.254"));
  }
  SECTION("an explicit allow of the same network as a built-in deny allows it") {
    CHECK(allows(make({"127.0.0.0/8"}), "127.3.2.1"));
  }
  SECTION("allow-list mode: deny everything, allow a network, carve a hole in it") {
    const auto p = make({"10.0.0.0/8"}, {"0.0.0.0/0", "::/0", "10.9.0.0/16"});
    CHECK(allows(p, "10.1.2.3"));
    CHECK_FALSE(allows(p, "10.9.1.1"));
    CHECK_FALSE(allows(p, "8.8.8.8"));
    CHECK_FALSE(allows(p, "2001:db8::1"));
  }
  SECTION("equal prefixes: deny wins") { CHECK_FALSE(allows(make({"10.0.0.0/8"}, {"10.0.0.0/8"}), "10.0.0.1")); }
  SECTION("host bits in a rule are ignored") {
    const auto p = make({}, {"10.1.2.3/8"});
    CHECK_FALSE(allows(p, "10.200.0.1"));
  }
  SECTION("an allowed host name lifts the built-in denies, not explicit ones") {
    const auto p = make({}, {"10.0.0.0/8"});
    CHECK(allows(p, "127.0.0.1", true));
    CHECK_FALSE(allows(p, "10.0.0.1", true));
  }
}

TEST_CASE("network policy: host patterns", "[connectors][policy]") {
  const auto p = make({"db.corp.example", "*.public.corp.example"}, {"*.corp.example", "evil.example."});
  CHECK_FALSE(p.judge_name("x.corp.example").allowed);
  CHECK_FALSE(p.judge_name("A.B.CORP.EXAMPLE").allowed);
  CHECK(p.judge_name("db.corp.example").allowed);        // exact beats the wildcard
  CHECK(p.judge_name("DB.corp.example.").allowed);       // case and a trailing dot do not matter
  CHECK(p.judge_name("x.public.corp.example").allowed);  // a longer suffix beats a shorter one
  CHECK(p.judge_name("corp.example").rule.empty());      // `*.x` does not match x itself
  CHECK_FALSE(p.judge_name("evil.example").allowed);
  CHECK(p.judge_name("elsewhere.example").allowed);
  CHECK(p.judge_name("elsewhere.example").rule.empty());

  const auto only = make({"db.example.com"}, {"*"});
  CHECK(only.judge_name("db.example.com").allowed);
  CHECK_FALSE(only.judge_name("other.example.com").allowed);
  CHECK(only.judge_name("other.example.com").rule == "*");
}

TEST_CASE("network policy: entries are comma-separated, bad ones are refused", "[connectors][policy]") {
  const auto p = make({" 127.0.0.1/32 , ::1", "localhost"});
  CHECK(allows(p, "127.0.0.1"));
  CHECK(allows(p, "::1"));
  CHECK(p.judge_name("localhost").allowed);
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "bad host", "*.", "a..b", "*x.example",
                          "1.2.3.4/8/8", "host:5432"}) {
    INFO(bad);
    auto r = network_policy::make({bad}, {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(r.error().details.at("entry") == bad);
  }
}

TEST_CASE("network policy: resolve checks every address and returns what it checked", "[connectors][policy]") {
  const network_policy defaults;
  SECTION("an IP literal") {
    auto r = defaults.resolve("127.0.0.1");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::forbidden);
    CHECK(r.error().details.at("class") == "denied_by_policy");
    CHECK(r.error().details.at("rule") == "127.0.0.0/8 (built in: loopback)");
    auto meta = defaults.resolve("169.254.169.254");
    REQUIRE_FALSE(meta.has_value());
    CHECK(meta.error().details.at("class") == "denied_by_policy");

    auto allowed = make({"127.0.0.1/32"}).resolve("127.0.0.1");
    REQUIRE(allowed.has_value());
    REQUIRE(allowed->size() == 1);
    CHECK(allowed->front().to_string() == "127.0.0.1");
  }
  SECTION("a name that resolves to loopback") {
    auto r = defaults.resolve("localhost");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::forbidden);
    CHECK(r.error().details.at("host") == "localhost");
    // Allowing the name lifts the built-in denies for what it resolves to.
    auto named = make({"localhost"}).resolve("localhost");
    REQUIRE(named.has_value());
    CHECK_FALSE(named->empty());
  }
  SECTION("a denied name is refused before it is resolved") {
    auto r = make({}, {"*.invalid"}).resolve("anything.invalid");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::forbidden);
    CHECK(r.error().details.at("rule") == "*.invalid");
  }
  SECTION("a name that does not resolve") {
    auto r = defaults.resolve("no-such-host.invalid");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::unavailable);
    CHECK(r.error().details.at("class") == "unreachable");
  }
}
