#include "adapters/connectors/network_policy.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <memory>

namespace atrium::connectors_adapter {
namespace {

using rule = network_policy::rule;

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

/// A host name as matched: lowercase, one trailing dot dropped.
std::string canonical_name(std::string_view host) {
  auto name = lowercase(host);
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

bool in_network(const ip_address& a, const rule& r) {
  if (a.v6 != r.base.v6) return false;
  const unsigned full = r.prefix / 8, rest = r.prefix % 8;
  if (!std::equal(a.bytes.begin(), a.bytes.begin() + full, r.base.bytes.begin())) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (a.bytes[full] & mask) == (r.base.bytes[full] & mask);
}

/// `10.0.0.0/8`, `::1`, `fe80::/10` as a network rule; nullopt if not one.
std::optional<rule> parse_network(std::string_view text) {
  const auto slash = text.find('/');
  auto address = ip_address::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  const unsigned max = address->v6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || prefix > max) return std::nullopt;
  }
  rule r;
  r.what = rule::kind::network;
  r.prefix = prefix;
  r.base = *address;
  // Clear the host bits so the rule prints and compares as the network it is.
  for (unsigned bit = prefix; bit < max; ++bit)
    r.base.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
  r.text = std::string(text);
  return r;
}

/// `db.example.com`, `*.corp.example` or `*` as a host rule; nullopt if not one.
std::optional<rule> parse_host(std::string_view text) {
  rule r;
  r.text = std::string(text);
  if (text == "*") {
    r.what = rule::kind::host_any;
    return r;
  }
  auto name = canonical_name(text);
  if (name.starts_with("*.")) {
    r.what = rule::kind::host_suffix;
    name.erase(0, 1);  // keep the dot: ".corp.example"
  } else {
    r.what = rule::kind::host_exact;
  }
  const auto body = r.what == rule::kind::host_suffix ? std::string_view(name).substr(1) : std::string_view(name);
  const bool ok = !body.empty() && body.size() <= 253 && body.front() != '.' && body.back() != '.' &&
                  body.find("..") == std::string_view::npos &&
                  std::all_of(body.begin(), body.end(),
                              [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-' || c == '_'; });
  if (!ok) return std::nullopt;
  r.name = std::move(name);
  return r;
}

rule builtin(std::string_view network, std::string_view why) {
  auto r = *parse_network(network);
  r.builtin = true;
  r.text = std::string(network) + " (built in: " + std::string(why) + ")";
  return r;
}

/// Host-rule specificity: an exact name above every suffix, a longer suffix above a
/// shorter one, `*` lowest; 0 when the rule does not match.
std::size_t name_match(const rule& r, const std::string& name) {
  switch (r.what) {
    case rule::kind::host_exact:
      return name == r.name ? 100000 : 0;
    case rule::kind::host_suffix:
      return name.size() > r.name.size() && name.ends_with(r.name) ? 1 + r.name.size() : 0;
    case rule::kind::host_any:
      return 1;
    case rule::kind::network:
      return 0;
  }
  return 0;
}

/// Rank at equal prefix length: explicit deny > explicit allow > built-in deny.
int tie_rank(const rule& r) { return r.builtin ? 0 : (r.allow ? 1 : 2); }

}  // namespace

std::optional<ip_address> ip_address::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string s(text);
  ip_address a;
  if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  a.v6 = true;
  if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  return std::nullopt;
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

ip_address ip_address::unmapped() const {
  static constexpr std::array<std::uint8_t, 12> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (!v6 || !std::equal(mapped.begin(), mapped.end(), bytes.begin())) return *this;
  ip_address v4;
  std::copy(bytes.begin() + 12, bytes.end(), v4.bytes.begin());
  return v4;
}

network_policy::network_policy()
    : rules_{builtin("0.0.0.0/8", "this host"),       builtin("127.0.0.0/8", "loopback"),
             builtin("169.254.0.0/16", "link-local"), builtin("169.254.169.254/32", "cloud metadata"),
             builtin("::/128", "unspecified"),        builtin("::1/128", "loopback"),
             builtin("fe80::/10", "link-local"),      builtin("fd00:ec2::254/128", "cloud metadata")} {}

result<network_policy> network_policy::make(const std::vector<std::string>& allow,
                                            const std::vector<std::string>& deny) {
  network_policy p;
  for (const auto* list : {&allow, &deny}) {
    for (const auto& entry : *list) {
      std::string_view rest(entry);
      while (true) {
        const auto comma = rest.find(',');
        const auto item = trim(rest.substr(0, comma));
        if (!item.empty()) {
          auto r = parse_network(item);
          if (!r) r = parse_host(item);
          if (!r) {
            return fail(errc::invalid_argument,
                        "not a network (CIDR), an address or a host pattern: " + std::string(item),
                        {{"entry", std::string(item)}});
          }
          r->allow = list == &allow;
          p.rules_.push_back(std::move(*r));
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
  }
  return p;
}

policy_verdict network_policy::judge_name(std::string_view host) const {
  const auto name = canonical_name(host);
  const rule* best = nullptr;
  std::size_t best_score = 0;
  for (const auto& r : rules_) {
    const auto score = name_match(r, name);
    if (score == 0) continue;
    if (score > best_score || (score == best_score && !r.allow)) {
      best = &r;
      best_score = score;
    }
  }
  if (best == nullptr) return {};
  return {best->allow, best->text};
}

policy_verdict network_policy::judge_address(const ip_address& address, bool name_allowed) const {
  const auto a = address.unmapped();
  const rule* best = nullptr;
  for (const auto& r : rules_) {
    if (r.what != rule::kind::network || (r.builtin && name_allowed) || !in_network(a, r)) continue;
    if (best == nullptr || r.prefix > best->prefix || (r.prefix == best->prefix && tie_rank(r) > tie_rank(*best))) {
      best = &r;
    }
  }
  policy_verdict v = best == nullptr ? policy_verdict{} : policy_verdict{best->allow, best->text};
  // NAT64 (RFC 6052 well-known prefix): the IPv4 address inside must pass as well.
  static constexpr std::array<std::uint8_t, 12> nat64{0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  if (v.allowed && a.v6 && std::equal(nat64.begin(), nat64.end(), a.bytes.begin())) {
    ip_address inner;
    std::copy(a.bytes.begin() + 12, a.bytes.end(), inner.bytes.begin());
    if (auto w = judge_address(inner, name_allowed); !w.allowed) return w;
  }
  return v;
}

result<std::vector<ip_address>> network_policy::resolve(std::string_view host) const {
  if (host.empty()) return fail(errc::invalid_argument, "the host is empty");
  const std::string shown(host);
  auto denied = [&](const std::string& address, const std::string& rule) {
    nlohmann::json details{{"class", "denied_by_policy"}, {"host", shown}, {"rule", rule}};
    if (!address.empty()) details["address"] = address;
    return fail(errc::forbidden,
                "the server's connection policy does not allow " +
                    (address.empty() || address == shown ? shown : shown + " (" + address + ")") + ": " + rule,
                std::move(details));
  };
  std::vector<ip_address> out;
  bool name_allowed = false;
  if (auto literal = ip_address::parse(host)) {
    out.push_back(literal->unmapped());
  } else {
    const auto by_name = judge_name(host);
    if (!by_name.allowed) return denied("", by_name.rule);
    name_allowed = !by_name.rule.empty();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(shown.c_str(), nullptr, &hints, &found);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, &::freeaddrinfo);
    if (rc != 0 || found == nullptr) {
      return fail(errc::unavailable, "cannot resolve " + shown + ": " + ::gai_strerror(rc),
                  {{"class", "unreachable"}, {"host", shown}});
    }
    for (const auto* ai = found; ai != nullptr; ai = ai->ai_next) {
      ip_address a;
      if (ai->ai_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
        std::memcpy(a.bytes.data(), &sin->sin_addr, 4);
      } else if (ai->ai_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
        a.v6 = true;
        std::memcpy(a.bytes.data(), &sin6->sin6_addr, 16);
      } else {
        continue;
      }
      a = a.unmapped();
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
    if (out.empty()) {
      return fail(errc::unavailable, "cannot resolve " + shown + ": no IP address",
                  {{"class", "unreachable"}, {"host", shown}});
    }
  }
  for (const auto& a : out) {
    if (auto v = judge_address(a, name_allowed); !v.allowed) return denied(a.to_string(), v.rule);
  }
  return out;
}

std::string network_policy::describe() const {
  std::string out;
  for (const auto& r : rules_) {
    out += (out.empty() ? "" : "; ") + std::string(r.allow ? "allow " : "deny ") + r.text;
  }
  return out;
}

}  // namespace atrium::connectors_adapter
