//! OffsetFetch v0-v10: one group (v1-v7) or several (v8+), some topics or all of them
//! (null), by name or by id (v10). Partitions without a committed offset, and unknown
//! groups, get offset -1 without an error, as Kafka answers. With `require_stable` (v7+,
//! KIP-447) a partition with a transactional offset not yet committed or aborted gets
//! `UNSTABLE_OFFSET_COMMIT` and offset -1, as Kafka's `OffsetMetadataManager.fetchOffsets`.
//!
//! v0 (removed by Kafka 4) read offsets from ZooKeeper in Kafka 3.9
//! (`KafkaApis.handleOffsetFetchRequestFromZookeeper`); a KRaft broker, like this one, has
//! none and answered every requested partition with `UNSUPPORTED_VERSION`, offset -1 and
//! empty metadata (`OffsetFetchRequest.getErrorResponse`), as [`v0_response`] does.

use gregor_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use gregor_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use gregor_protocol::{Uuid, VersionRange};

use super::RequestContext;
use crate::authorizer::AclOperation;
use crate::groups::FetchedOffset;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 10 };

/// One requested topic: name (or id) and partitions.
struct Wanted {
    name: Option<String>,
    id: Uuid,
    partitions: Vec<i32>,
}

/// Answers an OffsetFetch request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version == 0 {
        return v0_response(request);
    }
    let image = ctx.broker.image();
    let use_ids = version >= 10;
    // v9+: the member of a consumer group (KIP-848) whose epoch is checked.
    let members: std::collections::HashMap<String, (Option<String>, i32)> = if version >= 9 {
        request
            .groups
            .iter()
            .map(|g| {
                let member = g.member_id.as_deref().map(str::to_string);
                (g.group_id.to_string(), (member, g.member_epoch))
            })
            .collect()
    } else {
        Default::default()
    };
    let mut group_errors: std::collections::HashMap<String, i16> = Default::default();
    let groups: Vec<(String, Option<Vec<Wanted>>)> = if version >= 8 {
        request
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| Wanted {
                            name: if use_ids {
                                image.topic_by_id(&t.topic_id).map(|i| i.name.clone())
                            } else {
                                Some(t.name.to_string())
                            },
                            id: t.topic_id,
                            partitions: t.partition_indexes,
                        })
                        .collect()
                });
                (g.group_id.to_string(), topics)
            })
            .collect()
    } else {
        let topics = request.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| Wanted {
                    name: Some(t.name.to_string()),
                    id: Uuid::nil(),
                    partitions: t.partition_indexes,
                })
                .collect()
        });
        vec![(request.group_id.to_string(), topics)]
    };
    let require_stable = version >= 7 && request.require_stable;
    let fetch_all: std::collections::HashSet<String> = groups
        .iter()
        .filter(|(_, wanted)| wanted.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let mut answers = Vec::with_capacity(groups.len());
    for (group_id, wanted) in groups {
        // Only the coordinator of the group's partition answers (a cluster's other brokers).
        if let Some(code) = ctx.broker.groups.coordinator_error(&group_id) {
            group_errors.insert(group_id.clone(), code);
            answers.push((group_id, Vec::new()));
            continue;
        }
        if let Some((member_id, epoch)) = members.get(&group_id)
            && let Err(code) = ctx
                .broker
                .groups
                .validate_consumer_offset_fetch(&group_id, member_id.as_deref(), *epoch)
                .await
        {
            group_errors.insert(group_id.clone(), code);
            answers.push((group_id, Vec::new()));
            continue;
        }
        let topics: Vec<(String, Uuid, Vec<FetchedOffset>)> = match wanted {
            None => ctx
                .broker
                .groups
                .fetch_offsets(&group_id, None)
                .await
                .into_iter()
                .map(|(name, offsets)| {
                    let id = image.topic(&name).map_or(Uuid::nil(), |t| t.id);
                    (name, id, offsets)
                })
                .collect(),
            Some(wanted) => {
                let known: Vec<(String, Vec<i32>)> = wanted
                    .iter()
                    .filter_map(|w| Some((w.name.clone()?, w.partitions.clone())))
                    .collect();
                let mut fetched = ctx
                    .broker
                    .groups
                    .fetch_offsets(&group_id, Some(&known))
                    .await
                    .into_iter();
                wanted
                    .into_iter()
                    .map(|w| match w.name {
                        Some(name) => {
                            let offsets = fetched.next().map(|(_, o)| o).unwrap_or_default();
                            (name, w.id, offsets)
                        }
                        None => {
                            let offsets = w
                                .partitions
                                .iter()
                                .map(|&partition| FetchedOffset {
                                    partition,
                                    offset: -1,
                                    leader_epoch: -1,
                                    metadata: String::new(),
                                    error_code: error_code::UNKNOWN_TOPIC_ID,
                                })
                                .collect();
                            (String::new(), w.id, offsets)
                        }
                    })
                    .collect()
            }
        };
        let topics = if require_stable {
            mark_unstable(ctx, &group_id, topics)
        } else {
            topics
        };
        answers.push((group_id, topics));
    }
    // KafkaApis.handleOffsetFetchRequest: DESCRIBE on the group (else
    // GROUP_AUTHORIZATION_FAILED), DESCRIBE on each topic: left out of a fetch of all
    // offsets, TOPIC_AUTHORIZATION_FAILED for a named one.
    let checker = super::authorize::Checker::new(ctx);
    for (group_id, topics) in &mut answers {
        if let Some(code) = checker.group_error(AclOperation::Describe, group_id) {
            group_errors.insert(group_id.clone(), code);
            topics.clear();
            continue;
        }
        if fetch_all.contains(group_id) {
            topics.retain(|(name, _, _)| checker.topic(AclOperation::Describe, name));
            continue;
        }
        for (name, _, offsets) in topics.iter_mut() {
            if !name.is_empty() && !checker.topic(AclOperation::Describe, name) {
                for o in offsets.iter_mut() {
                    o.offset = -1;
                    o.leader_epoch = -1;
                    o.metadata = String::new();
                    o.error_code = error_code::TOPIC_AUTHORIZATION_FAILED;
                }
            }
        }
    }
    if version >= 8 {
        return OffsetFetchResponse {
            groups: answers
                .into_iter()
                .map(|(group_id, topics)| OffsetFetchResponseGroup {
                    error_code: group_errors
                        .get(&group_id)
                        .copied()
                        .unwrap_or(error_code::NONE),
                    group_id: group_id.into(),
                    topics: topics
                        .into_iter()
                        .map(|(name, id, offsets)| OffsetFetchResponseTopics {
                            name: if use_ids {
                                Default::default()
                            } else {
                                name.into()
                            },
                            topic_id: if use_ids { id } else { Uuid::nil() },
                            partitions: offsets
                                .into_iter()
                                .map(|o| OffsetFetchResponsePartitions {
                                    partition_index: o.partition,
                                    committed_offset: o.offset,
                                    committed_leader_epoch: o.leader_epoch,
                                    metadata: Some(o.metadata.into()),
                                    error_code: o.error_code,
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
    let group_error = group_errors.values().next().copied();
    let topics = answers
        .into_iter()
        .next()
        .map(|(_, topics)| topics)
        .unwrap_or_default();
    if let Some(code) = group_error
        && code == error_code::GROUP_AUTHORIZATION_FAILED
    {
        return OffsetFetchResponse {
            error_code: code,
            ..Default::default()
        };
    }
    OffsetFetchResponse {
        topics: topics
            .into_iter()
            .map(|(name, _, offsets)| OffsetFetchResponseTopic {
                name: name.into(),
                partitions: offsets
                    .into_iter()
                    .map(|o| OffsetFetchResponsePartition {
                        partition_index: o.partition,
                        committed_offset: o.offset,
                        committed_leader_epoch: o.leader_epoch,
                        metadata: Some(o.metadata.into()),
                        error_code: o.error_code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        error_code: error_code::NONE,
        ..Default::default()
    }
}

/// The answer to a v0 request: `UNSUPPORTED_VERSION` for every requested partition (Kafka
/// 3.9 in KRaft mode, which had no ZooKeeper to read v0 offsets from).
fn v0_response(request: OffsetFetchRequest) -> OffsetFetchResponse {
    OffsetFetchResponse {
        topics: request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| OffsetFetchResponseTopic {
                name: t.name,
                partitions: t
                    .partition_indexes
                    .into_iter()
                    .map(|partition_index| OffsetFetchResponsePartition {
                        partition_index,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        metadata: Some("".into()),
                        error_code: error_code::UNSUPPORTED_VERSION,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Replaces the offsets of partitions with pending transactional offsets by
/// `UNSTABLE_OFFSET_COMMIT`.
fn mark_unstable(
    ctx: &RequestContext,
    group_id: &str,
    topics: Vec<(String, Uuid, Vec<FetchedOffset>)>,
) -> Vec<(String, Uuid, Vec<FetchedOffset>)> {
    let groups = &ctx.broker.groups;
    topics
        .into_iter()
        .map(|(name, id, offsets)| {
            let offsets = offsets
                .into_iter()
                .map(|o| {
                    if o.error_code == error_code::NONE
                        && groups.has_pending_txn_offset(group_id, &name, o.partition)
                    {
                        FetchedOffset {
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                            error_code: error_code::UNSTABLE_OFFSET_COMMIT,
                            ..o
                        }
                    } else {
                        o
                    }
                })
                .collect();
            (name, id, offsets)
        })
        .collect()
}
