#pragma once
/// Test support: the small JSON helpers the end-to-end tests share — the id of a created
/// entity, a stream's events paged through `GET /v1/streams/{stream}`, their types, and a
/// job's status awaited with a deadline. Header-only (Catch2 macros); namespace
/// `atrium::test`, next to `atriumd_server` (tests/support/atriumd.hpp).

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace atrium::test {

/// The `id` of a 2xx answer that created or names an entity; fails the test (showing the
/// status and body) otherwise.
inline std::string id_of(const http_reply& r) {
  INFO(r.status << " " << r.body);
  REQUIRE(r.status >= 200);
  REQUIRE(r.status < 300);
  REQUIRE(r.json.contains("id"));
  return r.json.at("id").get<std::string>();
}

/// Every event of `stream` (`job-<id>`, `security`, …) as the API serves them, in
/// version order, read by `reader` in pages of 1000; fails the test unless each page
/// answers 200. Returns a JSON array of envelopes.
inline nlohmann::json stream_events(const http_client& reader, const std::string& stream) {
  auto out = nlohmann::json::array();
  for (std::uint64_t from = 1;;) {
    auto page = reader.get("/v1/streams/" + stream + "?limit=1000&from_version=" + std::to_string(from));
    INFO(stream << ": " << page.status << " " << page.body);
    REQUIRE(page.status == 200);
    for (auto& e : page.json.at("events")) out.push_back(std::move(e));
    if (page.json.at("next").is_null()) break;
    from = page.json.at("next").get<std::uint64_t>();
  }
  return out;
}

/// The global log position of the last event of `stream` (which must have one).
inline std::uint64_t last_position(const http_client& reader, const std::string& stream) {
  const auto events = stream_events(reader, stream);
  INFO(stream);
  REQUIRE_FALSE(events.empty());
  return events.back().at("position").get<std::uint64_t>();
}

/// Every event of job `job`'s stream (`stream_events` of `job-<id>`).
inline nlohmann::json job_events(const http_client& reader, const std::string& job) {
  return stream_events(reader, "job-" + job);
}

/// The strings of a JSON array of strings, in order.
inline std::vector<std::string> strings_of(const nlohmann::json& array) {
  std::vector<std::string> out;
  for (const auto& s : array) out.push_back(s.get<std::string>());
  return out;
}

/// The `type` of each event, in order.
inline std::vector<std::string> types_of(const nlohmann::json& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.at("type").get<std::string>());
  return out;
}

/// How many of `events` are of `type`.
inline std::size_t count_of(const nlohmann::json& events, const std::string& type) {
  return static_cast<std::size_t>(std::ranges::count(types_of(events), type));
}

/// How many of a job's `events` are terminal (succeeded, failed, cancelled, timed out):
/// exactly one once the job has finished.
inline std::size_t terminals(const nlohmann::json& events) {
  return count_of(events, "job.succeeded") + count_of(events, "job.failed") + count_of(events, "job.cancelled") +
         count_of(events, "job.timed_out");
}

/// Job `job`'s status as `reader` sees it once it is one of `wanted` (polled until
/// `limit`), else the last status seen ("" if the job was never readable).
inline std::string wait_status(const http_client& reader, const std::string& job,
                               const std::vector<std::string>& wanted,
                               std::chrono::seconds limit = std::chrono::seconds(30)) {
  std::string status;
  wait_until(
      [&] {
        auto r = reader.get("/v1/jobs/" + job);
        if (r.status != 200) return false;
        status = r.json.value("status", "");
        return std::ranges::find(wanted, status) != wanted.end();
      },
      limit);
  return status;
}

}  // namespace atrium::test
