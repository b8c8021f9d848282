#pragma once
/// Supervision helpers shared by the core actors (docs/architecture.md, "Supervision
/// and failure"):
///
/// * `core_directory`: the current handle of each core actor and whether it is up. The
///   supervisor (runtime.cpp) replaces a failed actor's handle when it restarts it;
///   actors look their peers up here at send time, so a restart needs no rewiring.
/// * `exactly_once`: wraps a completion callback so that it is called exactly once —
///   with the outcome, or with a fallback if every copy of it is destroyed first (the
///   message carrying it was dropped by an actor that stopped).
/// * `owed_reply`: the same for a CAF response promise: if the actor holding it stops
///   (an exception, an exit) before delivering, the requester gets the fallback reply
///   instead of waiting forever.

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>
#include <caf/typed_response_promise.hpp>

#include <exception>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "actors/interfaces.hpp"

namespace atrium::actors {

/// An exception handler for CAF actors: logs the exception (one line, with the actor's
/// name) and lets the actor stop with `runtime_error`; its supervisor reacts to the exit.
caf::error log_actor_exception(caf::scheduled_actor* self, std::exception_ptr& e);

/// The supervised core actors.
enum class core_role : std::uint8_t {
  hub,
  runner,
  writer,
  registry,
  gateway,
  relay,
  dispatcher,
  scheduler,
  reconciler
};
inline constexpr std::size_t k_core_roles = 9;

/// The actor's name in logs and health reports (e.g. `event-store-writer`).
[[nodiscard]] const char* role_name(core_role r);

/// The handle type of each core role: the typed interfaces of actors/interfaces.hpp
/// for the writer, the registry, the runner, the hub and the job dispatcher; `caf::actor` (dynamically
/// typed) for the gateway, the relay, the scheduler and the container reconciler.
template <core_role R>
struct role_handle {
  using type = caf::actor;
};
template <>
struct role_handle<core_role::writer> {
  using type = writer_actor;
};
template <>
struct role_handle<core_role::registry> {
  using type = registry_actor;
};
template <>
struct role_handle<core_role::runner> {
  using type = runner_actor;
};
template <>
struct role_handle<core_role::hub> {
  using type = hub_actor;
};
template <>
struct role_handle<core_role::dispatcher> {
  using type = dispatcher_actor;
};
template <core_role R>
using role_handle_t = typename role_handle<R>::type;

/// Current handles of the core actors. Thread-safe. Handles are stored untyped (for
/// supervision: monitor, exit) and handed out with the role's interface by `get<R>()`;
/// they are stored only through `set<R>` (typed) or from a factory made by
/// `make_factory<R>` (runtime.cpp), so the handle under a role always has its interface.
class core_directory {
 public:
  /// The actor now serving `R`, with its interface (invalid if none was ever started).
  template <core_role R>
  [[nodiscard]] role_handle_t<R> get() const {
    return caf::actor_cast<role_handle_t<R>>(get(R));
  }
  /// The actor now serving `r`, untyped (null if none was ever started).
  [[nodiscard]] caf::strong_actor_ptr get(core_role r) const {
    std::lock_guard lock(mu_);
    return entries_[index(r)].actor;
  }
  /// `a` serves `R` from now on, and is up.
  template <core_role R>
  void set(const role_handle_t<R>& a) {
    set(R, caf::actor_cast<caf::strong_actor_ptr>(a));
  }
  /// `a` (a handle of `r`'s interface) serves `r` from now on, and is up.
  void set(core_role r, caf::strong_actor_ptr a) {
    std::lock_guard lock(mu_);
    auto& e = entries_[index(r)];
    e.actor = std::move(a);
    e.present = true;
    e.up = true;
    e.why.clear();
  }
  /// `r` failed (`why`) and is being restarted.
  void mark_down(core_role r, std::string why) {
    std::lock_guard lock(mu_);
    auto& e = entries_[index(r)];
    e.up = false;
    e.why = std::move(why);
  }
  /// True while `r` runs (or was never started: an absent relay is not down).
  [[nodiscard]] bool up(core_role r) const {
    std::lock_guard lock(mu_);
    const auto& e = entries_[index(r)];
    return !e.present || e.up;
  }
  /// `<name>: <why>` for every core actor that is down.
  [[nodiscard]] std::vector<std::string> down() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < k_core_roles; ++i) {
      const auto& e = entries_[i];
      if (e.present && !e.up) out.push_back(std::string(role_name(static_cast<core_role>(i))) + ": " + e.why);
    }
    return out;
  }

 private:
  static std::size_t index(core_role r) { return static_cast<std::size_t>(r); }
  struct entry {
    caf::strong_actor_ptr actor;
    bool present = false;
    bool up = false;
    std::string why;
  };
  mutable std::mutex mu_;
  std::array<entry, k_core_roles> entries_;
};

/// `fn`, callable exactly once across all copies; if every copy is destroyed before any
/// is called, `dropped(fn)` is called instead (with the original function, to answer it).
template <class... Args>
std::function<void(Args...)> exactly_once(
    std::type_identity_t<std::function<void(Args...)>> fn,
    std::type_identity_t<std::function<void(std::function<void(Args...)>&)>> dropped) {
  struct state {
    std::mutex mu;
    std::function<void(Args...)> fn;
    std::function<void(std::function<void(Args...)>&)> dropped;
    ~state() {
      if (!fn || !dropped) return;
      try {
        dropped(fn);
      } catch (...) {
        // A completion that throws while the system stops has nobody left to tell.
      }
    }
  };
  auto s = std::make_shared<state>();
  s->fn = std::move(fn);
  s->dropped = std::move(dropped);
  return [s](Args... args) {
    std::function<void(Args...)> f;
    {
      std::lock_guard lock(s->mu);
      f = std::move(s->fn);
      s->fn = nullptr;
    }
    if (f) f(std::forward<Args>(args)...);
  };
}

/// A typed response promise (`self->make_response_promise<Reply>()`) that answers
/// `fallback()` if it is destroyed undelivered (its actor stopped). Copies share one
/// promise; the first `deliver` wins.
template <class Reply>
class owed_reply {
 public:
  owed_reply(caf::typed_response_promise<Reply> rp, std::function<Reply()> fallback)
      : s_(std::make_shared<state>(std::move(rp), std::move(fallback))) {}

  /// Delivers `r` unless something was delivered already.
  void deliver(Reply r) const {
    if (s_->rp.pending()) s_->rp.deliver(std::move(r));
  }

 private:
  struct state {
    state(caf::typed_response_promise<Reply> p, std::function<Reply()> f) : rp(std::move(p)), fallback(std::move(f)) {}
    ~state() {
      if (!rp.pending() || !fallback) return;
      try {
        rp.deliver(fallback());
      } catch (...) {
        // Nothing to answer with.
      }
    }
    caf::typed_response_promise<Reply> rp;
    std::function<Reply()> fallback;
  };
  std::shared_ptr<state> s_;
};

}  // namespace atrium::actors
