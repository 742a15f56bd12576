//! AlterPartition (controller listener): a partition leader changes the ISR
//! ([`crate::cluster::Controller::alter_partition`], where the checks are). v2 gives the
//! new ISR as ids (`new_isr`), v3 with broker epochs (`new_isr_with_epochs`); both reach
//! the controller as given. CLUSTER_ACTION on the cluster is required, as in Kafka.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::alter_partition_request::AlterPartitionRequest;
use gregor_protocol::messages::alter_partition_response::AlterPartitionResponse;

use super::authorize::Checker;
use super::{RequestContext, controller_failure};
use crate::authorizer::AclOperation;

/// Versions served (Kafka 4's).
pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 3 };

/// Answers an AlterPartition request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    mut request: AlterPartitionRequest,
) -> AlterPartitionResponse {
    if !Checker::new(ctx).cluster(AclOperation::ClusterAction) {
        return AlterPartitionResponse {
            error_code: error_code::CLUSTER_AUTHORIZATION_FAILED,
            ..Default::default()
        };
    }
    if version < 3 {
        // Only `new_isr` exists below v3: never read epochs the request cannot carry.
        for topic in &mut request.topics {
            for partition in &mut topic.partitions {
                partition.new_isr_with_epochs.clear();
            }
        }
    }
    match ctx
        .broker
        .controller
        .run(move |controller| controller.alter_partition(&request))
        .await
    {
        Ok(response) => response,
        Err(err) => AlterPartitionResponse {
            error_code: controller_failure(&err).code,
            ..Default::default()
        },
    }
}
