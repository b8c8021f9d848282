#include "events/chain.hpp"

#include <openssl/evp.h>

#include <utility>

namespace atrium {
namespace {

/// Lowercase hex of bytes.
std::string to_hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 0x0F];
  }
  return out;
}

unsigned char nibble(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned char>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned char>(c - 'a' + 10);
  return 0;
}

}  // namespace

std::string chain_hash(std::string_view previous_hash, std::string_view canonical) {
  unsigned char prev[32] = {};
  for (std::size_t i = 0; i < 32 && 2 * i + 1 < previous_hash.size(); ++i) {
    prev[i] = static_cast<unsigned char>(nibble(previous_hash[2 * i]) << 4 | nibble(previous_hash[2 * i + 1]));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, prev, sizeof prev);
  EVP_DigestUpdate(ctx, canonical.data(), canonical.size());
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  return to_hex(digest, len);
}

chain_verifier::chain_verifier() { report_.last_hash = std::string(genesis_hash); }

bool chain_verifier::broken(std::uint64_t position, std::string reason) {
  report_.ok = false;
  report_.broken_at = position;
  report_.reason = std::move(reason);
  return false;
}

void chain_verifier::fail(std::string reason) {
  if (report_.ok) broken(expected_, std::move(reason));
}

bool chain_verifier::check_position(std::uint64_t position) {
  if (position == expected_) return true;
  // A stored log is read in key order, so only a gap can show there; a sequence of
  // parsed events may also repeat or reorder positions.
  if (position > expected_) return broken(expected_, "position " + std::to_string(expected_) + " is missing");
  return broken(expected_, "position " + std::to_string(position) + " is out of order (expected " +
                               std::to_string(expected_) + ")");
}

bool chain_verifier::check_hash(const envelope& e) {
  const auto want = chain_hash(report_.last_hash, canonical_bytes(e));
  if (e.hash != want) return broken(e.position, "hash mismatch: stored " + e.hash + ", computed " + want);
  report_.last_hash = e.hash;
  ++report_.count;
  ++expected_;
  return true;
}

bool chain_verifier::check_record(std::uint64_t position, std::string_view record) {
  if (!report_.ok) return false;
  if (!check_position(position)) return false;
  auto e = parse_envelope(record);
  if (!e) return broken(position, "record does not parse: " + e.error().message);
  if (e->position != position) return broken(position, "record names another position");
  if (serialize_envelope(*e) != record) return broken(position, "record is not in canonical form (edited)");
  return check_hash(*e);
}

bool chain_verifier::check_event(const envelope& e) {
  if (!report_.ok) return false;
  if (!check_position(e.position)) return false;
  return check_hash(e);
}

chain_report verify_chain(std::span<const envelope> events) {
  chain_verifier v;
  for (const auto& e : events) {
    if (!v.check_event(e)) break;
  }
  return v.report();
}

nlohmann::json to_json(const chain_report& report) {
  nlohmann::json j{{"ok", report.ok}, {"count", report.count}, {"last_hash", report.last_hash}};
  if (!report.ok) {
    j["broken_at"] = report.broken_at;
    j["reason"] = report.reason;
  }
  return j;
}

}  // namespace atrium
