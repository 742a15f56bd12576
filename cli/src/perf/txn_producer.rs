//! The producer side of `perf produce --idempotent|--transactional-id` (see `perf::txn`):
//! the producer id and epoch, the transaction coordinator and the requests to it
//! (FindCoordinator key type 1, InitProducerId, AddPartitionsToTxn, EndTxn) with Kafka's
//! retries of their retriable errors, and the sequence number of every partition.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_protocol::ApiKey;
use gregor_protocol::error_code::{
    CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
    INVALID_PRODUCER_EPOCH, NOT_COORDINATOR, PRODUCER_FENCED,
};
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;

use crate::client::{Cluster, Connection, Error, Result};

/// FindCoordinator's key type of a transaction coordinator.
const TRANSACTION_KEY_TYPE: i8 = 1;
/// The finalized feature of KIP-890's transaction versions.
const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The last EndTxn version before transactions v2 (v5 bumps the epoch at every end).
const LAST_END_TXN_BEFORE_TV2: i16 = 4;
/// The last AddPartitionsToTxn version a client sends (Kafka's
/// `AddPartitionsToTxnRequest.LAST_CLIENT_VERSION`; v4+ are broker-to-broker batches).
const LAST_CLIENT_ADD_PARTITIONS: i16 = 3;

/// Wait between retries (Kafka's retry.backoff.ms default).
pub(super) const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Kafka's `TransactionManager.ADD_PARTITIONS_RETRY_BACKOFF_MS`.
const ADD_PARTITIONS_RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// The highest common version of `api`, at most `cap`; an error when the broker's range
/// starts above the cap.
pub(super) fn capped_version(connection: &Connection, api: ApiKey, cap: i16) -> Result<i16> {
    let version = connection.version(api)?.min(cap);
    match connection.versions().broker_range(api) {
        Some(range) if range.min > version => Err(Error::Unsupported(format!(
            "the broker at {} serves {} v{}-v{}, a producer sends at most v{cap}",
            connection.addr(),
            api.name(),
            range.min,
            range.max
        ))),
        _ => Ok(version),
    }
}

/// The `transaction.version` the broker finalizes (0 when it does not).
pub(super) fn finalized_transaction_version(connection: &Connection) -> i16 {
    connection
        .versions()
        .response
        .finalized_features
        .iter()
        .find(|f| &*f.name == TRANSACTION_VERSION_FEATURE)
        .map_or(0, |f| f.max_version_level)
}

/// What to do after a coordinator error.
enum Retry {
    /// Back off and send again to the same coordinator.
    Same,
    /// Look the coordinator up again first.
    Refind,
}

fn retry_kind(code: i16) -> Option<Retry> {
    match code {
        COORDINATOR_LOAD_IN_PROGRESS | CONCURRENT_TRANSACTIONS => Some(Retry::Same),
        NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE => Some(Retry::Refind),
        _ => None,
    }
}

/// Whether the error means another producer took over the transactional id.
pub(super) fn is_fenced(error: &Error) -> bool {
    matches!(error, Error::Kafka { code, .. } if *code == PRODUCER_FENCED || *code == INVALID_PRODUCER_EPOCH)
}

/// The producer: its id and epoch, the coordinator, the sequence of every partition.
pub(super) struct Producer {
    pub(super) cluster: Cluster,
    pub(super) transactional_id: Option<String>,
    pub(super) transaction_timeout_ms: i32,
    pub(super) coordinator: Option<Arc<Connection>>,
    pub(super) producer_id: i64,
    pub(super) epoch: i16,
    /// The finalized transaction.version (KIP-890); 2 or more: transactions v2.
    pub(super) transaction_version: i16,
    /// Next sequence number per partition.
    pub(super) sequences: HashMap<i32, i32>,
    pub(super) retry_for: Duration,
    /// Coordinator requests sent again after a retriable error.
    pub(super) retries: u64,
}

impl Producer {
    pub(super) fn tv2(&self) -> bool {
        self.transactional_id.is_some() && self.transaction_version >= 2
    }

    fn txn_context(&self, what: &str) -> String {
        match &self.transactional_id {
            Some(id) => format!("{what} (transactional.id {id:?})"),
            None => what.to_string(),
        }
    }

    /// Waits before a retry, or the error once `deadline` has passed. Kafka's
    /// `TransactionManager` waits retry.backoff.ms (100 ms), but only 20 ms before
    /// retrying an AddPartitionsToTxn refused with CONCURRENT_TRANSACTIONS (the previous
    /// transaction's markers are usually written by then).
    async fn backoff(&mut self, deadline: Instant, code: i16, what: &str) -> Result<()> {
        if Instant::now() >= deadline {
            return Err(Error::Kafka {
                context: format!(
                    "{} (still failing after {:?})",
                    self.txn_context(what),
                    self.retry_for
                ),
                code,
                message: None,
            });
        }
        let wait = if code == CONCURRENT_TRANSACTIONS && what == "AddPartitionsToTxn" {
            ADD_PARTITIONS_RETRY_BACKOFF
        } else {
            RETRY_BACKOFF
        };
        tokio::time::sleep(wait).await;
        self.retries += 1;
        Ok(())
    }

    /// FindCoordinator for the transactional id (key type 1), retried while the
    /// coordinator is not available yet (`__transaction_state` being created).
    async fn find_coordinator(&mut self) -> Result<Arc<Connection>> {
        let id = self.transactional_id.clone().unwrap_or_default();
        let connection = self.cluster.any().clone();
        let version = connection.version(ApiKey::FindCoordinator)?;
        if version < 1 {
            return Err(Error::Unsupported(format!(
                "the broker at {} has no FindCoordinator v1+ (transaction coordinators)",
                connection.addr()
            )));
        }
        let request = if version >= 4 {
            FindCoordinatorRequest {
                key_type: TRANSACTION_KEY_TYPE,
                coordinator_keys: vec![id.as_str().into()],
                ..Default::default()
            }
        } else {
            FindCoordinatorRequest {
                key_type: TRANSACTION_KEY_TYPE,
                key: id.as_str().into(),
                ..Default::default()
            }
        };
        let deadline = Instant::now() + self.retry_for;
        loop {
            let response = connection
                .dispatch_at(&request, version)
                .await?
                .wait()
                .await?;
            let (code, message, node) = match response.coordinators.first() {
                Some(c) if version >= 4 => (c.error_code, c.error_message.clone(), c.node_id),
                _ => (
                    response.error_code,
                    response.error_message.clone(),
                    response.node_id,
                ),
            };
            if code != 0 && retry_kind(code).is_some() {
                self.backoff(deadline, code, "find the transaction coordinator")
                    .await?;
                continue;
            }
            Error::check(code, message.as_deref(), || {
                self.txn_context("find the transaction coordinator")
            })?;
            let coordinator = self.cluster.broker(node).await?;
            self.coordinator = Some(coordinator.clone());
            return Ok(coordinator);
        }
    }

    /// The coordinator connection (looked up when not known).
    async fn coordinator(&mut self) -> Result<Arc<Connection>> {
        match &self.coordinator {
            Some(c) => Ok(c.clone()),
            None => self.find_coordinator().await,
        }
    }

    /// InitProducerId: a new producer id and epoch (for a transactional id, fencing any
    /// earlier producer with it and ending its open transaction).
    pub(super) async fn init(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.retry_for;
        loop {
            let connection = match self.transactional_id {
                Some(_) => self.coordinator().await?,
                None => self.cluster.any().clone(),
            };
            let version = connection.version(ApiKey::InitProducerId)?;
            let request = InitProducerIdRequest {
                transactional_id: self.transactional_id.as_deref().map(Into::into),
                transaction_timeout_ms: self.transaction_timeout_ms,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            };
            let response = connection
                .dispatch_at(&request, version)
                .await?
                .wait()
                .await?;
            match retry_kind(response.error_code) {
                Some(kind) => {
                    if matches!(kind, Retry::Refind) {
                        self.coordinator = None;
                    }
                    self.backoff(deadline, response.error_code, "InitProducerId")
                        .await?;
                }
                None => {
                    Error::check(response.error_code, None, || {
                        self.txn_context("InitProducerId")
                    })?;
                    self.producer_id = response.producer_id;
                    self.epoch = response.producer_epoch;
                    self.sequences.clear();
                    return Ok(());
                }
            }
        }
    }

    /// AddPartitionsToTxn (client versions) for `partitions` of `topic`.
    pub(super) async fn add_partitions(
        &mut self,
        topic: &str,
        partitions: &BTreeSet<i32>,
    ) -> Result<()> {
        let deadline = Instant::now() + self.retry_for;
        let id = self.transactional_id.clone().unwrap_or_default();
        loop {
            let connection = self.coordinator().await?;
            let version = capped_version(
                &connection,
                ApiKey::AddPartitionsToTxn,
                LAST_CLIENT_ADD_PARTITIONS,
            )?;
            let request = AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: id.as_str().into(),
                v3_and_below_producer_id: self.producer_id,
                v3_and_below_producer_epoch: self.epoch,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                    name: topic.into(),
                    partitions: partitions.iter().copied().collect(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let response = connection
                .dispatch_at(&request, version)
                .await?
                .wait()
                .await?;
            // OPERATION_NOT_ATTEMPTED (55) marks the partitions skipped because another
            // failed: the other partition's code is the one to report.
            let codes: Vec<(i32, i16)> = response
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| t.results_by_partition.iter())
                .map(|p| (p.partition_index, p.partition_error_code))
                .filter(|(_, code)| *code != 0)
                .collect();
            let Some(&(partition, code)) = codes
                .iter()
                .find(|(_, c)| *c != gregor_protocol::error_code::OPERATION_NOT_ATTEMPTED)
                .or(codes.first())
            else {
                return Ok(());
            };
            match retry_kind(code) {
                Some(kind) => {
                    if matches!(kind, Retry::Refind) {
                        self.coordinator = None;
                    }
                    self.backoff(deadline, code, "AddPartitionsToTxn").await?;
                }
                None => {
                    return Err(Error::Kafka {
                        context: self
                            .txn_context(&format!("AddPartitionsToTxn {topic}-{partition}")),
                        code,
                        message: None,
                    });
                }
            }
        }
    }

    /// EndTxn: commit (or abort); under transactions v2 takes the bumped epoch (and a new
    /// producer id when the epoch ran out) and restarts the sequences.
    pub(super) async fn end(&mut self, commit: bool) -> Result<()> {
        let deadline = Instant::now() + self.retry_for;
        let id = self.transactional_id.clone().unwrap_or_default();
        let what = if commit {
            "EndTxn commit"
        } else {
            "EndTxn abort"
        };
        loop {
            let connection = self.coordinator().await?;
            let cap = if self.tv2() {
                i16::MAX
            } else {
                LAST_END_TXN_BEFORE_TV2
            };
            let version = capped_version(&connection, ApiKey::EndTxn, cap)?;
            let request = EndTxnRequest {
                transactional_id: id.as_str().into(),
                producer_id: self.producer_id,
                producer_epoch: self.epoch,
                committed: commit,
                ..Default::default()
            };
            let response = connection
                .dispatch_at(&request, version)
                .await?
                .wait()
                .await?;
            match retry_kind(response.error_code) {
                Some(kind) => {
                    if matches!(kind, Retry::Refind) {
                        self.coordinator = None;
                    }
                    self.backoff(deadline, response.error_code, what).await?;
                }
                None => {
                    Error::check(response.error_code, None, || self.txn_context(what))?;
                    if version >= 5 && response.producer_epoch >= 0 {
                        // Kafka's TransactionManager under TV2: the epoch moves on at
                        // every end, and a new epoch starts every sequence at 0.
                        if response.producer_id >= 0 {
                            self.producer_id = response.producer_id;
                        }
                        self.epoch = response.producer_epoch;
                        self.sequences.clear();
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Takes the sequence numbers of `count` records in `partition` (Kafka wraps them at
    /// i32::MAX back to 0, `DefaultRecordBatch.incrementSequence`).
    pub(super) fn take_sequence(&mut self, partition: i32, count: u64) -> i32 {
        let next = self.sequences.entry(partition).or_insert(0);
        let first = *next;
        *next = sequence_after(first, count);
        first
    }
}

/// The sequence number `count` records after `first`, wrapping from i32::MAX to 0.
fn sequence_after(first: i32, count: u64) -> i32 {
    ((i64::from(first) + (count % (1 << 31)) as i64) % (i64::from(i32::MAX) + 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_at_i32_max_to_zero() {
        assert_eq!(sequence_after(0, 148), 148);
        assert_eq!(sequence_after(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(sequence_after(i32::MAX, 1), 0);
        assert_eq!(sequence_after(i32::MAX - 9, 20), 10);
    }

    #[test]
    fn coordinator_errors_retry_or_look_up_again() {
        assert!(matches!(
            retry_kind(CONCURRENT_TRANSACTIONS),
            Some(Retry::Same)
        ));
        assert!(matches!(
            retry_kind(COORDINATOR_LOAD_IN_PROGRESS),
            Some(Retry::Same)
        ));
        assert!(matches!(retry_kind(NOT_COORDINATOR), Some(Retry::Refind)));
        assert!(matches!(
            retry_kind(COORDINATOR_NOT_AVAILABLE),
            Some(Retry::Refind)
        ));
        assert!(retry_kind(PRODUCER_FENCED).is_none());
        assert!(retry_kind(INVALID_PRODUCER_EPOCH).is_none());
        let fenced = Error::Kafka {
            context: "EndTxn".into(),
            code: PRODUCER_FENCED,
            message: None,
        };
        assert!(is_fenced(&fenced));
        assert!(fenced.to_string().contains("PRODUCER_FENCED (90)"));
    }
}
