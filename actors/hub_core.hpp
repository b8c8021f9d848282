#pragma once
/// The logic of the subscription hub, without CAF (the hub actor in
/// subscription_hub.cpp runs it on one thread; unit tests drive it directly).
///
///   store ──read_all pages──▶ hub_core ──deliver──▶ subscriber (one per connection)
///
/// Every subscription has a cursor: the last position it was given (or examined).
/// The hub has `dispatched`: the last position it has handed out live.
///
/// * **Lagging** (`cursor < dispatched`): `catch_up` reads pages of the log after the
///   cursor, up to `dispatched`, and delivers what matches. Once the cursor reaches
///   `dispatched` the subscription is live.
/// * **Live**: `advance(head)` reads each new page once and fans every event out to the
///   live subscriptions it matches (indexed by stream and by project), skipping events
///   at or below a live cursor (a subscription may start ahead of `dispatched`).
///
/// Both paths run on the same thread in position order, so a subscription gets each
/// matching event exactly once, strictly in order. Job streams belong to the project
/// named by their `job.submitted` (`project_of_job` resolves older jobs), schedule streams
/// to the one named by their `schedule.created`; a stream the lookup does not know (or a
/// schedule's) is resolved from its first event in the store.
///
/// Backpressure: catch-up gives a subscription events only while its subscriber is not
/// `congested`; one that makes no progress for `stall_limit` is cut as a slow consumer.
/// Live delivery never waits: a full queue cuts the subscriber at once.
///
/// Access: events that may take access away re-check the affected subscribers with
/// `subscriber::may_read` before the event is delivered; a subscription that lost it
/// ends with `forbidden`. A subscriber whose queue overflows loses every subscription
/// and is told each one's cursor.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "ports/event_store.hpp"
#include "ports/subscriptions.hpp"

namespace atrium::actors {

class hub_core {
 public:
  /// Resolves a job id to its project id (nullopt if unknown).
  using job_lookup = std::function<std::optional<std::string>(const std::string& job_id)>;

  /// `dispatched` starts at `start` (normally the log head).
  using clock = std::chrono::steady_clock;

  hub_core(const ports::event_store& store, job_lookup project_of_job, std::uint64_t start, std::size_t page = 1000,
           std::chrono::milliseconds stall_limit = std::chrono::seconds(30));

  /// Adds (or replaces) a subscription; duplicate streams and projects in its filter are
  /// collapsed. Returns true if it must catch up.
  bool subscribe(const std::shared_ptr<ports::subscriber>& s, ports::subscription sub);
  /// Ends one subscription, telling the subscriber (`ended` without error).
  void unsubscribe(const std::shared_ptr<ports::subscriber>& s, const std::string& id);
  /// Ends every subscription of `s` silently.
  void drop(const ports::subscriber* s);

  /// The log grew to `head`: delivers (dispatched, head] to live subscriptions.
  /// Errors: the store's (nothing is marked dispatched past the failure).
  [[nodiscard]] result<void> advance(std::uint64_t head);

  /// What `catch_up` did.
  struct catch_up_report {
    bool behind = false;      ///< some subscriptions still lag
    bool progressed = false;  ///< some got further (false: all that lag wait for their subscribers)
  };
  /// Moves every lagging subscription whose subscriber is not congested forward by up
  /// to `max_pages` pages; cuts those stalled since before `now - stall_limit`.
  [[nodiscard]] result<catch_up_report> catch_up(std::size_t max_pages = 1, clock::time_point now = clock::now());

  /// The last position handed out live.
  [[nodiscard]] std::uint64_t dispatched() const { return dispatched_; }
  /// Subscriptions held now.
  [[nodiscard]] std::size_t size() const { return subs_.size(); }

 private:
  struct sub_state {
    std::shared_ptr<ports::subscriber> owner;
    ports::subscription spec;
    std::uint64_t cursor = 0;
    bool live = false;
    std::optional<clock::time_point> stalled_since;  // catch-up found the subscriber congested
  };
  using sub_ptr = std::shared_ptr<sub_state>;
  using key = std::pair<const ports::subscriber*, std::string>;

  void index(const sub_ptr& s);
  void unindex(const sub_ptr& s);
  void erase(const sub_ptr& s);
  /// Project id of an event's stream (`project-<id>`, or the project of `job-<id>` or
  /// `schedule-<id>`).
  std::optional<std::string> project_of(const envelope& e);
  bool matches(const sub_state& s, const envelope& e);
  /// Re-checks access for the subscriptions `e` may affect; ends those that lost it.
  void recheck(const envelope& e);
  /// Delivers to one subscription; false (and the subscriber overflowed) on a full queue.
  bool give(const sub_ptr& s, const envelope& e, const std::shared_ptr<const std::string>& json);
  void overflow(const ports::subscriber* owner);
  [[nodiscard]] std::uint64_t resume_of(const sub_state& s) const;

  const ports::event_store& store_;
  job_lookup project_of_job_;
  std::size_t page_;
  std::chrono::milliseconds stall_limit_;
  std::uint64_t dispatched_;
  std::uint64_t horizon_;  // live subscriptions have been given every match <= horizon_
  std::map<key, sub_ptr> subs_;
  std::unordered_map<std::string, std::set<sub_ptr>> by_stream_;
  std::unordered_map<std::string, std::set<sub_ptr>> by_project_;
  std::set<sub_ptr> all_;
  std::unordered_map<std::string, std::string> job_projects_;  // cache: job or schedule stream → project id
};

}  // namespace atrium::actors
