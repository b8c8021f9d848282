#include "tests/bench/bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <iostream>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

namespace atrium::bench {
namespace {

double round_to(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

/// Nearest-rank percentile of sorted samples, in microseconds.
double percentile_us(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return round_to(static_cast<double>(sorted[rank - 1]) / 1000.0, 1);
}

std::string fixed_digits(std::uint64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(v));
  return buf;
}

const std::string& bench_actor() {
  static const std::string actor = "user-" + new_uuid_v7();
  return actor;
}

}  // namespace

std::vector<std::size_t> baseline_writers(const options& o) {
  std::set<std::size_t> all;
  for (const auto& p : o.paths) {
    if (p == "http") all.insert(o.connections.begin(), o.connections.end());
    if (p == "store" || p == "actors") all.insert(o.writers.begin(), o.writers.end());
  }
  if (all.empty()) all.insert(o.writers.begin(), o.writers.end());
  return {all.begin(), all.end()};
}

run_control::run_control(double seconds, std::uint64_t max_ops) : start_(steady::now()), max_ops_(max_ops) {
  if (seconds > 0) {
    deadline_ = start_ + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
  }
}

bool run_control::next() {
  if (stopped_.load(std::memory_order_relaxed)) return false;
  if (deadline_ && steady::now() >= *deadline_) {
    stopped_.store(true, std::memory_order_relaxed);
    return false;
  }
  if (max_ops_ > 0 && started_.fetch_add(1, std::memory_order_relaxed) >= max_ops_) {
    stopped_.store(true, std::memory_order_relaxed);
    return false;
  }
  return true;
}

std::optional<double> raw_at(const figures& raw, std::size_t writers) {
  auto it = raw.find(writers);
  if (it == raw.end()) return std::nullopt;
  return it->second.events_per_s;
}

summary print_measurement(measurement& r, std::optional<double> raw_events_per_s) {
  std::sort(r.latencies_ns.begin(), r.latencies_ns.end());
  const double eps = r.seconds > 0 ? static_cast<double>(r.events) / r.seconds : 0;
  nlohmann::ordered_json j;
  j["scenario"] = r.scenario;
  j["path"] = r.path;
  j["writers"] = r.writers;
  j["events"] = r.events;
  j["seconds"] = round_to(r.seconds, 3);
  j["events_per_s"] = round_to(eps, 1);
  j["p50_us"] = percentile_us(r.latencies_ns, 0.50);
  j["p99_us"] = percentile_us(r.latencies_ns, 0.99);
  j["p999_us"] = percentile_us(r.latencies_ns, 0.999);
  if (raw_events_per_s && *raw_events_per_s > 0) {
    j["ratio_to_raw"] = round_to(eps / *raw_events_per_s, 4);
  } else {
    j["ratio_to_raw"] = nullptr;
  }
  const double cps = r.seconds > 0 ? static_cast<double>(r.commands) / r.seconds : 0;
  if (r.path == "http") j["commands_per_s"] = round_to(cps, 1);
  for (const auto& [k, v] : r.extra) {
    if (v == std::floor(v)) {
      j[k] = static_cast<std::int64_t>(v);
    } else {
      j[k] = round_to(v, 3);
    }
  }
  j["errors"] = r.errors;
  std::cout << j.dump() << std::endl;
  return {eps, cps, percentile_us(r.latencies_ns, 0.99)};
}

void print_skipped(const std::string& scenario, const std::string& path, const std::string& reason) {
  nlohmann::ordered_json j;
  j["scenario"] = scenario;
  j["path"] = path;
  j["skipped"] = reason;
  std::cout << j.dump() << std::endl;
}

void print_failed(const std::string& scenario, const std::string& path, const std::string& reason) {
  nlohmann::ordered_json j;
  j["scenario"] = scenario;
  j["path"] = path;
  j["failed"] = reason;
  std::cout << j.dump() << std::endl;
}

void progress(const std::string& line) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::cerr << "atrium-bench: " << line << std::endl;
}

std::optional<std::uint64_t> parse_etag(std::string_view v) {
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty()) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

std::string renamed_name(std::uint64_t seq) { return "bench rename " + fixed_digits(seq, 20); }

std::string writer_stream(std::size_t w) { return "project-00000000-0000-7000-8000-" + fixed_digits(w, 12); }

proposed_event make_renamed(std::uint64_t seq) {
  proposed_event e;
  e.type = "project.renamed";
  e.schema = 1;
  e.data = nlohmann::json{{"name", renamed_name(seq)}};
  e.actor = bench_actor();
  e.correlation_id = new_uuid_v7();
  e.causation_id = new_uuid_v7();
  return e;
}

std::size_t write_set::bytes() const {
  std::size_t n = 0;
  for (const auto& e : entries) n += e.key.size() + e.value.size();
  return n;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

std::uint64_t proc_status_kib(int pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with(field + ":")) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

double proc_cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(all.substr(close + 2));
  std::string field;
  std::uint64_t ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i >= 14) ticks += std::stoull(field);
  }
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace atrium::bench
