//! The broker's membership of the cluster, as Kafka's `BrokerLifecycleManager`: it
//! registers with the active controller (BrokerRegistration, until accepted), then
//! heartbeats every `broker.heartbeat.interval.ms` with its broker epoch and the offset of
//! the last metadata record it has applied, asking to stay fenced until it has caught up,
//! and in controlled shutdown asks to shut down until the controller has moved its
//! leaderships away and says it may stop.
//!
//! The states are Kafka's `BrokerState`s: [`Phase::Starting`] (registering, then fenced
//! until the controller says the broker has caught up with the metadata up to its own
//! registration), [`Phase::Recovery`] (caught up; asking to be unfenced),
//! [`Phase::Running`] (unfenced), [`Phase::PendingControlledShutdown`],
//! [`Phase::ShuttingDown`]. Kafka's broker becomes "ready to unfence" once its metadata
//! publishers have applied the image up to the caught-up offset; here the offset reported
//! is that of the image the handlers read, so "caught up" and "published" coincide.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::Uuid;
use gregor_protocol::error_code;
use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use gregor_protocol::messages::broker_registration_request::{
    BrokerRegistrationRequest, Feature, Listener,
};
use tokio::sync::watch;

use super::controller_channel::ControllerChannel;
use super::{Endpoint, MetadataImage};

/// Where the broker's metadata offset comes from.
#[derive(Clone, Debug)]
pub enum MetadataOffset {
    /// The last applied offset of the image the broker serves from.
    Image(watch::Receiver<Arc<MetadataImage>>),
    /// The broker's own registration offset (its broker epoch), which the controller takes
    /// as caught up at once: for a lifecycle run without an image of its own (the
    /// in-process tests).
    AssumeCaughtUp,
}

impl MetadataOffset {
    fn current(&self, broker_epoch: i64) -> i64 {
        match self {
            MetadataOffset::Image(image) => image.borrow().last_offset(),
            MetadataOffset::AssumeCaughtUp => broker_epoch,
        }
    }
}

/// What the broker registers with (the fields of `BrokerRegistrationRequest`).
#[derive(Clone, Debug)]
pub struct LifecycleOptions {
    /// `BrokerId`.
    pub node_id: i32,
    /// `ClusterId`.
    pub cluster_id: String,
    /// `IncarnationId`: new for every start of the process.
    pub incarnation_id: Uuid,
    /// `Listeners`: the advertised broker endpoints.
    pub listeners: Vec<Endpoint>,
    /// `Rack`.
    pub rack: Option<String>,
    /// `LogDirs`: the directory ids of the online log directories.
    pub log_dirs: Vec<Uuid>,
    /// `PreviousBrokerEpoch`: the broker epoch before a clean shutdown, -1 if unknown.
    pub previous_broker_epoch: i64,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `broker.session.timeout.ms`: bounds the backoff after failures (Kafka: half of it).
    pub session_timeout: Duration,
}

/// Kafka's `BrokerState` as far as the lifecycle goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Registering, or registered and catching up with the metadata (fenced).
    Starting,
    /// Caught up; asking to be unfenced.
    Recovery,
    /// Unfenced.
    Running,
    /// Asking to shut down; the controller moves leaderships away.
    PendingControlledShutdown,
    /// The controller said the broker may stop (or the lifecycle was stopped).
    ShuttingDown,
}

/// The lifecycle as the rest of the broker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleState {
    /// The phase.
    pub phase: Phase,
    /// The broker epoch the controller gave at registration (-1 before).
    pub broker_epoch: i64,
    /// Whether the controller last said the broker is fenced.
    pub fenced: bool,
}

/// A running lifecycle (see the module docs).
pub struct BrokerLifecycle {
    state: watch::Sender<LifecycleState>,
    shutdown_wanted: watch::Sender<bool>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl BrokerLifecycle {
    /// Starts registering and heartbeating through `channel`; `on_epoch` is told the broker
    /// epoch once the registration is accepted (the ReplicaManager's fetches carry it).
    pub fn start(
        options: LifecycleOptions,
        channel: ControllerChannel,
        offsets: MetadataOffset,
        on_epoch: impl Fn(i64) + Send + Sync + 'static,
    ) -> Arc<BrokerLifecycle> {
        let (state, _) = watch::channel(LifecycleState {
            phase: Phase::Starting,
            broker_epoch: -1,
            fenced: true,
        });
        let (shutdown_wanted, _) = watch::channel(false);
        let lifecycle = Arc::new(BrokerLifecycle {
            state,
            shutdown_wanted,
            task: std::sync::Mutex::new(None),
        });
        let runner = Runner {
            options,
            channel,
            offsets,
            state: lifecycle.state.clone(),
            shutdown_wanted: lifecycle.shutdown_wanted.subscribe(),
        };
        let task = tokio::spawn(async move {
            runner.run(on_epoch).await;
        });
        *lifecycle
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        lifecycle
    }

    /// The current state, and its changes.
    pub fn state(&self) -> watch::Receiver<LifecycleState> {
        self.state.subscribe()
    }

    /// Kafka's `beginControlledShutdown` and the wait on its `controlledShutdownFuture`:
    /// heartbeats ask to shut down until the controller answers that the broker may stop,
    /// or `timeout` passes. A broker not yet registered has nothing to hand over. Returns
    /// whether the controller agreed.
    pub async fn controlled_shutdown(&self, timeout: Duration) -> bool {
        let mut state = self.state.subscribe();
        if state.borrow().broker_epoch < 0 {
            return true;
        }
        tracing::info!("beginning controlled shutdown");
        self.shutdown_wanted.send_replace(true);
        let agreed =
            tokio::time::timeout(timeout, state.wait_for(|s| s.phase == Phase::ShuttingDown)).await;
        match agreed {
            Ok(Ok(_)) => {
                tracing::info!("the controller approved the controlled shutdown");
                true
            }
            _ => {
                tracing::error!(
                    "timed out after {timeout:?} waiting for the controller to approve the controlled shutdown"
                );
                false
            }
        }
    }

    /// Kafka's `beginShutdown`: no more requests to the controller.
    pub fn stop(&self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.state.send_modify(|s| s.phase = Phase::ShuttingDown);
    }
}

impl Drop for BrokerLifecycle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The task behind a [`BrokerLifecycle`].
struct Runner {
    options: LifecycleOptions,
    channel: ControllerChannel,
    offsets: MetadataOffset,
    state: watch::Sender<LifecycleState>,
    shutdown_wanted: watch::Receiver<bool>,
}

impl Runner {
    /// Kafka's resend backoff: 100 ms doubling up to half the session timeout.
    fn backoff(&self, failures: u32) -> Duration {
        let cap = (self.options.session_timeout / 2).max(Duration::from_millis(100));
        Duration::from_millis(100)
            .saturating_mul(1u32 << failures.min(16))
            .min(cap)
    }

    /// How long one request may be retried by the channel before the lifecycle decides
    /// again (a heartbeat must not outlive the session).
    fn request_deadline(&self) -> Duration {
        (self.options.session_timeout / 2).max(Duration::from_millis(100))
    }

    async fn run(mut self, on_epoch: impl Fn(i64)) {
        let epoch = self.register().await;
        on_epoch(epoch);
        self.state.send_modify(|s| s.broker_epoch = epoch);
        self.heartbeat_loop(epoch).await;
    }

    /// BrokerRegistration until the controller accepts it; returns the broker epoch.
    async fn register(&self) -> i64 {
        let o = &self.options;
        let request = BrokerRegistrationRequest {
            broker_id: o.node_id,
            cluster_id: o.cluster_id.clone().into(),
            incarnation_id: o.incarnation_id,
            listeners: o
                .listeners
                .iter()
                .map(|e| Listener {
                    name: e.listener.clone().into(),
                    host: e.host.clone().into(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                    ..Default::default()
                })
                .collect(),
            features: super::controller::supported_features()
                .into_iter()
                .map(|(name, range)| Feature {
                    name: name.into(),
                    min_supported_version: range.min,
                    max_supported_version: range.max,
                    ..Default::default()
                })
                .collect(),
            rack: o.rack.clone().map(Into::into),
            is_migrating_zk_broker: false,
            log_dirs: o.log_dirs.clone(),
            previous_broker_epoch: o.previous_broker_epoch,
            ..Default::default()
        };
        let mut failures = 0;
        loop {
            match self
                .channel
                .send(&request, 2, 4, self.request_deadline())
                .await
            {
                Ok(response) if response.error_code == error_code::NONE => {
                    tracing::info!(
                        broker = o.node_id,
                        epoch = response.broker_epoch,
                        "registered with the controller"
                    );
                    return response.broker_epoch;
                }
                // DUPLICATE_BROKER_REGISTRATION while the previous incarnation's session
                // lasts, and the like: Kafka retries after its backoff.
                Ok(response) => tracing::warn!(
                    broker = o.node_id,
                    error = response.error_code,
                    "the controller refused the broker registration; retrying"
                ),
                Err(error) => {
                    tracing::warn!(broker = o.node_id, %error, "cannot register; retrying")
                }
            }
            tokio::time::sleep(self.backoff(failures)).await;
            failures += 1;
        }
    }

    async fn heartbeat_loop(&mut self, epoch: i64) {
        let mut failures = 0;
        // The first heartbeat goes out at once (Kafka: `scheduleNextCommunicationImmediately`).
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // Kafka's BeginControlledShutdownEvent heartbeats at once.
                changed = self.shutdown_wanted.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let phase = self.state.borrow().phase;
            if *self.shutdown_wanted.borrow() && phase != Phase::ShuttingDown {
                self.state
                    .send_modify(|s| s.phase = Phase::PendingControlledShutdown);
            }
            let phase = self.state.borrow().phase;
            if phase == Phase::ShuttingDown {
                return;
            }
            let request = BrokerHeartbeatRequest {
                broker_id: self.options.node_id,
                broker_epoch: epoch,
                current_metadata_offset: self.offsets.current(epoch),
                // Kafka: `wantFence = !readyToUnfence`, ready once caught up (Recovery on).
                want_fence: phase == Phase::Starting,
                want_shut_down: phase == Phase::PendingControlledShutdown,
                ..Default::default()
            };
            let response = match self
                .channel
                .send(&request, 0, 2, self.request_deadline())
                .await
            {
                Ok(response) if response.error_code == error_code::NONE => response,
                Ok(response) => {
                    tracing::warn!(
                        broker = self.options.node_id,
                        error = response.error_code,
                        "the controller refused a heartbeat"
                    );
                    wait = self.backoff(failures);
                    failures += 1;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(broker = self.options.node_id, %error, "heartbeat failed");
                    wait = self.backoff(failures);
                    failures += 1;
                    continue;
                }
            };
            failures = 0;
            wait = self.options.heartbeat_interval;
            // Kafka's BrokerHeartbeatResponseEvent, state by state.
            let next = match phase {
                Phase::Starting if response.is_caught_up => {
                    tracing::info!("caught up with the metadata; asking to be unfenced");
                    wait = Duration::ZERO;
                    Phase::Recovery
                }
                Phase::Recovery if !response.is_fenced => {
                    tracing::info!("the controller unfenced the broker");
                    Phase::Running
                }
                Phase::PendingControlledShutdown if response.should_shut_down => {
                    Phase::ShuttingDown
                }
                other => other,
            };
            self.state.send_modify(|s| {
                s.phase = next;
                s.fenced = response.is_fenced;
            });
            if next == Phase::ShuttingDown {
                return;
            }
        }
    }
}
