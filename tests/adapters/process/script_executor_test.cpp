// The script executor (adapters/process/script_executor.hpp) running real python3 and
// bash processes, sandboxed by bubblewrap where it works here, and its result.csv
// reader (adapters/process/csv_reader.hpp).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "adapters/process/csv_reader.hpp"
#include "adapters/process/script_executor.hpp"
#include "adapters/results/file_result_store.hpp"
#include "tests/support/memory_result_writer.hpp"
#include "tests/support/process.hpp"

namespace fs = std::filesystem;
using namespace atrium;
using namespace atrium::process_adapter;
using status = ports::job_outcome::status;

namespace {

constexpr const char* k_job_id = "0193a1c2-0000-7000-8000-00000000abcd";

struct fixture {
  test::temp_dir tmp;
  std::unique_ptr<script_executor> executor;

  explicit fixture(sandbox_mode mode = sandbox_mode::automatic,
                   const std::function<void(script_executor_options&)>& adjust = {}) {
    script_executor_options o;
    o.work_root = tmp.path() / "data" / "work";
    o.hidden_paths = {tmp.path() / "data"};
    o.sandbox = mode;
    if (adjust) adjust(o);
    auto made = script_executor::create(o);
    REQUIRE(made);
    executor = std::move(*made);
  }

  ports::job_outcome run(const std::string& language, const std::string& source, test::memory_result_writer& out,
                         std::chrono::seconds timeout = std::chrono::seconds(60)) {
    ports::job_spec spec;
    spec.job_id = k_job_id;
    spec.kind = "script";
    spec.language = language;
    spec.source = source;
    spec.timeout = timeout;
    ports::cancel_signal cancel;
    return executor->run(spec, out, {}, cancel);
  }

  [[nodiscard]] bool work_root_empty() const { return fs::is_empty(executor->options().work_root); }
};

/// Non-zombie processes whose process group is `pgid` (from /proc/<pid>/stat).
std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> members;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (!(rest >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') members.push_back(std::stoi(name));
  }
  return members;
}

/// The pid of this process's child (the script's group leader: bwrap or the interpreter).
pid_t our_child() {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 1));
    char state = 0;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == ::getpid() && state != 'Z') return std::stoi(name);
  }
  return -1;
}

}  // namespace

TEST_CASE("script executor: python prints and leaves result.csv", "[script]") {
  fixture f;
  test::memory_result_writer out;
  const auto outcome = f.run("python", R"(
import csv, sys
print("hello from python")
print("to stderr", file=sys.stderr)
with open("result.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["id", "name", "score"])
    for i in range(20000):
        w.writerow([i, "row %d" % i, i / 4])
)",
                             out);
  INFO(outcome.error << "\n" << out.log());
  REQUIRE(outcome.state == status::succeeded);
  CHECK(out.log().find("hello from python\n") != std::string::npos);
  CHECK(out.log().find("to stderr\n") != std::string::npos);
  REQUIRE(out.begun());
  CHECK(out.columns() == std::vector<ports::result_column>{{"id", "int"}, {"name", "text"}, {"score", "float"}});
  REQUIRE(out.rows() == 20000);
  CHECK(out.cell(0, 0) == "0");
  CHECK(out.cell(19999, 1) == "row 19999");
  CHECK(out.cell(3, 2) == "0.75");
  CHECK(out.appends() >= 3);  // in batches
  CHECK(out.commits() == 0);  // the caller commits
  CHECK(f.work_root_empty());
}

TEST_CASE("script executor: bash script with a result", "[script]") {
  fixture f;
  test::memory_result_writer out;
  const auto outcome = f.run("bash", "echo \"cwd=$PWD\"\nprintf 'a,b\\n1,x\\n2,y\\n' > result.csv\n", out);
  INFO(outcome.error << "\n" << out.log());
  REQUIRE(outcome.state == status::succeeded);
  CHECK(out.log().find("cwd=") != std::string::npos);
  CHECK(out.columns() == std::vector<ports::result_column>{{"a", "int"}, {"b", "text"}});
  REQUIRE(out.rows() == 2);
  CHECK(out.cell(1, 1) == "y");
}

TEST_CASE("script executor: a script without result.csv has no table", "[script]") {
  fixture f;
  test::memory_result_writer out;
  const auto outcome = f.run("bash", "echo just output", out);
  REQUIRE(outcome.state == status::succeeded);
  CHECK_FALSE(out.begun());
  CHECK(out.log() == "just output\n");
}

TEST_CASE("script executor: a non-zero exit fails with the status and stderr's last line", "[script]") {
  fixture f;
  test::memory_result_writer out;
  const auto outcome = f.run("bash", "echo working\necho 'first problem' >&2\necho 'it broke' >&2\nexit 3\n", out);
  CHECK(outcome.state == status::failed);
  CHECK(outcome.error == "exit status 3: it broke");

  test::memory_result_writer out2;
  const auto py = f.run("python", "raise ValueError('bad value')\n", out2);
  CHECK(py.state == status::failed);
  CHECK(py.error == "exit status 1: ValueError: bad value");
  CHECK(out2.log().find("Traceback") != std::string::npos);
}

TEST_CASE("script executor: unknown language, wrong kind, missing interpreter", "[script]") {
  fixture f;
  test::memory_result_writer out;
  CHECK(f.run("ruby", "puts 1", out).error == "unknown script language: ruby");
  fixture g(sandbox_mode::never, [](script_executor_options& o) { o.search_path = "/nonexistent"; });
  const auto outcome = g.run("python", "print(1)", out);
  CHECK(outcome.state == status::failed);
  CHECK(outcome.error == "python3 is not installed");
}

TEST_CASE("script executor: a cancelled endless script and its forked children are gone", "[script]") {
  struct variant {
    const char* name;
    const char* language;
    const char* source;
  };
  const variant variants[] = {
      {"python forks a child, then spins", "python",
       "import subprocess\nsubprocess.Popen(['sleep', '1000'])\nprint('started', flush=True)\nwhile True: pass\n"},
      {"bash waits on background jobs", "bash", "sleep 1000 &\nbash -c 'sleep 1000' &\necho started\nwait\n"},
      {"bash ignores SIGTERM (SIGKILL after the grace period)", "bash",
       "trap '' TERM\nsleep 1000 &\necho started\nwhile :; do :; done\n"},
  };
  for (const auto mode : {sandbox_mode::automatic, sandbox_mode::never}) {
    for (const auto& v : variants) {
      DYNAMIC_SECTION(v.name << (mode == sandbox_mode::never ? ", no sandbox" : ", sandbox if usable")) {
        fixture f(mode);
        test::memory_result_writer out;
        ports::job_spec spec;
        spec.job_id = k_job_id;
        spec.kind = "script";
        spec.language = v.language;
        spec.source = v.source;
        ports::cancel_signal cancel;
        std::atomic<std::uint64_t> bytes{0};
        ports::job_outcome outcome;
        std::thread runner([&] {
          outcome = f.executor->run(
              spec, out, [&](const ports::job_progress& p) { bytes = p.bytes; }, cancel);
        });
        // Started: output seen, and the group has its children (leader, interpreter, sleeps).
        REQUIRE(test::wait_until([&] { return bytes.load() > 0; }, std::chrono::seconds(20)));
        const pid_t leader = our_child();
        REQUIRE(leader > 0);
        REQUIRE(test::wait_until([&] { return group_members(leader).size() >= 2; }, std::chrono::seconds(10)));
        const auto asked = std::chrono::steady_clock::now();
        cancel.request();
        runner.join();
        const auto took = std::chrono::steady_clock::now() - asked;
        CHECK(outcome.state == status::interrupted);
        CHECK(took < std::chrono::seconds(2));
        CHECK(group_members(leader).empty());
        CHECK(f.work_root_empty());
      }
    }
  }
}

TEST_CASE("script executor: a cancelled script gets SIGTERM and its grace period first", "[script]") {
  for (const auto mode : {sandbox_mode::automatic, sandbox_mode::never}) {
    fixture f(mode);
    test::memory_result_writer out;
    ports::job_spec spec;
    spec.job_id = k_job_id;
    spec.kind = "script";
    spec.language = "python";
    spec.source =
        "import signal, sys, time\n"
        "def on_term(*_):\n    print('terminated, cleaning up', flush=True)\n    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, on_term)\nprint('started', flush=True)\n"
        "while True: time.sleep(0.05)\n";
    ports::cancel_signal cancel;
    std::atomic<std::uint64_t> bytes{0};
    ports::job_outcome outcome;
    std::thread runner([&] {
      outcome = f.executor->run(
          spec, out, [&](const ports::job_progress& p) { bytes = p.bytes; }, cancel);
    });
    REQUIRE(test::wait_until([&] { return bytes.load() > 0; }, std::chrono::seconds(20)));
    cancel.request();
    runner.join();
    CHECK(outcome.state == status::interrupted);
    CHECK(out.log() == "started\nterminated, cleaning up\n");
  }
}

TEST_CASE("script executor: a cancel before the start runs nothing", "[script]") {
  fixture f;
  test::memory_result_writer out;
  ports::job_spec spec;
  spec.job_id = k_job_id;
  spec.kind = "script";
  spec.language = "bash";
  spec.source = "touch /tmp/should-not-exist";
  ports::cancel_signal cancel;
  cancel.request();
  CHECK(f.executor->run(spec, out, {}, cancel).state == status::interrupted);
}

TEST_CASE("script executor: the environment is built, not inherited", "[script]") {
  ::setenv("ATRIUM_TEST_SECRET", "s3cret", 1);
  ::setenv("SOME_OTHER_VARIABLE", "x", 1);
  fixture f;
  test::memory_result_writer out;
  const auto outcome = f.run("python", "import os\nfor k in sorted(os.environ): print(k + '=' + os.environ[k])\n", out);
  ::unsetenv("ATRIUM_TEST_SECRET");
  ::unsetenv("SOME_OTHER_VARIABLE");
  REQUIRE(outcome.state == status::succeeded);
  const std::string log = out.log();
  INFO(log);
  CHECK(log.find("ATRIUM") == std::string::npos);
  CHECK(log.find("s3cret") == std::string::npos);
  CHECK(log.find("SOME_OTHER_VARIABLE") == std::string::npos);
  CHECK(log.find("PATH=/usr/bin:/bin\n") != std::string::npos);
  CHECK(log.find("LANG=C.UTF-8\n") != std::string::npos);
  CHECK(log.find("HOME=") != std::string::npos);
  CHECK(log.find("TMPDIR=") != std::string::npos);
}

TEST_CASE("script executor: huge output is bounded and read to the end", "[script]") {
  fixture f(sandbox_mode::automatic, [](script_executor_options& o) { o.max_log_bytes = 64 * 1024; });
  test::memory_result_writer out;
  std::uint64_t last_bytes = 0;
  ports::job_spec spec;
  spec.job_id = k_job_id;
  spec.kind = "script";
  spec.language = "python";
  spec.source =
      "import sys\nline = 'x' * 1023 + '\\n'\nfor i in range(50 * 1024): sys.stdout.write(line)\nprint('done', "
      "file=sys.stderr)\n";
  ports::cancel_signal cancel;
  const auto outcome = f.executor->run(
      spec, out, [&](const ports::job_progress& p) { last_bytes = p.bytes; }, cancel);
  REQUIRE(outcome.state == status::succeeded);
  CHECK(last_bytes == 50 * 1024 * 1024 + 5);
  const std::string log = out.log();
  CHECK(log.size() < 64 * 1024 + 200);
  CHECK(log.find("bytes of output dropped]") != std::string::npos);
}

TEST_CASE("script executor: the sandbox hides the data dir and the network", "[script][sandbox]") {
  fixture f;
  if (!f.executor->sandboxed()) {
    WARN("bwrap is not usable here: the sandbox test is skipped");
    return;
  }
  const fs::path data = f.tmp.path() / "data";
  { std::ofstream(data / "secret.txt") << "top secret"; }
  // A TCP listener on the host's loopback.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);

  const std::string script =
      "import socket\n"
      "try:\n"
      "    print('READ', open('" +
      (data / "secret.txt").string() +
      "').read())\n"
      "except OSError as e:\n"
      "    print('no read:', e)\n"
      "try:\n"
      "    socket.create_connection(('127.0.0.1', " +
      std::to_string(port) +
      "), timeout=5)\n"
      "    print('CONNECTED')\n"
      "except OSError as e:\n"
      "    print('no connect:', e)\n"
      "import os\nprint('root:', sorted(os.listdir('/')))\n"
      "print([l for l in open('/proc/self/status') if l.startswith('CapEff')][0])\n";
  test::memory_result_writer out;
  const auto outcome = f.run("python", script, out);
  REQUIRE(outcome.state == status::succeeded);
  INFO(out.log());
  CHECK(out.log().find("no read:") != std::string::npos);
  CHECK(out.log().find("no connect:") != std::string::npos);
  CHECK(out.log().find("READ") == std::string::npos);
  CHECK(out.log().find("CONNECTED") == std::string::npos);
  CHECK(out.log().find("root: ['bin', 'dev', 'etc', 'job', 'lib'") != std::string::npos);
  CHECK(out.log().find("CapEff:\t0000000000000000") != std::string::npos);  // no capability, even as root

  // The same script without the sandbox does both: the probes above can tell.
  fixture plain(sandbox_mode::never);
  test::memory_result_writer out2;
  REQUIRE(plain.run("python", script, out2).state == status::succeeded);
  CHECK(out2.log().find("READ top secret") != std::string::npos);
  CHECK(out2.log().find("CONNECTED") != std::string::npos);
  ::close(listener);
}

TEST_CASE("script executor: a hidden path inside the bound system dirs is covered", "[script][sandbox]") {
  fixture f(sandbox_mode::automatic, [](script_executor_options& o) { o.hidden_paths.push_back("/usr/share/doc"); });
  if (!f.executor->sandboxed()) {
    WARN("bwrap is not usable here: the sandbox test is skipped");
    return;
  }
  REQUIRE_FALSE(fs::is_empty("/usr/share/doc"));
  test::memory_result_writer out;
  const auto outcome = f.run("bash", "ls -A /usr/share/doc | wc -l; ls /usr/bin/bash", out);
  REQUIRE(outcome.state == status::succeeded);
  CHECK(out.log() == "0\n/usr/bin/bash\n");

  script_executor_options o;
  o.work_root = f.tmp.path() / "w2";
  o.hidden_paths = {"/etc"};  // would hide what the sandbox binds
  const auto refused = script_executor::create(o);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::invalid_argument);
}

TEST_CASE("script executor: the memory limit stops a 4 GiB allocation", "[script]") {
  fixture f;
  test::memory_result_writer out;
  const auto outcome = f.run("python", "x = bytearray(4 << 30)\nprint('allocated')\n", out);
  CHECK(outcome.state == status::failed);
  CHECK(outcome.error == "exit status 1: MemoryError");
  CHECK(out.log().find("allocated") == std::string::npos);
}

TEST_CASE("script executor: the CPU limit kills a script past its timeout", "[script]") {
  for (const auto mode : {sandbox_mode::automatic, sandbox_mode::never}) {
    fixture f(mode, [](script_executor_options& o) { o.cpu_margin = std::chrono::seconds(0); });
    test::memory_result_writer out;
    const auto outcome = f.run("python", "while True: pass\n", out, std::chrono::seconds(1));
    CHECK(outcome.state == status::failed);
    CHECK(outcome.error == "killed by signal 24 (SIGXCPU: CPU time limit reached)");
  }
}

TEST_CASE("script executor: result.csv with quotes, line breaks, NULLs", "[script]") {
  fixture f;
  test::memory_result_writer out;
  const auto outcome = f.run("bash",
                             "printf 'name,note,n\\r\\n\"Smith, J\",\"line1\\nline2\",1\\r\\n"
                             "\"say \"\"hi\"\"\",,\\r\\n\"\", x ,3\\r\\n' > result.csv\n",
                             out);
  INFO(outcome.error);
  REQUIRE(outcome.state == status::succeeded);
  CHECK(out.columns() == std::vector<ports::result_column>{{"name", "text"}, {"note", "text"}, {"n", "int"}});
  REQUIRE(out.rows() == 3);
  CHECK(out.cell(0, 0) == "Smith, J");
  CHECK(out.cell(0, 1) == "line1\nline2");
  CHECK(out.cell(1, 0) == "say \"hi\"");
  CHECK(out.cell(1, 1) == std::nullopt);
  CHECK(out.cell(1, 2) == std::nullopt);
  CHECK(out.cell(2, 0) == "");
  CHECK(out.cell(2, 1) == " x ");
}

TEST_CASE("script executor: a ragged or non-UTF-8 result.csv fails the job", "[script]") {
  fixture f;
  test::memory_result_writer out;
  auto outcome = f.run("bash", "printf 'a,b\\n1,2\\n3\\n' > result.csv\n", out);
  CHECK(outcome.state == status::failed);
  CHECK(outcome.error == "result.csv: record 3 has 1 fields, the header has 2");

  test::memory_result_writer out2;
  outcome = f.run("bash", "printf 'a\\n\\xff\\xfe\\n' > result.csv\n", out2);
  CHECK(outcome.state == status::failed);
  CHECK(outcome.error == "result.csv: record 2, field 1 is not valid UTF-8");

  test::memory_result_writer out3;
  outcome = f.run("bash", "ln -s /etc/passwd result.csv\n", out3);
  CHECK(outcome.state == status::failed);
  CHECK(outcome.error == "result.csv is a symbolic link");
}

TEST_CASE("script executor: result limits truncate the table", "[script]") {
  fixture f;
  test::memory_result_writer out(ports::result_limits{.max_rows = 10});
  const auto outcome = f.run("bash", "{ echo n; seq 1 100000; } > result.csv\n", out);
  REQUIRE(outcome.state == status::succeeded);
  CHECK(out.full());
  CHECK(out.rows() == 10);
}

TEST_CASE("csv reader: any split of the input gives the same rows", "[csv]") {
  const std::string text = "h1,h2\r\n\"a,\"\"b\"\"\",\r\n\"multi\nline\",\"\"\nlast,row";
  for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{7}, text.size()}) {
    csv_reader reader;
    for (std::size_t i = 0; i < text.size(); i += step) REQUIRE(reader.feed(std::string_view(text).substr(i, step)));
    REQUIRE(reader.finish());
    REQUIRE(reader.header() == std::vector<std::string>{"h1", "h2"});
    const auto& b = reader.batch();
    REQUIRE(b.rows() == 3);
    CHECK(b.cells[0] == "a,\"b\"");
    CHECK(b.cells[1] == std::nullopt);
    CHECK(b.cells[2] == "multi\nline");
    CHECK(b.cells[3] == "");
    CHECK(b.cells[4] == "last");
    CHECK(b.cells[5] == "row");
  }
}

TEST_CASE("csv reader: malformed input is an error", "[csv]") {
  for (const auto* bad : {"a,b\nx\"y,1\n", "a\n\"x\"y\n", "a,b\n\"open,1\n"}) {
    csv_reader reader;
    auto ok = reader.feed(bad);
    if (ok) ok = reader.finish();
    CHECK_FALSE(ok);
  }
  csv_reader wide(csv_limits{.max_columns = 3});
  CHECK_FALSE(wide.feed("a,b,c,d\n"));
  csv_reader longf(csv_limits{.max_field_bytes = 1000});
  CHECK_FALSE(longf.feed("a\n\"" + std::string(200000, 'x')));
  csv_reader empty;
  CHECK(empty.finish());
  CHECK_FALSE(empty.header());
}

TEST_CASE("script executor: into the file result store, committed by the caller", "[script]") {
  fixture f;
  auto store = results_adapter::file_result_store::open_dir(f.tmp.path() / "results");
  REQUIRE(store);
  auto writer = (*store)->create(k_job_id, ports::result_limits{});
  REQUIRE(writer);
  ports::job_spec spec;
  spec.job_id = k_job_id;
  spec.kind = "script";
  spec.language = "python";
  spec.source =
      "print('made 3 rows')\n"
      "open('result.csv', 'w').write('k,v\\r\\n1,\"a,b\"\\r\\n2,\\r\\n3,\"\"\\r\\n')\n";
  ports::cancel_signal cancel;
  const auto outcome = f.executor->run(spec, **writer, {}, cancel);
  INFO(outcome.error);
  REQUIRE(outcome.state == status::succeeded);
  REQUIRE((*writer)->commit());
  auto reader = (*store)->open(k_job_id);
  REQUIRE(reader);
  CHECK((*reader)->info().columns == std::vector<ports::result_column>{{"k", "int"}, {"v", "text"}});
  const auto rows = (*reader)->rows(0, 10);
  REQUIRE(rows);
  CHECK(nlohmann::json(*rows).dump() == R"([[1,"a,b"],[2,null],[3,""]])");
  const auto log = (*reader)->log(1000);
  REQUIRE(log);
  CHECK(*log == "made 3 rows\n");
}
