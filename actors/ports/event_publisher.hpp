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

  /// Sets the function that receives every delivery report. It is called on the
  /// publisher's own thread, must not block, and must be set before the first `publish`.
  virtual void on_delivery(std::function<void(delivery)> fn) = 0;

  /// Queues one event for delivery (non-blocking). Errors: `unavailable` when the local
  /// queue is full (publish again after some deliveries were reported) or the publisher
  /// failed for good; `invalid_argument` if the event cannot be encoded.
  [[nodiscard]] virtual result<void> publish(const envelope& e) = 0;

  /// The connection's health now (thread-safe).
  [[nodiscard]] virtual publisher_health health() const = 0;

  /// Waits up to `timeout` for every queued event to be reported (at shutdown).
  virtual void flush(std::chrono::milliseconds timeout) = 0;
};

}  // namespace atrium::ports
