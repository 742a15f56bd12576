//! Incremental fetch sessions (KIP-227) with real consumers: a topic of 1,000 partitions,
//! records in every tenth, read to the end in many fetches while the broker logs each session's fetches
//! (`gregor_broker::fetch_sessions` at debug). kafka-python implements KIP-227: after its
//! first, full, fetch its fetches must be incremental and their responses must carry fewer
//! partitions than the session holds. (The session may shrink for a while: kafka-python
//! leaves out of a fetch, as forgotten partitions, those it still holds buffered records
//! of, and adds them back later.) librdkafka does not implement sessions (its fetches
//! are all sessionless): it must read everything without one.

use crate::support::{
    Broker, DataDir, TopicSpec, assert_consumed_all, parse_driver_records, python,
};
use crate::{bounds, driver_args, print_versions};

const PARTITIONS: i32 = 1000;

/// Topic `wide`: 1,000 partitions, 100 records (10 batches) in each tenth partition, the
/// rest empty.
fn wide_fixture() -> DataDir {
    let mut spec = TopicSpec::new("wide", PARTITIONS).batch_records(10);
    for p in (0..PARTITIONS).step_by(10) {
        spec = spec.partition_records(p, 100);
    }
    DataDir::builder().topic(spec).build()
}

/// (session size, partitions returned) of every incremental fetch the broker logged.
fn incremental_fetches(log: &str) -> Vec<(usize, usize)> {
    log.lines()
        .filter_map(|line| {
            let rest = line.split(": incremental, ").nth(1)?;
            let (returned, rest) = rest.split_once(" of ")?;
            let size = rest.split_whitespace().next()?;
            Some((size.parse().ok()?, returned.parse().ok()?))
        })
        .collect()
}

/// Reads all of `wide` with a driver; returns the full fetches that made a session and the
/// incremental fetches the broker logged, `None` when the client is not installed.
fn consume_wide(
    script: &str,
    client: &str,
    until_fetch: &str,
) -> Option<(usize, Vec<(usize, usize)>)> {
    let started = std::time::Instant::now();
    let data = wide_fixture();
    let broker = Broker::start_with_env(
        &data,
        &[],
        &[("RUST_LOG", "info,gregor_broker::fetch_sessions=debug")],
    );
    println!("fixture and broker start: {:?}", started.elapsed());
    let bootstrap = broker.bootstrap();
    let mut args = driver_args(&bootstrap, bounds(&broker), until_fetch);
    // A limit of a few batches per partition (about 25 KB each), so reading takes several
    // fetches, each returning the partitions with data.
    args.extend(["--topic", "wide", "--max-partition-fetch-bytes", "8192"]);
    let out = python(script, &args)?;
    print_versions();
    out.assert_success();
    let consumed = parse_driver_records(&out);
    assert_consumed_all(client, data.topic("wide"), None, &consumed);
    println!("consumed in {:?}", out.elapsed);

    let log = broker.log_text();
    let full = log
        .lines()
        .filter(|l| {
            l.contains("fetch session") && l.contains(&format!(": full, {PARTITIONS} partitions"))
        })
        .count();
    let incremental = incremental_fetches(&log);
    println!(
        "{client}: {full} full fetch(es) with a session, {} incremental, returning {:?} partitions",
        incremental.len(),
        incremental.iter().map(|f| f.1).collect::<Vec<_>>()
    );
    Some((full, incremental))
}

#[test]
fn kafka_python_consumer_of_1000_partitions_fetches_incrementally() {
    let Some((full, incremental)) =
        consume_wide("consume_kafka_python.py", "kafka-python", "highwater")
    else {
        return;
    };
    assert!(
        full >= 1 && !incremental.is_empty(),
        "kafka-python: expected a full fetch of {PARTITIONS} partitions creating a session, then \
         incremental fetches; found {full} full and {incremental:?}"
    );
    assert!(
        incremental
            .iter()
            .all(|&(size, returned)| size <= PARTITIONS as usize && returned < size),
        "every incremental fetch holds at most the {PARTITIONS} partitions and returns fewer \
         than it holds: {incremental:?}"
    );
}

/// librdkafka (confluent-kafka, kcat) implements no fetch sessions: every Fetch it sends is
/// sessionless (session id 0, epoch -1, as `rd_kafka_broker_fetch_toppars` writes it), so
/// the broker must serve it whole and never make a session for it.
#[test]
fn confluent_consumer_of_1000_partitions_reads_everything_sessionless() {
    let Some((full, incremental)) = consume_wide("consume_confluent.py", "confluent-kafka", "eof")
    else {
        return;
    };
    assert_eq!(
        (full, incremental.len()),
        (0, 0),
        "librdkafka sends sessionless fetches only"
    );
}
