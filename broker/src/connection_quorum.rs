//! The metadata quorum's RPCs on the controller listener: in a cluster, frames of Kafka's
//! `Vote` API and of the quorum's private AppendEntries / InstallSnapshot keys arriving on
//! a controller listener go to the quorum ([`Quorum::handler`](crate::cluster::quorum::Quorum::handler))
//! rather than to the handlers, so the controllers talk Raft on the same port as brokers
//! register and heartbeat, as Kafka's controllers serve `Vote` and `Fetch` of the metadata
//! partition on their controller listener.
//!
//! With an authorizer, the sender must hold CLUSTER_ACTION on the cluster, as Kafka's
//! `ControllerApis` asks of Vote (a node's principal is usually one of `super.users`).
//! Kafka answers CLUSTER_AUTHORIZATION_FAILED; here the connection is closed (the private
//! keys have no error answer the peer would read as a refusal), logged with the principal.

use bytes::Bytes;

use crate::cluster::quorum::network::{APPEND_ENTRIES_KEY, INSTALL_SNAPSHOT_KEY};
use crate::connection::CloseReason;
use crate::handlers::RequestContext;

/// Kafka's key of the Vote API.
const VOTE_KEY: i16 = 52;

/// Answers `frame` (API key `key`) through the quorum when it is one of the quorum's RPCs
/// on a controller listener of a cluster controller; `None` leaves it to the handlers.
pub(crate) async fn route(
    ctx: &RequestContext,
    key: i16,
    frame: &Bytes,
) -> Option<Result<Option<Vec<Bytes>>, CloseReason>> {
    if key != VOTE_KEY && key != APPEND_ENTRIES_KEY && key != INSTALL_SNAPSHOT_KEY {
        return None;
    }
    let broker = &ctx.broker;
    if !broker.config.is_controller() || !broker.config.is_controller_listener(&ctx.listener) {
        return None;
    }
    let quorum = broker.controller.quorum()?;
    let checker = crate::handlers::authorize::Checker::new(ctx);
    if !checker.cluster(crate::authorizer::AclOperation::ClusterAction) {
        return Some(Err(CloseReason::Unauthorized(format!(
            "{} may not send the metadata quorum's RPCs (key {key}): CLUSTER_ACTION on the \
             cluster is needed",
            ctx.principal
        ))));
    }
    let handler = quorum.handler();
    Some(match handler.handle_frame(frame.clone()).await {
        Some(response) => Ok(Some(vec![response.freeze()])),
        None => Err(CloseReason::Malformed(format!(
            "a metadata quorum request (key {key}) that does not decode"
        ))),
    })
}
