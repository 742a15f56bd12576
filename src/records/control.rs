//! Control records: the key every control record carries, and the transaction marker value.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::RecordsError;

/// What a control record marks (the `type` field of its key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// Transaction aborted (0).
    Abort,
    /// Transaction committed (1).
    Commit,
    /// KRaft leader change (2).
    LeaderChange,
    /// KRaft snapshot header (3).
    SnapshotHeader,
    /// KRaft snapshot footer (4).
    SnapshotFooter,
    /// KRaft version record (5).
    KRaftVersion,
    /// KRaft voters record (6).
    KRaftVoters,
    /// A type this module does not know.
    Unknown(i16),
}

impl ControlRecordType {
    /// The type for a wire value.
    pub fn from_i16(value: i16) -> ControlRecordType {
        match value {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            2 => ControlRecordType::LeaderChange,
            3 => ControlRecordType::SnapshotHeader,
            4 => ControlRecordType::SnapshotFooter,
            5 => ControlRecordType::KRaftVersion,
            6 => ControlRecordType::KRaftVoters,
            other => ControlRecordType::Unknown(other),
        }
    }

    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::LeaderChange => 2,
            ControlRecordType::SnapshotHeader => 3,
            ControlRecordType::SnapshotFooter => 4,
            ControlRecordType::KRaftVersion => 5,
            ControlRecordType::KRaftVoters => 6,
            ControlRecordType::Unknown(other) => other,
        }
    }
}

/// The key of a control record: version (i16, currently 0) and type (i16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlRecordKey {
    /// Key schema version; newer versions may append fields, which are ignored.
    pub version: i16,
    /// The control record type.
    pub record_type: ControlRecordType,
}

impl ControlRecordKey {
    /// Size of a version 0 key.
    pub const SIZE: usize = 4;

    /// A version 0 key of the given type.
    pub fn new(record_type: ControlRecordType) -> ControlRecordKey {
        ControlRecordKey {
            version: 0,
            record_type,
        }
    }

    /// Parses a key (at least 4 bytes; a negative version is an error, as in Kafka).
    pub fn parse(key: &[u8]) -> Result<ControlRecordKey, RecordsError> {
        let &[v0, v1, t0, t1, ..] = key else {
            return Err(RecordsError::InvalidControlRecord {
                reason: "control record key shorter than 4 bytes",
            });
        };
        let version = i16::from_be_bytes([v0, v1]);
        if version < 0 {
            return Err(RecordsError::InvalidControlRecord {
                reason: "negative control record key version",
            });
        }
        Ok(ControlRecordKey {
            version,
            record_type: ControlRecordType::from_i16(i16::from_be_bytes([t0, t1])),
        })
    }

    /// Encodes the key (4 bytes).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(Self::SIZE);
        out.put_i16(self.version);
        out.put_i16(self.record_type.as_i16());
        out.freeze()
    }
}

/// The value of a commit or abort control record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// Value schema version (0).
    pub version: i16,
    /// Epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// Size of a version 0 value.
    pub const SIZE: usize = 6;

    /// Parses a marker value (at least 6 bytes; bytes of newer versions are ignored).
    pub fn parse(value: &[u8]) -> Result<EndTxnMarker, RecordsError> {
        let &[v0, v1, e0, e1, e2, e3, ..] = value else {
            return Err(RecordsError::InvalidControlRecord {
                reason: "end transaction marker shorter than 6 bytes",
            });
        };
        let version = i16::from_be_bytes([v0, v1]);
        if version < 0 {
            return Err(RecordsError::InvalidControlRecord {
                reason: "negative end transaction marker version",
            });
        }
        Ok(EndTxnMarker {
            version,
            coordinator_epoch: i32::from_be_bytes([e0, e1, e2, e3]),
        })
    }

    /// Encodes the value (6 bytes).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(Self::SIZE);
        out.put_i16(self.version);
        out.put_i32(self.coordinator_epoch);
        out.freeze()
    }
}
