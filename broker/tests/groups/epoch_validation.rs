//! A real consumer validates its committed position with OffsetForLeaderEpoch (KIP-320):
//! confluent-kafka (librdkafka) commits an offset with the leader epoch of the last record
//! it consumed; after a broker restart a new member of the group asks for the end offset
//! of that epoch before it fetches, and resumes from the committed offset without error.

use std::time::Duration;

use gregor_protocol::Uuid;
use gregor_protocol::error_code as code;

use crate::support::{
    Broker, ClientOutput, DataDir, Json, JsonExt, TopicSpec, parse_driver_records,
    python_with_timeout,
};
use crate::wire::*;

/// One partition of 30 records in batches of 5: epoch 0 from offset 0, epoch 2 from 10.
const EPOCHS_TOPIC: &str = "epoch-log";

fn run(broker: &Broker, group: &str, extra: &[&str]) -> Option<(ClientOutput, Json)> {
    let bootstrap = broker.bootstrap();
    let mut args = vec![
        "--bootstrap",
        bootstrap.as_str(),
        "--topic",
        EPOCHS_TOPIC,
        "--group",
        group,
        "--timeout",
        "90",
    ];
    args.extend_from_slice(extra);
    let output = python_with_timeout("epoch_resume_confluent.py", &args, Duration::from_secs(150))?;
    output.assert_success();
    let summary = output
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .map(|l| Json::parse(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .unwrap_or_else(|| panic!("no summary line:\n{output}"));
    Some((output, summary))
}

/// How many times the broker log shows an OffsetForLeaderEpoch request.
fn epoch_requests(broker: &Broker) -> usize {
    broker
        .log_text()
        .lines()
        .filter(|l| l.contains(" request ") && l.contains("api=\"OffsetForLeaderEpoch\""))
        .count()
}

#[test]
fn confluent_consumer_validates_its_committed_epoch_after_a_restart() {
    let data = DataDir::builder()
        .topic(
            TopicSpec::new(EPOCHS_TOPIC, 1)
                .records(30)
                .batch_records(5)
                .leader_epochs(&[(0, 0), (2, 10)]),
        )
        .build();
    let mut broker = start(&data, &[]);
    let group = "epoch-checkers";
    let Some((output, summary)) = run(&broker, group, &["--max-records", "12"]) else {
        return;
    };
    assert_eq!(parse_driver_records(&output).len(), 12, "{output}");
    // Offset 11 is in epoch 2: the commit carries it.
    assert_eq!(
        summary.field("committed").field("0"),
        &serde_json::json!([12, 2])
    );
    let mut client = connect(&broker);
    let (error, topics) = fetch(
        &mut client,
        8,
        group,
        Some(&[(EPOCHS_TOPIC, Uuid::nil(), &[0])]),
    );
    assert_eq!(error, code::NONE);
    assert_eq!(
        (topics[0].1[0].offset, topics[0].1[0].leader_epoch),
        (12, 2)
    );
    drop(client);
    broker.stop();

    // After the restart a new member seeks to the committed offset and its epoch:
    // librdkafka asks for the end of epoch 2 (the log end, 30), finds the offset valid
    // and reads the rest.
    let mut broker = Broker::start_with_env(&data, PROPS, &[("RUST_LOG", "debug")]);
    let (output, summary) =
        run(&broker, group, &["--seek-committed", "--idle-ms", "2500"]).expect("the clients");
    assert_eq!(
        summary.field("seeked").field("0"),
        &serde_json::json!([12, 2])
    );
    assert_eq!(
        summary.field("first").field("0").as_i64(),
        Some(12),
        "{output}"
    );
    assert_eq!(parse_driver_records(&output).len(), 18, "{output}");
    assert_eq!(summary.field("errors"), &serde_json::json!([]), "{output}");
    assert!(
        epoch_requests(&broker) > 0,
        "the consumer did not validate its position with OffsetForLeaderEpoch:\n{}",
        broker.log_text()
    );
    broker.stop();

    // A position in epoch 0 past that epoch's end (as after a truncation): the end offset
    // the broker answers (10, where epoch 2 starts) is where librdkafka goes on reading.
    let broker = Broker::start_with_env(&data, PROPS, &[("RUST_LOG", "debug")]);
    // (Another group: this one has nothing left to read before the seek.)
    let (output, summary) = run(
        &broker,
        "epoch-seekers",
        &["--seek", "25:0", "--no-commit", "--idle-ms", "2500"],
    )
    .expect("the clients");
    assert!(epoch_requests(&broker) > 0, "{}", broker.log_text());
    assert_eq!(
        summary.field("first").field("0").as_i64(),
        Some(10),
        "{output}"
    );
    assert_eq!(parse_driver_records(&output).len(), 20, "{output}");
}
