//! Group configs (Kafka 4's `GroupConfig`, resource type GROUP = 32) on the wire:
//! IncrementalAlterConfigs checks them against the broker's
//! `group.consumer.{min,max}.*` bounds (INVALID_CONFIG), DescribeConfigs shows them
//! (GROUP_CONFIG) or the broker defaults (DEFAULT_CONFIG), they survive a restart (they
//! are ConfigRecords in the metadata log), and ConsumerGroupHeartbeat answers with the
//! group's `consumer.heartbeat.interval.ms`.

use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use gregor_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse,
};
use gregor_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use gregor_protocol::messages::incremental_alter_configs_response::IncrementalAlterConfigsResponse;

use crate::support::{DataDir, RawClient, TopicSpec};
use crate::wire::*;

const GROUP: i8 = 32;
const INVALID_CONFIG: i16 = 40;
const GROUP_CONFIG_SOURCE: i8 = 8;
const DEFAULT_CONFIG_SOURCE: i8 = 5;

/// IncrementalAlterConfigs of one group: `(error code, message)`.
fn alter(
    client: &mut RawClient,
    group: &str,
    changes: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: GROUP,
            resource_name: group.into(),
            configs: changes
                .iter()
                .map(|(name, op, value)| AlterableConfig {
                    name: (*name).into(),
                    config_operation: *op,
                    value: value.map(Into::into),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        validate_only: false,
        ..Default::default()
    };
    let response: IncrementalAlterConfigsResponse = client
        .call(&request, 1)
        .unwrap_or_else(|e| panic!("IncrementalAlterConfigs: {e}"));
    let r = &response.responses[0];
    (r.error_code, r.error_message.as_deref().map(str::to_string))
}

/// DescribeConfigs v4 (with synonyms) of one group: its error and entries.
fn describe_group(
    client: &mut RawClient,
    group: &str,
) -> (i16, Vec<DescribeConfigsResourceResult>) {
    let request = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: GROUP,
            resource_name: group.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: true,
        include_documentation: true,
        ..Default::default()
    };
    let response: DescribeConfigsResponse = client
        .call(&request, 4)
        .unwrap_or_else(|e| panic!("DescribeConfigs: {e}"));
    let r = response.results.into_iter().next().unwrap();
    (r.error_code, r.configs)
}

fn entry<'a>(
    configs: &'a [DescribeConfigsResourceResult],
    name: &str,
) -> &'a DescribeConfigsResourceResult {
    configs
        .iter()
        .find(|c| &*c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {configs:?}"))
}

fn joining(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec![TOPIC.into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    }
}

#[test]
fn group_configs_are_validated_described_kept_and_used() {
    let data = DataDir::builder()
        .topic(TopicSpec::new(TOPIC, PARTITIONS).records(RECORDS))
        .feature("group.version", 1)
        .build();
    let props = [("group.consumer.max.heartbeat.interval.ms", "12000")];
    let mut broker = start(&data, &props);
    let mut client = connect(&broker);

    // The broker defaults first.
    let (code, configs) = describe_group(&mut client, "g1");
    assert_eq!(code, error::NONE);
    let names: Vec<&str> = configs.iter().map(|c| &*c.name).collect();
    assert_eq!(
        names,
        vec![
            "consumer.session.timeout.ms",
            "consumer.heartbeat.interval.ms"
        ]
    );
    let session = entry(&configs, "consumer.session.timeout.ms");
    assert_eq!(session.value.as_deref(), Some("45000"));
    assert_eq!(session.config_source, DEFAULT_CONFIG_SOURCE);
    assert!(!session.read_only);
    assert_eq!(session.config_type, 3, "INT");
    assert!(session.documentation.is_some());
    assert_eq!(describe_group(&mut client, "").0, error::INVALID_REQUEST);

    // Kafka's GroupConfig checks.
    let (code, message) = alter(
        &mut client,
        "g1",
        &[("consumer.heartbeat.interval.ms", 0, Some("13000"))],
    );
    assert_eq!(code, INVALID_CONFIG);
    assert_eq!(
        message.as_deref(),
        Some(
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"
        )
    );
    let (code, message) = alter(
        &mut client,
        "g1",
        &[("consumer.session.timeout.ms", 0, Some("44999"))],
    );
    assert_eq!(code, INVALID_CONFIG, "{message:?}");
    let (code, message) = alter(
        &mut client,
        "g1",
        &[("share.session.timeout.ms", 0, Some("50000"))],
    );
    assert_eq!(
        (code, message.as_deref()),
        (
            INVALID_CONFIG,
            Some("Unknown group config name: share.session.timeout.ms")
        )
    );
    let (code, message) = alter(
        &mut client,
        "g1",
        &[("consumer.session.timeout.ms", 0, Some("soon"))],
    );
    assert_eq!(code, INVALID_CONFIG, "{message:?}");
    let (code, _) = alter(
        &mut client,
        "g1",
        &[("consumer.session.timeout.ms", 2, Some("1"))],
    );
    assert_eq!(code, INVALID_CONFIG, "APPEND on an INT");
    assert_eq!(
        alter(
            &mut client,
            "",
            &[("consumer.session.timeout.ms", 0, Some("50000"))]
        )
        .0,
        error::INVALID_REQUEST
    );

    // Set both; described as GROUP_CONFIG.
    let (code, message) = alter(
        &mut client,
        "g1",
        &[
            ("consumer.session.timeout.ms", 0, Some("50000")),
            ("consumer.heartbeat.interval.ms", 0, Some("7000")),
        ],
    );
    assert_eq!(code, error::NONE, "{message:?}");
    let (_, configs) = describe_group(&mut client, "g1");
    let heartbeat = entry(&configs, "consumer.heartbeat.interval.ms");
    assert_eq!(heartbeat.value.as_deref(), Some("7000"));
    assert_eq!(heartbeat.config_source, GROUP_CONFIG_SOURCE);
    assert_eq!(heartbeat.synonyms.len(), 1);
    assert_eq!(heartbeat.synonyms[0].source, GROUP_CONFIG_SOURCE);
    // Another group keeps the defaults.
    let (_, other) = describe_group(&mut client, "g2");
    assert_eq!(
        entry(&other, "consumer.heartbeat.interval.ms")
            .value
            .as_deref(),
        Some("5000")
    );

    // The coordinator uses them.
    let r: ConsumerGroupHeartbeatResponse = client.call(&joining("g1", "m1"), 1).unwrap();
    assert_eq!(
        (r.error_code, r.heartbeat_interval_ms),
        (error::NONE, 7000),
        "{r:?}"
    );
    let r: ConsumerGroupHeartbeatResponse = client.call(&joining("g2", "m1"), 1).unwrap();
    assert_eq!(
        (r.error_code, r.heartbeat_interval_ms),
        (error::NONE, 5000),
        "{r:?}"
    );

    // They are in the metadata log: a restart keeps them; DELETE goes back to the default.
    drop(client);
    assert!(broker.stop().success());
    broker = start(&data, &props);
    let mut client = connect(&broker);
    let (_, configs) = describe_group(&mut client, "g1");
    assert_eq!(
        entry(&configs, "consumer.session.timeout.ms")
            .value
            .as_deref(),
        Some("50000")
    );
    assert_eq!(
        alter(
            &mut client,
            "g1",
            &[("consumer.heartbeat.interval.ms", 1, None)]
        )
        .0,
        error::NONE
    );
    let (_, configs) = describe_group(&mut client, "g1");
    let heartbeat = entry(&configs, "consumer.heartbeat.interval.ms");
    assert_eq!(
        (heartbeat.value.as_deref(), heartbeat.config_source),
        (Some("5000"), DEFAULT_CONFIG_SOURCE)
    );
}
