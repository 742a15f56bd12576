//! The Raft log entry of the metadata quorum and its Kafka encoding: **one entry is one
//! Kafka record, and the entry's Raft index is the record's offset**; the term is the
//! partition leader epoch of the record's batch.
//!
//! | openraft entry | Kafka record |
//! | --- | --- |
//! | `Blank` (a new leader's first entry) | `LeaderChangeMessage` control record (type 2): the leader and the voters |
//! | `Membership` | KIP-853 `VotersRecord` control record (type 6): id, directory id, endpoint, `kraft.version` range of each voter |
//! | `Normal` | one framed metadata record (`gregor_protocol::metadata_frame`), null key |
//!
//! Other control records a Kafka log may hold (a `KRaftVersionRecord`, say) read back as
//! blank entries that keep their key and value, so that they are written back unchanged.
//!
//! Consecutive entries of one term and of one kind (data or control) are encoded into one
//! batch (at most [`MAX_RECORDS_PER_BATCH`] records), as Kafka's `BatchAccumulator` packs the
//! records of one epoch. The same encoding is used on disk and on the wire (AppendEntries
//! carries these batches), so a follower's records are byte for byte the leader's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::leader_change_message::{self, LeaderChangeMessage};
use gregor_protocol::messages::voters_record::{
    Endpoint, KRaftVersionFeature, Voter, VotersRecord,
};
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::records::{
    Batch, ControlRecordKey, ControlRecordType, NewRecord, RecordBatchBuilder, RecordBatches,
};
use gregor_protocol::{Decodable, Encodable, MetadataRecord};
use openraft::entry::{FromAppData, RaftEntry, RaftPayload};
use openraft::{CommittedLeaderId, LogId, Membership, RaftLogId};

use super::{NodeId, VoterNode};

/// The most records one batch gets (Kafka's KRaft batches are bounded by bytes; records of
/// the metadata log are small, so this keeps a batch far below its 8 MiB limit).
pub const MAX_RECORDS_PER_BATCH: usize = 1024;

/// The highest `kraft.version` this node supports (KIP-853's version 1: voters in the log).
pub const KRAFT_VERSION_MAX: i16 = 1;

/// Why entries cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// A term does not fit Kafka's int32 epoch, or an index an int64 offset.
    #[error("term {term} or index {index} does not fit a Kafka epoch or offset")]
    OutOfRange {
        /// The term.
        term: u64,
        /// The index.
        index: u64,
    },
    /// A joint membership of more than a single-voter change (openraft's two-phase change):
    /// KIP-853 has one voter set per `VotersRecord`.
    #[error("a joint membership cannot be written as a VotersRecord")]
    JointMembership,
    /// A record or message does not encode.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// A batch or record does not decode.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Entries are not contiguous.
    #[error("entry {index} does not follow entry {previous}")]
    Gap {
        /// The entry before.
        previous: u64,
        /// The entry.
        index: u64,
    },
}

/// What an entry holds (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub enum QuorumPayload {
    /// The first entry of a leader's term: a `LeaderChangeMessage`. `None` for the blank
    /// entry openraft creates; the log storage fills in the leader and voters when it
    /// writes it.
    LeaderChange(Option<LeaderChangeMessage>),
    /// A metadata record.
    Record(VersionedRecord),
    /// The voters: a `VotersRecord` and the membership it stands for.
    Voters(Box<(Membership<NodeId, VoterNode>, VotersRecord)>),
    /// Another control record, kept as read.
    OtherControl {
        /// The control record key.
        key: Bytes,
        /// The value.
        value: Option<Bytes>,
    },
}

/// One entry of the metadata log (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct QuorumEntry {
    /// Term and index: the batch's epoch and the record's offset.
    pub log_id: LogId<NodeId>,
    /// The record's timestamp; -1 until the leader writes it (then the time of the write).
    pub timestamp: i64,
    /// What it holds.
    pub payload: QuorumPayload,
}

impl fmt::Display for QuorumEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.payload {
            QuorumPayload::LeaderChange(_) => "LeaderChange".to_string(),
            QuorumPayload::Record(r) => format!("{:?}", r.record.record_type()),
            QuorumPayload::Voters(_) => "Voters".to_string(),
            QuorumPayload::OtherControl { .. } => "Control".to_string(),
        };
        write!(f, "{}:{kind}", self.log_id)
    }
}

impl RaftLogId<NodeId> for QuorumEntry {
    fn get_log_id(&self) -> &LogId<NodeId> {
        &self.log_id
    }

    fn set_log_id(&mut self, log_id: &LogId<NodeId>) {
        self.log_id = *log_id;
    }
}

impl RaftPayload<NodeId, VoterNode> for QuorumEntry {
    fn is_blank(&self) -> bool {
        matches!(
            self.payload,
            QuorumPayload::LeaderChange(_) | QuorumPayload::OtherControl { .. }
        )
    }

    fn get_membership(&self) -> Option<&Membership<NodeId, VoterNode>> {
        match &self.payload {
            QuorumPayload::Voters(voters) => Some(&voters.0),
            _ => None,
        }
    }
}

impl RaftEntry<NodeId, VoterNode> for QuorumEntry {
    fn new_blank(log_id: LogId<NodeId>) -> Self {
        QuorumEntry {
            log_id,
            timestamp: -1,
            payload: QuorumPayload::LeaderChange(None),
        }
    }

    fn new_membership(log_id: LogId<NodeId>, m: Membership<NodeId, VoterNode>) -> Self {
        // A joint membership of more than one voter's change cannot be written: the log
        // storage refuses it then.
        let record = voters_record(&m).unwrap_or_default();
        QuorumEntry {
            log_id,
            timestamp: -1,
            payload: QuorumPayload::Voters(Box::new((m, record))),
        }
    }
}

impl FromAppData<VersionedRecord> for QuorumEntry {
    fn from_app_data(record: VersionedRecord) -> Self {
        QuorumEntry {
            log_id: LogId::default(),
            timestamp: -1,
            payload: QuorumPayload::Record(record),
        }
    }
}

/// The log id of the record at `offset` of a batch of `epoch`.
pub fn log_id(epoch: i32, offset: i64) -> LogId<NodeId> {
    LogId::new(
        CommittedLeaderId::new(epoch.max(0) as u64, NodeId::default()),
        offset.max(0) as u64,
    )
}

/// The Kafka epoch of a term.
pub fn epoch_of(term: u64) -> Result<i32, EntryError> {
    i32::try_from(term).map_err(|_| EntryError::OutOfRange { term, index: 0 })
}

/// The one voter set a membership is written as: a uniform membership's voters; for the
/// joint step of a single-voter change (openraft always passes through one), the larger of
/// its two sets. Why that is exact: KIP-853 changes one voter at a time, and with sets `C`
/// and `C + {v}` every majority of the larger set holds a majority of the smaller one, so
/// "a majority of both" (the joint rule) and "a majority of the larger" decide the same
/// elections and commits. Other joint memberships have no `VotersRecord`.
pub fn written_voters(m: &Membership<NodeId, VoterNode>) -> Result<&BTreeSet<NodeId>, EntryError> {
    match m.get_joint_config().as_slice() {
        [only] => Ok(only),
        [a, b] if a.is_subset(b) && b.len() == a.len() + 1 => Ok(b),
        [a, b] if b.is_subset(a) && a.len() == b.len() + 1 => Ok(a),
        _ => Err(EntryError::JointMembership),
    }
}

/// The `VotersRecord` of a membership ([`written_voters`]): its voters with their directory
/// id and endpoint, each supporting `kraft.version` 0 to [`KRAFT_VERSION_MAX`]. Learners
/// (openraft's non-voting members) are not written: Kafka's observers are not in the log.
pub fn voters_record(m: &Membership<NodeId, VoterNode>) -> Result<VotersRecord, EntryError> {
    let mut voters = Vec::new();
    for id in written_voters(m)? {
        let node = m.get_node(id).cloned().unwrap_or_default();
        let voter_id = i32::try_from(*id).map_err(|_| EntryError::OutOfRange {
            term: 0,
            index: *id,
        })?;
        voters.push(voter_entry(voter_id, &node));
    }
    Ok(VotersRecord {
        version: 0,
        voters,
        ..Default::default()
    })
}

/// The `VotersRecord` entry of voter `id` at `node` (one endpoint), supporting
/// `kraft.version` 0 to [`KRAFT_VERSION_MAX`].
pub fn voter_entry(id: i32, node: &VoterNode) -> Voter {
    Voter {
        voter_id: id,
        voter_directory_id: node.directory_id,
        endpoints: vec![Endpoint {
            name: node.listener.as_str().into(),
            host: node.host.as_str().into(),
            port: node.port,
            ..Default::default()
        }],
        kraft_version_feature: KRaftVersionFeature {
            min_supported_version: 0,
            max_supported_version: KRAFT_VERSION_MAX,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The membership a `VotersRecord` stands for (one voter set; the first endpoint of each).
pub fn membership_of(record: &VotersRecord) -> Membership<NodeId, VoterNode> {
    let mut ids = BTreeSet::new();
    let mut nodes = BTreeMap::new();
    for voter in &record.voters {
        let id = voter.voter_id.max(0) as NodeId;
        ids.insert(id);
        let node = voter
            .endpoints
            .first()
            .map_or_else(VoterNode::default, |e| VoterNode {
                directory_id: voter.voter_directory_id,
                listener: e.name.to_string(),
                host: e.host.to_string(),
                port: e.port,
            });
        nodes.insert(id, node);
    }
    Membership::new(vec![ids], nodes)
}

/// A `LeaderChangeMessage` naming `leader` and `voters` (Kafka's
/// `LeaderChangeMessage` of `KafkaRaftClient.onBecomeLeader`; granting voters are not
/// tracked by openraft, so only the leader is listed among them).
pub fn leader_change(leader: i32, voters: &[i32]) -> LeaderChangeMessage {
    let voter = |voter_id| leader_change_message::Voter {
        voter_id,
        ..Default::default()
    };
    LeaderChangeMessage {
        version: 0,
        leader_id: leader,
        voters: voters.iter().copied().map(voter).collect(),
        granting_voters: if leader >= 0 {
            vec![voter(leader)]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

/// One encoded batch.
#[derive(Clone, Debug)]
pub struct EncodedBatch {
    /// The batch's bytes (a v2 record batch).
    pub bytes: Bytes,
    /// Offset of its first record.
    pub base_offset: i64,
    /// Number of records.
    pub count: i64,
    /// Its partition leader epoch.
    pub epoch: i32,
    /// Largest record timestamp.
    pub max_timestamp: i64,
}

fn is_control(payload: &QuorumPayload) -> bool {
    !matches!(payload, QuorumPayload::Record(_))
}

/// The key and value of an entry's record. `leader_change` fills in an unfilled
/// `LeaderChange`.
fn key_value(
    entry: &QuorumEntry,
    fill: &dyn Fn(&QuorumEntry) -> LeaderChangeMessage,
) -> Result<(Option<Bytes>, Option<Bytes>), EntryError> {
    let control = |t| Some(ControlRecordKey::new(t).encode());
    Ok(match &entry.payload {
        QuorumPayload::Record(versioned) => {
            let mut buf = BytesMut::with_capacity(versioned.record.framed_len(versioned.version));
            versioned
                .record
                .encode_framed(&mut buf, versioned.version)
                .map_err(|e| EntryError::Encode(e.to_string()))?;
            (None, Some(buf.freeze()))
        }
        QuorumPayload::LeaderChange(message) => {
            let message = message.clone().unwrap_or_else(|| fill(entry));
            let value = message
                .to_bytes(0)
                .map_err(|e| EntryError::Encode(e.to_string()))?;
            (control(ControlRecordType::LeaderChange), Some(value))
        }
        QuorumPayload::Voters(voters) => {
            written_voters(&voters.0)?;
            let value = voters
                .1
                .to_bytes(0)
                .map_err(|e| EntryError::Encode(e.to_string()))?;
            (control(ControlRecordType::KRaftVoters), Some(value))
        }
        QuorumPayload::OtherControl { key, value } => (Some(key.clone()), value.clone()),
    })
}

/// Encodes contiguous `entries` into batches (see the module docs). Entries without a
/// timestamp get `now`.
pub fn encode_entries(
    entries: &[QuorumEntry],
    now: i64,
    fill: &dyn Fn(&QuorumEntry) -> LeaderChangeMessage,
) -> Result<Vec<EncodedBatch>, EntryError> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < entries.len() {
        let first = &entries[start];
        let control = is_control(&first.payload);
        let term = first.log_id.leader_id.term;
        let mut end = start + 1;
        while end < entries.len()
            && end - start < MAX_RECORDS_PER_BATCH
            && entries[end].log_id.leader_id.term == term
            && is_control(&entries[end].payload) == control
        {
            if entries[end].log_id.index != entries[end - 1].log_id.index + 1 {
                return Err(EntryError::Gap {
                    previous: entries[end - 1].log_id.index,
                    index: entries[end].log_id.index,
                });
            }
            end += 1;
        }
        let epoch = epoch_of(term)?;
        let base_offset =
            i64::try_from(first.log_id.index).map_err(|_| EntryError::OutOfRange {
                term,
                index: first.log_id.index,
            })?;
        let mut records = Vec::with_capacity(end - start);
        for entry in &entries[start..end] {
            let (key, value) = key_value(entry, fill)?;
            let timestamp = if entry.timestamp >= 0 {
                entry.timestamp
            } else {
                now
            };
            records.push(NewRecord::new(timestamp, key, value));
        }
        let bytes = RecordBatchBuilder::new()
            .control(control)
            .base_offset(base_offset)
            .partition_leader_epoch(epoch)
            .build(&records)
            .map_err(|e| EntryError::Encode(e.to_string()))?;
        out.push(EncodedBatch {
            bytes,
            base_offset,
            count: records.len() as i64,
            epoch,
            max_timestamp: records.iter().map(|r| r.timestamp).max().unwrap_or(-1),
        });
        start = end;
    }
    Ok(out)
}

/// Decodes the entries of the batches in `data` (one or more v2 batches, CRCs checked).
pub fn decode_entries(data: Bytes) -> Result<Vec<QuorumEntry>, EntryError> {
    let len = data.len();
    let mut batches = RecordBatches::new(data);
    let mut out = Vec::new();
    loop {
        let position = batches.position();
        let batch = match batches.next() {
            None => break,
            Some(Ok(Batch::V2(batch))) => batch,
            Some(Ok(Batch::Legacy(_))) => {
                return Err(EntryError::Decode(format!(
                    "a legacy message at byte {position}"
                )));
            }
            Some(Err(e)) => return Err(EntryError::Decode(format!("byte {position}: {e}"))),
        };
        batch
            .validate()
            .map_err(|e| EntryError::Decode(format!("byte {position}: {e}")))?;
        let epoch = batch.header().partition_leader_epoch;
        for record in batch.records() {
            let record = record.map_err(|e| EntryError::Decode(e.to_string()))?;
            let payload = if batch.is_control() {
                let key = record
                    .control_key()
                    .map_err(|e| EntryError::Decode(e.to_string()))?;
                let mut value = record.value.clone().unwrap_or_default();
                let bad = |e: gregor_protocol::DecodeError| {
                    EntryError::Decode(format!("control record at offset {}: {e}", record.offset))
                };
                match key.record_type {
                    ControlRecordType::LeaderChange => QuorumPayload::LeaderChange(Some(
                        LeaderChangeMessage::decode(&mut value, 0).map_err(bad)?,
                    )),
                    ControlRecordType::KRaftVoters => {
                        let voters = VotersRecord::decode(&mut value, 0).map_err(bad)?;
                        QuorumPayload::Voters(Box::new((membership_of(&voters), voters)))
                    }
                    _ => QuorumPayload::OtherControl {
                        key: record.key.clone().unwrap_or_default(),
                        value: record.value.clone(),
                    },
                }
            } else {
                let mut value = record.value.clone().ok_or_else(|| {
                    EntryError::Decode(format!(
                        "a null metadata record at offset {}",
                        record.offset
                    ))
                })?;
                QuorumPayload::Record(MetadataRecord::decode_framed(&mut value).map_err(|e| {
                    EntryError::Decode(format!("metadata record at offset {}: {e}", record.offset))
                })?)
            };
            out.push(QuorumEntry {
                log_id: log_id(epoch, record.offset),
                timestamp: record.timestamp,
                payload,
            });
        }
    }
    if batches.position() != len {
        return Err(EntryError::Decode(format!(
            "a partial batch at byte {}",
            batches.position()
        )));
    }
    Ok(out)
}
