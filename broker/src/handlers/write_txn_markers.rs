//! WriteTxnMarkers: appends COMMIT/ABORT markers to the named partitions (the request a
//! transaction coordinator sends partition leaders: in a cluster
//! [`crate::transactions::marker_sender`] sends it to every leader but itself, on the
//! leader's `inter.broker.listener.name` endpoint, which serves it as any broker listener
//! does; a coordinator writes its own partitions' markers directly, through the same
//! [`crate::transactions::markers::MarkerWriter`] entry point this handler calls, which
//! answers once the ISR has the marker).
//! A partition that does not exist gets `UNKNOWN_TOPIC_OR_PARTITION`. The sender needs
//! ALTER or CLUSTER_ACTION on the cluster (Kafka's `handleWriteTxnMarkersRequest`), else
//! every partition of every marker is `CLUSTER_AUTHORIZATION_FAILED`.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WriteTxnMarkersRequest,
};
use gregor_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
};

use super::RequestContext;
use crate::broker::BrokerMarkers;
use crate::transactions::markers::MarkerWriter;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 2 };

/// The response shape for `request`: every partition of every marker, its error code
/// from `code(marker, topic, partition)`.
fn results(
    request: &WriteTxnMarkersRequest,
    mut code: impl FnMut(&WritableTxnMarker, &str, i32) -> i16,
) -> Vec<WritableTxnMarkerResult> {
    request
        .markers
        .iter()
        .map(|marker| WritableTxnMarkerResult {
            producer_id: marker.producer_id,
            topics: marker
                .topics
                .iter()
                .map(|topic| WritableTxnMarkerTopicResult {
                    name: topic.name.clone(),
                    partitions: topic
                        .partition_indexes
                        .iter()
                        .map(|&partition_index| WritableTxnMarkerPartitionResult {
                            partition_index,
                            error_code: code(marker, &topic.name, partition_index),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// Answers a WriteTxnMarkers request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let checker = super::authorize::Checker::new(ctx);
    let denied = !checker.cluster(crate::authorizer::AclOperation::Alter)
        && !checker.cluster(crate::authorizer::AclOperation::ClusterAction);
    if denied {
        return WriteTxnMarkersResponse {
            markers: results(&request, |_, _, _| error_code::CLUSTER_AUTHORIZATION_FAILED),
            ..Default::default()
        };
    }
    let broker = ctx.broker.clone();
    let task = tokio::task::spawn_blocking(move || {
        let writer = BrokerMarkers {
            broker: std::sync::Arc::downgrade(&broker),
        };
        let image = broker.image();
        results(&request, |marker, topic, p| {
            let exists = image.topic(topic).and_then(|t| t.partition(p)).is_some();
            if !exists {
                return error_code::UNKNOWN_TOPIC_OR_PARTITION;
            }
            match writer.write_marker(
                topic,
                p,
                marker.producer_id,
                marker.producer_epoch,
                marker.coordinator_epoch,
                marker.transaction_result,
            ) {
                Ok(()) => error_code::NONE,
                Err(code) => code,
            }
        })
    });
    WriteTxnMarkersResponse {
        markers: task.await.unwrap_or_default(),
        ..Default::default()
    }
}
