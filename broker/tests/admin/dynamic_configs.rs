//! Dynamic configs through the real admin clients: the legacy AlterConfigs (kafka-python's
//! `alter_configs(incremental=False)`, confluent-kafka's `alter_configs`) replacing a
//! topic's configs, and changes to BROKER resources (this broker's id and the cluster-wide
//! default `""`) through both APIs: described with their new value and source, reaching
//! topics without their own override (a record over the new `message.max.bytes` refused
//! with MESSAGE_TOO_LARGE), refused when read-only, and still in force after a restart.

use super::*;

fn pair(out: &support::json::Json, group: &str, key: &str) -> (String, String) {
    let entry = &out[group][key];
    (
        entry[0].as_str().unwrap_or("<null>").to_string(),
        entry[1].as_str().unwrap_or("<none>").to_string(),
    )
}

fn is(value: &str, source: &str) -> (String, String) {
    (value.to_string(), source.to_string())
}

#[test]
fn kafka_python_legacy_alter_configs_on_topic_and_broker() {
    let (_data, broker) = start();
    let Some(output) = python(
        "broker_configs_kafka_python.py",
        &["--bootstrap", &broker.bootstrap(), "--topic", "kp-legacy"],
    ) else {
        return;
    };
    output.assert_success();
    let out = output.json();
    assert_eq!(out["topic_altered"].as_str(), Some("OK"), "{out}");
    assert_eq!(
        pair(&out, "topic", "segment.bytes"),
        is("2000000", "DYNAMIC_TOPIC_CONFIG")
    );
    // Replaced, not merged: the topic's retention.ms override is gone.
    assert_eq!(
        pair(&out, "topic", "retention.ms"),
        is("604800000", "STATIC_BROKER_CONFIG"),
        "{out}"
    );
    assert_eq!(out["broker_altered"].as_str(), Some("OK"), "{out}");
    assert_eq!(
        pair(&out, "broker", "log.retention.ms"),
        is("7777000", "DYNAMIC_BROKER_CONFIG")
    );
    assert_eq!(
        pair(&out, "topic_follows", "retention.ms"),
        is("7777000", "DYNAMIC_BROKER_CONFIG")
    );
    assert_eq!(
        pair(&out, "topic_follows", "segment.bytes"),
        is("2000000", "DYNAMIC_TOPIC_CONFIG")
    );
    let refused = out["read_only"].as_str().unwrap_or_default();
    assert!(
        refused.contains("InvalidRequest")
            && refused.contains("Cannot update these configs dynamically: Set(log.dirs)"),
        "{out}"
    );
}

#[test]
fn confluent_kafka_broker_configs_apply_at_once_and_after_a_restart() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let Some(output) = python(
        "broker_configs_confluent.py",
        &["--bootstrap", &broker.bootstrap(), "--topic", "ck-dynamic"],
    ) else {
        return;
    };
    output.assert_success();
    let out = output.json();
    assert_eq!(out["topic_altered"].as_str(), Some("ok"), "{out}");
    assert_eq!(
        pair(&out, "topic", "segment.bytes"),
        is("2000000", "DYNAMIC_TOPIC_CONFIG")
    );
    assert_eq!(
        pair(&out, "topic", "retention.ms"),
        is("604800000", "STATIC_BROKER_CONFIG")
    );
    assert_eq!(out["legacy_broker"].as_str(), Some("ok"), "{out}");
    assert_eq!(out["incremental_broker"].as_str(), Some("ok"), "{out}");
    assert_eq!(out["validate_only"].as_str(), Some("ok"), "{out}");
    assert_eq!(out["read_only"].as_str(), Some("INVALID_REQUEST"), "{out}");
    assert_eq!(
        out["read_only_message"].as_str(),
        Some("Cannot update these configs dynamically: Set(log.dirs)"),
        "{out}"
    );
    assert_eq!(
        out["append_not_list"].as_str(),
        Some("INVALID_CONFIG"),
        "{out}"
    );
    let check = |out: &support::json::Json| {
        assert_eq!(
            pair(out, "broker", "message.max.bytes"),
            is("4000", "DYNAMIC_BROKER_CONFIG")
        );
        // Kept from the legacy request; validate_only changed nothing.
        assert_eq!(
            pair(out, "broker", "log.retention.ms"),
            is("5555000", "DYNAMIC_BROKER_CONFIG")
        );
        assert_eq!(
            pair(out, "topic_limit", "max.message.bytes"),
            is("4000", "DYNAMIC_BROKER_CONFIG")
        );
        assert_eq!(
            pair(out, "topic_limit", "retention.ms"),
            is("5555000", "DYNAMIC_BROKER_CONFIG")
        );
        assert_eq!(out["small"].as_str(), Some("ok"), "{out}");
        assert_eq!(out["large"].as_str(), Some("MSG_SIZE_TOO_LARGE"), "{out}");
    };
    check(&out);
    broker.stop();

    let broker = Broker::start(&data);
    let output = python(
        "broker_configs_confluent.py",
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "--topic",
            "ck-dynamic",
            "--check-only",
        ],
    )
    .expect("the clients ran before the restart");
    output.assert_success();
    check(&output.json());
}

mod legacy {
    pub use gregor_protocol::messages::alter_configs_request::{
        AlterConfigsRequest, AlterConfigsResource, AlterableConfig,
    };
    pub use gregor_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
}

/// A resource of a legacy AlterConfigs: type, name, and its configs.
type Replace<'a> = (i8, &'a str, &'a [(&'a str, Option<&'a str>)]);

/// A legacy AlterConfigs (v`version`) of one resource per `(type, name, configs)`.
fn legacy_alter(
    client: &mut RawClient,
    version: i16,
    resources: &[Replace<'_>],
    validate_only: bool,
) -> Vec<legacy::AlterConfigsResourceResponse> {
    let request = legacy::AlterConfigsRequest {
        resources: resources
            .iter()
            .map(
                |(resource_type, name, configs)| legacy::AlterConfigsResource {
                    resource_type: *resource_type,
                    resource_name: (*name).into(),
                    configs: configs
                        .iter()
                        .map(|(k, v)| legacy::AlterableConfig {
                            name: (*k).into(),
                            value: v.map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            )
            .collect(),
        validate_only,
        ..Default::default()
    };
    client
        .call(&request, version)
        .expect("AlterConfigs")
        .responses
}

fn outcome(r: &legacy::AlterConfigsResourceResponse) -> (i16, Option<String>) {
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn broker_default(client: &mut RawClient) -> BTreeMap<String, DescribeConfigsResourceResult> {
    let results = describe_configs(
        client,
        4,
        vec![describe_resource(resource::BROKER, "", None)],
        true,
        false,
    );
    assert_eq!(results[0].error_code, error::NONE, "{results:?}");
    by_name(&results[0])
}

/// DescribeConfigs' `ConfigSource` of the cluster-wide default.
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;

/// The error code of producing one batch of one record of `len` bytes to partition 0.
fn produce_len(client: &mut RawClient, topic: &str, len: usize) -> i16 {
    produce(client, topic, 0, batch(1, len)).error_code
}

#[test]
fn alter_configs_v0_and_v2_on_the_cluster_default_and_its_errors() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    create_topic(&mut client, "follows", 1, &[]);
    let responses = legacy_alter(
        &mut client,
        0,
        &[(resource::BROKER, "", &[("message.max.bytes", Some("3000"))])],
        false,
    );
    assert_eq!(outcome(&responses[0]), (error::NONE, None));
    let defaults = broker_default(&mut client);
    assert_eq!(
        value(&defaults, "message.max.bytes").as_deref(),
        Some("3000")
    );
    assert_eq!(
        defaults["message.max.bytes"].config_source,
        DYNAMIC_DEFAULT_BROKER_CONFIG
    );
    let topic = topic_configs(&mut client, "follows");
    assert_eq!(value(&topic, "max.message.bytes").as_deref(), Some("3000"));
    assert_eq!(
        topic["max.message.bytes"].config_source,
        DYNAMIC_DEFAULT_BROKER_CONFIG
    );
    let produced = produce_len(&mut client, "follows", 5000);
    assert_eq!(produced, error::MESSAGE_TOO_LARGE);
    assert_eq!(produce_len(&mut client, "follows", 10), error::NONE);

    // Errors, in request order, each resource on its own.
    let responses = legacy_alter(
        &mut client,
        2,
        &[
            (
                resource::BROKER,
                "",
                &[("advertised.listeners", Some("PLAINTEXT://x:1"))],
            ),
            (resource::BROKER, "7", &[("log.retention.ms", Some("1"))]),
            (resource::BROKER_LOGGER, "1", &[("kafka", Some("DEBUG"))]),
            (resource::TOPIC, "other", &[("retention.ms", None)]),
            (
                resource::TOPIC,
                "missing",
                &[("retention.ms", Some("1000"))],
            ),
            (
                resource::TOPIC,
                "follows",
                &[("retention.ms", Some("1000"))],
            ),
            (resource::BROKER, "1", &[("message.max.bytes", Some("-1"))]),
            (resource::BROKER, "1", &[("message.max.bytes", Some("x"))]),
        ],
        false,
    );
    let got: Vec<(i16, Option<String>)> = responses.iter().map(outcome).collect();
    let invalid = |m: &str| (error::INVALID_REQUEST, Some(m.to_string()));
    assert_eq!(
        got[..4],
        [
            invalid("Cannot update these configs dynamically: Set(advertised.listeners)"),
            invalid("Unexpected broker id, expected 1, but received 7"),
            invalid("Unknown resource type 8"),
            invalid("Null value not supported for : retention.ms"),
        ]
    );
    assert_eq!(got[4].0, error::UNKNOWN_TOPIC_OR_PARTITION, "{got:?}");
    assert_eq!(got[5], (error::NONE, None));
    assert_eq!(got[6], invalid("Each resource must appear at most once."));
    assert_eq!(got[7], invalid("Each resource must appear at most once."));
    let responses = legacy_alter(
        &mut client,
        1,
        &[(resource::BROKER, "1", &[("message.max.bytes", Some("x"))])],
        false,
    );
    assert_eq!(
        outcome(&responses[0]),
        invalid("Invalid value x for configuration message.max.bytes: Not a number of type INT")
    );
    // validate_only changes nothing.
    let responses = legacy_alter(
        &mut client,
        2,
        &[(
            resource::BROKER,
            "",
            &[("message.max.bytes", Some("100000"))],
        )],
        true,
    );
    assert_eq!(outcome(&responses[0]), (error::NONE, None));
    drop(client);
    broker.stop();

    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let defaults = broker_default(&mut client);
    assert_eq!(
        value(&defaults, "message.max.bytes").as_deref(),
        Some("3000")
    );
    let produced = produce_len(&mut client, "follows", 5000);
    assert_eq!(produced, error::MESSAGE_TOO_LARGE);
    // Replacing the default with nothing removes it: the static value is back.
    let responses = legacy_alter(&mut client, 2, &[(resource::BROKER, "", &[])], false);
    assert_eq!(outcome(&responses[0]), (error::NONE, None));
    assert!(broker_default(&mut client).is_empty());
    assert_eq!(produce_len(&mut client, "follows", 5000), error::NONE);
}
