#pragma once
/// The HTTP API's own metrics: requests by route template, method and status with their
/// latency, and the open WebSocket and SSE connections. Beast-free.
///
///   api::handle ─▶ route lookup sets call::route_id ─▶ … ─▶ respond ─▶ observe(route,
///                                                          method, status, seconds)
///
/// Label cardinality is bounded by construction: a route is the router's pattern
/// (`/v1/projects/{id}`), never the raw path; requests no route matched share the route
/// `unmatched`, the web console's files `static`; methods outside the standard set are
/// `other`; a status is one of 100-599. Every (route, method) pair has its own slot,
/// allocated on its first request (one compare-and-swap), so `observe` is lock-free:
/// a few relaxed atomic adds.

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/http/router.hpp"
#include "ports/metrics.hpp"

namespace atrium::http_adapter {

/// Requests and push connections of the API. Thread-safe; `index` once before use.
class http_metrics final : public ports::metrics_source {
 public:
  /// The route id of requests no route matched (unknown paths, refused at the edge).
  static constexpr int k_unmatched = 0;
  /// The route id of the web console's files.
  static constexpr int k_static = 1;
  /// Methods with a label of their own; any other is `other`.
  static constexpr std::array<std::string_view, 7> k_methods = {"GET",   "HEAD",   "POST",   "PUT",
                                                                "PATCH", "DELETE", "OPTIONS"};

  http_metrics() = default;
  ~http_metrics() override;
  http_metrics(const http_metrics&) = delete;
  http_metrics& operator=(const http_metrics&) = delete;

  /// Gives every distinct pattern of `t` a route id (from 2, in order of first
  /// addition). Call once, after every route was added and before any request.
  void index(const route_table& t);
  /// The route id of `r` (a route of the indexed table), `k_unmatched` for nullptr or an
  /// unknown route.
  [[nodiscard]] int route_id(const route* r) const;
  /// The label index of `method` (`k_methods` position, or `k_methods.size()` for `other`).
  [[nodiscard]] static int method_index(std::string_view method) noexcept;

  /// Counts one answered request: `route` (a route id), `method` (`method_index`),
  /// HTTP `status` (outside 100-599 counts as 599's neighbour: clamped) and its handling
  /// time in seconds. Lock-free.
  void observe(int route, int method, unsigned status, double seconds);

  /// Open WebSocket connections (`GET /v1/ws` upgraded, not yet closed).
  ports::gauge websockets;
  /// Open Server-Sent Events streams of the log (`GET /v1/events/stream`): one
  /// subscription each.
  ports::gauge sse_streams;
  /// Subscriptions on open WebSockets (the presence board counts them); null: none.
  std::shared_ptr<const ports::gauge> websocket_subscriptions;

  /// `atrium_http_requests_total{route,method,status}`,
  /// `atrium_http_request_duration_seconds{route,method}` (histogram),
  /// `atrium_websocket_connections`, `atrium_sse_connections`,
  /// `atrium_push_subscriptions{transport}`.
  void collect(std::vector<ports::metric_family>& out) const override;

  /// Holds one count of a gauge of `owner` from construction until `release` or
  /// destruction, whichever comes first (a connection's open state, owned by the
  /// channel's callbacks: released however the connection ends). Thread-safe.
  class hold {
   public:
    hold(std::shared_ptr<http_metrics> owner, ports::gauge http_metrics::*g) : owner_(std::move(owner)), g_(g) {
      ((*owner_).*g_).add();
    }
    ~hold() { release(); }
    hold(const hold&) = delete;
    hold& operator=(const hold&) = delete;
    /// Gives the count back (once).
    void release() {
      if (!released_.exchange(true)) ((*owner_).*g_).sub();
    }

   private:
    std::shared_ptr<http_metrics> owner_;
    ports::gauge http_metrics::*g_;
    std::atomic<bool> released_{false};
  };

  /// Callbacks of a push channel that count it in `g` while it is open.
  static push_callbacks counted(push_callbacks cb, std::shared_ptr<http_metrics> owner, ports::gauge http_metrics::*g) {
    auto held = std::make_shared<hold>(std::move(owner), g);
    cb.on_close = [inner = std::move(cb.on_close), held] {
      held->release();
      if (inner) inner();
    };
    return cb;
  }

 private:
  static constexpr int k_methods_labelled = static_cast<int>(k_methods.size()) + 1;  // + `other`
  static constexpr unsigned k_first_status = 100;
  static constexpr unsigned k_statuses = 500;  // 100-599
  /// The counts of one (route, method).
  struct slot {
    std::array<ports::counter, k_statuses> by_status;
    ports::histogram latency{ports::k_latency_buckets};
  };
  std::vector<std::string> patterns_;  // by route id
  std::unordered_map<const route*, int> ids_;
  std::unique_ptr<std::atomic<slot*>[]> slots_;  // route id * k_methods_labelled + method
};

}  // namespace atrium::http_adapter
