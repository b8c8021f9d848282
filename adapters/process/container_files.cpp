#include "adapters/process/container_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace atrium::process_adapter {

namespace {

using nlohmann::json;

std::string errno_text(int err) { return std::strerror(err); }

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Field accessors that check types and ranges instead of throwing.
template <class T>
bool get_uint(const json& j, const char* key, T& out, bool required = true) {
  const auto it = j.find(key);
  if (it == j.end()) return !required;
  if (!it->is_number_unsigned()) return false;
  const auto v = it->get<std::uint64_t>();
  if (v > std::numeric_limits<T>::max()) return false;
  out = static_cast<T>(v);
  return true;
}

bool get_int(const json& j, const char* key, std::int64_t& out, bool required = true) {
  const auto it = j.find(key);
  if (it == j.end()) return !required;
  if (!it->is_number_integer()) return false;
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    return false;
  out = it->get<std::int64_t>();
  return true;
}

bool get_string(const json& j, const char* key, std::string& out, bool required = true) {
  const auto it = j.find(key);
  if (it == j.end()) return !required;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

}  // namespace

std::string encode(const runtime_record& r) {
  json limits = json::object();
  if (r.memory_bytes) limits["memory_bytes"] = *r.memory_bytes;
  if (r.cpus) limits["cpus"] = *r.cpus;
  if (r.pids) limits["pids"] = *r.pids;
  const json j = {{"runtime_id", r.runtime_id},
                  {"container_id", r.container_id},
                  {"instance", r.instance},
                  {"spec_version", r.spec_version},
                  {"name", r.name},
                  {"command", r.command},
                  {"env", r.env},
                  {"ports", r.ports},
                  {"limits", limits},
                  {"cgroups", r.cgroups},
                  {"log", {{"max_bytes", r.log.max_bytes}, {"files", r.log.files}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

result<runtime_record> decode_runtime(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(errc::invalid_argument, "runtime.json: not a JSON object");
  runtime_record r;
  const auto bad = [](const char* what) { return fail(errc::invalid_argument, std::string("runtime.json: ") + what); };
  if (!get_string(j, "runtime_id", r.runtime_id) || !get_string(j, "container_id", r.container_id) ||
      !get_string(j, "instance", r.instance) || !get_uint(j, "spec_version", r.spec_version) ||
      !get_string(j, "name", r.name, false))
    return bad("a missing or malformed id field");
  const auto command = j.find("command");
  if (command == j.end() || !command->is_array() || command->empty()) return bad("command must be a non-empty array");
  for (const auto& arg : *command) {
    if (!arg.is_string()) return bad("command must hold strings");
    r.command.push_back(arg.get<std::string>());
  }
  if (const auto env = j.find("env"); env != j.end()) {
    if (!env->is_object()) return bad("env must be an object");
    for (const auto& [k, v] : env->items()) {
      if (!v.is_string()) return bad("env values must be strings");
      r.env[k] = v.get<std::string>();
    }
  }
  if (const auto ports = j.find("ports"); ports != j.end()) {
    if (!ports->is_array()) return bad("ports must be an array");
    for (const auto& p : *ports) {
      if (!p.is_number_unsigned() || p.get<std::uint64_t>() < 1 || p.get<std::uint64_t>() > 65535)
        return bad("ports must be 1-65535");
      r.ports.push_back(static_cast<int>(p.get<std::uint64_t>()));
    }
  }
  if (const auto limits = j.find("limits"); limits != j.end()) {
    if (!limits->is_object()) return bad("limits must be an object");
    std::uint64_t mem = 0;
    std::uint32_t pids = 0;
    if (limits->contains("memory_bytes")) {
      if (!get_uint(*limits, "memory_bytes", mem)) return bad("limits.memory_bytes");
      r.memory_bytes = mem;
    }
    if (limits->contains("pids")) {
      if (!get_uint(*limits, "pids", pids)) return bad("limits.pids");
      r.pids = pids;
    }
    if (const auto cpus = limits->find("cpus"); cpus != limits->end()) {
      if (!cpus->is_number() || !std::isfinite(cpus->get<double>()) || cpus->get<double>() <= 0)
        return bad("limits.cpus");
      r.cpus = cpus->get<double>();
    }
  }
  if (const auto cg = j.find("cgroups"); cg != j.end()) {
    if (!cg->is_boolean()) return bad("cgroups must be a boolean");
    r.cgroups = cg->get<bool>();
  }
  if (const auto log = j.find("log"); log != j.end()) {
    if (!log->is_object() || !get_uint(*log, "max_bytes", r.log.max_bytes, false) ||
        !get_uint(*log, "files", r.log.files, false) || r.log.files > 100)
      return bad("log settings");
  }
  r.log.max_bytes = std::max<std::uint64_t>(r.log.max_bytes, 4096);
  return r;
}

std::string encode(const state_record& s) {
  json j = {{"runtime_id", s.runtime_id},      {"start", s.start}, {"status", s.running ? "running" : "exited"},
            {"shim_pid", s.shim_pid},          {"pid", s.pid},     {"pid_start", s.pid_start},
            {"started_at_ms", s.started_at_ms}};
  if (!s.running) {
    if (s.exit_code) j["exit_code"] = *s.exit_code;
    j["reason"] = s.reason;
    j["finished_at_ms"] = s.finished_at_ms;
  }
  if (!s.error.empty()) j["error"] = s.error;
  if (!s.limits_by.empty()) j["limits_by"] = s.limits_by;
  if (!s.cgroups.empty()) j["cgroups"] = s.cgroups;
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

result<state_record> decode_state(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(errc::invalid_argument, "state.json: not a JSON object");
  state_record s;
  std::string status;
  if (!get_string(j, "runtime_id", s.runtime_id) || !get_uint(j, "start", s.start) ||
      !get_string(j, "status", status) || !get_int(j, "shim_pid", s.shim_pid) || !get_int(j, "pid", s.pid) ||
      !get_uint(j, "pid_start", s.pid_start) || !get_int(j, "started_at_ms", s.started_at_ms) ||
      !get_int(j, "finished_at_ms", s.finished_at_ms, false) || !get_string(j, "reason", s.reason, false) ||
      !get_string(j, "error", s.error, false) || !get_string(j, "limits_by", s.limits_by, false))
    return fail(errc::invalid_argument, "state.json: a missing or malformed field");
  if (status != "running" && status != "exited") return fail(errc::invalid_argument, "state.json: unknown status");
  s.running = status == "running";
  if (s.pid < 0 || s.shim_pid < 0 || (s.running && s.pid <= 1))
    return fail(errc::invalid_argument, "state.json: pid out of range");
  if (const auto cg = j.find("cgroups"); cg != j.end()) {
    if (!cg->is_array() || cg->size() > 8) return fail(errc::invalid_argument, "state.json: cgroups");
    for (const auto& d : *cg) {
      if (!d.is_string()) return fail(errc::invalid_argument, "state.json: cgroups");
      s.cgroups.push_back(d.get<std::string>());
    }
  }
  if (const auto code = j.find("exit_code"); code != j.end()) {
    std::int64_t c = 0;
    if (!get_int(j, "exit_code", c) || c < 0 || c > 255) return fail(errc::invalid_argument, "state.json: exit_code");
    s.exit_code = static_cast<int>(c);
  }
  return s;
}

result<std::string> read_file(const std::filesystem::path& path, std::size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return fail(errc::not_found, path.string() + ": no such file");
    return fail(errc::internal, path.string() + ": " + errno_text(err));
  }
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return fail(errc::internal, path.string() + ": " + errno_text(err));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > limit) {
      ::close(fd);
      return fail(errc::invalid_argument, path.string() + ": larger than " + std::to_string(limit) + " bytes");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  auto tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(errc::internal, tmp.string() + ": " + errno_text(errno));
  const bool ok = write_all(fd, content) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    ::unlink(tmp.c_str());
    return fail(errc::internal, path.string() + ": " + errno_text(e));
  }
  return {};
}

std::optional<std::uint64_t> process_start_ticks(std::int64_t pid) {
  if (pid <= 0) return std::nullopt;
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!text) return std::nullopt;
  // "pid (comm) S ppid …": comm may hold spaces and parentheses, so parse after the last ')'.
  const auto close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
  std::string_view rest(*text);
  rest.remove_prefix(close + 2);
  // Fields from 3 (state) on; start time is field 22.
  int field = 3;
  std::size_t pos = 0;
  while (field < 22) {
    if (field == 3 && (rest.empty() || rest[0] == 'Z' || rest[0] == 'X')) return std::nullopt;
    pos = rest.find(' ', pos);
    if (pos == std::string_view::npos) return std::nullopt;
    ++pos;
    ++field;
  }
  std::uint64_t ticks = 0;
  bool any = false;
  for (; pos < rest.size() && rest[pos] >= '0' && rest[pos] <= '9'; ++pos) {
    ticks = ticks * 10 + static_cast<std::uint64_t>(rest[pos] - '0');
    any = true;
  }
  if (!any) return std::nullopt;
  return ticks;
}

bool process_alive(std::int64_t pid, std::uint64_t start_ticks) {
  const auto now = process_start_ticks(pid);
  return now && *now == start_ticks;
}

std::vector<std::string> container_environment(const runtime_record& r, const std::filesystem::path& dir) {
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", dir.string()}, {"LANG", "C.UTF-8"}};
  for (const auto& [k, v] : r.env) env[k] = v;
  std::string ports;
  for (const int p : r.ports) {
    env["PORT_" + std::to_string(p)] = std::to_string(p);
    ports += (ports.empty() ? "" : ",") + std::to_string(p);
  }
  env["PORTS"] = ports;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) {
    // A name with '=' or NUL cannot be passed; the API refuses those, this is a backstop.
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos)
      continue;
    out.push_back(k + "=" + v);
  }
  return out;
}

std::optional<std::string> resolve_program(const std::string& program, const std::vector<std::string>& env) {
  if (program.empty() || program.find('\0') != std::string::npos) return std::nullopt;
  const auto executable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) return executable(program) ? std::optional(program) : std::nullopt;
  std::string path = "/usr/bin:/bin";
  for (const auto& e : env)
    if (e.starts_with("PATH=")) path = e.substr(5);
  std::size_t begin = 0;
  while (begin <= path.size()) {
    auto end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    const std::string d = end == begin ? "." : path.substr(begin, end - begin);
    const std::string candidate = d + "/" + program;
    if (executable(candidate)) return candidate;
    begin = end + 1;
  }
  return std::nullopt;
}

void line_splitter::feed(std::string_view bytes, const std::function<void(std::string_view)>& emit) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const auto take = nl == std::string_view::npos ? bytes.size() : nl;
    const auto room = max_log_line - buffer_.size();
    if (take > room) {
      // The line would pass the cap: emit a full piece and go on with the rest.
      buffer_.append(bytes.substr(0, room));
      emit(buffer_);
      buffer_.clear();
      bytes.remove_prefix(room);
      continue;
    }
    buffer_.append(bytes.substr(0, take));
    if (nl == std::string_view::npos) return;
    emit(buffer_);
    buffer_.clear();
    bytes.remove_prefix(nl + 1);
  }
}

void line_splitter::flush(const std::function<void(std::string_view)>& emit) {
  if (buffer_.empty()) return;
  emit(buffer_);
  buffer_.clear();
}

log_writer::log_writer(std::filesystem::path dir, log_settings settings, int fd, std::uint64_t size)
    : dir_(std::move(dir)), settings_(settings), fd_(fd), size_(size) {}

log_writer::log_writer(log_writer&& other) noexcept
    : dir_(std::move(other.dir_)), settings_(other.settings_), fd_(other.fd_), size_(other.size_) {
  other.fd_ = -1;
}

log_writer::~log_writer() {
  if (fd_ >= 0) ::close(fd_);
}

result<log_writer> log_writer::open(const std::filesystem::path& dir, log_settings settings) {
  settings.max_bytes = std::max<std::uint64_t>(settings.max_bytes, 4096);
  const auto path = dir / "log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return fail(errc::internal, path.string() + ": " + errno_text(errno));
  struct stat st {};
  ::fstat(fd, &st);
  return log_writer(dir, settings, fd, static_cast<std::uint64_t>(st.st_size));
}

void log_writer::rotate() {
  if (settings_.files == 0) {
    if (::ftruncate(fd_, 0) == 0) size_ = 0;
    return;
  }
  const auto name = [&](unsigned i) { return (dir_ / ("log." + std::to_string(i))).string(); };
  ::unlink(name(settings_.files).c_str());
  for (unsigned i = settings_.files; i > 1; --i) ::rename(name(i - 1).c_str(), name(i).c_str());
  ::rename((dir_ / "log").c_str(), name(1).c_str());
  const int fd = ::open((dir_ / "log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;  // keep writing to the old descriptor (now log.1) rather than lose output
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
}

void log_writer::write_line(std::string_view line) {
  if (fd_ < 0) return;
  const std::uint64_t n = line.size() + 1;
  if (size_ > 0 && size_ + n > settings_.max_bytes) rotate();
  std::string out;
  out.reserve(line.size() + 1);
  out.append(line);
  out.push_back('\n');
  if (write_all(fd_, out)) size_ += n;
}

std::vector<std::filesystem::path> log_files_oldest_first(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (unsigned i = 100; i >= 1; --i) {
    const auto p = dir / ("log." + std::to_string(i));
    if (std::filesystem::exists(p, ec)) out.push_back(p);
  }
  if (std::filesystem::exists(dir / "log", ec)) out.push_back(dir / "log");
  return out;
}

namespace {

// The last `count` lines of the first `size` bytes of `path`, newest first, read
// backwards in 64 KiB blocks. A line longer than max_log_line is cut to its last part.
void tail_file(const std::filesystem::path& path, std::uint64_t size, std::size_t count,
               std::vector<std::string>& newest_first) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {};
  ::fstat(fd, &st);
  std::uint64_t end = std::min<std::uint64_t>(size, static_cast<std::uint64_t>(st.st_size));
  std::string carry;  // the (partial) line at the start of the previous block, reversed order not needed
  bool first = true;  // the bytes after the last newline of the file belong to no complete line
  std::vector<char> block(64 * 1024);
  while (end > 0 && newest_first.size() < count) {
    const std::uint64_t begin = end > block.size() ? end - block.size() : 0;
    const auto len = static_cast<std::size_t>(end - begin);
    std::size_t got = 0;
    while (got < len) {
      const ssize_t n = ::pread(fd, block.data() + got, len - got, static_cast<off_t>(begin + got));
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got < len) break;
    std::string_view chunk(block.data(), len);
    // Walk newlines from the end of the chunk.
    std::size_t stop = chunk.size();
    for (;;) {
      const auto nl = stop == 0 ? std::string_view::npos : chunk.rfind('\n', stop - 1);
      if (nl == std::string_view::npos) {
        std::string piece(chunk.substr(0, stop));
        carry = piece + carry;
        if (carry.size() > max_log_line) carry.erase(0, carry.size() - max_log_line);
        break;
      }
      std::string line = std::string(chunk.substr(nl + 1, stop - nl - 1)) + carry;
      carry.clear();
      if (first) {
        // Text after the file's last newline is an unfinished line: the writer writes whole
        // lines, so this is only a line being written right now; skip it.
        first = false;
      } else {
        if (line.size() > max_log_line) line.erase(0, line.size() - max_log_line);
        newest_first.push_back(std::move(line));
        if (newest_first.size() >= count) break;
      }
      stop = nl;
    }
    end = begin;
  }
  if (end == 0 && newest_first.size() < count && !first) newest_first.push_back(carry);
  ::close(fd);
}

}  // namespace

std::vector<std::string> tail_log(const std::filesystem::path& dir, std::size_t count, std::uint64_t newest_size) {
  std::vector<std::string> newest_first;
  if (count == 0) return newest_first;
  auto files = log_files_oldest_first(dir);
  bool newest = true;
  for (auto it = files.rbegin(); it != files.rend() && newest_first.size() < count; ++it) {
    tail_file(*it, newest ? newest_size : std::numeric_limits<std::uint64_t>::max(), count, newest_first);
    newest = false;
  }
  return {newest_first.rbegin(), newest_first.rend()};
}

bool valid_container_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::optional<std::pair<std::string, std::uint64_t>> parse_runtime_id(std::string_view id) {
  if (!id.starts_with("proc-")) return std::nullopt;
  id.remove_prefix(5);
  const auto dash = id.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 >= id.size() || id.size() - dash - 1 > 18)
    return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : id.substr(dash + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  std::string cid(id.substr(0, dash));
  if (!valid_container_id(cid)) return std::nullopt;
  return std::pair{std::move(cid), n};
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace atrium::process_adapter
