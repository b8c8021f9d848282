#include "adapters/process/container_cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "adapters/process/container_files.hpp"

namespace atrium::process_adapter {

namespace {

namespace fs = std::filesystem;
constexpr const char* k_root = "/sys/fs/cgroup";

result<void> write_text(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(errc::unavailable, path + ": " + std::strerror(errno));
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return fail(errc::unavailable, path + ": " + std::strerror(err));
  return {};
}

bool has_words(const std::string& text, std::initializer_list<const char*> words) {
  std::istringstream in(text);
  std::set<std::string> have;
  for (std::string w; in >> w;) have.insert(w);
  return std::all_of(words.begin(), words.end(), [&](const char* w) { return have.contains(w); });
}

/// The caller's cgroup path in the v1 hierarchy of `controller` (from /proc/self/cgroup).
std::optional<std::string> own_v1_path(const std::string& controller) {
  auto text = read_file("/proc/self/cgroup", 64 * 1024);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    const auto a = line.find(':');
    const auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::istringstream list(line.substr(a + 1, b - a - 1));
    for (std::string c; std::getline(list, c, ',');)
      if (c == controller) return line.substr(b + 1);
  }
  return std::nullopt;
}

std::string cpu_quota(double cpus, std::uint64_t period) {
  const auto q = static_cast<std::uint64_t>(std::llround(cpus * static_cast<double>(period)));
  return std::to_string(std::max<std::uint64_t>(q, 1000));
}

void remove_dirs(const std::vector<std::string>& dirs) {
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
}

result<cgroup_set> create_v2(const std::string& parent_name, const std::string& cid, const cgroup_limits& limits) {
  const std::string parent = std::string(k_root) + "/" + parent_name;
  const std::string dir = parent + "/" + cid;
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST)
    return fail(errc::unavailable, parent + ": " + std::strerror(errno));
  // The controllers must be on in the root's and the parent's subtree_control (the parent
  // holds no process itself, so v2's no-internal-process rule allows it).
  (void)write_text(std::string(k_root) + "/cgroup.subtree_control", "+memory +pids +cpu");
  if (auto w = write_text(parent + "/cgroup.subtree_control", "+memory +pids +cpu"); !w)
    return std::unexpected(w.error());
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return fail(errc::unavailable, dir + ": " + std::strerror(errno));
  cgroup_set set{cgroup_set::version::v2, {dir}};
  auto set_limit = [&](const char* file, const std::string& value) { return write_text(dir + "/" + file, value); };
  result<void> ok;
  if (ok && limits.memory_bytes) {
    ok = set_limit("memory.max", std::to_string(*limits.memory_bytes));
    if (ok) (void)set_limit("memory.swap.max", "0");
  }
  if (ok && limits.pids) ok = set_limit("pids.max", std::to_string(*limits.pids));
  if (ok && limits.cpus) ok = set_limit("cpu.max", cpu_quota(*limits.cpus, 100000) + " 100000");
  if (!ok) {
    ::rmdir(dir.c_str());
    return std::unexpected(ok.error());
  }
  return set;
}

result<cgroup_set> create_v1(const std::string& parent_name, const std::string& cid, const cgroup_limits& limits) {
  cgroup_set set{cgroup_set::version::v1, {}};
  std::vector<std::string> made;
  const auto undo = [&](const error& e) -> result<cgroup_set> {
    remove_dirs(made);
    return std::unexpected(e);
  };
  for (const char* controller : {"memory", "pids", "cpu"}) {
    const std::string mount = std::string(k_root) + "/" + controller;
    const auto own = own_v1_path(controller);
    if (!own || ::access((mount + "/cgroup.procs").c_str(), W_OK) != 0)
      return undo(error{errc::unavailable, std::string("no writable cgroup v1 hierarchy for ") + controller});
    std::string base = mount + (*own == "/" ? "" : *own);
    const std::string parent = base + "/" + parent_name;
    const std::string dir = parent + "/" + cid;
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST)
      return undo(error{errc::unavailable, parent + ": " + std::strerror(errno)});
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return undo(error{errc::unavailable, dir + ": " + std::strerror(errno)});
    made.push_back(dir);
    set.dirs.push_back(dir);
    result<void> ok;
    if (std::string_view(controller) == "memory" && limits.memory_bytes) {
      ok = write_text(dir + "/memory.limit_in_bytes", std::to_string(*limits.memory_bytes));
      // With swap accounting, memory+swap gets the same limit (no swapping around it).
      if (ok && ::access((dir + "/memory.memsw.limit_in_bytes").c_str(), W_OK) == 0)
        (void)write_text(dir + "/memory.memsw.limit_in_bytes", std::to_string(*limits.memory_bytes));
    } else if (std::string_view(controller) == "pids" && limits.pids) {
      ok = write_text(dir + "/pids.max", std::to_string(*limits.pids));
    } else if (std::string_view(controller) == "cpu" && limits.cpus) {
      ok = write_text(dir + "/cpu.cfs_period_us", "100000");
      if (ok) ok = write_text(dir + "/cpu.cfs_quota_us", cpu_quota(*limits.cpus, 100000));
    }
    if (!ok) return undo(ok.error());
  }
  return set;
}

}  // namespace

std::string cgroup_parent_name(const std::string& instance) {
  std::string out = "atrium.";
  for (std::size_t i = 0; i < instance.size() && i < 64; ++i) {
    const char c = instance[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    out.push_back(ok ? c : '_');
  }
  return out;
}

result<cgroup_set> create_cgroup(const std::string& instance, const std::string& container_id,
                                 const cgroup_limits& limits) {
  if (!valid_container_id(container_id)) return fail(errc::invalid_argument, "container id");
  const auto parent = cgroup_parent_name(instance);
  auto controllers = read_file(std::string(k_root) + "/cgroup.controllers", 4096);
  if (controllers && has_words(*controllers, {"memory", "pids", "cpu"})) return create_v2(parent, container_id, limits);
  return create_v1(parent, container_id, limits);
}

int join_cgroup(const std::vector<const char*>& procs_paths) noexcept {
  for (const char* p : procs_paths) {
    const int fd = ::open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    const ssize_t n = ::write(fd, "0", 1);
    const int err = errno;
    ::close(fd);
    if (n != 1) return err;
  }
  return 0;
}

std::uint64_t cgroup_oom_kills(const cgroup_set& set) {
  for (const auto& dir : set.dirs) {
    const auto file = dir + (set.kind == cgroup_set::version::v2 ? "/memory.events" : "/memory.oom_control");
    auto text = read_file(file, 64 * 1024);
    if (!text) continue;
    std::istringstream in(*text);
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value)
      if (key == "oom_kill") return value;
  }
  return 0;
}

std::vector<pid_t> cgroup_pids(const cgroup_set& set) {
  std::set<pid_t> out;
  for (const auto& dir : set.dirs) {
    auto text = read_file(dir + "/cgroup.procs", 4 << 20);
    if (!text) continue;
    std::istringstream in(*text);
    for (long pid = 0; in >> pid;)
      if (pid > 1) out.insert(static_cast<pid_t>(pid));
  }
  return {out.begin(), out.end()};
}

std::size_t signal_cgroup(const cgroup_set& set, int sig) {
  const auto pids = cgroup_pids(set);
  for (const pid_t p : pids) ::kill(p, sig);
  return pids.size();
}

void destroy_cgroup(const cgroup_set& set, int patience_ms) {
  if (set.dirs.empty()) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(patience_ms);
  while (signal_cgroup(set, SIGKILL) > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (const auto& dir : set.dirs) {
    // A just-killed process may hold the directory busy for a moment.
    for (int i = 0; i < 50 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::rmdir(fs::path(dir).parent_path().c_str());  // the per-instance parent, when empty
  }
}

bool valid_cgroup_path(const std::string& path, const std::string& container_id) {
  if (!path.starts_with(std::string(k_root) + "/") || path.find("/../") != std::string::npos ||
      path.find("/./") != std::string::npos || path.find('\0') != std::string::npos)
    return false;
  const fs::path p(path);
  return valid_container_id(container_id) && p.filename() == container_id &&
         p.parent_path().filename().string().starts_with("atrium.");
}

}  // namespace atrium::process_adapter
