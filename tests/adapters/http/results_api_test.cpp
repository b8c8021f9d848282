/// The result API (GET /v1/jobs/{id}/result, …/result.csv, …/log) in process: the real
/// API on the fuzz harness's world (RocksDB in a temp dir, the actor runtime, the file
/// result store; tests/fuzz/harness.hpp) behind the real HTTP server on a free loopback
/// port. No job runs here: a test writes a result with the file result store and drives
/// the job through its run states as the system principal (the runner), as the
/// dispatcher will.
///
/// Responses are read with a plain socket so that the chunked framing of the streamed CSV
/// can be checked byte for byte.

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/http/http_server.hpp"
#include "tests/fuzz/harness.hpp"

namespace {

using namespace atrium;
using nlohmann::json;
using std::chrono::steady_clock;

/// A response as read off the socket, with the chunk sizes of a chunked body.
struct reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;                            // de-chunked
  std::vector<std::size_t> chunks;             // sizes, the last (0) excluded
  bool chunked = false;
  bool framing_ok = true;  // every chunk well formed and the body ended by the last chunk
  json j;
};

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

/// Splits a raw HTTP/1.1 response (read until the server closed).
reply parse(const std::string& raw) {
  reply r;
  const auto head_end = raw.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  std::size_t at = raw.find("\r\n");
  r.status = static_cast<unsigned>(std::stoul(raw.substr(9, 3)));
  while (at < head_end) {
    const auto next = raw.find("\r\n", at + 2);
    const auto line = raw.substr(at + 2, next - at - 2);
    if (const auto colon = line.find(':'); colon != std::string::npos) {
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      r.headers[lower(line.substr(0, colon))] = v;
    }
    at = next;
  }
  std::string_view rest(raw);
  rest.remove_prefix(head_end + 4);
  r.chunked = lower(r.headers["transfer-encoding"]) == "chunked";
  if (!r.chunked) {
    r.body = std::string(rest);
  } else {
    r.framing_ok = false;
    for (;;) {
      const auto eol = rest.find("\r\n");
      if (eol == std::string_view::npos) break;
      std::size_t size = 0;
      try {
        size = std::stoul(std::string(rest.substr(0, eol)), nullptr, 16);
      } catch (const std::exception&) {
        break;
      }
      rest.remove_prefix(eol + 2);
      if (size == 0) {
        r.framing_ok = rest == "\r\n";
        break;
      }
      if (rest.size() < size + 2 || rest.substr(size, 2) != "\r\n") break;
      r.chunks.push_back(size);
      r.body.append(rest.substr(0, size));
      rest.remove_prefix(size + 2);
    }
  }
  try {
    r.j = json::parse(r.body);
  } catch (const json::exception&) {
  }
  return r;
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    sent += static_cast<std::size_t>(n);
  }
}

std::string request_bytes(const std::string& target, const std::string& token) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " + token +
         "\r\nConnection: close\r\n\r\n";
}

/// The one server of this test binary, over the world's API.
struct fixture {
  fuzz::world& w = fuzz::world::get();
  std::unique_ptr<http_adapter::http_server> server;

  static fixture& get() {
    // The world lives in a temp dir of this test's own, removed at exit (the world is
    // never destroyed: its actors run until the process ends).
    static fixture* f = [] {
      static std::string root = (std::filesystem::temp_directory_path() / "atrium-results-api-XXXXXX").string();
      REQUIRE(::mkdtemp(root.data()) != nullptr);
      ::setenv("ATRIUM_FUZZ_TMP", root.c_str(), 1);
      std::atexit([] {
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
      });
      return new fixture();
    }();
    return *f;
  }

  /// Sends `bytes` on a new connection and reads until the server closes.
  std::string exchange(const std::string& bytes) const {
    const int fd = connect_to(server->port());
    send_all(fd, bytes);
    std::string raw;
    char buf[65536];
    for (;;) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      raw.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return raw;
  }

  fixture() {
    http_adapter::server_options o;
    o.host = "127.0.0.1";
    o.port = 0;
    auto s = http_adapter::http_server::start(o, [this](http_adapter::http_request req, http_adapter::respond_fn rsp) {
      w.api().handle(std::move(req), std::move(rsp));
    });
    REQUIRE(s);
    server = std::move(*s);
  }

  /// GET `target` with `token` (the admin's by default), read until the server closes.
  reply get(const std::string& target, std::string token = {}) const {
    if (token.empty()) token = w.admin_token();
    return parse(exchange(request_bytes(target, token)));
  }

  /// A new job in the world's project (queued; nothing runs it).
  std::string submit() {
    http_adapter::http_request req;
    req.method = "POST";
    req.target = "/v1/jobs";
    req.headers["authorization"] = "Bearer " + w.admin_token();
    req.headers["content-type"] = "application/json";
    req.body =
        json{{"project_id", w.project_id()}, {"kind", "script"}, {"language", "bash"}, {"script", "echo hi"}}.dump();
    req.remote = "127.0.0.1:40000";
    auto resp = w.call(std::move(req));
    REQUIRE(resp.status == 201);
    return json::parse(resp.body).at("id").get<std::string>();
  }

  /// Runs a runner command on `job` as the system principal.
  void run(const std::string& job, job_command cmd) {
    auto r = w.run_as_system(job, std::move(cmd));
    INFO((r ? std::string("ok") : r.error().message));
    REQUIRE(r);
  }

  /// Waits (10 s at most) until the job's view satisfies `pred`.
  void await_view(const std::string& job, const std::function<bool(const json&)>& pred) {
    const auto until = steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      const auto r = get("/v1/jobs/" + job);
      if (r.status == 200 && pred(r.j)) return;
      REQUIRE(steady_clock::now() < until);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  /// Writes a table (`columns`; `rows` rows from `cell(row, column)`, nullopt for NULL)
  /// and `log` for `job`, then drives it to succeeded.
  void succeed(const std::string& job, const std::vector<ports::result_column>& columns, std::uint64_t rows,
               const std::function<std::optional<std::string>(std::uint64_t, std::size_t)>& cell,
               const std::string& log = "done\n") {
    auto writer = w.results().create(job, {});
    REQUIRE(writer);
    REQUIRE((*writer)->begin(columns));
    ports::row_batch batch{columns.size(), {}};
    for (std::uint64_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < columns.size(); ++c) batch.cells.push_back(cell(r, c));
      if (batch.rows() == 4096 || r + 1 == rows) {
        auto kept = (*writer)->append(batch);
        REQUIRE(kept);
        batch.clear();
      }
    }
    REQUIRE((*writer)->append_log(log));
    REQUIRE((*writer)->commit());
    run(job, start_job{"test-runner"});
    std::vector<job_column> cols;
    for (const auto& c : columns) cols.push_back({c.name, c.type});
    run(job, complete_job{rows, (*writer)->bytes(), cols, 5, false});
    await_view(job, [](const json& v) { return v.value("status", "") == "succeeded"; });
  }
};

/// Open descriptors of this process whose path mentions `needle`.
int fds_on(const std::string& needle) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().find(needle) != std::string::npos) ++n;
  }
  return n;
}

std::string csv_of(std::uint64_t rows) {
  std::string out = "id,name,note\r\n";
  for (std::uint64_t r = 0; r < rows; ++r) {
    out += std::to_string(r) + ",row " + std::to_string(r) + (r % 7 == 0 ? ",\"a, b\"\r\n" : ",plain\r\n");
  }
  return out;
}

std::optional<std::string> big_cell(std::uint64_t r, std::size_t c) {
  if (c == 0) return std::to_string(r);
  if (c == 1) return "row " + std::to_string(r);
  return r % 7 == 0 ? "a, b" : "plain";
}

const std::vector<ports::result_column> k_big_columns{{"id", "int"}, {"name", "text"}, {"note", "text"}};

}  // namespace

TEST_CASE("result pages: offset and limit at the boundaries, next, and bad values", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  f.succeed(job, {{"n", "int"}, {"s", "text"}}, 2500, [](std::uint64_t r, std::size_t c) -> std::optional<std::string> {
    return c == 0 ? std::to_string(r) : "r" + std::to_string(r);
  });
  const auto base = "/v1/jobs/" + job + "/result";

  auto first = f.get(base);
  REQUIRE(first.status == 200);
  CHECK(first.headers["content-type"] == "application/json");
  CHECK(first.j["columns"] == json::parse(R"([{"name":"n","type":"int"},{"name":"s","type":"text"}])"));
  CHECK(first.j["rows"].size() == 1000);  // the default limit
  CHECK(first.j["rows"][0] == json::parse(R"([0,"r0"])"));
  CHECK(first.j["rows"][999] == json::parse(R"([999,"r999"])"));
  CHECK(first.j["total_rows"] == 2500);
  CHECK(first.j["truncated"] == false);
  CHECK(first.j["next"] == 1000);

  auto last = f.get(base + "?offset=2000&limit=1000");
  CHECK(last.j["rows"].size() == 500);
  CHECK(last.j["rows"][499] == json::parse(R"([2499,"r2499"])"));
  CHECK(last.j["next"].is_null());

  CHECK(f.get(base + "?offset=2498&limit=1").j["next"] == 2499);
  auto one = f.get(base + "?offset=2499&limit=1");
  CHECK(one.j["rows"] == json::parse(R"([[2499,"r2499"]])"));
  CHECK(one.j["next"].is_null());
  for (const auto* past : {"?offset=2500", "?offset=99999999&limit=10000"}) {
    auto r = f.get(base + past);
    CHECK(r.status == 200);
    CHECK(r.j["rows"] == json::array());
    CHECK(r.j["next"].is_null());
    CHECK(r.j["total_rows"] == 2500);
  }
  // Walking the pages visits every row once.
  std::uint64_t seen = 0;
  for (json next = 0; !next.is_null();) {
    auto page = f.get(base + "?limit=777&offset=" + next.dump());
    REQUIRE(page.status == 200);
    for (const auto& row : page.j["rows"]) CHECK(row[0] == seen++);
    next = page.j["next"];
  }
  CHECK(seen == 2500);
  CHECK(f.get(base + "?limit=10000").j["rows"].size() == 2500);

  for (const auto* bad : {"?limit=0", "?limit=10001", "?limit=-1", "?limit=1.5", "?limit=", "?offset=-1", "?offset=abc",
                          "?offset=1e3", "?offset=99999999999999999999999", "?offset=%2B1"}) {
    auto r = f.get(base + bad);
    INFO(bad << " -> " << r.status << " " << r.body);
    CHECK(r.status == 400);
    CHECK(r.j["error"]["code"] == "invalid_argument");
    CHECK(r.j["error"]["details"].contains("parameter"));
  }
}

TEST_CASE("result.csv is RFC 4180 with quotes, commas, line breaks, empty strings and NULL", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  const std::vector<std::vector<std::optional<std::string>>> rows{
      {"he said \"hi\"", "1", "a,b"},
      {"line\nbreak", std::nullopt, ""},
      {"crlf\r\nend", "-2", "caf\xc3\xa9"},
  };
  f.succeed(job, {{"text", "text"}, {"n", "int"}, {"more", "text"}}, rows.size(),
            [&](std::uint64_t r, std::size_t c) { return rows[r][c]; });
  auto r = f.get("/v1/jobs/" + job + "/result.csv");
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"] == "text/csv; charset=utf-8");
  CHECK(r.headers["content-disposition"] == "attachment; filename=\"" + job + ".csv\"");
  CHECK(r.chunked);
  CHECK(r.framing_ok);
  CHECK(r.body ==
        "text,n,more\r\n"
        "\"he said \"\"hi\"\"\",1,\"a,b\"\r\n"
        "\"line\nbreak\",,\"\"\r\n"
        "\"crlf\r\nend\",-2,caf\xc3\xa9\r\n");
  // The same rows as JSON: NULL is null, numbers are numbers.
  auto page = f.get("/v1/jobs/" + job + "/result");
  CHECK(page.j["rows"][1] == json::parse(R"(["line\nbreak",null,""])"));
  CHECK(page.j["rows"][2][1] == -2);
  // And the log.
  auto log = f.get("/v1/jobs/" + job + "/log");
  CHECK(log.status == 200);
  CHECK(log.headers["content-type"] == "text/plain; charset=utf-8");
  CHECK(log.body == "done\n");
}

TEST_CASE("a 200,000-row result streams as chunked CSV equal to its rows", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  constexpr std::uint64_t rows = 200000;
  f.succeed(job, k_big_columns, rows, big_cell);
  auto r = f.get("/v1/jobs/" + job + "/result.csv");
  REQUIRE(r.status == 200);
  REQUIRE(r.chunked);
  CHECK(r.headers.count("content-length") == 0);
  CHECK(r.framing_ok);
  const auto expected = csv_of(rows);
  CHECK(r.body.size() == expected.size());
  CHECK(r.body == expected);
  // Many chunks of about 64 KiB (a chunk ends after the row that reached the size).
  CHECK(r.chunks.size() >= expected.size() / (80 << 10));
  for (const auto size : r.chunks) CHECK(size <= (64 << 10) + 1024);
  // The JSON pages agree with the CSV at the far end.
  auto tail = f.get("/v1/jobs/" + job + "/result?offset=199999");
  CHECK(tail.j["rows"] == json::parse(R"([[199999,"row 199999","plain"]])"));
}

TEST_CASE("a client that leaves mid-stream releases the result and the server goes on", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  f.succeed(job, k_big_columns, 200000, big_cell);
  const auto before = fds_on(job);
  for (int round = 0; round < 3; ++round) {
    const int fd = connect_to(f.server->port());
    // A small receive buffer, so that the server soon has to wait for this client.
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_all(fd, request_bytes("/v1/jobs/" + job + "/result.csv", f.w.admin_token()));
    char buf[8192];
    std::size_t got = 0;
    while (got < 20000) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      REQUIRE(n > 0);
      got += static_cast<std::size_t>(n);
    }
    CHECK(fds_on(job) > before);  // the stream holds the result's files open
    ::close(fd);                  // gone, with most of the body unsent
  }
  const auto until = steady_clock::now() + std::chrono::seconds(10);
  while (fds_on(job) > before && steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(fds_on(job) == before);
  // The server still answers, the same result included.
  auto again = f.get("/v1/jobs/" + job + "/result?offset=5&limit=1");
  CHECK(again.status == 200);
  CHECK(again.j["rows"] == json::parse(R"([[5,"row 5","plain"]])"));
}

TEST_CASE("the connection stays open after a streamed body (keep-alive)", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  f.succeed(job, {{"n", "int"}}, 2, [](std::uint64_t r, std::size_t) { return std::to_string(r); });
  const auto token = f.w.admin_token();
  // Two pipelined requests: the CSV (keep-alive), then a page that closes.
  const auto raw = f.exchange("GET /v1/jobs/" + job + "/result.csv HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                              token + "\r\n\r\n" + request_bytes("/v1/jobs/" + job + "/result", token));
  const auto second = raw.find("HTTP/1.1 200", 1);
  REQUIRE(second != std::string::npos);
  auto csv = parse(raw.substr(0, second));
  CHECK(csv.framing_ok);
  CHECK(csv.body == "n\r\n0\r\n1\r\n");
  auto page = parse(raw.substr(second));
  CHECK(page.j["rows"] == json::parse("[[0],[1]]"));
}

TEST_CASE("an unfinished job answers 409 with its status", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  auto check = [&](const std::string& status) {
    for (const auto* route : {"/result", "/result.csv", "/log"}) {
      auto r = f.get("/v1/jobs/" + job + route);
      INFO(route << " -> " << r.body);
      CHECK(r.status == 409);
      CHECK(r.j["error"]["code"] == "failed_precondition");
      CHECK(r.j["error"]["message"] == "the job has not finished");
      CHECK(r.j["error"]["details"]["status"] == status);
    }
    // Paging parameters are checked first.
    CHECK(f.get("/v1/jobs/" + job + "/result?limit=0").status == 400);
  };
  check("queued");
  f.run(job, start_job{"test-runner"});
  f.await_view(job, [](const json& v) { return v.value("status", "") == "running"; });
  check("running");
}

TEST_CASE("an expired result answers 410 gone", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  f.succeed(job, {{"n", "int"}}, 3, [](std::uint64_t r, std::size_t) { return std::to_string(r); });
  REQUIRE(f.get("/v1/jobs/" + job + "/result").status == 200);
  REQUIRE(f.w.results().remove(job));  // the expiry sweep removes the files, then records it
  f.run(job, expire_result{});
  f.await_view(job, [](const json& v) { return v.value("result_expired", false); });
  for (const auto* route : {"/result", "/result.csv", "/log"}) {
    auto r = f.get("/v1/jobs/" + job + route);
    INFO(route << " -> " << r.body);
    CHECK(r.status == 410);
    CHECK(r.j["error"]["code"] == "gone");
    CHECK(r.j["error"]["details"]["status"] == "succeeded");
  }
}

TEST_CASE("a finished job without a table answers 404 no_result but its log is served", "[results-api]") {
  auto& f = fixture::get();
  // Failed, with a log and no table (a script that left no result.csv).
  const auto failed = f.submit();
  {
    auto writer = f.w.results().create(failed, {});
    REQUIRE(writer);
    REQUIRE((*writer)->append_log("Traceback: boom\n"));
    REQUIRE((*writer)->commit());
  }
  f.run(failed, start_job{"test-runner"});
  f.run(failed, fail_job{"exit status 1", ""});
  f.await_view(failed, [](const json& v) { return v.value("status", "") == "failed"; });
  for (const auto* route : {"/result", "/result.csv"}) {
    auto r = f.get("/v1/jobs/" + failed + route);
    INFO(route << " -> " << r.body);
    CHECK(r.status == 404);
    CHECK(r.j["error"]["code"] == "not_found");
    CHECK(r.j["error"]["details"]["reason"] == "no_result");
    CHECK(r.j["error"]["details"]["status"] == "failed");
  }
  auto log = f.get("/v1/jobs/" + failed + "/log");
  CHECK(log.status == 200);
  CHECK(log.body == "Traceback: boom\n");

  // Cancelled before it ran: nothing stored at all.
  const auto cancelled = f.submit();
  http_adapter::http_request req;
  req.method = "POST";
  req.target = "/v1/jobs/" + cancelled + "/cancel";
  req.headers["authorization"] = "Bearer " + f.w.admin_token();
  req.remote = "127.0.0.1:40000";
  REQUIRE(f.w.call(std::move(req)).status == 200);
  f.await_view(cancelled, [](const json& v) { return v.value("status", "") == "cancelled"; });
  for (const auto* route : {"/result", "/result.csv", "/log"}) {
    auto r = f.get("/v1/jobs/" + cancelled + route);
    INFO(route << " -> " << r.body);
    CHECK(r.status == 404);
    CHECK(r.j["error"]["details"]["reason"] == "no_result");
  }
}

TEST_CASE("who cannot read the job gets 404, like an unknown job (no token: 401)", "[results-api]") {
  auto& f = fixture::get();
  const auto job = f.submit();
  f.succeed(job, {{"n", "int"}}, 1, [](std::uint64_t, std::size_t) { return std::string("1"); });
  for (const auto* route : {"/result", "/result.csv", "/log"}) {
    auto outsider = f.get("/v1/jobs/" + job + route, f.w.member_token());  // not a member of the project
    CHECK(outsider.status == 404);
    CHECK(outsider.j["error"]["code"] == "not_found");
    auto unknown = f.get(std::string("/v1/jobs/0193a1b3-0f1e-7d2c-9b3a-4c5d6e7f8091") + route);
    CHECK(unknown.status == 404);
    CHECK(f.get("/v1/jobs/" + job + route, "no-such-token").status == 401);
  }
}
