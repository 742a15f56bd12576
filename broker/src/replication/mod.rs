//! Partition replication as Kafka does it (Kafka's `ReplicaManager`, `Partition`,
//! `ReplicaFetcherThread`): which partitions this broker leads or follows, the leader's
//! view of its followers, the ISR and the high watermark, `acks=all` waiting for the ISR,
//! and the fetchers that copy the leaders' logs.
//!
//! The cluster metadata decides the roles; it calls the explicit entry points
//! [`ReplicaManager::become_leader`] and [`ReplicaManager::become_follower`] (Kafka's
//! `ReplicaManager.applyDelta` → `Partition.makeLeader` / `makeFollower`) and
//! [`ReplicaManager::stop_replica`]. A partition no one gave a role to is served as today:
//! it is its own only replica, its high watermark is its log end offset (the single-node
//! broker never calls these, and behaves exactly as before replication existed).
//!
//! * [`leader`]: a led partition: followers' fetch state ([`replica`]), ISR expansion and
//!   shrinking proposed to the controller through [`alter_partition`], the high watermark,
//!   `min.insync.replicas`.
//! * [`follower_fetch`]: the leader's answer to a follower's Fetch (epochs, diverging
//!   epoch, read to the log end, fetch state update).
//! * [`acks`]: `acks=all` waits (Kafka's `DelayedProduce`).
//! * [`fetcher`]: the follower's fetcher tasks, over [`client`] (plain TCP to the leader's
//!   `inter.broker.listener.name` endpoint).
//! * [`config`]: the `replica.*` settings.
//!
//! The storage side (follower appends, truncation, the high watermark itself and its
//! `replication-offset-checkpoint`) is in [`crate::storage`].

pub mod acks;
pub mod alter_partition;
pub mod client;
pub mod config;
pub mod fetcher;
pub mod follower_fetch;
pub mod leader;
pub mod replica;

#[cfg(test)]
mod fetch_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gregor_protocol::Uuid;

pub use self::alter_partition::{
    AlterPartitionReceiver, AlterPartitionSender, CommittedIsr, IsrChange, IsrChangeRequest,
};
pub use self::config::ReplicationConfig;
pub use self::fetcher::{FetcherManager, LeaderEndpoint};
pub use self::leader::{LeaderPartition, Leadership};
use crate::cluster::image::MetadataImage;
use crate::storage::{LogManager, PartitionLog, unpoison};

/// This broker's role for one partition.
#[derive(Clone, Debug)]
pub enum Role {
    /// It leads the partition.
    Leader(Arc<LeaderPartition>),
    /// It follows `leader_id` in `leader_epoch`.
    Follower {
        /// The leader's broker id.
        leader_id: i32,
        /// The leader epoch.
        leader_epoch: i32,
    },
}

/// The partitions this broker replicates and their roles.
#[derive(Debug)]
pub struct ReplicaManager {
    local_id: i32,
    broker_epoch: Arc<AtomicI64>,
    config: ReplicationConfig,
    alter: Option<AlterPartitionSender>,
    roles: RwLock<HashMap<(String, i32), Role>>,
    fetchers: FetcherManager,
}

impl ReplicaManager {
    /// No partition has a role yet. `alter` is the channel ISR changes go to the
    /// controller by (`None`: no controller to ask, a change stays proposed).
    pub fn new(
        local_id: i32,
        config: ReplicationConfig,
        alter: Option<AlterPartitionSender>,
    ) -> ReplicaManager {
        let broker_epoch = Arc::new(AtomicI64::new(-1));
        ReplicaManager {
            local_id,
            fetchers: FetcherManager::new(local_id, Arc::clone(&broker_epoch), config),
            broker_epoch,
            config,
            alter,
            roles: RwLock::new(HashMap::new()),
        }
    }

    /// Fetches from leaders through `connector` (TLS and SASL of the inter-broker
    /// listener) instead of plain TCP.
    pub fn with_node_connector(
        mut self,
        connector: crate::security::node_client::NodeConnector,
    ) -> ReplicaManager {
        self.fetchers.set_connector(connector);
        self
    }

    /// This broker's id.
    pub fn local_id(&self) -> i32 {
        self.local_id
    }

    /// The settings.
    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    /// Records this broker's registration epoch (sent in its fetches and ISR changes).
    pub fn set_broker_epoch(&self, epoch: i64) {
        self.broker_epoch.store(epoch, Ordering::Release);
    }

    /// This broker's registration epoch (-1 before it registered).
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    /// The partition's role, if the metadata gave it one.
    pub fn role(&self, topic: &str, partition: i32) -> Option<Role> {
        unpoison(self.roles.read())
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// The partition if this broker leads it.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<Arc<LeaderPartition>> {
        match self.role(topic, partition) {
            Some(Role::Leader(leader)) => Some(leader),
            _ => None,
        }
    }

    /// The fetchers.
    pub fn fetchers(&self) -> &FetcherManager {
        &self.fetchers
    }

    /// Kafka's `Partition.makeLeader`: this broker leads `log`'s partition in
    /// `leadership.leader_epoch` (again, with new metadata, if it already did). Fetching
    /// the partition stops. Blocking when the epoch cache's file is written; must be
    /// called inside a tokio runtime (ISR changes are answered by tasks).
    pub fn become_leader(
        &self,
        log: Arc<PartitionLog>,
        topic_id: Uuid,
        leadership: Leadership,
    ) -> Arc<LeaderPartition> {
        let key = (log.topic().to_owned(), log.partition());
        self.fetchers.remove_partition(&key.0, key.1);
        let now = leader::now_ms();
        let mut roles = unpoison(self.roles.write());
        if let Some(Role::Leader(existing)) = roles.get(&key)
            && Arc::ptr_eq(existing.log(), &log)
        {
            let existing = Arc::clone(existing);
            drop(roles);
            existing.update_leadership(leadership, now);
            return existing;
        }
        let leader = LeaderPartition::new(
            &key.0,
            topic_id,
            key.1,
            self.local_id,
            self.broker_epoch.load(Ordering::Acquire),
            self.config.lag_time_max_ms,
            log,
            leadership,
            self.alter.clone(),
            now,
        );
        if let Some(Role::Leader(previous)) = roles.insert(key, Role::Leader(Arc::clone(&leader))) {
            previous.resign();
        }
        leader
    }

    /// Kafka's `Partition.makeFollower`: this broker follows `leader` in `leader_epoch`;
    /// `acks=all` produces waiting on it as leader end with NOT_LEADER_OR_FOLLOWER, its
    /// high watermark is the leader's from now on, and a fetcher copies the leader's log
    /// from this log's end (diverging epochs truncate it). Must be called inside a tokio
    /// runtime.
    pub fn become_follower(
        &self,
        log: Arc<PartitionLog>,
        topic_id: Uuid,
        leader: &LeaderEndpoint,
        leader_epoch: i32,
    ) {
        let key = (log.topic().to_owned(), log.partition());
        let previous = unpoison(self.roles.write()).insert(
            key,
            Role::Follower {
                leader_id: leader.id,
                leader_epoch,
            },
        );
        if let Some(Role::Leader(previous)) = previous {
            previous.resign();
        }
        log.set_hw_follows_leo(false);
        self.fetchers
            .add_partition(leader, topic_id, log, leader_epoch);
    }

    /// [`Self::become_follower`] for a partition whose leader cannot be fetched from: it
    /// has none (`leader_id` -1) or the metadata gives it no endpoint on the inter-broker
    /// listener. Produces are refused as by any follower and nothing is fetched (Kafka's
    /// `makeFollower` without a fetcher) until the metadata names a reachable leader.
    pub fn become_follower_without_fetching(
        &self,
        log: Arc<PartitionLog>,
        leader_id: i32,
        leader_epoch: i32,
    ) {
        let key = (log.topic().to_owned(), log.partition());
        self.fetchers.remove_partition(&key.0, key.1);
        let previous = unpoison(self.roles.write()).insert(
            key,
            Role::Follower {
                leader_id,
                leader_epoch,
            },
        );
        if let Some(Role::Leader(previous)) = previous {
            previous.resign();
        }
        log.set_hw_follows_leo(false);
    }

    /// The partition no longer has a role here (deleted, or reassigned away): fetching
    /// stops and waiting produces end.
    pub fn stop_replica(&self, topic: &str, partition: i32) {
        self.fetchers.remove_partition(topic, partition);
        if let Some(Role::Leader(leader)) =
            unpoison(self.roles.write()).remove(&(topic.to_owned(), partition))
        {
            leader.resign();
        }
    }

    /// After an append to a partition this broker leads: the high watermark may move
    /// (an ISR of one follows the append at once).
    pub fn after_leader_append(&self, topic: &str, partition: i32) {
        if let Some(leader) = self.leader(topic, partition) {
            leader.maybe_increment_high_watermark(leader::now_ms());
        }
    }

    /// Kafka's `maybeShrinkIsr` over every led partition; returns how many proposed a
    /// smaller ISR.
    pub fn shrink_isrs(&self, now_ms: i64) -> usize {
        let leaders: Vec<Arc<LeaderPartition>> = unpoison(self.roles.read())
            .values()
            .filter_map(|role| match role {
                Role::Leader(leader) => Some(Arc::clone(leader)),
                Role::Follower { .. } => None,
            })
            .collect();
        leaders
            .iter()
            .filter(|leader| leader.maybe_shrink_isr(now_ms).is_some())
            .count()
    }

    /// Starts Kafka's `isr-expiration` task: [`Self::shrink_isrs`] every half
    /// `replica.lag.time.max.ms`, for as long as the manager lives.
    pub fn spawn_isr_expiration(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let period = Duration::from_millis(
            u64::try_from(self.config.lag_time_max_ms / 2)
                .unwrap_or(0)
                .max(1),
        );
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                manager.shrink_isrs(leader::now_ms());
            }
        })
    }

    /// Stops every fetcher (broker shutdown).
    pub fn shutdown(&self) {
        self.fetchers.shutdown();
    }
}

/// At start-up, before any role is applied: the logs of partitions the metadata gives
/// more than one replica stop taking their log end offset as high watermark, so that
/// neither reads nor the `replication-offset-checkpoint` get ahead of what the ISR has
/// (the checkpointed value stands until a role says more). Partitions with one replica,
/// every partition of a single-node broker, are left as they are. Returns how many logs
/// it changed.
pub fn hold_replicated_high_watermarks(image: &MetadataImage, logs: &LogManager) -> usize {
    let mut held = 0;
    for topic in image.topics() {
        for (index, partition) in &topic.partitions {
            if partition.replicas.len() > 1
                && let Some(log) = logs.get(&topic.name, *index)
            {
                log.set_hw_follows_leo(false);
                held += 1;
            }
        }
    }
    held
}

/// The endpoint of broker `id` on `listener` (the `inter.broker.listener.name`) in the
/// metadata image, for fetching from it as leader.
pub fn leader_endpoint(image: &MetadataImage, id: i32, listener: &str) -> Option<LeaderEndpoint> {
    let broker = image.broker(id)?;
    let endpoint = broker
        .endpoints
        .iter()
        .find(|e| e.listener.eq_ignore_ascii_case(listener))?;
    Some(LeaderEndpoint {
        id,
        host: endpoint.host.clone(),
        port: endpoint.port,
    })
}

/// Whether broker `id` may join an ISR (Kafka's `isReplicaIsrEligible` in KRaft mode):
/// registered, not fenced, not shutting down, and fetching with its registered broker
/// epoch (or -1, which skips the check). A broker the image does not know is eligible
/// when the image knows no broker at all (a cluster whose registrations are not in the
/// metadata yet).
pub fn isr_eligible(image: &MetadataImage, id: i32, broker_epoch: i64) -> bool {
    match image.broker(id) {
        Some(broker) => {
            !broker.fenced
                && !broker.in_controlled_shutdown
                && (broker_epoch == -1 || broker_epoch == broker.epoch)
        }
        None => image.brokers().is_empty(),
    }
}
