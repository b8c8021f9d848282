#pragma once
/// Where connections may go: the server's network policy for connection tests and jobs
/// (`--connection-allow` / `--connection-deny`), so that a connection cannot be used to
/// probe the server's own machine, its link-local network or a cloud metadata service
/// (server-side request forgery).
///
///   host ──name rules──▶ denied? ──getaddrinfo──▶ every address ──network rules──▶ denied?
///                                                        │ all allowed
///                                                        ▼
///                    the driver connects to exactly these addresses (libpq `hostaddr`),
///                    never resolving the name again (no DNS rebinding between check and use)
///
/// Rules:
/// - A network rule is a CIDR (`10.0.0.0/8`, `fe80::/10`) or one address (`10.1.2.3`,
///   `::1`; a /32 or /128). An address is judged by the most specific rule that contains
///   it (longest prefix); at equal length an explicit deny beats an explicit allow, which
///   beats a built-in deny. No rule: allowed.
/// - Built in (denied unless allowed): `0.0.0.0/8` (reaches this host on Linux),
///   `127.0.0.0/8` (loopback), `169.254.0.0/16` (link-local), `169.254.169.254/32`
///   (cloud metadata: allowing all of link-local does not allow it), `::/128`, `::1/128`,
///   `fe80::/10`, `fd00:ec2::254/128` (AWS metadata over IPv6).
/// - IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address;
///   NAT64 addresses (`64:ff9b::/96`) both as themselves and as the IPv4 they embed.
/// - A host rule is a name (`db.example.com`), a suffix pattern (`*.corp.example`:
///   every name under corp.example, not corp.example itself) or `*` (every name),
///   matched case-insensitively against the host as written (one trailing dot ignored);
///   never against an IP literal. The most specific matching host rule decides (an exact
///   name, then the longest suffix, then `*`; at equal specificity deny wins): a denied
///   name is refused without being resolved; an allowed name lifts the built-in denies
///   for its addresses, but not explicit `--connection-deny` networks.
/// - Every entry may be a comma-separated list; blanks around entries are ignored.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/error.hpp"

namespace atrium::connectors_adapter {

/// An IPv4 or IPv6 address.
struct ip_address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  ///< IPv4 in the first 4 bytes

  /// Parses the text form (inet_pton, AF_INET then AF_INET6); nullopt if neither.
  [[nodiscard]] static std::optional<ip_address> parse(std::string_view text);
  /// The text form (inet_ntop).
  [[nodiscard]] std::string to_string() const;
  /// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for;
  /// otherwise the address itself.
  [[nodiscard]] ip_address unmapped() const;
  bool operator==(const ip_address&) const = default;
};

/// The rule that decided, in the form it was written (or `127.0.0.0/8 (built in:
/// loopback)`); empty when no rule matched.
struct policy_verdict {
  bool allowed = true;
  std::string rule;
};

/// The network policy. Immutable once made; thread-safe.
class network_policy {
 public:
  /// The built-in denies only.
  network_policy();

  /// The built-in denies plus `allow` and `deny` entries (each possibly a comma-separated
  /// list). `invalid_argument` naming the first entry that is neither a network, an
  /// address nor a host rule.
  [[nodiscard]] static result<network_policy> make(const std::vector<std::string>& allow,
                                                   const std::vector<std::string>& deny);

  /// Judges a host name (not an IP literal) by the host rules; allowed with an empty
  /// `rule` when none matches.
  [[nodiscard]] policy_verdict judge_name(std::string_view host) const;

  /// Judges one address by the network rules; `name_allowed`: the host name matched an
  /// allow rule, which lifts the built-in denies.
  [[nodiscard]] policy_verdict judge_address(const ip_address& address, bool name_allowed = false) const;

  /// Resolves `host` (an IP literal, or a name through getaddrinfo) and checks the name
  /// and every address it resolves to. Returns the addresses, IPv4-mapped ones
  /// unmapped, without duplicates, in resolver order: connect to these, never to the
  /// name. Errors: `forbidden` when the name or any address is denied, with details
  /// `{"class":"denied_by_policy","host","address"?,"rule"}`; `unavailable` when the
  /// name does not resolve, details `{"class":"unreachable","host"}`;
  /// `invalid_argument` for an empty host. Blocks for the resolver's time (not bounded
  /// here).
  [[nodiscard]] result<std::vector<ip_address>> resolve(std::string_view host) const;

  /// The rules in order on one line (`deny 127.0.0.0/8 (built in: loopback); allow …`),
  /// for the startup log.
  [[nodiscard]] std::string describe() const;

  /// One parsed rule (public for the tests' sake; built by `make`).
  struct rule {
    enum class kind { network, host_exact, host_suffix, host_any };
    kind what = kind::network;
    bool allow = false;
    bool builtin = false;
    ip_address base;      ///< network rules: the address with host bits cleared
    unsigned prefix = 0;  ///< network rules: prefix length
    std::string name;     ///< host rules: lowercase name or suffix (with its leading dot)
    std::string text;     ///< as written (built-in ones say so)
  };

 private:
  std::vector<rule> rules_;
};

}  // namespace atrium::connectors_adapter
