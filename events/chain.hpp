#pragma once
/// The hash chain of the event log (docs/design.md, "Event envelope"): every committed event
/// carries `hash` = SHA-256(previous event's hash ‖ this event's canonical bytes), the
/// previous hash of position 1 being `genesis_hash`. Changing, removing, inserting or
/// reordering any stored event breaks the chain at that position.
///
///   genesis ─▶ chain_hash(genesis, canonical(e1)) = h1 ─▶ chain_hash(h1, canonical(e2)) = h2 ─▶ …
///
/// The store computes `chain_hash` when it commits (adapters/rocksdb); `chain_verifier`
/// is the one check of a stored log, run by `atriumd verify` and `GET /v1/audit/verify`
/// alike (both through `ports::event_store::verify_chain`). SHA-256 comes from OpenSSL's
/// libcrypto, linked privately into this target only for this file.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "events/envelope.hpp"

namespace atrium {

/// The result of checking a hash chain.
struct chain_report {
  bool ok = true;
  std::uint64_t count = 0;      ///< events checked and found good (all of them when ok)
  std::string last_hash;        ///< hash of the last good event (genesis when none)
  std::uint64_t broken_at = 0;  ///< first position that breaks the chain (when !ok)
  std::string reason;           ///< why it breaks (when !ok)
};

/// SHA-256 (FIPS 180-4) over the 32 raw bytes of `previous_hash` (64 lowercase hex
/// characters) followed by `canonical` (an event's `canonical_bytes`); 64 lowercase hex
/// characters. A malformed previous hash is decoded as far as it goes (a shorter one is
/// padded with zero bytes, non-hex digits count as 0), so it hashes, and the chain breaks
/// visibly, instead of failing.
[[nodiscard]] std::string chain_hash(std::string_view previous_hash, std::string_view canonical);

/// Checks a stored log one record at a time, in position order from position 1, and
/// remembers the first break; checks after a break are ignored. A record is good when it
/// sits at the next position, parses (`parse_envelope`), names its own position, is byte
/// for byte its canonical storage form (`serialize_envelope`: an edited record shows even
/// where its hash was recomputed) and carries `chain_hash(previous hash, canonical_bytes)`.
class chain_verifier {
 public:
  chain_verifier();

  /// Checks the record stored under position `position` with bytes `record`. Returns
  /// true while the chain holds (then the next record is expected at `position + 1`),
  /// false once it is broken (see `report`).
  bool check_record(std::uint64_t position, std::string_view record);

  /// Checks an already parsed event (e.g. read from the API, without its stored bytes):
  /// its position must be the next one and its `hash` the chain hash of its canonical
  /// bytes. Returns as `check_record`.
  bool check_event(const envelope& e);

  /// Records a break at the next expected position for a reason the caller found (e.g.
  /// a storage key that is not a position). Ignored once broken.
  void fail(std::string reason);

  /// The outcome so far: ok with the count and last hash of the events checked, or the
  /// first position that breaks and why.
  [[nodiscard]] const chain_report& report() const { return report_; }

  /// The position the next record must have.
  [[nodiscard]] std::uint64_t expected_position() const { return expected_; }

 private:
  bool broken(std::uint64_t position, std::string reason);
  bool check_position(std::uint64_t position);
  bool check_hash(const envelope& e);

  chain_report report_;
  std::uint64_t expected_ = 1;
};

/// Verifies a whole chain of parsed events, which must start at position 1: the first
/// event whose position is not the next one (missing, repeated or out of order) or
/// whose hash is not the chain hash of its canonical bytes is reported as `broken_at`.
/// An empty span is an intact, empty chain.
[[nodiscard]] chain_report verify_chain(std::span<const envelope> events);

/// The report as served by `GET /v1/audit/verify` and printed by `atriumd verify`:
/// `{"ok","count","last_hash"}`, and `"broken_at","reason"` when not ok.
[[nodiscard]] nlohmann::json to_json(const chain_report& report);

}  // namespace atrium
