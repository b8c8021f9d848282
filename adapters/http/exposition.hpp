#pragma once
/// The Prometheus text exposition format 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/) of metric families,
/// written by prometheus-cpp's `TextSerializer` (label values escaped, `+Inf` bucket,
/// `_bucket`/`_sum`/`_count` of histograms). Only this file's .cpp includes prometheus-cpp.

#include <string>
#include <vector>

#include "ports/metrics.hpp"

namespace atrium::http_adapter {

/// The content type of `prometheus_text`.
inline constexpr const char* k_prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// `families` as exposition text. Families with the same name are merged (their samples
/// served under one HELP and TYPE, the first's); a `help` is cut at its first newline and
/// its backslashes doubled (prometheus-cpp 1.0 writes HELP unescaped). Never throws on
/// label values: they are escaped (`\\`, `\"`, `\n`).
[[nodiscard]] std::string prometheus_text(std::vector<ports::metric_family> families);

}  // namespace atrium::http_adapter
