//! kafka-python 3.0.12 pinned with `api_version` to Kafka 0.10 and 0.11 (no ApiVersions
//! negotiation; the versions come from its table of those releases): (0, 10) sends
//! Produce v2 with message-format v1 message sets, Fetch v2, ListOffsets v0, Metadata v1,
//! OffsetCommit v2, OffsetFetch v1, JoinGroup v0; (0, 11) sends Produce v3, Fetch v5,
//! ListOffsets v2, OffsetCommit v3, OffsetFetch v3, JoinGroup v2.
//!
//! Each test produces keyed records with each codec, consumes half of them in a group,
//! commits, leaves, and a second member of the group reads exactly the rest from the
//! committed offsets. The broker must close no connection.

use std::collections::BTreeMap;

use super::sarama::{
    CODECS, PER_CODEC, as_set, assert_no_closed_connections, closed_connections, committed,
    consume_fixture, next_offsets, records, start,
};
use crate::support::{Broker, DataDir, Json, JsonExt, TopicSpec, python};

const TOPIC: &str = "legacy-orders";

/// Runs the driver; the parsed report, asserted free of errors. `None` when the
/// virtualenv is missing.
fn run(broker: &Broker, api_version: &str, mode: &str, extra: &[&str]) -> Option<Json> {
    let bootstrap = broker.bootstrap();
    let mut args = vec![
        "--bootstrap",
        bootstrap.as_str(),
        "--api-version",
        api_version,
        "--mode",
        mode,
        "--topic",
        TOPIC,
        "--timeout",
        "40",
    ];
    args.extend_from_slice(extra);
    let out = python("old_api_kafka_python.py", &args)?;
    let doc = Json::parse(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: no report from the driver\n{out}"));
    let errors = doc.field("errors").as_array().cloned().unwrap_or_default();
    assert!(
        out.success() && errors.is_empty(),
        "kafka-python api_version {api_version} {mode} {extra:?} reported errors {errors:?}; \
         the broker closed connections: {:#?}\n{out}",
        closed_connections(broker)
    );
    Some(doc)
}

fn produce_consume_resume(api_version: &str) {
    let data = DataDir::builder().topic(TopicSpec::new(TOPIC, 3)).build();
    let broker = start(&data);
    let count = PER_CODEC.to_string();
    let mut produced = Vec::new();
    for codec in CODECS {
        let args = ["--count", &count, "--run", codec, "--compression", codec];
        let Some(doc) = run(&broker, api_version, "produce", &args) else {
            return;
        };
        let batch = records(&doc);
        assert_eq!(batch.len(), PER_CODEC, "acknowledged records ({codec})");
        produced.extend(batch);
    }
    let produced = as_set("the producer", &produced);
    let total = produced.len();
    let group = format!("legacy-{api_version}");
    let half = (total / 2).to_string();
    let rest = (total - total / 2).to_string();

    let first = run(
        &broker,
        api_version,
        "group",
        &["--group", &group, "--max-records", &half],
    )
    .expect("installed");
    let first_records = records(&first);
    let mut expected: BTreeMap<i64, i64> = (0..3).map(|p| (p, -1)).collect();
    expected.extend(next_offsets(&first_records));
    assert_eq!(committed(&first), expected, "committed after the first run");

    let second = run(
        &broker,
        api_version,
        "group",
        &["--group", &group, "--max-records", &rest],
    )
    .expect("installed");
    let mut both = first_records;
    both.extend(records(&second));
    assert_eq!(
        as_set("the two group runs", &both),
        produced,
        "the two runs together read every record once"
    );
    let mut expected: BTreeMap<i64, i64> = (0..3).map(|p| (p, -1)).collect();
    expected.extend(next_offsets(&both));
    assert_eq!(committed(&second), expected, "committed at the end");
    assert_no_closed_connections(&broker, &format!("kafka-python api_version {api_version}"));
}

/// A group in two runs on records the harness wrote (the read path alone, for a broker
/// that does not serve the client's Produce version).
fn consume_written(api_version: &str) {
    let (data, written) = consume_fixture(TOPIC);
    let broker = start(&data);
    let group = format!("legacy-fixture-{api_version}");
    let half = (written.len() / 2).to_string();
    let rest = (written.len() - written.len() / 2).to_string();
    let Some(first) = run(
        &broker,
        api_version,
        "group",
        &["--group", &group, "--max-records", &half],
    ) else {
        return;
    };
    let second = run(
        &broker,
        api_version,
        "group",
        &["--group", &group, "--max-records", &rest],
    )
    .expect("installed");
    let mut both = records(&first);
    both.extend(records(&second));
    assert_eq!(as_set("the two group runs", &both), written);
    assert_no_closed_connections(&broker, &format!("kafka-python api_version {api_version}"));
}

#[test]
fn kafka_python_api_0_10_consumes_written_records_in_a_group() {
    consume_written("0.10");
}

#[test]
fn kafka_python_api_0_10_produces_every_codec_and_resumes_a_group() {
    produce_consume_resume("0.10");
}

#[test]
fn kafka_python_api_0_11_produces_every_codec_and_resumes_a_group() {
    produce_consume_resume("0.11");
}
