#pragma once
/// Exhaustive handling of an aggregate's events (the pattern of every
/// events/<entity>/<entity>_decider.cpp).
///
/// evolve: one overload per event type, `void evolve(<entity>_state&, const <event>&)`,
/// dispatched by `std::visit` over the stream's event variant, next to a fallback
///
///     template <class E>
///     void evolve(<entity>_state&, const E&) { static_assert(no_handler_for<E>, "..."); }
///
/// An exact non-template overload beats the template, so the fallback is chosen only for
/// an alternative without its own overload, and then its `static_assert` stops the
/// build, naming the type (without the fallback, such a call would silently convert the
/// event back to the variant and pick the public `evolve(State, const Variant&)`).
///
/// decide: a decider builds its events through `proposed_event emit(const <event>& e)`,
/// one overload per event it builds, so building an event of another stream fails to
/// compile, and `git grep "<event>&"` lists where an event type is decided and evolved.

namespace atrium {

/// `false` for every type; the condition of a fallback's `static_assert`, which then
/// fires only when the fallback is instantiated.
template <class...>
inline constexpr bool no_handler_for = false;

}  // namespace atrium
