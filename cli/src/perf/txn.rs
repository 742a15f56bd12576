//! `gregorctl perf produce --idempotent` and `--transactional-id ID --transaction-records N`:
//! the load generator as an idempotent or a transactional producer, with the requests
//! Kafka's Java producer (`TransactionManager`, `Sender`) sends for the versions the broker
//! advertises.
//!
//! * Idempotent: InitProducerId without a transactional id (any broker), then Produce
//!   batches carrying the producer id, epoch and per-partition sequence numbers, pipelined
//!   up to `max.in.flight.requests.per.connection` (at most 5, as Kafka requires for
//!   idempotence) on one connection per partition leader. Latency is per batch, from its
//!   send to its acknowledgement.
//! * Transactional: FindCoordinator (key type 1, the transaction coordinator), then
//!   InitProducerId with the transactional id on the coordinator; then per transaction of
//!   `--transaction-records` records: AddPartitionsToTxn for the partitions it writes
//!   (v0-v3, the client versions: v4 and above are for brokers, KIP-890), its Produce
//!   batches (marked transactional, with the transactional id in the request), then EndTxn
//!   commit once every batch is acknowledged. When the broker's ApiVersions finalizes
//!   `transaction.version` 2 or more (KIP-890 part 2), Produce v12+ adds the partitions
//!   implicitly and no AddPartitionsToTxn is sent, and EndTxn v5 returns a bumped epoch
//!   that the next transaction uses with sequences from 0; below it Produce is capped at
//!   v11 and EndTxn at v4, as the Java producer caps them. Latency is per transaction,
//!   from its first request to the EndTxn answer.
//!
//! Retriable coordinator errors (COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS,
//! and NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE after a new FindCoordinator) are
//! retried for up to the request timeout; every other error from the broker ends the run
//! with the error's name and hint (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, ...), after a
//! best-effort abort of the open transaction unless the producer was fenced.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gregor_protocol::ApiKey;
use gregor_protocol::error_code::{
    CONCURRENT_TRANSACTIONS, DUPLICATE_SEQUENCE_NUMBER, NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND, OUT_OF_ORDER_SEQUENCE_NUMBER, REQUEST_TIMED_OUT,
};
use gregor_protocol::messages::produce_request::ProduceRequest;
use gregor_protocol::messages::produce_response::ProduceResponse;
use gregor_protocol::records::{Compression, NewRecord, RECORD_BATCH_OVERHEAD, RecordBatchBuilder};
use serde::Serialize;
use tokio::task::JoinSet;

use super::produce::{Args, Budget, Settings, payloads, settings};
use super::txn_producer::{
    Producer, RETRY_BACKOFF, capped_version, finalized_transaction_version, is_fenced,
};
use super::{Latency, Stats, mib_per_sec, round2, spawn_progress, stop_progress};
use crate::client::cluster::TopicInfo;
use crate::client::{Cluster, Connection, Error, Result};
use crate::commands::Context;
use crate::commands::produce::{now_ms, produce_request, produce_results};
use crate::output;

/// The last Produce version before transactions v2 (Kafka's
/// `ProduceRequest.LAST_BEFORE_TRANSACTION_V2_VERSION`): from v12 partitions join a
/// transaction implicitly.
const LAST_PRODUCE_BEFORE_TV2: i16 = 11;
/// Idempotence keeps ordering only up to 5 requests in flight (Kafka's
/// `ProducerConfig`: max.in.flight.requests.per.connection must be at most 5).
const MAX_IDEMPOTENT_IN_FLIGHT: usize = 5;

/// Everything the batches need.
struct Load {
    topic: Arc<TopicInfo>,
    settings: Settings,
    codec: Compression,
    payloads: Arc<Vec<Bytes>>,
    /// Partition to its leader's produce connection and Produce version.
    routes: BTreeMap<i32, (Arc<Connection>, i16)>,
    partitions: Vec<i32>,
    timeout_ms: i32,
    stats: Arc<Stats>,
    /// Produce requests sent again.
    produce_retries: AtomicU64,
}

impl Load {
    /// A batch of `count` records for the producer, and its base sequence; `first` picks
    /// the payloads.
    fn batch(
        &self,
        producer: &mut Producer,
        partition: i32,
        count: u64,
        first: u64,
    ) -> Result<(Bytes, i32)> {
        let sequence = producer.take_sequence(partition, count);
        let mut out = BytesMut::with_capacity(
            RECORD_BATCH_OVERHEAD + count as usize * (self.settings.record_size + 10),
        );
        let mut writer = RecordBatchBuilder::new()
            .compression(self.codec)
            .producer(producer.producer_id, producer.epoch)
            .base_sequence(sequence)
            .transactional(producer.transactional_id.is_some())
            .writer(&mut out);
        let timestamp = now_ms();
        for i in 0..count {
            let payload = &self.payloads[((first + i) % self.payloads.len() as u64) as usize];
            writer
                .append(&NewRecord::new(timestamp, None, Some(payload.clone())))
                .map_err(|e| Error::Usage(format!("cannot encode a batch: {e}")))?;
        }
        writer
            .finish()
            .map_err(|e| Error::Usage(format!("cannot encode a batch: {e}")))?;
        Ok((out.freeze(), sequence))
    }

    /// Sends one batch of `count` records to `partition` and spawns the wait for its
    /// acknowledgement into `inflight`. Returns once the request is in the connection's
    /// window.
    async fn send(
        &self,
        producer: &mut Producer,
        partition: i32,
        count: u64,
        first: u64,
        inflight: &mut JoinSet<Outcome>,
    ) -> Result<()> {
        let (batch, sequence) = self.batch(producer, partition, count, first)?;
        let (connection, version) = self
            .routes
            .get(&partition)
            .ok_or_else(|| Error::Protocol(format!("no leader known for partition {partition}")))?;
        let mut request = produce_request(
            &self.topic,
            self.settings.acks,
            self.timeout_ms,
            vec![(partition, batch)],
        );
        request.transactional_id = producer.transactional_id.as_deref().map(Into::into);
        let sent = Sent {
            partition,
            sequence,
            count,
            request: Arc::new(request),
            connection: connection.clone(),
            version: *version,
            started: Instant::now(),
        };
        let pending = sent
            .connection
            .dispatch_at(&*sent.request, sent.version)
            .await?;
        let topic = self.topic.name.clone();
        inflight.spawn(async move { outcome(&topic, sent, pending.wait().await) });
        Ok(())
    }

    /// Counts an acknowledged batch (`per_batch`: its records and latency now; a
    /// transaction counts its records once committed).
    fn acked(&self, sent: &Sent, per_batch: bool) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if per_batch {
            self.stats
                .record_latency(sent.started.elapsed(), sent.count);
            self.stats.records.fetch_add(sent.count, Ordering::Relaxed);
            self.stats.bytes.fetch_add(
                sent.count * self.settings.record_size as u64,
                Ordering::Relaxed,
            );
        }
    }

    /// Takes one finished batch: counted when acknowledged, kept in `retries` when the
    /// broker asked for a retry, the error otherwise.
    fn settle(
        &self,
        outcome: std::result::Result<Outcome, tokio::task::JoinError>,
        per_batch: bool,
        retries: &mut Vec<(Sent, i16)>,
    ) -> Result<()> {
        match outcome {
            Ok(Outcome::Acked(sent)) => {
                self.acked(&sent, per_batch);
                Ok(())
            }
            Ok(Outcome::Retry(sent, code)) => {
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                retries.push((sent, code));
                Ok(())
            }
            Ok(Outcome::Failed(e)) => Err(e),
            Err(e) => Err(Error::Protocol(format!("a produce task failed: {e}"))),
        }
    }

    /// Sends the batches the broker asked to retry again, one at a time in sequence
    /// order per partition (the same bytes: same producer epoch and sequence, as Kafka's
    /// `Sender` retries), until acknowledged or the retry time is over.
    async fn resend(
        &self,
        mut retries: Vec<(Sent, i16)>,
        per_batch: bool,
        retry_for: Duration,
    ) -> Result<()> {
        retries.sort_by_key(|(sent, _)| (sent.partition, sent.sequence));
        for (sent, mut code) in retries {
            let deadline = Instant::now() + retry_for;
            // A batch refused only because an earlier one of its partition was missing
            // goes again at once, behind that one; anything else after the back-off.
            let mut wait = code != OUT_OF_ORDER_SEQUENCE_NUMBER;
            loop {
                if Instant::now() >= deadline {
                    return Err(Error::Kafka {
                        context: format!(
                            "produce to {}-{} (still failing after {retry_for:?} of retries)",
                            self.topic.name, sent.partition
                        ),
                        code,
                        message: None,
                    });
                }
                if wait {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                wait = true;
                self.produce_retries.fetch_add(1, Ordering::Relaxed);
                let response = sent
                    .connection
                    .dispatch_at(&*sent.request, sent.version)
                    .await?
                    .wait()
                    .await;
                match outcome(&self.topic.name, sent.clone(), response) {
                    Outcome::Acked(sent) => {
                        self.acked(&sent, per_batch);
                        break;
                    }
                    Outcome::Retry(_, again) => {
                        self.stats.requests.fetch_add(1, Ordering::Relaxed);
                        code = again;
                    }
                    Outcome::Failed(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// One Produce request on its way.
#[derive(Clone)]
struct Sent {
    partition: i32,
    sequence: i32,
    count: u64,
    request: Arc<ProduceRequest>,
    connection: Arc<Connection>,
    version: i16,
    started: Instant,
}

/// How a Produce request ended.
enum Outcome {
    /// Acknowledged (or a duplicate of a batch already written).
    Acked(Sent),
    /// A retriable error: send the same batch again.
    Retry(Sent, i16),
    /// Anything else.
    Failed(Error),
}

/// Classifies a produce response. Retriable: the codes Kafka's `Sender` retries for an
/// idempotent producer (NOT_ENOUGH_REPLICAS is also what a broker answers while the
/// coordinator is still finishing the previous transaction, KIP-890's verification), and
/// OUT_OF_ORDER_SEQUENCE_NUMBER, which a batch gets while an earlier one of its partition
/// waits for its retry. DUPLICATE_SEQUENCE_NUMBER means the batch is already in the log.
fn outcome(topic: &str, sent: Sent, response: Result<ProduceResponse>) -> Outcome {
    let response = match response {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(e),
    };
    let results = produce_results(&response);
    if results.is_empty() {
        return Outcome::Failed(Error::Protocol(format!(
            "a produce response without {topic}-{}",
            sent.partition
        )));
    }
    for (p, result) in results {
        match result {
            Ok(_) => {}
            Err((DUPLICATE_SEQUENCE_NUMBER, _)) => {}
            Err((
                code @ (REQUEST_TIMED_OUT
                | NOT_ENOUGH_REPLICAS
                | NOT_ENOUGH_REPLICAS_AFTER_APPEND
                | CONCURRENT_TRANSACTIONS
                | OUT_OF_ORDER_SEQUENCE_NUMBER),
                _,
            )) => return Outcome::Retry(sent, code),
            Err((code, message)) => {
                return Outcome::Failed(Error::Kafka {
                    context: format!("produce to {topic}-{p}"),
                    code,
                    message,
                });
            }
        }
    }
    Outcome::Acked(sent)
}

/// The final report (the last stdout line, as JSON).
#[derive(Serialize)]
struct Summary {
    /// "produce".
    mode: &'static str,
    topic: String,
    /// Records acknowledged (transactional: in committed transactions).
    records: u64,
    /// Records that failed.
    errors: u64,
    /// Produce requests completed.
    requests: u64,
    /// Value bytes acknowledged.
    bytes: u64,
    duration_s: f64,
    records_per_sec: f64,
    mb_per_sec: f64,
    /// Latency in ms: per batch (idempotent) or per transaction (transactional).
    latency_ms: Latency,
    /// "batch" or "transaction": what `latency_ms` measures.
    latency_of: &'static str,
    /// Always true here.
    idempotent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    transactional_id: Option<String>,
    /// Transactions committed.
    transactions: u64,
    transactions_per_sec: f64,
    /// Records per transaction asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_records: Option<u64>,
    /// The transaction version used (the broker's finalized one unless capped by
    /// --transaction-version).
    transaction_version: i16,
    producer_id: i64,
    producer_epoch: i16,
    /// Coordinator requests (FindCoordinator, InitProducerId, AddPartitionsToTxn, EndTxn)
    /// sent again after a retriable error, mostly CONCURRENT_TRANSACTIONS while the
    /// previous transaction's markers are written.
    coordinator_retries: u64,
    /// Produce requests sent again after a retriable error.
    produce_retries: u64,
    settings: Settings,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

/// Runs the idempotent or transactional producer load.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    let (settings, codec) = settings(args)?;
    let transactional = args.transactional_id.is_some();
    if settings.max_in_flight > MAX_IDEMPOTENT_IN_FLIGHT {
        return Err(Error::Usage(format!(
            "an idempotent producer keeps order with at most {MAX_IDEMPOTENT_IN_FLIGHT} requests in flight (max.in.flight.requests.per.connection)"
        )));
    }
    if settings.acks != -1 {
        return Err(Error::Usage(
            "an idempotent or transactional producer needs acks=all (-1)".into(),
        ));
    }
    if settings.throughput > 0.0 {
        return Err(Error::Usage(
            "--throughput is not supported with --idempotent or --transactional-id (they run unthrottled)".into(),
        ));
    }
    if args.connections != 1 {
        return Err(Error::Usage(
            "one producer: --connections must be 1 with --idempotent or --transactional-id".into(),
        ));
    }
    if transactional && args.transaction_records == 0 {
        return Err(Error::Usage(
            "--transaction-records must be at least 1".into(),
        ));
    }
    if args.transactional_id.as_deref() == Some("") {
        return Err(Error::Usage("--transactional-id must not be empty".into()));
    }
    let mut options = context.options.clone();
    options.max_in_flight = settings.max_in_flight;
    let cluster = Cluster::connect(&context.bootstrap, options).await?;
    let topic = Arc::new(cluster.topic_for_writing(&args.topic).await?);
    let partitions: Vec<i32> = topic.partitions.keys().copied().collect();
    if partitions.is_empty() {
        return Err(Error::Protocol(format!(
            "topic {:?} has no partitions",
            args.topic
        )));
    }
    let finalized = finalized_transaction_version(cluster.any());
    let transaction_version = args
        .transaction_version
        .map_or(finalized, |cap| cap.clamp(0, finalized));
    let tv2 = transactional && transaction_version >= 2;
    let mut routes = BTreeMap::new();
    for (leader, mine) in cluster
        .partitions_by_leader(&topic.name, &partitions)
        .await?
    {
        let connection = Arc::new(cluster.new_connection(leader).await?);
        // Produce v3+ carries a transactional id; before TV2 Kafka's producer stays at v11.
        let cap = if transactional && !tv2 {
            LAST_PRODUCE_BEFORE_TV2
        } else {
            i16::MAX
        };
        let version = capped_version(&connection, ApiKey::Produce, cap)?;
        if tv2 && version <= LAST_PRODUCE_BEFORE_TV2 {
            return Err(Error::Unsupported(format!(
                "the broker finalizes transaction.version {transaction_version} but serves Produce only up to v{version}"
            )));
        }
        for p in mine {
            routes.insert(p, (connection.clone(), version));
        }
    }
    let retry_for = context.options.request_timeout;
    let mut producer = Producer {
        cluster,
        transactional_id: args.transactional_id.clone(),
        transaction_timeout_ms: args.transaction_timeout_ms,
        coordinator: None,
        producer_id: -1,
        epoch: -1,
        transaction_version,
        sequences: HashMap::new(),
        retry_for,
        retries: 0,
    };
    producer.init().await?;
    let timeout_ms = retry_for.as_millis().min(i32::MAX as u128) as i32;
    let stats = Arc::new(Stats::new()?);
    let load = Load {
        topic: topic.clone(),
        settings: settings.clone(),
        codec,
        payloads: Arc::new(payloads(settings.record_size)),
        routes,
        partitions,
        timeout_ms,
        stats: stats.clone(),
        produce_retries: AtomicU64::new(0),
    };
    let budget = Budget {
        remaining: AtomicU64::new(args.num_records.unwrap_or(u64::MAX)),
        deadline: args
            .duration
            .map(|s| stats.start + Duration::from_secs_f64(s.max(0.0))),
    };
    let progress = spawn_progress(stats.clone(), "sent");
    let mut transactions = 0u64;
    let outcome = if transactional {
        run_transactions(
            &load,
            &mut producer,
            &budget,
            args.transaction_records,
            &mut transactions,
        )
        .await
    } else {
        run_idempotent(&load, &mut producer, &budget).await
    };
    let elapsed = stats.start.elapsed().as_secs_f64();
    stop_progress(progress)?;
    if let Err(e) = &outcome {
        stats.record_error(0, || e.to_string());
    }
    let records = stats.records.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let per_sec = |n: u64| {
        round2(if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        })
    };
    let summary = Summary {
        mode: "produce",
        topic: args.topic.clone(),
        records,
        errors: stats.errors.load(Ordering::Relaxed),
        requests: stats.requests.load(Ordering::Relaxed),
        bytes,
        duration_s: round2(elapsed),
        records_per_sec: per_sec(records),
        mb_per_sec: round2(mib_per_sec(bytes, elapsed)),
        latency_ms: stats.latency(),
        latency_of: if transactional {
            "transaction"
        } else {
            "batch"
        },
        idempotent: true,
        transactional_id: args.transactional_id.clone(),
        transactions,
        transactions_per_sec: per_sec(transactions),
        transaction_records: transactional.then_some(args.transaction_records),
        transaction_version,
        producer_id: producer.producer_id,
        producer_epoch: producer.epoch,
        coordinator_retries: producer.retries,
        produce_retries: load.produce_retries.load(Ordering::Relaxed),
        settings,
        first_error: stats
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    };
    if output::stdout_is_terminal() {
        let l = summary.latency_ms;
        output::line(&format!(
            "{} records sent in {} transactions, {:.1} records/sec ({:.2} MB/sec), {:.1} transactions/sec, \
             {} latency {:.2} ms avg, {:.2} ms 50th, {:.2} ms 99th, {:.2} ms max.",
            summary.records,
            summary.transactions,
            summary.records_per_sec,
            summary.mb_per_sec,
            summary.transactions_per_sec,
            summary.latency_of,
            l.avg,
            l.p50,
            l.p99,
            l.max
        ))?;
    }
    output::json(&summary)?;
    outcome
}

/// Idempotent produce: full batches, pipelined, until the budget is spent; after a
/// retriable error the window drains and the batches to retry go again in order.
async fn run_idempotent(load: &Load, producer: &mut Producer, budget: &Budget) -> Result<()> {
    let capacity = load.settings.records_per_batch as u64;
    let mut inflight = JoinSet::new();
    let mut retries = Vec::new();
    let mut issued = 0u64;
    let mut turn = 0usize;
    loop {
        let n = budget.claim(capacity);
        if n == 0 {
            break;
        }
        let partition = load.partitions[turn % load.partitions.len()];
        turn += 1;
        load.send(producer, partition, n, issued, &mut inflight)
            .await?;
        issued += n;
        while let Some(done) = inflight.try_join_next() {
            load.settle(done, true, &mut retries)?;
        }
        if !retries.is_empty() {
            while let Some(done) = inflight.join_next().await {
                load.settle(done, true, &mut retries)?;
            }
            load.resend(std::mem::take(&mut retries), true, producer.retry_for)
                .await?;
        }
    }
    while let Some(done) = inflight.join_next().await {
        load.settle(done, true, &mut retries)?;
    }
    load.resend(retries, true, producer.retry_for).await
}

/// Transactions of `per_txn` records until the budget is spent: AddPartitionsToTxn (before
/// TV2), the batches pipelined, EndTxn commit once all are acknowledged.
async fn run_transactions(
    load: &Load,
    producer: &mut Producer,
    budget: &Budget,
    per_txn: u64,
    transactions: &mut u64,
) -> Result<()> {
    let capacity = load.settings.records_per_batch as u64;
    let mut issued = 0u64;
    let mut turn = 0usize;
    loop {
        let records = budget.claim(per_txn);
        if records == 0 {
            return Ok(());
        }
        let started = Instant::now();
        // The batches of this transaction, partitions in turn.
        let mut plan = Vec::new();
        let mut left = records;
        while left > 0 {
            let n = left.min(capacity);
            plan.push((load.partitions[turn % load.partitions.len()], n));
            turn += 1;
            left -= n;
        }
        let number = *transactions + 1;
        match one_transaction(load, producer, &plan, issued).await {
            Ok(()) => {}
            Err(e) => {
                // Kafka's producer aborts after a failed send; a fenced producer cannot.
                if !is_fenced(&e) && producer.transactional_id.is_some() {
                    let _ = producer.end(false).await;
                }
                load.stats
                    .record_error(records, || format!("transaction {number}: {e}"));
                return Err(e);
            }
        }
        issued += records;
        *transactions += 1;
        load.stats.record_latency(started.elapsed(), 1);
        load.stats.records.fetch_add(records, Ordering::Relaxed);
        load.stats.bytes.fetch_add(
            records * load.settings.record_size as u64,
            Ordering::Relaxed,
        );
    }
}

/// One transaction of the batches in `plan`, committed.
async fn one_transaction(
    load: &Load,
    producer: &mut Producer,
    plan: &[(i32, u64)],
    first: u64,
) -> Result<()> {
    if !producer.tv2() {
        let partitions: BTreeSet<i32> = plan.iter().map(|(p, _)| *p).collect();
        producer
            .add_partitions(&load.topic.name, &partitions)
            .await?;
    }
    let mut inflight = JoinSet::new();
    let mut retries = Vec::new();
    let mut failure = None;
    let mut offset = first;
    for &(partition, count) in plan {
        if let Err(e) = load
            .send(producer, partition, count, offset, &mut inflight)
            .await
        {
            failure = Some(e);
            break;
        }
        offset += count;
        while let Some(done) = inflight.try_join_next() {
            if let Err(e) = load.settle(done, false, &mut retries) {
                failure.get_or_insert(e);
            }
        }
        if failure.is_some() {
            break;
        }
    }
    while let Some(done) = inflight.join_next().await {
        if let Err(e) = load.settle(done, false, &mut retries) {
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    load.resend(retries, false, producer.retry_for).await?;
    producer.end(true).await?;
    Ok(())
}
