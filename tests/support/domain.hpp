#pragma once
/// Test support for the pure core: printing `errc` in Catch2 messages, folding a
/// "given" history, and checking decider outcomes.

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "events/envelope.hpp"
#include "events/error.hpp"

namespace Catch {
template <>
struct StringMaker<atrium::errc> {
  static std::string convert(atrium::errc code) { return std::string(atrium::to_string(code)); }
};
}  // namespace Catch

namespace atrium::test {

/// The state after folding `events` in order with `evolve`; version counts the events.
template <class State, class Event>
State fold(const std::vector<Event>& events) {
  State s;
  std::uint64_t version = 0;
  for (const auto& e : events) {
    s = evolve(std::move(s), e);
    s.version = ++version;
  }
  return s;
}

/// The wire types of decided events, in order.
inline std::vector<std::string> types_of(const std::vector<proposed_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

/// Requires `r` to be an error of kind `code` with a message.
template <class T>
void require_error(const result<T>& r, errc code) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == code);
  CHECK_FALSE(r.error().message.empty());
}

}  // namespace atrium::test
