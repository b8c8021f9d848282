// The audit log as the query port reads it: filters, served entries and the walk over
// the `audit` projection's `entries` table (keyed by position_key, projections.hpp).
#include <algorithm>

#include "projections/queries.hpp"

namespace atrium {
namespace {

using nlohmann::json;

/// The entity type of a stream: its prefix before the first `-`, or the whole stream id
/// (`security`), as the audit projection records it.
std::string entity_of(const std::string& stream) { return stream.substr(0, stream.find('-')); }

/// A string field of an audit row, "" when absent or not a string (rows written before a
/// field existed lack it).
const std::string& text(const json& row, const char* key) {
  static const std::string none;
  const auto it = row.find(key);
  return it != row.end() && it->is_string() ? it->get_ref<const std::string&>() : none;
}

/// An audit row as served: every field of the row, plus `entity`, `correlation_id`,
/// `client_address` and `user_agent` ("" when unknown) for rows stored before those.
json served_entry(const json& row) {
  json e = row.is_object() ? row : json::object();
  if (!e.contains("entity")) e["entity"] = entity_of(text(row, "stream"));
  for (const char* key : {"correlation_id", "client_address", "user_agent"}) {
    if (!e.contains(key) || !e[key].is_string()) e[key] = "";
  }
  return e;
}

class audit_scanner final : public ports::audit_walk {
 public:
  audit_scanner(const ports::read_model_store& store, ports::audit_filter filter, bool backward, std::size_t batch)
      : store_(store), filter_(std::move(filter)), backward_(backward), batch_(batch) {
    const auto start = backward ? filter_.before : filter_.after;
    if (start) cursor_ = position_key(*start);
  }

  result<void> fill(json& out, std::size_t want, std::size_t max_rows) override {
    std::size_t examined = 0;
    while (!exhausted_ && want > 0 && examined < max_rows) {
      const auto ask = std::min(batch_, max_rows - examined);
      auto rows = store_.scan("audit", "entries", "", cursor_, ask, backward_);
      if (!rows) return std::unexpected(rows.error());
      std::size_t consumed = 0;
      for (const auto& r : *rows) {
        const auto position = r.value.value("position", std::uint64_t{0});
        if (backward_ ? (filter_.after && position <= *filter_.after)
                      : (filter_.before && position >= *filter_.before)) {
          exhausted_ = true;  // reached the far bound
          break;
        }
        ++consumed;
        ++examined;
        cursor_ = r.key;
        last_ = position;
        if (audit_matches(filter_, r.value)) {
          out.push_back(served_entry(r.value));
          if (--want == 0) break;
        }
      }
      // A short batch all consumed means the walk reached the end of the log.
      if (rows->size() < ask && consumed == rows->size()) exhausted_ = true;
    }
    return {};
  }

  bool exhausted() const override { return exhausted_; }
  std::uint64_t last_examined() const override { return last_; }

 private:
  const ports::read_model_store& store_;
  ports::audit_filter filter_;
  bool backward_;
  std::size_t batch_;
  std::string cursor_;
  std::uint64_t last_ = 0;
  bool exhausted_ = false;
};

}  // namespace

bool audit_matches(const ports::audit_filter& f, const json& row) {
  if (f.actor) {
    const auto& a = text(row, "actor");
    if (a != *f.actor && a != "user-" + *f.actor) return false;
  }
  if (f.stream && text(row, "stream") != *f.stream) return false;
  if (f.entity) {
    const auto& e = text(row, "entity");
    if ((e.empty() ? entity_of(text(row, "stream")) : e) != *f.entity) return false;
  }
  if (f.type && text(row, "type") != *f.type) return false;
  if (f.since || f.until) {
    const auto& t = text(row, "time");
    if ((f.since && t < *f.since) || (f.until && t >= *f.until)) return false;
  }
  return true;
}

std::unique_ptr<ports::audit_walk> make_audit_walk(const ports::read_model_store& rows,
                                                   const ports::audit_filter& filter, bool backward,
                                                   std::size_t batch) {
  return std::make_unique<audit_scanner>(rows, filter, backward, batch);
}

}  // namespace atrium
