//! FindCoordinator: on a single node this broker coordinates every group and every
//! transactional id (key type 1), on the listener the request came in on; in a cluster
//! the coordinator of a key is the leader of its partition of the internal topic. `__consumer_offsets` and
//! `__transaction_state` are created on first use; while one cannot be (a replication
//! factor above the broker count, say) the answer is `COORDINATOR_NOT_AVAILABLE`, as Kafka
//! answers. Share coordinators are not supported (`INVALID_REQUEST`).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};

use super::RequestContext;
use crate::authorizer::AclOperation;
use crate::groups::errors;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

/// Key type of a consumer group.
pub const KEY_TYPE_GROUP: i8 = 0;
/// Key type of a transactional id.
pub const KEY_TYPE_TRANSACTION: i8 = 1;
/// Key type of a share group state partition.
pub const KEY_TYPE_SHARE: i8 = 2;

/// Answers a FindCoordinator request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    // KafkaApis.getCoordinator: DESCRIBE on the group or transactional id of each key.
    let key_type = if version >= 1 {
        request.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let checker = super::authorize::Checker::new(ctx);
    let denied = |key: &str| match key_type {
        KEY_TYPE_GROUP => checker.group_error(AclOperation::Describe, key),
        KEY_TYPE_TRANSACTION => checker.transactional_id_error(AclOperation::Describe, key),
        _ => None,
    };
    let single_denied = (version < 4).then(|| denied(&request.key)).flatten();
    let mut response = answer(ctx, version, request).await;
    if let Some(code) = single_denied {
        response.error_code = code;
        response.error_message = Some(errors::message(code).into());
        response.node_id = -1;
        response.host = Default::default();
        response.port = -1;
    }
    for coordinator in &mut response.coordinators {
        if let Some(code) = denied(&coordinator.key) {
            coordinator.error_code = code;
            coordinator.error_message = None;
            coordinator.node_id = -1;
            coordinator.host = Default::default();
            coordinator.port = -1;
        }
    }
    response
}

/// The answer before authorization.
async fn answer(
    ctx: &RequestContext,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let key_type = if version >= 1 {
        request.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let keys: Vec<String> = if version >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let (host, port) = ctx.broker.advertised_endpoint(&ctx.listener);
    let node = (ctx.broker.node_id, host, i32::from(port));
    let error = match key_type {
        KEY_TYPE_GROUP => match ctx.broker.groups.ensure_offsets_topic().await {
            Ok(()) => error_code::NONE,
            Err(code) => code,
        },
        KEY_TYPE_TRANSACTION => match ctx.broker.transactions.ensure_topic().await {
            Ok(()) => error_code::NONE,
            Err(code) => code,
        },
        _ => error_code::INVALID_REQUEST,
    };
    let no_node = (-1, String::new(), -1);
    // Each key's coordinator: this broker on a single node; in a cluster the leader of
    // the key's partition of the internal topic, on the listener the request came in on
    // (Kafka's `getCoordinator` via `metadataCache.getPartitionLeaderEndpoint`).
    let coordinator_of = |key: &str| -> (i16, (i32, String, i32)) {
        if error != error_code::NONE {
            return (error, no_node.clone());
        }
        if !ctx.broker.config.is_cluster() {
            return (error, node.clone());
        }
        let topic = if key_type == KEY_TYPE_GROUP {
            crate::groups::OFFSETS_TOPIC
        } else {
            crate::transactions::TRANSACTION_STATE_TOPIC
        };
        match leader_endpoint(&ctx.broker.image(), topic, key, &ctx.listener) {
            Some(found) => (error_code::NONE, found),
            None => (error_code::COORDINATOR_NOT_AVAILABLE, no_node.clone()),
        }
    };
    if version >= 4 {
        // Kafka sets a message only when the whole request fails (an unknown key type).
        let message = (error == error_code::INVALID_REQUEST).then(|| errors::message(error));
        FindCoordinatorResponse {
            coordinators: keys
                .into_iter()
                .map(|key| {
                    let (error, (node_id, host, port)) = coordinator_of(&key);
                    Coordinator {
                        key: key.into(),
                        node_id,
                        host: host.as_str().into(),
                        port,
                        error_code: error,
                        error_message: message.clone().map(Into::into),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
    } else {
        let (error, (node_id, host, port)) = coordinator_of(&keys[0]);
        FindCoordinatorResponse {
            error_code: error,
            error_message: Some(errors::message(error).into()),
            node_id,
            host: host.into(),
            port,
            ..Default::default()
        }
    }
}

/// The leader of `key`'s partition of `topic` and its endpoint on `listener`, from the
/// image; `None` while the partition has no leader or the leader no such endpoint.
fn leader_endpoint(
    image: &crate::cluster::MetadataImage,
    topic: &str,
    key: &str,
    listener: &str,
) -> Option<(i32, String, i32)> {
    let found = image.topic(topic)?;
    let partition = crate::groups::partition_for(key, found.partitions.len() as i32);
    let leader = found.partition(partition)?.leader;
    let endpoint = image.broker(leader)?.endpoint(listener)?;
    Some((leader, endpoint.host.clone(), i32::from(endpoint.port)))
}

#[cfg(test)]
mod tests {
    use gregor_protocol::MetadataRecord;
    use gregor_protocol::messages::partition_record::PartitionRecord;
    use gregor_protocol::messages::register_broker_record::{BrokerEndpoint, RegisterBrokerRecord};
    use gregor_protocol::messages::topic_record::TopicRecord;

    use super::leader_endpoint;
    use crate::cluster::MetadataImage;
    use crate::groups::{OFFSETS_TOPIC, partition_for};

    #[test]
    fn the_coordinator_is_the_leader_of_the_keys_partition_on_the_listener() {
        let topic_id = uuid::Uuid::from_u64_pair(1, 2);
        let mut records = vec![MetadataRecord::Topic(TopicRecord {
            name: OFFSETS_TOPIC.to_string().into(),
            topic_id,
            ..Default::default()
        })];
        for index in 0..3 {
            records.push(MetadataRecord::Partition(PartitionRecord {
                partition_id: index,
                topic_id,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
                leader: index + 1,
                leader_epoch: 0,
                ..Default::default()
            }));
        }
        for id in [1, 2] {
            records.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: id,
                broker_epoch: i64::from(id),
                end_points: vec![BrokerEndpoint {
                    name: "PLAINTEXT".to_string().into(),
                    host: format!("b{id}").into(),
                    port: 9000 + id as u16,
                    ..Default::default()
                }],
                ..Default::default()
            }));
        }
        let mut image = MetadataImage::empty();
        for (offset, record) in records.iter().enumerate() {
            image.apply(offset as i64, record).expect("apply");
        }
        let key_of = |partition: i32| {
            (0..)
                .map(|n| format!("group-{n}"))
                .find(|k| partition_for(k, 3) == partition)
                .expect("a key")
        };
        assert_eq!(
            leader_endpoint(&image, OFFSETS_TOPIC, &key_of(1), "PLAINTEXT"),
            Some((2, "b2".to_string(), 9002))
        );
        assert_eq!(
            leader_endpoint(&image, OFFSETS_TOPIC, &key_of(0), "PLAINTEXT"),
            Some((1, "b1".to_string(), 9001))
        );
        // The leader of partition 2 (broker 3) is not registered; no such listener.
        assert_eq!(
            leader_endpoint(&image, OFFSETS_TOPIC, &key_of(2), "PLAINTEXT"),
            None
        );
        assert_eq!(
            leader_endpoint(&image, OFFSETS_TOPIC, &key_of(0), "SSL"),
            None
        );
        assert_eq!(
            leader_endpoint(&image, "__transaction_state", "x", "PLAINTEXT"),
            None
        );
    }
}
