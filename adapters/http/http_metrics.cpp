// The HTTP API's request and connection metrics.
#include "adapters/http/http_metrics.hpp"

#include <algorithm>

namespace atrium::http_adapter {

http_metrics::~http_metrics() {
  if (!slots_) return;
  const auto n = patterns_.size() * static_cast<std::size_t>(k_methods_labelled);
  for (std::size_t i = 0; i < n; ++i) delete slots_[i].load(std::memory_order_acquire);
}

void http_metrics::index(const route_table& t) {
  patterns_ = {"unmatched", "static"};
  std::unordered_map<std::string, int> by_pattern;
  for (const auto* r : t.all()) {
    auto [it, added] = by_pattern.emplace(r->pattern, static_cast<int>(patterns_.size()));
    if (added) patterns_.push_back(r->pattern);
    ids_[r] = it->second;
  }
  const auto n = patterns_.size() * static_cast<std::size_t>(k_methods_labelled);
  slots_ = std::make_unique<std::atomic<slot*>[]>(n);
  for (std::size_t i = 0; i < n; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
}

int http_metrics::route_id(const route* r) const {
  if (r == nullptr) return k_unmatched;
  auto it = ids_.find(r);
  return it == ids_.end() ? k_unmatched : it->second;
}

int http_metrics::method_index(std::string_view method) noexcept {
  for (std::size_t i = 0; i < k_methods.size(); ++i) {
    if (k_methods[i] == method) return static_cast<int>(i);
  }
  return static_cast<int>(k_methods.size());
}

void http_metrics::observe(int route, int method, unsigned status, double seconds) {
  if (!slots_) return;
  if (route < 0 || static_cast<std::size_t>(route) >= patterns_.size()) route = k_unmatched;
  method = std::clamp(method, 0, k_methods_labelled - 1);
  auto& cell = slots_[static_cast<std::size_t>(route) * k_methods_labelled + static_cast<std::size_t>(method)];
  auto* s = cell.load(std::memory_order_acquire);
  if (s == nullptr) {
    // The first request of this (route, method): one allocation; a racing first request
    // that lost the exchange frees its own.
    auto* made = new slot();
    if (cell.compare_exchange_strong(s, made, std::memory_order_acq_rel, std::memory_order_acquire)) {
      s = made;
    } else {
      delete made;
    }
  }
  const auto code = std::clamp(status, k_first_status, k_first_status + k_statuses - 1);
  s->by_status[code - k_first_status].add();
  s->latency.observe(seconds);
}

void http_metrics::collect(std::vector<ports::metric_family>& out) const {
  using ports::family;
  using ports::metric_type;
  auto requests = family("atrium_http_requests_total", metric_type::counter,
                         "HTTP requests answered, by route template, method and status.");
  auto latency = family("atrium_http_request_duration_seconds", metric_type::histogram,
                        "Time from a request's arrival to its answer (the upgrade for WebSocket and SSE).");
  if (slots_) {
    for (std::size_t r = 0; r < patterns_.size(); ++r) {
      for (int m = 0; m < k_methods_labelled; ++m) {
        const auto* s = slots_[r * k_methods_labelled + static_cast<std::size_t>(m)].load(std::memory_order_acquire);
        if (s == nullptr) continue;
        const std::string method = m < static_cast<int>(k_methods.size()) ? std::string(k_methods[m]) : "other";
        for (unsigned i = 0; i < k_statuses; ++i) {
          const auto n = s->by_status[i].value();
          if (n == 0) continue;
          requests.add(static_cast<double>(n),
                       {{"route", patterns_[r]}, {"method", method}, {"status", std::to_string(k_first_status + i)}});
        }
        latency.add(s->latency.snapshot(), {{"route", patterns_[r]}, {"method", method}});
      }
    }
  }
  out.push_back(std::move(requests));
  out.push_back(std::move(latency));
  out.push_back(family("atrium_websocket_connections", metric_type::gauge, "Open WebSocket connections (GET /v1/ws).")
                    .add(static_cast<double>(websockets.value())));
  out.push_back(family("atrium_sse_connections", metric_type::gauge,
                       "Open Server-Sent Events streams of the log (GET /v1/events/stream).")
                    .add(static_cast<double>(sse_streams.value())));
  out.push_back(family("atrium_push_subscriptions", metric_type::gauge,
                       "Open subscriptions to the log by transport (an SSE stream is one).")
                    .add(websocket_subscriptions ? static_cast<double>(websocket_subscriptions->value()) : 0,
                         {{"transport", "websocket"}})
                    .add(static_cast<double>(sse_streams.value()), {{"transport", "sse"}}));
}

}  // namespace atrium::http_adapter
