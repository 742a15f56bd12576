//! ApiVersions (key 18): the served APIs and versions, finalized features, the v0 response
//! header of every version, and KIP-511's answer to a version the broker does not know.

use gregor_protocol::ApiKey;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;

use crate::support::{Broker, DataDir, METADATA_VERSION, TopicSpec};
use crate::{api_versions_request, connect, decode_frame, error, raw_request};

/// What the broker's handlers declare: (key, min, max), sorted by key. ApiVersions must
/// list exactly this.
fn served() -> Vec<(i16, i16, i16)> {
    let mut served: Vec<_> = gregor_broker::handlers::HANDLED
        .iter()
        .map(|(api, versions)| {
            // Produce is advertised from v0, as Kafka does (KAFKA-18659); v0-v2 are also
            // served (issue 11).
            let min = if *api == ApiKey::Produce {
                0
            } else {
                versions.min
            };
            (api.key(), min, versions.max)
        })
        .collect();
    served.sort();
    served
}

/// The ranges the issues require, at least: Produce 3-13 (advertised from 0), Fetch 0-18, ListOffsets 0-11,
/// Metadata 0-13, ApiVersions 0-4, DescribeTopicPartitions 0.
#[test]
fn the_required_ranges_are_served() {
    let served = served();
    for required in [
        (0, 0, 13),
        (1, 0, 18),
        (2, 0, 11),
        (3, 0, 13),
        (18, 0, 4),
        (75, 0, 0),
    ] {
        assert!(served.contains(&required), "{required:?} not in {served:?}");
    }
}

fn fixture() -> DataDir {
    DataDir::builder()
        .feature("group.version", 1)
        .topic(TopicSpec::new("t", 1).records(5))
        .build()
}

fn listed(response: &ApiVersionsResponse) -> Vec<(i16, i16, i16)> {
    response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect()
}

#[test]
fn every_version_lists_exactly_the_served_apis_sorted_by_key() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    for version in 0..=4 {
        let response = client
            .call(&api_versions_request(), version)
            .unwrap_or_else(|e| panic!("ApiVersions v{version}: {e}"));
        assert_eq!(response.error_code, error::NONE, "v{version}");
        assert_eq!(listed(&response), served(), "v{version}");
        assert_eq!(response.throttle_time_ms, 0, "v{version}");
    }
}

#[test]
fn finalized_features_come_from_the_metadata_log() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    // The fixture's records plus what the broker itself appended at start-up (a leader
    // change for its new epoch, its registration): the last offset of the log on disk.
    let fixture_last = data.metadata_batches.last().copied().expect("batches") - 1;
    let last_offset = last_metadata_offset(&data);
    assert!(last_offset >= fixture_last, "the metadata log lost records");
    for version in [3, 4] {
        let response = client.call(&api_versions_request(), version).unwrap();
        let finalized: Vec<(String, i16, i16)> = response
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
            .collect();
        // Kafka reports each finalized level as both min and max
        // (ApiVersionsResponse.createApiVersionsResponse). Kafka 3.9+ may add kraft.version,
        // which the fixture does not finalize, so only the written features are required.
        for (name, level) in [("metadata.version", METADATA_VERSION), ("group.version", 1)] {
            assert!(
                finalized.contains(&(name.to_string(), level, level)),
                "v{version}: finalized features {finalized:?} lack {name}={level}"
            );
        }
        // The epoch of the finalized features is the offset of the metadata image
        // (KRaftMetadataCache.features: image.highestOffsetAndEpoch().offset).
        assert_eq!(
            response.finalized_features_epoch, last_offset,
            "v{version}: finalized_features_epoch"
        );
        let metadata_version = response
            .supported_features
            .iter()
            .find(|f| &*f.name == "metadata.version")
            .unwrap_or_else(|| panic!("v{version}: metadata.version not among supported features"));
        assert!(
            metadata_version.min_version <= METADATA_VERSION
                && METADATA_VERSION <= metadata_version.max_version,
            "v{version}: supported metadata.version {}-{} excludes the finalized level",
            metadata_version.min_version,
            metadata_version.max_version
        );
        assert!(!response.zk_migration_ready, "v{version}");
    }
}

#[test]
fn response_header_is_v0_even_for_flexible_versions() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    for version in [3, 4] {
        let (pending, frame) = client.encode(&api_versions_request(), version);
        client.send_raw(&frame).unwrap();
        let response = client.read_frame().unwrap();
        // Response header v0: the correlation id only; the body (error code 0, then the
        // compact array length 4 + 1) follows at once, without a tag buffer.
        assert_eq!(
            &response[..4],
            &pending.correlation_id.to_be_bytes(),
            "v{version}: correlation id"
        );
        assert_eq!(
            &response[4..7],
            &[0, 0, served().len() as u8 + 1],
            "v{version}: the body must start right after the correlation id"
        );
        let body = decode_frame::<ApiVersionsRequest>(response, pending);
        assert_eq!(listed(&body), served());
    }
}

/// An ApiVersions request at `version` with a v2 header and an empty v3-shaped body.
fn api_versions_frame(version: i16, correlation_id: i32) -> Vec<u8> {
    // Body: client_software_name "" and client_software_version "" (compact strings), no tags.
    raw_request(
        ApiKey::ApiVersions.key(),
        version,
        correlation_id,
        2,
        &[1, 1, 0],
    )
}

#[test]
fn unsupported_version_gets_error_35_in_a_v0_body_and_the_connection_stays_open() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    for (i, version) in [5i16, 127, i16::MAX].into_iter().enumerate() {
        let correlation_id = 1000 + i as i32;
        client
            .send_raw(&api_versions_frame(version, correlation_id))
            .unwrap();
        let frame = client.read_frame().unwrap_or_else(|e| {
            panic!(
                "no answer to ApiVersions v{version}: {e}\n{}",
                broker.log_text()
            )
        });
        let pending = crate::support::client::Pending {
            correlation_id,
            api_key: ApiKey::ApiVersions,
            version: 0,
        };
        let body = decode_frame::<ApiVersionsRequest>(frame, pending);
        assert_eq!(body.error_code, error::UNSUPPORTED_VERSION, "v{version}");
        // KIP-511: the list says which ApiVersions versions to retry with; like Kafka
        // (ApiVersionsRequest.getErrorResponse) it holds only ApiVersions itself.
        assert_eq!(body.api_keys.len(), 1, "v{version}");
        let api_versions = body
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::ApiVersions.key())
            .unwrap_or_else(|| panic!("v{version}: ApiVersions missing from {:?}", body.api_keys));
        assert_eq!((api_versions.min_version, api_versions.max_version), (0, 4));
        // The connection is still usable.
        let response = client.call(&api_versions_request(), 3).unwrap();
        assert_eq!(response.error_code, error::NONE, "after v{version}");
        assert_eq!(listed(&response), served());
    }
    assert!(broker.try_exit().is_none());
}

#[test]
fn kafka_parity_v3_requests_must_name_the_client_software() {
    // KafkaApis.handleApiVersionsRequest answers INVALID_REQUEST (42) when a v3+ request's
    // client_software_name or client_software_version does not match
    // `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` (ApiVersionsRequest.isValid); the empty
    // strings of an older client's default do not match either.
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    for (name, version) in [
        ("", ""),
        ("bad name!", "1.0"),
        ("client", "-1.0"),
        ("client", "1.0+x"),
    ] {
        let request = ApiVersionsRequest {
            client_software_name: name.into(),
            client_software_version: version.into(),
            ..Default::default()
        };
        let response = client.call(&request, 3).unwrap();
        assert_eq!(
            response.error_code,
            error::INVALID_REQUEST,
            "client software {name:?} {version:?}"
        );
    }
}

/// The last offset in the data directory's `__cluster_metadata-0` segments.
fn last_metadata_offset(data: &DataDir) -> i64 {
    let dir = data.path().join("__cluster_metadata-0");
    let mut last = -1;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
            for batch in gregor_protocol::records::RecordBatches::new(bytes) {
                last = last.max(batch.unwrap().last_offset());
            }
        }
    }
    last
}

#[test]
fn produce_is_served_from_v0() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let response = client.call(&api_versions_request(), 3).unwrap();
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("Produce listed");
    // Kafka 3.9's floor: v0-v2 carry legacy message sets, up-converted on append.
    assert_eq!((produce.min_version, produce.max_version), (0, 13));
}

/// A minimal valid request of every API the broker advertises (the defaults of the
/// schema, but for what a handler needs to answer at all). An API added to `HANDLED`
/// without an entry here fails [`every_advertised_api_answers_at_every_version`].
fn minimal_request(api: ApiKey, version: i16) -> gregor_protocol::RequestBody {
    use gregor_protocol::messages::*;
    match api {
        // acks=0 gets no response; -1 does.
        ApiKey::Produce => produce_request::ProduceRequest {
            acks: -1,
            timeout_ms: 1000,
            ..Default::default()
        }
        .into(),
        ApiKey::Fetch => fetch_request::FetchRequest {
            replica_id: -1,
            ..Default::default()
        }
        .into(),
        ApiKey::ListOffsets => list_offsets_request::ListOffsetsRequest {
            replica_id: -1,
            ..Default::default()
        }
        .into(),
        ApiKey::Metadata => metadata_request::MetadataRequest::default().into(),
        ApiKey::ApiVersions => api_versions_request().into(),
        ApiKey::DescribeTopicPartitions => {
            describe_topic_partitions_request::DescribeTopicPartitionsRequest {
                response_partition_limit: 10,
                ..Default::default()
            }
            .into()
        }
        ApiKey::CreateTopics => create_topics_request::CreateTopicsRequest::default().into(),
        ApiKey::DeleteTopics => delete_topics_request::DeleteTopicsRequest::default().into(),
        ApiKey::DeleteRecords => delete_records_request::DeleteRecordsRequest::default().into(),
        ApiKey::InitProducerId => init_producer_id_request::InitProducerIdRequest {
            transaction_timeout_ms: 60_000,
            ..Default::default()
        }
        .into(),
        ApiKey::DescribeConfigs => {
            describe_configs_request::DescribeConfigsRequest::default().into()
        }
        ApiKey::CreatePartitions => {
            create_partitions_request::CreatePartitionsRequest::default().into()
        }
        ApiKey::IncrementalAlterConfigs => {
            incremental_alter_configs_request::IncrementalAlterConfigsRequest::default().into()
        }
        ApiKey::DescribeCluster => {
            describe_cluster_request::DescribeClusterRequest::default().into()
        }
        // One key up to v3, a list of keys from v4.
        ApiKey::FindCoordinator if version < 4 => {
            find_coordinator_request::FindCoordinatorRequest {
                key: "g".into(),
                ..Default::default()
            }
            .into()
        }
        ApiKey::FindCoordinator => find_coordinator_request::FindCoordinatorRequest {
            coordinator_keys: vec!["g".into()],
            ..Default::default()
        }
        .into(),
        ApiKey::JoinGroup => join_group_request::JoinGroupRequest::default().into(),
        ApiKey::SyncGroup => sync_group_request::SyncGroupRequest::default().into(),
        ApiKey::Heartbeat => heartbeat_request::HeartbeatRequest::default().into(),
        ApiKey::LeaveGroup => leave_group_request::LeaveGroupRequest::default().into(),
        ApiKey::OffsetCommit => offset_commit_request::OffsetCommitRequest::default().into(),
        ApiKey::OffsetFetch => offset_fetch_request::OffsetFetchRequest::default().into(),
        ApiKey::ListGroups => list_groups_request::ListGroupsRequest::default().into(),
        ApiKey::DescribeGroups => describe_groups_request::DescribeGroupsRequest::default().into(),
        // An unknown member's heartbeat: GROUP_ID_NOT_FOUND for a group that does not exist.
        ApiKey::ConsumerGroupHeartbeat => {
            consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest {
                group_id: "api-versions-cg".into(),
                member_id: "m".into(),
                member_epoch: 1,
                ..Default::default()
            }
            .into()
        }
        ApiKey::ConsumerGroupDescribe => {
            consumer_group_describe_request::ConsumerGroupDescribeRequest {
                group_ids: vec!["api-versions-cg".into()],
                ..Default::default()
            }
            .into()
        }
        ApiKey::DeleteGroups => delete_groups_request::DeleteGroupsRequest::default().into(),
        ApiKey::UpdateFeatures => update_features_request::UpdateFeaturesRequest::default().into(),
        ApiKey::DescribeQuorum => describe_quorum_request::DescribeQuorumRequest::default().into(),
        ApiKey::GetTelemetrySubscriptions => {
            get_telemetry_subscriptions_request::GetTelemetrySubscriptionsRequest::default().into()
        }
        ApiKey::PushTelemetry => push_telemetry_request::PushTelemetryRequest::default().into(),
        ApiKey::AlterConfigs => alter_configs_request::AlterConfigsRequest::default().into(),
        ApiKey::OffsetDelete => offset_delete_request::OffsetDeleteRequest {
            group_id: "minimal".into(),
            ..Default::default()
        }
        .into(),
        ApiKey::OffsetForLeaderEpoch => {
            offset_for_leader_epoch_request::OffsetForLeaderEpochRequest {
                replica_id: -1,
                ..Default::default()
            }
            .into()
        }
        ApiKey::AlterReplicaLogDirs => {
            alter_replica_log_dirs_request::AlterReplicaLogDirsRequest::default().into()
        }
        ApiKey::DescribeLogDirs => {
            describe_log_dirs_request::DescribeLogDirsRequest::default().into()
        }
        ApiKey::AddPartitionsToTxn => {
            add_partitions_to_txn_request::AddPartitionsToTxnRequest::default().into()
        }
        ApiKey::AddOffsetsToTxn => {
            add_offsets_to_txn_request::AddOffsetsToTxnRequest::default().into()
        }
        ApiKey::EndTxn => end_txn_request::EndTxnRequest::default().into(),
        ApiKey::WriteTxnMarkers => {
            write_txn_markers_request::WriteTxnMarkersRequest::default().into()
        }
        ApiKey::TxnOffsetCommit => {
            txn_offset_commit_request::TxnOffsetCommitRequest::default().into()
        }
        ApiKey::DescribeTransactions => {
            describe_transactions_request::DescribeTransactionsRequest::default().into()
        }
        ApiKey::ListTransactions => {
            list_transactions_request::ListTransactionsRequest::default().into()
        }
        ApiKey::DescribeProducers => {
            describe_producers_request::DescribeProducersRequest::default().into()
        }
        ApiKey::ListConfigResources => {
            list_config_resources_request::ListConfigResourcesRequest::default().into()
        }
        ApiKey::DescribeUserScramCredentials => {
            gregor_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest::default()
                .into()
        }
        ApiKey::AlterUserScramCredentials => {
            gregor_protocol::messages::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest::default()
                .into()
        }
        ApiKey::CreateAcls => {
            gregor_protocol::messages::create_acls_request::CreateAclsRequest::default().into()
        }
        ApiKey::DescribeAcls => {
            gregor_protocol::messages::describe_acls_request::DescribeAclsRequest::default().into()
        }
        ApiKey::DeleteAcls => {
            gregor_protocol::messages::delete_acls_request::DeleteAclsRequest::default().into()
        }
        ApiKey::DescribeClientQuotas => {
            gregor_protocol::messages::describe_client_quotas_request::DescribeClientQuotasRequest::default()
                .into()
        }
        ApiKey::AlterClientQuotas => {
            gregor_protocol::messages::alter_client_quotas_request::AlterClientQuotasRequest::default()
                .into()
        }
        ApiKey::SaslHandshake => {
            gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest::default()
                .into()
        }
        ApiKey::SaslAuthenticate => {
            gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest::default()
                .into()
        }
        ApiKey::ElectLeaders => {
            gregor_protocol::messages::elect_leaders_request::ElectLeadersRequest::default().into()
        }
        ApiKey::UnregisterBroker => {
            gregor_protocol::messages::unregister_broker_request::UnregisterBrokerRequest::default()
                .into()
        }
        ApiKey::AlterPartitionReassignments => {
            alter_partition_reassignments_request::AlterPartitionReassignmentsRequest::default()
                .into()
        }
        ApiKey::ListPartitionReassignments => {
            list_partition_reassignments_request::ListPartitionReassignmentsRequest::default()
                .into()
        }
        ApiKey::AddRaftVoter => {
            gregor_protocol::messages::add_raft_voter_request::AddRaftVoterRequest::default()
                .into()
        }
        ApiKey::RemoveRaftVoter => {
            gregor_protocol::messages::remove_raft_voter_request::RemoveRaftVoterRequest::default()
                .into()
        }
        other => panic!(
            "{} is advertised: add a minimal request for it to `minimal_request`",
            other.name()
        ),
    }
}

/// Sends `body` at `version` as a raw frame and reads the outcome.
fn send_body(
    client: &mut crate::RawClient,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &[u8],
) -> crate::support::client::ReadOutcome {
    let frame = raw_request(
        api.key(),
        version,
        correlation_id,
        api.request_header_version(version),
        body,
    );
    client.send_raw(&frame).expect("send a request");
    client.read_outcome(std::time::Duration::from_secs(30))
}

/// The handler/ApiVersions consistency check, against the binary: every API that ApiVersions
/// advertises answers a minimal valid request at every advertised version with a response
/// that decodes at that version (a handler missing from `dispatch` sends nothing; one that
/// is not advertised is refused by the connection).
#[test]
fn every_advertised_api_answers_at_every_version() {
    use crate::support::client::ReadOutcome;
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let advertised = client.call(&api_versions_request(), 3).unwrap();
    assert_eq!(listed(&advertised), served());
    let mut correlation_id = 0;
    for key in &advertised.api_keys {
        let api = ApiKey::from_i16(key.api_key).expect("an advertised key is known");
        for version in key.min_version..=key.max_version {
            correlation_id += 1;
            let body = minimal_request(api, version);
            let mut bytes = bytes::BytesMut::new();
            gregor_protocol::Encodable::encode(&body, &mut bytes, version)
                .unwrap_or_else(|e| panic!("encode {} v{version}: {e}", api.name()));
            let outcome = send_body(&mut client, api, version, correlation_id, &bytes);
            let ReadOutcome::Frame(mut frame) = outcome else {
                panic!(
                    "{} v{version}: no response ({outcome:?})\n{}",
                    api.name(),
                    broker.log_text()
                );
            };
            let header = gregor_protocol::frame::decode_response_header(&mut frame, api, version)
                .unwrap_or_else(|e| panic!("{} v{version} header: {e}", api.name()));
            assert_eq!(
                header.correlation_id,
                correlation_id,
                "{} v{version}",
                api.name()
            );
            gregor_protocol::ResponseBody::decode(api, version, &mut frame)
                .unwrap_or_else(|e| panic!("{} v{version} response: {e}", api.name()));
            assert!(
                frame.is_empty(),
                "{} v{version}: bytes left over",
                api.name()
            );
        }
    }
}

/// The other direction: an API the broker does not advertise, or a version past what it
/// advertises, closes the connection (Kafka's `SocketServer` refuses requests whose API is
/// not enabled), except ApiVersions, which answers UNSUPPORTED_VERSION (KIP-511; see
/// `unsupported_version_gets_error_35_in_a_v0_body_and_the_connection_stays_open`).
#[test]
fn unadvertised_apis_and_versions_close_the_connection() {
    use crate::support::client::ReadOutcome;
    let data = fixture();
    let broker = Broker::start(&data);
    let served = served();
    let mut refused: Vec<(ApiKey, i16)> = ApiKey::ALL
        .iter()
        .filter(|api| !served.iter().any(|(key, _, _)| *key == api.key()))
        .flat_map(|api| {
            let valid = api.valid_versions();
            [(*api, valid.min), (*api, valid.max)]
        })
        .collect();
    for (key, _, max) in &served {
        let api = ApiKey::from_i16(*key).unwrap();
        if api != ApiKey::ApiVersions && *max < i16::MAX {
            refused.push((api, max + 1));
        }
    }
    assert!(!refused.is_empty());
    for (api, version) in refused {
        let mut client = connect(&broker);
        // The version is checked before the body is read, so no body is needed.
        let outcome = send_body(&mut client, api, version, 7, &[]);
        assert!(
            matches!(outcome, ReadOutcome::Closed | ReadOutcome::Reset),
            "{} v{version} is not advertised but got {outcome:?}",
            api.name()
        );
    }
    // An API key Kafka does not know either.
    let mut client = connect(&broker);
    client.send_raw(&raw_request(9999, 0, 8, 1, &[])).unwrap();
    assert!(client.is_closed_by_peer(std::time::Duration::from_secs(30)));
}
