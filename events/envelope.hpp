#pragma once
/// The event envelope, as stored and as served by the API (docs/design.md, "Event envelope").
///
///   proposed_event  (decider output + metadata from the actor)
///        │ event store assigns position, version, time
///        ▼
///   envelope        (committed, immutable; JSON on the wire and on disk)

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/error.hpp"

namespace atrium {

/// A committed event.
struct envelope {
  std::uint64_t position = 0;                      ///< global, gapless, from 1
  std::string stream;                              ///< `<entity>-<id>`, e.g. `project-0193…`
  std::uint64_t version = 0;                       ///< per stream, from 1
  std::string id;                                  ///< event id (UUIDv7 unless the client supplied one)
  std::string type;                                ///< `<entity>.<past-tense verb>`, e.g. `project.renamed`
  int schema = 1;                                  ///< version of the payload schema of `type`
  std::string time;                                ///< commit time, RFC 3339 UTC with microseconds
  std::string actor;                               ///< stream id of the acting user (`user-…`) or `system`
  std::string correlation_id;                      ///< the request this event belongs to
  std::string causation_id;                        ///< the command or event that caused it
  nlohmann::json data = nlohmann::json::object();  ///< the payload (a JSON object)
  /// Facts about the event's origin that are not part of the payload, as a JSON object of
  /// strings: for events caused by an HTTP request `{"client_address","user_agent"}`.
  /// Empty for others (and for every event stored before metadata existed); an empty
  /// object is left out of the JSON forms, so such events hash exactly as before.
  nlohmann::json metadata = nlohmann::json::object();
  /// SHA-256 (hex) over the previous event's hash and this event's canonical bytes
  /// (see `canonical_bytes`); empty until the store commits the event.
  std::string hash;
};

/// The genesis "previous hash" of position 1: 64 zeros.
inline constexpr std::string_view genesis_hash = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical bytes of an envelope, the input of its chain hash: the JSON object of
/// every field except `hash` (and except `metadata` when it is empty), keys sorted (in
/// nested objects too), no whitespace, strings UTF-8 with only the escapes JSON requires —
/// the JSON Canonicalization Scheme (RFC 8785) for the values an envelope holds (integers
/// and strings; the payloads of Atrium events carry no floats). The stored form of an
/// event is the same serialization with `hash` included.
[[nodiscard]] std::string canonical_bytes(const envelope& e);

/// An event a decider wants appended; the store turns it into an `envelope`.
struct proposed_event {
  std::string id;  ///< event id; empty means "the store generates a UUIDv7"
  std::string type;
  int schema = 1;
  nlohmann::json data = nlohmann::json::object();
  std::string actor;
  std::string correlation_id;
  std::string causation_id;
  nlohmann::json metadata = nlohmann::json::object();  ///< as `envelope::metadata`
};

/// Encodes all envelope fields as a JSON object (the storage form; secrets included;
/// `hash` only when set, `metadata` only when not empty).
void to_json(nlohmann::json& j, const envelope& e);

/// Decodes an envelope (`metadata` optional, an object when present); throws
/// nlohmann::json::exception on a malformed object.
/// Use `parse_envelope` where an error value is wanted.
void from_json(const nlohmann::json& j, envelope& e);

/// Parses the storage/wire bytes of an envelope; `invalid_argument` if malformed (not
/// JSON, a required field missing or of the wrong type, `position`/`version` not unsigned
/// integers, `schema` outside 1..1,000,000, `data` or `metadata` not objects). Unknown
/// fields are ignored. Decoded with simdjson (DOM API, one parser per thread); payload
/// numbers get nlohmann's typing (non-negative integers unsigned), so `data` is the same
/// value `nlohmann::json::parse` gives.
[[nodiscard]] result<envelope> parse_envelope(std::string_view bytes);

/// Serializes an envelope to its storage bytes (compact JSON).
[[nodiscard]] std::string serialize_envelope(const envelope& e);

/// The envelope as served to API clients: payload fields the registry marks as
/// redacted (e.g. `password_hash`) are removed from `data`.
[[nodiscard]] nlohmann::json to_public_json(const envelope& e);

/// Current UTC time as RFC 3339 with microseconds, e.g. `2026-11-21T04:45:59.123456Z`.
[[nodiscard]] std::string now_rfc3339();

/// Milliseconds from an RFC 3339 UTC time as `now_rfc3339` writes it
/// (`2026-11-21T07:56:16.909832Z`) until now; 0 if unparsable or in the future.
[[nodiscard]] std::int64_t milliseconds_since(const std::string& time);

/// A new UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then random bits;
/// lowercase hex with dashes. Sorts by creation millisecond; ids made within the same
/// millisecond are in random order.
[[nodiscard]] std::string new_uuid_v7();

/// UUIDv7s that strictly increase (as byte strings and as text) for one generator: RFC
/// 9562 §6.2, method 1 with all 74 bits after the version and variant as the counter:
/// within one millisecond an id is the previous one plus one; a new millisecond starts
/// the counter at fresh random bits with its top bit clear (room for 2^73 ids before it
/// would carry into the timestamp, which it then does, as §6.2 allows). The event store gives its server-made event ids
/// from one of these on its commit thread, so the `event_ids` index is written in key order (a cheap memtable insert)
/// instead of at random places. Not thread-safe: one generator per thread.
class uuid_v7_generator {
 public:
  /// The next id: same form as `new_uuid_v7`, greater than every id this generator gave.
  [[nodiscard]] std::string next();

 private:
  std::uint64_t ms_ = 0;    // timestamp of the last id
  std::uint64_t hi_ = 0;    // its 12 bits of rand_a
  std::uint64_t lo_ = 0;    // its 62 bits of rand_b
  std::uint64_t seed_ = 0;  // state of the random source (splitmix64), seeded on first use
};

/// True when `id` has the form `new_uuid_v7` gives: 36 characters, lowercase hex in
/// groups 8-4-4-4-12, version nibble 7 and RFC 9562 variant (`8`-`b`).
[[nodiscard]] bool is_uuid_v7(std::string_view id) noexcept;

}  // namespace atrium
