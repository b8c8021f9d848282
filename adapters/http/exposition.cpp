// Metric families as Prometheus text, through prometheus-cpp's serializer.
#include "adapters/http/exposition.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <unordered_map>

namespace atrium::http_adapter {
namespace {

prometheus::MetricType type_of(ports::metric_type t) {
  switch (t) {
    case ports::metric_type::counter:
      return prometheus::MetricType::Counter;
    case ports::metric_type::gauge:
      return prometheus::MetricType::Gauge;
    case ports::metric_type::histogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

/// HELP text as the format wants it: one line, `\` and newline escaped.
std::string help_line(const std::string& help) {
  std::string out;
  for (const char ch : help.substr(0, help.find('\n'))) {
    if (ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

prometheus::ClientMetric client_metric(const ports::metric_sample& s, ports::metric_type type) {
  prometheus::ClientMetric m;
  for (const auto& [name, value] : s.labels) m.label.push_back({name, value});
  switch (type) {
    case ports::metric_type::counter:
      m.counter.value = s.value;
      break;
    case ports::metric_type::gauge:
      m.gauge.value = s.value;
      break;
    case ports::metric_type::histogram:
      if (s.histogram) {
        m.histogram.sample_count = s.histogram->count;
        m.histogram.sample_sum = s.histogram->sum;
        for (std::size_t i = 0; i < s.histogram->bounds.size(); ++i) {
          m.histogram.bucket.push_back({s.histogram->cumulative[i], s.histogram->bounds[i]});
        }
      }
      break;
  }
  return m;
}

}  // namespace

std::string prometheus_text(std::vector<ports::metric_family> families) {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families.size());
  std::unordered_map<std::string, std::size_t> index;
  for (auto& f : families) {
    auto [it, added] = index.emplace(f.name, out.size());
    if (added) out.push_back(prometheus::MetricFamily{f.name, help_line(f.help), type_of(f.type), {}});
    auto& target = out[it->second];
    // A merged family keeps the first's type: a sample of another type is left out.
    if (target.type != type_of(f.type)) continue;
    for (const auto& s : f.samples) target.metric.push_back(client_metric(s, f.type));
  }
  return prometheus::TextSerializer().Serialize(out);
}

}  // namespace atrium::http_adapter
