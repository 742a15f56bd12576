//! The transaction coordinator against the real `gregor` binary: InitProducerId with a
//! transactional id (epoch bumps, fencing, persistence across restarts), EndTxn,
//! FindCoordinator key type 1, DescribeTransactions/ListTransactions, and
//! confluent-kafka's transactional producer (init, an empty abort, fencing).
//!
//! Transactional produce needs the partition logs' marker support (another branch);
//! these tests use transactions without produced records.

mod support;

use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use support::{Broker, DataDir, RawClient, python};

const NONE: i16 = 0;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

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
