//! The APIs of the controller listener (the listeners named in `controller.listener.names`,
//! bound when `process.roles` contains `controller`), as Kafka's `ControllerApis` serves
//! them: the APIs only brokers send to their controller (BrokerRegistration,
//! BrokerHeartbeat, ControllerRegistration, AlterPartition, AllocateProducerIds,
//! UpdateRaftVoter), and of the APIs this broker
//! handles those whose definition lists the `controller` listener (Kafka's
//! `ListenerType.CONTROLLER`), except Fetch: the controller listener's Fetch serves only
//! the metadata log to other nodes, which a cluster controller does ([`served_in`]:
//! `metadata_fetch.rs`, with FetchSnapshot in `fetch_snapshot.rs`). ApiVersions on the
//! controller listener advertises exactly these.

use gregor_protocol::{ApiKey, VersionRange};

use super::{
    allocate_producer_ids, alter_partition, broker_heartbeat, broker_registration,
    controller_registration, envelope, served_versions, update_raft_voter,
};

/// The APIs served only on the controller listener.
pub const CONTROLLER_ONLY: &[(ApiKey, VersionRange)] = &[
    (ApiKey::AllocateProducerIds, allocate_producer_ids::VERSIONS),
    (ApiKey::AlterPartition, alter_partition::VERSIONS),
    (ApiKey::BrokerRegistration, broker_registration::VERSIONS),
    (ApiKey::BrokerHeartbeat, broker_heartbeat::VERSIONS),
    (
        ApiKey::ControllerRegistration,
        controller_registration::VERSIONS,
    ),
    // Requests brokers forward on their clients' behalf (`envelope.rs`).
    (ApiKey::Envelope, envelope::VERSIONS),
    // A voter telling the quorum's leader its new endpoint (KIP-853).
    (ApiKey::UpdateRaftVoter, update_raft_voter::VERSIONS),
];

/// The versions of `api_key` served on the controller listener; `legacy`:
/// `legacy.api.versions.enable`.
pub fn served(api_key: ApiKey, legacy: bool) -> Option<VersionRange> {
    if let Some((_, versions)) = CONTROLLER_ONLY.iter().find(|(key, _)| *key == api_key) {
        return Some(*versions);
    }
    if api_key == ApiKey::Fetch || !api_key.listeners().contains(&"controller") {
        return None;
    }
    served_versions(api_key, legacy)
}

/// [`served`] for a node that is (`cluster`) or is not part of a cluster: a cluster
/// controller's listener also serves Fetch, of the metadata partition only
/// (`metadata_fetch.rs`), as Kafka's `ControllerApis.handleFetch` hands it to the Raft
/// client.
pub fn served_in(api_key: ApiKey, legacy: bool, cluster: bool) -> Option<VersionRange> {
    if cluster && api_key == ApiKey::Fetch {
        return served_versions(api_key, legacy);
    }
    if cluster && api_key == ApiKey::FetchSnapshot {
        return Some(super::fetch_snapshot::VERSIONS);
    }
    served(api_key, legacy)
}

/// [`all`] for a node that is (`cluster`) or is not part of a cluster (see [`served_in`]).
pub fn all_in(legacy: bool, cluster: bool) -> Vec<(ApiKey, VersionRange)> {
    let mut apis = all(legacy);
    for api in [ApiKey::Fetch, ApiKey::FetchSnapshot] {
        if let Some(versions) = served_in(api, legacy, cluster) {
            apis.push((api, versions));
        }
    }
    apis.sort_by_key(|(api, _)| api.key());
    apis.dedup_by_key(|(api, _)| api.key());
    apis
}

/// Every API served on the controller listener with its versions, by key.
pub fn all(legacy: bool) -> Vec<(ApiKey, VersionRange)> {
    let mut apis: Vec<(ApiKey, VersionRange)> = CONTROLLER_ONLY
        .iter()
        .copied()
        .chain(
            super::HANDLED
                .iter()
                .filter_map(|(api, _)| Some((*api, served(*api, legacy)?))),
        )
        .collect();
    apis.sort_by_key(|(api, _)| api.key());
    apis.dedup_by_key(|(api, _)| api.key());
    apis
}
