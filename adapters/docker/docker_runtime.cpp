// The `docker` container runtime over the Docker Engine API; see docker_runtime.hpp.
// HTTP is docker_http.hpp's (the only Beast unit), formats are docker_wire.hpp's.
#include "adapters/docker/docker_runtime.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "adapters/docker/docker_http.hpp"
#include "adapters/docker/docker_wire.hpp"
#include "events/text.hpp"

namespace atrium::docker_adapter {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view k_api = "/v1.41";

std::string since_param(std::int64_t nanos) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(nanos / 1000000000),
                static_cast<long long>(nanos % 1000000000));
  return buf;
}

std::int64_t now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An error for a daemon answer that is not the expected one.
error answer_error(const http_reply& r, const std::string& what) {
  const std::string msg = what + ": " + daemon_message(r.status, r.body);
  json details = {{"status", r.status}};
  if (r.status == 404) return {errc::not_found, msg, details};
  if (r.status == 400) return {errc::invalid_argument, msg, details};
  if (r.status == 409) return {errc::already_exists, msg, details};
  if (r.status == 503) return {errc::unavailable, msg, details};
  return {errc::internal, msg, details};
}

std::string cut(std::string s, std::size_t max = 1024) { return truncate_utf8(repair_utf8(s), max); }

class docker_watch;

class docker_runtime final : public ports::container_runtime {
 public:
  docker_runtime(docker_runtime_options options, std::string socket_path)
      : options_(std::move(options)), client_(std::move(socket_path)) {}

  [[nodiscard]] std::string_view name() const noexcept override { return "docker"; }

  result<http_reply> call(std::string_view method, const std::string& path, const std::string& body = {},
                          std::optional<std::chrono::milliseconds> timeout = std::nullopt) const {
    return client_.request(method, std::string(k_api) + path, body, timeout.value_or(options_.request_timeout));
  }

  // The container `id` if it exists and is this instance's; `not_found` otherwise.
  result<inspected> owned(std::string_view id) const {
    if (!valid_object_id(id)) return fail(errc::not_found, "no such container", {{"runtime_id", "(invalid)"}});
    auto r = call("GET", "/containers/" + std::string(id) + "/json");
    if (!r) return std::unexpected(r.error());
    if (r->status == 404) return fail(errc::not_found, "no such container", {{"runtime_id", std::string(id)}});
    if (r->status != 200) return std::unexpected(answer_error(*r, "inspect " + std::string(id)));
    auto c = container_from_inspect_text(r->body);
    if (!c) return std::unexpected(c.error());
    if (c->instance != options_.instance) {
      return fail(errc::not_found, "no such container of this instance", {{"runtime_id", std::string(id)}});
    }
    return c;
  }

  result<void> ensure_image(const std::string& image) {
    auto query = pull_query(image);
    if (!query) return std::unexpected(query.error());
    auto r = call("GET", "/images/" + image + "/json");
    if (!r) return std::unexpected(r.error());
    if (r->status == 200) return {};
    if (r->status != 404) return std::unexpected(answer_error(*r, "inspect image " + image));
    spdlog::info("docker: pulling image={}", image);
    auto pulled = call("POST", "/images/create?" + *query, {}, options_.pull_timeout);
    if (!pulled) {
      if (pulled.error().message.find("in time") != std::string::npos) {
        return fail(errc::invalid_argument, "image " + image + " is not present and its pull did not finish in time",
                    {{"field", "image"}});
      }
      return std::unexpected(pulled.error());
    }
    if (pulled->status != 200) {
      return fail(
          errc::invalid_argument,
          "image " + image + " is not present and cannot be pulled: " + daemon_message(pulled->status, pulled->body),
          {{"field", "image"}});
    }
    // A 200 pull reports failures inside its progress stream: {"error": "...", ...}.
    std::string_view rest = pulled->body;
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      const auto line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      auto doc = parse_daemon_json(line, "pull progress");
      if (doc && doc->is_object() && doc->contains("error")) {
        const auto& e = (*doc)["error"];
        return fail(errc::invalid_argument,
                    "image " + image + " is not present and cannot be pulled: " +
                        cut(e.is_string() ? e.get<std::string>() : e.dump(), 512),
                    {{"field", "image"}});
      }
    }
    auto again = call("GET", "/images/" + image + "/json");
    if (!again) return std::unexpected(again.error());
    if (again->status != 200) {
      return fail(errc::invalid_argument, "image " + image + " is still missing after its pull", {{"field", "image"}});
    }
    return {};
  }

  result<std::string> create(const ports::container_spec& spec) override {
    auto body = create_body(spec, options_.instance);
    if (!body) return std::unexpected(body.error());
    if (auto img = ensure_image(spec.image); !img) return std::unexpected(img.error());
    const std::string name = container_name(spec);
    const std::string text = body->dump(-1, ' ', false, json::error_handler_t::replace);
    for (int attempt = 0;; ++attempt) {
      auto r = call("POST", "/containers/create?name=" + url_encode(name), text);
      if (!r) return std::unexpected(r.error());
      if (r->status == 201) {
        auto doc = parse_daemon_json(r->body, "create answer");
        if (!doc) return std::unexpected(doc.error());
        if (!doc->is_object() || !doc->contains("Id") || !(*doc)["Id"].is_string() ||
            !valid_object_id((*doc)["Id"].get<std::string>())) {
          return fail(errc::internal, "the daemon's create answer has no valid Id");
        }
        auto id = (*doc)["Id"].get<std::string>();
        spdlog::info("docker: created container_id={} runtime_id={} name={}", spec.container_id, id.substr(0, 12),
                     name);
        return id;
      }
      if (r->status == 404) {
        return fail(errc::invalid_argument, "image " + spec.image + ": " + daemon_message(r->status, r->body),
                    {{"field", "image"}});
      }
      if (r->status != 409 || attempt > 0) return std::unexpected(answer_error(*r, "create " + name));
      // The name is taken: ours and not running (left over from a crash) → remove it.
      auto old = owned(name);
      if (!old) return std::unexpected(answer_error(*r, "create " + name));
      if (old->container.container_id != spec.container_id ||
          old->container.status == ports::runtime_container::state::running) {
        return fail(errc::already_exists, "a container named " + name + " exists",
                    {{"runtime_id", old->container.runtime_id}});
      }
      if (auto rm = remove(old->container.runtime_id); !rm) return std::unexpected(rm.error());
    }
  }

  result<void> start(std::string_view runtime_id) override {
    auto c = owned(runtime_id);
    if (!c) return std::unexpected(c.error());
    auto r = call("POST", "/containers/" + c->container.runtime_id + "/start");
    if (!r) return std::unexpected(r.error());
    if (r->status == 204 || r->status == 304) return {};
    return std::unexpected(answer_error(*r, "start " + c->container.runtime_id.substr(0, 12)));
  }

  result<void> stop(std::string_view runtime_id, std::chrono::seconds grace) override {
    auto c = owned(runtime_id);
    if (!c) return std::unexpected(c.error());
    return stop_owned(c->container.runtime_id, grace);
  }

  result<void> stop_owned(const std::string& id, std::chrono::seconds grace) {
    const auto t = std::clamp<std::int64_t>(grace.count(), 0, 24 * 3600);
    auto r = call("POST", "/containers/" + id + "/stop?t=" + std::to_string(t), {},
                  options_.request_timeout + std::chrono::seconds(t));
    if (!r) return std::unexpected(r.error());
    if (r->status == 204 || r->status == 304) return {};
    if (r->status == 404) return fail(errc::not_found, "no such container", {{"runtime_id", id}});
    return std::unexpected(answer_error(*r, "stop " + id.substr(0, 12)));
  }

  result<void> remove(std::string_view runtime_id) override {
    auto c = owned(runtime_id);
    if (!c) return c.error().code == errc::not_found ? result<void>{} : std::unexpected(c.error());
    const std::string id = c->container.runtime_id;
    if (c->container.status == ports::runtime_container::state::running) {
      if (auto s = stop_owned(id, 10s); !s && s.error().code != errc::not_found) return std::unexpected(s.error());
    }
    auto r = call("DELETE", "/containers/" + id + "?force=1&v=1");
    if (!r) return std::unexpected(r.error());
    if (r->status == 204 || r->status == 404) return {};
    if (r->status == 409) {
      // "removal already in progress": wait until it is gone.
      const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
      while (std::chrono::steady_clock::now() < deadline) {
        auto again = owned(id);
        if (!again && again.error().code == errc::not_found) return {};
        std::this_thread::sleep_for(100ms);
      }
    }
    return std::unexpected(answer_error(*r, "remove " + id.substr(0, 12)));
  }

  result<ports::runtime_container> inspect(std::string_view runtime_id) override {
    auto c = owned(runtime_id);
    if (!c) return std::unexpected(c.error());
    return std::move(c->container);
  }

  result<std::vector<ports::runtime_container>> list() override {
    auto r = call("GET", "/containers/json?all=1&filters=" + url_encode(instance_filter(options_.instance, false)));
    if (!r) return std::unexpected(r.error());
    if (r->status != 200) return std::unexpected(answer_error(*r, "list containers"));
    auto doc = parse_daemon_json(r->body, "container list");
    if (!doc) return std::unexpected(doc.error());
    if (!doc->is_array()) return fail(errc::internal, "the daemon's container list is not an array");
    std::vector<ports::runtime_container> out;
    for (const auto& item : *doc) {
      if (!item.is_object() || !item.contains("Id") || !item["Id"].is_string()) continue;
      auto c = owned(item["Id"].get<std::string>());
      if (!c) {
        if (c.error().code == errc::not_found) continue;  // removed meanwhile
        return std::unexpected(c.error());
      }
      out.push_back(std::move(c->container));
    }
    return out;
  }

  result<ports::probe_result> probe(std::string_view runtime_id, const ports::health_probe& probe) override {
    auto c = owned(runtime_id);
    if (!c) return std::unexpected(c.error());
    if (c->container.status != ports::runtime_container::state::running) {
      return ports::probe_result{false, "not running"};
    }
    const auto timeout = std::clamp<std::chrono::milliseconds>(probe.timeout, 1ms, 3600s);
    using kind = ports::health_probe::kind;
    if (probe.type == kind::http || probe.type == kind::tcp) {
      if (probe.port < 1 || probe.port > 65535) return ports::probe_result{false, "port out of range"};
      if (probe.type == kind::tcp) {
        auto o = tcp_probe(probe.port, timeout);
        return ports::probe_result{o.healthy, cut(o.detail)};
      }
      std::string path = probe.path.empty() ? "/" : probe.path;
      if (path.front() != '/') path.insert(path.begin(), '/');
      const bool bad = path.size() > 2048 || std::any_of(path.begin(), path.end(), [](char ch) {
                         return static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f;
                       });
      if (bad) return ports::probe_result{false, "invalid path"};
      auto o = http_probe(probe.port, path, timeout);
      return ports::probe_result{o.healthy, cut(o.detail)};
    }
    return exec_probe(c->container.runtime_id, probe.exec, timeout);
  }

  result<ports::probe_result> exec_probe(const std::string& id, const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout) {
    if (argv.empty()) return ports::probe_result{false, "empty exec command"};
    for (const auto& a : argv) {
      if (a.find('\0') != std::string::npos || !valid_utf8(a))
        return ports::probe_result{false, "invalid exec argument"};
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto left = [&] {
      return std::max<std::chrono::milliseconds>(
          1ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    };
    const json create = {
        {"Cmd", argv}, {"AttachStdin", false}, {"AttachStdout", false}, {"AttachStderr", false}, {"Tty", false}};
    auto r = call("POST", "/containers/" + id + "/exec", create.dump(), std::min(left(), options_.request_timeout));
    if (!r) return timed_out_or(r.error(), deadline);
    if (r->status == 404) return fail(errc::not_found, "no such container", {{"runtime_id", id}});
    if (r->status != 201) return ports::probe_result{false, cut("exec: " + daemon_message(r->status, r->body))};
    auto doc = parse_daemon_json(r->body, "exec answer");
    if (!doc || !doc->is_object() || !doc->contains("Id") || !(*doc)["Id"].is_string() ||
        !valid_object_id((*doc)["Id"].get<std::string>())) {
      return fail(errc::internal, "the daemon's exec answer has no valid Id");
    }
    const std::string exec_id = (*doc)["Id"].get<std::string>();
    auto s = call("POST", "/exec/" + exec_id + "/start", R"({"Detach":true,"Tty":false})",
                  std::min(left(), options_.request_timeout));
    if (!s) return timed_out_or(s.error(), deadline);
    if (s->status != 200 && s->status != 204) {
      return ports::probe_result{false, cut("exec start: " + daemon_message(s->status, s->body))};
    }
    for (;;) {
      auto i = call("GET", "/exec/" + exec_id + "/json", {}, std::min(left(), options_.request_timeout));
      if (!i) return timed_out_or(i.error(), deadline);
      if (i->status != 200)
        return ports::probe_result{false, cut("exec inspect: " + daemon_message(i->status, i->body))};
      auto st = parse_daemon_json(i->body, "exec inspection");
      if (!st || !st->is_object()) return fail(errc::internal, "the daemon's exec inspection is not an object");
      const auto running = st->find("Running");
      if (running != st->end() && running->is_boolean() && !running->get<bool>()) {
        const auto code = st->find("ExitCode");
        if (code == st->end() || !code->is_number_integer()) return ports::probe_result{false, "exec: no exit code"};
        const auto v = code->get<std::int64_t>();
        return ports::probe_result{v == 0, "exit code " + std::to_string(v)};
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return ports::probe_result{false, "timed out after " + std::to_string(timeout.count()) + " ms"};
      }
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(50ms, left()));
    }
  }

  // A call that failed near the probe's deadline is a timed-out attempt, not a down daemon.
  static result<ports::probe_result> timed_out_or(const error& e, std::chrono::steady_clock::time_point deadline) {
    if (std::chrono::steady_clock::now() >= deadline - 5ms) return ports::probe_result{false, "timed out"};
    return std::unexpected(e);
  }

  result<void> logs(std::string_view runtime_id, const ports::log_request& request, const ports::log_sink& on_line,
                    const std::atomic<bool>& stop) override {
    auto c = owned(runtime_id);
    if (!c) return std::unexpected(c.error());
    const std::string id = c->container.runtime_id;
    const bool raw = c->tty;
    const std::size_t tail = std::min<std::size_t>(request.tail, 10000);
    std::optional<std::int64_t> since;
    stream_control control(&stop);
    for (;;) {
      std::string target =
          std::string(k_api) + "/containers/" + id + "/logs?stdout=1&stderr=1&follow=" + (request.follow ? "1" : "0");
      // A resumed follow wants every line since then: `tail` counts the lines already
      // logged when the request comes, and those are the restarted container's first.
      target += since ? "&tail=all&since=" + since_param(*since) : "&tail=" + std::to_string(tail);
      log_demuxer demux(raw);
      std::optional<error> failed;
      bool sink_done = false;
      // When data last came: a resumed follow asks for what was logged since then (what
      // came before was delivered; a line in flight at that instant may repeat).
      std::int64_t last_data = now_nanos();
      auto r = client_.stream(
          "GET", target, {}, options_.request_timeout,
          [&](std::string_view bytes) {
            last_data = now_nanos();
            auto fed = demux.feed(bytes, on_line);
            if (!fed) {
              failed = fed.error();
              return false;
            }
            if (!*fed) sink_done = true;
            return *fed;
          },
          control);
      if (!r) return std::unexpected(r.error());
      if (r->status == 404) {
        if (!since) return fail(errc::not_found, "no such container", {{"runtime_id", id}});
        return {};
      }
      if (r->status != 200) return std::unexpected(answer_error(*r, "logs " + id.substr(0, 12)));
      if (failed) return std::unexpected(*failed);
      if (sink_done || control.cancelled()) return {};
      auto fin = demux.finish(on_line);
      if (!fin) return std::unexpected(fin.error());
      if (!*fin || !request.follow) return {};
      // The followed stream ended: the container stopped. Resume once it runs again.
      since = last_data;
      for (;;) {
        if (control.cancelled()) return {};
        auto again = owned(id);
        if (!again) return again.error().code == errc::not_found ? result<void>{} : std::unexpected(again.error());
        if (again->container.status == ports::runtime_container::state::running) break;
        std::this_thread::sleep_for(250ms);
      }
    }
  }

  std::unique_ptr<ports::watch_handle> watch(std::function<void(const ports::runtime_event&)> on_event) override;

  const docker_runtime_options& options() const { return options_; }
  const docker_client& client() const { return client_; }

 private:
  docker_runtime_options options_;
  docker_client client_;
};

// The watch: a thread reading `/events`, reconnecting with back-off until destroyed.
class docker_watch final : public ports::watch_handle {
 public:
  docker_watch(const docker_runtime& rt, std::function<void(const ports::runtime_event&)> on_event)
      : client_(rt.client()),
        instance_(rt.options().instance),
        header_timeout_(rt.options().request_timeout),
        on_event_(std::move(on_event)),
        since_(now_nanos()) {
    thread_ = std::thread([this] { run(); });
  }

  ~docker_watch() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    control_.cancel();
    cv_.notify_all();
    thread_.join();
  }

 private:
  void deliver(std::string_view line) {
    if (line.empty()) return;
    auto ev = event_from_line(line, instance_);
    if (!ev) {
      spdlog::warn("docker: ignoring an event line: {}", ev.error().message);
      return;
    }
    if (auto t = event_time_nano(line)) since_ = std::max(since_, *t + 1);
    if (!*ev) return;
    try {
      on_event_(**ev);
    } catch (const std::exception& ex) {
      spdlog::error("docker: the watch callback threw: {}", ex.what());
    } catch (...) {
      spdlog::error("docker: the watch callback threw");
    }
  }

  void run() {
    auto backoff = std::chrono::milliseconds(100);
    const std::string filter = url_encode(instance_filter(instance_, true));
    bool was_down = false;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      const std::string target = std::string(k_api) + "/events?filters=" + filter + "&since=" + since_param(since_);
      std::string pending;
      bool skipping = false;  // inside an over-long line: dropped up to its newline
      bool connected = false;
      auto r = client_.stream(
          "GET", target, {}, header_timeout_,
          [&](std::string_view bytes) {
            connected = true;
            while (!bytes.empty()) {
              const auto nl = bytes.find('\n');
              const auto part = bytes.substr(0, nl);
              if (!skipping) {
                if (pending.size() + part.size() > k_max_event_line) {
                  spdlog::warn("docker: dropping an event line over {} bytes", k_max_event_line);
                  pending.clear();
                  skipping = true;
                } else {
                  pending.append(part);
                }
              }
              if (nl == std::string_view::npos) break;
              if (!skipping) deliver(pending);
              pending.clear();
              skipping = false;
              bytes.remove_prefix(nl + 1);
            }
            return true;
          },
          control_);
      if (r && r->status == 200) {
        connected = true;
        if (!skipping && !pending.empty()) deliver(pending);
      }
      {
        std::unique_lock lock(mu_);
        if (stopping_) return;
        if (connected) {
          if (was_down) spdlog::info("docker: event stream reconnected");
          was_down = false;
          backoff = std::chrono::milliseconds(100);
        }
        if (!was_down) {
          spdlog::warn("docker: event stream ended ({}), reconnecting",
                       r ? "HTTP " + std::to_string(r->status) : r.error().message);
          was_down = true;
        }
        cv_.wait_for(lock, backoff, [this] { return stopping_; });
        if (stopping_) return;
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
    }
  }

  docker_client client_;
  std::string instance_;
  std::chrono::milliseconds header_timeout_;
  std::function<void(const ports::runtime_event&)> on_event_;
  std::int64_t since_;
  stream_control control_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

std::unique_ptr<ports::watch_handle> docker_runtime::watch(std::function<void(const ports::runtime_event&)> on_event) {
  return std::make_unique<docker_watch>(*this, std::move(on_event));
}

}  // namespace

result<std::unique_ptr<ports::container_runtime>> make_docker_runtime(docker_runtime_options options) {
  auto path = parse_docker_host(options.host);
  if (!path) return std::unexpected(path.error());
  if (!valid_object_id(options.instance)) {
    return fail(errc::invalid_argument, "the docker runtime needs an instance id of 1-128 characters [A-Za-z0-9_.-]");
  }
  auto rt = std::make_unique<docker_runtime>(options, *path);
  if (options.check_daemon) {
    auto r = rt->call("GET", "/version");
    if (!r) return fail(errc::unavailable, "docker: " + r.error().message);
    if (r->status != 200) return std::unexpected(answer_error(*r, "docker version"));
    auto doc = parse_daemon_json(r->body, "version");
    if (!doc) return std::unexpected(doc.error());
    std::string api = doc->is_object() && doc->contains("ApiVersion") && (*doc)["ApiVersion"].is_string()
                          ? (*doc)["ApiVersion"].get<std::string>()
                          : "";
    int major = 0, minor = 0;
    if (std::sscanf(api.c_str(), "%d.%d", &major, &minor) != 2 || major < 1 || (major == 1 && minor < 41)) {
      return fail(errc::invalid_argument, "docker at " + *path + " speaks API " + (api.empty() ? "?" : cut(api, 32)) +
                                              "; the docker runtime needs 1.41 or later");
    }
    spdlog::info("docker: daemon socket={} api={}", *path, api);
  }
  return std::unique_ptr<ports::container_runtime>(std::move(rt));
}

}  // namespace atrium::docker_adapter
