// The HTTP API: the audit log, the event log and streams.
#include "adapters/http/api_internal.hpp"

#include <array>
#include <cstdio>

#include "events/security/security_events.hpp"
#include "events/connection/connection_decider.hpp"
#include "ports/read_model.hpp"

namespace atrium::http_adapter {

std::optional<std::string> normalize_rfc3339(std::string_view s) {
  auto number = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
  const auto hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::int64_t micros = 0;
  bool finer = false;  // nonzero digits beyond the sixth
  if (at < s.size() && s[at] == '.') {
    const auto start = ++at;
    for (; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at) {
      if (at - start < 6) {
        micros = micros * 10 + (s[at] - '0');
      } else if (s[at] != '0') {
        finer = true;
      }
    }
    if (at == start) return std::nullopt;
    for (auto n = at - start; n < 6; ++n) micros *= 10;
  }
  std::int64_t offset = 0;  // seconds east of UTC
  if (at + 1 == s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at + 6 == s.size() && (s[at] == '+' || s[at] == '-' || s[at] == ' ') && s[at + 3] == ':') {
    const auto oh = number(at + 1, 2), om = number(at + 4, 2);
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset = (s[at] == '-' ? -1 : 1) * (*oh * 3600 + *om * 60);
    at += 6;
  } else {
    return std::nullopt;  // RFC 3339 requires an offset
  }
  if (at != s.size()) return std::nullopt;
  using namespace std::chrono;
  const year_month_day date{std::chrono::year{*year}, std::chrono::month{static_cast<unsigned>(*month)},
                            std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;  // 60: a leap second
  const auto seconds_utc =
      sys_days(date).time_since_epoch().count() * 86400LL + *hour * 3600LL + *minute * 60LL + *second - offset;
  const auto total = seconds_utc * 1'000'000 + micros + (finer ? 1 : 0);
  const sys_time<microseconds> instant{microseconds{total}};
  const auto day_start = floor<days>(instant);
  const year_month_day utc{day_start};
  if (static_cast<int>(utc.year()) < 0 || static_cast<int>(utc.year()) > 9999) return std::nullopt;
  const hh_mm_ss<microseconds> clock{instant - day_start};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", static_cast<int>(utc.year()),
                static_cast<unsigned>(utc.month()), static_cast<unsigned>(utc.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<long long>(clock.subseconds().count()));
  return std::string(buf);
}

namespace {

inline constexpr std::size_t k_audit_batch = 500;             // rows read per store scan for a page
inline constexpr std::size_t k_export_page = 1000;            // entries per page while building an export
inline constexpr std::size_t k_max_audit_export = 1'000'000;  // entries per export; see docs/architecture.md

/// The entity type of a stream: its prefix before the first `-`, or the whole stream id
/// (`security`), as the audit projection records it.
std::string entity_of(const std::string& stream) { return stream.substr(0, stream.find('-')); }

/// A string field of an audit row, "" when absent or not a string (rows written before a
/// field existed lack it).
const std::string& text(const json& row, const char* key) {
  static const std::string none;
  const auto it = row.find(key);
  return it != row.end() && it->is_string() ? it->get_ref<const std::string&>() : none;
}

/// The filters of `GET /v1/audit` and its export; every one present must match.
struct audit_filter {
  std::optional<std::string> actor;     ///< `user-<id>`, `<id>`, `system` or `anonymous`
  std::optional<std::string> stream;    ///< exact stream id
  std::optional<std::string> entity;    ///< stream prefix: `project`, `user`, `security` …
  std::optional<std::string> type;      ///< event type, e.g. `project.renamed`
  std::optional<std::string> since;     ///< normalized RFC 3339; entries with time >= since
  std::optional<std::string> until;     ///< normalized RFC 3339; entries with time < until
  std::optional<std::uint64_t> after;   ///< entries with position > after
  std::optional<std::uint64_t> before;  ///< entries with position < before
  bool desc = false;                    ///< `order=desc`: newest first

  /// True when a content filter (not only a position bound) is set, so that most rows
  /// may be skipped.
  [[nodiscard]] bool selective() const { return actor || stream || entity || type || since || until; }

  [[nodiscard]] bool matches(const json& row) const {
    if (actor) {
      const auto& a = text(row, "actor");
      if (a != *actor && a != "user-" + *actor) return false;
    }
    if (stream && text(row, "stream") != *stream) return false;
    if (entity) {
      const auto& e = text(row, "entity");
      if ((e.empty() ? entity_of(text(row, "stream")) : e) != *entity) return false;
    }
    if (type && text(row, "type") != *type) return false;
    if (since || until) {
      const auto& t = text(row, "time");
      if ((since && t < *since) || (until && t >= *until)) return false;
    }
    return true;
  }
};

/// Reads the filters from the query string; `invalid_argument` names the bad parameter.
result<audit_filter> parse_audit_filter(const call& c) {
  audit_filter f;
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

/// An audit row as served: every field of the row, plus `entity`, `correlation_id`,
/// `client_address` and `user_agent` ("" when unknown) for rows stored before those.
json served_entry(const json& row) {
  json e = row.is_object() ? row : json::object();
  if (!e.contains("entity")) e["entity"] = entity_of(text(row, "stream"));
  for (const char* key : {"correlation_id", "client_address", "user_agent"}) {
    if (!e.contains(key) || !e[key].is_string()) e[key] = "";
  }
  return e;
}

/// Walks the audit entries in position order from a starting cursor, a bounded batch
/// of rows per store scan, keeping the entries `filter` matches:
///
///   forward:  (after ──────────────▶ before)     backward: (after ◀────────────── before)
///
/// The bound on the far side ends the walk; the near one is where it starts.
class audit_scanner {
 public:
  audit_scanner(const ports::read_model_store& store, const audit_filter& filter, bool backward, std::size_t batch)
      : store_(store), filter_(filter), backward_(backward), batch_(batch) {
    const auto start = backward ? filter.before : filter.after;
    if (start) cursor_ = position_key(*start);
  }

  /// Appends to `out` (in walking order) up to `want` matching entries, examining at
  /// most `max_rows` rows. Store errors are passed on.
  [[nodiscard]] result<void> fill(json& out, std::size_t want, std::size_t max_rows) {
    std::size_t examined = 0;
    while (!exhausted_ && want > 0 && examined < max_rows) {
      const auto ask = std::min(batch_, max_rows - examined);
      auto rows = store_.scan("audit", "entries", "", cursor_, ask, backward_);
      if (!rows) return std::unexpected(rows.error());
      std::size_t consumed = 0;
      for (const auto& r : *rows) {
        const auto position = r.value.value("position", std::uint64_t{0});
        if (backward_ ? (filter_.after && position <= *filter_.after)
                      : (filter_.before && position >= *filter_.before)) {
          exhausted_ = true;  // reached the far bound
          break;
        }
        ++consumed;
        ++examined;
        cursor_ = r.key;
        last_ = position;
        if (filter_.matches(r.value)) {
          out.push_back(served_entry(r.value));
          if (--want == 0) break;
        }
      }
      // A short batch all consumed means the walk reached the end of the log.
      if (rows->size() < ask && consumed == rows->size()) exhausted_ = true;
    }
    return {};
  }

  /// True once no further entry can match (end of the log or the far bound reached).
  [[nodiscard]] bool exhausted() const { return exhausted_; }
  /// Position of the last row examined (0 before any): where a further walk continues.
  [[nodiscard]] std::uint64_t last_examined() const { return last_; }

 private:
  const ports::read_model_store& store_;
  const audit_filter& filter_;
  bool backward_;
  std::size_t batch_;
  std::string cursor_;
  std::uint64_t last_ = 0;
  bool exhausted_ = false;
};

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

/// Answers a non-JSON body, logged like `send` does.
void send_body(const call_ptr& c, std::string body, std::string content_type,
               std::vector<std::pair<std::string, std::string>> headers) {
  headers.emplace_back("X-Request-Id", c->correlation_id);
  const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - c->started).count();
  spdlog::info("http {} status=200 ms={:.2f} user={} request_id={} bytes={}", log_request(*c), ms,
               log_escape(c->who, 64), c->correlation_id, body.size());
  c->respond(http_response{200, std::move(body), std::move(content_type), std::move(headers)});
}

}  // namespace

void api::impl::audit(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  auto f = parse_audit_filter(*c);
  if (!f) return send_error(c, f.error());
  // Walk from the bound the order starts at (asc: after, desc: before) — unless only the
  // other one is given: that asks for the page just beside it (paging back).
  const bool backward = f->desc ? !(f->after && !f->before) : (f->before && !f->after);
  // Unfiltered, `limit + 1` rows fill the page and tell whether the log ends there.
  audit_scanner scan(d.read_models, *f, backward, f->selective() ? k_audit_batch : std::min(k_audit_batch, *limit + 1));
  json entries = json::array();
  if (auto ok = scan.fill(entries, *limit, k_max_audit_scan); !ok) return send_error(c, ok.error());
  // `onward` continues the walk (also when the scan bound stopped it before the page was
  // full); `behind` points back past the walk's start (null when it started at an end).
  const json onward = scan.exhausted() ? json(nullptr) : json(scan.last_examined());
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

void api::impl::export_audit(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  const auto format = c->query.contains("format") ? c->query.at("format") : std::string("jsonl");
  if (format != "jsonl" && format != "csv") {
    return send_error(c, error{errc::invalid_argument, "format must be jsonl or csv", {{"parameter", "format"}}});
  }
  auto f = parse_audit_filter(*c);
  if (!f) return send_error(c, f.error());
  // The whole filtered log can be large: build it on the blocking pool, not an I/O thread.
  boost::asio::post(hashing, [self = shared_from_this(), c, f = *f, csv = format == "csv"] {
    try {
      audit_scanner scan(self->d.read_models, f, f.desc, k_export_page);
      std::string body;
      if (csv) {
        for (std::size_t i = 0; i < k_csv_columns.size(); ++i)
          body += (i > 0 ? "," : "") + std::string(k_csv_columns[i]);
        body += "\r\n";
      }
      std::size_t count = 0;
      bool truncated = false;
      std::uint64_t last = 0;
      while (!scan.exhausted() && !truncated) {
        json page = json::array();
        // One more than the cap tells a log that is cut from one that fits exactly.
        const auto want = std::min(k_export_page, k_max_audit_export + 1 - count);
        if (auto ok = scan.fill(page, want, std::numeric_limits<std::size_t>::max()); !ok) {
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
void api::impl::verify_chain(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::audit_read, {}, "audit")) return;
  boost::asio::post(hashing, [self = shared_from_this(), c] {
    auto report = self->d.events.verify_chain();  // events/chain.hpp's chain_verifier, as `atriumd verify`
    if (!report) return send_error(c, report.error());
    send(c, 200, to_json(*report));
  });
}

void api::impl::events(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::events_read, {}, "events")) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  std::uint64_t after = 0;
  if (auto it = c->query.find("after"); it != c->query.end()) {
    auto v = parse_u64(it->second, "after");
    if (!v) return send_error(c, v.error());
    after = *v;
  }
  auto page = d.events.read_all(after, *limit);
  if (!page) return send_error(c, page.error());
  json out = json::array();
  for (const auto& e : *page) out.push_back(to_public_json(e));
  send(c, 200,
       json{{"events", out},
            {"next", page->empty() ? json(after) : json(page->back().position)},
            {"head", d.events.head_position()}});
}

void api::impl::projections(const call_ptr& c, const principal& p) {
  if (!allowed(c, p, access::operation::projections_read, {}, "projections")) return;
  d.monitor.report([c](ports::projections_report r) {
    json list = json::array();
    for (const auto& i : r.projections) {
      list.push_back({{"name", i.name},
                      {"checkpoint", i.checkpoint},
                      {"lag_positions", i.lag_positions},
                      {"lag_ms", i.lag_ms},
                      {"status", i.status},
                      {"error", i.error},
                      {"slot", i.slot},
                      {"rebuild_checkpoint", i.rebuild_checkpoint ? json(*i.rebuild_checkpoint) : json(nullptr)}});
    }
    send(c, 200,
         json{{"head", r.head},
              {"ready", r.ready},
              {"projections", list},
              {"relay", r.relay ? relay_json(*r.relay) : json(nullptr)}});
  });
}

void api::impl::metrics(const call_ptr& c) {
  // Prometheus text exposition format 0.0.4
  // (https://prometheus.io/docs/instrumenting/exposition_formats/).
  d.monitor.report([c](ports::projections_report r) {
    std::string out;
    auto metric = [&out](const char* name, const char* type, const char* help) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto sample = [&out](const std::string& name, const std::string& labels, double value) {
      out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + fmt::format("{}", value) + "\n";
    };
    metric("atrium_log_head_position", "gauge", "Position of the last committed event.");
    sample("atrium_log_head_position", "", static_cast<double>(r.head));
    metric("atrium_projections_ready", "gauge", "1 once the projections caught up after start.");
    sample("atrium_projections_ready", "", r.ready ? 1 : 0);
    metric("atrium_projection_checkpoint", "gauge", "Last position a projection applied.");
    for (const auto& p : r.projections)
      sample("atrium_projection_checkpoint", "projection=\"" + p.name + "\"", static_cast<double>(p.checkpoint));
    metric("atrium_projection_lag_positions", "gauge", "Committed events a projection has not applied.");
    for (const auto& p : r.projections)
      sample("atrium_projection_lag_positions", "projection=\"" + p.name + "\"", static_cast<double>(p.lag_positions));
    metric("atrium_projection_lag_seconds", "gauge", "Age of the oldest event a projection has not applied.");
    for (const auto& p : r.projections)
      sample("atrium_projection_lag_seconds", "projection=\"" + p.name + "\"", static_cast<double>(p.lag_ms) / 1000.0);
    if (r.relay) {
      metric("atrium_relay_checkpoint", "gauge", "Last position acknowledged by Kafka with every earlier one.");
      sample("atrium_relay_checkpoint", "", static_cast<double>(r.relay->checkpoint));
      metric("atrium_relay_lag_positions", "gauge", "Committed events not yet acknowledged by Kafka.");
      sample("atrium_relay_lag_positions", "", static_cast<double>(r.relay->lag_positions));
      metric("atrium_relay_lag_seconds", "gauge", "Age of the oldest event not yet acknowledged by Kafka.");
      sample("atrium_relay_lag_seconds", "", r.relay->lag_seconds);
      metric("atrium_relay_in_flight", "gauge", "Events sent to Kafka and not yet acknowledged.");
      sample("atrium_relay_in_flight", "", static_cast<double>(r.relay->in_flight));
      metric("atrium_relay_up", "gauge", "0 while the relay is degraded (brokers unreachable or stalled).");
      sample("atrium_relay_up", "", r.relay->status == "degraded" ? 0 : 1);
    }
    send_body(c, std::move(out), "text/plain; version=0.0.4; charset=utf-8", {});
  });
}

void api::impl::rebuild_projection(const call_ptr& c, const principal& p, const std::string& name) {
  if (!allowed(c, p, access::operation::projections_rebuild, {}, "projection-" + name)) return;
  d.monitor.rebuild(name, [c, name](result<void> started) {
    if (!started) return send_error(c, started.error());
    send(c, 202, json{{"projection", name}, {"status", "rebuilding"}});
  });
}

std::pair<access::operation, access::facts> api::impl::stream_access(const principal& p,
                                                                     const std::string& stream_id) const {
  using access::operation;
  const auto dash = stream_id.find('-');
  const auto entity = dash == std::string::npos ? stream_id : stream_id.substr(0, dash);
  const auto id = dash == std::string::npos ? std::string() : stream_id.substr(dash + 1);
  if (entity == "user" && id == p.user_id) return {operation::user_read, {.self = true}};
  if (entity == "project") return {operation::project_read, {.role = project_facts(p, id).role}};
  if (entity == "group") {
    const auto g = group_facts(p, id);
    return {operation::group_read, {.group_member = g.member, .group_manager = g.manager}};
  }
  if (entity == "connection") {
    const auto role = connection_facts(p, id).role;
    return {operation::connection_read,
            {.connection_user = role.has_value(), .connection_owner = role == connection_role::owner}};
  }
  if (entity == "job") {
    const auto j = job_facts(p, id);
    return {operation::job_read, {.role = j.role, .self = j.self}};
  }
  if (entity == "container") return {operation::container_read, {}};
  return {operation::events_read, {}};  // other users' streams, `security`, username claims
}

void api::impl::stream(const call_ptr& c, const principal& p, const std::string& stream_id) {
  const auto dash = stream_id.find('-');
  const bool unowned = stream_id == security_stream;  // readable by admins and auditors only
  if ((dash == std::string::npos && !unowned) || !valid_id(stream_id)) {
    return send_error(c, error{errc::not_found, "no such stream"});
  }
  const auto [op, facts] = stream_access(p, stream_id);
  if (!allowed(c, p, op, facts, stream_id)) return;
  auto limit = parse_limit(*c);
  if (!limit) return send_error(c, limit.error());
  std::uint64_t from = 1;
  if (auto it = c->query.find("from_version"); it != c->query.end()) {
    auto v = parse_u64(it->second, "from_version");
    if (!v) return send_error(c, v.error());
    from = *v;
  }
  // `as_of`: the stream as it was then, i.e. only the events committed by that position
  // or time (the pages end where the bound does).
  auto bound = parse_as_of(*c);
  if (!bound) return send_error(c, bound.error());
  auto page = d.events.read_stream(stream_id, from, *limit);
  if (!page) return send_error(c, page.error());
  const auto full_page = page->size() == *limit;
  const auto within = [&](const envelope& e) {
    return !(bound->position && e.position > *bound->position) && !(bound->time && e.time > *bound->time);
  };
  const auto end = std::find_if_not(page->begin(), page->end(), within);
  const bool cut = end != page->end();
  page->erase(end, page->end());
  if (page->empty() && from <= 1) return send_error(c, error{errc::not_found, "no such stream"});
  json out = json::array();
  for (const auto& e : *page) out.push_back(to_public_json(e));
  json next = full_page && !cut ? json(page->back().version + 1) : json(nullptr);
  send(c, 200, json{{"stream", stream_id}, {"events", out}, {"next", next}});
}

}  // namespace atrium::http_adapter
