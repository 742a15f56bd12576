//! The metadata quorum's RPCs on the controller listener: in a cluster, frames of Kafka's
//! `Vote` API and of the quorum's private AppendEntries / InstallSnapshot keys arriving on
//! a controller listener go to the quorum ([`Quorum::handler`](crate::cluster::quorum::Quorum::handler))
//! rather than to the handlers, so the controllers talk Raft on the same port as brokers
//! register and heartbeat, as Kafka's controllers serve `Vote` and `Fetch` of the metadata
//! partition on their controller listener.

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
    let handler = quorum.handler();
    Some(match handler.handle_frame(frame.clone()).await {
        Some(response) => Ok(Some(vec![response.freeze()])),
        None => Err(CloseReason::Malformed(format!(
            "a metadata quorum request (key {key}) that does not decode"
        ))),
    })
}
