#include "adapters/http/api.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <charconv>

#include "events/project/project_decider.hpp"
#include "events/security/security_events.hpp"
#include "events/user/user_decider.hpp"
#include "projections/read_model.hpp"
#include "projections/views.hpp"

namespace atrium::http_adapter {
namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t k_default_limit = 100;
constexpr std::size_t k_max_limit = 1000;
constexpr std::size_t k_max_audit_scan = 10000;  // rows examined per audit request

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// One request in flight; shared by the callbacks that finish it.
struct call {
  http_request req;
  respond_fn respond;
  std::vector<std::string> path;
  std::map<std::string, std::string> query;
  std::string correlation_id;
  clock_type::time_point started = clock_type::now();
  std::string who = "-";
  std::string command_id;  ///< scoped Idempotency-Key, when the client sent one
  /// Stores the final response under the idempotency key (set when a key was claimed).
  std::function<void(unsigned status, const std::string& body, const std::string& etag)> remember;
};
using call_ptr = std::shared_ptr<call>;

void send(const call_ptr& c, unsigned status, const json& body,
          std::vector<std::pair<std::string, std::string>> headers = {}) {
  headers.emplace_back("X-Request-Id", c->correlation_id);
  const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - c->started).count();
  spdlog::info("http method={} path={} status={} ms={:.2f} user={} request_id={}", c->req.method,
               c->req.target.substr(0, c->req.target.find('?')), status, ms, c->who, c->correlation_id);
  // Replace, not throw, on invalid UTF-8: a response must never take a thread down.
  auto text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (c->remember && status < 500) {
    std::string tag;
    for (const auto& [k, v] : headers) {
      if (k == "ETag") tag = v;
    }
    c->remember(status, text, tag);
  }
  c->respond(http_response{status, std::move(text), "application/json", std::move(headers)});
}

void send_error(const call_ptr& c, const error& e) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (e.code == errc::unauthenticated) headers.emplace_back("WWW-Authenticate", "Bearer");
  send(c, http_status(e.code),
       json{{"error", {{"code", std::string(to_string(e.code))}, {"message", e.message}, {"details", e.details}}}},
       std::move(headers));
}

std::string etag(std::uint64_t version) { return "\"" + std::to_string(version) + "\""; }

bool valid_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
  });
}

result<json> parse_object(const std::string& body) {
  try {
    auto j = json::parse(body);
    if (!j.is_object()) return fail(errc::invalid_argument, "request body must be a JSON object");
    return j;
  } catch (const json::exception&) {
    return fail(errc::invalid_argument, "request body is not valid JSON");
  }
}

/// A string field: nullopt when absent (or null); `invalid_argument` when of another type
/// or when required and absent.
result<std::optional<std::string>> string_field(const json& body, const char* name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return fail(errc::invalid_argument, std::string(name) + " is required", {{"field", name}});
    return std::optional<std::string>{};
  }
  if (!it->is_string()) return fail(errc::invalid_argument, std::string(name) + " must be a string", {{"field", name}});
  return std::optional<std::string>{it->get<std::string>()};
}

result<std::uint64_t> parse_u64(std::string_view s, const char* what) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return fail(errc::invalid_argument, std::string(what) + " must be a non-negative integer", {{"parameter", what}});
  }
  return v;
}

result<std::size_t> parse_limit(const call& c) {
  auto it = c.query.find("limit");
  if (it == c.query.end()) return k_default_limit;
  auto v = parse_u64(it->second, "limit");
  if (!v) return std::unexpected(v.error());
  if (*v == 0 || *v > k_max_limit) {
    return fail(errc::invalid_argument, "limit must be 1-" + std::to_string(k_max_limit), {{"parameter", "limit"}});
  }
  return static_cast<std::size_t>(*v);
}

/// `If-Match: 3`, `"3"` or `W/"3"` → 3.
result<std::uint64_t> parse_if_match(const std::string& raw) {
  if (raw.empty())
    return fail(errc::precondition_required, "If-Match with the version you based this change on is required");
  std::string_view v(raw);
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  auto n = parse_u64(v, "If-Match");
  if (!n) return fail(errc::invalid_argument, "If-Match must be a version number", {{"header", "If-Match"}});
  return n;
}

}  // namespace

unsigned http_status(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
      return 400;
    case errc::unauthenticated:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::version_conflict:
    case errc::already_exists:
    case errc::failed_precondition:
      return 409;
    case errc::payload_too_large:
      return 413;
    case errc::precondition_required:
      return 428;
    case errc::unavailable:
      return 503;
    case errc::internal:
      return 500;
  }
  return 500;
}

struct api::impl : std::enable_shared_from_this<api::impl> {
  api_dependencies d;
  boost::asio::thread_pool hashing;
  std::string dummy_hash;  // verified against for unknown users, so timing does not reveal them

  explicit impl(api_dependencies deps) : d(deps), hashing(deps.hashing_threads) {
    auto h = d.hasher.hash("atrium-timing-equalizer");
    dummy_hash = h ? *h : std::string();
  }

  // ---- authentication ---------------------------------------------------------------

  result<principal> authenticate(call& c) const {
    const auto auth = c.req.header("authorization");
    constexpr std::string_view scheme = "Bearer ";
    if (auth.size() <= scheme.size() || !std::string_view(auth).starts_with(scheme)) {
      return fail(errc::unauthenticated, "missing bearer token");
    }
    const auto token = auth.substr(scheme.size());
    const auto token_hash = d.secrets.sha256_hex(token);
    const auto session = d.tokens.get(token_hash);
    if (!session) return std::unexpected(session.error());
    if (!*session) return fail(errc::unauthenticated, "invalid or expired token");
    if ((*session)->expires_at <= unix_now()) {
      (void)d.tokens.erase(token_hash);  // an expired session is of no further use
      return fail(errc::unauthenticated, "invalid or expired token");
    }
    auto row = d.read_models.get("users", "users", (*session)->user_id);
    if (!row) return std::unexpected(row.error());
    if (!*row) return fail(errc::unauthenticated, "invalid or expired token");
    const auto user = user_from_row(**row);
    if (user.disabled) return fail(errc::unauthenticated, "user is disabled");
    c.who = user.username;
    return principal{user.user_id, user.roles, user.disabled};
  }

  // ---- helpers ------------------------------------------------------------------------

  ports::command_context context(const call& c, const principal& p, std::optional<std::uint64_t> expected = {}) const {
    return ports::command_context{p, c.correlation_id, expected, c.command_id};
  }

  /// Finishes a command: waits until projections include it (read-your-writes), then
  /// answers with the entity's view — for a project, the projected row (the same shape
  /// as `GET`, timestamps included) when it has caught up to this version.
  ///
  /// When the store answered a retried command (same Idempotency-Key) with events it had
  /// already committed, those may belong to another entity than the one this attempt
  /// addressed (a create retried after the server stopped mid-request gets a new id);
  /// the answer is then that original entity, as projected.
  ports::completion finish(const call_ptr& c, unsigned status) {
    return [self = shared_from_this(), c, status](result<ports::command_outcome> r) {
      if (!r) return send_error(c, r.error());
      if (r->events.empty()) return send(c, status, r->view, {{"ETag", etag(r->version)}});
      const auto stream = r->events.front().stream;
      std::uint64_t version = 0;
      for (const auto& e : r->events) {
        if (e.stream == stream) version = e.version;
      }
      const bool replayed = r->version == 0;
      auto answer = [self, c, status, stream, version, replayed, view = r->view] {
        if (auto row = self->entity_row(stream)) {
          const auto v = row->value("version", std::uint64_t{0});
          if (v == version || replayed) return send(c, status, *row, {{"ETag", etag(v)}});
        }
        send(c, status, view, {{"ETag", etag(version)}});
      };
      self->d.commands.await_projections(r->position, answer);
    };
  }

  /// The projected row of a `user-…` or `project-…` stream, as the API serves it.
  std::optional<json> entity_row(const std::string& stream) const {
    if (stream.starts_with("project-")) {
      auto row = d.read_models.get("projects", "projects", stream.substr(8));
      if (row && *row) return **row;
    } else if (stream.starts_with("user-")) {
      auto row = d.read_models.get("users", "users", stream.substr(5));
      if (row && *row) return user_view_of_row(**row);
    }
    return std::nullopt;
  }

  /// Applies `Idempotency-Key` to a mutating request: answers a replay or a reused key
  /// itself (returns false), or prepares the call to run and remember its response.
  bool idempotency(const call_ptr& c, const principal& p) {
    const auto key = c->req.header("idempotency-key");
    if (key.empty()) return true;
    if (key.size() > 255 ||
        !std::all_of(key.begin(), key.end(), [](unsigned char ch) { return ch > 32 && ch < 127; })) {
      send_error(c, error{errc::invalid_argument,
                          "Idempotency-Key must be 1-255 visible ASCII characters",
                          {{"header", "Idempotency-Key"}}});
      return false;
    }
    const auto scoped = d.secrets.sha256_hex(p.user_id + "\n" + key);
    const auto fingerprint = d.secrets.sha256_hex(c->req.method + "\n" + c->req.target + "\n" + c->req.body);
    auto claimed = d.idempotency.claim(scoped, fingerprint);
    if (!claimed) {
      send_error(c, claimed.error());
      return false;
    }
    const auto& [outcome, record] = *claimed;
    if (outcome == ports::idempotency_claim::mismatch) {
      send_error(c, error{errc::already_exists,
                          "this Idempotency-Key was used for a different request",
                          {{"header", "Idempotency-Key"}}});
      return false;
    }
    if (outcome == ports::idempotency_claim::replay) {
      std::vector<std::pair<std::string, std::string>> headers{{"X-Request-Id", c->correlation_id},
                                                               {"Idempotency-Replayed", "true"}};
      if (!record.etag.empty()) headers.emplace_back("ETag", record.etag);
      spdlog::info("http method={} path={} status={} user={} request_id={} idempotent_replay=true", c->req.method,
                   c->req.target.substr(0, c->req.target.find('?')), record.status, c->who, c->correlation_id);
      c->respond(http_response{record.status, record.body, "application/json", std::move(headers)});
      return false;
    }
    c->command_id = scoped;
    c->remember = [self = shared_from_this(), scoped, fingerprint](unsigned status, const std::string& body,
                                                                   const std::string& tag) {
      if (auto ok = self->d.idempotency.complete(scoped, {fingerprint, true, status, body, tag}); !ok) {
        spdlog::warn("idempotency record not stored: {}", ok.error().message);
      }
    };
    return true;
  }

  /// The project row if `p` may see it; `not_found` otherwise (existence is private).
  result<json> visible_project(const principal& p, const std::string& id) const {
    if (!valid_id(id)) return fail(errc::not_found, "no such project");
    auto row = d.read_models.get("projects", "projects", id);
    if (!row) return std::unexpected(row.error());
    if (!*row) return fail(errc::not_found, "no such project");
    if (p.is_admin() || p.has(global_role::auditor)) return **row;
    for (const auto& m : (**row)["members"]) {
      if (m.value("user_id", "") == p.user_id) return **row;
    }
    return fail(errc::not_found, "no such project");
  }

  static json public_user(const json& row, const principal& p) {
    if (p.is_admin() || p.has(global_role::auditor) || row.value("id", "") == p.user_id) return user_view_of_row(row);
    return json{{"id", row.value("id", "")}, {"username", row.value("username", "")}};
  }

  // ---- routes -------------------------------------------------------------------------

  void route(const call_ptr& c) {
    const auto& path = c->path;
    const auto& m = c->req.method;
    auto is = [&](std::initializer_list<std::string_view> segs) {
      if (segs.size() != path.size()) return false;
      std::size_t i = 0;
      for (auto s : segs) {
        if (s != "*" && s != path[i]) return false;
        ++i;
      }
      return true;
    };
    auto method_not_allowed = [&] {
      send_error(c, error{errc::invalid_argument, "method not allowed", {{"method", m}}});
    };

    if (is({"healthz"})) {
      if (m != "GET") return method_not_allowed();
      return send(c, 200, json{{"status", "ok"}, {"position", d.events.head_position()}});
    }
    if (is({"v1", "auth", "login"})) {
      if (m != "POST") return method_not_allowed();
      return login(c);
    }
    if (path.empty() || path[0] != "v1") return send_error(c, error{errc::not_found, "no such route"});

    auto who = authenticate(*c);
    if (!who) return send_error(c, who.error());
    const principal& p = *who;
    if ((m == "POST" || m == "PATCH" || m == "DELETE") && !idempotency(c, p)) return;

    if (is({"v1", "users"})) {
      if (m == "POST") return create_user(c, p);
      if (m == "GET") return list_users(c, p);
      return method_not_allowed();
    }
    if (is({"v1", "users", "*"})) {
      if (m == "GET") return get_user(c, p, path[2]);
      if (m == "PATCH") return patch_user(c, p, path[2]);
      return method_not_allowed();
    }
    if (is({"v1", "users", "*", "disable"})) {
      if (m != "POST") return method_not_allowed();
      if (!valid_id(path[2])) return send_error(c, error{errc::not_found, "no such user"});
      return d.commands.execute(path[2], disable_user{}, context(*c, p), finish(c, 200));
    }
    if (is({"v1", "projects"})) {
      if (m == "POST") return create_project_(c, p);
      if (m == "GET") return list_projects(c, p);
      return method_not_allowed();
    }
    if (is({"v1", "projects", "*"})) {
      if (m == "GET") return get_project(c, p, path[2]);
      if (m == "PATCH") return patch_project(c, p, path[2]);
      if (m == "DELETE") return archive(c, p, path[2]);
      return method_not_allowed();
    }
    if (is({"v1", "projects", "*", "members"})) {
      if (m != "POST") return method_not_allowed();
      return add_member_(c, p, path[2]);
    }
    if (is({"v1", "projects", "*", "members", "*"})) {
      if (m != "DELETE") return method_not_allowed();
      return remove_member_(c, p, path[2], path[4]);
    }
    if (is({"v1", "audit", "verify"})) {
      if (m != "GET") return method_not_allowed();
      return verify_chain(c, p);
    }
    if (is({"v1", "audit"})) {
      if (m != "GET") return method_not_allowed();
      return audit(c, p);
    }
    if (is({"v1", "events"})) {
      if (m != "GET") return method_not_allowed();
      return events(c, p);
    }
    if (is({"v1", "streams", "*"})) {
      if (m != "GET") return method_not_allowed();
      return stream(c, p, path[2]);
    }
    send_error(c, error{errc::not_found, "no such route"});
  }

  void login(const call_ptr& c) {
    auto body = parse_object(c->req.body);
    if (!body) return send_error(c, body.error());
    auto username = string_field(*body, "username", true);
    if (!username) return send_error(c, username.error());
    auto password = string_field(*body, "password", true);
    if (!password) return send_error(c, password.error());

    std::optional<user_state> user;
    if (auto name = normalize_username(**username)) {
      auto idx = d.read_models.get("users", "usernames", *name);
      if (!idx) return send_error(c, idx.error());
      if (*idx) {
        auto row = d.read_models.get("users", "users", (**idx).value("user_id", ""));
        if (!row) return send_error(c, row.error());
        if (*row) user = user_from_row(**row);
      }
    }
    boost::asio::post(hashing, [self = shared_from_this(), c, user, password = **password, claimed = **username] {
      const auto& hash = user ? user->password_hash : self->dummy_hash;
      const bool matches = self->d.hasher.verify(hash, password) && user;
      if (!matches || user->disabled) {
        // Every refused login is recorded in the security stream before the answer.
        auto e = make_event(
            security_login_failed{claimed.substr(0, 64), matches ? "disabled" : "invalid_credentials", c->req.remote});
        e.actor = "anonymous";
        e.correlation_id = c->correlation_id;
        self->d.commands.record(std::string(security_stream), std::move(e), [c](result<std::uint64_t> r) {
          if (!r) spdlog::error("security event not recorded: {}", r.error().message);
          send_error(c, error{errc::unauthenticated, "invalid username or password"});
        });
        return;
      }
      const auto token = self->d.secrets.random_token();
      const auto now = unix_now();
      if (auto put = self->d.tokens.put(self->d.secrets.sha256_hex(token),
                                        ports::session_record{user->user_id, now, now + self->d.session_ttl_seconds});
          !put) {
        return send_error(c, put.error());
      }
      c->who = user->username;
      auto e = make_event(security_login_succeeded{user->user_id, user->username, c->req.remote});
      e.actor = "user-" + user->user_id;
      e.correlation_id = c->correlation_id;
      json answer{{"token", token},
                  {"user", {{"id", user->user_id}, {"username", user->username}}},
                  {"expires_at", now + self->d.session_ttl_seconds}};
      self->d.commands.record(std::string(security_stream), std::move(e),
                              [c, answer = std::move(answer)](result<std::uint64_t> r) {
                                if (!r) spdlog::error("security event not recorded: {}", r.error().message);
                                send(c, 200, answer);
                              });
    });
  }

  void create_user(const call_ptr& c, const principal& p) {
    if (!p.is_admin()) return send_error(c, error{errc::forbidden, "only admins register users"});
    auto body = parse_object(c->req.body);
    if (!body) return send_error(c, body.error());
    register_user cmd;
    for (auto [name, out] : {std::pair{"username", &cmd.username}, {"email", &cmd.email}, {"role", &cmd.role}}) {
      auto v = string_field(*body, name, std::string_view(name) != "role");
      if (!v) return send_error(c, v.error());
      *out = v->value_or("member");
    }
    auto password = string_field(*body, "password", true);
    if (!password) return send_error(c, password.error());
    // Validate what is cheap before spending an argon2id hash on it.
    if (auto n = normalize_username(cmd.username); !n) return send_error(c, n.error());
    if (!parse_global_role(cmd.role)) {
      return send_error(c, error{errc::invalid_argument, "role must be admin, member or auditor", {{"field", "role"}}});
    }
    cmd.user_id = new_uuid_v7();
    boost::asio::post(hashing, [self = shared_from_this(), c, p, cmd, password = **password]() mutable {
      auto hash = self->d.hasher.hash(password);
      if (!hash) return send_error(c, hash.error());
      cmd.password_hash = *hash;
      auto id = cmd.user_id;
      self->d.commands.execute(id, std::move(cmd), self->context(*c, p), self->finish(c, 201));
    });
  }

  void list_users(const call_ptr& c, const principal& p) {
    auto limit = parse_limit(*c);
    if (!limit) return send_error(c, limit.error());
    const auto after = c->query.contains("after") ? c->query["after"] : std::string();
    auto rows = d.read_models.scan("users", "users", "", after, *limit);
    if (!rows) return send_error(c, rows.error());
    json users = json::array();
    for (const auto& r : *rows) users.push_back(public_user(r.value, p));
    send(c, 200, json{{"users", users}, {"next", rows->size() == *limit ? json(rows->back().key) : json(nullptr)}});
  }

  void get_user(const call_ptr& c, const principal& p, const std::string& id) {
    if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such user"});
    auto row = d.read_models.get("users", "users", id);
    if (!row) return send_error(c, row.error());
    if (!*row) return send_error(c, error{errc::not_found, "no such user"});
    send(c, 200, public_user(**row, p), {{"ETag", etag((**row).value("version", std::uint64_t{0}))}});
  }

  /// PATCH /v1/users/{id}: `{"password"?, "grant_role"?, "revoke_role"?, "disabled"?: true}`,
  /// applied in that order, each as its own command; stops at the first error.
  void patch_user(const call_ptr& c, const principal& p, const std::string& id) {
    if (!valid_id(id)) return send_error(c, error{errc::not_found, "no such user"});
    auto body = parse_object(c->req.body);
    if (!body) return send_error(c, body.error());
    auto password = string_field(*body, "password", false);
    auto grant = string_field(*body, "grant_role", false);
    auto revoke = string_field(*body, "revoke_role", false);
    for (const auto* f : {&password, &grant, &revoke}) {
      if (!*f) return send_error(c, f->error());
    }
    const auto disabled = body->find("disabled");
    if (disabled != body->end() && !(disabled->is_boolean() && disabled->get<bool>())) {
      return send_error(c, error{errc::invalid_argument, "disabled can only be set to true", {{"field", "disabled"}}});
    }
    auto cmds = std::make_shared<std::vector<user_command>>();
    if (*grant) cmds->push_back(grant_role{**grant});
    if (*revoke) cmds->push_back(revoke_role{**revoke});
    if (disabled != body->end()) cmds->push_back(disable_user{});
    if (cmds->empty() && !*password) {
      return send_error(
          c, error{errc::invalid_argument, "nothing to change: give password, grant_role, revoke_role or disabled"});
    }
    auto run = [self = shared_from_this(), c, p, id, cmds] {
      auto step = std::make_shared<std::function<void(std::size_t)>>();
      *step = [self, c, p, id, cmds, step](std::size_t i) {
        if (i + 1 == cmds->size()) {
          auto last = std::move((*cmds)[i]);
          self->d.commands.execute(id, std::move(last), self->context(*c, p), self->finish(c, 200));
          *step = nullptr;  // break the self-reference
          return;
        }
        self->d.commands.execute(id, (*cmds)[i], self->context(*c, p), [step, c, i](result<ports::command_outcome> r) {
          if (!r) {
            send_error(c, r.error());
            *step = nullptr;
            return;
          }
          (*step)(i + 1);
        });
      };
      (*step)(0);
    };
    if (!*password) return run();
    boost::asio::post(hashing, [self = shared_from_this(), c, cmds, run, pw = **password] {
      auto hash = self->d.hasher.hash(pw);
      if (!hash) return send_error(c, hash.error());
      cmds->insert(cmds->begin(), change_password{*hash});
      run();
    });
  }

  void create_project_(const call_ptr& c, const principal& p) {
    auto body = parse_object(c->req.body);
    if (!body) return send_error(c, body.error());
    auto name = string_field(*body, "name", true);
    if (!name) return send_error(c, name.error());
    auto description = string_field(*body, "description", false);
    if (!description) return send_error(c, description.error());
    auto id = new_uuid_v7();
    d.commands.execute(id, create_project{id, **name, description->value_or("")}, context(*c, p), finish(c, 201));
  }

  void list_projects(const call_ptr& c, const principal& p) {
    auto limit = parse_limit(*c);
    if (!limit) return send_error(c, limit.error());
    const auto after = c->query.contains("after") ? c->query["after"] : std::string();
    json projects = json::array();
    std::string last;
    if (p.is_admin() || p.has(global_role::auditor)) {
      auto rows = d.read_models.scan("projects", "projects", "", after, *limit);
      if (!rows) return send_error(c, rows.error());
      for (const auto& r : *rows) projects.push_back(r.value);
      if (!rows->empty()) last = rows->back().key;
    } else {
      const auto prefix = p.user_id + "/";
      auto rows = d.read_models.scan("projects", "user_projects", prefix, after.empty() ? "" : prefix + after, *limit);
      if (!rows) return send_error(c, rows.error());
      for (const auto& r : *rows) {
        const auto pid = r.key.substr(prefix.size());
        auto row = d.read_models.get("projects", "projects", pid);
        if (!row) return send_error(c, row.error());
        if (*row) projects.push_back(**row);
        last = pid;
      }
    }
    send(c, 200, json{{"projects", projects}, {"next", projects.size() == *limit ? json(last) : json(nullptr)}});
  }

  void get_project(const call_ptr& c, const principal& p, const std::string& id) {
    auto row = visible_project(p, id);
    if (!row) return send_error(c, row.error());
    send(c, 200, *row, {{"ETag", etag(row->value("version", std::uint64_t{0}))}});
  }

  void patch_project(const call_ptr& c, const principal& p, const std::string& id) {
    if (auto row = visible_project(p, id); !row) return send_error(c, row.error());
    auto expected = parse_if_match(c->req.header("if-match"));
    if (!expected) return send_error(c, expected.error());
    auto body = parse_object(c->req.body);
    if (!body) return send_error(c, body.error());
    auto name = string_field(*body, "name", false);
    if (!name) return send_error(c, name.error());
    auto description = string_field(*body, "description", false);
    if (!description) return send_error(c, description.error());
    if (!*name && !*description)
      return send_error(c, error{errc::invalid_argument, "nothing to change: give name or description"});
    d.commands.execute(id, update_project{*name, *description}, context(*c, p, *expected), finish(c, 200));
  }

  void archive(const call_ptr& c, const principal& p, const std::string& id) {
    if (auto row = visible_project(p, id); !row) return send_error(c, row.error());
    std::optional<std::uint64_t> expected;
    if (auto h = c->req.header("if-match"); !h.empty()) {
      auto v = parse_if_match(h);
      if (!v) return send_error(c, v.error());
      expected = *v;
    }
    d.commands.execute(id, archive_project{}, context(*c, p, expected), finish(c, 200));
  }

  void add_member_(const call_ptr& c, const principal& p, const std::string& id) {
    if (auto row = visible_project(p, id); !row) return send_error(c, row.error());
    auto body = parse_object(c->req.body);
    if (!body) return send_error(c, body.error());
    auto user = string_field(*body, "user_id", true);
    if (!user) return send_error(c, user.error());
    auto role = string_field(*body, "role", true);
    if (!role) return send_error(c, role.error());
    if (!valid_id(**user)) return send_error(c, error{errc::not_found, "no such user", {{"user_id", **user}}});
    auto target = d.read_models.get("users", "users", **user);
    if (!target) return send_error(c, target.error());
    if (!*target) return send_error(c, error{errc::not_found, "no such user", {{"user_id", **user}}});
    d.commands.execute(id, add_member{**user, **role}, context(*c, p), finish(c, 200));
  }

  void remove_member_(const call_ptr& c, const principal& p, const std::string& id, const std::string& user) {
    if (auto row = visible_project(p, id); !row) return send_error(c, row.error());
    d.commands.execute(id, remove_member{user}, context(*c, p), finish(c, 200));
  }

  static bool may_read_log(const principal& p) { return p.is_admin() || p.has(global_role::auditor); }

  void audit(const call_ptr& c, const principal& p) {
    if (!may_read_log(p)) return send_error(c, error{errc::forbidden, "only admins and auditors read the audit log"});
    auto limit = parse_limit(*c);
    if (!limit) return send_error(c, limit.error());
    const auto order = c->query.contains("order") ? c->query["order"] : std::string("asc");
    if (order != "asc" && order != "desc") {
      return send_error(c, error{errc::invalid_argument, "order must be asc or desc", {{"parameter", "order"}}});
    }
    const bool desc = order == "desc";
    std::string cursor;
    const char* cursor_name = desc ? "before" : "after";
    if (auto it = c->query.find(cursor_name); it != c->query.end()) {
      auto v = parse_u64(it->second, cursor_name);
      if (!v) return send_error(c, v.error());
      cursor = position_key(*v);
    }
    auto filter = [&](const char* key) -> std::optional<std::string> {
      auto it = c->query.find(key);
      return it == c->query.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    const auto actor = filter("actor"), stream_f = filter("stream"), type = filter("type");
    json entries = json::array();
    std::size_t examined = 0;
    bool exhausted = false;
    std::uint64_t last_position = 0;
    while (entries.size() < *limit && examined < k_max_audit_scan) {
      auto rows = d.read_models.scan("audit", "entries", "", cursor,
                                     std::min<std::size_t>(500, k_max_audit_scan - examined), desc);
      if (!rows) return send_error(c, rows.error());
      if (rows->empty()) {
        exhausted = true;
        break;
      }
      for (const auto& r : *rows) {
        ++examined;
        cursor = r.key;
        last_position = r.value.value("position", std::uint64_t{0});
        const auto& v = r.value;
        if ((actor && v.value("actor", "") != *actor && v.value("actor", "") != "user-" + *actor) ||
            (stream_f && v.value("stream", "") != *stream_f) || (type && v.value("type", "") != *type)) {
          continue;
        }
        entries.push_back(v);
        if (entries.size() == *limit) break;
      }
    }
    json next = exhausted || last_position == 0 ? json(nullptr) : json(last_position);
    send(c, 200, json{{"entries", entries}, {"next", next}, {"order", order}});
  }

  /// GET /v1/audit/verify: recomputes the hash chain on the blocking pool (it reads the
  /// whole log) and answers `{"ok","count","last_hash"}` or, broken, also
  /// `{"broken_at","reason"}` — 200 either way: the check itself succeeded.
  void verify_chain(const call_ptr& c, const principal& p) {
    if (!may_read_log(p)) return send_error(c, error{errc::forbidden, "only admins and auditors verify the log"});
    boost::asio::post(hashing, [self = shared_from_this(), c] {
      auto report = self->d.events.verify_chain();
      if (!report) return send_error(c, report.error());
      json out{{"ok", report->ok}, {"count", report->count}, {"last_hash", report->last_hash}};
      if (!report->ok) {
        out["broken_at"] = report->broken_at;
        out["reason"] = report->reason;
      }
      send(c, 200, out);
    });
  }

  void events(const call_ptr& c, const principal& p) {
    if (!may_read_log(p)) return send_error(c, error{errc::forbidden, "only admins and auditors read the event log"});
    auto limit = parse_limit(*c);
    if (!limit) return send_error(c, limit.error());
    std::uint64_t after = 0;
    if (auto it = c->query.find("after"); it != c->query.end()) {
      auto v = parse_u64(it->second, "after");
      if (!v) return send_error(c, v.error());
      after = *v;
    }
    auto page = d.events.read_all(after, *limit);
    if (!page) return send_error(c, page.error());
    json out = json::array();
    for (const auto& e : *page) out.push_back(to_public_json(e));
    send(c, 200,
         json{{"events", out},
              {"next", page->empty() ? json(after) : json(page->back().position)},
              {"head", d.events.head_position()}});
  }

  void stream(const call_ptr& c, const principal& p, const std::string& stream_id) {
    const auto dash = stream_id.find('-');
    const bool unowned = stream_id == security_stream;  // readable by admins and auditors only
    if ((dash == std::string::npos && !unowned) || !valid_id(stream_id)) {
      return send_error(c, error{errc::not_found, "no such stream"});
    }
    const auto entity = unowned ? stream_id : stream_id.substr(0, dash);
    const auto id = unowned ? std::string() : stream_id.substr(dash + 1);
    bool allowed = may_read_log(p);
    if (!allowed && entity == "user") allowed = id == p.user_id;
    if (!allowed && entity == "project") allowed = visible_project(p, id).has_value();
    if (!allowed) return send_error(c, error{errc::not_found, "no such stream"});
    auto limit = parse_limit(*c);
    if (!limit) return send_error(c, limit.error());
    std::uint64_t from = 1;
    if (auto it = c->query.find("from_version"); it != c->query.end()) {
      auto v = parse_u64(it->second, "from_version");
      if (!v) return send_error(c, v.error());
      from = *v;
    }
    auto page = d.events.read_stream(stream_id, from, *limit);
    if (!page) return send_error(c, page.error());
    if (page->empty() && from <= 1) return send_error(c, error{errc::not_found, "no such stream"});
    json out = json::array();
    for (const auto& e : *page) out.push_back(to_public_json(e));
    json next = page->size() == *limit ? json(page->back().version + 1) : json(nullptr);
    send(c, 200, json{{"stream", stream_id}, {"events", out}, {"next", next}});
  }
};

api::api(api_dependencies deps) : impl_(std::make_shared<impl>(deps)) {}
api::~api() { stop(); }

void api::stop() { impl_->hashing.join(); }

void api::handle(http_request request, respond_fn respond) {
  auto c = std::make_shared<call>();
  c->req = std::move(request);
  c->respond = std::move(respond);
  const auto rid = c->req.header("x-request-id");
  const bool rid_ok = !rid.empty() && rid.size() <= 128 && std::all_of(rid.begin(), rid.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
  });
  c->correlation_id = rid_ok ? rid : new_uuid_v7();
  try {
    auto url = boost::urls::parse_origin_form(c->req.target);
    if (!url) return send_error(c, error{errc::invalid_argument, "malformed request target"});
    for (auto seg : url->segments()) c->path.push_back(std::string(seg));
    while (!c->path.empty() && c->path.back().empty()) c->path.pop_back();  // tolerate a trailing slash
    for (auto param : url->params()) c->query[std::string(param.key)] = std::string(param.value);
    impl_->route(c);
  } catch (const std::exception& ex) {
    spdlog::error("request failed path={} error={}", c->req.target.substr(0, c->req.target.find('?')), ex.what());
    send_error(c, error{errc::internal, "internal error"});
  }
}

}  // namespace atrium::http_adapter
