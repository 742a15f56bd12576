//! OffsetDelete v0 (KIP-496): removes a group's committed offsets of some partitions, as
//! Kafka's `KafkaApis.handleOffsetDeleteRequest` and group coordinator do.
//!
//! Partitions of topics, or partition indexes, missing from the metadata get
//! `UNKNOWN_TOPIC_OR_PARTITION` before the coordinator sees the request; the coordinator
//! answers the rest (see [`crate::groups::GroupCoordinator::delete_offsets`]). An error of
//! the whole request (no such group, a non-empty group without the consumer protocol, a
//! failed write) replaces every partition's, as Kafka's `OffsetDeleteResponse.Builder.merge`
//! does: the response then has the error code and no topics.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use gregor_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Topics and their partitions' errors, in response order.
type Results = Vec<(String, Vec<(i32, i16)>)>;

/// Adds `partitions` to the entry of `topic` (the first one of that name), or a new one.
fn add(results: &mut Results, topic: &str, partitions: impl IntoIterator<Item = (i32, i16)>) {
    match results.iter_mut().find(|(name, _)| name == topic) {
        Some((_, existing)) => existing.extend(partitions),
        None => results.push((topic.to_string(), partitions.into_iter().collect())),
    }
}

/// Answers an OffsetDelete request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let image = ctx.broker.image();
    // KafkaApis.handleOffsetDeleteRequest: DELETE on the group, READ on each topic.
    let checker = super::authorize::Checker::new(ctx);
    if let Some(error_code) =
        checker.group_error(crate::authorizer::AclOperation::Delete, &request.group_id)
    {
        return OffsetDeleteResponse {
            error_code,
            ..Default::default()
        };
    }
    let mut results: Results = Vec::new();
    let mut known: Vec<(String, Vec<i32>)> = Vec::new();
    for topic in &request.topics {
        let name = topic.name.to_string();
        let partitions = topic.partitions.iter().map(|p| p.partition_index);
        if !checker.topic(crate::authorizer::AclOperation::Read, &name) {
            add(
                &mut results,
                &name,
                partitions.map(|p| (p, error_code::TOPIC_AUTHORIZATION_FAILED)),
            );
            continue;
        }
        let Some(found) = image.topic(&name) else {
            add(
                &mut results,
                &name,
                partitions.map(|p| (p, error_code::UNKNOWN_TOPIC_OR_PARTITION)),
            );
            continue;
        };
        let (valid, missing): (Vec<i32>, Vec<i32>) =
            partitions.partition(|p| found.partition(*p).is_some());
        if !missing.is_empty() {
            add(
                &mut results,
                &name,
                missing
                    .into_iter()
                    .map(|p| (p, error_code::UNKNOWN_TOPIC_OR_PARTITION)),
            );
        }
        if !valid.is_empty() {
            known.push((name, valid));
        }
    }
    let group_id = request.group_id.to_string();
    let (error_code, results) = match ctx.broker.groups.delete_offsets(&group_id, &known).await {
        Err(code) => (code, Vec::new()),
        Ok(answered) if results.is_empty() => (error_code::NONE, answered),
        Ok(answered) => {
            for (topic, partitions) in answered {
                add(&mut results, &topic, partitions);
            }
            (error_code::NONE, results)
        }
    };
    OffsetDeleteResponse {
        error_code,
        throttle_time_ms: 0,
        topics: results
            .into_iter()
            .map(|(name, partitions)| OffsetDeleteResponseTopic {
                name: name.as_str().into(),
                partitions: partitions
                    .into_iter()
                    .map(
                        |(partition_index, error_code)| OffsetDeleteResponsePartition {
                            partition_index,
                            error_code,
                        },
                    )
                    .collect(),
            })
            .collect(),
    }
}
