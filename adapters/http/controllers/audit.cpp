// The audit log: paged entries, the export (JSON Lines or CSV) and the hash-chain check.
#include <array>
#include <limits>

#include "adapters/http/controllers/controllers.hpp"
#include "events/chain.hpp"

namespace atrium::http_adapter {
namespace {

inline constexpr std::size_t k_audit_batch = 500;             // rows read per store scan for a page
inline constexpr std::size_t k_export_page = 1000;            // entries per page while building an export
inline constexpr std::size_t k_max_audit_export = 1'000'000;  // entries per export; see docs/architecture.md

/// Reads the filters from the query string; `invalid_argument` names the bad parameter.
result<ports::audit_filter> parse_audit_filter(const call& c) {
  ports::audit_filter f;
  auto param = [&](const char* key) -> const std::string* {
    const auto it = c.query.find(key);
    return it == c.query.end() ? nullptr : &it->second;
  };
  for (auto [key, out] :
       {std::pair{"actor", &f.actor}, {"stream", &f.stream}, {"entity", &f.entity}, {"type", &f.type}}) {
    if (const auto* v = param(key)) *out = *v;
  }
  for (auto [key, out] : {std::pair{"since", &f.since}, {"until", &f.until}}) {
    const auto* v = param(key);
    if (v == nullptr) continue;
    *out = normalize_rfc3339(*v);
    if (!*out) {
      return fail(errc::invalid_argument,
                  std::string(key) + " must be an RFC 3339 date-time, e.g. 2026-11-21T04:45:59Z", {{"parameter", key}});
    }
  }
  for (auto [key, out] : {std::pair{"after", &f.after}, {"before", &f.before}}) {
    const auto* v = param(key);
    if (v == nullptr) continue;
    auto n = parse_u64(*v, key);
    if (!n) return std::unexpected(n.error());
    *out = *n;
  }
  if (const auto* order = param("order"); order != nullptr) {
    if (*order != "asc" && *order != "desc") {
      return fail(errc::invalid_argument, "order must be asc or desc", {{"parameter", "order"}});
    }
    f.desc = *order == "desc";
  }
  return f;
}

/// True when a spreadsheet could read `s` as a formula: it starts with `=`, `+`, `-`, `@`,
/// tab, CR or LF (OWASP, "CSV Injection"), or with the full-width `＝`, `＋`, `－`, `＠`
/// that some spreadsheets fold to them.
bool formula_like(std::string_view s) {
  if (s.empty()) return false;
  switch (s.front()) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
    case '\n':
      return true;
    default:
      break;
  }
  for (std::string_view wide : {"\xEF\xBC\x9D", "\xEF\xBC\x8B", "\xEF\xBC\x8D", "\xEF\xBC\xA0"}) {
    if (s.starts_with(wide)) return true;
  }
  return false;
}

/// One CSV field (RFC 4180 §2): quoted, with quotes doubled, when it holds a comma, a
/// quote, CR or LF. Numbers in their JSON form; absent values empty. A string that a
/// spreadsheet could take for a formula (`formula_like`) is neutralized as OWASP
/// recommends: prefixed with `'` and quoted, so `=cmd|' /C calc'!A0` becomes
/// `"'=cmd|' /C calc'!A0"` and is shown as text.
void append_csv_field(std::string& out, const json& v) {
  std::string s = v.is_string() ? v.get<std::string>()
                  : v.is_null() ? std::string()
                                : v.dump(-1, ' ', false, json::error_handler_t::replace);
  const bool formula = v.is_string() && formula_like(s);
  if (formula) s.insert(s.begin(), '\'');
  if (!formula && s.find_first_of(",\"\r\n") == std::string::npos) {
    out += s;
    return;
  }
  out += '"';
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  out += '"';
}

constexpr std::array<const char*, 11> k_csv_columns{"position",       "time",           "actor",     "stream",
                                                    "entity",         "version",        "type",      "event_id",
                                                    "correlation_id", "client_address", "user_agent"};

}  // namespace

void audit_controller::add_routes(route_table& t) {
  auto self = shared_from_this();
  t.add({"GET", "/v1/audit", [self](auto& c, auto& p, auto&) { self->entries(c, p); }}).query = {
      "limit", "actor", "stream", "entity", "type", "since", "until", "after", "before", "order"};
  t.add({"GET", "/v1/audit/export", [self](auto& c, auto& p, auto&) { self->export_entries(c, p); }}).query = {
      "format", "actor", "stream", "entity", "type", "since", "until", "after", "before", "order"};
  t.add({"GET", "/v1/audit/verify", [self](auto& c, auto& p, auto&) { self->verify(c, p); }});
}

void audit_controller::entries(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  auto f = parse_audit_filter(*c);
  if (!f) return send_error(c, f.error());
  // Walk from the bound the order starts at (asc: after, desc: before) — unless only the
  // other one is given: that asks for the page just beside it (paging back).
  const bool backward = f->desc ? !(f->after && !f->before) : (f->before && !f->after);
  // Unfiltered, `limit + 1` rows fill the page and tell whether the log ends there.
  auto scan = d_.audit.walk(*f, backward, f->selective() ? k_audit_batch : std::min(k_audit_batch, *limit + 1));
  json entries = json::array();
  if (auto ok = scan->fill(entries, *limit, k_max_audit_scan); !ok) return send_error(c, ok.error());
  // `onward` continues the walk (also when the scan bound stopped it before the page was
  // full); `behind` points back past the walk's start (null when it started at an end).
  const json onward = scan->exhausted() ? json(nullptr) : json(scan->last_examined());
  const auto start = backward ? f->before : f->after;
  json behind = nullptr;
  if (start && *start > 0) {
    behind = entries.empty() ? json(backward ? *start - 1 : *start + 1) : entries.front().at("position");
  }
  const json& as_after = backward ? behind : onward;   // usable as `after`
  const json& as_before = backward ? onward : behind;  // usable as `before`
  if (backward != f->desc) std::reverse(entries.begin(), entries.end());
  send(c, 200,
       json{{"entries", std::move(entries)},
            {"next", f->desc ? as_before : as_after},
            {"prev", f->desc ? as_after : as_before},
            {"order", f->desc ? "desc" : "asc"}});
}

void audit_controller::export_entries(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  const auto format = c->query.contains("format") ? c->query.at("format") : std::string("jsonl");
  if (format != "jsonl" && format != "csv") {
    return send_error(c, error{errc::invalid_argument, "format must be jsonl or csv", {{"parameter", "format"}}});
  }
  auto f = parse_audit_filter(*c);
  if (!f) return send_error(c, f.error());
  // The whole filtered log can be large: build it on the blocking pool, not an I/O thread.
  d_.blocking([self = shared_from_this(), c, f = *f, csv = format == "csv"] {
    try {
      auto scan = self->d_.audit.walk(f, f.desc, k_export_page);
      std::string body;
      if (csv) {
        for (std::size_t i = 0; i < k_csv_columns.size(); ++i)
          body += (i > 0 ? "," : "") + std::string(k_csv_columns[i]);
        body += "\r\n";
      }
      std::size_t count = 0;
      bool truncated = false;
      std::uint64_t last = 0;
      while (!scan->exhausted() && !truncated) {
        json page = json::array();
        // One more than the cap tells a log that is cut from one that fits exactly.
        const auto want = std::min(k_export_page, k_max_audit_export + 1 - count);
        if (auto ok = scan->fill(page, want, std::numeric_limits<std::size_t>::max()); !ok) {
          return send_error(c, ok.error());
        }
        for (const auto& e : page) {
          if (count == k_max_audit_export) {
            truncated = true;
            break;
          }
          if (csv) {
            for (std::size_t i = 0; i < k_csv_columns.size(); ++i) {
              if (i > 0) body += ',';
              const auto it = e.find(k_csv_columns[i]);
              append_csv_field(body, it == e.end() ? json(nullptr) : *it);
            }
            body += "\r\n";
          } else {
            body += e.dump(-1, ' ', false, json::error_handler_t::replace);
            body += '\n';
          }
          ++count;
          last = e.value("position", std::uint64_t{0});
        }
      }
      std::vector<std::pair<std::string, std::string>> headers{
          {"Content-Disposition", std::string("attachment; filename=\"atrium-audit.") + (csv ? "csv" : "jsonl") + "\""},
          {"X-Audit-Count", std::to_string(count)}};
      if (truncated) {
        headers.emplace_back("X-Audit-Truncated", "true");
        headers.emplace_back("X-Audit-Next", std::to_string(last));  // continue with after= (desc: before=)
      }
      send_body(c, std::move(body), csv ? "text/csv" : "application/x-ndjson", std::move(headers));
    } catch (const std::exception& ex) {
      spdlog::error("audit export failed request_id={} error={}", c->correlation_id, ex.what());
      send_error(c, error{errc::internal, "internal error"});
    }
  });
}

/// GET /v1/audit/verify: recomputes the hash chain on the blocking pool (it reads the
/// whole log) and answers `{"ok","count","last_hash"}` or, broken, also
/// `{"broken_at","reason"}` — 200 either way: the check itself succeeded.
void audit_controller::verify(const call_ptr& c, const principal& p) {
  if (!d_.kit->allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  d_.blocking([self = shared_from_this(), c] {
    auto report = self->d_.events.verify_chain();  // events/chain.hpp's chain_verifier, as `atriumd verify`
    if (!report) return send_error(c, report.error());
    send(c, 200, to_json(*report));
  });
}

}  // namespace atrium::http_adapter
