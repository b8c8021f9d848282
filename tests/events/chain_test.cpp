/// The hash chain (events/chain.hpp): the hash function against independently computed
/// SHA-256 values, and the verification of parsed events and of stored records — an
/// intact chain verifies; a changed byte, a missing, repeated or reordered event is
/// reported at the first position that breaks.

#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "events/chain.hpp"
#include "events/envelope.hpp"

namespace {

using namespace atrium;

/// `n` committed events on two streams, chained from genesis as the store chains them.
std::vector<envelope> make_chain(std::uint64_t n) {
  std::vector<envelope> out;
  std::string previous(genesis_hash);
  for (std::uint64_t p = 1; p <= n; ++p) {
    envelope e;
    e.position = p;
    e.stream = p % 2 == 0 ? "project-a" : "user-b";
    e.version = (p + 1) / 2;
    e.id = "0193a1b2-c3d4-7e5f-8a9b-00000000000" + std::to_string(p % 10);
    e.type = p % 2 == 0 ? "project.renamed" : "user.renamed";
    e.time = "2026-11-21T04:45:59.123456Z";
    e.actor = "user-b";
    e.correlation_id = "c-" + std::to_string(p);
    e.causation_id = "k-" + std::to_string(p);
    e.data = {{"name", "name " + std::to_string(p)}};
    e.hash = chain_hash(previous, canonical_bytes(e));
    previous = e.hash;
    out.push_back(std::move(e));
  }
  return out;
}

/// Runs the stored-record check over `records` (position, bytes), as the store does.
chain_report verify_records(const std::vector<std::pair<std::uint64_t, std::string>>& records) {
  chain_verifier v;
  for (const auto& [position, bytes] : records) {
    if (!v.check_record(position, bytes)) break;
  }
  return v.report();
}

std::vector<std::pair<std::uint64_t, std::string>> stored(const std::vector<envelope>& events) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  for (const auto& e : events) out.emplace_back(e.position, serialize_envelope(e));
  return out;
}

}  // namespace

TEST_CASE("chain_hash is SHA-256 over the previous hash's 32 raw bytes and the canonical bytes") {
  // Independently computed: sha256(32 zero bytes) and sha256(32 zero bytes ‖ "abc").
  CHECK(chain_hash(genesis_hash, "") == "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
  CHECK(chain_hash(genesis_hash, "abc") == "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370");
  const auto h = chain_hash(genesis_hash, "abc");
  CHECK(h.size() == 64);
  CHECK(chain_hash(h, "abc") != h);
  // A malformed previous hash still hashes (and so breaks the chain visibly).
  CHECK(chain_hash("zz", "abc").size() == 64);
}

TEST_CASE("an intact chain verifies") {
  SECTION("empty") {
    const auto r = verify_chain(std::vector<envelope>{});
    CHECK(r.ok);
    CHECK(r.count == 0);
    CHECK(r.last_hash == genesis_hash);
  }
  SECTION("parsed events and their stored records") {
    const auto chain = make_chain(7);
    const auto r = verify_chain(chain);
    CHECK(r.ok);
    CHECK(r.count == 7);
    CHECK(r.last_hash == chain.back().hash);
    const auto s = verify_records(stored(chain));
    CHECK(s.ok);
    CHECK(s.count == 7);
    CHECK(s.last_hash == chain.back().hash);
  }
}

TEST_CASE("a changed byte breaks the chain at its event") {
  auto chain = make_chain(6);
  SECTION("in the payload") {
    chain[3].data["name"] = "name 5";  // position 4
    const auto r = verify_chain(chain);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 4);
    CHECK(r.count == 3);
    CHECK(r.last_hash == chain[2].hash);
    CHECK_THAT(r.reason, Catch::StartsWith("hash mismatch"));
  }
  SECTION("in the stored hash") {
    chain[1].hash[10] = chain[1].hash[10] == 'a' ? 'b' : 'a';  // position 2
    const auto r = verify_chain(chain);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 2);
    CHECK(r.count == 1);
  }
  SECTION("in a stored record, one byte") {
    auto records = stored(chain);
    auto& bytes = records[4].second;  // position 5
    const auto at = bytes.find("name 5");
    REQUIRE(at != std::string::npos);
    bytes[at + 5] = '6';
    const auto r = verify_records(records);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 5);
    CHECK(r.count == 4);
    CHECK_THAT(r.reason, Catch::StartsWith("hash mismatch"));
  }
  SECTION("in a stored record, outside the canonical form") {
    auto records = stored(chain);
    records[2].second.insert(1, " ");  // position 3: same JSON value, other bytes
    const auto r = verify_records(records);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 3);
    CHECK(r.reason == "record is not in canonical form (edited)");
  }
  SECTION("a stored record that does not parse, or names another position") {
    auto records = stored(chain);
    auto moved = records;
    records[0].second = "{";
    auto r = verify_records(records);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 1);
    CHECK_THAT(r.reason, Catch::StartsWith("record does not parse"));
    moved[1].second = moved[2].second;  // the record of position 3 stored under 2
    r = verify_records(moved);
    CHECK(r.broken_at == 2);
    CHECK(r.reason == "record names another position");
  }
}

TEST_CASE("a missing, repeated or reordered event is reported where the order breaks") {
  auto chain = make_chain(6);
  SECTION("missing") {
    chain.erase(chain.begin() + 2);  // position 3
    auto r = verify_chain(chain);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 3);
    CHECK(r.count == 2);
    CHECK(r.reason == "position 3 is missing");
    auto records = stored(chain);
    r = verify_records(records);
    CHECK(r.broken_at == 3);
    CHECK(r.reason == "position 3 is missing");
  }
  SECTION("the first one missing") {
    chain.erase(chain.begin());
    const auto r = verify_chain(chain);
    CHECK(r.broken_at == 1);
    CHECK(r.count == 0);
    CHECK(r.last_hash == genesis_hash);
  }
  SECTION("reordered") {
    std::swap(chain[3], chain[4]);  // positions 1, 2, 3, 5, 4, 6
    const auto r = verify_chain(chain);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 4);
    CHECK(r.count == 3);
  }
  SECTION("repeated") {
    chain.insert(chain.begin() + 2, chain[1]);  // positions 1, 2, 2, 3, …
    const auto r = verify_chain(chain);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 3);
    CHECK(r.reason == "position 2 is out of order (expected 3)");
  }
  SECTION("renumbered to close a gap: the hashes still break") {
    chain.erase(chain.begin() + 2);
    for (std::size_t i = 2; i < chain.size(); ++i) chain[i].position = i + 1;
    const auto r = verify_chain(chain);
    CHECK_FALSE(r.ok);
    CHECK(r.broken_at == 3);
    CHECK_THAT(r.reason, Catch::StartsWith("hash mismatch"));
  }
}

TEST_CASE("a verifier stops at the first break, and a caller's own failure counts as one") {
  chain_verifier v;
  const auto chain = make_chain(3);
  CHECK(v.check_event(chain[0]));
  CHECK(v.expected_position() == 2);
  v.fail("malformed key in the events family");
  CHECK_FALSE(v.check_event(chain[1]));
  CHECK(v.report().broken_at == 2);
  CHECK(v.report().reason == "malformed key in the events family");
  CHECK(v.report().count == 1);
}

TEST_CASE("the report's JSON form has broken_at and reason only when broken") {
  auto chain = make_chain(2);
  auto ok = to_json(verify_chain(chain));
  CHECK(ok == nlohmann::json{{"ok", true}, {"count", 2}, {"last_hash", chain[1].hash}});
  chain[1].data["name"] = "x";
  auto broken = to_json(verify_chain(chain));
  CHECK(broken.at("ok") == false);
  CHECK(broken.at("broken_at") == 2);
  CHECK(broken.at("count") == 1);
  CHECK(broken.contains("reason"));
}
