//! Client quotas with the real binary: AlterClientQuotas and DescribeClientQuotas at both
//! versions with Kafka's validation errors and `validate_only`, the quotas kept across a
//! restart (from the log and from a snapshot), and a confluent-kafka producer held to a
//! `producer_byte_rate` of 1 MB/s with the throttle times it is told; the controller
//! mutation quota (`quotas/controller_mutation.rs`); connection creation rates
//! (`quotas/connection_rate.rs`).

mod support;

#[path = "quotas/connection_rate.rs"]
mod connection_rate;
#[path = "quotas/controller_mutation.rs"]
mod controller_mutation;

use std::collections::BTreeMap;

use gregor_protocol::error_code as error;
use gregor_protocol::messages::alter_client_quotas_request::{
    AlterClientQuotasRequest, EntityData, EntryData, OpData,
};
use gregor_protocol::messages::alter_client_quotas_response::AlterClientQuotasResponse;
use gregor_protocol::messages::describe_client_quotas_request::{
    ComponentData, DescribeClientQuotasRequest,
};
use gregor_protocol::messages::describe_client_quotas_response::DescribeClientQuotasResponse;
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::messages::produce_response::ProduceResponse;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};
use support::json::JsonExt;
use support::{Broker, DataDir, RawClient, TopicSpec, python_with_timeout};

/// An entity as (type, name) pairs.
type Entity = Vec<(&'static str, Option<&'static str>)>;

fn entry(entity: &Entity, ops: &[(&str, Option<f64>)]) -> EntryData {
    EntryData {
        entity: entity
            .iter()
            .map(|(t, n)| EntityData {
                entity_type: (*t).into(),
                entity_name: n.map(Into::into),
                ..Default::default()
            })
            .collect(),
        ops: ops
            .iter()
            .map(|(key, value)| OpData {
                key: (*key).into(),
                value: value.unwrap_or(0.0),
                remove: value.is_none(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn alter(
    client: &mut RawClient,
    version: i16,
    entries: Vec<EntryData>,
    validate_only: bool,
) -> AlterClientQuotasResponse {
    client
        .call(
            &AlterClientQuotasRequest {
                entries,
                validate_only,
                ..Default::default()
            },
            version,
        )
        .expect("AlterClientQuotas")
}

/// Every entity's quotas, from DescribeClientQuotas with `components` (and not strict).
fn describe(
    client: &mut RawClient,
    version: i16,
    components: Vec<ComponentData>,
    strict: bool,
) -> DescribeClientQuotasResponse {
    client
        .call(
            &DescribeClientQuotasRequest {
                components,
                strict,
                ..Default::default()
            },
            version,
        )
        .expect("DescribeClientQuotas")
}

/// (entity as "type=name" pairs) -> key -> value.
fn quotas_of(response: &DescribeClientQuotasResponse) -> BTreeMap<String, BTreeMap<String, f64>> {
    assert_eq!(response.error_code, error::NONE, "{response:?}");
    let mut out = BTreeMap::new();
    for entry in response.entries.as_ref().expect("entries") {
        let mut parts: Vec<String> = entry
            .entity
            .iter()
            .map(|e| {
                format!(
                    "{}={}",
                    e.entity_type,
                    e.entity_name.as_deref().unwrap_or("<default>")
                )
            })
            .collect();
        parts.sort();
        let values = entry
            .values
            .iter()
            .map(|v| (v.key.to_string(), v.value))
            .collect();
        out.insert(parts.join(","), values);
    }
    out
}

fn component(entity_type: &str, match_type: i8, matched: Option<&str>) -> ComponentData {
    ComponentData {
        entity_type: entity_type.into(),
        match_type,
        r#match: matched.map(Into::into),
        ..Default::default()
    }
}

fn all(client: &mut RawClient) -> BTreeMap<String, BTreeMap<String, f64>> {
    quotas_of(&describe(client, 1, vec![], false))
}

#[test]
fn quotas_are_altered_described_validated_and_kept_across_restarts() {
    let data = DataDir::builder().build();
    // A snapshot after every batch, so the second restart reads the quotas from one.
    let props: &[(&str, &str)] = &[("metadata.log.max.record.bytes.between.snapshots", "1")];
    let mut broker = Broker::start_with(&data, props);
    let mut client = RawClient::connect(broker.addr()).unwrap();

    let alice: Entity = vec![("user", Some("alice"))];
    let alice_app: Entity = vec![("user", Some("alice")), ("client-id", Some("app"))];
    let default_user: Entity = vec![("user", None)];
    let default_client: Entity = vec![("client-id", None)];
    let ip: Entity = vec![("ip", Some("127.0.0.1"))];

    // validate_only: answered, nothing stored.
    let checked = alter(
        &mut client,
        1,
        vec![entry(&alice, &[("producer_byte_rate", Some(1024.0))])],
        true,
    );
    assert_eq!(checked.entries.len(), 1);
    assert_eq!(checked.entries[0].error_code, error::NONE);
    assert!(all(&mut client).is_empty());

    for version in [0, 1] {
        let response = alter(
            &mut client,
            version,
            vec![
                entry(
                    &alice,
                    &[
                        ("producer_byte_rate", Some(1024.0)),
                        ("request_percentage", Some(12.5)),
                    ],
                ),
                entry(&alice_app, &[("consumer_byte_rate", Some(2048.0))]),
                entry(&default_user, &[("controller_mutation_rate", Some(3.0))]),
                entry(&default_client, &[("producer_byte_rate", Some(4096.0))]),
                entry(&ip, &[("connection_creation_rate", Some(10.0))]),
            ],
            false,
        );
        assert_eq!(response.entries.len(), 5, "v{version}: {response:?}");
        for e in &response.entries {
            assert_eq!(e.error_code, error::NONE, "v{version}: {e:?}");
        }
    }
    let expected: BTreeMap<String, BTreeMap<String, f64>> = [
        (
            "user=alice",
            vec![("producer_byte_rate", 1024.0), ("request_percentage", 12.5)],
        ),
        (
            "client-id=app,user=alice",
            vec![("consumer_byte_rate", 2048.0)],
        ),
        ("user=<default>", vec![("controller_mutation_rate", 3.0)]),
        ("client-id=<default>", vec![("producer_byte_rate", 4096.0)]),
        ("ip=127.0.0.1", vec![("connection_creation_rate", 10.0)]),
    ]
    .into_iter()
    .map(|(e, v)| {
        (
            e.to_string(),
            v.into_iter().map(|(k, x)| (k.to_string(), x)).collect(),
        )
    })
    .collect();
    for version in [0, 1] {
        assert_eq!(
            quotas_of(&describe(&mut client, version, vec![], false)),
            expected
        );
    }

    // Filters: exact, strict, default, specified.
    let alice_filter = vec![component("user", 0, Some("alice"))];
    let found = quotas_of(&describe(&mut client, 1, alice_filter.clone(), false));
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["client-id=app,user=alice", "user=alice"]
    );
    let found = quotas_of(&describe(&mut client, 1, alice_filter, true));
    assert_eq!(found.keys().collect::<Vec<_>>(), ["user=alice"]);
    let found = quotas_of(&describe(
        &mut client,
        1,
        vec![component("user", 1, None)],
        false,
    ));
    assert_eq!(found.keys().collect::<Vec<_>>(), ["user=<default>"]);
    let found = quotas_of(&describe(
        &mut client,
        0,
        vec![component("client-id", 2, None)],
        false,
    ));
    // As Kafka's `ClientQuotasImage.matches`: "specified" only asks for the type, so the
    // default entity matches it too.
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["client-id=<default>", "client-id=app,user=alice"]
    );

    // Bad filters fail the whole request, entries null.
    for (components, code) in [
        (
            vec![component("topic", 0, Some("t"))],
            error::UNSUPPORTED_VERSION,
        ),
        (vec![component("user", 0, None)], error::INVALID_REQUEST),
        (
            vec![component("user", 1, Some("x"))],
            error::INVALID_REQUEST,
        ),
        (
            vec![component("ip", 2, None), component("user", 2, None)],
            error::INVALID_REQUEST,
        ),
        (
            vec![component("user", 2, None), component("user", 1, None)],
            error::INVALID_REQUEST,
        ),
    ] {
        let response = describe(&mut client, 1, components.clone(), false);
        assert_eq!(response.error_code, code, "{components:?}: {response:?}");
        assert!(response.error_message.is_some());
        assert!(response.entries.is_none());
    }

    // Kafka's validation errors, entity by entity; the valid entity of the same request
    // is applied.
    type Case<'a> = (Entity, &'a [(&'a str, Option<f64>)], &'a str);
    let bad: Vec<Case<'_>> = vec![
        (
            vec![("topic", Some("t"))],
            &[("producer_byte_rate", Some(1.0))],
            "Unhandled client quota entity type: topic",
        ),
        (
            vec![("user", Some(""))],
            &[("producer_byte_rate", Some(1.0))],
            "Empty user not supported",
        ),
        (
            vec![("user", Some("bob"))],
            &[("no_such_key", Some(1.0))],
            "Invalid configuration key no_such_key",
        ),
        (
            vec![("user", Some("carol"))],
            &[("producer_byte_rate", Some(1.5))],
            "producer_byte_rate cannot be a fractional value.",
        ),
        (
            vec![("user", Some("dave"))],
            &[("consumer_byte_rate", Some(-1.0))],
            "Quota consumer_byte_rate must be greater than 0",
        ),
        (
            vec![("ip", Some("127.0.0.2")), ("user", Some("erin"))],
            &[("connection_creation_rate", Some(1.0))],
            "Invalid quota entity combination",
        ),
        (
            vec![("ip", Some("10.0.0.1"))],
            &[("producer_byte_rate", Some(1.0))],
            "Invalid configuration key producer_byte_rate",
        ),
    ];
    let mut entries: Vec<EntryData> = bad.iter().map(|(e, ops, _)| entry(e, ops)).collect();
    entries.push(entry(
        &vec![("user", Some("frank"))],
        &[("producer_byte_rate", Some(10.0))],
    ));
    let response = alter(&mut client, 1, entries, false);
    assert_eq!(response.entries.len(), bad.len() + 1, "{response:?}");
    for ((_, _, message), result) in bad.iter().zip(&response.entries) {
        assert_eq!(result.error_code, error::INVALID_REQUEST, "{result:?}");
        let text = result.error_message.as_deref().unwrap_or_default();
        assert!(text.contains(message), "{text:?} lacks {message:?}");
    }
    assert_eq!(response.entries[bad.len()].error_code, error::NONE);
    // A key twice in one entity: Kafka's "Ignoring duplicate entity".
    let response = alter(
        &mut client,
        1,
        vec![entry(
            &vec![("user", Some("gina"))],
            &[
                ("producer_byte_rate", Some(1.0)),
                ("producer_byte_rate", Some(2.0)),
            ],
        )],
        false,
    );
    assert_eq!(response.entries[0].error_code, error::INVALID_REQUEST);

    // Removal: the key goes, the entity with its last key.
    let response = alter(
        &mut client,
        0,
        vec![
            entry(&alice, &[("request_percentage", None)]),
            entry(
                &vec![("user", Some("frank"))],
                &[("producer_byte_rate", None)],
            ),
        ],
        false,
    );
    assert!(response.entries.iter().all(|e| e.error_code == error::NONE));
    let mut expected = expected;
    expected
        .get_mut("user=alice")
        .unwrap()
        .remove("request_percentage");
    assert_eq!(all(&mut client), expected);

    // Restarts: from the log's snapshot and records, twice.
    for _ in 0..2 {
        drop(client);
        broker.stop();
        broker = Broker::start_with(&data, props);
        client = RawClient::connect(broker.addr()).unwrap();
        assert_eq!(all(&mut client), expected);
    }
    assert!(
        broker
            .log_text()
            .contains("Successfully wrote the metadata snapshot")
            || std::fs::read_dir(data.path().join("__cluster_metadata-0"))
                .unwrap()
                .any(|e| e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".checkpoint")),
        "a snapshot was written"
    );
}

/// One Produce of `bytes` value bytes to `topic`-0.
fn produce(topic: &str, bytes: usize) -> ProduceRequest {
    let record = NewRecord {
        timestamp: 0,
        key: None,
        value: Some(bytes::Bytes::from(vec![b'x'; bytes])),
        headers: Vec::new(),
    };
    let batch = RecordBatchBuilder::new()
        .build(&[record])
        .expect("encode a record batch");
    ProduceRequest {
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_produce_over_the_quota_gets_its_throttle_time_and_the_connection_waits() {
    let data = DataDir::builder().topic(TopicSpec::new("t", 1)).build();
    let broker = Broker::start(&data);
    let mut admin = RawClient::connect(broker.addr()).unwrap();
    // 10 kB/s for client id "slow": 200 kB at once is 20 kB/s over the 10 s minimum window,
    // so the client is told to wait another 10 s.
    let response = alter(
        &mut admin,
        1,
        vec![entry(
            &vec![("client-id", Some("slow"))],
            &[("producer_byte_rate", Some(10_000.0))],
        )],
        false,
    );
    assert_eq!(response.entries[0].error_code, error::NONE);

    let mut fast = RawClient::connect(broker.addr()).unwrap();
    fast.set_client_id(Some("fast"));
    let answer: ProduceResponse = fast.call(&produce("t", 200_000), 9).unwrap();
    assert_eq!(answer.throttle_time_ms, 0, "no quota for client id fast");

    let mut slow = RawClient::connect(broker.addr()).unwrap();
    slow.set_client_id(Some("slow"));
    let answer: ProduceResponse = slow.call(&produce("t", 200_000), 9).unwrap();
    assert!(
        (9_000..=11_000).contains(&answer.throttle_time_ms),
        "throttle time {}",
        answer.throttle_time_ms
    );
    assert_eq!(
        answer.responses[0].partition_responses[0].error_code,
        error::NONE
    );
    // The connection reads nothing more until the throttle time has passed: a request sent
    // now is answered only after it (a lower bound only; no upper bound is asserted).
    let sent = std::time::Instant::now();
    let _: DescribeClientQuotasResponse = slow
        .call(&DescribeClientQuotasRequest::default(), 1)
        .unwrap();
    let waited = sent.elapsed().as_millis() as i64;
    assert!(
        waited >= i64::from(answer.throttle_time_ms) - 1_500,
        "answered after {waited} ms, throttle time {}",
        answer.throttle_time_ms
    );
}

#[test]
fn a_confluent_producer_is_held_to_its_byte_rate_quota() {
    if support::clients::python_path().is_none() {
        let _ = python_with_timeout(
            "quota_produce_confluent.py",
            &[],
            std::time::Duration::from_secs(1),
        );
        return;
    }
    let data = DataDir::builder().topic(TopicSpec::new("rated", 1)).build();
    let broker = Broker::start(&data);
    let mut admin = RawClient::connect(broker.addr()).unwrap();
    const QUOTA: f64 = 1_000_000.0;
    let response = alter(
        &mut admin,
        1,
        vec![entry(
            &vec![("client-id", Some("rated-producer"))],
            &[("producer_byte_rate", Some(QUOTA))],
        )],
        false,
    );
    assert_eq!(response.entries[0].error_code, error::NONE);

    let bootstrap = broker.bootstrap();
    let seconds = 26.0;
    let out = python_with_timeout(
        "quota_produce_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--topic",
            "rated",
            "--client-id",
            "rated-producer",
            "--seconds",
            &seconds.to_string(),
            "--timeout",
            "90",
        ],
        std::time::Duration::from_secs(150),
    )
    .expect("the virtualenv");
    out.assert_success();
    let doc = out.json();
    assert_eq!(
        doc.field("errors").as_array().map(Vec::len),
        Some(0),
        "{doc}"
    );
    let series: Vec<(f64, f64)> = doc
        .field("series")
        .as_array()
        .expect("series")
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    // Kafka's rate is the bytes of the last quota window (11 samples of 1 s) over that
    // window, so a greedy producer goes in waves: a burst whenever the window's oldest
    // sample expires, then throttled to a trickle. What the quota holds is the bytes of
    // any 11 s: the busiest 11 s of the run must be within 10 % of 11 s at the quota
    // (from below too: the producer always has more to send).
    const WINDOW: f64 = 11.0;
    let mut busiest = (0.0, 0.0, 0.0);
    for (i, &(t0, b0)) in series.iter().enumerate() {
        if let Some(&(t1, b1)) = series[i..].iter().find(|(t, _)| *t >= t0 + WINDOW) {
            let rate = (b1 - b0) / (t1 - t0);
            if rate > busiest.0 {
                busiest = (rate, t0, t1);
            }
        }
    }
    let (rate, t0, t1) = busiest;
    eprintln!("busiest {WINDOW} s: {rate:.0} B/s between {t0} s and {t1} s");
    // The quota counts request bytes, a little more than the values counted here.
    assert!(
        (0.9 * QUOTA..=1.1 * QUOTA).contains(&rate),
        "busiest {WINDOW} s: {rate:.0} B/s acknowledged between {t0} s and {t1} s; series {series:?}"
    );
    assert!(
        doc.field("max_throttle_ms").as_i64().unwrap_or(0) > 0,
        "the client saw throttle times: {doc}"
    );
}
