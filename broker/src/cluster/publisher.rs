//! The broker's metadata publisher in a multi-node cluster (Kafka's
//! `BrokerMetadataPublisher` with `ReplicaManager.applyDelta`): it follows the committed
//! metadata images and makes this broker's local state match each one, against the one
//! before it ([`local_changes`]):
//!
//! * replicas this broker no longer holds (topic deleted, replica reassigned away) stop
//!   ([`ReplicaManager::stop_replica`]) and their logs are deleted (Kafka's delayed
//!   delete: the directory is renamed `<topic>-<p>.<uuid>-delete` first, see
//!   [`crate::storage::LogManager::remove`]);
//! * new local replicas get their log (with the topic's configs and a `partition.metadata`
//!   holding the topic id), then their role: [`ReplicaManager::become_leader`] or
//!   [`ReplicaManager::become_follower`] with the leader's endpoint on
//!   `inter.broker.listener.name` from its registration in the image;
//! * the group and transaction coordinators load the `__consumer_offsets` /
//!   `__transaction_state` partitions this broker starts leading and unload those it stops
//!   leading (Kafka's `updateCoordinator`: `onElection` / `onResignation`);
//! * topic config changes go to the logs, dynamic broker config changes to the defaults.
//!
//! Only in cluster mode ([`crate::config::Config::is_cluster`]); the single-node broker
//! makes and deletes its logs on the request path, before and after the controller's
//! writes, as before. Each partition is handled on its own: a log that cannot be made is
//! logged and left without a log (reported offline, as the single-node path does), the
//! others go on.
//!
//! The first image (the first one that is not empty) gives every local partition its
//! role. Directories the image does not account for (Kafka's stray logs) are left as they
//! are, with a warning, except one holding an older topic of the same name, which makes
//! room for the new one: see [`Publisher::publish`].

use std::sync::{Arc, Weak};

use tokio::sync::watch;

use super::image::{MetadataImage, NO_LEADER};
use super::local_changes::{LocalChanges, LocalFollower, LocalLeader, LocalRemoval, local_changes};
use super::reconcile::PartitionMetadata;
use crate::broker::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::replication::leader_endpoint;
use crate::storage::PartitionLog;
use crate::topic_config;
use crate::transactions::TRANSACTION_STATE_TOPIC;

/// Applies metadata images to one broker's local state (see the module docs).
pub struct Publisher {
    broker: Weak<Broker>,
    previous: Arc<MetadataImage>,
    published: bool,
}

impl Publisher {
    /// A publisher that has published nothing yet: its first image gives every local
    /// partition its role.
    /// The broker's coordinators serve only the partitions it is elected for from now on.
    pub fn new(broker: &Arc<Broker>) -> Publisher {
        broker.groups.coordinate_elected_only();
        broker.transactions.coordinate_elected_only();
        Publisher {
            broker: Arc::downgrade(broker),
            previous: Arc::new(MetadataImage::empty()),
            published: false,
        }
    }

    /// The last image published.
    pub fn previous(&self) -> &Arc<MetadataImage> {
        &self.previous
    }

    /// Makes the broker's local state match `image`. Blocking file I/O; call inside a
    /// tokio runtime (from a blocking thread): roles start tasks. An empty image before
    /// the first non-empty one is skipped (a broker that has not caught up with the
    /// metadata yet must not take "no topics" for the truth). Returns what changed.
    pub fn publish(&mut self, image: Arc<MetadataImage>) -> LocalChanges {
        let Some(broker) = self.broker.upgrade() else {
            return LocalChanges::default();
        };
        if !self.published && image.is_empty() {
            return LocalChanges::default();
        }
        let first = !self.published;
        self.published = true;
        let previous = std::mem::replace(&mut self.previous, Arc::clone(&image));
        let changes = local_changes(&previous, &image, broker.node_id);
        if first {
            tracing::info!(
                offset = image.last_offset(),
                leaders = changes.leaders.len(),
                followers = changes.followers.len(),
                "publishing the first metadata image"
            );
            report_strays(&broker, &image);
        }
        apply_configs(&broker, &previous, &image);
        for removal in &changes.removed {
            remove_replica(&broker, removal);
        }
        for leader in &changes.leaders {
            make_leader(&broker, leader);
        }
        for follower in &changes.followers {
            make_follower(&broker, &image, follower);
        }
        changes
    }
}

/// Follows `images` for as long as the broker lives: every new image is published on a
/// blocking thread, in order (an image arriving while one is applied is taken next; a
/// skipped intermediate image changes nothing since each one is compared with the last
/// one published). Cluster mode only.
pub fn spawn(
    broker: &Arc<Broker>,
    mut images: watch::Receiver<Arc<MetadataImage>>,
) -> tokio::task::JoinHandle<()> {
    let mut publisher = Publisher::new(broker);
    tokio::spawn(async move {
        loop {
            let image = Arc::clone(&images.borrow_and_update());
            let task = tokio::task::spawn_blocking(move || {
                publisher.publish(image);
                publisher
            });
            publisher = match task.await {
                Ok(publisher) => publisher,
                Err(error) => {
                    tracing::error!(%error, "the metadata publisher failed; it stops");
                    return;
                }
            };
            if publisher.broker.strong_count() == 0 || images.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Topic configs that changed (or topics that are new) go to the logs; deleted topics'
/// configs are forgotten; a change of the dynamic broker configs gives the logs new
/// defaults (as the single-node path does after AlterConfigs).
fn apply_configs(broker: &Broker, previous: &MetadataImage, image: &MetadataImage) {
    let broker_configs_changed = previous.cluster_broker_config() != image.cluster_broker_config()
        || previous.broker_config(broker.node_id) != image.broker_config(broker.node_id);
    if broker_configs_changed {
        broker.refresh_dynamic_configs();
    }
    let defaults = broker.default_log_config();
    for topic in previous.topics() {
        if image.topic(&topic.name).is_none() {
            broker.logs.clear_topic_config(&topic.name);
        }
    }
    for topic in image.topics() {
        let overrides = image.topic_config(&topic.name);
        let same_topic = previous
            .topic(&topic.name)
            .is_some_and(|t| t.id == topic.id);
        if same_topic && previous.topic_config(&topic.name) == overrides {
            continue;
        }
        match overrides {
            Some(overrides) => broker
                .logs
                .set_topic_config(&topic.name, topic_config::log_config(&defaults, overrides)),
            None => broker.logs.clear_topic_config(&topic.name),
        }
    }
}

/// Kafka's stray logs (`LogManager.isStrayKraftReplica`): logs on disk the first image
/// does not give this broker (topic unknown, another topic id, not a replica). Kafka
/// renames them `-stray` and keeps them; they are kept here as they are, reported, and
/// served to no one (the handlers go by the image). One of an older topic of the same
/// name is deleted when the new topic's replica needs its place ([`local_log`]).
fn report_strays(broker: &Broker, image: &MetadataImage) {
    let dirs: Vec<super::reconcile::PartitionDir> = broker
        .logs
        .partitions()
        .into_iter()
        .filter_map(|(topic, partition)| {
            let log = broker.logs.get(&topic, partition)?;
            Some(super::reconcile::PartitionDir {
                path: log.dir().to_path_buf(),
                topic_id: log_topic_id(&log),
                topic,
                partition,
            })
        })
        .collect();
    for (dir, reason) in super::reconcile::reconcile(image, broker.node_id, &dirs).to_delete {
        tracing::warn!(
            dir = %dir.path.display(),
            ?reason,
            "stray partition log: kept, not served"
        );
    }
}

/// The topic id in a log's `partition.metadata`, if it has a readable one.
fn log_topic_id(log: &PartitionLog) -> Option<uuid::Uuid> {
    PartitionMetadata::read(log.dir())
        .ok()
        .flatten()
        .map(|m| m.topic_id)
}

/// Kafka's `stopPartitions(delete = true)`: the role ends, then the log is deleted, unless
/// the log on disk is of another topic id (already the new topic of that name).
fn remove_replica(broker: &Broker, removal: &LocalRemoval) {
    let (topic, partition) = (removal.topic.as_str(), removal.partition);
    broker.replicas.stop_replica(topic, partition);
    if removal.was_leader {
        resign_coordinator(broker, topic, partition, Some(removal.leader_epoch));
    } else {
        resign_coordinator(broker, topic, partition, None);
    }
    let Some(log) = broker.logs.get(topic, partition) else {
        return;
    };
    if log_topic_id(&log).is_some_and(|id| id != removal.topic_id) {
        return;
    }
    match broker.logs.remove(topic, partition) {
        Ok(_) => tracing::info!(
            topic,
            partition,
            reason = if removal.topic_deleted {
                "topic deleted"
            } else {
                "replica reassigned away"
            },
            "deleted the local replica"
        ),
        Err(error) => {
            tracing::error!(topic, partition, %error, "cannot delete the local replica")
        }
    }
}

/// The partition's log, made if there is none (with the topic's config, already set by
/// [`apply_configs`], and `partition.metadata`). A log left of an older topic of the same
/// name (another id in its `partition.metadata`) is deleted first. `None` (logged) when
/// the log cannot be made: the partition stays offline here.
fn local_log(
    broker: &Broker,
    topic: &str,
    topic_id: uuid::Uuid,
    partition: i32,
) -> Option<Arc<PartitionLog>> {
    if let Some(log) = broker.logs.get(topic, partition) {
        match log_topic_id(&log) {
            Some(id) if id == topic_id => return Some(log),
            None => {
                // Made before `partition.metadata` was written (a crash between the two).
                if let Err(error) = PartitionMetadata::new(topic_id).write(log.dir()) {
                    tracing::error!(topic, partition, %error, "cannot write partition.metadata");
                }
                return Some(log);
            }
            Some(other) => {
                tracing::warn!(
                    topic,
                    partition,
                    old = %other,
                    new = %topic_id,
                    "deleting the log of an older topic of the same name"
                );
                if let Err(error) = broker.logs.remove(topic, partition) {
                    tracing::error!(topic, partition, %error, "cannot delete the old log; the partition is offline");
                    return None;
                }
            }
        }
    }
    let made = broker
        .logs
        .create(topic, partition)
        .map_err(|e| e.to_string())
        .and_then(|log| {
            PartitionMetadata::new(topic_id)
                .write(log.dir())
                .map(|()| log)
                .map_err(|e| e.to_string())
        });
    match made {
        Ok(log) => Some(log),
        Err(error) => {
            tracing::error!(
                topic,
                partition,
                %error,
                "cannot create the log of a local replica; the partition is offline"
            );
            None
        }
    }
}

/// Kafka's `applyLocalLeadersDelta` for one partition, then the coordinator's election.
fn make_leader(broker: &Broker, leader: &LocalLeader) {
    let Some(log) = local_log(broker, &leader.topic, leader.topic_id, leader.partition) else {
        return;
    };
    broker
        .replicas
        .become_leader(log, leader.topic_id, leader.leadership.clone());
    tracing::debug!(
        topic = %leader.topic,
        partition = leader.partition,
        epoch = leader.leadership.leader_epoch,
        "leading"
    );
    match leader.topic.as_str() {
        OFFSETS_TOPIC => broker
            .groups
            .on_election(leader.partition, leader.leadership.leader_epoch),
        TRANSACTION_STATE_TOPIC => broker
            .transactions
            .on_election(leader.partition, leader.leadership.leader_epoch),
        _ => {}
    }
}

/// Kafka's `applyLocalFollowersDelta` for one partition: it follows the leader (fetching
/// from its `inter.broker.listener.name` endpoint), or, without a leader or an endpoint
/// to reach it by, is a follower that fetches from no one yet. The coordinator resigns it.
fn make_follower(broker: &Broker, image: &MetadataImage, follower: &LocalFollower) {
    let (topic, partition) = (follower.topic.as_str(), follower.partition);
    resign_coordinator(broker, topic, partition, Some(follower.leader_epoch));
    let Some(log) = local_log(broker, topic, follower.topic_id, partition) else {
        return;
    };
    let listener = &broker.config.inter_broker_listener_name;
    let endpoint = (follower.leader_id != NO_LEADER)
        .then(|| leader_endpoint(image, follower.leader_id, listener))
        .flatten();
    match endpoint {
        Some(endpoint) => broker.replicas.become_follower(
            log,
            follower.topic_id,
            &endpoint,
            follower.leader_epoch,
        ),
        None => {
            if follower.leader_id != NO_LEADER {
                tracing::warn!(
                    topic,
                    partition,
                    leader = follower.leader_id,
                    listener = %listener,
                    "the leader has no endpoint on the inter-broker listener; not fetching"
                );
            }
            broker.replicas.become_follower_without_fetching(
                log,
                follower.leader_id,
                follower.leader_epoch,
            );
        }
    }
}

/// The coordinator of an internal topic's partition resigns it (Kafka's `onResignation`).
fn resign_coordinator(broker: &Broker, topic: &str, partition: i32, leader_epoch: Option<i32>) {
    match topic {
        OFFSETS_TOPIC => broker.groups.on_resignation(partition, leader_epoch),
        TRANSACTION_STATE_TOPIC => broker.transactions.on_resignation(partition, leader_epoch),
        _ => {}
    }
}
