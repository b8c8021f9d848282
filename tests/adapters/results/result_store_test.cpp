// Tests of the file result store (adapters/results) on real files in a fresh temporary
// directory: typed round trips, paging through the index, CSV, bounds, commit and
// discard, replacement, expiry listing and hostile job ids.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adapters/results/file_result_store.hpp"
#include "adapters/results/result_format.hpp"
#include "tests/support/process.hpp"

namespace {

namespace fs = std::filesystem;
using atrium::errc;
using atrium::ports::result_column;
using atrium::ports::result_limits;
using atrium::ports::result_reader;
using atrium::ports::result_writer;
using atrium::ports::row_batch;
using atrium::results_adapter::file_result_store;
using nlohmann::json;
using cell = std::optional<std::string>;

constexpr const char* k_job = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
constexpr const char* k_job2 = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";

std::unique_ptr<file_result_store> open_store(const fs::path& root) {
  auto store = file_result_store::open_dir(root);
  REQUIRE(store.has_value());
  return std::move(*store);
}

std::unique_ptr<result_writer> make_writer(file_result_store& store, const char* job, result_limits limits = {}) {
  auto w = store.create(job, limits);
  REQUIRE(w.has_value());
  return std::move(*w);
}

std::unique_ptr<result_reader> open_reader(const file_result_store& store, const char* job) {
  auto r = store.open(job);
  REQUIRE(r.has_value());
  return std::move(*r);
}

row_batch batch(std::size_t columns, std::vector<cell> cells) { return row_batch{columns, std::move(cells)}; }

/// Row i of the synthetic 4-column table the bulk tests write.
void synthetic_row(std::uint64_t i, std::vector<cell>& out) {
  out.emplace_back(std::to_string(i));
  out.emplace_back("name-" + std::to_string(i % 977));
  out.emplace_back(i % 5 == 0 ? cell{} : cell{std::to_string(i) + ".5"});
  out.emplace_back(i % 2 == 0 ? "t" : "f");
}

const std::vector<result_column> k_synthetic_columns{
    {"id", "int"}, {"name", "text"}, {"score", "float"}, {"ok", "bool"}};

json synthetic_json(std::uint64_t i) {
  json score = i % 5 == 0 ? json(nullptr) : json(static_cast<double>(i) + 0.5);
  return json::array({static_cast<std::int64_t>(i), "name-" + std::to_string(i % 977), score, i % 2 == 0});
}

/// Writes `rows` synthetic rows in batches of 1000 and commits.
void write_synthetic(file_result_store& store, const char* job, std::uint64_t rows, result_limits limits = {}) {
  auto w = make_writer(store, job, limits);
  REQUIRE(w->begin(k_synthetic_columns).has_value());
  row_batch b{4, {}};
  for (std::uint64_t i = 0; i < rows; i += 1000) {
    b.clear();
    for (std::uint64_t j = i; j < std::min(rows, i + 1000); ++j) synthetic_row(j, b.cells);
    REQUIRE(w->append(b).has_value());
  }
  REQUIRE(w->commit().has_value());
}

std::string whole_csv(result_reader& r, std::size_t chunk) {
  auto src = r.csv(chunk);
  REQUIRE(src.has_value());
  std::string all, part;
  for (;;) {
    auto more = (*src)->next(part);
    REQUIRE(more.has_value());
    if (!*more) break;
    REQUIRE_FALSE(part.empty());
    all += part;
  }
  return all;
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

}  // namespace

TEST_CASE("result store: typed values round trip as JSON by column type", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path() / "results");
  auto w = make_writer(*store, k_job);
  std::vector<result_column> cols{{"i", "int"}, {"f", "float"}, {"n", "numeric"}, {"b", "bool"}, {"t", "text"}};
  REQUIRE(w->begin(cols).has_value());
  const std::string tricky = "say \"hi\", then\nleave\r\n — ünïcødé ✓ 𝄞";
  auto kept = w->append(batch(5, {"42",
                                  "1.5",
                                  "12345678901234567890",
                                  "t",
                                  tricky,  //
                                  "-9223372036854775808",
                                  "NaN",
                                  "1e400",
                                  "false",
                                  "",  //
                                  cell{},
                                  "-0.25e-3",
                                  "007",
                                  "1",
                                  cell{},  //
                                  "18446744073709551615",
                                  "Infinity",
                                  "3.14159",
                                  "maybe",
                                  "\x01"}));
  REQUIRE(kept.has_value());
  CHECK(*kept == 4);
  CHECK(w->rows() == 4);
  REQUIRE(w->commit().has_value());

  auto r = open_reader(*store, k_job);
  CHECK(r->info().has_table);
  CHECK(r->info().columns == cols);
  CHECK(r->info().total_rows == 4);
  CHECK_FALSE(r->info().truncated);
  auto rows = r->rows(0, 10);
  REQUIRE(rows.has_value());
  REQUIRE(rows->size() == 4);
  CHECK((*rows)[0] == json::array({42, 1.5, 12345678901234567890ULL, true, tricky}));
  CHECK((*rows)[1] == json::array({INT64_MIN, "NaN", "1e400", false, ""}));
  CHECK((*rows)[2] == json::array({nullptr, -0.25e-3, "007", true, nullptr}));
  CHECK((*rows)[3] == json::array({18446744073709551615ULL, "Infinity", 3.14159, "maybe", "\x01"}));
  // Every row serializes (the HTTP adapter dumps them).
  for (const auto& row : *rows) CHECK_NOTHROW(row.dump());
}

TEST_CASE("result store: rendering helpers", "[results]") {
  using namespace atrium::results_adapter;
  for (const char* good : {"0", "-0", "12", "1.5", "-1.5e10", "1E+2", "0.0e-0"}) CHECK(is_json_number(good));
  for (const char* bad : {"", "-", "01", "1.", ".5", "1e", "+1", "NaN", "Infinity", "1 ", " 1", "0x10", "1e+"}) {
    CHECK_FALSE(is_json_number(bad));
  }
  CHECK(valid_utf8("ok ✓") == "ok ✓");
  CHECK(valid_utf8("a\xff"
                   "b\xc3") ==
        "a\xef\xbf\xbd"
        "b\xef\xbf\xbd");
  CHECK(valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  CHECK_NOTHROW(render_json(json_kind::string, "\xc0\xaf").dump());
}

TEST_CASE("result store: CSV is RFC 4180 and the same in any chunk size", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  auto w = make_writer(*store, k_job);
  REQUIRE(w->begin({{"id", "int"}, {"note, with comma", "text"}, {"flag", "bool"}}).has_value());
  REQUIRE(w->append(batch(3, {"1", "plain", "t",                   //
                              "2", "say \"hi\"", cell{},           //
                              "3", "two\nlines\r\nhere", "false",  //
                              "4", "", "f"}))
              .has_value());
  REQUIRE(w->commit().has_value());
  auto r = open_reader(*store, k_job);
  const std::string expected =
      "id,\"note, with comma\",flag\r\n"
      "1,plain,t\r\n"
      "2,\"say \"\"hi\"\"\",\r\n"
      "3,\"two\nlines\r\nhere\",false\r\n"
      "4,\"\",f\r\n";
  CHECK(whole_csv(*r, 64 * 1024) == expected);
  CHECK(whole_csv(*r, 1) == expected);
  CHECK(whole_csv(*r, 7) == expected);
}

TEST_CASE("result store: paging seeks through the index", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  constexpr std::uint64_t n = 3 * 1024 + 17;
  write_synthetic(*store, k_job, n);
  auto r = open_reader(*store, k_job);
  REQUIRE(r->info().total_rows == n);
  for (std::uint64_t offset : std::vector<std::uint64_t>{0, 1, 1023, 1024, 1025, 2047, 2048, 3072, n - 1}) {
    INFO("offset " << offset);
    auto rows = r->rows(offset, 3);
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == std::min<std::uint64_t>(3, n - offset));
    for (std::size_t k = 0; k < rows->size(); ++k) CHECK((*rows)[k] == synthetic_json(offset + k));
  }
  auto spanning = r->rows(1000, 2000);  // across two index entries
  REQUIRE(spanning.has_value());
  REQUIRE(spanning->size() == 2000);
  CHECK(spanning->back() == synthetic_json(2999));
  for (std::uint64_t past : std::vector<std::uint64_t>{n, n + 1, 1ULL << 40}) {
    auto none = r->rows(past, 10);
    REQUIRE(none.has_value());
    CHECK(none->empty());
  }
  auto zero = r->rows(5, 0);
  REQUIRE(zero.has_value());
  CHECK(zero->empty());
}

TEST_CASE("result store: the row bound truncates", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  result_limits limits;
  limits.max_rows = 2500;
  auto w = make_writer(*store, k_job, limits);
  REQUIRE(w->begin(k_synthetic_columns).has_value());
  row_batch b{4, {}};
  for (std::uint64_t i = 0; i < 2000; ++i) synthetic_row(i, b.cells);
  CHECK(w->append(b).value() == 2000);
  CHECK_FALSE(w->full());
  CHECK(w->append(b).value() == 500);
  CHECK(w->full());
  CHECK(w->append(b).value() == 0);
  CHECK(w->rows() == 2500);
  REQUIRE(w->commit().has_value());
  auto r = open_reader(*store, k_job);
  CHECK(r->info().truncated);
  CHECK(r->info().total_rows == 2500);
  CHECK(r->rows(2499, 5).value().size() == 1);
}

TEST_CASE("result store: exactly max_rows rows is not truncated", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  result_limits limits;
  limits.max_rows = 1000;
  write_synthetic(*store, k_job, 1000, limits);
  CHECK_FALSE(open_reader(*store, k_job)->info().truncated);
}

TEST_CASE("result store: the byte bound truncates at a whole row", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  result_limits limits;
  limits.max_bytes = 25;
  auto w = make_writer(*store, k_job, limits);
  REQUIRE(w->begin({{"a", "text"}, {"b", "text"}}).has_value());
  // Rows of 10 bytes each: two fit (20), the third would make 30.
  auto kept = w->append(batch(2, {"aaaaa", "bbbbb", "ccccc", "ddddd", "eeeee", "fffff", "g", cell{}}));
  REQUIRE(kept.has_value());
  CHECK(*kept == 2);
  CHECK(w->full());
  CHECK(w->bytes() == 20);
  REQUIRE(w->commit().has_value());
  auto r = open_reader(*store, k_job);
  CHECK(r->info().truncated);
  CHECK(r->info().bytes == 20);
  CHECK(r->rows(0, 10).value() == std::vector<json>{json::array({"aaaaa", "bbbbb"}), json::array({"ccccc", "ddddd"})});
}

TEST_CASE("result store: the log is bounded and says how much was dropped", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  result_limits limits;
  limits.max_log_bytes = 20;
  auto w = make_writer(*store, k_job, limits);
  REQUIRE(w->append_log("hello\n").has_value());
  REQUIRE(w->append_log("0123456789abcdefghij").has_value());  // 14 fit, 6 dropped
  REQUIRE(w->append_log("xyz").has_value());                   // all dropped
  REQUIRE(w->commit().has_value());
  auto r = open_reader(*store, k_job);
  const std::string expected = "hello\n0123456789abcd\n[\xe2\x80\xa6 9 bytes dropped]\n";
  CHECK(r->log(1 << 20).value() == expected);
  CHECK(r->info().log_bytes == expected.size());
  CHECK(r->log(5).value() == "hello");
  // No table: rows are empty and CSV is refused.
  CHECK_FALSE(r->info().has_table);
  CHECK(r->rows(0, 10).value().empty());
  auto csv = r->csv(1024);
  REQUIRE_FALSE(csv.has_value());
  CHECK(csv.error().code == errc::failed_precondition);
}

TEST_CASE("result store: a log cut never splits a UTF-8 character", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  result_limits limits;
  limits.max_log_bytes = 4;
  auto w = make_writer(*store, k_job, limits);
  REQUIRE(w->append_log("ab\xe2\x9c\x93").has_value());  // "ab✓": the check mark does not fit
  REQUIRE(w->commit().has_value());
  CHECK(open_reader(*store, k_job)->log(100).value() == "ab\n[\xe2\x80\xa6 3 bytes dropped]\n");
}

TEST_CASE("result store: an uncommitted writer leaves nothing", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  {
    auto w = make_writer(*store, k_job);
    REQUIRE(w->begin(k_synthetic_columns).has_value());
    row_batch b{4, {}};
    synthetic_row(1, b.cells);
    REQUIRE(w->append(b).has_value());
    REQUIRE(w->append_log("output").has_value());
    CHECK(entries(dir.path()).size() == 1);  // its temp dir
  }
  CHECK(entries(dir.path()).empty());
  auto r = store->open(k_job);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::not_found);
}

TEST_CASE("result store: a new commit replaces the old one, which stays readable until then", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  write_synthetic(*store, k_job, 10);
  auto before = open_reader(*store, k_job);

  auto w = make_writer(*store, k_job);
  REQUIRE(w->begin({{"x", "text"}}).has_value());
  REQUIRE(w->append(batch(1, {"new"})).has_value());
  // Not committed yet: the old result is what a reader sees.
  CHECK(open_reader(*store, k_job)->info().total_rows == 10);
  REQUIRE(w->commit().has_value());
  auto err = w->append(batch(1, {"late"}));
  REQUIRE_FALSE(err.has_value());
  CHECK(err.error().code == errc::failed_precondition);

  auto after = open_reader(*store, k_job);
  CHECK(after->info().total_rows == 1);
  CHECK(after->rows(0, 5).value() == std::vector<json>{json::array({"new"})});
  // The reader opened before the commit still reads the old result in full.
  CHECK(before->rows(9, 5).value() == std::vector<json>{synthetic_json(9)});
  CHECK(whole_csv(*before, 10).starts_with("id,name,score,ok\r\n0,name-0,,t\r\n"));
  w.reset();
  CHECK(entries(dir.path()) == std::set<std::string>{k_job});
}

TEST_CASE("result store: stale temp dirs are removed when the store opens", "[results]") {
  atrium::test::temp_dir dir;
  {
    auto store = open_store(dir.path());
    write_synthetic(*store, k_job, 5);
  }
  fs::create_directories(dir.path() / (std::string(".tmp-") + k_job2 + "-0123456789abcdef") / "sub");
  std::ofstream(dir.path() / (std::string(".tmp-") + k_job2 + "-0123456789abcdef") / "rows") << "partial";
  fs::create_directories(dir.path() / ".tmp-old-fedcba9876543210");
  auto store = open_store(dir.path());
  CHECK(entries(dir.path()) == std::set<std::string>{k_job});
  CHECK(open_reader(*store, k_job)->info().total_rows == 5);
}

TEST_CASE("result store: committed_before lists results older than a time, and remove deletes", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  const auto t0 = std::chrono::system_clock::now() - std::chrono::milliseconds(5);
  write_synthetic(*store, k_job, 3);
  write_synthetic(*store, k_job2, 3);
  CHECK(store->committed_before(t0, 10).value().empty());
  const auto later = std::chrono::system_clock::now() + std::chrono::seconds(1);
  auto both = store->committed_before(later, 10).value();
  CHECK(std::set<std::string>(both.begin(), both.end()) == std::set<std::string>{k_job, k_job2});
  CHECK(store->committed_before(later, 1).value().size() == 1);
  CHECK(store->committed_before(later, 0).value().empty());
  auto committed_at = open_reader(*store, k_job)->info().committed_at;
  CHECK(committed_at >= t0);
  CHECK(committed_at < later);

  REQUIRE(store->remove(k_job).has_value());
  REQUIRE(store->remove(k_job).has_value());  // absent: still fine
  CHECK(store->open(k_job).error().code == errc::not_found);
  CHECK(store->committed_before(later, 10).value() == std::vector<std::string>{k_job2});
  CHECK(entries(dir.path()) == std::set<std::string>{k_job2});
}

TEST_CASE("result store: job ids that are not UUIDs are refused", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path() / "results");
  for (const char* bad : {"", "..", "../../../../../../../../../etc/passwd", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
                          "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bb", "0190a1b2/c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                          "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4.5b",
                          ".tmp-1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}) {
    INFO(bad);
    CHECK(store->create(bad, {}).error().code == errc::invalid_argument);
    CHECK(store->open(bad).error().code == errc::invalid_argument);
    CHECK(store->remove(bad).error().code == errc::invalid_argument);
  }
  CHECK(entries(dir.path() / "results").empty());
  // Upper case names the same result as lower case.
  write_synthetic(*store, "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", 2);
  CHECK(open_reader(*store, k_job)->info().total_rows == 2);
}

TEST_CASE("result store: misuse of a writer is reported", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  auto w = make_writer(*store, k_job);
  CHECK(w->append(batch(1, {"x"})).error().code == errc::failed_precondition);
  REQUIRE(w->begin({{"a", "int"}, {"b", "int"}}).has_value());
  CHECK(w->begin({{"a", "int"}}).error().code == errc::failed_precondition);
  CHECK(w->append(batch(3, {"1", "2", "3"})).error().code == errc::invalid_argument);
  CHECK(w->append(batch(2, {"1", "2", "3"})).error().code == errc::invalid_argument);
  CHECK(w->append(batch(2, {})).value() == 0);
  REQUIRE(w->commit().has_value());
  CHECK(w->commit().error().code == errc::failed_precondition);
  auto r = open_reader(*store, k_job);
  CHECK(r->info().total_rows == 0);
  CHECK(whole_csv(*r, 100) == "a,b\r\n");
}

TEST_CASE("result store: two writers of one job both commit, the last one wins", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  auto first = make_writer(*store, k_job);
  auto second = make_writer(*store, k_job);
  REQUIRE(first->begin({{"w", "text"}}).has_value());
  REQUIRE(second->begin({{"w", "text"}}).has_value());
  REQUIRE(first->append(batch(1, {"first"})).has_value());
  REQUIRE(second->append(batch(1, {"second"})).has_value());
  REQUIRE(first->commit().has_value());
  REQUIRE(second->commit().has_value());
  CHECK(open_reader(*store, k_job)->rows(0, 1).value() == std::vector<json>{json::array({"second"})});
  CHECK(entries(dir.path()) == std::set<std::string>{k_job});
}

TEST_CASE("result store: damaged files are reported, not trusted", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  write_synthetic(*store, k_job, 3000);
  write_synthetic(*store, k_job2, 10);
  const fs::path rows = dir.path() / k_job / "rows";
  const auto size = fs::file_size(rows);
  fs::resize_file(rows, size - 100);  // the last rows lose their tail
  auto r = open_reader(*store, k_job);
  CHECK(r->rows(0, 10).value().size() == 10);
  auto tail = r->rows(2950, 50);
  REQUIRE_FALSE(tail.has_value());
  CHECK(tail.error().code == errc::unavailable);
  auto csv = r->csv(1 << 20);
  REQUIRE(csv.has_value());
  std::string chunk;
  auto more = (*csv)->next(chunk);
  REQUIRE_FALSE(more.has_value());
  CHECK(more.error().code == errc::unavailable);
  fs::resize_file(rows, size / 2);  // index entries now point past the end
  CHECK(store->open(k_job).error().code == errc::unavailable);
  std::ofstream(dir.path() / k_job2 / "meta.json", std::ios::trunc) << "{not json";
  auto bad = store->open(k_job2);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == errc::unavailable);
}

TEST_CASE("result store: 200,000 rows read back page by page and as CSV", "[results]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  constexpr std::uint64_t n = 200000;
  write_synthetic(*store, k_job, n);
  auto r = open_reader(*store, k_job);
  REQUIRE(r->info().total_rows == n);
  std::uint64_t seen = 0;
  for (std::uint64_t offset = 0;; offset += 1000) {
    auto page = r->rows(offset, 1000);
    REQUIRE(page.has_value());
    if (page->empty()) break;
    for (std::size_t k = 0; k < page->size(); ++k) {
      if ((*page)[k] != synthetic_json(offset + k)) FAIL("row " << offset + k << ": " << (*page)[k].dump());
    }
    seen += page->size();
  }
  CHECK(seen == n);
  std::string expected = "id,name,score,ok\r\n";
  for (std::uint64_t i = 0; i < n; ++i) {
    expected += std::to_string(i) + ",name-" + std::to_string(i % 977) + "," +
                (i % 5 == 0 ? "" : std::to_string(i) + ".5") + "," + (i % 2 == 0 ? "t" : "f") + "\r\n";
  }
  CHECK(whole_csv(*r, 64 * 1024) == expected);
}

// Not registered with CTest (hidden tag): prints the write rate of 1,000,000 rows of 4
// short columns. Run: atrium_adapter_tests "[.results_bench]".
TEST_CASE("result store: write rate of 1,000,000 rows", "[.results_bench]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  constexpr std::uint64_t n = 1000000, per_batch = 1000;
  // Batches built up front: the figure is the store's, not the test's string building.
  const auto build_start = std::chrono::steady_clock::now();
  std::vector<row_batch> batches(n / per_batch, row_batch{4, {}});
  for (std::uint64_t i = 0; i < n; ++i) synthetic_row(i, batches[i / per_batch].cells);
  const auto start = std::chrono::steady_clock::now();
  auto w = make_writer(*store, k_job);
  REQUIRE(w->begin(k_synthetic_columns).has_value());
  for (const auto& b : batches) REQUIRE(w->append(b).value() == per_batch);
  const auto appended = std::chrono::steady_clock::now();
  REQUIRE(w->commit().has_value());
  const auto committed = std::chrono::steady_clock::now();
  auto r = open_reader(*store, k_job);
  std::uint64_t csv_bytes = whole_csv(*r, 64 * 1024).size();
  const auto csv_done = std::chrono::steady_clock::now();
  std::uint64_t paged = 0;
  for (std::uint64_t offset = 0; offset < n; offset += 1000) paged += r->rows(offset, 1000).value().size();
  const auto pages_done = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf(
      "{\"path\":\"results_write\",\"rows\":%llu,\"bytes\":%llu,\"append_s\":%.3f,\"commit_s\":%.3f,"
      "\"rows_per_s\":%.0f,\"build_s\":%.3f,\"csv_rows_per_s\":%.0f,\"csv_bytes\":%llu,\"json_rows_per_s\":%.0f}\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(w->bytes()), secs(start, appended),
      secs(appended, committed), n / secs(start, committed), secs(build_start, start), n / secs(committed, csv_done),
      static_cast<unsigned long long>(csv_bytes), paged / secs(csv_done, pages_done));
  CHECK(paged == n);
}
