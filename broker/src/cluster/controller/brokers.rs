//! Brokers as members of the cluster, as Kafka's `ClusterControlManager` and the broker
//! parts of `ReplicationControlManager` handle them: BrokerRegistration, BrokerHeartbeat
//! (unfencing, fencing on request, controlled shutdown), UnregisterBroker, and fencing of
//! brokers whose session timed out ([`Controller::fence_stale_brokers`], on a timer).
//!
//! Sessions live in memory ([`Heartbeats`]); what the cluster must remember is written to
//! the metadata log: `RegisterBrokerRecord` (a new incarnation starts fenced, its broker
//! epoch is the record's offset), `BrokerRegistrationChangeRecord` for fencing, unfencing
//! and entering controlled shutdown (the record `metadata.version` 3.3 and later use instead
//! of `FenceBrokerRecord`/`UnfenceBrokerRecord`), `UnregisterBrokerRecord`, and with each of
//! them the `PartitionChangeRecord`s that move leaderships and shrink ISRs
//! ([`leader_and_isr_updates`], Kafka's `generateLeaderAndIsrUpdates`), in the same batch.
//!
//! This node's own broker is registered by [`Controller::open`] (unfenced: it is in the
//! same process as its controller, so it has caught up by construction), and its session
//! never expires: a combined node's broker is alive as long as its controller is.

use std::time::{Duration, Instant};

use gregor_protocol::MetadataRecord;
use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use gregor_protocol::messages::broker_registration_change_record::BrokerRegistrationChangeRecord;
use gregor_protocol::messages::broker_registration_request::BrokerRegistrationRequest;
use gregor_protocol::messages::register_broker_record::{
    BrokerEndpoint, BrokerFeature, RegisterBrokerRecord,
};
use gregor_protocol::messages::unregister_broker_record::UnregisterBrokerRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use uuid::Uuid;

use super::heartbeats::{ControlState, HeartbeatAsk, Heartbeats};
use super::partition_change::{Election, PARTITION_CHANGE_RECORD_VERSION, PartitionChangeBuilder};
use super::{
    ApiError, Controller, ControllerError, KRAFT_VERSION_FEATURE, REGISTER_BROKER_RECORD_VERSION,
    is_active, v0,
};
use crate::cluster::image::{METADATA_VERSION_FEATURE, MetadataImage, NO_LEADER};
use crate::topic_config::{self, ConfigValue};
use gregor_protocol::error_code::*;

/// `metadata.version` assumed for a broker that registers without a range for it (Kafka's
/// `MINIMUM_KRAFT_VERSION`, 3.0-IV1).
const MINIMUM_KRAFT_METADATA_VERSION: i16 = 1;

/// What a heartbeat is answered (Kafka's `BrokerHeartbeatReply`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// The broker has replayed the metadata log up to its registration.
    pub is_caught_up: bool,
    /// The broker is fenced.
    pub is_fenced: bool,
    /// The broker is in controlled shutdown.
    pub in_controlled_shutdown: bool,
    /// The broker may finish shutting down.
    pub should_shut_down: bool,
}

/// Kafka's `DirectoryId.reserved`: the first 100 ids are reserved.
fn reserved_directory(id: &Uuid) -> bool {
    let (high, low) = id.as_u64_pair();
    high == 0 && low < 100
}

/// Kafka's `checkBrokerEpoch`.
pub(super) fn check_broker_epoch(
    image: &MetadataImage,
    broker: i32,
    epoch: i64,
) -> Result<(), ApiError> {
    match image.broker(broker) {
        None => Err(ApiError::new(
            STALE_BROKER_EPOCH,
            format!("No broker registration found for broker id {broker}"),
        )),
        Some(b) if b.epoch != epoch => Err(ApiError::new(
            STALE_BROKER_EPOCH,
            format!(
                "Expected broker epoch {}, but got broker epoch {epoch}",
                b.epoch
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Whether `unclean.leader.election.enable` is on for `topic`: its override, else the
/// broker's (dynamic, then static), else false.
pub(super) fn unclean_enabled(controller: &Controller, image: &MetadataImage, topic: &str) -> bool {
    const KEY: &str = "unclean.leader.election.enable";
    let Some(definition) = topic_config::definition(KEY) else {
        return false;
    };
    let value = image
        .topic_config(topic)
        .and_then(|c| c.get(KEY))
        .and_then(|v| definition.parse(v).ok())
        .unwrap_or_else(|| controller.broker_configs(image).resolve(definition).0);
    matches!(value, ConfigValue::Boolean(true))
}

/// Whether `broker` leads any partition.
pub(super) fn has_leaderships(image: &MetadataImage, broker: i32) -> bool {
    image
        .topics()
        .any(|t| t.partitions.values().any(|p| p.leader == broker))
}

impl Controller {
    /// Kafka's `generateLeaderAndIsrUpdates`: a `PartitionChangeRecord` for each partition
    /// chosen by `select` that changes when `remove` (unless [`NO_LEADER`]) leaves its ISR
    /// and can no longer lead, and `add` (unless [`NO_LEADER`]) may lead although the image
    /// still has it fenced.
    pub(super) fn leader_and_isr_updates(
        &self,
        image: &MetadataImage,
        remove: i32,
        add: i32,
        select: impl Fn(&crate::cluster::image::PartitionImage) -> bool,
    ) -> Vec<VersionedRecord> {
        let acceptable = |r: i32| r != remove && (r == add || is_active(image, r));
        let mut records = Vec::new();
        for topic in image.topics() {
            let unclean = unclean_enabled(self, image, &topic.name);
            for (index, partition) in &topic.partitions {
                if !select(partition) {
                    continue;
                }
                let mut builder =
                    PartitionChangeBuilder::new(partition, topic.id, *index, &acceptable)
                        .target_isr(
                            partition
                                .isr
                                .iter()
                                .copied()
                                .filter(|b| *b != remove)
                                .collect(),
                        );
                if unclean {
                    builder = builder.election(Election::Unclean);
                }
                if let Some(record) = builder.build() {
                    records.push(VersionedRecord {
                        version: PARTITION_CHANGE_RECORD_VERSION,
                        record: MetadataRecord::PartitionChange(record),
                    });
                }
            }
        }
        records
    }

    /// Kafka's `handleBrokerFenced`: leaderships and ISR memberships of `broker` moved away,
    /// then the registration change that fences it.
    fn broker_fenced_records(&self, image: &MetadataImage, broker: i32) -> Vec<VersionedRecord> {
        let Some(registration) = image.broker(broker) else {
            return Vec::new();
        };
        let mut records =
            self.leader_and_isr_updates(image, broker, NO_LEADER, |p| p.isr.contains(&broker));
        records.push(v0(MetadataRecord::BrokerRegistrationChange(
            BrokerRegistrationChangeRecord {
                broker_id: broker,
                broker_epoch: registration.epoch,
                fenced: 1,
                ..Default::default()
            },
        )));
        records
    }

    /// Kafka's `handleBrokerUnfenced`: the registration change, then leaders for the
    /// partitions that had none and that `broker` can lead.
    fn broker_unfenced_records(
        &self,
        image: &MetadataImage,
        broker: i32,
        epoch: i64,
    ) -> Vec<VersionedRecord> {
        let mut records = vec![v0(MetadataRecord::BrokerRegistrationChange(
            BrokerRegistrationChangeRecord {
                broker_id: broker,
                broker_epoch: epoch,
                fenced: -1,
                ..Default::default()
            },
        ))];
        records.extend(
            self.leader_and_isr_updates(image, NO_LEADER, broker, |p| p.leader == NO_LEADER),
        );
        records
    }

    /// Kafka's `handleBrokerInControlledShutdown`: the registration marked (version 1 of the
    /// record), then `broker` leaves every ISR and leadership it can.
    fn broker_shutting_down_records(
        &self,
        image: &MetadataImage,
        broker: i32,
        epoch: i64,
    ) -> Vec<VersionedRecord> {
        let mut records = Vec::new();
        if !image
            .broker(broker)
            .is_some_and(|b| b.in_controlled_shutdown)
        {
            records.push(VersionedRecord {
                version: 1,
                record: MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                    broker_id: broker,
                    broker_epoch: epoch,
                    in_controlled_shutdown: 1,
                    ..Default::default()
                }),
            });
        }
        records.extend(
            self.leader_and_isr_updates(image, broker, NO_LEADER, |p| p.isr.contains(&broker)),
        );
        records
    }

    pub(super) fn members(&self) -> std::sync::MutexGuard<'_, Heartbeats> {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This node's own session: always current, at the end of the log.
    fn touch_self(&self, members: &mut Heartbeats, next_offset: i64, now: Instant) {
        let id = self.options.node_id;
        if self.is_cluster() {
            // In a cluster this node's broker heartbeats like any other.
            return;
        }
        if members.session(id).is_some_and(|s| !s.fenced) {
            members.touch(id, false, next_offset - 1, now);
        }
    }

    /// BrokerRegistration as Kafka's `ClusterControlManager.registerBroker`: the cluster id
    /// (`INCONSISTENT_CLUSTER_ID`), a live session of another incarnation
    /// (`DUPLICATE_BROKER_REGISTRATION`), ZooKeeper brokers (`BROKER_ID_NOT_REGISTERED`),
    /// log directories (`INVALID_REGISTRATION`: none, reserved, duplicated, or another
    /// broker's), every finalized feature within the broker's ranges
    /// (`UNSUPPORTED_VERSION`). A new incarnation gets a fenced `RegisterBrokerRecord` whose
    /// offset is its broker epoch, after the `PartitionChangeRecord`s that take the previous
    /// incarnation out of every ISR and leadership; the same incarnation again amends its
    /// registration, keeping epoch, fencing and controlled shutdown. Returns the broker
    /// epoch.
    pub fn register_broker(&self, request: &BrokerRegistrationRequest) -> Result<i64, ApiError> {
        let mut log = self.lock();
        self.ensure_activated(&mut log)
            .map_err(|e| e.to_api_error())?;
        let image = self.image();
        let now = Instant::now();
        if *request.cluster_id != *self.options.cluster_id {
            return Err(ApiError::new(
                INCONSISTENT_CLUSTER_ID,
                format!(
                    "Expected cluster ID {}, but got cluster ID {}",
                    self.options.cluster_id, &*request.cluster_id
                ),
            ));
        }
        let id = request.broker_id;
        let existing = image.broker(id);
        {
            let mut members = self.members();
            self.touch_self(&mut members, log.next_offset(), now);
            if let Some(existing) = existing
                && members.has_valid_session(id, now)
                && existing.incarnation_id != request.incarnation_id
            {
                return Err(ApiError::new(
                    DUPLICATE_BROKER_REGISTRATION,
                    "Another broker is registered with that broker id.",
                ));
            }
        }
        if request.is_migrating_zk_broker {
            return Err(ApiError::new(
                BROKER_ID_NOT_REGISTERED,
                "Controller does not support registering ZK brokers.",
            ));
        }
        let invalid = |message: String| Err(ApiError::new(INVALID_REGISTRATION, message));
        if request.log_dirs.is_empty() {
            return invalid("No directories specified in request".into());
        }
        if request.log_dirs.iter().any(reserved_directory) {
            return invalid("Reserved directory ID in request".into());
        }
        let mut unique = request.log_dirs.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != request.log_dirs.len() {
            return invalid("Duplicate directory ID in request".into());
        }
        for directory in &request.log_dirs {
            if let Some(other) = image
                .brokers()
                .values()
                .find(|b| b.id != id && b.directories.contains(directory))
            {
                return invalid(format!(
                    "Broker {} is already registered with directory {directory}",
                    other.id
                ));
            }
        }
        // Every feature the broker names must include the finalized level (or the default
        // level of an unset feature); every finalized feature it does not name must be 0.
        let mut finalized: std::collections::BTreeMap<String, i16> = image
            .features()
            .map(|(name, level)| (name.to_string(), level))
            .collect();
        finalized.insert(KRAFT_VERSION_FEATURE.to_string(), 0);
        let check = |name: &str, min: i16, max: i16| -> Result<(), ApiError> {
            let default = if name == METADATA_VERSION_FEATURE {
                1
            } else {
                0
            };
            let level = finalized.get(name).copied().unwrap_or(default);
            if level < min || level > max {
                return Err(ApiError::new(
                    UNSUPPORTED_VERSION,
                    format!(
                        "Unable to register because the broker does not support finalized \
                         version {level} of {name}. The broker wants a version between {min} \
                         and {max}, inclusive."
                    ),
                ));
            }
            Ok(())
        };
        let mut features = Vec::new();
        for feature in &request.features {
            check(
                &feature.name,
                feature.min_supported_version,
                feature.max_supported_version,
            )?;
            features.push(BrokerFeature {
                name: feature.name.clone(),
                min_supported_version: feature.min_supported_version,
                max_supported_version: feature.max_supported_version,
                ..Default::default()
            });
        }
        let named = |name: &str| request.features.iter().any(|f| &*f.name == name);
        if !named(METADATA_VERSION_FEATURE) {
            check(
                METADATA_VERSION_FEATURE,
                MINIMUM_KRAFT_METADATA_VERSION,
                MINIMUM_KRAFT_METADATA_VERSION,
            )?;
            features.push(BrokerFeature {
                name: METADATA_VERSION_FEATURE.into(),
                min_supported_version: MINIMUM_KRAFT_METADATA_VERSION,
                max_supported_version: MINIMUM_KRAFT_METADATA_VERSION,
                ..Default::default()
            });
        }
        for (name, level) in &finalized {
            if *level != 0 && name != METADATA_VERSION_FEATURE && !named(name) {
                check(name, 0, 0)?;
            }
        }
        let same_incarnation = existing.is_some_and(|e| e.incarnation_id == request.incarnation_id);
        // A new incarnation first gives up what the previous one held, in the same batch
        // (Kafka's `ClusterControlManager.registerBroker` through `addRecordsForShutdown`,
        // `ReplicationControlManager.handleBrokerShutdown`, KAFKA-18106): without
        // eligible leader replicas, clean shutdown or not, it leaves every ISR and
        // leadership as a fenced broker would. A broker killed and restarted within its
        // session timeout (whose old registration is still unfenced) must not lead
        // partitions with a log it has not yet reconciled with the other replicas; it
        // rejoins the ISRs by catching up, as any follower.
        let mut records = if same_incarnation {
            Vec::new()
        } else {
            self.leader_and_isr_updates(&image, id, NO_LEADER, |p| p.isr.contains(&id))
        };
        let moved = records.len();
        // The registration is the batch's last record, and its offset is the broker epoch.
        let offset = log.next_offset() + moved as i64;
        let (epoch, fenced, in_controlled_shutdown) = match existing {
            Some(e) if same_incarnation => (e.epoch, e.fenced, e.in_controlled_shutdown),
            _ => (offset, true, false),
        };
        let record = RegisterBrokerRecord {
            broker_id: id,
            is_migrating_zk_broker: false,
            incarnation_id: request.incarnation_id,
            broker_epoch: epoch,
            end_points: request
                .listeners
                .iter()
                .map(|l| BrokerEndpoint {
                    name: l.name.clone(),
                    host: l.host.clone(),
                    port: l.port,
                    security_protocol: l.security_protocol,
                    ..Default::default()
                })
                .collect(),
            features,
            rack: request.rack.clone(),
            fenced,
            in_controlled_shutdown,
            log_dirs: request.log_dirs.clone(),
            cordoned_log_dirs: None,
            ..Default::default()
        };
        records.push(VersionedRecord {
            version: REGISTER_BROKER_RECORD_VERSION,
            record: MetadataRecord::RegisterBroker(record),
        });
        let written = self
            .commit(&mut log, records)
            .map_err(|e| e.to_api_error())?;
        let registered_at = written.map_or(offset, |(_, last)| last);
        if registered_at != offset {
            tracing::warn!(
                broker = id,
                predicted = offset,
                written = registered_at,
                "the registration landed at another offset than its broker epoch"
            );
        }
        let mut members = self.members();
        if !same_incarnation {
            members.remove(id);
        }
        members.register(id, fenced, now);
        members.set_registration_offset(id, registered_at);
        if same_incarnation {
            tracing::info!(broker = id, epoch, "amended the broker's registration");
        } else {
            tracing::info!(
                broker = id,
                epoch,
                incarnation = %request.incarnation_id,
                partitions_changed = moved,
                previous_epoch = request.previous_broker_epoch,
                // KIP-966: the previous incarnation ended cleanly if it names its epoch.
                // Without eligible leader replicas nothing depends on it (Kafka's
                // `handleBrokerShutdown` treats both alike then).
                clean_shutdown = existing.is_some_and(|e| e.epoch == request.previous_broker_epoch),
                "registered a new incarnation of the broker"
            );
        }
        Ok(epoch)
    }

    /// BrokerHeartbeat as Kafka's `ReplicationControlManager.processBrokerHeartbeat`: the
    /// broker epoch must be current (`STALE_BROKER_EPOCH`); the broker's next state
    /// ([`Heartbeats::next_state`]) decides the records (fencing moves its leaderships
    /// away, unfencing gives leaderless partitions a leader, controlled shutdown marks the
    /// registration and moves leaderships away); the session is touched.
    pub fn broker_heartbeat(
        &self,
        request: &BrokerHeartbeatRequest,
    ) -> Result<HeartbeatReply, ApiError> {
        let mut log = self.lock();
        self.ensure_activated(&mut log)
            .map_err(|e| e.to_api_error())?;
        let image = self.image();
        let id = request.broker_id;
        check_broker_epoch(&image, id, request.broker_epoch)?;
        let now = Instant::now();
        let ask = HeartbeatAsk {
            current_metadata_offset: request.current_metadata_offset,
            want_fence: request.want_fence,
            want_shut_down: request.want_shut_down,
        };
        let (registration_offset, (current, next)) = {
            let mut members = self.members();
            self.touch_self(&mut members, log.next_offset(), now);
            if members.session(id).is_none() {
                let fenced = image.broker(id).is_none_or(|b| b.fenced);
                members.register(id, fenced, now);
            }
            let registration_offset = members
                .registration_offset(id)
                .unwrap_or(request.broker_epoch);
            let states = members
                .next_state(id, ask, registration_offset, || has_leaderships(&image, id))
                .ok_or_else(|| {
                    ApiError::new(STALE_BROKER_EPOCH, format!("Broker {id} has no session"))
                })?;
            (registration_offset, states)
        };
        let mut records = Vec::new();
        if current != next {
            match next {
                ControlState::Fenced | ControlState::ShutdownNow => {
                    tracing::info!(broker = id, ?next, "fencing the broker at its request");
                    records = self.broker_fenced_records(&image, id);
                }
                ControlState::Unfenced => {
                    tracing::info!(
                        broker = id,
                        registration_offset,
                        "unfencing the broker: it has caught up with its registration"
                    );
                    records = self.broker_unfenced_records(&image, id, request.broker_epoch);
                }
                ControlState::ControlledShutdown => {
                    tracing::info!(broker = id, "the broker entered controlled shutdown");
                    records = self.broker_shutting_down_records(&image, id, request.broker_epoch);
                }
            }
        } else if next == ControlState::ControlledShutdown {
            // Leaderships that could not move before may move now (a new ISR member).
            records = self.broker_shutting_down_records(&image, id, request.broker_epoch);
        }
        let written = self
            .commit(&mut log, records)
            .map_err(|e| e.to_api_error())?;
        let mut members = self.members();
        members.touch(id, next.fenced(), request.current_metadata_offset, now);
        if next.in_controlled_shutdown() {
            let end = written.map_or(log.next_offset() - 1, |(_, last)| last);
            members.enter_controlled_shutdown(id, end);
        }
        Ok(HeartbeatReply {
            is_caught_up: request.current_metadata_offset >= registration_offset,
            is_fenced: next.fenced(),
            in_controlled_shutdown: next.in_controlled_shutdown(),
            should_shut_down: next.should_shut_down(),
        })
    }

    /// UnregisterBroker as Kafka's `ReplicationControlManager.unregisterBroker`:
    /// `BROKER_ID_NOT_REGISTERED` for an unknown broker; else its ISR memberships and
    /// leaderships move away and an `UnregisterBrokerRecord` removes it.
    ///
    /// This node's own broker cannot be unregistered while it runs (a Kafka broker would
    /// register again at its next heartbeat; this one is registered only at start-up):
    /// `INVALID_REQUEST`.
    pub fn unregister_broker(&self, broker: i32) -> Result<(), ApiError> {
        if broker == self.options.node_id && !self.is_cluster() {
            return Err(ApiError::new(
                INVALID_REQUEST,
                format!("Broker {broker} is this node's own broker, which is running."),
            ));
        }
        let mut log = self.lock();
        log.check_active().map_err(|e| e.to_api_error())?;
        let image = self.image();
        let Some(registration) = image.broker(broker) else {
            return Err(ApiError::new(
                BROKER_ID_NOT_REGISTERED,
                format!("Broker ID {broker} is not currently registered"),
            ));
        };
        let mut records =
            self.leader_and_isr_updates(&image, broker, NO_LEADER, |p| p.isr.contains(&broker));
        records.push(v0(MetadataRecord::UnregisterBroker(
            UnregisterBrokerRecord {
                broker_id: broker,
                broker_epoch: registration.epoch,
                ..Default::default()
            },
        )));
        self.commit(&mut log, records)
            .map_err(|e| e.to_api_error())?;
        self.members().remove(broker);
        tracing::info!(broker, "unregistered the broker");
        Ok(())
    }

    /// Kafka's `maybeFenceOneStaleBroker`, repeated: fences each broker whose session has
    /// expired, one batch per broker (so each fencing is visible before the next is
    /// decided). Returns the brokers fenced.
    pub fn fence_stale_brokers(&self) -> Result<Vec<i32>, ControllerError> {
        let mut fenced = Vec::new();
        loop {
            let mut log = self.lock();
            self.ensure_activated(&mut log)?;
            let image = self.image();
            let now = Instant::now();
            let stale = {
                let mut members = self.members();
                self.touch_self(&mut members, log.next_offset(), now);
                members.stale_broker(now, self.session_exempt())
            };
            let Some(broker) = stale else {
                return Ok(fenced);
            };
            if image.broker(broker).is_none_or(|b| b.fenced) {
                // Already fenced in the log: only the session was left.
                self.members().fence(broker);
                continue;
            }
            let records = self.broker_fenced_records(&image, broker);
            // Logged once committed: a leader resumed after a pause tries with the contacts
            // it had before, and fails (a newer epoch has its own controller).
            self.commit(&mut log, records)?;
            tracing::info!(broker, "fenced the broker: its session had timed out");
            self.members().fence(broker);
            fenced.push(broker);
        }
    }

    /// Whether a session may have expired by now (cheap: no log access), for the timer.
    pub fn has_stale_session(&self) -> bool {
        let now = Instant::now();
        self.members()
            .next_expiry(self.session_exempt())
            .is_some_and(|expiry| expiry < now)
    }

    /// `broker.session.timeout.ms`.
    pub fn session_timeout(&self) -> Duration {
        self.members().session_timeout()
    }
}

/// Runs [`Controller::fence_stale_brokers`] whenever a session may have expired, until
/// `stop` changes (Kafka reschedules its `maybeFenceStaleBroker` event at the next expiry;
/// a short tick over an in-memory check does the same here).
pub async fn run_session_timer(
    controller: std::sync::Arc<Controller>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let tick = (controller.session_timeout() / 8)
        .clamp(Duration::from_millis(10), Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        // Only the active controller fences (Kafka schedules the event on it alone).
        if !controller.is_active() || !controller.has_stale_session() {
            continue;
        }
        if let Err(err) = controller.run(|c| c.fence_stale_brokers()).await {
            tracing::error!("fencing brokers with expired sessions failed: {err}");
        }
    }
}
