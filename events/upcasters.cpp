#include "events/upcasters.hpp"

#include <stdexcept>

#include "events/registry.hpp"

namespace atrium {

namespace {

nlohmann::json schema_details(std::string_view type, int schema, int current) {
  return nlohmann::json{{"type", type}, {"schema", schema}, {"current_schema", current}};
}

/// Registers a production step in `upcasters()`. A rejected step is a bug in this file;
/// it throws on first use, so the first test that decodes an event reports it.
[[maybe_unused]] void must(result<void> added) {
  if (!added) throw std::logic_error("events/upcasters.cpp: " + added.error().message);
}

}  // namespace

upcaster_registry::upcaster_registry() {
  for (const auto& info : event_types()) {
    types_.try_emplace(std::string(info.type), entry{info.schema, std::vector<upcaster>(info.schema - 1)});
  }
}

upcaster_registry::upcaster_registry(const std::vector<std::pair<std::string, int>>& current_schemas) {
  for (const auto& [type, current] : current_schemas) {
    const int steps = current > 1 ? current - 1 : 0;
    types_.try_emplace(type, entry{current, std::vector<upcaster>(steps)});
  }
}

result<void> upcaster_registry::add(std::string_view type, int from_schema, upcaster step) {
  const auto it = types_.find(type);
  if (it == types_.end()) return fail(errc::invalid_argument, "unknown event type: " + std::string(type));
  auto& e = it->second;
  const auto details = schema_details(type, from_schema, e.current);
  if (from_schema < 1 || from_schema >= e.current) {
    return fail(errc::invalid_argument,
                std::string(type) + ": no step from schema " + std::to_string(from_schema) +
                    " can exist (current schema " + std::to_string(e.current) + ")",
                details);
  }
  if (!step) return fail(errc::invalid_argument, std::string(type) + ": empty upcaster", details);
  auto& slot = e.steps[static_cast<std::size_t>(from_schema - 1)];
  if (slot) {
    return fail(errc::invalid_argument,
                std::string(type) + ": upcaster from schema " + std::to_string(from_schema) + " already registered",
                details);
  }
  slot = std::move(step);
  return {};
}

int upcaster_registry::current_schema(std::string_view type) const noexcept {
  const auto it = types_.find(type);
  return it == types_.end() ? 0 : it->second.current;
}

result<nlohmann::json> upcaster_registry::upcast(std::string_view type, int schema, nlohmann::json data) const {
  const auto it = types_.find(type);
  if (it == types_.end()) return fail(errc::invalid_argument, "unknown event type: " + std::string(type));
  const auto& e = it->second;
  if (schema < 1) {
    return fail(errc::invalid_argument, std::string(type) + ": schema " + std::to_string(schema) + " is not valid",
                schema_details(type, schema, e.current));
  }
  if (schema > e.current) {
    // Written by a newer build: decoding it as the current schema would lose fields.
    return fail(errc::invalid_argument,
                std::string(type) + ": schema " + std::to_string(schema) + " is newer than the current schema " +
                    std::to_string(e.current),
                schema_details(type, schema, e.current));
  }
  for (int from = schema; from < e.current; ++from) {
    const auto& step = e.steps[static_cast<std::size_t>(from - 1)];
    if (!step) {
      return fail(
          errc::invalid_argument,
          std::string(type) + ": no upcaster from schema " + std::to_string(from) + " to " + std::to_string(from + 1),
          schema_details(type, schema, e.current));
    }
    try {
      data = step(std::move(data));
    } catch (const nlohmann::json::exception& ex) {
      return fail(errc::invalid_argument,
                  std::string(type) + ": upcast from schema " + std::to_string(from) + " failed: " + ex.what(),
                  schema_details(type, schema, e.current));
    }
  }
  return data;
}

const upcaster_registry& upcasters() {
  static const upcaster_registry registry = [] {
    upcaster_registry r;
    // Production steps, one per (type, old schema); see docs/events.md, "Changing a
    // payload schema". Issue 15 (jobs run) moved four job events to schema 2; issue 18
    // container.declared and container.exited.
    using nlohmann::json;
    const auto must = [](result<void> ok) {
      if (!ok) throw std::logic_error("upcaster registration: " + ok.error().message);
    };
    must(r.add("job.submitted", 1, [](json d) {
      d["language"] = "";
      d["max_attempts"] = 1;
      d["cell_id"] = "";
      return d;
    }));
    must(r.add("job.requeued", 1, [](json d) {
      d["counted"] = true;
      return d;
    }));
    must(r.add("job.started", 1, [](json d) {
      d["attempt"] = 1;
      return d;
    }));
    must(r.add("job.progressed", 1, [](json d) {
      d["rows"] = 0;
      d["bytes"] = 0;
      d["elapsed_ms"] = 0;
      return d;
    }));
    must(r.add("job.succeeded", 1, [](json d) {
      const auto summary = d.value("summary", json::object());
      const auto rows = summary.is_object() ? summary.value("rows", json()) : json();
      return json{{"rows", rows.is_number_unsigned() ? rows.get<std::uint64_t>() : 0},
                  {"bytes", 0},
                  {"columns", json::array()},
                  {"duration_ms", 0},
                  {"truncated", false}};
    }));
    must(r.add("job.failed", 1, [](json d) {
      d["sqlstate"] = "";
      return d;
    }));
    // Issue 18 (containers run): a schema-1 declaration required an image and ran it
    // with the image's default command, i.e. Docker's semantics.
    must(r.add("container.declared", 1, [](json d) {
      d["runtime"] = "docker";
      d["limits"] = {{"memory_bytes", nullptr}, {"millicpus", nullptr}, {"pids", nullptr}};
      d["restart"] = "on-failure";
      d["health"] = nullptr;
      return d;
    }));
    must(r.add("container.exited", 1, [](json d) {
      d["reason"] = "exited";
      d["ran_ms"] = 0;
      return d;
    }));
    return r;
  }();
  return registry;
}

result<nlohmann::json> upcast(std::string_view type, int schema, nlohmann::json data) {
  return upcasters().upcast(type, schema, std::move(data));
}

}  // namespace atrium
