// The typed interfaces of the core actors (actors/interfaces.hpp): what each accepts and
// answers is checked at compile time (the static_asserts below are the test; a wrong
// send elsewhere fails the same way), and the core directory hands each role's handle
// out with its interface.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "actors/interfaces.hpp"
#include "actors/supervision.hpp"

using namespace atrium;
using namespace atrium::actors;

namespace {

/// True when `Handle` accepts `Msg` (the check `send`, `anon_send` and `request` make).
template <class Handle, class Msg>
constexpr bool accepts = caf::response_type_unbox<caf::signatures_of_t<Handle>, caf::detail::type_list<Msg>>::valid;

/// The reply `Handle` gives to `Msg`, as a type list.
template <class Handle, class Msg>
using reply_to = caf::response_type_unbox_t<caf::signatures_of_t<Handle>, caf::detail::type_list<Msg>>;

static_assert(accepts<writer_actor, msg::append_request>);
static_assert(std::is_same_v<reply_to<writer_actor, msg::append_request>, caf::detail::type_list<msg::append_reply>>);
static_assert(!accepts<writer_actor, msg::append_done>, "only the writer's own commit callback sends append_done");
static_assert(!accepts<writer_actor, msg::log_advanced>);

static_assert(accepts<registry_actor, msg::project_command_msg>);
static_assert(accepts<registry_actor, msg::container_command_msg>);
static_assert(
    std::is_same_v<reply_to<registry_actor, msg::job_command_msg>, caf::detail::type_list<msg::command_reply>>);
static_assert(
    std::is_same_v<reply_to<registry_actor, msg::registry_stats_request>, caf::detail::type_list<msg::registry_stats>>);
static_assert(!accepts<registry_actor, msg::append_request>);

static_assert(accepts<runner_actor, msg::log_advanced>);
static_assert(std::is_same_v<reply_to<runner_actor, msg::log_advanced>, caf::detail::type_list<void>>);
static_assert(
    std::is_same_v<reply_to<runner_actor, msg::await_position>, caf::detail::type_list<msg::projections_ready>>);
static_assert(std::is_same_v<reply_to<runner_actor, msg::rebuild_request>, caf::detail::type_list<msg::rebuild_reply>>);
static_assert(!accepts<runner_actor, msg::hub_subscribe>);

static_assert(accepts<hub_actor, msg::hub_subscribe>);
static_assert(accepts<hub_actor, msg::hub_unsubscribe>);
static_assert(accepts<hub_actor, msg::hub_drop>);
static_assert(accepts<hub_actor, msg::log_advanced>);
static_assert(!accepts<hub_actor, msg::await_position>);

static_assert(std::is_same_v<role_handle_t<core_role::writer>, writer_actor>);
static_assert(std::is_same_v<role_handle_t<core_role::gateway>, caf::actor>);

/// A hub that does nothing: just something with the hub's interface.
// Takes an (unused) argument: CAF 0.17 spawns a function without arguments through a null
// shared_ptr<std::tuple<>> (UBSan: "reference binding to null pointer").
hub_actor::behavior_type idle_hub(hub_actor::pointer, int) {
  return {
      [](msg::hub_subscribe&) {},
      [](msg::hub_unsubscribe&) {},
      [](msg::hub_drop&) {},
      [](msg::log_advanced&) {},
  };
}

}  // namespace

TEST_CASE("the core directory hands out each role's actor with its interface", "[actors][interfaces]") {
  caf::actor_system_config config;
  caf::actor_system sys{config};
  core_directory dir;
  CHECK_FALSE(dir.get<core_role::hub>());
  CHECK(dir.up(core_role::hub));  // never started: not down

  auto hub = sys.spawn(idle_hub, 0);
  dir.set<core_role::hub>(hub);
  CHECK(dir.get<core_role::hub>() == hub);
  CHECK(dir.get(core_role::hub) == caf::actor_cast<caf::strong_actor_ptr>(hub));
  CHECK_FALSE(dir.get<core_role::runner>());

  dir.mark_down(core_role::hub, "test");
  CHECK_FALSE(dir.up(core_role::hub));
  REQUIRE(dir.down().size() == 1);
  CHECK(dir.down().front() == "subscription-hub: test");

  caf::anon_send_exit(hub, caf::exit_reason::user_shutdown);
}
