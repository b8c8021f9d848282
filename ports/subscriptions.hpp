#pragma once
/// Port: the subscription hub (WebSocket / SSE fan-out). Implemented by
/// `atrium::actor_runtime` (a CAF actor over `actors::hub_core`); used by the HTTP
/// adapter, whose connections implement `subscriber`.
///
///   writer ─log_advanced─▶ projection runner ─applied─▶ hub ─deliver(sub, event)─▶ subscriber
///                                                        │ (catch-up: pages from the store)
///                                                        └─ may_read(stream) after access changes
///
/// A subscription holds a cursor (the last position it has been given). It first
/// replays the committed events after its `after` from the store, then follows the log
/// live, strictly in position order, without gaps or duplicates.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "events/envelope.hpp"
#include "events/error.hpp"

namespace atrium::ports {

/// What one subscription selects.
struct subscription_filter {
  std::vector<std::string> streams;   ///< exact stream ids, e.g. `project-0193…`
  std::vector<std::string> projects;  ///< project ids: the project's stream and its jobs' streams
  bool all = false;                   ///< every event (the SSE feed of the global log)
};

/// A subscription request.
struct subscription {
  std::string id;  ///< chosen by the client; unique per subscriber
  subscription_filter filter;
  std::uint64_t after = 0;  ///< deliver events with position > after
};

/// One connection's end of the hub. Every call comes from the hub's thread, one at a
/// time; implementations must not block (queue and return).
class subscriber {
 public:
  virtual ~subscriber() = default;

  /// Queues event `e` for `subscription`. `event_json` is the public envelope as JSON
  /// text, serialized once per event and shared by every subscriber it goes to (never
  /// null; keep a reference to it rather than a copy). False when the connection's send
  /// queue is full: the hub then ends every subscription of this subscriber and calls
  /// `overflowed`.
  virtual bool deliver(const std::string& subscription, const envelope& e,
                       const std::shared_ptr<const std::string>& event_json) = 0;

  /// True while the connection's send queue is over half full: catch-up (replay from
  /// the store) waits for it to drain instead of overflowing it; live delivery does not
  /// wait.
  [[nodiscard]] virtual bool congested() const = 0;

  /// Whether the subscriber may still read `stream` (`project-<id>` for a project
  /// subscription). Asked again after every event that may take access away
  /// (`project.member_removed`, `project.group_removed`, `group.member_removed`,
  /// `user.disabled`, `user.role_revoked`), with the read models already updated.
  virtual bool may_read(const std::string& stream) = 0;

  /// The user the subscriber acts for (access changes of this user re-check it).
  [[nodiscard]] virtual const std::string& user_id() const = 0;

  /// `subscription` ended: by `unsubscribe` (`why` empty) or because access was lost
  /// (`why` is `forbidden`). `resume_after` is its cursor.
  virtual void ended(const std::string& subscription, std::optional<error> why, std::uint64_t resume_after) = 0;

  /// The send queue overflowed: every subscription has ended; each with its cursor
  /// (the last position queued for it), to resume from after a reconnect.
  virtual void overflowed(const std::vector<std::pair<std::string, std::uint64_t>>& resume_after) = 0;
};

/// Entry point of the hub. Calls return at once; the hub works on its own thread.
class subscription_hub {
 public:
  virtual ~subscription_hub() = default;
  /// Starts `sub` for `s` (access must have been checked by the caller). A subscription
  /// id already used by `s` is replaced.
  virtual void subscribe(std::shared_ptr<subscriber> s, subscription sub) = 0;
  /// Ends subscription `id` of `s`; the hub answers with `s->ended(id, {}, cursor)`
  /// after the last event it delivered for it (nothing if it does not exist).
  virtual void unsubscribe(std::shared_ptr<subscriber> s, std::string id) = 0;
  /// Ends every subscription of `s` silently (the connection closed).
  virtual void drop(std::shared_ptr<subscriber> s) = 0;
};

}  // namespace atrium::ports
