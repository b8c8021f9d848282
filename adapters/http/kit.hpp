#pragma once
/// What every controller shares (adapters/http/controllers/): asking the policy decision
/// point and recording its denials, sending a command and answering it once the
/// projections have applied it (read-your-writes), and time travel (`?as_of=`). A
/// controller is given the kit plus the ports of its own resource, nothing more.
///
///   controller ──allowed(op, facts)──▶ access::authorize ──denied──▶ security.access_denied
///        │                                                              (command bus), 403/404
///        └──execute(id, command, context(c, p), finish(c, 201))──▶ command bus
///                                  finish: await_projections(position) ─▶ entity view, ETag

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "adapters/http/call.hpp"
#include "events/access/policy.hpp"
#include "ports/command_bus.hpp"
#include "ports/queries.hpp"

namespace atrium::http_adapter {

/// Runs a task on one of the API's worker pools (argon2id hashing and other blocking
/// work, or connection probes), never on an I/O thread.
using pool_fn = std::function<void(std::function<void()>)>;

/// The policy gate, the command helpers and time travel, over the command bus and the
/// entity queries (both must outlive the kit). Thread-safe.
class controller_kit : public std::enable_shared_from_this<controller_kit> {
 public:
  controller_kit(ports::command_bus& commands, const ports::entity_queries& entities)
      : commands_(commands), entities_(entities) {}

  /// The command bus, for controllers that send commands.
  [[nodiscard]] ports::command_bus& commands() const { return commands_; }

  // ---- access control (the policy decision point, events/access/policy.hpp) -----------

  /// Asks the policy whether `p` may perform `op` on `resource` (a stream id such as
  /// `project-<id>`, or a collection such as `projects`). Allowed: returns true. Denied:
  /// appends `security.access_denied` to the security stream, then answers 403 or 404,
  /// and returns false.
  bool allowed(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
               const std::string& resource);

  /// `allowed`, then, for an existing resource only: answers `not_found` (`missing`) and
  /// returns false when `exists` is false.
  bool admitted(const call_ptr& c, const principal& p, access::operation op, const access::facts& f,
                const std::string& resource, bool exists, const char* missing);

  /// Records `security.access_denied` for `e` (403/404) and answers it.
  void deny(const call_ptr& c, const error& e, const std::string& reason);

  /// Appends `e` to the `security` stream, then calls `then` once the projections have
  /// applied it (so the caller's next audit read shows it), or at once if the append
  /// failed (logged; the answer is not withheld).
  void record_security(proposed_event e, std::function<void()> then);
  /// The same for a stream no aggregate owns, e.g. `admin`.
  void record_unowned(std::string_view stream, proposed_event e, std::function<void()> then);

  // ---- commands -----------------------------------------------------------------------

  /// The context of a command sent for `c` by `p` (`expected`: from `If-Match`).
  [[nodiscard]] static ports::command_context context(const call& c, const principal& p,
                                                      std::optional<std::uint64_t> expected = {});

  /// What a controller adds to a view before answering it (e.g. a schedule's
  /// `next_fire_times`, computed at read time); nullptr: the view as it is.
  using view_shape = std::function<json(json)>;

  /// Finishes a command: waits until projections include it (read-your-writes), then
  /// answers with the entity's projected view (the same shape as `GET`, timestamps
  /// included) when it has caught up to this version, else the actor's view, either
  /// passed through `shape` (as `GET` passes it); `ETag` and `X-Atrium-Position` (the
  /// log position of the command's last event). A `forbidden` from the decider is
  /// recorded like a policy denial.
  ///
  /// When the store answered a retried command (same Idempotency-Key) with events it had
  /// already committed, those may belong to another entity than the one this attempt
  /// addressed (a create retried after the server stopped mid-request gets a new id);
  /// the answer is then that original entity, as projected.
  [[nodiscard]] ports::completion finish(const call_ptr& c, unsigned status, view_shape shape = nullptr);

  /// Sends `command` for entity `id` on behalf of `p` (`expected`: the version from
  /// `If-Match`) and answers it with `finish(c, status, shape)`.
  template <class Command>
  void execute(const call_ptr& c, const principal& p, const std::string& id, Command command, unsigned status = 200,
               std::optional<std::uint64_t> expected = {}, view_shape shape = nullptr) {
    commands_.execute(id, std::move(command), context(*c, p, expected), finish(c, status, std::move(shape)));
  }

  /// The projected view of the entity of `stream`, as `GET` serves it (nullopt if none).
  [[nodiscard]] std::optional<json> current(const std::string& stream) const { return entities_.current(stream); }

  // ---- time travel (`?as_of=`) -----------------------------------------------------------

  /// `?as_of=` of `c`: nullopt when absent, else a position or an RFC 3339 time
  /// (normalized like stored times); `invalid_argument` when it is neither.
  [[nodiscard]] static result<std::optional<ports::as_of_bound>> parse_as_of(const call& c);

  /// The entity of `stream` as it was at `bound` (ports::entity_queries::as_of).
  [[nodiscard]] result<std::optional<ports::historic_view>> as_of(const std::string& stream,
                                                                  const ports::as_of_bound& bound) const {
    return entities_.as_of(stream, bound);
  }

  /// When the call has `as_of`, answers the entity of `stream` as it was then — folded
  /// from its events, not read from the live projection — optionally passed through
  /// `shape` (e.g. the public subset of a user), with `"as_of":{"position","time"}` of
  /// the last event folded; 404 if it did not exist then. Returns false (nothing sent)
  /// when there is no `as_of`.
  bool answer_as_of(const call_ptr& c, const std::string& stream, const view_shape& shape = nullptr);

 private:
  ports::command_bus& commands_;
  const ports::entity_queries& entities_;
};

/// How controllers hold the kit (their handlers outlive the call that started them).
using kit_ptr = std::shared_ptr<controller_kit>;

/// The answer to a read of an entity: after the policy admitted `op` (with `facts`) on
/// `resource` and the entity exists (`view`, else 404 `missing`), its view as it was
/// (`?as_of=`, folded from `stream`, through `shape`) or as it is (through `shape`),
/// with its ETag. The one get pattern every controller uses.
void answer_get(controller_kit& kit, const call_ptr& c, const principal& p, access::operation op,
                const access::facts& facts, const std::string& stream, const std::optional<json>& view,
                const char* missing, const controller_kit::view_shape& shape = nullptr);

/// The answer to a list: after the policy admitted `op` on the collection `name` (no
/// check when `op` is nullopt: the list holds only what the caller may see), the page
/// `read` returns for `?after=&limit=`, as `{"<name>":[…],"next"}`. The one list
/// pattern every controller uses.
void answer_list(controller_kit& kit, const call_ptr& c, const principal& p, std::optional<access::operation> op,
                 const char* name, const std::function<result<ports::page>(const ports::page_request&)>& read);

}  // namespace atrium::http_adapter
