#pragma once
/// Typed interfaces of the core actors (CAF 0.17 `caf::typed_actor`): what each accepts
/// and answers, so that sending one a message it does not handle, or expecting a reply
/// it does not give, fails to compile.
///
///   entity actor ──append_request──▶ writer ──log_advanced──▶ runner ──log_advanced──▶ hub
///                                                                    └──log_advanced──▶ job dispatcher
///   gateway ──*_command_msg──▶ registry ──▶ entity actor        ▲
///   gateway ──await_position / projection_status_request / rebuild_request
///   actor_runtime ──hub_subscribe / hub_unsubscribe / hub_drop──▶ hub
///
/// Each interface here is the public one. An actor's implementation extends it with
/// the messages it sends itself (timer ticks, the store's commit callback), declared
/// in its .cpp: `writer_actor::extend<caf::reacts_to<msg::append_done>>` and so on. A
/// handle to the extended interface converts to the public one (a subset), never the
/// other way round, so no one else can send those.
///
/// The messages are those of actors/messages.hpp (process-local, announced with
/// `CAF_ALLOW_UNSAFE_MESSAGE_TYPE` there). The gateway, the relay, the supervisor and
/// the entity actors stay dynamically typed (`caf::actor`).

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace atrium::actors {

/// The event-store writer (store_writer.cpp).
/// * `append_request` → `append_reply`: appends atomically through the store's group
///   commit and answers once the batch is durable (or with the error; `unavailable` if
///   the writer stops first).
using writer_actor = caf::typed_actor<caf::replies_to<msg::append_request>::with<msg::append_reply>>;

/// The entity registry (entities.cpp).
/// * `<aggregate>_command_msg` → `command_reply`: routes the command to its entity's
///   actor (spawned and hydrated on first use) and answers with its outcome.
/// * `registry_stats_request` → `registry_stats`: live and passivated entity counts.
using registry_actor = caf::typed_actor<caf::replies_to<msg::user_command_msg>::with<msg::command_reply>,
                                        caf::replies_to<msg::project_command_msg>::with<msg::command_reply>,
                                        caf::replies_to<msg::group_command_msg>::with<msg::command_reply>,
                                        caf::replies_to<msg::connection_command_msg>::with<msg::command_reply>,
                                        caf::replies_to<msg::job_command_msg>::with<msg::command_reply>,
                                        caf::replies_to<msg::container_command_msg>::with<msg::command_reply>,
                                        caf::replies_to<msg::schedule_command_msg>::with<msg::command_reply>,
                                        caf::replies_to<msg::registry_stats_request>::with<msg::registry_stats>>;

/// The projection runner (projection_runner.cpp).
/// * `log_advanced`: the log grew to a position; read and apply the new events.
/// * `await_position` → `projections_ready`: answered once every projection applied
///   the position (`applied` = 0 if the runner stops first).
/// * `projection_status_request` → `projection_status_reply`: progress of each projection.
/// * `rebuild_request` → `rebuild_reply`: starts an online rebuild of one projection
///   (`not_found`, `failed_precondition` if one runs, `internal`).
using runner_actor =
    caf::typed_actor<caf::reacts_to<msg::log_advanced>,
                     caf::replies_to<msg::await_position>::with<msg::projections_ready>,
                     caf::replies_to<msg::projection_status_request>::with<msg::projection_status_reply>,
                     caf::replies_to<msg::rebuild_request>::with<msg::rebuild_reply>>;

/// The subscription hub (subscription_hub.cpp).
/// * `hub_subscribe`, `hub_unsubscribe`, `hub_drop`: start, end (answered to the
///   subscriber by `ended`) or silently drop subscriptions.
/// * `log_advanced`: projections applied the log up to a position; push what follows.
using hub_actor = caf::typed_actor<caf::reacts_to<msg::hub_subscribe>, caf::reacts_to<msg::hub_unsubscribe>,
                                   caf::reacts_to<msg::hub_drop>, caf::reacts_to<msg::log_advanced>>;

/// The job dispatcher (job_dispatcher.cpp).
/// * `log_advanced`: the projections applied the log up to a position (so the
///   connections read model knows every connection a job up to there names); read the
///   new job events and start what the slots allow.
using dispatcher_actor = caf::typed_actor<caf::reacts_to<msg::log_advanced>>;

}  // namespace atrium::actors
