//! One module per API. Each declares the versions it serves (within the schema's) and an
//! async `handle` from the request type to the response type; [`dispatch`] routes to them
//! and [`supported_versions`] is what ApiVersions advertises.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod add_raft_voter;
pub mod allocate_producer_ids;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition;
pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod authorize;
pub mod broker_configs;
pub mod broker_heartbeat;
pub mod broker_registration;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod controller_apis;
pub mod controller_registration;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod envelope;
pub mod fetch;
pub mod fetch_snapshot;
pub mod find_coordinator;
pub mod forwarding;
pub mod get_telemetry_subscriptions;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod legacy_versions;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod metadata_fetch;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod pipeline;
pub mod produce;
pub mod push_telemetry;
mod raft_voters;
pub mod remove_raft_voter;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod unregister_broker;
pub mod update_features;
pub mod update_raft_voter;
pub mod write_txn_markers;

use std::net::SocketAddr;
use std::sync::Arc;

use gregor_protocol::error_code;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, ErrorCode, RequestBody, ResponseBody, VersionRange};

use crate::broker::Broker;

/// What a handler knows about the request besides its body.
#[derive(Clone)]
pub struct RequestContext {
    /// Shared broker state.
    pub broker: Arc<Broker>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The name of the listener the request arrived on (e.g. `PLAINTEXT`).
    pub listener: String,
    /// What the client said of itself in ApiVersions v3+ (kept for the connection, as
    /// Kafka's `ClientInformation` in the channel metadata).
    pub client_software: Arc<std::sync::Mutex<ClientSoftware>>,
    /// Who the connection authenticated as (`User:ANONYMOUS` without authentication), for
    /// authorization and quotas.
    pub principal: Arc<crate::security::KafkaPrincipal>,
}

/// A connection's client software, from ApiVersions v3+ (Kafka's `ClientInformation`);
/// `unknown` until the client says, as Kafka's `UNKNOWN_NAME_OR_VERSION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSoftware {
    /// `client_software_name`.
    pub name: String,
    /// `client_software_version`.
    pub version: String,
}

impl Default for ClientSoftware {
    fn default() -> ClientSoftware {
        ClientSoftware {
            name: "unknown".to_string(),
            version: "unknown".to_string(),
        }
    }
}

impl RequestContext {
    /// The connection's client software, as ApiVersions told it.
    pub fn client_software(&self) -> ClientSoftware {
        self.client_software
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The versions of `api_key` served to this request: [`served_versions`] with the
    /// broker's `legacy.api.versions.enable`.
    pub fn served_versions(&self, api_key: ApiKey) -> Option<VersionRange> {
        let legacy = self.broker.config.legacy_api_versions_enable;
        if self.on_controller_listener() {
            return controller_apis::served_in(api_key, legacy, self.broker.config.is_cluster());
        }
        served_versions(api_key, legacy)
    }

    /// Whether the request came in on a controller listener (`controller.listener.names`),
    /// which serves [`controller_apis`].
    pub fn on_controller_listener(&self) -> bool {
        self.broker.config.is_controller()
            && self.broker.config.is_controller_listener(&self.listener)
    }
}

/// Every API this broker serves, with the versions it serves.
pub const HANDLED: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, produce::VERSIONS),
    (ApiKey::Fetch, fetch::VERSIONS),
    (ApiKey::ListOffsets, list_offsets::VERSIONS),
    (ApiKey::Metadata, metadata::VERSIONS),
    (ApiKey::ApiVersions, api_versions::VERSIONS),
    (
        ApiKey::DescribeTopicPartitions,
        describe_topic_partitions::VERSIONS,
    ),
    (ApiKey::CreateTopics, create_topics::VERSIONS),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS),
    (ApiKey::DeleteRecords, delete_records::VERSIONS),
    (ApiKey::InitProducerId, init_producer_id::VERSIONS),
    (ApiKey::AddPartitionsToTxn, add_partitions_to_txn::VERSIONS),
    (ApiKey::AddOffsetsToTxn, add_offsets_to_txn::VERSIONS),
    (ApiKey::EndTxn, end_txn::VERSIONS),
    (ApiKey::WriteTxnMarkers, write_txn_markers::VERSIONS),
    (ApiKey::TxnOffsetCommit, txn_offset_commit::VERSIONS),
    (
        ApiKey::DescribeTransactions,
        describe_transactions::VERSIONS,
    ),
    (ApiKey::ListTransactions, list_transactions::VERSIONS),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS),
    (ApiKey::AlterConfigs, alter_configs::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        incremental_alter_configs::VERSIONS,
    ),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    (ApiKey::SaslHandshake, sasl_handshake::VERSIONS),
    (ApiKey::SaslAuthenticate, sasl_authenticate::VERSIONS),
    (
        ApiKey::DescribeUserScramCredentials,
        describe_user_scram_credentials::VERSIONS,
    ),
    (
        ApiKey::AlterUserScramCredentials,
        alter_user_scram_credentials::VERSIONS,
    ),
    (
        ApiKey::DescribeClientQuotas,
        describe_client_quotas::VERSIONS,
    ),
    (ApiKey::AlterClientQuotas, alter_client_quotas::VERSIONS),
    (ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    (ApiKey::JoinGroup, join_group::VERSIONS),
    (ApiKey::SyncGroup, sync_group::VERSIONS),
    (ApiKey::Heartbeat, heartbeat::VERSIONS),
    (ApiKey::LeaveGroup, leave_group::VERSIONS),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    (ApiKey::ListGroups, list_groups::VERSIONS),
    (ApiKey::DescribeGroups, describe_groups::VERSIONS),
    (
        ApiKey::ConsumerGroupHeartbeat,
        consumer_group_heartbeat::VERSIONS,
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        consumer_group_describe::VERSIONS,
    ),
    (ApiKey::DeleteGroups, delete_groups::VERSIONS),
    (ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS),
    (
        ApiKey::AlterReplicaLogDirs,
        alter_replica_log_dirs::VERSIONS,
    ),
    (ApiKey::DescribeProducers, describe_producers::VERSIONS),
    (ApiKey::ListConfigResources, list_config_resources::VERSIONS),
    (ApiKey::UpdateFeatures, update_features::VERSIONS),
    (ApiKey::DescribeQuorum, describe_quorum::VERSIONS),
    (ApiKey::AddRaftVoter, add_raft_voter::VERSIONS),
    (ApiKey::RemoveRaftVoter, remove_raft_voter::VERSIONS),
    (
        ApiKey::GetTelemetrySubscriptions,
        get_telemetry_subscriptions::VERSIONS,
    ),
    (ApiKey::PushTelemetry, push_telemetry::VERSIONS),
    (ApiKey::OffsetDelete, offset_delete::VERSIONS),
    (
        ApiKey::OffsetForLeaderEpoch,
        offset_for_leader_epoch::VERSIONS,
    ),
    (ApiKey::ElectLeaders, elect_leaders::VERSIONS),
    (
        ApiKey::AlterPartitionReassignments,
        alter_partition_reassignments::VERSIONS,
    ),
    (
        ApiKey::ListPartitionReassignments,
        list_partition_reassignments::VERSIONS,
    ),
    (ApiKey::UnregisterBroker, unregister_broker::VERSIONS),
    (ApiKey::CreateAcls, create_acls::VERSIONS),
    (ApiKey::DescribeAcls, describe_acls::VERSIONS),
    (ApiKey::DeleteAcls, delete_acls::VERSIONS),
];

/// The versions of `api_key` this broker serves, if any.
pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    HANDLED
        .iter()
        .find(|(key, _)| *key == api_key)
        .map(|(_, versions)| *versions)
}

/// The versions of `api_key` served when the versions Kafka 4 dropped are served
/// (`legacy`) or not: [`supported_versions`], from Kafka 4's floor up when not
/// ([`legacy_versions::served`]).
pub fn served_versions(api_key: ApiKey, legacy: bool) -> Option<VersionRange> {
    supported_versions(api_key)
        .and_then(|handled| legacy_versions::served(api_key, handled, legacy))
}

/// Runs the handler of `body`. `None` means no response is sent.
pub async fn dispatch(
    ctx: &RequestContext,
    header: &RequestHeader,
    version: i16,
    body: RequestBody,
) -> Option<ResponseBody> {
    let _ = header;
    Some(match body {
        RequestBody::ApiVersions(request) => api_versions::handle(ctx, version, request).into(),
        RequestBody::DescribeUserScramCredentials(request) => {
            describe_user_scram_credentials::handle(ctx, version, request).into()
        }
        RequestBody::AlterUserScramCredentials(request) => {
            alter_user_scram_credentials::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::DescribeClientQuotas(request) => {
            describe_client_quotas::handle(ctx, version, request).into()
        }
        RequestBody::AlterClientQuotas(request) => {
            alter_client_quotas::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::SaslHandshake(request) => sasl_handshake::handle(ctx, version, request).into(),
        RequestBody::SaslAuthenticate(request) => {
            sasl_authenticate::handle(ctx, version, request).into()
        }
        RequestBody::Metadata(request) => metadata::handle(ctx, version, request).await.into(),
        RequestBody::DescribeTopicPartitions(request) => {
            describe_topic_partitions::handle(ctx, version, request).into()
        }
        RequestBody::Fetch(request) => fetch::handle(ctx, version, request).await.into(),
        RequestBody::FetchSnapshot(request) => fetch_snapshot::handle(ctx, version, request).into(),
        RequestBody::ListOffsets(request) => {
            list_offsets::handle(ctx, version, request).await.into()
        }
        RequestBody::Produce(request) => produce::handle(ctx, version, request).await?.into(),
        RequestBody::CreateTopics(request) => create_topics::handle(ctx, header, version, request)
            .await
            .into(),
        RequestBody::DeleteTopics(request) => delete_topics::handle(ctx, header, version, request)
            .await
            .into(),
        RequestBody::DeleteRecords(request) => {
            delete_records::handle(ctx, version, request).await.into()
        }
        RequestBody::InitProducerId(request) => {
            init_producer_id::handle(ctx, version, request).await.into()
        }
        RequestBody::AddPartitionsToTxn(request) => {
            add_partitions_to_txn::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::AddOffsetsToTxn(request) => add_offsets_to_txn::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::EndTxn(request) => end_txn::handle(ctx, version, request).await.into(),
        RequestBody::WriteTxnMarkers(request) => write_txn_markers::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::TxnOffsetCommit(request) => txn_offset_commit::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::DescribeTransactions(request) => {
            describe_transactions::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::ListTransactions(request) => list_transactions::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::DescribeConfigs(request) => {
            describe_configs::handle(ctx, version, request).into()
        }
        RequestBody::CreatePartitions(request) => {
            create_partitions::handle(ctx, header, version, request)
                .await
                .into()
        }
        RequestBody::AlterConfigs(request) => {
            alter_configs::handle(ctx, version, request).await.into()
        }
        RequestBody::IncrementalAlterConfigs(request) => {
            incremental_alter_configs::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::DescribeCluster(request) => {
            describe_cluster::handle(ctx, version, request).into()
        }
        RequestBody::FindCoordinator(request) => {
            find_coordinator::handle(ctx, version, request).await.into()
        }
        RequestBody::JoinGroup(request) => join_group::handle(ctx, header, version, request)
            .await
            .into(),
        RequestBody::SyncGroup(request) => sync_group::handle(ctx, version, request).await.into(),
        RequestBody::Heartbeat(request) => heartbeat::handle(ctx, version, request).await.into(),
        RequestBody::ConsumerGroupHeartbeat(request) => {
            consumer_group_heartbeat::handle(ctx, header, version, request)
                .await
                .into()
        }
        RequestBody::ConsumerGroupDescribe(request) => {
            consumer_group_describe::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::LeaveGroup(request) => leave_group::handle(ctx, version, request).await.into(),
        RequestBody::OffsetCommit(request) => {
            offset_commit::handle(ctx, version, request).await.into()
        }
        RequestBody::OffsetFetch(request) => {
            offset_fetch::handle(ctx, version, request).await.into()
        }
        RequestBody::ListGroups(request) => list_groups::handle(ctx, version, request).await.into(),
        RequestBody::DescribeGroups(request) => {
            describe_groups::handle(ctx, version, request).await.into()
        }
        RequestBody::DeleteGroups(request) => {
            delete_groups::handle(ctx, version, request).await.into()
        }
        RequestBody::DescribeLogDirs(request) => describe_log_dirs::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::AlterReplicaLogDirs(request) => {
            alter_replica_log_dirs::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::DescribeProducers(request) => {
            describe_producers::handle(ctx, version, request).into()
        }
        RequestBody::ListConfigResources(request) => {
            list_config_resources::handle(ctx, version, request).into()
        }
        RequestBody::UpdateFeatures(request) => {
            update_features::handle(ctx, version, request).await.into()
        }
        RequestBody::DescribeQuorum(request) => {
            describe_quorum::handle(ctx, version, request).into()
        }
        RequestBody::AddRaftVoter(request) => {
            add_raft_voter::handle(ctx, version, request).await.into()
        }
        RequestBody::RemoveRaftVoter(request) => remove_raft_voter::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::UpdateRaftVoter(request) => update_raft_voter::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::GetTelemetrySubscriptions(request) => {
            get_telemetry_subscriptions::handle(ctx, header, version, request).into()
        }
        RequestBody::PushTelemetry(request) => {
            push_telemetry::handle(ctx, header, version, request).into()
        }
        RequestBody::OffsetDelete(request) => {
            offset_delete::handle(ctx, version, request).await.into()
        }
        RequestBody::OffsetForLeaderEpoch(request) => {
            offset_for_leader_epoch::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::CreateAcls(request) => create_acls::handle(ctx, version, request).await.into(),
        RequestBody::BrokerRegistration(request) => {
            broker_registration::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::BrokerHeartbeat(request) => {
            broker_heartbeat::handle(ctx, version, request).await.into()
        }
        RequestBody::AllocateProducerIds(request) => {
            allocate_producer_ids::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::UnregisterBroker(request) => unregister_broker::handle(ctx, version, request)
            .await
            .into(),
        RequestBody::ControllerRegistration(request) => {
            controller_registration::handle(ctx, version, request).into()
        }
        RequestBody::AlterPartition(request) => {
            alter_partition::handle(ctx, version, request).await.into()
        }
        RequestBody::ElectLeaders(request) => {
            elect_leaders::handle(ctx, version, request).await.into()
        }
        RequestBody::AlterPartitionReassignments(request) => {
            alter_partition_reassignments::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::ListPartitionReassignments(request) => {
            list_partition_reassignments::handle(ctx, version, request)
                .await
                .into()
        }
        RequestBody::Envelope(request) => envelope::handle(ctx, version, request).await.into(),
        RequestBody::DescribeAcls(request) => describe_acls::handle(ctx, version, request).into(),
        RequestBody::DeleteAcls(request) => delete_acls::handle(ctx, version, request).await.into(),
        other => {
            // The connection checks `supported_versions` first, so this is a broker bug.
            tracing::error!("no handler for {}", other.api_key().name());
            return None;
        }
    })
}

/// Kafka's default message of an error code, for the codes whose handlers send it as the
/// `error_message` (Kafka's exception carries its default text there); `None` for the others.
pub fn default_message(code: i16) -> Option<&'static str> {
    matches!(
        code,
        error_code::INVALID_REQUEST
            | error_code::UNKNOWN_TOPIC_OR_PARTITION
            | error_code::UNKNOWN_TOPIC_ID
            | error_code::TOPIC_DELETION_DISABLED
    )
    .then(|| ErrorCode::from(code).default_message())
    .flatten()
}

/// The error every item of a request gets when a controller operation failed as a whole
/// (the metadata log could not be written), as Kafka's `getErrorResponse` reports an
/// exception: `ApiError.fromThrowable` keeps no message for UNKNOWN_SERVER_ERROR.
pub fn controller_failure(
    err: &crate::cluster::ControllerError,
) -> crate::cluster::controller::ApiError {
    let error = err.to_api_error();
    if error.code == error_code::UNKNOWN_SERVER_ERROR {
        tracing::error!("controller operation failed: {err}");
        crate::cluster::controller::ApiError {
            code: error.code,
            message: None,
        }
    } else {
        error
    }
}

#[cfg(test)]
mod coverage_tests;
