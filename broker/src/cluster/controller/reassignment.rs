//! Partition reassignment (AlterPartitionReassignments, ListPartitionReassignments), as
//! Kafka's `ReplicationControlManager` runs it.
//!
//! A reassignment moves a partition to a target replica set in stages:
//! 1. one `PartitionChangeRecord` makes the replica set the target followed by the
//!    replicas leaving (`PartitionReassignmentReplicas`: `removing` = current - target,
//!    `adding` = target - current, both in broker id order) and records both lists; the
//!    brokers added create their logs and fetch from the leader;
//! 2. the leader adds each new replica to the ISR once it has caught up (AlterPartition);
//! 3. the change that gives the ISR every target replica also completes the reassignment
//!    (`PartitionChangeBuilder`'s completion, in [`super::partition_change`]): the leaving
//!    replicas go from the replica set and the ISR, both lists are cleared, and a leader
//!    that left hands over to the first target replica in the ISR. The brokers removed
//!    stop and delete their logs.
//!
//! A target the ISR already satisfies (a reordering, a shrink to ISR members) completes in
//! the first record. Per partition, in Kafka's order: an unknown topic or partition is
//! `UNKNOWN_TOPIC_OR_PARTITION`; with `AllowReplicationFactorChange` false (v1) a target of
//! another size than the set the partition is heading for is `INVALID_REPLICATION_FACTOR`;
//! an empty target, a broker named twice or one not registered (negative ids included) is
//! `INVALID_REPLICA_ASSIGNMENT`. Null replicas cancel: `NO_REASSIGNMENT_IN_PROGRESS` when
//! none is, else `PartitionReassignmentRevert` (the adding replicas leave the replica set
//! and the ISR, the removing ones stay; an ISR left empty takes the first original replica,
//! which is an unclean election refused with `INVALID_REPLICA_ASSIGNMENT` unless the topic
//! allows it). The accepted changes are written in one batch.

use gregor_protocol::MetadataRecord;
use gregor_protocol::metadata_frame::VersionedRecord;

use super::brokers::unclean_enabled;
use super::partition_change::{Election, PARTITION_CHANGE_RECORD_VERSION, PartitionChangeBuilder};
use super::{
    ApiError, Controller, ControllerError, MAX_RECORDS_PER_USER_OP, default_dir, is_active,
};
use crate::cluster::image::{MetadataImage, PartitionImage};
use gregor_protocol::error_code::*;

/// One partition of an AlterPartitionReassignments request: its index and target replicas
/// (`None` cancels).
pub type ReassignmentTarget = (i32, Option<Vec<i32>>);

/// The result for one topic: each partition with its error, `None` for success.
pub type TopicReassignment = (String, Vec<(i32, Option<ApiError>)>);

/// A partition being reassigned, as ListPartitionReassignments reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// The partition index.
    pub partition: i32,
    /// The whole replica set: target replicas, then those leaving.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

impl Controller {
    /// Starts, changes or cancels reassignments (see the module docs).
    /// `allow_replication_factor_change` is the request's v1 field (true in v0).
    pub fn alter_partition_reassignments(
        &self,
        allow_replication_factor_change: bool,
        topics: &[(String, Vec<ReassignmentTarget>)],
    ) -> Result<Vec<TopicReassignment>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let mut records = Vec::new();
        let mut results = Vec::new();
        let (mut done, mut asked) = (0usize, 0usize);
        for (topic, partitions) in topics {
            let mut answered = Vec::new();
            for (index, target) in partitions {
                asked += 1;
                let outcome = reassign(
                    self,
                    &image,
                    topic,
                    *index,
                    target.as_deref(),
                    allow_replication_factor_change,
                )
                .and_then(|record| {
                    if let Some(record) = record {
                        // Kafka's BoundedList: past the limit the partition fails.
                        if records.len() >= MAX_RECORDS_PER_USER_OP {
                            return Err(ApiError::new(
                                UNKNOWN_SERVER_ERROR,
                                format!(
                                    "Cannot change more than {MAX_RECORDS_PER_USER_OP} \
                                     partitions in one request."
                                ),
                            ));
                        }
                        records.push(record);
                    }
                    Ok(())
                });
                match outcome {
                    Ok(()) => {
                        done += 1;
                        answered.push((*index, None));
                    }
                    Err(error) => {
                        tracing::info!(
                            topic = topic.as_str(),
                            partition = index,
                            code = error.code,
                            "partition reassignment refused: {}",
                            error.message.as_deref().unwrap_or_default()
                        );
                        answered.push((*index, Some(error)));
                    }
                }
            }
            results.push((topic.clone(), answered));
        }
        tracing::info!("altered {done} of {asked} partition reassignment(s)");
        self.commit(&mut log, records)?;
        Ok(results)
    }

    /// The reassignments in progress: of every partition (`None`), or of the partitions
    /// asked (unknown topics and partitions, and those not moving, are left out). Topics
    /// without a partition to report are left out, as Kafka does.
    pub fn list_partition_reassignments(
        &self,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, Vec<OngoingReassignment>)> {
        let image = self.image();
        let ongoing = |p: &PartitionImage, index: i32| {
            p.is_reassigning().then(|| OngoingReassignment {
                partition: index,
                replicas: p.replicas.clone(),
                adding: p.adding_replicas.clone(),
                removing: p.removing_replicas.clone(),
            })
        };
        let mut out = Vec::new();
        match topics {
            None => {
                let mut all: Vec<_> = image.topics().collect();
                all.sort_by(|a, b| a.name.cmp(&b.name));
                for topic in all {
                    let moving: Vec<_> = topic
                        .partitions
                        .iter()
                        .filter_map(|(index, p)| ongoing(p, *index))
                        .collect();
                    if !moving.is_empty() {
                        out.push((topic.name.clone(), moving));
                    }
                }
            }
            Some(asked) => {
                for (name, indexes) in asked {
                    let Some(topic) = image.topic(name) else {
                        continue;
                    };
                    let moving: Vec<_> = indexes
                        .iter()
                        .filter_map(|index| ongoing(topic.partitions.get(index)?, *index))
                        .collect();
                    if !moving.is_empty() {
                        out.push((topic.name.clone(), moving));
                    }
                }
            }
        }
        out
    }
}

/// Kafka's `alterPartitionReassignment` for one partition: the record to write, if any.
fn reassign(
    controller: &Controller,
    image: &MetadataImage,
    topic: &str,
    index: i32,
    target: Option<&[i32]>,
    allow_replication_factor_change: bool,
) -> Result<Option<VersionedRecord>, ApiError> {
    let Some(t) = image.topic(topic) else {
        return Err(ApiError::new(
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("Unable to find a topic named {topic}."),
        ));
    };
    let Some(partition) = t.partitions.get(&index) else {
        return Err(ApiError::new(
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("Unable to find partition {topic}:{index}."),
        ));
    };
    let acceptable = |r: i32| is_active(image, r);
    let dir = |r: i32| default_dir(image, r);
    let builder =
        PartitionChangeBuilder::new(partition, t.id, index, &acceptable).default_dir(&dir);
    let change = match target {
        None => {
            if !partition.is_reassigning() {
                return Err(ApiError::new(
                    NO_REASSIGNMENT_IN_PROGRESS,
                    "No partition reassignment is in progress.",
                ));
            }
            let revert = revert(partition)?;
            let unclean = unclean_enabled(controller, image, topic);
            if revert.unclean && !unclean {
                return Err(ApiError::new(
                    INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Unable to revert partition assignment for {topic}:{index} because \
                         it would require an unclean leader election."
                    ),
                ));
            }
            let builder = if unclean {
                builder.election(Election::Unclean)
            } else {
                builder
            };
            builder
                .target_isr(revert.isr)
                .target_replicas(revert.replicas)
                .target_removing(Vec::new())
                .target_adding(Vec::new())
                .build()
        }
        Some(target) => {
            if !allow_replication_factor_change {
                check_replication_factor_unchanged(partition, target.len())?;
            }
            validate_target(image, target)?;
            let plan = plan(&partition.replicas, target);
            let mut builder = builder;
            if plan.replicas != partition.replicas {
                builder = builder.target_replicas(plan.replicas);
            }
            if !plan.removing.is_empty() {
                builder = builder.target_removing(plan.removing);
            }
            if !plan.adding.is_empty() {
                builder = builder.target_adding(plan.adding);
            }
            builder.build()
        }
    };
    Ok(change.map(|change| VersionedRecord {
        version: PARTITION_CHANGE_RECORD_VERSION,
        record: MetadataRecord::PartitionChange(change),
    }))
}

/// KIP-860's check: the target must be as long as the replica set the partition is heading
/// for (its replicas, plus those being added, less those being removed).
fn check_replication_factor_unchanged(
    partition: &PartitionImage,
    target: usize,
) -> Result<(), ApiError> {
    let current = if partition.is_reassigning() {
        let mut heading: Vec<i32> = partition
            .replicas
            .iter()
            .chain(&partition.adding_replicas)
            .copied()
            .filter(|r| !partition.removing_replicas.contains(r))
            .collect();
        heading.sort_unstable();
        heading.dedup();
        heading.len()
    } else {
        partition.replicas.len()
    };
    if current == target {
        Ok(())
    } else {
        Err(ApiError::new(
            INVALID_REPLICATION_FACTOR,
            format!("The replication factor is changed from {current} to {target}"),
        ))
    }
}

/// Kafka's `validateManualPartitionAssignment` (no replication factor to match): not
/// empty, every broker registered, none twice (checked in broker id order).
fn validate_target(image: &MetadataImage, target: &[i32]) -> Result<(), ApiError> {
    if target.is_empty() {
        return Err(ApiError::new(
            INVALID_REPLICA_ASSIGNMENT,
            "The manual partition assignment includes an empty replica list.",
        ));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for broker in sorted {
        if image.broker(broker).is_none() {
            return Err(ApiError::new(
                INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "The manual partition assignment includes broker {broker}, which is not \
                     a registered broker."
                ),
            ));
        }
        if previous == Some(broker) {
            return Err(ApiError::new(
                INVALID_REPLICA_ASSIGNMENT,
                format!("The manual partition assignment names broker {broker} more than once."),
            ));
        }
        previous = Some(broker);
    }
    Ok(())
}

/// The replica set and lists of a reassignment from `current` to `target` (Kafka's
/// `PartitionReassignmentReplicas`).
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    removing: Vec<i32>,
    adding: Vec<i32>,
    replicas: Vec<i32>,
}

fn plan(current: &[i32], target: &[i32]) -> Plan {
    let mut removing: Vec<i32> = current
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    removing.sort_unstable();
    removing.dedup();
    let mut adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !current.contains(r))
        .collect();
    adding.sort_unstable();
    adding.dedup();
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    Plan {
        removing,
        adding,
        replicas,
    }
}

/// What cancelling a reassignment goes back to (Kafka's `PartitionReassignmentRevert`).
#[derive(Debug, PartialEq, Eq)]
struct Revert {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// The ISR had only adding replicas: the first original replica is put in it alone.
    unclean: bool,
}

/// Fails when every replica is being added (no partition can be created so).
fn revert(partition: &PartitionImage) -> Result<Revert, ApiError> {
    let adding = &partition.adding_replicas;
    let replicas: Vec<i32> = partition
        .replicas
        .iter()
        .copied()
        .filter(|r| !adding.contains(r))
        .collect();
    let mut isr: Vec<i32> = partition
        .isr
        .iter()
        .copied()
        .filter(|r| !adding.contains(r))
        .collect();
    let mut unclean = false;
    if isr.is_empty() {
        let Some(first) = replicas.first() else {
            return Err(ApiError::new(
                INVALID_REPLICA_ASSIGNMENT,
                "Invalid replica assignment: every replica is being added.",
            ));
        };
        isr.push(*first);
        unclean = true;
    }
    Ok(Revert {
        replicas,
        isr,
        unclean,
    })
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
