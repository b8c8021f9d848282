// Fuzz target: what the docker runtime reads from the Docker daemon (adapters/docker/
// docker_wire.hpp), which it treats as untrusted. The first byte picks:
//   0  the multiplexed log stream (`log_demuxer`), 1  the same in raw (TTY) mode:
//      fed whole, in two pieces (split where the second byte says) and, when short, byte
//      by byte — the lines and the verdict must not depend on the split; every line is
//      valid UTF-8 of at most 16 KiB;
//   2  a container inspection (`container_from_inspect_text`): no throw; a result has a
//      valid id, a pid only when running, an exit code only when exited;
//   3  an `/events` line (`event_from_line`, instance "inst"): no throw; an event has a
//      valid runtime id, and an exit a reason;
//   4  a `--docker-host` value, an image reference and a time (one per line).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/docker/docker_wire.hpp"
#include "events/text.hpp"

namespace {

using namespace atrium::docker_adapter;

[[noreturn]] void finding(const char* what, std::string_view in) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input (%zu bytes)\n", what, in.size());
  std::abort();
}

struct outcome {
  bool ok = true;
  std::vector<std::string> lines;
  bool operator==(const outcome&) const = default;
};

outcome demux(std::string_view in, bool raw, std::size_t piece, std::size_t first) {
  log_demuxer d(raw);
  outcome out;
  auto sink = [&](std::string_view l) {
    out.lines.emplace_back(l);
    return true;
  };
  std::size_t i = 0;
  auto feed = [&](std::size_t n) {
    auto r = d.feed(in.substr(i, n), sink);
    i += n;
    if (!r) out.ok = false;
    return r.has_value();
  };
  if (first > 0 && !feed(std::min(first, in.size()))) return out;
  while (i < in.size()) {
    if (!feed(std::min(piece, in.size() - i))) return out;
  }
  if (!d.finish(sink)) out.ok = false;
  return out;
}

void fuzz_logs(std::string_view in, bool raw, std::uint8_t split) {
  const outcome whole = demux(in, raw, in.size() + 1, 0);
  const std::size_t at = in.empty() ? 0 : (split * in.size()) / 255;
  const outcome halves = demux(in, raw, in.size() + 1, at);
  if (whole.ok != halves.ok) finding("the verdict depends on the split", in);
  // Lines delivered before a malformed frame are delivered however it is split.
  if (whole.ok && whole.lines != halves.lines) finding("the lines depend on the split", in);
  if (in.size() <= 4096) {
    const outcome bytewise = demux(in, raw, 1, 0);
    if (bytewise.ok != whole.ok || (whole.ok && bytewise.lines != whole.lines)) {
      finding("byte-by-byte feeding differs", in);
    }
  }
  for (const auto& l : whole.lines) {
    if (l.size() > k_max_log_line) finding("a line over 16 KiB", in);
    if (!atrium::valid_utf8(l)) finding("a line that is not valid UTF-8", in);
  }
}

void fuzz_inspect(std::string_view in) {
  auto r = container_from_inspect_text(in);
  if (!r) return;
  const auto& c = r->container;
  using st = atrium::ports::runtime_container::state;
  if (!valid_object_id(c.runtime_id)) finding("an invalid runtime id accepted", in);
  if (c.pid && c.status != st::running) finding("a pid for a container that does not run", in);
  if (c.exit_code && c.status != st::exited) finding("an exit code for a container that has not exited", in);
  if (c.status == st::exited && c.reason.empty()) finding("an exit without a reason", in);
}

void fuzz_event(std::string_view in) {
  auto r = event_from_line(in, "inst");
  (void)event_time_nano(in);
  if (!r || !*r) return;
  const auto& e = **r;
  if (!valid_object_id(e.runtime_id)) finding("an event with an invalid runtime id", in);
  if (e.type == atrium::ports::runtime_event::kind::exited && e.reason.empty()) finding("an exit without a reason", in);
}

void fuzz_texts(std::string_view in) {
  std::vector<std::string_view> parts;
  while (parts.size() < 3) {
    const auto nl = in.find('\n');
    parts.push_back(in.substr(0, nl));
    if (nl == std::string_view::npos) break;
    in.remove_prefix(nl + 1);
  }
  parts.resize(3);
  if (auto h = parse_docker_host(parts[0]); h && (h->empty() || h->front() != '/' || h->size() > 107)) {
    finding("a socket path that is not absolute or too long", parts[0]);
  }
  if (auto q = pull_query(parts[1]); q && !q->starts_with("fromImage="))
    finding("a pull query without fromImage", parts[1]);
  (void)parse_docker_time(parts[2]);
  (void)daemon_message(500, parts[2]);
  if (!atrium::valid_utf8(daemon_message(500, parts[2]))) finding("a daemon message that is not UTF-8", parts[2]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 5) {
    case 0:
      fuzz_logs(in, false, data[1]);
      break;
    case 1:
      fuzz_logs(in, true, data[1]);
      break;
    case 2:
      fuzz_inspect(in);
      break;
    case 3:
      fuzz_event(in);
      break;
    default:
      fuzz_texts(in);
      break;
  }
  return 0;
}
