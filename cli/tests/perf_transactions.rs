//! `gregorctl perf produce --idempotent|--transactional-id` and `perf fetch-sessions`
//! against the real `gregor` broker. The transactional runs are read back at
//! read_committed (a raw Fetch with isolation_level 1, and confluent-kafka when the test
//! clients are installed): exactly the records the summary reports, all committed (the last
//! stable offset equals the high watermark). No assertion is about speed.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_response_header, encode_request};
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use gregor_protocol::records::{Batch, RecordBatches};
use gregor_protocol::{Decodable, Request};
use serde_json::Value;
use support::{Broker, DataDir, Run};

/// A broker that can host `__transaction_state` on its own (Kafka's default replication
/// factor of 3 needs three brokers: FindCoordinator would answer COORDINATOR_NOT_AVAILABLE).
fn transactional_broker() -> Broker {
    Broker::start(
        DataDir::empty()
            .broker_config("transaction.state.log.replication.factor", "1")
            .broker_config("transaction.state.log.min.isr", "1"),
    )
}

/// The JSON summary (the last stdout line) of a perf run, which must have succeeded.
fn summary(run: &Run) -> Value {
    run.ok();
    let last = run.stdout.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {last}"))
}

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// One request and its response on a plain blocking socket.
fn call<R: Request>(stream: &mut TcpStream, request: &R, version: i16) -> R::Response {
    let mut frame = BytesMut::new();
    encode_request(&mut frame, request, version, 7, Some("perf-txn-test")).expect("encode");
    stream.write_all(&frame).expect("send");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut body = Bytes::from(body);
    decode_response_header(&mut body, R::API_KEY, version).expect("response header");
    R::Response::decode(&mut body, version).expect("response body decodes")
}

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(broker.bootstrap.as_str()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
}

/// ListOffsets of `partition` at `isolation` (0 read_uncommitted: the high watermark, 1
/// read_committed: the last stable offset).
fn latest_offset(broker: &Broker, topic: &str, partition: i32, isolation: i8) -> i64 {
    let response = call(
        &mut connect(broker),
        &ListOffsetsRequest {
            replica_id: -1,
            isolation_level: isolation,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp: -1,
                    current_leader_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        5,
    );
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "ListOffsets {topic}-{partition}");
    p.offset
}

/// What a read_committed consumer sees in `partition`: fetches at isolation_level 1 (Fetch
/// v11, by name) from 0 to the last stable offset. Returns the data records (outside
/// control batches, all in transactional batches) and the aborted transactions listed.
fn read_committed(broker: &Broker, topic: &str, partition: i32) -> (u64, usize) {
    let lso = latest_offset(broker, topic, partition, 1);
    let mut stream = connect(broker);
    let (mut offset, mut records, mut aborted) = (0i64, 0u64, 0usize);
    while offset < lso {
        let response = call(
            &mut stream,
            &FetchRequest {
                replica_id: -1,
                max_wait_ms: 0,
                min_bytes: 1,
                max_bytes: 64 << 20,
                isolation_level: 1,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: topic.into(),
                    partitions: vec![FetchPartition {
                        partition,
                        fetch_offset: offset,
                        partition_max_bytes: 8 << 20,
                        current_leader_epoch: -1,
                        log_start_offset: -1,
                        last_fetched_epoch: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            11,
        );
        assert_eq!(response.error_code, 0);
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch {topic}-{partition}");
        aborted += data.aborted_transactions.as_ref().map_or(0, Vec::len);
        let before = offset;
        for batch in RecordBatches::new(data.records.clone().unwrap_or_default()) {
            let Batch::V2(batch) = batch.expect("a valid batch") else {
                panic!("a legacy message set in a transactional topic");
            };
            if batch.next_offset() <= offset {
                continue;
            }
            if !batch.is_control() {
                assert!(batch.is_transactional(), "a non-transactional batch");
                records += batch.record_count() as u64;
            }
            offset = batch.next_offset();
        }
        assert!(
            offset > before,
            "no progress at offset {offset} below the LSO {lso}"
        );
    }
    (records, aborted)
}

/// Asserts every partition of `topic` is fully committed (LSO == high watermark) and a
/// read_committed read returns `expected` records in all, none aborted.
fn assert_committed(broker: &Broker, topic: &str, partitions: i32, expected: u64) {
    let mut total = 0;
    for p in 0..partitions {
        let hw = latest_offset(broker, topic, p, 0);
        let lso = latest_offset(broker, topic, p, 1);
        assert_eq!(
            lso, hw,
            "{topic}-{p}: an open transaction (LSO {lso} < HW {hw})"
        );
        let (records, aborted) = read_committed(broker, topic, p);
        assert_eq!(aborted, 0, "{topic}-{p}: aborted transactions listed");
        total += records;
    }
    assert_eq!(total, expected, "records read at read_committed in {topic}");
}

/// confluent-kafka's read_committed consumer (the broker tests' driver) when the test
/// clients are installed: the number of records it reads.
fn confluent_read_committed(broker: &Broker, topic: &str) -> Option<usize> {
    let venv = std::env::var_os("GREGOR_CLIENTS_VENV")?;
    let python = std::path::Path::new(&venv).join("bin/python");
    let driver = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../broker/tests/clients/transactions_eos_confluent.py");
    if !python.is_file() || !driver.is_file() {
        return None;
    }
    let output = Command::new(python)
        .arg(driver)
        .args([
            "consume",
            "--bootstrap",
            broker.bootstrap.as_str(),
            "--topic",
            topic,
            "--isolation",
            "read_committed",
            "--timeout",
            "60",
        ])
        .output()
        .expect("run the confluent-kafka driver");
    assert!(
        output.status.success(),
        "confluent-kafka consume failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count(),
    )
}

#[test]
fn transactional_perf_produce_commits_exactly_the_records_it_reports() {
    let broker = transactional_broker();
    broker.create_topic("txn", 2, &[]);

    // Transactions v1 (AddPartitionsToTxn, as producers before Kafka 4.0): 12
    // transactions of 50 records, one batch each, the partitions in turn.
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "txn",
        "--transactional-id",
        "perf-txn-1",
        "--transaction-records",
        "50",
        "--transaction-version",
        "1",
        "--num-records",
        "600",
        "--duration",
        "60",
    ]));
    println!("v1: {s}");
    assert_eq!(s["records"], 600, "{s}");
    assert_eq!(s["transactions"], 12, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["latency_of"], "transaction");
    assert_eq!(s["transactional_id"], "perf-txn-1");
    assert_eq!(s["transaction_records"], 50);
    assert_eq!(s["transaction_version"], 1);
    assert_eq!(count(&s["bytes"]), 600 * 100);
    assert!(s["transactions_per_sec"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{s}");

    // Larger transactions than a batch: 3 of 1,000 records, 7 batches each over both
    // partitions, pipelined.
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "txn",
        "--transactional-id",
        "perf-txn-1",
        "--transaction-records",
        "1000",
        "--transaction-version",
        "1",
        "--num-records",
        "3000",
        "--duration",
        "60",
    ]));
    println!("v1, 1000 per transaction: {s}");
    assert_eq!(s["records"], 3000, "{s}");
    assert_eq!(s["transactions"], 3, "{s}");
    assert!(count(&s["requests"]) >= 3 * 7, "{s}");

    // Transactions v2 as the broker finalizes it (Produce v12+ adds the partitions, EndTxn
    // v5 bumps the epoch): one transaction, so its epoch is the initial one plus one.
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "txn",
        "--transactional-id",
        "perf-txn-2",
        "--transaction-records",
        "400",
        "--num-records",
        "400",
        "--duration",
        "60",
    ]));
    println!("v2: {s}");
    assert_eq!(
        s["transaction_version"], 2,
        "the broker finalizes transaction.version 2"
    );
    assert_eq!(s["records"], 400, "{s}");
    assert_eq!(s["transactions"], 1, "{s}");
    assert_eq!(s["producer_epoch"], 1, "EndTxn v5 bumped the epoch: {s}");

    assert_committed(&broker, "txn", 2, 600 + 3000 + 400);
    if let Some(read) = confluent_read_committed(&broker, "txn") {
        assert_eq!(read, 4000, "confluent-kafka read_committed");
    } else {
        println!("skipped: confluent-kafka read_committed (GREGOR_CLIENTS_VENV not set)");
    }

    // The idempotent producer in the same way: every record once.
    broker.create_topic("idem", 2, &[]);
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "idem",
        "--idempotent",
        "--num-records",
        "5000",
        "--duration",
        "60",
    ]));
    println!("idempotent: {s}");
    assert_eq!(s["records"], 5000, "{s}");
    assert_eq!(s["latency_of"], "batch");
    assert!(s.get("transactional_id").is_none());
    assert_eq!(broker.stored("idem"), 5000);
}

/// Transaction version 2 back to back: each transaction's first Produce can reach the
/// partition before the previous transaction's marker does, and must be verified with the
/// coordinator (retried on CONCURRENT_TRANSACTIONS), not refused with INVALID_TXN_STATE.
#[test]
fn back_to_back_version_2_transactions_all_commit() {
    let broker = transactional_broker();
    broker.create_topic("txn-v2", 1, &[]);
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "txn-v2",
        "--transactional-id",
        "perf-txn-v2",
        "--transaction-records",
        "10",
        "--num-records",
        "3000",
        "--duration",
        "120",
    ]));
    println!("v2, 300 transactions: {s}");
    assert_eq!(s["transaction_version"], 2, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["transactions"], 300, "{s}");
    assert_committed(&broker, "txn-v2", 1, 3000);
}

#[test]
fn a_fenced_transactional_producer_stops_with_the_error() {
    let broker = transactional_broker();
    broker.create_topic("fence", 1, &[]);
    // The first producer runs long; once it has written, a second one with the same
    // transactional.id initializes and fences it.
    let mut first = Command::new(env!("CARGO_BIN_EXE_gregorctl"))
        .args([
            "--bootstrap-server",
            broker.bootstrap.as_str(),
            "perf",
            "produce",
            "--topic",
            "fence",
            "--transactional-id",
            "fenced",
            "--transaction-records",
            "100",
            "--transaction-version",
            "1",
            "--duration",
            "120",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the first producer");
    let started = Instant::now();
    while broker.end_offsets("fence")[0] == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first producer wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = summary(&broker.ctl(&[
        "perf",
        "produce",
        "--topic",
        "fence",
        "--transactional-id",
        "fenced",
        "--transaction-records",
        "100",
        "--transaction-version",
        "1",
        "--num-records",
        "100",
    ]));
    assert_eq!(s["records"], 100, "{s}");
    // The first must now fail on its own (well before its 120 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = first.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = first.kill();
            panic!("the fenced producer kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    first
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let mut stdout = String::new();
    first
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("PRODUCER_FENCED") || stderr.contains("INVALID_PRODUCER_EPOCH"),
        "the error names the fencing: {stderr}"
    );
    // Its summary still came out, with the error.
    let last: Value = serde_json::from_str(stdout.lines().last().expect("a summary")).unwrap();
    assert!(last["first_error"].as_str().is_some(), "{last}");
    // Every partition is left committed or aborted (the fenced one's open transaction was
    // aborted by the second's InitProducerId).
    let hw = latest_offset(&broker, "fence", 0, 0);
    assert_eq!(latest_offset(&broker, "fence", 0, 1), hw);
}

#[test]
fn bad_transactional_flags_are_usage_errors() {
    let broker = transactional_broker();
    broker.create_topic("flags", 1, &[]);
    let base = ["perf", "produce", "--topic", "flags", "--num-records", "10"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        broker.ctl(&args)
    };
    with(&["--idempotent", "--acks", "1"]).fails_with("acks=all");
    with(&["--idempotent", "--max-in-flight", "6"]).fails_with("at most 5");
    with(&["--transactional-id", "x", "--transaction-records", "0"])
        .fails_with("--transaction-records must be at least 1");
    with(&["--transactional-id", "x", "--throughput", "100"]).fails_with("--throughput");
}

#[test]
fn idle_incremental_fetches_are_far_smaller_than_sessionless_ones() {
    let broker = Broker::start_empty();
    broker.create_topic("sessions", 1000, &[]);
    let run = |session: &str, trickle: &str| {
        summary(&broker.ctl(&[
            "perf",
            "fetch-sessions",
            "--topic",
            "sessions",
            "--fetches",
            "12",
            "--session",
            session,
            "--trickle-partitions",
            trickle,
        ]))
    };
    let none = run("none", "0");
    let incremental = run("incremental", "0");
    println!("sessionless: {none}\nincremental: {incremental}");
    assert_eq!(none["partitions"], 1000);
    assert_eq!(none["full_fetches"], 12);
    assert_eq!(none["incremental_fetches"], 0);
    assert_eq!(none["response_partitions_per_fetch"], 1000.0);
    assert_eq!(incremental["full_fetches"], 1, "{incremental}");
    assert_eq!(incremental["incremental_fetches"], 11, "{incremental}");
    assert_eq!(incremental["session_resets"], 0, "{incremental}");
    assert_ne!(incremental["session_id"], 0, "the broker opened a session");
    // The first fetch is a full one in both modes: the same answer.
    assert_eq!(
        incremental["first_response_bytes"],
        none["first_response_bytes"]
    );
    let idle_incremental = incremental["later_response_bytes_per_fetch"]
        .as_f64()
        .unwrap();
    let idle_none = none["later_response_bytes_per_fetch"].as_f64().unwrap();
    assert!(
        idle_incremental * 100.0 < idle_none,
        "an idle incremental fetch answers with almost nothing: {idle_incremental} vs {idle_none} bytes"
    );
    assert!(
        incremental["request_bytes_per_fetch"].as_f64().unwrap() * 5.0
            < none["request_bytes_per_fetch"].as_f64().unwrap()
    );

    // Trickle: 3 partitions get a record before every fetch; both modes read every one,
    // the incremental fetches answer for those partitions only.
    let none = run("none", "3");
    let incremental = run("incremental", "3");
    println!("trickle sessionless: {none}\ntrickle incremental: {incremental}");
    for s in [&none, &incremental] {
        assert_eq!(s["records_produced"], 36, "{s}");
        assert_eq!(s["records"], 36, "every trickled record read back: {s}");
    }
    assert_eq!(incremental["incremental_fetches"], 11, "{incremental}");
    // 1,000 partitions in the first answer, then the 3 new ones in each.
    let answered = incremental["response_partitions_per_fetch"]
        .as_f64()
        .unwrap()
        * 12.0;
    assert!(
        (answered - (1000.0 + 11.0 * 3.0)).abs() < 0.5,
        "{incremental}"
    );
}
