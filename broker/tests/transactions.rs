//! The transaction coordinator against the real `gregor` binary: InitProducerId with a
//! transactional id (epoch bumps, fencing, persistence across restarts), EndTxn,
//! FindCoordinator key type 1, DescribeTransactions/ListTransactions, and
//! confluent-kafka's transactional producer (init, an empty abort, fencing), transactional
//! produce with commits and aborts mixed read at both isolation levels (and after a kill -9),
//! a consume-transform-produce loop with `send_offsets_to_transaction`, and a transaction
//! left open by a kill -9, aborted by the coordinator after the restart; kafka-python's
//! transactional producer and read_committed consumer.

mod support;

use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestTopic,
};
use gregor_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use support::{Broker, DataDir, RawClient, TopicSpec, produce_transactional, python};

const NONE: i16 = 0;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

fn connect(broker: &Broker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect to the broker")
}

fn init(
    client: &mut RawClient,
    version: i16,
    id: &str,
    timeout_ms: i32,
    producer: (i64, i16),
) -> (i16, i64, i16) {
    let response = client
        .call(
            &InitProducerIdRequest {
                transactional_id: Some(id.into()),
                transaction_timeout_ms: timeout_ms,
                producer_id: producer.0,
                producer_epoch: producer.1,
                ..Default::default()
            },
            version,
        )
        .expect("InitProducerId");
    (
        response.error_code,
        response.producer_id,
        response.producer_epoch,
    )
}

#[test]
fn transactional_ids_get_bumped_epochs_that_survive_a_restart() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);

    // FindCoordinator key type 1 names this broker (and creates __transaction_state).
    let found = client
        .call(
            &FindCoordinatorRequest {
                key: "txn-a".into(),
                key_type: 1,
                ..Default::default()
            },
            3,
        )
        .expect("FindCoordinator");
    assert_eq!(found.error_code, NONE);
    assert_eq!(found.port, i32::from(broker.addr().port()));

    let (code, pid, epoch) = init(&mut client, 4, "txn-a", 60_000, (-1, -1));
    assert_eq!((code, epoch), (NONE, 0));
    let (code, pid2, epoch2) = init(&mut client, 4, "txn-a", 60_000, (-1, -1));
    assert_eq!(
        (code, pid2, epoch2),
        (NONE, pid, 1),
        "a second init bumps the epoch"
    );

    // KIP-360: the current epoch bumps; a stale one is fenced (INVALID_PRODUCER_EPOCH
    // before v4).
    assert_eq!(
        init(&mut client, 4, "txn-a", 60_000, (pid, 1)),
        (NONE, pid, 2)
    );
    assert_eq!(
        init(&mut client, 4, "txn-a", 60_000, (pid, 0)).0,
        PRODUCER_FENCED
    );
    assert_eq!(
        init(&mut client, 3, "txn-a", 60_000, (pid, 0)).0,
        INVALID_PRODUCER_EPOCH
    );
    // Past transaction.max.timeout.ms (15 minutes).
    assert_eq!(
        init(&mut client, 4, "txn-a", 900_001, (-1, -1)).0,
        INVALID_TRANSACTION_TIMEOUT
    );

    // EndTxn without a transaction: INVALID_TXN_STATE; with a stale epoch: fenced.
    let end = |client: &mut RawClient, epoch: i16| {
        client
            .call(
                &EndTxnRequest {
                    transactional_id: "txn-a".into(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    committed: true,
                    ..Default::default()
                },
                3,
            )
            .expect("EndTxn")
            .error_code
    };
    assert_eq!(end(&mut client, 2), INVALID_TXN_STATE);
    assert_eq!(end(&mut client, 1), PRODUCER_FENCED);

    let described = client
        .call(
            &DescribeTransactionsRequest {
                transactional_ids: vec!["txn-a".into(), "nope".into()],
                ..Default::default()
            },
            0,
        )
        .expect("DescribeTransactions");
    let states = &described.transaction_states;
    assert_eq!(states[0].error_code, NONE);
    assert_eq!(&*states[0].transaction_state, "Empty");
    assert_eq!((states[0].producer_id, states[0].producer_epoch), (pid, 2));
    assert_eq!(states[1].error_code, TRANSACTIONAL_ID_NOT_FOUND);

    let listed = client
        .call(
            &ListTransactionsRequest {
                state_filters: vec!["Empty".into(), "Bogus".into()],
                duration_filter: -1,
                ..Default::default()
            },
            1,
        )
        .expect("ListTransactions");
    assert_eq!(listed.error_code, NONE);
    assert_eq!(listed.unknown_state_filters.len(), 1);
    assert_eq!(&*listed.unknown_state_filters[0], "Bogus");
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(&*listed.transaction_states[0].transactional_id, "txn-a");

    // After a restart the id keeps its producer id; the next init bumps its epoch.
    drop(client);
    broker.stop();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    assert_eq!(
        init(&mut client, 4, "txn-a", 60_000, (-1, -1)),
        (NONE, pid, 3),
        "{}",
        broker.log_text()
    );
    // And after kill -9 too.
    drop(client);
    broker.kill9();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    assert_eq!(
        init(&mut client, 4, "txn-a", 60_000, (-1, -1)),
        (NONE, pid, 4)
    );
}

#[test]
fn confluent_kafka_inits_and_aborts_an_empty_transaction() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let Some(out) = python(
        "transactions_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--mode",
            "abort",
            "--transactional-id",
            "ck-abort",
        ],
    ) else {
        return;
    };
    let json = out.assert_success().json();
    assert_eq!(json["init"], "ok");
    assert_eq!(json["abort"], "ok");
}

#[test]
fn confluent_kafka_second_producer_fences_the_first() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let Some(out) = python(
        "transactions_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--mode",
            "fence",
            "--transactional-id",
            "ck-fence",
        ],
    ) else {
        return;
    };
    let json = out.assert_success().json();
    assert_eq!(json["b_init"], "ok");
    let error = json["a_after_fence"].as_str().unwrap_or("none").to_string();
    assert!(
        error.contains("FENCED") || error.contains("INVALID_PRODUCER_EPOCH"),
        "the first producer should be fenced, got {error}: {json}"
    );
}

#[test]
fn transactional_offsets_stay_pending_until_their_marker() {
    let data = DataDir::builder().topic(TopicSpec::new("in", 1)).build();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let (code, pid, epoch) = init(&mut client, 4, "txn-o", 60_000, (-1, -1));
    assert_eq!(code, NONE);

    // A partition that does not exist fails the whole AddPartitionsToTxn.
    let added = client
        .call(
            &AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: "txn-o".into(),
                v3_and_below_producer_id: pid,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                    name: "in".into(),
                    partitions: vec![0, 7],
                    ..Default::default()
                }],
                ..Default::default()
            },
            3,
        )
        .expect("AddPartitionsToTxn");
    let codes: Vec<(i32, i16)> = added.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| (p.partition_index, p.partition_error_code))
        .collect();
    assert_eq!(
        codes,
        [
            (0, OPERATION_NOT_ATTEMPTED),
            (7, UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );

    let response = client
        .call(
            &AddOffsetsToTxnRequest {
                transactional_id: "txn-o".into(),
                producer_id: pid,
                producer_epoch: epoch,
                group_id: "g".into(),
                ..Default::default()
            },
            3,
        )
        .expect("AddOffsetsToTxn");
    assert_eq!(response.error_code, NONE);

    let committed = client
        .call(
            &TxnOffsetCommitRequest {
                transactional_id: "txn-o".into(),
                group_id: "g".into(),
                producer_id: pid,
                producer_epoch: epoch,
                generation_id: -1,
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: "in".into(),
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 5,
                        committed_leader_epoch: -1,
                        committed_metadata: Some("m".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            3,
        )
        .expect("TxnOffsetCommit");
    assert_eq!(committed.topics[0].partitions[0].error_code, NONE);

    let fetch = |client: &mut RawClient, require_stable: bool| {
        let response = client
            .call(
                &OffsetFetchRequest {
                    group_id: "g".into(),
                    topics: Some(vec![OffsetFetchRequestTopic {
                        name: "in".into(),
                        partition_indexes: vec![0],
                        ..Default::default()
                    }]),
                    require_stable,
                    ..Default::default()
                },
                7,
            )
            .expect("OffsetFetch");
        let p = &response.topics[0].partitions[0];
        (p.committed_offset, p.error_code)
    };
    // Not visible before the commit marker; KIP-447 callers are told to wait.
    assert_eq!(fetch(&mut client, false), (-1, NONE));
    assert_eq!(fetch(&mut client, true), (-1, UNSTABLE_OFFSET_COMMIT));

    let described = client
        .call(
            &DescribeTransactionsRequest {
                transactional_ids: vec!["txn-o".into()],
                ..Default::default()
            },
            0,
        )
        .expect("DescribeTransactions");
    let state = &described.transaction_states[0];
    assert_eq!(&*state.transaction_state, "Ongoing");
    assert_eq!(&*state.topics[0].topic, "__consumer_offsets");
}

/// Runs the transactions driver in `mode` with `args`; `None` without the clients.
fn eos_driver(bootstrap: &str, mode: &str, args: &[&str]) -> Option<support::ClientOutput> {
    let mut all = vec![mode, "--bootstrap", bootstrap];
    all.extend_from_slice(args);
    support::python_with_timeout(
        "transactions_eos_confluent.py",
        &all,
        std::time::Duration::from_secs(120),
    )
}

/// The (key, value) pairs a read of `topic` at `isolation` returns, as text, sorted
/// (`None` for a null key or value).
fn records_read(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
) -> Vec<(Option<String>, Option<String>)> {
    let out = eos_driver(
        bootstrap,
        "consume",
        &["--topic", topic, "--isolation", isolation],
    )
    .expect("clients are there");
    let text = |v: &support::Json| {
        v.as_str()
            .map(|hex| String::from_utf8(decode_hex(hex)).expect("utf-8"))
    };
    let mut records: Vec<_> = out
        .assert_success()
        .json_lines()
        .iter()
        .map(|r| (text(&r["key"]), text(&r["value"])))
        .collect();
    records.sort();
    records
}

/// The keys a read of `topic` at `isolation` returns, sorted.
fn keys_read(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    records_read(bootstrap, topic, isolation)
        .into_iter()
        .map(|(key, _)| key.expect("a key"))
        .collect()
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The keys of transactions `which` of the driver's `produce` mode (`per_txn` each).
fn txn_keys(which: &[usize], per_txn: usize) -> Vec<String> {
    let mut keys: Vec<String> = which
        .iter()
        .flat_map(|i| (0..per_txn).map(move |j| format!("t{i}-{j}")))
        .collect();
    keys.sort();
    keys
}

/// Commits and aborts mixed: a read_committed consumer sees exactly the committed
/// transactions' records, a read_uncommitted one every record; after a kill -9 and a
/// restart the same.
#[test]
fn confluent_kafka_read_committed_sees_only_committed_transactions() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("txn-data", 3))
        .build();
    let mut broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let Some(out) = eos_driver(
        &bootstrap,
        "produce",
        &[
            "--topic",
            "txn-data",
            "--pattern",
            "cacaacc",
            "--per-txn",
            "15",
            "--transactional-id",
            "mixed",
        ],
    ) else {
        return;
    };
    assert_eq!(out.assert_success().json_lines().len(), 7);
    let committed = txn_keys(&[0, 2, 5, 6], 15);
    let everything = txn_keys(&[0, 1, 2, 3, 4, 5, 6], 15);
    assert_eq!(
        keys_read(&bootstrap, "txn-data", "read_committed"),
        committed
    );
    assert_eq!(
        keys_read(&bootstrap, "txn-data", "read_uncommitted"),
        everything
    );
    broker.kill9();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    assert_eq!(
        keys_read(&bootstrap, "txn-data", "read_committed"),
        committed
    );
    assert_eq!(
        keys_read(&bootstrap, "txn-data", "read_uncommitted"),
        everything
    );
}

/// A consume-transform-produce loop with `send_offsets_to_transaction`, commits and aborts
/// mixed: the output holds every input record exactly once, and the group's offsets are
/// at the end of the input.
#[test]
fn confluent_kafka_consume_transform_produce_is_exactly_once() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("eos-in", 2).records(40))
        .topic(TopicSpec::new("eos-out", 2))
        .build();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let Some(out) = eos_driver(
        &bootstrap,
        "eos",
        &[
            "--input",
            "eos-in",
            "--output",
            "eos-out",
            "--group",
            "eos-group",
            "--pattern",
            "cacaccacccaccccccccccc",
            "--per-txn",
            "8",
            "--transactional-id",
            "eos-loop",
        ],
    ) else {
        return;
    };
    let done = out.assert_success().json();
    assert_eq!(
        done["done"], 80,
        "every input record committed once: {done}"
    );
    let mut inputs: Vec<_> = records_read(&bootstrap, "eos-in", "read_committed")
        .into_iter()
        .map(|(key, value)| (key, value.map(|v| v.to_uppercase())))
        .collect();
    inputs.sort();
    assert_eq!(inputs.len(), 80);
    let outputs = records_read(&bootstrap, "eos-out", "read_committed");
    assert_eq!(
        outputs, inputs,
        "each input record once in the output, transformed"
    );
    let mut client = connect(&broker);
    let request = OffsetFetchRequest {
        group_id: "eos-group".into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: "eos-in".into(),
            partition_indexes: vec![0, 1],
            ..Default::default()
        }]),
        require_stable: true,
        ..Default::default()
    };
    let response = client.call(&request, 7).expect("OffsetFetch");
    let offsets: Vec<(i64, i16)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.error_code))
        .collect();
    assert_eq!(offsets, [(40, NONE), (40, NONE)]);
}

/// kill -9 while a transaction is open (its records written, no EndTxn): after the restart
/// the coordinator aborts it when it times out, read_committed consumers never see its
/// records, and the last stable offset moves past it.
#[test]
fn open_transaction_at_kill_9_is_aborted_after_restart() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("txn-crash", 1))
        .build();
    let props = [(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "500",
    )];
    let mut broker = Broker::start_with(&data, &props);
    let bootstrap = broker.bootstrap();
    if support::python_client_versions().is_none() {
        assert!(
            !support::clients_required(),
            "the Python clients are missing"
        );
        return;
    }
    let hanging = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || {
            eos_driver(
                &bootstrap,
                "produce",
                &[
                    "--topic",
                    "txn-crash",
                    "--pattern",
                    "cach",
                    "--per-txn",
                    "10",
                    "--transactional-id",
                    "crashing",
                    "--transaction-timeout-ms",
                    "3000",
                    "--timeout",
                    "20",
                ],
            )
        })
    };
    // Wait until the open transaction's records are in the log (40 records + 3 markers).
    let mut client = connect(&broker);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let request = DescribeTransactionsRequest {
            transactional_ids: vec!["crashing".into()],
            ..Default::default()
        };
        let state = client.call(&request, 0).ok().map(|r| {
            let s = &r.transaction_states[0];
            (s.error_code, s.transaction_state.to_string())
        });
        let end = end_offset(&mut client, "txn-crash");
        if state.as_ref().is_some_and(|(_, s)| s == "Ongoing") && end >= 43 {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let driver = hanging.join().ok().flatten();
            panic!(
                "no open transaction: {state:?}, end offset {end}, driver {:?}",
                driver.map(|o| (o.stdout.clone(), o.stderr.clone()))
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    broker.kill9();
    let broker = Broker::start_with(&data, &props);
    let bootstrap = broker.bootstrap();
    // The coordinator aborts the transaction once its timeout (3 s) has passed.
    let mut client = connect(&broker);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let request = DescribeTransactionsRequest {
            transactional_ids: vec!["crashing".into()],
            ..Default::default()
        };
        let state = client
            .call(&request, 0)
            .map(|r| r.transaction_states[0].transaction_state.to_string())
            .expect("DescribeTransactions");
        if state == "CompleteAbort" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the open transaction was not aborted: {state}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Its abort marker follows its records.
    assert_eq!(end_offset(&mut client, "txn-crash"), 44);
    assert_eq!(
        keys_read(&bootstrap, "txn-crash", "read_committed"),
        txn_keys(&[0, 2], 10)
    );
    assert_eq!(
        keys_read(&bootstrap, "txn-crash", "read_uncommitted"),
        txn_keys(&[0, 1, 2, 3], 10)
    );
    let _ = hanging.join();
}

/// The latest offset of partition 0 of `topic` (ListOffsets, read_uncommitted).
fn end_offset(client: &mut RawClient, topic: &str) -> i64 {
    use gregor_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    client
        .call(&request, 5)
        .map(|r| r.topics[0].partitions[0].offset)
        .unwrap_or(-1)
}

/// kafka-python's transactional producer: commits and aborts mixed; kafka-python's
/// read_committed consumer sees the committed transactions only, read_uncommitted all.
#[test]
fn kafka_python_read_committed_sees_only_committed_transactions() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("kp-txn", 2))
        .build();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--bootstrap", bootstrap.as_str()];
        all.extend_from_slice(args);
        python("transactions_kafka_python.py", &all)
    };
    let Some(out) = run(&[
        "produce",
        "--topic",
        "kp-txn",
        "--pattern",
        "caac",
        "--per-txn",
        "12",
    ]) else {
        return;
    };
    assert_eq!(out.assert_success().json_lines().len(), 4);
    let keys = |isolation: &str| {
        let out = run(&["consume", "--topic", "kp-txn", "--isolation", isolation])
            .expect("clients are there");
        let mut keys: Vec<String> = out
            .assert_success()
            .json_lines()
            .iter()
            .map(|r| String::from_utf8(decode_hex(r["key"].as_str().expect("key"))).unwrap())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys("read_committed"), txn_keys(&[0, 3], 12));
    assert_eq!(keys("read_uncommitted"), txn_keys(&[0, 1, 2, 3], 12));
}

/// `transaction.partition.verification.enable` (KIP-890): on, a transactional batch for a
/// partition never added to the transaction is refused (the coordinator does not verify
/// it); off, the leader appends it without asking, as Kafka's
/// `maybeStartTransactionVerificationForPartitions` skips the check.
#[test]
fn partition_verification_refuses_unadded_partitions_unless_disabled() {
    for (enabled, expected) in [("true", INVALID_TXN_STATE), ("false", NONE)] {
        let data = DataDir::builder()
            .topic(TopicSpec::new("verify", 1))
            .build();
        let broker = Broker::start_with(
            &data,
            &[("transaction.partition.verification.enable", enabled)],
        );
        let mut client = connect(&broker);
        let (code, pid, epoch) = init(&mut client, 4, "unadded", 60_000, (-1, -1));
        assert_eq!(code, NONE);
        assert_eq!(
            produce_transactional(broker.addr(), "unadded", (pid, epoch), "verify", 0, 0),
            expected,
            "verification enabled: {enabled}"
        );
    }
}
