// End to end: the audit log (`GET /v1/audit`) and its export (`GET /v1/audit/export`)
// against the real atriumd: every filter, paging both ways, the request metadata the HTTP
// adapter records with each event, JSON Lines and CSV exports, and the refusals.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/atriumd.hpp"

using atrium::test::http_client;
using atrium::test::http_reply;
using atrium::test::temp_dir;
using nlohmann::json;

namespace {

using server = atrium::test::atriumd_server;
using atrium::test::k_admin_password;

/// A user agent that needs quoting in CSV (a comma and a quote).
const std::string k_agent = R"(atrium-e2e/1.0 (audit; "quoted", comma))";

/// Sends a request with `k_agent` as User-Agent and `request_id` as X-Request-Id.
http_reply request(const http_client& c, const std::string& method, const std::string& target, const json& body,
                   const std::string& request_id, std::map<std::string, std::string> headers = {}) {
  headers["User-Agent"] = k_agent;
  headers["X-Request-Id"] = request_id;
  return c.request(method, target, body.is_null() ? "" : body.dump(), headers);
}

std::string login(const server& srv, const std::string& user, const std::string& password, const std::string& rid) {
  auto r = request(srv.client(), "POST", "/v1/auth/login", {{"username", user}, {"password", password}}, rid);
  REQUIRE(r.status == 200);
  return r.json.at("token").get<std::string>();
}

/// The entries of one `GET /v1/audit?<query>` page (status 200 required).
json page(const http_client& c, const std::string& query) {
  auto r = c.get("/v1/audit?" + query);
  INFO("query: " << query << " body: " << r.body);
  REQUIRE(r.status == 200);
  return r.json;
}

/// Every entry a filter selects (one page of up to 1000 is enough here).
json all(const http_client& c, const std::string& query) {
  auto p = page(c, query + (query.empty() ? "" : "&") + "limit=1000");
  REQUIRE(p.at("next").is_null());
  return p.at("entries");
}

std::vector<std::uint64_t> positions(const json& entries) {
  std::vector<std::uint64_t> out;
  for (const auto& e : entries) out.push_back(e.at("position").get<std::uint64_t>());
  return out;
}

const json* find_entry(const json& entries, const std::string& type, const std::string& stream) {
  for (const auto& e : entries) {
    if (e.at("type") == type && e.at("stream") == stream) return &e;
  }
  return nullptr;
}

/// `2026-11-21T04:45:59.123456Z` (a stored time) plus 0.1 µs, written with offset +05:30
/// and seven fraction digits: the same moment as the server will normalize it
/// (rounded up to the next microsecond), in a form it has to convert.
std::string just_after_in_plus_0530(const std::string& stored) {
  using namespace std::chrono;
  REQUIRE(stored.size() == 27);
  const year_month_day date{year{std::stoi(stored.substr(0, 4))}, month{unsigned(std::stoi(stored.substr(5, 2)))},
                            day{unsigned(std::stoi(stored.substr(8, 2)))}};
  const auto t = sys_days(date) + hours(std::stoi(stored.substr(11, 2))) + minutes(std::stoi(stored.substr(14, 2))) +
                 seconds(std::stoi(stored.substr(17, 2))) + microseconds(std::stoll(stored.substr(20, 6)));
  const auto local = t + hours(5) + minutes(30);
  const auto midnight = floor<days>(local);
  const year_month_day d{midnight};
  const hh_mm_ss<microseconds> hms{local - midnight};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lld1+05:30", int(d.year()), unsigned(d.month()),
                unsigned(d.day()), int(hms.hours().count()), int(hms.minutes().count()), int(hms.seconds().count()),
                static_cast<long long>(hms.subseconds().count()));
  return buf;
}

/// Percent-encodes a query value.
std::string encode(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      out += buf;
    }
  }
  return out;
}

/// An RFC 4180 parser: records of fields; quoted fields may hold `,`, `"` (doubled),
/// CR and LF. Fails the test on malformed input.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  std::size_t i = 0;
  bool quoted = false, at_field_start = true;
  while (i < text.size()) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        ++i;
        REQUIRE((i == text.size() || text[i] == ',' || text[i] == '\r'));
        continue;
      }
      field += ch;
      ++i;
      continue;
    }
    if (ch == '"' && at_field_start) {
      quoted = true;
      at_field_start = false;
      ++i;
    } else if (ch == ',') {
      row.push_back(std::move(field));
      field.clear();
      at_field_start = true;
      ++i;
    } else if (ch == '\r') {
      REQUIRE(i + 1 < text.size());
      REQUIRE(text[i + 1] == '\n');
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      at_field_start = true;
      i += 2;
    } else {
      REQUIRE(ch != '"');
      REQUIRE(ch != '\n');
      field += ch;
      at_field_start = false;
      ++i;
    }
  }
  REQUIRE_FALSE(quoted);
  REQUIRE(row.empty());  // every record ends with CRLF
  REQUIRE(field.empty());
  return rows;
}

}  // namespace

TEST_CASE("audit log: filters, paging both ways, request metadata, JSONL and CSV export", "[e2e][audit]") {
  temp_dir dir;
  server srv(dir.path());
  const auto admin = srv.client(login(srv, "admin", k_admin_password, "req-login-admin"));

  // ---- batch 1: alice, her project "Alpha, \"the first\"" and its rename -------------
  auto created = request(
      admin, "POST", "/v1/users",
      {{"username", "alice"}, {"email", "alice@example.org"}, {"password", "a.l.i.c.e-password"}, {"role", "member"}},
      "req-alice");
  REQUIRE(created.status == 201);
  const auto alice_id = created.json.at("id").get<std::string>();
  const auto alice_stream = "user-" + alice_id;
  const auto as_alice = srv.client(login(srv, "alice", "a.l.i.c.e-password", "req-login-alice"));
  auto p1 = request(as_alice, "POST", "/v1/projects", {{"name", R"(Alpha, "the first")"}}, "req-p1-create");
  REQUIRE(p1.status == 201);
  const auto p1_stream = "project-" + p1.json.at("id").get<std::string>();
  REQUIRE(request(as_alice, "PATCH", "/v1/projects/" + p1.json.at("id").get<std::string>(), {{"name", "Alpha 2"}},
                  "req-p1-rename", {{"If-Match", "2"}})
              .status == 200);

  // The moment between the batches: just after the last event of batch 1.
  const auto newest = page(admin, "order=desc&limit=1").at("entries");
  REQUIRE(newest.size() == 1);
  CHECK(newest[0].at("type") == "project.renamed");
  const auto moment = just_after_in_plus_0530(newest[0].at("time").get<std::string>());
  const auto boundary = newest[0].at("position").get<std::uint64_t>();

  // ---- batch 2: bob, alice's second project and its rename -----------------------------
  REQUIRE(
      request(admin, "POST", "/v1/users",
              {{"username", "bob"}, {"email", "bob@example.org"}, {"password", "b.o.b-password"}, {"role", "member"}},
              "req-bob")
          .status == 201);
  auto p2 = request(as_alice, "POST", "/v1/projects", {{"name", "Beta"}}, "req-p2-create");
  REQUIRE(p2.status == 201);
  const auto p2_stream = "project-" + p2.json.at("id").get<std::string>();
  REQUIRE(request(as_alice, "PATCH", "/v1/projects/" + p2.json.at("id").get<std::string>(), {{"name", "Beta 2"}},
                  "req-p2-rename", {{"If-Match", "2"}})
              .status == 200);

  const auto everything = all(admin, "");
  REQUIRE(everything.size() > 12);

  SECTION("every entry shows its entity, correlation id, client address and user agent") {
    for (const auto& e : everything) {
      for (const char* f : {"position", "time", "actor", "stream", "entity", "version", "type", "event_id",
                            "correlation_id", "client_address", "user_agent"}) {
        INFO("entry: " << e.dump() << " field: " << f);
        CHECK(e.contains(f));
      }
    }
    const auto* e = find_entry(everything, "project.created", p1_stream);
    REQUIRE(e != nullptr);
    CHECK(e->at("correlation_id") == "req-p1-create");
    CHECK(e->at("client_address").get<std::string>().starts_with("127.0.0.1:"));
    CHECK(e->at("user_agent") == k_agent);
    CHECK(e->at("entity") == "project");
    CHECK(e->at("actor") == alice_stream);
    // All events of one command carry its request's metadata, the username claim too.
    for (const auto& [type, stream, rid] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"project.member_added", p1_stream, "req-p1-create"},
             {"project.renamed", p1_stream, "req-p1-rename"},
             {"user.registered", alice_stream, "req-alice"},
             {"username.claimed", "username-alice", "req-alice"}}) {
      const auto* x = find_entry(everything, type, stream);
      INFO("type: " << type);
      REQUIRE(x != nullptr);
      CHECK(x->at("correlation_id") == rid);
      CHECK(x->at("user_agent") == k_agent);
      CHECK(x->at("client_address").get<std::string>().starts_with("127.0.0.1:"));
    }
    // Security events recorded by the adapter have it as well.
    const auto logins = all(admin, "type=security.login_succeeded&actor=" + alice_id);
    REQUIRE(logins.size() == 1);
    CHECK(logins[0].at("correlation_id") == "req-login-alice");
    CHECK(logins[0].at("user_agent") == k_agent);
    CHECK(logins[0].at("entity") == "security");
    // The bootstrap admin was registered by the system, not over HTTP: no metadata.
    CHECK(everything[0].at("actor") == "system");
    CHECK(everything[0].at("client_address") == "");
    CHECK(everything[0].at("user_agent") == "");
    // The envelope served by the event API keeps the metadata, and the chain verifies.
    auto s = admin.get("/v1/streams/" + p1_stream);
    REQUIRE(s.status == 200);
    CHECK(s.json.at("events")[0].at("metadata").at("user_agent") == k_agent);
    CHECK(s.json.at("events")[0].at("metadata").at("client_address").get<std::string>().starts_with("127.0.0.1:"));
    auto verified = admin.get("/v1/audit/verify");
    REQUIRE(verified.status == 200);
    CHECK(verified.json.at("ok") == true);
    CHECK(verified.json.at("count") == everything.size());
    // A refused login is recorded with its metadata too; a long user agent is cut to 256
    // bytes, not inside a character. A user agent that is not UTF-8 is refused at the
    // edge (400) and records nothing.
    CHECK(srv.client()
              .request("POST", "/v1/auth/login", json{{"username", "alice"}, {"password", "wrong"}}.dump(),
                       {{"User-Agent", "bad\xff"}})
              .status == 400);
    const std::string long_agent = "bad" + std::string(251, 'a') + "x\xc3\xa9tail";
    REQUIRE(srv.client()
                .request("POST", "/v1/auth/login", json{{"username", "alice"}, {"password", "wrong"}}.dump(),
                         {{"User-Agent", long_agent}, {"X-Request-Id", "req-refused"}})
                .status == 401);
    json refused;
    CHECK(atrium::test::wait_until(
        [&] {
          refused = all(admin, "type=security.login_failed");
          return refused.size() == 1;
        },
        std::chrono::seconds(10)));
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].at("correlation_id") == "req-refused");
    CHECK(refused[0].at("actor") == "anonymous");
    // "bad" + 251 × "a" + "x" = 255 bytes; "é" would end at byte 257.
    CHECK(refused[0].at("user_agent") == "bad" + std::string(251, 'a') + "x");
    CHECK(refused[0].at("client_address").get<std::string>().starts_with("127.0.0.1:"));
    CHECK(admin.get("/v1/audit/verify").json.at("ok") == true);
  }

  SECTION("filters: actor, stream, entity, type") {
    const auto by_alice = all(admin, "actor=" + alice_id);
    CHECK(all(admin, "actor=" + alice_stream) == by_alice);
    std::multiset<std::string> types;
    for (const auto& e : by_alice) {
      CHECK(e.at("actor") == alice_stream);
      types.insert(e.at("type").get<std::string>());
    }
    CHECK(types == std::multiset<std::string>{"security.login_succeeded", "project.created", "project.created",
                                              "project.member_added", "project.member_added", "project.renamed",
                                              "project.renamed"});

    const auto p1_entries = all(admin, "stream=" + p1_stream);
    REQUIRE(p1_entries.size() == 3);
    for (const auto& e : p1_entries) CHECK(e.at("stream") == p1_stream);
    CHECK(p1_entries[0].at("version") == 1);
    CHECK(p1_entries[2].at("version") == 3);

    const auto projects = all(admin, "entity=project");
    CHECK(projects.size() == 6);
    for (const auto& e : projects) {
      CHECK(e.at("entity") == "project");
      CHECK(e.at("stream").get<std::string>().starts_with("project-"));
    }
    const auto users = all(admin, "entity=user");
    CHECK(users.size() == 3);  // admin, alice, bob registered
    for (const auto& e : all(admin, "entity=security")) CHECK(e.at("stream") == "security");

    const auto renames = all(admin, "type=project.renamed");
    REQUIRE(renames.size() == 2);
    CHECK(renames[0].at("stream") == p1_stream);
    CHECK(renames[1].at("stream") == p2_stream);
    CHECK(all(admin, "type=project.renamed&stream=" + p2_stream).size() == 1);
    CHECK(all(admin, "type=no.such").empty());
  }

  SECTION("filters: since and until bracket the moment between the batches") {
    INFO("moment: " << moment);
    const auto later = all(admin, "since=" + encode(moment));
    const auto earlier = all(admin, "until=" + encode(moment));
    CHECK(later.size() + earlier.size() == everything.size());
    REQUIRE_FALSE(later.empty());
    REQUIRE_FALSE(earlier.empty());
    CHECK(later[0].at("position") == boundary + 1);
    CHECK(earlier.back().at("position") == boundary);
    CHECK(find_entry(later, "project.created", p2_stream) != nullptr);
    CHECK(find_entry(later, "project.created", p1_stream) == nullptr);
    CHECK(find_entry(earlier, "project.created", p1_stream) != nullptr);
    CHECK(find_entry(earlier, "user.registered", "user-" + alice_id) != nullptr);
    const auto later_renames = all(admin, "type=project.renamed&since=" + encode(moment));
    REQUIRE(later_renames.size() == 1);
    CHECK(later_renames[0].at("stream") == p2_stream);
    const auto earlier_renames = all(admin, "type=project.renamed&until=" + encode(moment));
    REQUIRE(earlier_renames.size() == 1);
    CHECK(earlier_renames[0].at("stream") == p1_stream);
    // A `+` left unencoded arrives as a space; it is read as the offset's sign.
    CHECK(all(admin, "since=" + moment).size() == later.size());
    // An empty window, and a window around everything.
    CHECK(all(admin, "since=" + encode(moment) + "&until=" + encode(moment)).empty());
    CHECK(all(admin, "since=2000-01-01T00:00:00Z&until=9999-12-31T23:59:59.999999Z").size() == everything.size());
  }

  SECTION("filters: after and before are exclusive position bounds") {
    const auto some = all(admin, "after=3&before=9");
    CHECK(positions(some) == std::vector<std::uint64_t>{4, 5, 6, 7, 8});
    const auto tail = all(admin, "after=" + std::to_string(boundary));
    CHECK(tail.size() == everything.size() - boundary);
    CHECK(all(admin, "entity=project&after=" + std::to_string(boundary)) ==
          all(admin, "entity=project&since=" + encode(moment)));
    const auto desc = all(admin, "order=desc&after=3&before=9");
    CHECK(positions(desc) == std::vector<std::uint64_t>{8, 7, 6, 5, 4});
  }

  SECTION("paging forward and then backward returns the same entries") {
    for (const auto& filter : std::vector<std::string>{"entity=project", "", "actor=" + alice_id}) {
      INFO("filter: " << filter);
      const auto amp = filter.empty() ? "" : "&";
      // Forward, two at a time.
      std::vector<std::uint64_t> forward;
      json p = page(admin, filter + amp + "limit=2");
      CHECK(p.at("order") == "asc");
      CHECK(p.at("prev").is_null());  // the first page has nothing before it
      std::vector<json> pages{p};
      for (int guard = 0; guard < 100; ++guard) {
        for (auto v : positions(p.at("entries"))) forward.push_back(v);
        if (p.at("next").is_null()) break;
        p = page(admin, filter + amp + "limit=2&after=" + std::to_string(p.at("next").get<std::uint64_t>()));
        pages.push_back(p);
      }
      CHECK(forward == positions(all(admin, filter)));
      // Backward from the last page, two at a time, each page in ascending order.
      std::vector<std::uint64_t> backward = positions(pages.back().at("entries"));
      json cursor = pages.back().at("prev");
      for (int guard = 0; guard < 100 && !cursor.is_null(); ++guard) {
        auto b = page(admin, filter + amp + "limit=2&before=" + std::to_string(cursor.get<std::uint64_t>()));
        CHECK(b.at("order") == "asc");
        const auto got = positions(b.at("entries"));
        CHECK(std::is_sorted(got.begin(), got.end()));
        backward.insert(backward.begin(), got.begin(), got.end());
        if (got.empty()) break;
        // `next` of a backward page leads forward again, to the page after it.
        CHECK(b.at("next") == got.back());
        cursor = b.at("prev");
      }
      CHECK(backward == forward);
      // Descending pages walk the same entries newest first.
      std::vector<std::uint64_t> desc;
      p = page(admin, filter + amp + "order=desc&limit=3");
      for (int guard = 0; guard < 100; ++guard) {
        CHECK(p.at("order") == "desc");
        for (auto v : positions(p.at("entries"))) desc.push_back(v);
        if (p.at("next").is_null()) break;
        p = page(admin,
                 filter + amp + "order=desc&limit=3&before=" + std::to_string(p.at("next").get<std::uint64_t>()));
      }
      CHECK(std::vector<std::uint64_t>(desc.rbegin(), desc.rend()) == forward);
    }
  }

  SECTION("export: JSON Lines and CSV of the filtered log") {
    const auto projects = all(admin, "entity=project");
    auto jsonl = admin.get("/v1/audit/export?format=jsonl&entity=project");
    REQUIRE(jsonl.status == 200);
    CHECK(jsonl.headers.at("content-type") == "application/x-ndjson");
    CHECK(jsonl.headers.at("content-disposition") == "attachment; filename=\"atrium-audit.jsonl\"");
    std::istringstream lines(jsonl.body);
    std::vector<json> exported;
    for (std::string line; std::getline(lines, line);) exported.push_back(json::parse(line));
    CHECK(exported.size() == projects.size());
    CHECK(json(exported) == projects);
    CHECK(jsonl.body.back() == '\n');
    // No filter: the whole log; the same filters as the listing (since, type) apply.
    auto whole = admin.get("/v1/audit/export?format=jsonl");
    REQUIRE(whole.status == 200);
    CHECK(static_cast<std::size_t>(std::count(whole.body.begin(), whole.body.end(), '\n')) == everything.size());
    auto renames = admin.get("/v1/audit/export?type=project.renamed&since=" + encode(moment));
    REQUIRE(renames.status == 200);  // jsonl by default
    CHECK(std::count(renames.body.begin(), renames.body.end(), '\n') == 1);

    auto csv = admin.get("/v1/audit/export?format=csv&stream=" + p1_stream);
    REQUIRE(csv.status == 200);
    CHECK(csv.headers.at("content-type") == "text/csv");
    CHECK(csv.headers.at("content-disposition") == "attachment; filename=\"atrium-audit.csv\"");
    const auto rows = parse_csv(csv.body);
    REQUIRE(rows.size() == 4);  // header + created, member_added, renamed
    const std::vector<std::string> header{"position",       "time",           "actor",     "stream",
                                          "entity",         "version",        "type",      "event_id",
                                          "correlation_id", "client_address", "user_agent"};
    CHECK(rows[0] == header);
    const auto p1_entries = all(admin, "stream=" + p1_stream);
    for (std::size_t i = 1; i < rows.size(); ++i) {
      const auto& e = p1_entries[i - 1];
      REQUIRE(rows[i].size() == header.size());
      CHECK(rows[i][0] == std::to_string(e.at("position").get<std::uint64_t>()));
      CHECK(rows[i][1] == e.at("time"));
      CHECK(rows[i][2] == alice_stream);
      CHECK(rows[i][3] == p1_stream);
      CHECK(rows[i][4] == "project");
      CHECK(rows[i][5] == std::to_string(i));
      CHECK(rows[i][6] == e.at("type"));
      CHECK(rows[i][7] == e.at("event_id"));
      CHECK(rows[i][8] == e.at("correlation_id"));
      CHECK(rows[i][9].starts_with("127.0.0.1:"));
      CHECK(rows[i][10] == k_agent);  // a comma and quotes round-trip
    }
    CHECK(rows[1][8] == "req-p1-create");
    CHECK(rows[3][8] == "req-p1-rename");
    // The whole log as CSV: one row per entry after the header.
    auto whole_csv = admin.get("/v1/audit/export?format=csv");
    REQUIRE(whole_csv.status == 200);
    CHECK(parse_csv(whole_csv.body).size() == everything.size() + 1);
  }

  SECTION("bad parameters get 400, members get 403") {
    for (const auto& bad : std::vector<std::string>{
             "since=yesterday", "since=2026-13-01T00:00:00Z", "until=2026-02-30T00:00:00Z", "since=2026-01-01",
             "since=2026-01-01T00:00:00", "until=2026-01-01T24:00:00Z", "since=2026-01-01T00:00:00.Z",
             "since=2026-01-01T00:00:00%2B25:00", "after=-1", "before=x", "order=up", "limit=0"}) {
      INFO("query: " << bad);
      auto r = admin.get("/v1/audit?" + bad);
      CHECK(r.status == 400);
      CHECK(r.json.at("error").at("code") == "invalid_argument");
      if (bad != "limit=0") CHECK(admin.get("/v1/audit/export?" + bad).status == 400);
    }
    CHECK(admin.get("/v1/audit/export?format=xml").status == 400);
    CHECK(admin.request("POST", "/v1/audit/export", "{}").status == 405);
    CHECK(as_alice.get("/v1/audit").status == 403);
    CHECK(as_alice.get("/v1/audit/export?format=csv").status == 403);
    CHECK(as_alice.get("/v1/audit/export?format=jsonl").status == 403);
    // The denial is itself audited, with the request's metadata.
    auto denied = request(as_alice, "GET", "/v1/audit/export?format=csv", nullptr, "req-denied");
    CHECK(denied.status == 403);
    // A denial is answered once recorded, not once projected: poll the audit projection.
    json denials;
    CHECK(atrium::test::wait_until(
        [&] {
          denials = all(admin, "type=security.access_denied&actor=" + alice_id);
          return denials.size() == 4;
        },
        std::chrono::seconds(10)));
    REQUIRE(denials.size() == 4);
    CHECK(denials.back().at("correlation_id") == "req-denied");
    CHECK(denials.back().at("user_agent") == k_agent);
  }
}
