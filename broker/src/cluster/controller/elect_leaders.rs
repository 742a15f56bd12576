//! ElectLeaders, as Kafka's `ReplicationControlManager.electLeaders`: a PREFERRED election
//! moves the leadership to the first replica when it is in the ISR and active; an UNCLEAN
//! election gives a leaderless partition a leader, from outside the ISR if need be.
//! Per partition: `UNKNOWN_TOPIC_OR_PARTITION`, `ELECTION_NOT_NEEDED` (the preferred
//! replica already leads / the partition has a leader), `PREFERRED_LEADER_NOT_AVAILABLE` and
//! `ELIGIBLE_LEADERS_NOT_AVAILABLE` when no change can be made. All partitions (a null
//! list) leaves out those whose election was not needed. The changes are written in one
//! batch.

use gregor_protocol::MetadataRecord;
use gregor_protocol::metadata_frame::VersionedRecord;

use super::partition_change::{Election, PARTITION_CHANGE_RECORD_VERSION, PartitionChangeBuilder};
use super::{ApiError, Controller, ControllerError, MAX_RECORDS_PER_USER_OP, is_active};
use crate::cluster::image::MetadataImage;
use gregor_protocol::error_code::*;

/// Kafka's `ElectionType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    /// 0: the preferred replica.
    Preferred,
    /// 1: any live replica when no ISR member can lead.
    Unclean,
}

impl ElectionType {
    /// The type of a wire value.
    pub fn from_i8(value: i8) -> Option<ElectionType> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// The result for one topic: each partition with its error, `None` for success.
pub type TopicElection = (String, Vec<(i32, Option<ApiError>)>);

impl Controller {
    /// Elects leaders (see the module docs); `partitions` `None` means every partition.
    pub fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<TopicElection>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let mut records = Vec::new();
        let mut results = Vec::new();
        match partitions {
            None => {
                for topic in image.topics() {
                    let mut answered = Vec::new();
                    for index in topic.partitions.keys() {
                        let outcome = elect(&image, &topic.name, *index, election, &mut records);
                        if outcome
                            .as_ref()
                            .is_none_or(|e| e.code != ELECTION_NOT_NEEDED)
                        {
                            answered.push((*index, outcome));
                        }
                    }
                    results.push((topic.name.clone(), answered));
                }
            }
            Some(asked) => {
                for (topic, indexes) in asked {
                    let answered = indexes
                        .iter()
                        .map(|index| (*index, elect(&image, topic, *index, election, &mut records)))
                        .collect();
                    results.push((topic.clone(), answered));
                }
            }
        }
        if records.len() > MAX_RECORDS_PER_USER_OP {
            // Kafka's BoundedList refuses the whole operation.
            let error = ApiError::new(
                POLICY_VIOLATION,
                format!(
                    "Cannot elect leaders for more than {MAX_RECORDS_PER_USER_OP} partitions \
                     at once."
                ),
            );
            for (_, partitions) in &mut results {
                for (_, outcome) in partitions.iter_mut() {
                    if outcome.is_none() {
                        *outcome = Some(error.clone());
                    }
                }
            }
            return Ok(results);
        }
        self.commit(&mut log, records)?;
        Ok(results)
    }
}

/// An error with Kafka's default message of `code` (`new ApiError(Errors.X)`).
fn default_error(code: i16) -> ApiError {
    ApiError {
        code,
        message: gregor_protocol::ErrorCode::from(code)
            .default_message()
            .map(str::to_string),
    }
}

/// Kafka's `electLeader` for one partition; `None` when a record was added.
fn elect(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    election: ElectionType,
    records: &mut Vec<VersionedRecord>,
) -> Option<ApiError> {
    let Some(t) = image.topic(topic) else {
        return Some(ApiError::new(
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("No such topic as {topic}"),
        ));
    };
    let Some(partition) = t.partitions.get(&index) else {
        return Some(ApiError::new(
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("No such partition as {topic}-{index}"),
        ));
    };
    let has_preferred = partition.replicas.first() == Some(&partition.leader);
    if (election == ElectionType::Preferred && has_preferred)
        || (election == ElectionType::Unclean && partition.has_leader())
    {
        return Some(default_error(ELECTION_NOT_NEEDED));
    }
    let acceptable = |r: i32| is_active(image, r);
    let builder =
        PartitionChangeBuilder::new(partition, t.id, index, &acceptable).election(match election {
            ElectionType::Preferred => Election::Preferred,
            ElectionType::Unclean => Election::Unclean,
        });
    match builder.build() {
        Some(change) => {
            records.push(VersionedRecord {
                version: PARTITION_CHANGE_RECORD_VERSION,
                record: MetadataRecord::PartitionChange(change),
            });
            None
        }
        None => Some(default_error(match election {
            ElectionType::Preferred => PREFERRED_LEADER_NOT_AVAILABLE,
            ElectionType::Unclean => ELIGIBLE_LEADERS_NOT_AVAILABLE,
        })),
    }
}
