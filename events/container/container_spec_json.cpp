#include "events/container/container_spec_json.hpp"

#include <cmath>
#include <limits>
#include <string>

namespace atrium {
namespace {

std::unexpected<error> bad(std::string message, std::string field) {
  return fail(errc::invalid_argument, std::move(message), {{"field", std::move(field)}});
}

nlohmann::json opt(const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

/// An integer member (null or missing: nullopt); floats and other types are refused.
result<std::optional<std::int64_t>> integer(const nlohmann::json& j, const char* key, const std::string& field) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::int64_t>{};
  if (it->is_number_integer()) return std::optional<std::int64_t>(it->get<std::int64_t>());
  if (it->is_number_unsigned()) return bad(field + " is too large", field);
  return bad(field + " must be an integer", field);
}

}  // namespace

nlohmann::json limits_to_api(const container_limits_spec& l) {
  return {{"memory_bytes", opt(l.memory_bytes)},
          {"cpus", l.millicpus ? nlohmann::json(static_cast<double>(*l.millicpus) / 1000.0) : nlohmann::json(nullptr)},
          {"pids", opt(l.pids)}};
}

result<container_limits_spec> limits_from_api(const nlohmann::json& j) {
  container_limits_spec l;
  if (j.is_null()) return l;
  if (!j.is_object()) return bad("limits must be an object {memory_bytes, cpus, pids}", "limits");
  for (const auto& [key, value] : j.items()) {
    if (key != "memory_bytes" && key != "cpus" && key != "pids") {
      return bad("limits has memory_bytes, cpus and pids only", "limits." + key);
    }
  }
  auto memory = integer(j, "memory_bytes", "limits.memory_bytes");
  if (!memory) return std::unexpected(memory.error());
  l.memory_bytes = *memory;
  auto pids = integer(j, "pids", "limits.pids");
  if (!pids) return std::unexpected(pids.error());
  l.pids = *pids;
  if (auto it = j.find("cpus"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) return bad("limits.cpus must be a number of cores", "limits.cpus");
    const double cores = it->get<double>();
    // Beyond ±1e12 cores the product leaves the int64 range; the decider's range refuses
    // anything past 1024 anyway.
    if (!std::isfinite(cores) || std::fabs(cores) > 1e12) return bad("limits.cpus is out of range", "limits.cpus");
    l.millicpus = static_cast<std::int64_t>(std::llround(cores * 1000.0));
  }
  return l;
}

nlohmann::json health_to_api(const std::optional<container_health_spec>& h) {
  if (!h) return nullptr;
  nlohmann::json out = nlohmann::json::object();
  if (h->kind == "http") {
    out["http"] = {{"port", h->port}, {"path", h->path}};
  } else if (h->kind == "tcp") {
    out["tcp"] = {{"port", h->port}};
  } else {
    out["exec"] = h->exec;
  }
  out["interval_s"] = h->interval_s;
  out["timeout_s"] = h->timeout_s;
  out["retries"] = h->retries;
  out["start_period_s"] = h->start_period_s;
  return out;
}

result<std::optional<container_health_spec>> health_from_api(const nlohmann::json& j) {
  if (j.is_null()) return std::optional<container_health_spec>{};
  if (!j.is_object()) return bad("health must be an object with one of http, tcp or exec", "health");
  container_health_spec h;
  int kinds = 0;
  for (const auto& [key, value] : j.items()) {
    if (key == "http" || key == "tcp") {
      ++kinds;
      h.kind = key;
      if (!value.is_object()) return bad("health." + key + " must be an object", "health." + key);
      for (const auto& [k, v] : value.items()) {
        if (k != "port" && !(key == "http" && k == "path")) {
          return bad("health." + key + " has no member " + k, "health." + key + "." + k);
        }
      }
      auto port = value.find("port");
      if (port == value.end() || !port->is_number_integer() || port->get<std::int64_t>() < 0 ||
          port->get<std::int64_t>() > 65535) {
        return bad("health." + key + ".port must be an integer 1-65535", "health.port");
      }
      h.port = port->get<int>();
      if (key == "http") {
        auto path = value.find("path");
        if (path != value.end() && !path->is_null()) {
          if (!path->is_string()) return bad("health.http.path must be a string", "health.path");
          h.path = path->get<std::string>();
        }
      }
    } else if (key == "exec") {
      ++kinds;
      h.kind = key;
      if (!value.is_array()) return bad("health.exec must be an array of strings", "health.exec");
      for (const auto& arg : value) {
        if (!arg.is_string()) return bad("health.exec must be an array of strings", "health.exec");
        h.exec.push_back(arg.get<std::string>());
      }
    } else if (key == "interval_s" || key == "timeout_s" || key == "retries" || key == "start_period_s") {
      const auto field = "health." + key;
      if (!value.is_number_integer() || value.get<std::int64_t>() < std::numeric_limits<int>::min() ||
          value.get<std::int64_t>() > std::numeric_limits<int>::max()) {
        return bad(field + " must be an integer", field);
      }
      const int v = value.get<int>();
      if (key == "interval_s") h.interval_s = v;
      if (key == "timeout_s") h.timeout_s = v;
      if (key == "retries") h.retries = v;
      if (key == "start_period_s") h.start_period_s = v;
    } else {
      return bad("health has no member " + key, "health." + key);
    }
  }
  if (kinds != 1) return bad("health must have exactly one of http, tcp or exec", "health");
  return std::optional<container_health_spec>(std::move(h));
}

}  // namespace atrium
