//! DeleteTopics: topics removed through the controller, by name (v0-v5) or by name or id
//! (v6), as Kafka's `ControllerApis.deleteTopics` answers:
//!
//! * `delete.topic.enable=false`: every topic gets `TOPIC_DELETION_DISABLED`, or
//!   `INVALID_REQUEST` before v3 (which predates the code), without a message.
//! * v6 entries with neither a name nor an id, or with both, get `INVALID_REQUEST`; names
//!   and ids given twice get one `INVALID_REQUEST` each; unknown names
//!   `UNKNOWN_TOPIC_OR_PARTITION`, unknown ids `UNKNOWN_TOPIC_ID`; a name whose topic id is
//!   also given gets `INVALID_REQUEST` and neither is deleted.
//! * `timeout_ms` of 0 or less: the controller's deadline has passed, every entry gets
//!   `REQUEST_TIMED_OUT` and nothing is deleted.
//!
//! Results carry the name and id of each topic (the id from v6, the message from v5). Kafka
//! shuffles them; they come here in the order above, then the deletions in request order.
//! The partition directories are deleted in the same controller call, after the
//! `RemoveTopicRecord`s are durable.

use std::collections::{BTreeSet, HashMap};

use gregor_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use gregor_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{Uuid, VersionRange};

use super::{RequestContext, controller_failure, default_message};
use crate::cluster::controller::{ApiError, TopicRef};
use gregor_protocol::error_code;

/// Versions served: Kafka 3.9's 0-6 (Kafka 4 serves 1-6); v0 is v1 without the throttle
/// time.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

/// Answers a DeleteTopics request.
pub async fn handle(
    ctx: &RequestContext,
    header: &RequestHeader,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // KIP-599: strict from v5 (ControllerApis.deleteTopics).
    let quota = crate::quotas::controller_mutation::for_request(ctx, header, version, 5);
    let broker = ctx.broker.clone();
    // (name, id) as given: the `topics` array from v6, the names before.
    let entries: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.to_string()), Uuid::nil()))
            .collect()
    };
    let every_entry_fails = |code: i16| DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses: entries
            .iter()
            .map(|(name, id)| result(name.as_deref(), *id, code, None))
            .collect(),
        ..Default::default()
    };
    if !broker.config.delete_topic_enable {
        return every_entry_fails(if version < 3 {
            error_code::INVALID_REQUEST
        } else {
            error_code::TOPIC_DELETION_DISABLED
        });
    }

    let mut responses = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut duplicate_names: Vec<&str> = Vec::new();
    let mut ids: Vec<Uuid> = Vec::new();
    let mut duplicate_ids: Vec<Uuid> = Vec::new();
    for (name, id) in &entries {
        match (name.as_deref(), id.is_nil()) {
            (None, true) => responses.push(result(
                None,
                Uuid::nil(),
                error_code::INVALID_REQUEST,
                Some("Neither topic name nor id were specified."),
            )),
            (None, false) => add_once(&mut ids, &mut duplicate_ids, *id),
            (Some(name), true) => add_once(&mut names, &mut duplicate_names, name),
            (Some(name), false) => responses.push(result(
                Some(name),
                *id,
                error_code::INVALID_REQUEST,
                Some("You may not specify both topic name and topic id."),
            )),
        }
    }
    for name in &duplicate_names {
        responses.push(result(
            Some(name),
            Uuid::nil(),
            error_code::INVALID_REQUEST,
            Some("Duplicate topic name."),
        ));
    }
    for id in &duplicate_ids {
        responses.push(result(
            None,
            *id,
            error_code::INVALID_REQUEST,
            Some("Duplicate topic id."),
        ));
    }
    if (!names.is_empty() || !ids.is_empty()) && request.timeout_ms <= 0 {
        return every_entry_fails(error_code::REQUEST_TIMED_OUT);
    }

    // Resolve ids, then names, as Kafka's findTopicNames and findTopicIds.
    let image = broker.image();
    // KafkaApis.handleDeleteTopicsRequest: DESCRIBE and DELETE on each topic (a name is
    // checked before its existence); TOPIC_AUTHORIZATION_FAILED.
    let checker = super::authorize::Checker::new(ctx);
    let may_delete = |name: &str| {
        checker.topic(crate::authorizer::AclOperation::Describe, name)
            && checker.topic(crate::authorizer::AclOperation::Delete, name)
    };
    let mut to_delete: Vec<(Uuid, String)> = Vec::new();
    for id in &ids {
        match image.topic_by_id(id) {
            Some(topic) if !may_delete(&topic.name) => responses.push(result(
                None,
                *id,
                error_code::TOPIC_AUTHORIZATION_FAILED,
                None,
            )),
            Some(topic) => to_delete.push((*id, topic.name.clone())),
            None => responses.push(unknown(None, *id, error_code::UNKNOWN_TOPIC_ID)),
        }
    }
    let mut clashing: BTreeSet<Uuid> = duplicate_ids.iter().copied().collect();
    for name in &names {
        if !may_delete(name) {
            responses.push(result(
                Some(name),
                Uuid::nil(),
                error_code::TOPIC_AUTHORIZATION_FAILED,
                None,
            ));
            continue;
        }
        let Some(topic) = image.topic(name) else {
            responses.push(unknown(
                Some(name),
                Uuid::nil(),
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
            ));
            continue;
        };
        let already = to_delete.iter().position(|(id, _)| *id == topic.id);
        if clashing.contains(&topic.id) || already.is_some() {
            clashing.insert(topic.id);
            if let Some(at) = already {
                to_delete.remove(at);
            }
            responses.push(result(
                Some(name),
                topic.id,
                error_code::INVALID_REQUEST,
                Some("The provided topic name maps to an ID that was already supplied."),
            ));
        } else {
            to_delete.push((topic.id, topic.name.clone()));
        }
    }
    drop(image);

    if !to_delete.is_empty() {
        let refs: Vec<TopicRef> = to_delete.iter().map(|(id, _)| TopicRef::Id(*id)).collect();
        let names_by_id: HashMap<Uuid, String> = to_delete.into_iter().collect();
        let applier = broker.clone();
        let limit = quota.clone();
        let applied = broker
            .controller
            .run(move |controller| {
                let applied = controller.delete_topics_limited(&refs, limit.as_ref());
                if let Ok(applied) = &applied {
                    applier.apply_delta(&applied.delta);
                }
                applied
            })
            .await;
        match applied {
            Ok(applied) => {
                for deleted in applied.results {
                    let name = deleted
                        .name
                        .or_else(|| names_by_id.get(&deleted.topic_id).cloned());
                    let (code, message) = error_parts(deleted.error.as_ref());
                    responses.push(result(
                        name.as_deref(),
                        deleted.topic_id,
                        code,
                        message.as_deref(),
                    ));
                }
            }
            Err(err) => {
                let error = controller_failure(&err);
                return every_entry_fails(error.code);
            }
        }
    }
    DeleteTopicsResponse {
        throttle_time_ms: quota.throttle_time_ms(),
        responses,
        ..Default::default()
    }
}

/// Adds `item` to `seen`, or moves it to `duplicates` when it is there already.
fn add_once<T: PartialEq + Copy>(seen: &mut Vec<T>, duplicates: &mut Vec<T>, item: T) {
    if duplicates.contains(&item) {
        return;
    }
    if let Some(at) = seen.iter().position(|s| *s == item) {
        seen.remove(at);
        duplicates.push(item);
    } else {
        seen.push(item);
    }
}

fn error_parts(error: Option<&ApiError>) -> (i16, Option<String>) {
    match error {
        None => (error_code::NONE, None),
        Some(e) => (e.code, e.message.clone()),
    }
}

/// An unknown name or id, with Kafka's default message of the code.
fn unknown(name: Option<&str>, id: Uuid, code: i16) -> DeletableTopicResult {
    result(name, id, code, default_message(code))
}

fn result(name: Option<&str>, id: Uuid, code: i16, message: Option<&str>) -> DeletableTopicResult {
    DeletableTopicResult {
        name: name.map(Into::into),
        topic_id: id,
        error_code: code,
        error_message: message.map(Into::into),
        ..Default::default()
    }
}
