#include "actors/hub_core.hpp"

#include <algorithm>

namespace atrium::actors {
namespace {

constexpr std::size_t k_max_cached_jobs = 100000;

/// The id after `prefix` in a stream id (`project-<id>` → `<id>`), or nullopt.
std::optional<std::string> suffix(const std::string& stream, std::string_view prefix) {
  if (!std::string_view(stream).starts_with(prefix)) return std::nullopt;
  return stream.substr(prefix.size());
}

/// The public envelope as JSON text, once per event, shared by every subscriber.
std::shared_ptr<const std::string> serialize(const envelope& e) {
  return std::make_shared<const std::string>(
      to_public_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

hub_core::hub_core(const ports::event_store& store, job_lookup project_of_job, std::uint64_t start, std::size_t page,
                   std::chrono::milliseconds stall_limit)
    : store_(store),
      project_of_job_(std::move(project_of_job)),
      page_(std::max<std::size_t>(page, 1)),
      stall_limit_(stall_limit),
      dispatched_(start),
      horizon_(start) {}

bool hub_core::subscribe(const std::shared_ptr<ports::subscriber>& s, ports::subscription sub) {
  // A stream or project named twice is followed once (and held once).
  for (auto* list : {&sub.filter.streams, &sub.filter.projects}) {
    std::sort(list->begin(), list->end());
    list->erase(std::unique(list->begin(), list->end()), list->end());
    list->shrink_to_fit();
  }
  if (auto it = subs_.find({s.get(), sub.id}); it != subs_.end()) erase(it->second);
  auto st = std::make_shared<sub_state>();
  st->owner = s;
  st->cursor = sub.after;
  st->live = sub.after >= dispatched_;
  st->spec = std::move(sub);
  subs_.emplace(key{s.get(), st->spec.id}, st);
  index(st);
  return !st->live;
}

void hub_core::unsubscribe(const std::shared_ptr<ports::subscriber>& s, const std::string& id) {
  auto it = subs_.find({s.get(), id});
  if (it == subs_.end()) return;
  auto st = it->second;
  const auto resume = resume_of(*st);
  erase(st);
  s->ended(id, std::nullopt, resume);
}

void hub_core::drop(const ports::subscriber* s) {
  std::vector<sub_ptr> mine;
  for (auto it = subs_.lower_bound({s, std::string()}); it != subs_.end() && it->first.first == s; ++it) {
    mine.push_back(it->second);
  }
  for (const auto& st : mine) erase(st);
}

void hub_core::index(const sub_ptr& s) {
  const auto& f = s->spec.filter;
  if (f.all) all_.insert(s);
  for (const auto& stream : f.streams) by_stream_[stream].insert(s);
  for (const auto& project : f.projects) by_project_[project].insert(s);
}

void hub_core::unindex(const sub_ptr& s) {
  const auto& f = s->spec.filter;
  all_.erase(s);
  auto remove = [&](auto& map, const std::string& k) {
    auto it = map.find(k);
    if (it == map.end()) return;
    it->second.erase(s);
    if (it->second.empty()) map.erase(it);
  };
  for (const auto& stream : f.streams) remove(by_stream_, stream);
  for (const auto& project : f.projects) remove(by_project_, project);
}

void hub_core::erase(const sub_ptr& s) {
  if (!s->owner) return;  // already gone
  unindex(s);
  subs_.erase({s->owner.get(), s->spec.id});
  s->owner.reset();
}

std::optional<std::string> hub_core::project_of(const envelope& e) {
  if (auto id = suffix(e.stream, "project-")) return id;
  const auto job = suffix(e.stream, "job-");
  if (!job && !e.stream.starts_with("schedule-")) return std::nullopt;
  if (auto it = job_projects_.find(e.stream); it != job_projects_.end()) return it->second;
  // The first event of a job's or schedule's stream names its project.
  const auto* first = job ? "job.submitted" : "schedule.created";
  const auto named = [&](const envelope& f) -> std::optional<std::string> {
    if (f.type == first && f.data.is_object() && f.data.contains("project_id") && f.data["project_id"].is_string()) {
      return f.data["project_id"].get<std::string>();
    }
    return std::nullopt;
  };
  auto project = named(e);
  if (!project && job && project_of_job_) project = project_of_job_(*job);
  if (!project) {
    if (auto head = store_.read_stream(e.stream, 1, 1); head && !head->empty()) project = named(head->front());
  }
  if (project) {
    if (job_projects_.size() >= k_max_cached_jobs) job_projects_.clear();
    job_projects_.emplace(e.stream, *project);
  }
  return project;
}

bool hub_core::matches(const sub_state& s, const envelope& e) {
  const auto& f = s.spec.filter;
  if (f.all) return true;
  if (std::find(f.streams.begin(), f.streams.end(), e.stream) != f.streams.end()) return true;
  if (f.projects.empty()) return false;
  const auto project = project_of(e);
  return project && std::find(f.projects.begin(), f.projects.end(), *project) != f.projects.end();
}

std::uint64_t hub_core::resume_of(const sub_state& s) const { return s.live ? std::max(s.cursor, horizon_) : s.cursor; }

void hub_core::recheck(const envelope& e) {
  std::vector<sub_ptr> affected;
  if (e.type == "project.member_removed" || e.type == "project.group_removed") {
    const auto project = suffix(e.stream, "project-").value_or("");
    std::set<sub_ptr> hit;
    if (auto it = by_project_.find(project); it != by_project_.end()) hit.insert(it->second.begin(), it->second.end());
    // Stream subscriptions may name the project's stream or its jobs': re-check them all.
    for (const auto& [k, s] : subs_) {
      if (!s->spec.filter.streams.empty()) hit.insert(s);
    }
    affected.assign(hit.begin(), hit.end());
  } else if (e.type == "group.member_removed") {
    for (const auto& [k, s] : subs_) affected.push_back(s);
  } else if (e.type == "user.disabled" || e.type == "user.role_revoked") {
    const auto user = suffix(e.stream, "user-").value_or("");
    for (const auto& [k, s] : subs_) {
      if (s->owner->user_id() == user) affected.push_back(s);
    }
  } else {
    return;
  }
  for (const auto& s : affected) {
    if (!s->owner) continue;
    const auto& f = s->spec.filter;
    bool ok = !f.all || s->owner->may_read("");
    for (const auto& stream : f.streams) ok = ok && s->owner->may_read(stream);
    for (const auto& project : f.projects) ok = ok && s->owner->may_read("project-" + project);
    if (ok) continue;
    auto owner = s->owner;
    const auto resume = resume_of(*s);
    const auto id = s->spec.id;
    erase(s);
    owner->ended(id, error{errc::forbidden, "subscription ended: read access was revoked"}, resume);
  }
}

bool hub_core::give(const sub_ptr& s, const envelope& e, const std::shared_ptr<const std::string>& json) {
  if (!s->owner->deliver(s->spec.id, e, json)) {
    overflow(s->owner.get());
    return false;
  }
  s->cursor = e.position;
  return true;
}

void hub_core::overflow(const ports::subscriber* owner) {
  std::vector<sub_ptr> mine;
  for (auto it = subs_.lower_bound({owner, std::string()}); it != subs_.end() && it->first.first == owner; ++it) {
    mine.push_back(it->second);
  }
  if (mine.empty()) return;
  auto keep = mine.front()->owner;  // the subscriber outlives the erasures below
  std::vector<std::pair<std::string, std::uint64_t>> resume;
  for (const auto& s : mine) {
    // Live dispatch of position p sets horizon_ = p - 1 first, so the subscription that
    // failed (and any other not yet given p) resumes after p - 1.
    resume.emplace_back(s->spec.id, resume_of(*s));
    erase(s);
  }
  keep->overflowed(resume);
}

result<void> hub_core::advance(std::uint64_t head) {
  while (dispatched_ < head) {
    auto page = store_.read_all(dispatched_, std::min<std::uint64_t>(page_, head - dispatched_));
    if (!page) return std::unexpected(page.error());
    if (page->empty()) break;
    for (const auto& e : *page) {
      if (e.position > head) break;
      horizon_ = e.position - 1;
      recheck(e);
      std::vector<sub_ptr> targets(all_.begin(), all_.end());
      if (auto it = by_stream_.find(e.stream); it != by_stream_.end()) {
        targets.insert(targets.end(), it->second.begin(), it->second.end());
      }
      if (!by_project_.empty()) {
        if (auto project = project_of(e)) {
          if (auto it = by_project_.find(*project); it != by_project_.end()) {
            targets.insert(targets.end(), it->second.begin(), it->second.end());
          }
        }
      }
      std::sort(targets.begin(), targets.end());
      targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
      std::shared_ptr<const std::string> json;
      for (const auto& s : targets) {
        if (!s->owner || !s->live || e.position <= s->cursor) continue;
        if (!json) json = serialize(e);
        (void)give(s, e, json);
      }
      dispatched_ = e.position;
      horizon_ = e.position;
    }
  }
  return {};
}

result<hub_core::catch_up_report> hub_core::catch_up(std::size_t max_pages, clock::time_point now) {
  std::vector<sub_ptr> lagging;
  for (const auto& [k, s] : subs_) {
    if (!s->live) lagging.push_back(s);
  }
  catch_up_report report;
  for (const auto& s : lagging) {
    if (!s->owner) continue;
    const auto start = s->cursor;
    bool congested = false;
    for (std::size_t pages = 0; s->owner && pages < max_pages && s->cursor < dispatched_ && !congested; ++pages) {
      auto page = store_.read_all(s->cursor, std::min<std::uint64_t>(page_, dispatched_ - s->cursor));
      if (!page) return std::unexpected(page.error());
      if (page->empty()) {
        s->cursor = dispatched_;  // nothing stored there: nothing to give
        break;
      }
      for (const auto& e : *page) {
        if (e.position > dispatched_) break;
        if (matches(*s, e)) {
          // Replay waits for a congested subscriber rather than overflow its queue.
          if (s->owner->congested()) {
            congested = true;
            break;
          }
          if (!give(s, e, serialize(e))) break;
        }
        s->cursor = e.position;
      }
    }
    if (!s->owner) continue;
    if (s->cursor > start) {
      report.progressed = true;
      s->stalled_since.reset();
    } else if (congested) {
      if (!s->stalled_since) s->stalled_since = now;
      if (now - *s->stalled_since >= stall_limit_) {
        overflow(s->owner.get());  // a consumer that stopped reading during replay
        continue;
      }
    }
    if (s->cursor >= dispatched_) {
      s->live = true;
    } else {
      report.behind = true;
    }
  }
  return report;
}

}  // namespace atrium::actors
