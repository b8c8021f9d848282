#pragma once
/// The shared world of the stateful fuzz targets (http_request, api_body, ws_message):
/// atriumd's real dependencies wired as app/main.cpp wires them — RocksDB in a temp dir,
/// the actor runtime, argon2id, the vault, the connection tester, `api` — created once per
/// process, with fixtures (an admin and a member with tokens, a project with a cell, a
/// group, a connection, a job, a container) whose ids replace placeholders in inputs.
///
/// Oracles (each aborts, so libFuzzer records the input as a crash):
/// - a request that is not answered within `k_answer_deadline` (a wedge);
/// - a 500 answer (an exception reached `api::handle`'s last resort), unless
///   ATRIUM_FUZZ_ALLOW_500=1;
/// - the store no longer writes: every `k_probe_every` inputs and after any 5xx, a
///   `POST /v1/projects` must answer 201 (F2 of issue 13: a dead writer behind a green
///   health check). The inputs since the last good probe are written to the findings
///   directory (ATRIUM_FUZZ_FINDINGS, default ".") since the culprit may be any of them.
///
/// Placeholders: @TOKEN@ (the admin's bearer token), @MTOKEN@ (the member's), @ADMIN@,
/// @USER@ (the member's id), @PROJECT@, @CELL@, @GROUP@, @CONN@, @SCHEDULE@, @JOB@ (queued),
/// @DONEJOB@ (succeeded, with a 3-row result and a log in the result store),
/// @CONTAINER@, @PVER@ (the project's current version, for If-Match).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/http/api.hpp"
#include "adapters/http/http_server.hpp"
#include "events/job/job_commands.hpp"
#include "ports/command_bus.hpp"
#include "ports/result_store.hpp"

namespace atrium::fuzz {

inline constexpr auto k_answer_deadline = std::chrono::seconds(30);
inline constexpr std::size_t k_probe_every = 32;

/// A push channel that keeps what is sent (thread-safe), as the server's would send it.
class recording_channel final : public http_adapter::push_channel {
 public:
  using http_adapter::push_channel::send;
  /// Records the message's text (its parts joined).
  bool send(http_adapter::push_message message, std::uint64_t tag = 0) override;
  void close(std::uint16_t code, std::string reason, std::string final_message) override;
  /// As the server's: drops what is queued (here: nothing is ever written, so every
  /// queued message) and keeps the final message built from their tags.
  void cut(std::uint16_t code, std::string reason, final_fn final_message) override;
  [[nodiscard]] bool congested() const override;
  [[nodiscard]] bool closing() const override;
  [[nodiscard]] const std::string& remote() const override { return remote_; }

  /// Takes what was sent so far.
  std::vector<std::string> take();
  /// Waits until a sent message satisfies `pred` (checked on each new message) or the
  /// deadline passes; true if one did. Messages stay queued.
  bool wait_for(const std::function<bool(const std::string&)>& pred, std::chrono::milliseconds deadline);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::uint64_t>> sent_;
  bool closing_ = false;
  std::string remote_ = "127.0.0.1:40001";
};

class world {
 public:
  /// The process's world, created on first use (never destroyed: the fuzzer exits with
  /// the actors running).
  static world& get();

  /// Runs one request through `api::handle` and waits for its answer; aborts on a missed
  /// deadline or a 500. A response that opens a push channel is opened on a
  /// `recording_channel` and closed at once, unless `keep_open` (the caller opens it).
  http_adapter::http_response call(http_adapter::http_request req, bool keep_open = false);

  /// Replaces the placeholders (see above) in `text`.
  [[nodiscard]] std::string substitute(std::string text) const;

  /// Remembers an input for the wedge report; call once per fuzz input, before running it.
  void note_input(const std::uint8_t* data, std::size_t size);
  /// Call after each input: probes every `k_probe_every` inputs (or at once after a 5xx)
  /// that the store still writes and the admin token still works (re-creating the admin
  /// if an input disabled it or ended its session); aborts on a wedged store.
  void after_input();

  [[nodiscard]] const std::string& admin_token() const { return admin_token_; }
  [[nodiscard]] const std::string& member_token() const { return member_token_; }
  /// Aborts with `why` as the finding.
  [[noreturn]] static void finding(const std::string& why);
  [[nodiscard]] const std::string& project_id() const { return ids_.at("@PROJECT@"); }
  http_adapter::api& api() { return *api_; }
  /// The result store the API reads (files under the world's temp dir).
  ports::result_store& results();
  /// Runs `cmd` on job `job_id` as the system principal (the runner) and waits for it.
  result<ports::command_outcome> run_as_system(const std::string& job_id, job_command cmd);
  /// The id behind a placeholder, e.g. `id("@DONEJOB@")`.
  [[nodiscard]] const std::string& id(const std::string& placeholder) const { return ids_.at(placeholder); }

  struct impl;

 private:
  world();
  void make_admin();
  void make_fixtures();
  /// Writes a result for `job_id` and drives it to succeeded (the @DONEJOB@ fixture).
  void finish_job(const std::string& job_id);
  std::string mint_token(const std::string& user_id);
  bool probe_write();

  std::unique_ptr<impl> impl_;
  http_adapter::api* api_ = nullptr;
  std::string admin_token_, member_token_;
  std::map<std::string, std::string> ids_;
  std::deque<std::string> recent_;
  std::size_t since_probe_ = 0;
  bool saw_5xx_ = false;
  int admins_made_ = 0;
};

}  // namespace atrium::fuzz
