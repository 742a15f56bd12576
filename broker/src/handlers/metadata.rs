//! Metadata: this broker (on the listener the client used), the cluster id, the controller,
//! and topics with their partitions, by name or by topic id.

use gregor_protocol::Uuid;
use gregor_protocol::VersionRange;
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};

use super::RequestContext;
use super::authorize::{CLUSTER_NAME, Checker};
use crate::authorizer::{AclOperation, ResourceType};
use crate::broker::Broker;
use crate::cluster::{MetadataImage, TopicImage};
use crate::topic_names;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 13 };

/// Kafka's "authorized operations not requested" marker.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Every topic operation (no authorizer): READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, as a bit set of Kafka's ACL operation codes.
pub const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Every cluster operation: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Answers a Metadata request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let broker = &ctx.broker;
    let checker = Checker::new(ctx);
    // Before v4 every Metadata request allowed auto-creation.
    let allow_create = version < 4 || request.allow_auto_topic_creation;
    // KafkaApis.getTopicMetadata: a missing topic is created only for a principal with
    // DESCRIBE on it and CREATE on the cluster or the topic; the others are answered
    // TOPIC_AUTHORIZATION_FAILED.
    let mut create_denied = std::collections::HashSet::new();
    if allow_create && broker.config.auto_create_topics_enable {
        let cluster_create = checker.cluster(AclOperation::Create);
        create_denied = auto_create(broker, &request, |name| {
            checker.topic(AclOperation::Describe, name)
                && (cluster_create || checker.topic(AclOperation::Create, name))
        })
        .await;
    }
    let image = broker.image();
    let brokers = live_brokers(ctx, &image, false)
        .into_iter()
        .map(|b| MetadataResponseBroker {
            node_id: b.id,
            host: b.host.into(),
            port: i32::from(b.port),
            rack: b.rack.map(Into::into),
            ..Default::default()
        })
        .collect();
    let include_ops = request.include_topic_authorized_operations;
    // v0 asks for all topics with an empty list; v1+ with null.
    let all = match &request.topics {
        None => true,
        Some(topics) => topics.is_empty() && version == 0,
    };
    let wanted = request.topics.unwrap_or_default();
    // Topic ids in requests arrived with v12 (null names); Kafka refuses them before.
    let ids_too_early = version < 12
        && wanted
            .iter()
            .any(|t| t.name.is_none() || !t.topic_id.is_nil());
    let mut topics: Vec<MetadataResponseTopic> = if all {
        // All topics: those without DESCRIBE are left out, not reported.
        image
            .topics()
            .filter(|t| checker.topic(AclOperation::Describe, &t.name))
            .map(|t| topic_response(broker, &image, t, include_ops))
            .collect()
    } else if ids_too_early {
        wanted
            .iter()
            .map(|t| {
                error_topic(
                    Some(t.name.as_deref().unwrap_or("")),
                    t.topic_id,
                    error_code::INVALID_REQUEST,
                )
            })
            .collect()
    } else {
        // Kafka treats the requested topics as a set: each is answered once.
        let mut seen = std::collections::HashSet::new();
        wanted
            .into_iter()
            .filter(|t| seen.insert((t.name.clone(), t.topic_id)))
            .map(|wanted| match (&wanted.name, wanted.topic_id) {
                // Without DESCRIBE the topic's existence is not disclosed.
                (Some(name), _)
                    if !name.is_empty()
                        && (!checker.topic(AclOperation::Describe, name)
                            || create_denied.contains(&**name)) =>
                {
                    error_topic(
                        Some(name),
                        Uuid::nil(),
                        error_code::TOPIC_AUTHORIZATION_FAILED,
                    )
                }
                (Some(name), _) if !name.is_empty() => match image.topic(name) {
                    Some(topic) => topic_response(broker, &image, topic, include_ops),
                    None => error_topic(Some(name), Uuid::nil(), unknown_name_error(name)),
                },
                (_, id) if !id.is_nil() => match image.topic_by_id(&id) {
                    // Topic ids are not secret: the id is answered with the error.
                    Some(topic) if !checker.topic(AclOperation::Describe, &topic.name) => {
                        error_topic(None, id, error_code::TOPIC_AUTHORIZATION_FAILED)
                    }
                    Some(topic) => topic_response(broker, &image, topic, include_ops),
                    None => error_topic(None, id, error_code::UNKNOWN_TOPIC_ID),
                },
                (name, id) => error_topic(name.as_deref(), id, error_code::INVALID_TOPIC_EXCEPTION),
            })
            .collect()
    };
    if include_ops && checker.enabled() {
        for topic in &mut topics {
            if topic.error_code != error_code::TOPIC_AUTHORIZATION_FAILED
                && let Some(name) = &topic.name
            {
                topic.topic_authorized_operations = checker.operations(ResourceType::Topic, name);
            }
        }
    }
    MetadataResponse {
        throttle_time_ms: 0,
        brokers,
        cluster_id: Some(broker.cluster_id.as_str().into()),
        controller_id: broker.node_id,
        topics,
        // Without DESCRIBE on the cluster, no operations (KafkaApis: 0).
        cluster_authorized_operations: if request.include_cluster_authorized_operations {
            if checker.cluster(AclOperation::Describe) {
                checker.operations(ResourceType::Cluster, CLUSTER_NAME)
            } else {
                0
            }
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        error_code: error_code::NONE,
        ..Default::default()
    }
}

/// Creates the requested topics that do not exist (legal, non-internal names only) and
/// that `may_create` allows; returns the missing ones it did not allow.
async fn auto_create(
    broker: &std::sync::Arc<crate::broker::Broker>,
    request: &MetadataRequest,
    may_create: impl Fn(&str) -> bool,
) -> std::collections::HashSet<String> {
    let Some(topics) = &request.topics else {
        return Default::default();
    };
    let image = broker.image();
    let mut missing: Vec<String> = topics
        .iter()
        .filter_map(|t| t.name.as_deref())
        .filter(|name| image.topic(name).is_none())
        .filter(|name| topic_names::validate(name).is_ok() && !topic_names::is_internal(name))
        .map(str::to_string)
        .collect();
    missing.sort();
    missing.dedup();
    let (missing, denied): (Vec<String>, Vec<String>) =
        missing.into_iter().partition(|name| may_create(name));
    for (name, error) in broker.auto_create_topics(missing).await {
        tracing::warn!("auto-creating topic {name} failed: {error:?}");
    }
    denied.into_iter().collect()
}

/// UNKNOWN_TOPIC_OR_PARTITION for a legal name, INVALID_TOPIC_EXCEPTION otherwise.
pub fn unknown_name_error(name: &str) -> i16 {
    if topic_names::validate(name).is_ok() {
        error_code::UNKNOWN_TOPIC_OR_PARTITION
    } else {
        error_code::INVALID_TOPIC_EXCEPTION
    }
}

fn error_topic(name: Option<&str>, id: Uuid, error: i16) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: error,
        name: name.map(Into::into),
        topic_id: id,
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

fn topic_response(
    broker: &Broker,
    image: &MetadataImage,
    topic: &TopicImage,
    include_ops: bool,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(index, p)| {
            let state = partition_state(broker, image, &topic.name, *index, p);
            MetadataResponsePartition {
                error_code: state.error_code,
                partition_index: *index,
                leader_id: state.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                offline_replicas: state.offline,
                ..Default::default()
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: error_code::NONE,
        name: Some(topic.name.as_str().into()),
        topic_id: topic.id,
        is_internal: topic_names::is_internal(&topic.name),
        partitions,
        topic_authorized_operations: if include_ops {
            TOPIC_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        ..Default::default()
    }
}

/// A broker as Metadata and DescribeCluster list it.
pub(super) struct ListedBroker {
    /// Its id.
    pub id: i32,
    /// The host of its endpoint on the request's listener.
    pub host: String,
    /// The port of that endpoint.
    pub port: u16,
    /// Its rack.
    pub rack: Option<String>,
    /// Whether it is fenced.
    pub fenced: bool,
}

/// The brokers to list, by id: this node (at its advertised endpoint for the listener the
/// request came on; always on a single node, in a cluster once it is registered and
/// unfenced or with `include_fenced`) and every other registered broker that has an
/// endpoint on that listener and is unfenced, or fenced too with `include_fenced` (Kafka's
/// `KRaftMetadataCache.getAliveBrokerNodes`: the live brokers on the listener name).
pub(super) fn live_brokers(
    ctx: &RequestContext,
    image: &MetadataImage,
    include_fenced: bool,
) -> Vec<ListedBroker> {
    let broker = &ctx.broker;
    let (host, port) = broker.advertised_endpoint(&ctx.listener);
    let own = image.broker(broker.node_id);
    let mut listed = Vec::new();
    // A cluster's broker is live for the others once the controller unfenced it: until
    // then it lists itself no more than they do.
    let own_listed =
        !broker.config.is_cluster() || own.is_some_and(|b| include_fenced || !b.fenced);
    if own_listed {
        listed.push(ListedBroker {
            id: broker.node_id,
            host,
            port,
            rack: broker.config.broker_rack.clone(),
            fenced: own.is_some_and(|b| b.fenced),
        });
    }
    for registration in image.brokers().values() {
        if registration.id == broker.node_id || (registration.fenced && !include_fenced) {
            continue;
        }
        let Some(endpoint) = registration
            .endpoints
            .iter()
            .find(|e| e.listener.eq_ignore_ascii_case(&ctx.listener))
        else {
            continue;
        };
        listed.push(ListedBroker {
            id: registration.id,
            host: endpoint.host.clone(),
            port: endpoint.port,
            rack: registration.rack.clone(),
            fenced: registration.fenced,
        });
    }
    listed.sort_by_key(|b| b.id);
    listed
}

/// A partition's leader, offline replicas and error as Metadata and DescribeTopicPartitions
/// report them.
pub(super) struct PartitionState {
    /// The leader, -1 when it has none (or its replica here is offline).
    pub leader: i32,
    /// Replicas on brokers that are not alive, and this broker's when its log is missing.
    pub offline: Vec<i32>,
    /// LEADER_NOT_AVAILABLE without a leader, else NONE.
    pub error_code: i16,
}

/// The state of partition `index` of `topic`: a replica here without a log is offline (its
/// log could not be opened or made); as Kafka's controller does for a replica in an offline
/// log dir, it leaves the leadership and is listed offline.
pub(super) fn partition_state(
    broker: &Broker,
    image: &MetadataImage,
    topic: &str,
    index: i32,
    p: &crate::cluster::image::PartitionImage,
) -> PartitionState {
    let log_missing =
        p.replicas.contains(&broker.node_id) && broker.logs.get(topic, index).is_none();
    let offline = p
        .replicas
        .iter()
        .copied()
        .filter(|id| !image.is_broker_alive(*id) || (*id == broker.node_id && log_missing))
        .collect();
    let leader = if log_missing && p.leader == broker.node_id {
        -1
    } else {
        p.leader
    };
    PartitionState {
        leader,
        offline,
        error_code: if leader < 0 {
            error_code::LEADER_NOT_AVAILABLE
        } else {
            error_code::NONE
        },
    }
}
