//! UpdateFeatures (57) v0-v2 and DescribeQuorum (55) v0-v2 over TCP, against Kafka's
//! answers (`FeatureControlManager`, `QuorumController.updateFeatures`,
//! `KafkaRaftClient.handleDescribeQuorumRequest`); new levels seen through ApiVersions and
//! after a restart.

use gregor_protocol::error_code::INVALID_UPDATE_VERSION;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;
use gregor_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData as QuorumPartition, TopicData as QuorumTopic,
};
use gregor_protocol::messages::update_features_request::{FeatureUpdateKey, UpdateFeaturesRequest};
use gregor_protocol::messages::update_features_response::UpdateFeaturesResponse;

use super::*;
use crate::support::METADATA_VERSION;

const SAFE_DOWNGRADE: i8 = 2;
const UNSAFE_DOWNGRADE: i8 = 3;

fn key(feature: &str, level: i16, upgrade_type: i8, allow_downgrade: bool) -> FeatureUpdateKey {
    FeatureUpdateKey {
        feature: feature.into(),
        max_version_level: level,
        upgrade_type,
        allow_downgrade,
        ..Default::default()
    }
}

fn update(
    client: &mut RawClient,
    version: i16,
    updates: Vec<FeatureUpdateKey>,
    validate_only: bool,
) -> UpdateFeaturesResponse {
    let request = UpdateFeaturesRequest {
        timeout_ms: 60_000,
        feature_updates: updates,
        validate_only,
        ..Default::default()
    };
    client
        .call(&request, version)
        .unwrap_or_else(|e| panic!("UpdateFeatures v{version}: {e}"))
}

fn api_versions(client: &mut RawClient, version: i16) -> ApiVersionsResponse {
    let request = ApiVersionsRequest {
        client_software_name: "gregor-test".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    };
    client.call(&request, version).expect("ApiVersions")
}

fn finalized(response: &ApiVersionsResponse, name: &str) -> Option<(i16, i16)> {
    response
        .finalized_features
        .iter()
        .find(|f| &*f.name == name)
        .map(|f| (f.min_version_level, f.max_version_level))
}

#[test]
fn update_features_v0_to_v2_change_metadata_version_and_survive_a_restart() {
    let (data, mut broker) = start();
    let mut client = connect(&broker);
    let before = api_versions(&mut client, 4);
    // The fixture's log is at 4.1-IV1 (27), a level this broker supports but does not write.
    assert_eq!(
        finalized(&before, "metadata.version"),
        Some((METADATA_VERSION, METADATA_VERSION))
    );
    // Supported ranges as registered; features with min 0 (group.version, kraft.version,
    // transaction.version) only from v4 (KAFKA-17492).
    let supported: Vec<(String, i16, i16)> = before
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    assert_eq!(
        supported,
        [
            ("group.version".to_string(), 0, 1),
            ("kraft.version".to_string(), 0, 0),
            ("metadata.version".to_string(), 7, 29),
            ("transaction.version".to_string(), 0, 2)
        ]
    );
    let v3 = api_versions(&mut client, 3);
    assert_eq!(
        v3.supported_features.len(),
        1,
        "{:?}",
        v3.supported_features
    );

    // v1, validate_only: checked, nothing written.
    let response = update(
        &mut client,
        1,
        vec![key("metadata.version", 23, SAFE_DOWNGRADE, false)],
        true,
    );
    assert_eq!(response.error_code, error::NONE, "{response:?}");
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.results[0].error_code, error::NONE);
    assert_eq!(
        finalized(&api_versions(&mut client, 3), "metadata.version"),
        Some((27, 27))
    );

    // v0: AllowDowngrade asks for a safe downgrade.
    let response = update(
        &mut client,
        0,
        vec![key("metadata.version", 25, 1, true)],
        false,
    );
    assert_eq!(response.error_code, error::NONE, "{response:?}");
    assert_eq!(response.results[0].feature, "metadata.version");
    let after = api_versions(&mut client, 3);
    assert_eq!(finalized(&after, "metadata.version"), Some((25, 25)));
    assert!(after.finalized_features_epoch > before.finalized_features_epoch);

    // v2: no per-feature results.
    let response = update(
        &mut client,
        2,
        vec![key("metadata.version", 23, SAFE_DOWNGRADE, false)],
        false,
    );
    assert_eq!(response.error_code, error::NONE, "{response:?}");
    assert!(response.results.is_empty());
    drop(client);
    broker.stop();

    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    assert_eq!(
        finalized(&api_versions(&mut client, 3), "metadata.version"),
        Some((23, 23))
    );
    let response = update(
        &mut client,
        2,
        vec![key("metadata.version", 29, 1, false)],
        false,
    );
    assert_eq!(response.error_code, error::NONE, "{response:?}");
    assert_eq!(
        finalized(&api_versions(&mut client, 3), "metadata.version"),
        Some((29, 29))
    );
}

#[test]
fn update_features_errors_are_kafkas() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    let prefix = "The update failed for all features since the following feature had an error: ";
    let cases: Vec<(FeatureUpdateKey, String)> = vec![
        (
            key("metadata.version", 30, 1, false),
            "Invalid update version 30 for feature metadata.version. Local controller 1 only \
             supports versions 7-29"
                .into(),
        ),
        (
            key("metadata.version", 23, 1, false),
            "Invalid update version 23 for feature metadata.version. Can't downgrade the version \
             of this feature without setting the upgrade type to either safe or unsafe downgrade."
                .into(),
        ),
        (
            key("metadata.version", 22, SAFE_DOWNGRADE, false),
            "Invalid metadata.version 22. Refusing to perform the requested downgrade because it \
             might delete metadata information."
                .into(),
        ),
        (
            key("metadata.version", 22, UNSAFE_DOWNGRADE, false),
            "Invalid metadata.version 22. Unsafe metadata downgrade is not supported in this \
             version."
                .into(),
        ),
        (
            key("metadata.version", 25, 9, false),
            "Invalid update version 25 for feature metadata.version. The controller does not \
             support the given upgrade type."
                .into(),
        ),
        (
            key("metadata.version", -1, SAFE_DOWNGRADE, false),
            "Invalid update version -1 for feature metadata.version. A feature version cannot \
             be less than 0."
                .into(),
        ),
        (
            key("kraft.version", 1, 1, false),
            "Invalid update version 1 for feature kraft.version. Local controller 1 does not \
             support this feature."
                .into(),
        ),
        (
            key("no.such.feature", 0, 1, false),
            "Invalid update version 0 for feature no.such.feature. Feature no.such.feature not \
             found."
                .into(),
        ),
    ];
    for version in 0..=2 {
        for (update_key, message) in &cases {
            if version == 0 && update_key.upgrade_type != 1 {
                continue;
            }
            let response = update(&mut client, version, vec![update_key.clone()], false);
            assert_eq!(
                response.error_code, INVALID_UPDATE_VERSION,
                "v{version} {update_key:?}"
            );
            assert_eq!(
                response.error_message.as_deref(),
                Some(format!("{prefix}{message}").as_str()),
                "v{version}"
            );
            assert!(response.results.is_empty(), "v{version}");
        }
    }
    // One bad update fails them all: the good one is not applied.
    let response = update(
        &mut client,
        1,
        vec![
            key("metadata.version", 24, SAFE_DOWNGRADE, false),
            key("kraft.version", 1, 1, false),
        ],
        false,
    );
    assert_eq!(response.error_code, INVALID_UPDATE_VERSION);
    assert_eq!(
        finalized(&api_versions(&mut client, 3), "metadata.version"),
        Some((27, 27))
    );
}

fn quorum_request(topic: &str, partitions: &[i32]) -> DescribeQuorumRequest {
    DescribeQuorumRequest {
        topics: vec![QuorumTopic {
            topic_name: topic.into(),
            partitions: partitions
                .iter()
                .map(|p| QuorumPartition {
                    partition_index: *p,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn describe_quorum_v0_to_v2_report_the_leader_itself() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    // A write moves the high watermark.
    create_topic(&mut client, "q", 1, &[]);
    for version in 0..=2 {
        let response = client
            .call(&quorum_request("__cluster_metadata", &[0]), version)
            .unwrap_or_else(|e| panic!("DescribeQuorum v{version}: {e}"));
        assert_eq!(response.error_code, error::NONE, "v{version}");
        let partition = &response.topics[0].partitions[0];
        assert_eq!(&*response.topics[0].topic_name, "__cluster_metadata");
        assert_eq!(partition.error_code, error::NONE);
        assert_eq!(partition.leader_id, 1);
        assert!(partition.leader_epoch >= 1, "v{version}: {partition:?}");
        assert!(partition.high_watermark > 0, "v{version}: {partition:?}");
        assert_eq!(partition.current_voters.len(), 1);
        let voter = &partition.current_voters[0];
        assert_eq!(voter.replica_id, 1);
        assert_eq!(voter.log_end_offset, partition.high_watermark);
        if version >= 1 {
            // A leader reports its own fetch and caught-up times as now.
            assert!(voter.last_fetch_timestamp > 1_700_000_000_000, "{voter:?}");
            assert_eq!(voter.last_caught_up_timestamp, voter.last_fetch_timestamp);
        }
        assert!(partition.observers.is_empty());
        if version >= 2 {
            assert_eq!(response.nodes.len(), 1);
            assert_eq!(response.nodes[0].node_id, 1);
            let listener = &response.nodes[0].listeners[0];
            assert_eq!(&*listener.name, "CONTROLLER");
            assert_eq!(listener.port, broker.controller_addr().port());
        } else {
            assert!(response.nodes.is_empty());
        }
    }
    // The high watermark follows the metadata log.
    let before = client
        .call(&quorum_request("__cluster_metadata", &[0]), 2)
        .unwrap();
    create_topic(&mut client, "q2", 1, &[]);
    let after = client
        .call(&quorum_request("__cluster_metadata", &[0]), 2)
        .unwrap();
    assert!(
        after.topics[0].partitions[0].high_watermark
            > before.topics[0].partitions[0].high_watermark
    );
}

#[test]
fn describe_quorum_of_another_partition_is_unknown() {
    let (_data, broker) = start();
    let mut client = connect(&broker);
    for (topic, partitions) in [
        ("__cluster_metadata", &[1][..]),
        ("t", &[0]),
        ("__cluster_metadata", &[0, 1]),
    ] {
        for version in [0, 2] {
            let response = client
                .call(&quorum_request(topic, partitions), version)
                .unwrap();
            assert_eq!(response.error_code, error::NONE);
            let got: Vec<(i32, i16)> = response.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect();
            let want: Vec<(i32, i16)> = partitions
                .iter()
                .map(|p| (*p, error::UNKNOWN_TOPIC_OR_PARTITION))
                .collect();
            assert_eq!(got, want, "v{version} {topic} {partitions:?}");
            let message = response.topics[0].partitions[0].error_message.as_deref();
            if version >= 2 {
                assert_eq!(
                    message,
                    Some("This server does not host this topic-partition.")
                );
            }
        }
    }
}
