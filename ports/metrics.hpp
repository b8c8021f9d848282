#pragma once
/// Port: the server's metrics, as `GET /metrics` serves them (Prometheus text exposition
/// format 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/).
///
///   hot path (HTTP dispatch, commit thread) ─▶ counter / histogram: relaxed atomic adds,
///                                              no lock, no allocation
///   GET /metrics ─▶ every metrics_source::collect ─▶ metric_family list ─▶ text (http adapter)
///
/// Components own their instruments and describe them at scrape time as
/// `metric_family` values; the HTTP adapter serializes those. Names follow Prometheus'
/// conventions (https://prometheus.io/docs/practices/naming/): base units (seconds,
/// bytes), `_total` on counters; label values must come from a bounded set (a route
/// template, never a raw path).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace atrium::ports {

/// A count that only goes up. Lock-free: `add` is one relaxed atomic add.
class counter {
 public:
  /// Adds `n` (default 1).
  void add(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  /// The count so far.
  [[nodiscard]] std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// A value that goes up and down (a count of open things). Lock-free.
class gauge {
 public:
  void add(std::int64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  void sub(std::int64_t n = 1) noexcept { v_.fetch_sub(n, std::memory_order_relaxed); }
  void set(std::int64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

/// A histogram's state at one moment: `cumulative[i]` observations were ≤ `bounds[i]`
/// (bounds ascending, finite; the `+Inf` bucket is `count`).
struct histogram_snapshot {
  std::vector<double> bounds;
  std::vector<std::uint64_t> cumulative;
  std::uint64_t count = 0;
  double sum = 0;
};

/// A histogram over fixed upper bounds (Prometheus `le` buckets). Lock-free: `observe`
/// finds the bucket (binary search) and does three relaxed atomic adds. A scrape that
/// runs during observations may see a bucket count and `count` that differ by the
/// observations in flight; each is exact once they finish.
class histogram {
 public:
  /// Buckets with the upper bounds `bounds` (ascending, finite; `+Inf` is implied).
  explicit histogram(std::span<const double> bounds)
      : bounds_(bounds.begin(), bounds.end()), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
  }
  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  /// Counts `v` in the first bucket whose bound is ≥ `v` (the `+Inf` one beyond the last).
  void observe(double v) noexcept {
    const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
  }
  /// The observations so far.
  [[nodiscard]] std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  /// The buckets, cumulative, with count and sum.
  [[nodiscard]] histogram_snapshot snapshot() const {
    histogram_snapshot s{bounds_, std::vector<std::uint64_t>(bounds_.size()), 0, sum_.load(std::memory_order_relaxed)};
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
      running += buckets_[i].load(std::memory_order_relaxed);
      s.cumulative[i] = running;
    }
    // `count` as the buckets add up, so that the exposition stays monotonic across `le`.
    s.count = running + buckets_[bounds_.size()].load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

/// Latency buckets in seconds, 1 ms to 10 s (Prometheus' client defaults plus 1 ms).
inline constexpr double k_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/// The kind of a metric family (its `# TYPE`).
enum class metric_type { counter, gauge, histogram };

/// One labelled sample of a family: `value` for counters and gauges, `histogram` for
/// histograms.
struct metric_sample {
  std::vector<std::pair<std::string, std::string>> labels;  ///< name → value; names `[a-zA-Z_][a-zA-Z0-9_]*`
  double value = 0;
  std::optional<histogram_snapshot> histogram;
};

/// One metric family: `name` (`[a-zA-Z_:][a-zA-Z0-9_:]*`; counters end in `_total`), a
/// one-line `help` (no backslash, no newline), its type and samples. A family with no
/// sample is served with its HELP and TYPE only.
struct metric_family {
  std::string name;
  std::string help;
  metric_type type = metric_type::gauge;
  std::vector<metric_sample> samples;

  /// Adds a sample with `labels` and `value`; returns *this.
  metric_family& add(double v, std::vector<std::pair<std::string, std::string>> labels = {}) {
    samples.push_back(metric_sample{std::move(labels), v, std::nullopt});
    return *this;
  }
  /// Adds a histogram sample; returns *this.
  metric_family& add(histogram_snapshot h, std::vector<std::pair<std::string, std::string>> labels = {}) {
    samples.push_back(metric_sample{std::move(labels), 0, std::move(h)});
    return *this;
  }
};

/// A family with no samples yet.
inline metric_family family(std::string name, metric_type type, std::string help) {
  return metric_family{std::move(name), std::move(help), type, {}};
}

/// A component whose metrics a scrape includes.
class metrics_source {
 public:
  virtual ~metrics_source() = default;
  /// Appends this component's families to `out`. Runs on the thread that answers the
  /// scrape (an actor-system or HTTP I/O thread): must answer at once, without waiting
  /// on an actor or a lock held for long. Thread-safe.
  virtual void collect(std::vector<metric_family>& out) const = 0;
};

}  // namespace atrium::ports
