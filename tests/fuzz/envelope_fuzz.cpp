// Fuzz target: the envelope codec (events/envelope.hpp). Property: whatever
// `parse_envelope` accepts re-encodes (`serialize_envelope`, `to_json`,
// `canonical_bytes`, `to_public_json`) without throwing, and the re-encoding parses back
// to the same envelope: the same storage bytes and the same canonical bytes (so its
// chain hash is stable), through simdjson (`parse_envelope`) and nlohmann (`from_json`)
// alike.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "events/envelope.hpp"

namespace {

[[noreturn]] void finding(const char* what, const std::string& a, const std::string& b) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  first:  %s\n  second: %s\n", what, a.c_str(), b.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = atrium::parse_envelope(bytes);
  if (!parsed) return 0;
  const auto& e = *parsed;
  // Any exception from here on escapes and is a finding: a parsed envelope must encode.
  const auto stored = atrium::serialize_envelope(e);
  const auto canonical = atrium::canonical_bytes(e);
  (void)atrium::to_public_json(e).dump();

  auto again = atrium::parse_envelope(stored);
  if (!again) finding("serialize_envelope's output does not parse", stored, again.error().message);
  const auto stored2 = atrium::serialize_envelope(*again);
  if (stored2 != stored) finding("storage bytes differ after a round trip", stored, stored2);
  const auto canonical2 = atrium::canonical_bytes(*again);
  if (canonical2 != canonical) finding("canonical bytes differ after a round trip", canonical, canonical2);

  nlohmann::json j;
  atrium::to_json(j, e);
  atrium::envelope via_nlohmann;
  atrium::from_json(nlohmann::json::parse(j.dump()), via_nlohmann);
  const auto stored3 = atrium::serialize_envelope(via_nlohmann);
  if (stored3 != stored) finding("to_json/from_json round trip differs", stored, stored3);
  if (atrium::canonical_bytes(via_nlohmann) != canonical) {
    finding("canonical bytes differ through nlohmann", canonical, atrium::canonical_bytes(via_nlohmann));
  }
  return 0;
}
