//! Client telemetry (KIP-714) over TCP: client-metrics subscriptions set with
//! IncrementalAlterConfigs (resource type 16) and described with DescribeConfigs, kept
//! across a restart; GetTelemetrySubscriptions (71) and PushTelemetry (72) v0 with the
//! errors of Kafka's `ClientMetricsManager`; a confluent-kafka producer that pushes its
//! metrics, logged by the broker.

use gregor_protocol::error_code::{
    TELEMETRY_TOO_LARGE, THROTTLING_QUOTA_EXCEEDED, UNKNOWN_SUBSCRIPTION_ID,
    UNSUPPORTED_COMPRESSION_TYPE,
};
use gregor_protocol::messages::get_telemetry_subscriptions_request::GetTelemetrySubscriptionsRequest;
use gregor_protocol::messages::get_telemetry_subscriptions_response::GetTelemetrySubscriptionsResponse;
use gregor_protocol::messages::push_telemetry_request::PushTelemetryRequest;

use super::*;

fn get(client: &mut RawClient, id: Uuid) -> GetTelemetrySubscriptionsResponse {
    let request = GetTelemetrySubscriptionsRequest {
        client_instance_id: id,
        ..Default::default()
    };
    client.call(&request, 0).expect("GetTelemetrySubscriptions")
}

fn push(
    client: &mut RawClient,
    id: Uuid,
    subscription_id: i32,
    compression_type: i8,
    metrics: &[u8],
    terminating: bool,
) -> i16 {
    let request = PushTelemetryRequest {
        client_instance_id: id,
        subscription_id,
        terminating,
        compression_type,
        metrics: Bytes::copy_from_slice(metrics),
        ..Default::default()
    };
    client.call(&request, 0).expect("PushTelemetry").error_code
}

fn subscribe(
    client: &mut RawClient,
    name: &str,
    configs: &[(&str, &str)],
) -> (i16, Option<String>) {
    let responses = alter_configs(
        client,
        1,
        vec![alter_resource(
            resource::CLIENT_METRICS,
            name,
            configs
                .iter()
                .map(|(k, v)| alter(k, op::SET, Some(v)))
                .collect(),
        )],
        false,
    );
    (
        responses[0].error_code,
        responses[0].error_message.as_deref().map(str::to_string),
    )
}

fn subscription_configs(client: &mut RawClient, name: &str) -> BTreeMap<String, String> {
    let results = describe_configs(
        client,
        4,
        vec![describe_resource(resource::CLIENT_METRICS, name, None)],
        false,
        false,
    );
    assert_eq!(results[0].error_code, error::NONE, "{results:?}");
    results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_deref().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn subscriptions_are_validated_stored_and_survive_a_restart() {
    let (data, mut broker) = start();
    let mut client = connect(&broker);
    type Case<'a> = (&'a [(&'a str, &'a str)], i16, &'a str);
    let bad: [Case<'_>; 4] = [
        (
            &[("interval.ms", "50")],
            error::INVALID_REQUEST,
            "Invalid value 50 for interval.ms, interval must be between 100 and 3600000 (1 hour)",
        ),
        (
            &[("colour", "red")],
            error::INVALID_REQUEST,
            "Unknown client metrics configuration: colour",
        ),
        (
            &[("match", "nobody=x")],
            error::INVALID_CONFIG,
            "Illegal client matching pattern: nobody=x",
        ),
        (
            &[("interval.ms", "soon")],
            error::INVALID_CONFIG,
            "Invalid value soon for configuration interval.ms: Not a number of type INT",
        ),
    ];
    for (configs, code, message) in bad {
        assert_eq!(
            subscribe(&mut client, "s", configs),
            (code, Some(message.to_string())),
            "{configs:?}"
        );
    }
    let responses = alter_configs(
        &mut client,
        0,
        vec![alter_resource(
            resource::CLIENT_METRICS,
            "s",
            vec![alter("interval.ms", op::APPEND, Some("5"))],
        )],
        false,
    );
    assert_eq!(responses[0].error_code, error::INVALID_CONFIG);
    assert_eq!(
        responses[0].error_message.as_deref(),
        Some("Can't APPEND to key interval.ms because its type is not LIST.")
    );
    assert!(subscription_configs(&mut client, "s").is_empty());

    assert_eq!(
        subscribe(
            &mut client,
            "s",
            &[
                ("metrics", "org.apache.kafka.producer."),
                ("interval.ms", "2000")
            ]
        ),
        (error::NONE, None)
    );
    let responses = alter_configs(
        &mut client,
        1,
        vec![alter_resource(
            resource::CLIENT_METRICS,
            "s",
            vec![alter(
                "metrics",
                op::APPEND,
                Some("org.apache.kafka.consumer."),
            )],
        )],
        false,
    );
    assert_eq!(responses[0].error_code, error::NONE, "{responses:?}");
    let want: BTreeMap<String, String> = [
        ("interval.ms", "2000"),
        (
            "metrics",
            "org.apache.kafka.producer.,org.apache.kafka.consumer.",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(subscription_configs(&mut client, "s"), want);
    drop(client);
    broker.stop();

    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    assert_eq!(subscription_configs(&mut client, "s"), want);
    let response = get(&mut client, Uuid::nil());
    assert_eq!(response.error_code, error::NONE);
    assert_eq!(
        response
            .requested_metrics
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>(),
        ["org.apache.kafka.consumer.", "org.apache.kafka.producer."]
    );
    assert_eq!(response.push_interval_ms, 2000);
}

#[test]
fn get_and_push_follow_the_client_metrics_manager() {
    let (_data, broker) = start_with(&[("telemetry.max.bytes", "64")]);
    let mut client = connect(&broker);
    client.set_client_id(Some("telemetry-test"));

    // No subscription: no metrics, Kafka's default interval.
    let first = get(&mut client, Uuid::nil());
    assert_eq!(first.error_code, error::NONE);
    assert!(!first.client_instance_id.is_nil());
    assert!(first.requested_metrics.is_empty());
    assert_eq!(first.push_interval_ms, 300_000);
    assert_eq!(first.telemetry_max_bytes, 64);
    assert_eq!(first.accepted_compression_types, [4, 3, 1, 2]);
    assert!(first.delta_temporality);
    // Asking again before the interval is throttled.
    assert_eq!(
        get(&mut client, first.client_instance_id).error_code,
        THROTTLING_QUOTA_EXCEEDED
    );

    // A subscription for this client (and one for others) changes its answer at once.
    assert_eq!(
        subscribe(
            &mut client,
            "mine",
            &[
                ("metrics", "*"),
                ("interval.ms", "100000"),
                ("match", "client_id=telemetry-.*")
            ]
        ),
        (error::NONE, None)
    );
    assert_eq!(
        subscribe(
            &mut client,
            "theirs",
            &[
                ("metrics", "x."),
                ("interval.ms", "100"),
                ("match", "client_id=other")
            ]
        ),
        (error::NONE, None)
    );
    let id = first.client_instance_id;
    let sub = get(&mut client, id);
    assert_eq!(sub.error_code, error::NONE);
    assert_eq!(sub.client_instance_id, id);
    assert_eq!(
        sub.requested_metrics
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>(),
        ["*"]
    );
    assert_eq!(sub.push_interval_ms, 100_000);
    assert_ne!(sub.subscription_id, first.subscription_id);

    // Zero and reserved ids are refused.
    assert_eq!(
        push(
            &mut client,
            Uuid::nil(),
            sub.subscription_id,
            0,
            b"m",
            false
        ),
        error::INVALID_REQUEST
    );
    // The push after a get is accepted; another one right after is too early.
    assert_eq!(
        push(&mut client, id, sub.subscription_id, 0, b"metrics", false),
        error::NONE
    );
    assert_eq!(
        push(&mut client, id, sub.subscription_id, 0, b"metrics", false),
        THROTTLING_QUOTA_EXCEEDED
    );
    // Terminating pushes pass the interval, but not the other checks.
    assert_eq!(
        push(&mut client, id, sub.subscription_id + 1, 0, b"m", true),
        UNKNOWN_SUBSCRIPTION_ID
    );
    // After a terminating push nothing more is accepted.
    assert_eq!(
        push(&mut client, id, sub.subscription_id, 0, b"m", true),
        error::INVALID_REQUEST
    );

    // Another instance: codec and size checks.
    let other = get(&mut client, Uuid::nil());
    let other_id = other.client_instance_id;
    assert_eq!(
        push(&mut client, other_id, other.subscription_id, 9, b"m", true),
        UNSUPPORTED_COMPRESSION_TYPE
    );
    let third = get(&mut client, Uuid::nil());
    assert_eq!(
        push(
            &mut client,
            third.client_instance_id,
            third.subscription_id,
            0,
            &[0; 65],
            false
        ),
        TELEMETRY_TOO_LARGE
    );
    // An instance the broker never saw has no subscription id yet.
    assert_eq!(
        push(
            &mut client,
            Uuid::from_u64_pair(7, 7),
            sub.subscription_id,
            0,
            b"m",
            false
        ),
        UNKNOWN_SUBSCRIPTION_ID
    );
}

#[test]
fn a_confluent_kafka_producer_pushes_its_metrics_and_the_broker_logs_them() {
    let (_data, broker) = start_with(&[("metric.reporters", "gregor.LogPushes")]);
    let mut client = connect(&broker);
    create_topic(&mut client, "pushed", 1, &[]);
    assert_eq!(
        subscribe(
            &mut client,
            "all",
            &[
                ("metrics", "*"),
                ("interval.ms", "1000"),
                ("match", "client_id=ck-telemetry")
            ]
        ),
        (error::NONE, None)
    );
    let Some(output) = python(
        "telemetry_confluent.py",
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "--topic",
            "pushed",
            "--client-id",
            "ck-telemetry",
            "--linger",
            "5",
        ],
    ) else {
        return;
    };
    output.assert_success();
    let out = output.json();
    assert_eq!(out["produced"].as_i64(), Some(10), "{out}");
    assert_eq!(out["errors"].as_array().map(Vec::len), Some(0), "{out}");
    let line = broker
        .wait_for_log("client telemetry pushed", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no push logged\n{}", broker.log_text()));
    assert!(line.contains("ck-telemetry"), "{line}");
}
