//! WriteTxnMarkers: appends COMMIT/ABORT markers to the named partitions (the request a
//! transaction coordinator sends partition leaders; on this single node the coordinator
//! writes its markers directly, through the same
//! [`crate::transactions::markers::MarkerWriter`] entry point this handler calls).
//! A partition that does not exist gets `UNKNOWN_TOPIC_OR_PARTITION`. The sender needs
//! ALTER or CLUSTER_ACTION on the cluster (Kafka's `handleWriteTxnMarkersRequest`), else
//! every partition of every marker is `CLUSTER_AUTHORIZATION_FAILED`.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use gregor_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
};

use super::RequestContext;
use crate::broker::BrokerMarkers;
use crate::transactions::markers::MarkerWriter;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 2 };

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
            markers: request
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
                                    error_code: error_code::CLUSTER_AUTHORIZATION_FAILED,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let broker = ctx.broker.clone();
    let task = tokio::task::spawn_blocking(move || {
        let writer = BrokerMarkers {
            broker: std::sync::Arc::downgrade(&broker),
        };
        let image = broker.image();
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
                            .map(|&p| {
                                let exists = image
                                    .topic(&topic.name)
                                    .and_then(|t| t.partition(p))
                                    .is_some();
                                let code = if !exists {
                                    error_code::UNKNOWN_TOPIC_OR_PARTITION
                                } else {
                                    match writer.write_marker(
                                        &topic.name,
                                        p,
                                        marker.producer_id,
                                        marker.producer_epoch,
                                        marker.coordinator_epoch,
                                        marker.transaction_result,
                                    ) {
                                        Ok(()) => error_code::NONE,
                                        Err(code) => code,
                                    }
                                };
                                WritableTxnMarkerPartitionResult {
                                    partition_index: p,
                                    error_code: code,
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    });
    WriteTxnMarkersResponse {
        markers: task.await.unwrap_or_default(),
        ..Default::default()
    }
}
