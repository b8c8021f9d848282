#pragma once
/// Port: an external event stream the committed log is relayed to (integrators read it
/// there). Implemented by adapters/kafka (a Kafka topic, CloudEvents 1.0 messages); the
/// relay actor (actors/relay.cpp) decides what to publish and when its checkpoint may
/// advance.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "events/envelope.hpp"
#include "events/error.hpp"

namespace atrium::ports {

/// The outcome of publishing one event, reported once per `publish` that succeeded.
struct delivery {
  std::uint64_t position = 0;    ///< the event's position in the log
  std::optional<error> failure;  ///< empty: the destination acknowledged the event
};

/// Health of the connection to the destination.
struct publisher_health {
  bool connected = true;        ///< false while no broker can be reached
  std::string last_error;       ///< the most recent error the client reported ("" if none)
  std::uint64_t in_flight = 0;  ///< published, not yet reported
};

/// The newest event the destination holds as committed, as an exactly-once publisher
/// finds it when it starts (the relay resumes after it, see `publisher_recovery`).
struct published_event {
  std::uint64_t position = 0;  ///< its position in the log (`ce_position`)
  std::string id;              ///< its event id (`ce_id`), to check it is this log's event
};

/// What a publisher knows of the destination's committed prefix of the log.
struct publisher_recovery {
  /// False while the publisher is still finding out (the relay publishes nothing yet).
  bool known = true;
  /// The newest committed event there, if the publisher tracks it (exactly-once
  /// publishers do; at-least-once ones leave it empty) and the destination holds any.
  std::optional<published_event> last;
};

/// An ordered, at-least-once sink of committed events.
///
/// Order: events published with the same stream are delivered (and acknowledged) in the
/// order of `publish` calls. Retries after transient failures are the publisher's own
/// business; a `delivery` with a `failure` is final for that event (the caller decides
/// whether to publish it again).
class event_publisher {
 public:
  virtual ~event_publisher() = default;

  /// Human-readable destination for logs and health, e.g. `kafka://127.0.0.1:9092/atrium.events`.
  [[nodiscard]] virtual std::string describe() const = 0;

  /// Sets the function that receives the delivery reports, in batches (one or more
  /// reports per call, in the order the destination acknowledged them; one call per
  /// poll of the client, so a busy relay handles one message per batch, not per event).
  /// It is called on the publisher's own thread, must not block, and must be set before
  /// the first `publish`.
  virtual void on_delivery(std::function<void(std::vector<delivery>)> fn) = 0;

  /// Queues one event for delivery (non-blocking). Errors: `unavailable` when the local
  /// queue is full (publish again after some deliveries were reported) or the publisher
  /// failed for good; `invalid_argument` if the event cannot be encoded.
  [[nodiscard]] virtual result<void> publish(const envelope& e) = 0;

  /// What the destination already holds (thread-safe). The default suits publishers
  /// that do not track it: known, nothing to resume from.
  [[nodiscard]] virtual publisher_recovery recovery() const { return {}; }

  /// The connection's health now (thread-safe).
  [[nodiscard]] virtual publisher_health health() const = 0;

  /// Waits up to `timeout` for every queued event to be reported (at shutdown).
  virtual void flush(std::chrono::milliseconds timeout) = 0;
};

}  // namespace atrium::ports
