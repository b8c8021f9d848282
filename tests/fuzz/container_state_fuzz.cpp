// Fuzz target: the files of the `process` container runtime
// (adapters/process/container_files.hpp) that atriumd reads back from DATA_DIR — what a
// crash, a full disk or another hand may have left there. The first byte picks:
//   0 state.json → decode_state; 1 runtime.json → decode_runtime;
//   2 a runtime id → parse_runtime_id; 3 process output → line_splitter.
// Properties: no crash or exception; a decoded record re-encodes and decodes to the same
// record; an accepted runtime id is rebuilt from its parts; every line the splitter emits
// is ≤ 16 KiB without a newline, and the lines rejoined are the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/process/container_files.hpp"

namespace {

using namespace atrium::process_adapter;

[[noreturn]] void finding(const char* what, std::string_view in) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input (%zu bytes): %.*s\n", what, in.size(),
               static_cast<int>(in.size()), in.data());
  std::abort();
}

bool same(const state_record& a, const state_record& b) {
  return a.runtime_id == b.runtime_id && a.start == b.start && a.running == b.running && a.shim_pid == b.shim_pid &&
         a.pid == b.pid && a.pid_start == b.pid_start && a.started_at_ms == b.started_at_ms &&
         (a.running || (a.exit_code == b.exit_code && a.reason == b.reason && a.finished_at_ms == b.finished_at_ms)) &&
         a.error == b.error && a.limits_by == b.limits_by && a.cgroups == b.cgroups;
}

bool same(const runtime_record& a, const runtime_record& b) {
  return a.runtime_id == b.runtime_id && a.container_id == b.container_id && a.instance == b.instance &&
         a.spec_version == b.spec_version && a.name == b.name && a.command == b.command && a.env == b.env &&
         a.ports == b.ports && a.memory_bytes == b.memory_bytes && a.cpus == b.cpus && a.pids == b.pids &&
         a.cgroups == b.cgroups && a.log.max_bytes == b.log.max_bytes && a.log.files == b.log.files;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      const auto s = decode_state(in);
      if (!s) return 0;
      const auto again = decode_state(encode(*s));
      if (!again || !same(*s, *again)) finding("state.json does not round-trip", in);
      break;
    }
    case 1: {
      const auto r = decode_runtime(in);
      if (!r) return 0;
      if (r->command.empty()) finding("runtime.json accepted without a command", in);
      const auto again = decode_runtime(encode(*r));
      if (!again) finding("runtime.json does not re-decode", in);
      if (!same(*r, *again)) finding("runtime.json does not round-trip", in);
      break;
    }
    case 2: {
      const auto id = parse_runtime_id(in);
      if (!id) return 0;
      if (!valid_container_id(id->first)) finding("a runtime id with an invalid container id", in);
      if ("proc-" + id->first + "-" + std::to_string(id->second) != in) {
        // Leading zeros in the number are the only other spelling.
        const auto dash = in.rfind('-');
        if (in.substr(0, dash) != "proc-" + id->first) finding("runtime id parts do not rebuild it", in);
      }
      break;
    }
    case 3: {
      line_splitter splitter;
      std::string joined;
      std::size_t pieces = 0;
      const auto emit = [&](std::string_view line) {
        if (line.size() > max_log_line) finding("a line over 16 KiB", in);
        if (line.find('\n') != std::string_view::npos) finding("a line with a newline", in);
        joined.append(line);
        ++pieces;
      };
      const std::size_t split = in.empty() ? 0 : static_cast<unsigned char>(in[0]) % (in.size() + 1);
      splitter.feed(in.substr(0, split), emit);
      splitter.feed(in.substr(split), emit);
      splitter.flush(emit);
      std::string without_newlines;
      for (const char c : in)
        if (c != '\n') without_newlines.push_back(c);
      if (joined != without_newlines) finding("the lines do not rejoin to the input", in);
      (void)pieces;
      break;
    }
  }
  return 0;
}
