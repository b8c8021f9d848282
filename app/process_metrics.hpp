#pragma once
/// The process' own metrics under the standard names of Prometheus' client libraries
/// (https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics), read
/// from Linux's /proc (proc(5)) at each scrape, plus atriumd's uptime.

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ports/metrics.hpp"

namespace atrium::app {

/// `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`,
/// `process_start_time_seconds` (Unix seconds) and `atrium_uptime_seconds`. A figure
/// that cannot be read (no /proc) is left out.
class process_metrics final : public ports::metrics_source {
 public:
  /// Starts the uptime clock now; the start time is the kernel's (/proc/self/stat field
  /// 22 after boot, /proc/stat `btime`), or now when that cannot be read.
  process_metrics() : started_(std::chrono::steady_clock::now()) {
    const auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    start_time_ = kernel_start_time().value_or(now);
  }

  void collect(std::vector<ports::metric_family>& out) const override {
    using ports::family;
    using ports::metric_type;
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    if (auto f = stat_fields(); f && numeric(*f, {11, 12, 20, 21})) {
      // Fields 14, 15 (utime, stime: clock ticks), 23 (vsize: bytes), 24 (rss: pages);
      // `f` starts at field 3 (after the command name).
      out.push_back(
          family("process_cpu_seconds_total", metric_type::counter, "Total user and system CPU time spent in seconds.")
              .add((std::stod((*f)[11]) + std::stod((*f)[12])) / ticks));
      out.push_back(family("process_virtual_memory_bytes", metric_type::gauge, "Virtual memory size in bytes.")
                        .add(std::stod((*f)[20])));
      out.push_back(family("process_resident_memory_bytes", metric_type::gauge, "Resident memory size in bytes.")
                        .add(std::stod((*f)[21]) * page));
    }
    std::error_code ec;
    std::size_t fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++fds;
    }
    if (!ec && fds > 0) {
      // The directory iterator's own descriptor is one of those listed.
      out.push_back(family("process_open_fds", metric_type::gauge, "Number of open file descriptors.")
                        .add(static_cast<double>(fds - 1)));
    }
    if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      out.push_back(family("process_max_fds", metric_type::gauge, "Maximum number of open file descriptors.")
                        .add(static_cast<double>(lim.rlim_cur)));
    }
    out.push_back(family("process_start_time_seconds", metric_type::gauge,
                         "Start time of the process since unix epoch in seconds.")
                      .add(start_time_));
    out.push_back(family("atrium_uptime_seconds", metric_type::gauge, "Seconds since atriumd started.")
                      .add(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()));
  }

 private:
  /// /proc/self/stat from field 3 on (the command name, field 2, may hold spaces and
  /// parentheses: the fields start after its last `)`); nullopt when unreadable.
  static std::optional<std::vector<std::string>> stat_fields() {
    std::ifstream in("/proc/self/stat");
    std::string text;
    if (!std::getline(in, text)) return std::nullopt;
    const auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(text.substr(close + 1));
    std::vector<std::string> f;
    for (std::string field; rest >> field;) f.push_back(field);
    if (f.size() < 22) return std::nullopt;
    return f;
  }

  /// True when the fields at `at` are numbers (std::stod will not throw).
  static bool numeric(const std::vector<std::string>& f, std::initializer_list<std::size_t> at) {
    for (auto i : at) {
      if (f[i].empty() || f[i].find_first_not_of("0123456789") != std::string::npos) return false;
    }
    return true;
  }

  /// Boot time (/proc/stat `btime`) plus the process' start (stat field 22, clock
  /// ticks after boot), in Unix seconds.
  static std::optional<double> kernel_start_time() {
    auto f = stat_fields();
    if (!f) return std::nullopt;
    std::ifstream in("/proc/stat");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("btime ", 0) == 0) {
        try {
          return std::stod(line.substr(6)) + std::stod((*f)[19]) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        } catch (const std::exception&) {
          return std::nullopt;
        }
      }
    }
    return std::nullopt;
  }

  std::chrono::steady_clock::time_point started_;
  double start_time_ = 0;
};

}  // namespace atrium::app
