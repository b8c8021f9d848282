#include "tests/fuzz/harness.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/runtime.hpp"
#include "adapters/tz/iana_zones.hpp"
#include "adapters/connectors/sql_connector.hpp"
#include "adapters/results/file_result_store.hpp"
#include "adapters/rocksdb/rocksdb_store.hpp"
#include "adapters/sodium/sodium_security.hpp"
#include "adapters/vault/sodium_vault.hpp"
#include "events/user/user_decider.hpp"
#include "projections/projections.hpp"
#include "projections/queries.hpp"

namespace atrium::fuzz {

using http_adapter::http_request;
using http_adapter::http_response;
using nlohmann::json;

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n", why.c_str());
  std::fflush(stderr);
  std::abort();
}

void fatal_setup(const std::string& why) {
  std::fprintf(stderr, "==atrium-fuzz== setup failed: %s\n", why.c_str());
  std::exit(2);
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

std::string replace_all(std::string s, std::string_view from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace

void world::finding(const std::string& why) { die(why); }

// ---- recording_channel --------------------------------------------------------------

bool recording_channel::send(http_adapter::push_message message, std::uint64_t tag) {
  std::string text;
  for (const auto& part : message.parts) {
    if (part) text += *part;
  }
  {
    std::lock_guard lock(mu_);
    if (closing_ || sent_.size() >= 1024) return false;  // the server's default queue bound
    sent_.emplace_back(std::move(text), tag);
  }
  cv_.notify_all();
  return true;
}

void recording_channel::close(std::uint16_t, std::string, std::string final_message) {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
    closing_ = true;
    if (!final_message.empty()) sent_.emplace_back(std::move(final_message), 0);
  }
  cv_.notify_all();
}

void recording_channel::cut(std::uint16_t, std::string, final_fn final_message) {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
    closing_ = true;
    std::vector<std::uint64_t> tags;
    for (const auto& [text, tag] : sent_) {
      if (tag != 0) tags.push_back(tag);
    }
    sent_.clear();
    if (final_message) {
      auto last = final_message(tags);
      if (!last.empty()) sent_.emplace_back(std::move(last), 0);
    }
  }
  cv_.notify_all();
}

bool recording_channel::congested() const {
  std::lock_guard lock(mu_);
  return sent_.size() > 512;
}

bool recording_channel::closing() const {
  std::lock_guard lock(mu_);
  return closing_;
}

std::vector<std::string> recording_channel::take() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(sent_.size());
  for (auto& m : sent_) out.push_back(std::move(m.first));
  sent_.clear();
  return out;
}

bool recording_channel::wait_for(const std::function<bool(const std::string&)>& pred,
                                 std::chrono::milliseconds deadline) {
  std::unique_lock lock(mu_);
  std::size_t checked = 0;
  return cv_.wait_for(lock, deadline, [&] {
    for (; checked < sent_.size(); ++checked) {
      if (pred(sent_[checked].first)) return true;
    }
    return false;
  });
}

// ---- world ----------------------------------------------------------------------------

struct world::impl {
  std::filesystem::path dir;
  std::unique_ptr<rocksdb_adapter::rocksdb_store> store;
  std::unique_ptr<actor_runtime> runtime;
  sodium_adapter::argon2id_hasher hasher;
  sodium_adapter::sodium_secrets secrets;
  std::unique_ptr<vault_adapter::sodium_vault> vault;
  connectors_adapter::sql_connection_tester tester;
  std::unique_ptr<ports::queries> queries;  // before api: it must outlive it
  std::unique_ptr<results_adapter::file_result_store> results;
  std::unique_ptr<http_adapter::api> api;
  std::string admin_hash;
  bool allow_500 = env_flag("ATRIUM_FUZZ_ALLOW_500");
};

world& world::get() {
  static world* w = new world();  // never destroyed: actors keep running until exit
  return *w;
}

world::world() : impl_(std::make_unique<impl>()) {
  // Logs: formatted (the code runs) into a null sink, unless ATRIUM_FUZZ_LOG=1.
  if (env_flag("ATRIUM_FUZZ_LOG")) {
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
  } else {
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }
  spdlog::set_level(spdlog::level::info);
  std::signal(SIGPIPE, SIG_IGN);

  if (auto ok = sodium_adapter::initialize(); !ok) fatal_setup(ok.error().message);
  const char* base = std::getenv("ATRIUM_FUZZ_TMP");
  std::filesystem::path root = base && *base ? base : std::filesystem::temp_directory_path().string();
  std::filesystem::create_directories(root);
  std::string pattern = (root / "atrium-fuzz-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) fatal_setup("mkdtemp failed in " + root.string());
  impl_->dir = pattern;

  auto projections = make_all_projections();
  std::vector<std::string> names;
  for (const auto& p : projections) names.emplace_back(p->name());
  auto store = rocksdb_adapter::rocksdb_store::open((impl_->dir / "rocksdb").string(), names);
  if (!store) fatal_setup("store: " + store.error().message);
  impl_->store = std::move(*store);
  runtime_config config;
  auto runtime =
      actor_runtime::start(impl_->store->events(), impl_->store->read_models(), std::move(projections), config);
  if (!runtime) fatal_setup("runtime: " + runtime.error().message);
  impl_->runtime = std::move(*runtime);
  auto key = vault_adapter::load_master_key(std::nullopt, impl_->dir.string());
  if (!key) fatal_setup("master key: " + key.error().message);
  impl_->vault = std::make_unique<vault_adapter::sodium_vault>(*key, impl_->store->kv());
  auto& s = *impl_->store;
  auto& r = *impl_->runtime;
  impl_->queries = make_queries(s.read_models(), s.events());
  auto results = results_adapter::file_result_store::open_dir(impl_->dir / "results");
  if (!results) fatal_setup("results: " + results.error().message);
  impl_->results = std::move(*results);
  http_adapter::api_dependencies deps{
      r, s.events(), *impl_->queries, s.kv(), s.kv(), impl_->hasher, impl_->secrets, *impl_->vault, impl_->tester,
      r, r,          *impl_->results};
  deps.zones = make_iana_zone_database();
  deps.leases = &r;
  impl_->api = std::make_unique<http_adapter::api>(deps);
  api_ = impl_->api.get();
  auto hash = impl_->hasher.hash("fuzz-admin-password");
  if (!hash) fatal_setup("hash: " + hash.error().message);
  impl_->admin_hash = *hash;
  make_admin();
  make_fixtures();
  std::fprintf(stderr, "==atrium-fuzz== world ready in %s (project %s)\n", impl_->dir.c_str(), project_id().c_str());
}

std::string world::mint_token(const std::string& user_id) {
  const auto token = impl_->secrets.random_token();
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (auto ok =
          impl_->store->kv().put(impl_->secrets.sha256_hex(token), ports::session_record{user_id, now, now + 86400});
      !ok) {
    fatal_setup("token: " + ok.error().message);
  }
  return token;
}

void world::make_admin() {
  const auto id = new_uuid_v7();
  const auto name = "fuzzadmin" + std::to_string(admins_made_++);
  auto out =
      impl_->runtime->execute_blocking(id, register_user{id, name, name + "@example.com", "admin", impl_->admin_hash},
                                       ports::command_context{principal::system(), new_uuid_v7(), std::nullopt});
  if (!out) fatal_setup("admin: " + out.error().message);
  // The token works once the users projection has the row.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto row = impl_->store->read_models().get("users", "users", id);
    if (row && *row) break;
    if (std::chrono::steady_clock::now() > until) fatal_setup("admin never projected");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ids_["@ADMIN@"] = id;
  admin_token_ = mint_token(id);
}

void world::make_fixtures() {
  auto create = [&](const std::string& placeholder, const std::string& target, const std::string& body) {
    http_request req;
    req.method = "POST";
    req.target = substitute(target);
    req.headers["authorization"] = "Bearer " + admin_token_;
    req.headers["content-type"] = "application/json";
    req.body = substitute(body);
    req.remote = "127.0.0.1:40000";
    auto resp = call(std::move(req));
    std::string id;
    try {
      const auto j = json::parse(resp.body);
      for (const char* field : {"id", "cell_id", "job_id", "container_id"}) {
        if (j.contains(field) && j[field].is_string()) {
          id = j[field].get<std::string>();
          break;
        }
      }
      if (placeholder == "@CELL@" && id.empty() && j.contains("cells") && !j["cells"].empty()) {
        id = j["cells"].back().value("id", j["cells"].back().value("cell_id", ""));
      }
    } catch (const json::exception&) {
    }
    if (resp.status >= 300 || id.empty()) {
      std::fprintf(stderr, "==atrium-fuzz== fixture %s: %u %s\n", placeholder.c_str(), resp.status, resp.body.c_str());
      id = "no-" + placeholder.substr(1, placeholder.size() - 2);
    }
    ids_[placeholder] = id;
  };
  create("@USER@", "/v1/users",
         R"({"username":"fuzzmember","email":"m@example.com","password":"fuzz-member-pw","role":"member"})");
  create("@PROJECT@", "/v1/projects", R"({"name":"fuzz project","description":"fixture"})");
  create("@CELL@", "/v1/projects/@PROJECT@/cells", R"({"kind":"markdown","content":"hello"})");
  create("@GROUP@", "/v1/groups", R"({"name":"fuzz group"})");
  create("@CONN@", "/v1/connections",
         R"({"name":"fuzz conn","driver":"sqlite","params":{"path":"/nonexistent/f.db"}})");
  create("@JOB@", "/v1/jobs", R"({"project_id":"@PROJECT@","kind":"script","language":"bash","script":"echo hi"})");
  create("@DONEJOB@", "/v1/jobs",
         R"({"project_id":"@PROJECT@","kind":"sql","connection_id":"@CONN@","sql":"select 1"})");
  finish_job(ids_["@DONEJOB@"]);
  create("@SCHEDULE@", "/v1/schedules",
         R"({"name":"fuzz schedule","project_id":"@PROJECT@","cron":"0 6 * * 1-5","time_zone":"Europe/Berlin",)"
         R"("target":{"kind":"script","language":"bash","script":"echo hi"}})");
  create("@CONTAINER@", "/v1/containers", R"({"name":"fuzz-ct","image":"alpine:3","command":["sleep","0"]})");
  member_token_ = ids_["@USER@"].starts_with("no-") ? std::string("no-member-token") : mint_token(ids_["@USER@"]);
}

ports::result_store& world::results() { return *impl_->results; }

result<ports::command_outcome> world::run_as_system(const std::string& job_id, job_command cmd) {
  std::promise<result<ports::command_outcome>> done;
  auto future = done.get_future();
  static_cast<ports::command_bus&>(*impl_->runtime)
      .execute(job_id, std::move(cmd), ports::command_context{principal::system(), new_uuid_v7(), std::nullopt},
               [&done](result<ports::command_outcome> r) { done.set_value(std::move(r)); });
  return future.get();
}

void world::finish_job(const std::string& job_id) {
  if (job_id.starts_with("no-")) return;
  auto writer = impl_->results->create(job_id, {});
  const std::vector<ports::result_column> columns{{"n", "int"}, {"s", "text"}};
  ports::row_batch rows{2, {"1", "a", "2", std::nullopt, "3", "c,\"d\""}};
  bool ok = writer && (*writer)->begin(columns) && (*writer)->append(rows) && (*writer)->append_log("fuzz log\n") &&
            (*writer)->commit();
  ok = ok && run_as_system(job_id, start_job{"fuzz-runner"});
  ok = ok && run_as_system(job_id, complete_job{3, 5, {{"n", "int"}, {"s", "text"}}, 1, false});
  if (!ok) std::fprintf(stderr, "==atrium-fuzz== fixture @DONEJOB@ did not finish\n");
}

std::string world::substitute(std::string text) const {
  if (text.find('@') == std::string::npos) return text;
  text = replace_all(std::move(text), "@TOKEN@", admin_token_);
  text = replace_all(std::move(text), "@MTOKEN@", member_token_);
  for (const auto& [k, v] : ids_) text = replace_all(std::move(text), k, v);
  if (text.find("@PVER@") != std::string::npos) {
    std::string version = "0";
    if (auto row = impl_->store->read_models().get("projects", "projects", ids_.at("@PROJECT@")); row && *row) {
      version = std::to_string((**row).value("version", std::uint64_t{0}));
    }
    text = replace_all(std::move(text), "@PVER@", version);
  }
  return text;
}

http_response world::call(http_request req, bool keep_open) {
  struct answer {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<http_response> resp;
  };
  auto a = std::make_shared<answer>();
  const auto what = req.method + " " + req.target.substr(0, 200);
  api_->handle(std::move(req), [a](http_response r) {
    {
      std::lock_guard lock(a->mu);
      if (a->resp) return;
      a->resp = std::move(r);
    }
    a->cv.notify_all();
  });
  http_response resp;
  {
    std::unique_lock lock(a->mu);
    if (!a->cv.wait_for(lock, k_answer_deadline, [&] { return a->resp.has_value(); })) {
      die("no answer within " + std::to_string(k_answer_deadline.count()) + " s to " + what);
    }
    resp = std::move(*a->resp);
  }
  if (resp.status >= 500) saw_5xx_ = true;
  if (resp.status == 500 && !impl_->allow_500) die("500 answered to " + what + ": " + resp.body);
  if (resp.producer) {
    // As the server would: pull the streamed body to its end (or its first error).
    std::string chunk;
    for (std::size_t n = 0; n < 100000; ++n) {
      auto more = resp.producer->next(chunk);
      if (!more || !*more) break;
    }
    resp.producer.reset();
  }
  if (resp.open && !keep_open) {
    auto ch = std::make_shared<recording_channel>();
    auto callbacks = resp.open(ch);
    if (callbacks.on_close) callbacks.on_close();
    resp.open = nullptr;
  }
  return resp;
}

void world::note_input(const std::uint8_t* data, std::size_t size) {
  recent_.emplace_back(reinterpret_cast<const char*>(data), size);
  while (recent_.size() > k_probe_every + 1) recent_.pop_front();
}

bool world::probe_write() {
  http_request req;
  req.method = "POST";
  req.target = "/v1/projects";
  req.headers["authorization"] = "Bearer " + admin_token_;
  req.headers["content-type"] = "application/json";
  req.body = R"({"name":"probe"})";
  req.remote = "127.0.0.1:40000";
  auto resp = call(std::move(req));
  if (resp.status == 401) {  // an input disabled the admin or ended its session
    make_admin();
    return probe_write();
  }
  if (resp.status != 201) {
    std::fprintf(stderr, "==atrium-fuzz== write probe answered %u %s\n", resp.status, resp.body.c_str());
    return false;
  }
  return true;
}

void world::after_input() {
  if (++since_probe_ < k_probe_every && !saw_5xx_) return;
  since_probe_ = 0;
  saw_5xx_ = false;
  if (probe_write()) {
    recent_.clear();
    return;
  }
  const char* out = std::getenv("ATRIUM_FUZZ_FINDINGS");
  const std::filesystem::path dir = out && *out ? out : ".";
  std::filesystem::create_directories(dir);
  const auto stamp = std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr));
  std::size_t i = 0;
  for (const auto& input : recent_) {
    std::ofstream(dir / ("wedge-" + stamp + "-" + std::to_string(i++)), std::ios::binary) << input;
  }
  die("the store no longer writes; the " + std::to_string(recent_.size()) +
      " inputs since the last good probe are in " + (dir / ("wedge-" + stamp + "-*")).string());
}

}  // namespace atrium::fuzz

// The stateful targets run actors in the background: their allocations are not the
// input's leaks. UBSan reports stop the run with a stack.
extern "C" const char* __asan_default_options() { return "detect_leaks=0:abort_on_error=1"; }
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
