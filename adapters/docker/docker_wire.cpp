// The Docker Engine API's formats (see docker_wire.hpp). Pure code: no I/O.
#include "adapters/docker/docker_wire.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "events/text.hpp"

namespace atrium::docker_adapter {

namespace {

using nlohmann::json;

bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A string member of an object, or nullopt when absent or of another type.
std::optional<std::string> string_at(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

const json* object_at(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_object()) return nullptr;
  return &*it;
}

// An integer member that fits `T`, or nullopt.
template <class T>
std::optional<T> int_at(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  if (it->is_number_unsigned()) {
    const auto v = it->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return std::nullopt;
    return static_cast<T>(v);
  }
  if (it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
        v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
      return std::nullopt;
    return static_cast<T>(v);
  }
  return std::nullopt;
}

template <class T>
std::optional<T> parse_decimal(std::string_view s) {
  T v{};
  if (s.empty() || s.size() > 20) return std::nullopt;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string exit_reason(int code) { return code > 128 ? "killed" : "exited"; }

// Depth of JSON nesting by a linear scan (strings skipped); stops early past `limit`.
std::size_t json_depth(std::string_view text, std::size_t limit) {
  std::size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

result<std::string> parse_docker_host(std::string_view host) {
  constexpr std::string_view scheme = "unix://";
  if (!host.starts_with(scheme)) {
    return fail(errc::invalid_argument,
                "--docker-host: only a local socket is supported, as unix:///path/to/docker.sock (got '" +
                    repair_utf8(host.substr(0, 200)) + "')");
  }
  const std::string_view path = host.substr(scheme.size());
  if (path.empty() || path.front() != '/') {
    return fail(errc::invalid_argument, "--docker-host: the socket path after unix:// must be absolute");
  }
  if (path.size() > 107) return fail(errc::invalid_argument, "--docker-host: the socket path is longer than 107 bytes");
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return fail(errc::invalid_argument, "--docker-host: the socket path holds a control character");
    }
  }
  return std::string(path);
}

bool valid_object_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128 || id.front() == '.' || id.front() == '-') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

result<nlohmann::json> parse_daemon_json(std::string_view text, std::string_view what) {
  if (json_depth(text, k_max_json_depth) > k_max_json_depth) {
    return fail(errc::internal, "the daemon's " + std::string(what) + " nests too deep");
  }
  auto doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail(errc::internal, "the daemon's " + std::string(what) + " is not valid JSON");
  return doc;
}

std::string daemon_message(unsigned status, std::string_view body) {
  if (json_depth(body, k_max_json_depth) <= k_max_json_depth) {
    const auto doc = json::parse(body.begin(), body.end(), nullptr, false);
    if (!doc.is_discarded()) {
      if (auto m = string_at(doc, "message"); m && !m->empty()) return truncate_utf8(repair_utf8(*m), 512);
    }
  }
  std::string_view trimmed = body;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == ' '))
    trimmed.remove_suffix(1);
  if (!trimmed.empty()) return truncate_utf8(repair_utf8(trimmed.substr(0, 1024)), 512);
  return "HTTP " + std::to_string(status);
}

std::optional<std::chrono::system_clock::time_point> parse_docker_time(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±hh:mm)
  auto digits = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > t.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return std::nullopt;
      v = v * 10 + (t[i] - '0');
    }
    return v;
  };
  if (t.size() < 20 || t.size() > 64) return std::nullopt;
  const auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
             s = digits(17, 2);
  if (!y || !mo || !d || !h || !mi || !s || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
      t[13] != ':' || t[16] != ':')
    return std::nullopt;
  if (*y <= 1) return std::nullopt;  // Go's zero time: never
  const std::chrono::year_month_day ymd{std::chrono::year(*y), std::chrono::month(static_cast<unsigned>(*mo)),
                                        std::chrono::day(static_cast<unsigned>(*d))};
  if (!ymd.ok() || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;
  std::size_t i = 19;
  std::int64_t nanos = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    std::size_t n = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (n < 9) nanos = nanos * 10 + (t[i] - '0');
      ++n;
      ++i;
    }
    if (n == 0 || n > 9) return std::nullopt;
    for (; n < 9; ++n) nanos *= 10;
  }
  std::int64_t offset_s = 0;
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    ++i;
  } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
    const auto oh = digits(i + 1, 2), om = digits(i + 4, 2);
    if (!oh || !om || i + 3 >= t.size() || t[i + 3] != ':' || *oh > 23 || *om > 59) return std::nullopt;
    offset_s = (t[i] == '+' ? 1 : -1) * (*oh * 3600 + *om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  const auto day = std::chrono::sys_days(ymd);
  const auto tp = std::chrono::time_point_cast<std::chrono::nanoseconds>(day) + std::chrono::hours(*h) +
                  std::chrono::minutes(*mi) + std::chrono::seconds(*s) - std::chrono::seconds(offset_s) +
                  std::chrono::nanoseconds(nanos);
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(tp);
}

std::string container_name(const ports::container_spec& spec) {
  std::string short_id;
  for (char c : spec.container_id) {
    if (short_id.size() == 8) break;
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (is_alnum_lower(lower)) short_id += lower;
  }
  return "atrium-" + spec.name + "-" + short_id;
}

result<nlohmann::json> create_body(const ports::container_spec& spec, std::string_view instance) {
  if (spec.image.empty() || spec.image.size() > 512 || has_nul(spec.image)) {
    return fail(errc::invalid_argument, "the docker runtime needs an image", {{"field", "image"}});
  }
  if (spec.name.empty() || spec.name.size() > 63 || !is_alnum_lower(spec.name.front()) ||
      !std::all_of(spec.name.begin(), spec.name.end(),
                   [](char c) { return is_alnum_lower(c) || c == '_' || c == '.' || c == '-'; })) {
    return fail(errc::invalid_argument, "container name must match [a-z0-9][a-z0-9_.-]{0,62}", {{"field", "name"}});
  }
  if (spec.container_id.empty() || has_nul(spec.container_id) || !valid_utf8(spec.container_id)) {
    return fail(errc::invalid_argument, "container_id is empty or not text", {{"field", "container_id"}});
  }
  json labels = json::object();
  labels[std::string(k_label_container_id)] = spec.container_id;
  labels[std::string(k_label_instance)] = std::string(instance);
  labels[std::string(k_label_spec_version)] = std::to_string(spec.spec_version);

  json env = json::array();
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos || has_nul(k) || has_nul(v) || !valid_utf8(k) || !valid_utf8(v)) {
      return fail(errc::invalid_argument, "environment variable names must be non-empty text without '=' or NUL",
                  {{"field", "env"}});
    }
    env.push_back(k + "=" + v);
  }
  json host = {{"NetworkMode", "host"}, {"RestartPolicy", {{"Name", "no"}}}};
  const auto& lim = spec.limits;
  if (lim.memory_bytes) {
    if (*lim.memory_bytes < 4ull * 1024 * 1024 || *lim.memory_bytes > static_cast<std::uint64_t>(INT64_MAX)) {
      return fail(errc::invalid_argument, "limits.memory_bytes must be at least 4 MiB",
                  {{"field", "limits.memory_bytes"}});
    }
    host["Memory"] = static_cast<std::int64_t>(*lim.memory_bytes);
  }
  if (lim.cpus) {
    if (!std::isfinite(*lim.cpus) || *lim.cpus < 0.01 || *lim.cpus > 1024) {
      return fail(errc::invalid_argument, "limits.cpus must be within 0.01–1024", {{"field", "limits.cpus"}});
    }
    host["NanoCpus"] = static_cast<std::int64_t>(std::llround(*lim.cpus * 1e9));
  }
  if (lim.pids) {
    if (*lim.pids < 1 || *lim.pids > 1048576) {
      return fail(errc::invalid_argument, "limits.pids must be within 1–1048576", {{"field", "limits.pids"}});
    }
    host["PidsLimit"] = static_cast<std::int64_t>(*lim.pids);
  }
  json body = {{"Image", spec.image},   {"Env", std::move(env)}, {"Labels", std::move(labels)},
               {"Tty", false},          {"OpenStdin", false},    {"AttachStdin", false},
               {"AttachStdout", false}, {"AttachStderr", false}, {"HostConfig", std::move(host)}};
  if (!spec.command.empty()) {
    for (const auto& a : spec.command) {
      if (has_nul(a) || !valid_utf8(a)) {
        return fail(errc::invalid_argument, "command arguments must be text without NUL", {{"field", "command"}});
      }
    }
    body["Cmd"] = spec.command;
  }
  return body;
}

result<std::string> pull_query(std::string_view image) {
  if (image.empty() || image.size() > 512 || image.front() == '-' || image.front() == '.' || image.front() == '/' ||
      image.front() == ':' || image.front() == '@') {
    return fail(errc::invalid_argument, "invalid image reference", {{"field", "image"}});
  }
  for (char c : image) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == '/' || c == ':' || c == '@';
    if (!ok) return fail(errc::invalid_argument, "invalid image reference", {{"field", "image"}});
  }
  if (image.find('@') != std::string_view::npos) return "fromImage=" + url_encode(image);
  const auto slash = image.rfind('/');
  const auto colon = image.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    if (colon + 1 == image.size()) return fail(errc::invalid_argument, "invalid image reference", {{"field", "image"}});
    return "fromImage=" + url_encode(image.substr(0, colon)) + "&tag=" + url_encode(image.substr(colon + 1));
  }
  return "fromImage=" + url_encode(image) + "&tag=latest";
}

std::string instance_filter(std::string_view instance, bool events) {
  json f = {{"label", json::array({std::string(k_label_instance) + "=" + std::string(instance)})}};
  if (events) f["type"] = json::array({"container"});
  return f.dump(-1, ' ', false, json::error_handler_t::replace);
}

result<inspected> container_from_inspect(const nlohmann::json& doc) {
  const auto id = string_at(doc, "Id");
  const json* state = object_at(doc, "State");
  if (!id || !valid_object_id(*id)) return fail(errc::internal, "the daemon's container has no valid Id");
  if (!state) return fail(errc::internal, "the daemon's container has no State");
  const auto status = string_at(*state, "Status");
  if (!status) return fail(errc::internal, "the daemon's container has no State.Status");
  inspected out;
  auto& c = out.container;
  c.runtime_id = *id;
  using st = ports::runtime_container::state;
  const auto code = int_at<int>(*state, "ExitCode");
  const bool oom =
      state->contains("OOMKilled") && (*state)["OOMKilled"].is_boolean() && (*state)["OOMKilled"].get<bool>();
  if (*status == "created") {
    c.status = st::created;
  } else if (*status == "running" || *status == "paused" || *status == "restarting") {
    c.status = st::running;
    if (auto pid = int_at<std::int64_t>(*state, "Pid"); pid && *pid > 0) c.pid = *pid;
  } else if (*status == "exited" || *status == "dead" || *status == "removing") {
    c.status = st::exited;
    c.exit_code = code;
    c.reason = oom ? "oom" : *status == "dead" ? "lost" : code ? exit_reason(*code) : "exited";
  } else {
    return fail(errc::internal, "the daemon's container has an unknown State.Status");
  }
  if (auto started = string_at(*state, "StartedAt")) c.started_at = parse_docker_time(*started);
  if (const json* config = object_at(doc, "Config")) {
    if (config->contains("Tty") && (*config)["Tty"].is_boolean()) out.tty = (*config)["Tty"].get<bool>();
    if (const json* labels = object_at(*config, "Labels")) {
      c.container_id = string_at(*labels, k_label_container_id.data()).value_or("");
      out.instance = string_at(*labels, k_label_instance.data()).value_or("");
      if (auto v = string_at(*labels, k_label_spec_version.data())) {
        c.spec_version = parse_decimal<std::uint64_t>(*v).value_or(0);
      }
    }
  }
  return out;
}

result<inspected> container_from_inspect_text(std::string_view body) {
  auto doc = parse_daemon_json(body, "container inspection");
  if (!doc) return std::unexpected(doc.error());
  return container_from_inspect(*doc);
}

result<std::optional<ports::runtime_event>> event_from_line(std::string_view line, std::string_view instance) {
  if (line.size() > k_max_event_line) return fail(errc::internal, "an event line is too long");
  auto doc = parse_daemon_json(line, "event");
  if (!doc) return std::unexpected(doc.error());
  if (!doc->is_object()) return fail(errc::internal, "the daemon's event is not an object");
  const json* actor = object_at(*doc, "Actor");
  const auto id = actor ? string_at(*actor, "ID") : std::nullopt;
  if (!id || !valid_object_id(*id)) return fail(errc::internal, "the daemon's event has no valid Actor.ID");
  const auto type = string_at(*doc, "Type");
  const auto action = string_at(*doc, "Action");
  if (type != "container" || !action) return std::optional<ports::runtime_event>{};
  const json* attrs = object_at(*actor, "Attributes");
  const json empty = json::object();
  if (!attrs) attrs = &empty;
  if (string_at(*attrs, k_label_instance.data()) != std::string(instance)) {
    return std::optional<ports::runtime_event>{};
  }
  ports::runtime_event ev;
  ev.runtime_id = *id;
  ev.container_id = string_at(*attrs, k_label_container_id.data()).value_or("");
  if (*action == "die") {
    ev.type = ports::runtime_event::kind::exited;
    if (auto code_text = string_at(*attrs, "exitCode")) ev.exit_code = parse_decimal<int>(*code_text);
    ev.reason = ev.exit_code ? exit_reason(*ev.exit_code) : "exited";
  } else if (*action == "oom") {
    ev.type = ports::runtime_event::kind::exited;
    ev.reason = "oom";
  } else if (*action == "destroy") {
    ev.type = ports::runtime_event::kind::removed;
  } else {
    return std::optional<ports::runtime_event>{};
  }
  return std::optional<ports::runtime_event>{std::move(ev)};
}

std::optional<std::int64_t> event_time_nano(std::string_view line) {
  auto doc = parse_daemon_json(line, "event");
  if (!doc) return std::nullopt;
  return int_at<std::int64_t>(*doc, "timeNano");
}

// ---- log stream ---------------------------------------------------------------------

bool log_demuxer::emit(std::string_view piece, const ports::log_sink& sink) {
  std::string text = repair_utf8(piece);
  std::string_view rest = text;
  do {
    std::size_t n = rest.size();
    if (n > k_max_log_line) {
      n = k_max_log_line;
      // valid UTF-8 here: back up over at most 3 continuation bytes
      while (n > 0 && (static_cast<unsigned char>(rest[n]) & 0xC0) == 0x80) --n;
    }
    if (!sink(rest.substr(0, n))) {
      stopped_ = true;
      return false;
    }
    rest.remove_prefix(n);
  } while (!rest.empty());
  return true;
}

bool log_demuxer::drain(std::string& buf, bool at_end, const ports::log_sink& sink) {
  std::size_t start = 0;
  while (!stopped_) {
    const std::string_view rest = std::string_view(buf).substr(start);
    const auto nl = rest.find('\n');
    if (nl != std::string_view::npos && nl <= k_max_log_line) {
      std::string_view line = rest.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      start += nl + 1;
      if (!emit(line, sink)) break;
      continue;
    }
    if (rest.size() > k_max_log_line) {
      // No newline within the cap: cut, not splitting a UTF-8 sequence where the bytes
      // before the cut look like one (at most 3 continuation bytes back).
      std::size_t n = k_max_log_line;
      std::size_t back = 0;
      while (back < 3 && n - back > 0 && (static_cast<unsigned char>(rest[n - back]) & 0xC0) == 0x80) ++back;
      if (back > 0 && back < 4 && (static_cast<unsigned char>(rest[n - back]) & 0xC0) == 0xC0) n -= back;
      start += n;
      if (!emit(rest.substr(0, n), sink)) break;
      continue;
    }
    if (at_end && !rest.empty()) {
      start += rest.size();
      emit(rest, sink);
    }
    break;
  }
  buf.erase(0, start);
  return !stopped_;
}

result<bool> log_demuxer::feed(std::string_view bytes, const ports::log_sink& sink) {
  if (broken_) return fail(errc::internal, "malformed log stream");
  if (stopped_) return false;
  if (raw_) {
    out_.append(bytes);
    return drain(out_, false, sink);
  }
  while (!bytes.empty()) {
    if (frame_left_ == 0) {
      const std::size_t take = std::min<std::size_t>(8 - header_.size(), bytes.size());
      header_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (header_.size() < 8) break;
      const auto b = [&](int i) { return static_cast<unsigned char>(header_[i]); };
      if (b(0) > 2 || b(1) != 0 || b(2) != 0 || b(3) != 0) {
        broken_ = true;
        return fail(errc::internal, "malformed log stream: bad frame header");
      }
      frame_stream_ = b(0);
      frame_left_ = (std::uint64_t{b(4)} << 24) | (std::uint64_t{b(5)} << 16) | (std::uint64_t{b(6)} << 8) | b(7);
      header_.clear();
      continue;
    }
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(frame_left_, bytes.size()));
    frame_left_ -= take;
    if (frame_stream_ == 1 || frame_stream_ == 2) {
      auto& buf = frame_stream_ == 1 ? out_ : err_;
      buf.append(bytes.substr(0, take));
      if (!drain(buf, false, sink)) return false;
    }
    bytes.remove_prefix(take);
  }
  return true;
}

result<bool> log_demuxer::finish(const ports::log_sink& sink) {
  if (broken_) return fail(errc::internal, "malformed log stream");
  if (stopped_) return false;
  if (!drain(out_, true, sink)) return false;
  if (!drain(err_, true, sink)) return false;
  if (!header_.empty()) {
    broken_ = true;
    return fail(errc::internal, "malformed log stream: it ends inside a frame header");
  }
  return true;
}

}  // namespace atrium::docker_adapter
