//! A broker-only node of a cluster (`process.roles=broker`, `Config::is_cluster`) follows
//! the metadata log as Kafka's brokers do: as a KRaft **observer** (Kafka's
//! `KafkaRaftClient` in the observer state, feeding `MetadataLoader`). It fetches
//! `__cluster_metadata-0` from the quorum's leader over the controllers' listener
//! (`handlers/metadata_fetch.rs` answers there), keeps a copy of the log in
//! `metadata.log.dir` in Kafka's format ([`follower_log`]), and builds and publishes the
//! image from it; the controller of such a node never commits
//! (`Backend::Observer`: `NOT_CONTROLLER`, so admin requests are forwarded).
//!
//! * [`fetcher`]: the fetch loop: finds the leader from `controller.quorum.voters` (or
//!   `controller.quorum.bootstrap.servers`), following the `CurrentLeader` of each answer;
//!   appends, truncates on a diverging epoch, backs off on errors.
//! * At a restart the local copy is replayed ([`replay::load`](crate::cluster::replay::load))
//!   and fetching continues from its end.
//!
//! # What differs from Kafka
//!
//! * Only committed batches are written to disk (see [`follower_log`]).
//! * A snapshot the leader points to (a fetch below its log start) is downloaded whole with
//!   FetchSnapshot (API 59) before it is installed. The copy writes snapshots of its own
//!   and trims itself by the `metadata.*` retention keys, as Kafka's brokers do
//!   (see [`follower_log`]).

pub mod fetcher;
pub mod follower_log;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::image::MetadataImage;
use crate::cluster::metadata_log::MetadataLogOptions;
use crate::cluster::snapshot_trigger::SnapshotOptions;
pub use follower_log::{FollowerLog, FollowerLogError};

/// Where the observer looks for the leader: a voter (id and address) or a bootstrap
/// server (address only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The voter's id, if known.
    pub id: Option<i32>,
    /// Host of its controller listener.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Settings of an observer.
#[derive(Clone, Debug)]
pub struct ObserverOptions {
    /// This node's id (sent as the fetch's replica id).
    pub node_id: i32,
    /// The cluster id (sent in every Fetch and checked by the leader).
    pub cluster_id: String,
    /// The metadata log directory (holding `__cluster_metadata-0`).
    pub log_dir: PathBuf,
    /// Where to look for the leader.
    pub targets: Vec<Target>,
    /// The local segments' settings.
    pub log: MetadataLogOptions,
    /// How long the leader may hold a fetch with nothing new (Kafka's observers: 500 ms).
    pub fetch_max_wait: Duration,
    /// How long a request may take beyond that (`controller.quorum.request.timeout.ms`).
    pub request_timeout: Duration,
    /// The wait after a failure (`controller.quorum.retry.backoff.ms`, at least).
    pub retry_backoff: Duration,
    /// At most this many bytes of batches per fetch.
    pub fetch_max_bytes: i32,
    /// When the local copy writes snapshots and what it keeps.
    pub snapshots: SnapshotOptions,
    /// How to connect (TLS, SASL) to the controller listener; plain TCP from
    /// [`ObserverOptions::from_config`], `server_observer` sets the configured one.
    pub connector: crate::security::node_client::NodeConnector,
}

impl ObserverOptions {
    /// The options of node `node_id` of `config` (voters first, then bootstrap servers).
    pub fn from_config(config: &crate::config::Config, cluster_id: &str) -> ObserverOptions {
        let mut targets: Vec<Target> = config
            .controller_quorum_voters
            .iter()
            .map(|v| Target {
                id: Some(v.id),
                host: v.host.clone(),
                port: v.port,
            })
            .collect();
        targets.extend(
            config
                .controller_quorum_bootstrap_servers
                .iter()
                .map(|s| Target {
                    id: None,
                    host: s.host.clone(),
                    port: s.port,
                }),
        );
        let mut log = MetadataLogOptions::new(config.node_id);
        log.segment_bytes = config.metadata_log.segment_bytes.max(1) as u64;
        log.segment_ms = config.metadata_log.segment_ms;
        ObserverOptions {
            node_id: config.node_id,
            cluster_id: cluster_id.to_string(),
            log_dir: config.effective_metadata_log_dir().to_path_buf(),
            targets,
            log,
            fetch_max_wait: Duration::from_millis(500),
            request_timeout: Duration::from_millis(2000),
            retry_backoff: Duration::from_millis(100),
            connector: crate::security::node_client::NodeConnector::plaintext(),
            fetch_max_bytes: 8 * 1024 * 1024,
            snapshots: SnapshotOptions::from_config(config),
        }
    }
}

/// What the observer knows of the quorum and of its own progress.
#[derive(Debug)]
struct Shared {
    image: watch::Sender<Arc<MetadataImage>>,
    /// The leader (-1 unknown).
    leader: AtomicI32,
    /// The quorum's epoch as last learnt.
    epoch: AtomicI32,
    /// Offset of the last record applied to the image (-1 none).
    applied: AtomicI64,
    /// The leader's high watermark as last learnt (-1 unknown).
    high_watermark: AtomicI64,
}

/// A running observer (cheap to clone; see the module docs).
#[derive(Clone, Debug)]
pub struct Observer {
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Observer {
    /// Replays the local copy under `options.log_dir` and starts fetching (call from
    /// within a Tokio runtime). Fails only if the local copy cannot be read.
    pub async fn start(options: ObserverOptions) -> Result<Observer, FollowerLogError> {
        let dir = options.log_dir.clone();
        let (log_options, snapshots) = (options.log.clone(), options.snapshots);
        let log = tokio::task::spawn_blocking(move || {
            FollowerLog::open(&dir, log_options).map(|log| log.with_snapshots(snapshots))
        })
        .await
        .map_err(|e| FollowerLogError::Decode(format!("start-up task failed: {e}")))??;
        let shared = Arc::new(Shared {
            image: watch::Sender::new(Arc::new(log.image().clone())),
            leader: AtomicI32::new(-1),
            epoch: AtomicI32::new(log.last_fetched_epoch()),
            applied: AtomicI64::new(log.applied_offset()),
            high_watermark: AtomicI64::new(-1),
        });
        let task = tokio::spawn(fetcher::run(options, log, Arc::clone(&shared)));
        Ok(Observer {
            shared,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// The image of the committed log fetched so far.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.shared.image.borrow().clone()
    }

    /// A receiver of each new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.shared.image.subscribe()
    }

    /// The quorum's leader, as last learnt.
    pub fn leader(&self) -> Option<i32> {
        let id = self.shared.leader.load(Ordering::Acquire);
        (id >= 0).then_some(id)
    }

    /// The quorum's epoch, as last learnt.
    pub fn epoch(&self) -> i32 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// Offset of the last record applied to the image (-1 for none): what this broker's
    /// heartbeats report as its metadata offset (Kafka's `currentMetadataOffset`).
    pub fn applied_offset(&self) -> i64 {
        self.shared.applied.load(Ordering::Acquire)
    }

    /// The leader's high watermark, as last learnt (-1 unknown).
    pub fn high_watermark(&self) -> i64 {
        self.shared.high_watermark.load(Ordering::Acquire)
    }

    /// Stops fetching.
    pub fn shutdown(&self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}
