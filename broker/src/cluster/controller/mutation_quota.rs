//! The controller mutation quota (KIP-599) as the controller sees it: Kafka's
//! `ControllerRequestContext.applyPartitionChangeQuota`. CreateTopics, CreatePartitions and
//! DeleteTopics ask it once per topic that passed every other check, with the number of
//! partitions the topic creates, adds or deletes; a refusal is that topic's error and the
//! topic is left alone. What the quota is (strict, permissive, per client) is decided by the
//! request's caller (`crate::quotas::controller_mutation`); the controller only asks.

use super::ApiError;

/// A quota on partition mutations, asked once per topic.
pub trait MutationQuota: Send + Sync {
    /// Charges `partitions` mutations, or refuses them with the topic's error
    /// (`THROTTLING_QUOTA_EXCEEDED`).
    fn apply_partition_change(&self, partitions: usize) -> Result<(), ApiError>;
}

/// No quota: every mutation is accepted (Kafka's `UnboundedControllerMutationQuota`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Unbounded;

impl MutationQuota for Unbounded {
    fn apply_partition_change(&self, _partitions: usize) -> Result<(), ApiError> {
        Ok(())
    }
}
