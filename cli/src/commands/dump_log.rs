//! `gregorctl dump-log PATH...`: decodes Kafka's on-disk files, like kafka-dump-log.sh.
//!
//! * `<offset>.log` segments: every batch (base and last offset, count, position, size,
//!   magic, codec, CRC check, timestamps, producer fields); with `--print-data-log` every
//!   record's key, value and headers. Legacy (magic 0/1) message sets too.
//! * `<offset>.index` (relative offset, position) and `<offset>.timeindex` (timestamp,
//!   relative offset) entries, up to the zero-filled preallocated tail.
//! * `__cluster_metadata` logs and `<offset>-<epoch>.checkpoint` snapshots: every record as
//!   one JSON line, `{"offset", "type", "version", "record"}` (control records with
//!   `"control"` instead of `"type"`). Detected from the directory name;
//!   `--cluster-metadata` forces it (Kafka's `--cluster-metadata-decoder`).
//! * `__consumer_offsets` logs: keys and values as group coordinator records, one JSON line
//!   per record (`--offsets-decoder` forces it).
//!
//! A directory stands for the files in it. Files are read batch by batch, never whole.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::kraft_version_record::KRaftVersionRecord;
use gregor_protocol::messages::leader_change_message::LeaderChangeMessage;
use gregor_protocol::messages::snapshot_footer_record::SnapshotFooterRecord;
use gregor_protocol::messages::snapshot_header_record::SnapshotHeaderRecord;
use gregor_protocol::messages::voters_record::VotersRecord;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};
use gregor_protocol::records::{
    Batch, ControlRecordKey, ControlRecordType, EndTxnMarker, LOG_OVERHEAD, RecordBatch,
    RecordBatches, TimestampType,
};
use gregor_protocol::{Decodable, Message, MetadataRecord};
use serde::Serialize;
use serde_json::{Value, json};

use super::Context;
use crate::client::{Error, Result};
use crate::output::{self, text_or_hex};

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or directories to decode (`--files` as in kafka-dump-log.sh also works).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Accepted for kafka-dump-log.sh compatibility: the same as listing the paths.
    #[arg(long = "files", value_delimiter = ',', hide = true)]
    pub files: Vec<PathBuf>,
    /// Print record keys, values and headers.
    #[arg(long)]
    pub print_data_log: bool,
    /// Decode records as KRaft metadata records (automatic in `__cluster_metadata-*`).
    #[arg(long, alias = "cluster-metadata-decoder")]
    pub cluster_metadata: bool,
    /// Decode records as `__consumer_offsets` records (automatic in `__consumer_offsets-*`).
    #[arg(long)]
    pub offsets_decoder: bool,
}

/// How records are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decoder {
    Plain,
    ClusterMetadata,
    Offsets,
}

/// What kind of file a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Segment,
    Index,
    TimeIndex,
    Snapshot,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".log") {
        Some(Kind::Segment)
    } else if name.ends_with(".index") {
        Some(Kind::Index)
    } else if name.ends_with(".timeindex") {
        Some(Kind::TimeIndex)
    } else if name.ends_with(".checkpoint") {
        Some(Kind::Snapshot)
    } else {
        None
    }
}

/// The base offset in a file name (`00000000000000000042.log` -> 42).
fn base_offset_of(path: &Path) -> i64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split(['.', '-']).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

fn decoder_for(path: &Path, args: &Args) -> Decoder {
    if args.cluster_metadata {
        return Decoder::ClusterMetadata;
    }
    if args.offsets_decoder {
        return Decoder::Offsets;
    }
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if parent.starts_with("__cluster_metadata") {
        Decoder::ClusterMetadata
    } else if parent.starts_with("__consumer_offsets") {
        Decoder::Offsets
    } else {
        Decoder::Plain
    }
}

/// The files to decode: each file as given; for a directory, its known files in name order,
/// then those of its subdirectories (a whole data directory works).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if meta.is_dir() {
            let before = out.len();
            collect_dir(path, 0, &mut out)?;
            if out.len() == before {
                return Err(Error::Usage(format!(
                    "{} holds no .log, .index, .timeindex or .checkpoint files",
                    path.display()
                )));
            }
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    out.extend(
        entries
            .iter()
            .filter(|p| p.is_file() && kind_of(p).is_some())
            .cloned(),
    );
    if depth < 2 {
        for sub in entries.iter().filter(|p| p.is_dir()) {
            collect_dir(sub, depth + 1, out)?;
        }
    }
    Ok(())
}

/// Decodes every file.
pub fn run(context: &Context, args: &Args) -> Result<()> {
    let mut paths = args.paths.clone();
    paths.extend(args.files.iter().cloned());
    let files = expand(&paths)?;
    let several = files.len() > 1;
    for path in files {
        let Some(kind) = kind_of(&path) else {
            return Err(Error::Usage(format!(
                "{}: not a .log, .index, .timeindex or .checkpoint file",
                path.display()
            )));
        };
        let decoder = match kind {
            Kind::Snapshot => Decoder::ClusterMetadata,
            _ => decoder_for(&path, args),
        };
        let structured = context.json || decoder != Decoder::Plain;
        if !structured {
            output::line(&format!("Dumping {}", path.display()))?;
        } else if several {
            // Keep stdout pure JSON lines; say which file on stderr.
            eprintln!("Dumping {}", path.display());
        }
        match kind {
            Kind::Segment | Kind::Snapshot => dump_batches(&path, decoder, context.json, args)?,
            Kind::Index => dump_index(&path, context.json, false)?,
            Kind::TimeIndex => dump_index(&path, context.json, true)?,
        }
    }
    Ok(())
}

/// Reads the batches of a file one at a time (offset and length first, then the rest).
struct BatchReader {
    reader: BufReader<File>,
    position: u64,
}

/// What [`BatchReader::next_entry`] found.
enum Entry {
    Batch(Bytes),
    /// The file ends (cleanly, in zero padding, or in a partial batch: the text says).
    End(Option<String>),
}

impl BatchReader {
    fn next_entry(&mut self) -> std::io::Result<Entry> {
        let mut head = [0u8; LOG_OVERHEAD];
        let read = read_up_to(&mut self.reader, &mut head)?;
        if read == 0 {
            return Ok(Entry::End(None));
        }
        if read < LOG_OVERHEAD {
            return Ok(Entry::End(Some(format!(
                "a partial batch header of {read} bytes at position {}",
                self.position
            ))));
        }
        let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if length == 0 && head[..8] == [0; 8] {
            return Ok(Entry::End(Some(format!(
                "zero padding from position {} (preallocated space)",
                self.position
            ))));
        }
        if !(14..=i32::MAX - 12).contains(&length) {
            return Ok(Entry::End(Some(format!(
                "an invalid batch length {length} at position {}",
                self.position
            ))));
        }
        let mut entry = BytesMut::zeroed(LOG_OVERHEAD + length as usize);
        entry[..LOG_OVERHEAD].copy_from_slice(&head);
        let body = read_up_to(&mut self.reader, &mut entry[LOG_OVERHEAD..])?;
        if body < length as usize {
            return Ok(Entry::End(Some(format!(
                "a partial batch at position {} ({} of {} bytes)",
                self.position,
                LOG_OVERHEAD + body,
                LOG_OVERHEAD + length as usize
            ))));
        }
        self.position += entry.len() as u64;
        Ok(Entry::Batch(entry.freeze()))
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// One batch, as printed.
#[derive(Serialize)]
struct BatchInfo {
    base_offset: i64,
    last_offset: i64,
    count: i64,
    position: u64,
    size: usize,
    magic: i8,
    compression: String,
    crc_valid: bool,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    last_sequence: i32,
    is_transactional: bool,
    is_control: bool,
    timestamp_type: &'static str,
    base_timestamp: i64,
    max_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Vec<RecordInfo>>,
}

/// One record, as printed.
#[derive(Serialize)]
struct RecordInfo {
    offset: i64,
    timestamp: i64,
    key_size: i64,
    value_size: i64,
    header_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<(String, Option<String>)>>,
}

fn timestamp_name(t: TimestampType) -> &'static str {
    match t {
        TimestampType::NoTimestamp => "NoTimestampType",
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

fn len_or_null(b: &Option<Bytes>) -> i64 {
    b.as_ref().map_or(-1, |b| b.len() as i64)
}

fn dump_batches(path: &Path, decoder: Decoder, json: bool, args: &Args) -> Result<()> {
    let file =
        File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let mut reader = BatchReader {
        reader: BufReader::with_capacity(1 << 20, file),
        position: 0,
    };
    if decoder == Decoder::Plain && !json {
        output::line(&format!("Log starting offset: {}", base_offset_of(path)))?;
    }
    loop {
        let position = reader.position;
        let entry = reader
            .next_entry()
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let bytes = match entry {
            Entry::Batch(bytes) => bytes,
            Entry::End(None) => return Ok(()),
            Entry::End(Some(why)) => {
                eprintln!("{}: stopped at {why}", path.display());
                return Ok(());
            }
        };
        let batch = match RecordBatches::new(bytes).next() {
            Some(Ok(batch)) => batch,
            Some(Err(e)) => {
                return Err(Error::Protocol(format!(
                    "{}: corrupt batch at position {position}: {e}",
                    path.display()
                )));
            }
            None => return Ok(()),
        };
        match decoder {
            Decoder::Plain => print_batch(&batch, position, json, args.print_data_log)?,
            Decoder::ClusterMetadata => print_metadata_batch(path, &batch)?,
            Decoder::Offsets => print_offsets_batch(path, &batch)?,
        }
    }
}

fn print_batch(batch: &Batch, position: u64, json: bool, print_data: bool) -> Result<()> {
    let info = match batch {
        Batch::V2(b) => v2_info(b, position, print_data)?,
        Batch::Legacy(m) => {
            let inner = m.messages().unwrap_or_default();
            let records = print_data.then(|| {
                inner
                    .iter()
                    .map(|r| RecordInfo {
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key_size: len_or_null(&r.key),
                        value_size: len_or_null(&r.value),
                        header_keys: Vec::new(),
                        control: None,
                        key: r.key.as_deref().map(text_or_hex),
                        value: r.value.as_deref().map(text_or_hex),
                        headers: None,
                    })
                    .collect()
            });
            BatchInfo {
                base_offset: inner.first().map_or(m.offset, |r| r.offset),
                last_offset: m.offset,
                count: inner.len() as i64,
                position,
                size: m.size(),
                magic: m.magic,
                compression: m.compression().to_string(),
                crc_valid: m.verify_crc().is_ok(),
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                last_sequence: -1,
                is_transactional: false,
                is_control: false,
                timestamp_type: timestamp_name(m.timestamp_type),
                base_timestamp: m.timestamp,
                max_timestamp: m.timestamp,
                records,
            }
        }
    };
    if json {
        return output::json(&info);
    }
    output::line(&format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} \
         producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} position: {} \
         {}: {} size: {} magic: {} compresscodec: {} crcValid: {}",
        info.base_offset,
        info.last_offset,
        info.count,
        info.base_sequence,
        info.last_sequence,
        info.producer_id,
        info.producer_epoch,
        info.partition_leader_epoch,
        info.is_transactional,
        info.is_control,
        info.position,
        info.timestamp_type,
        info.max_timestamp,
        info.size,
        info.magic,
        info.compression,
        info.crc_valid
    ))?;
    for r in info.records.iter().flatten() {
        let mut text = format!(
            "| offset: {} {}: {} keySize: {} valueSize: {} headerKeys: [{}]",
            r.offset,
            info.timestamp_type,
            r.timestamp,
            r.key_size,
            r.value_size,
            r.header_keys.join(",")
        );
        if let Some(control) = &r.control {
            text.push_str(&format!(" control: {control}"));
        }
        if print_data {
            text.push_str(&format!(
                " key: {} payload: {}",
                r.key.as_deref().unwrap_or("null"),
                r.value.as_deref().unwrap_or("null")
            ));
            if let Some(headers) = r.headers.as_ref().filter(|h| !h.is_empty()) {
                let headers: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
                    .collect();
                text.push_str(&format!(" headers: [{}]", headers.join(",")));
            }
        }
        output::line(&text)?;
    }
    Ok(())
}

fn v2_info(b: &RecordBatch, position: u64, print_data: bool) -> Result<BatchInfo> {
    let h = b.header();
    let records = if print_data {
        let mut out = Vec::new();
        for record in b.records() {
            let r = record.map_err(|e| {
                Error::Protocol(format!("corrupt record in the batch at {position}: {e}"))
            })?;
            let control = b
                .is_control()
                .then(|| r.control_key().map(|k| format!("{:?}", k.record_type)).ok())
                .flatten();
            out.push(RecordInfo {
                offset: r.offset,
                timestamp: r.timestamp,
                key_size: len_or_null(&r.key),
                value_size: len_or_null(&r.value),
                header_keys: r.headers.iter().map(|h| text_or_hex(&h.key)).collect(),
                control,
                key: r.key.as_deref().map(text_or_hex),
                value: r.value.as_deref().map(text_or_hex),
                headers: Some(
                    r.headers
                        .iter()
                        .map(|h| (text_or_hex(&h.key), h.value.as_deref().map(text_or_hex)))
                        .collect(),
                ),
            });
        }
        Some(out)
    } else {
        None
    };
    Ok(BatchInfo {
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
        count: i64::from(h.record_count),
        position,
        size: b.size(),
        magic: h.magic,
        compression: b.compression().to_string(),
        crc_valid: b.verify_crc().is_ok(),
        partition_leader_epoch: h.partition_leader_epoch,
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        last_sequence: if h.base_sequence < 0 {
            -1
        } else {
            h.base_sequence.wrapping_add(h.last_offset_delta)
        },
        is_transactional: h.is_transactional(),
        is_control: h.is_control(),
        timestamp_type: timestamp_name(h.timestamp_type()),
        base_timestamp: h.base_timestamp,
        max_timestamp: h.max_timestamp,
        records,
    })
}

/// `Topic` -> `TOPIC_RECORD` (Kafka's MetadataRecordType names).
pub fn record_type_name(variant: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = variant.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_ascii_uppercase()
            && (!chars[i - 1].is_ascii_uppercase()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if boundary {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out.push_str("_RECORD");
    out
}

/// Splits serde's `{"Variant": {...}}` into the variant name and the inner value.
fn split_variant(value: Value) -> (String, Value) {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let (k, v) = map.into_iter().next().unwrap_or_default();
            (k, v)
        }
        other => (String::new(), other),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Protocol(format!("cannot write JSON: {e}")))
}

/// A KRaft control record value. These structs begin with their own int16 `version`
/// field, which is also the version they are decoded at (clamped to the schema's range).
fn control_value<T: Decodable + Message + Serialize>(
    value: &Option<Bytes>,
) -> Result<(i16, Value)> {
    let Some(buf) = value.clone() else {
        return Ok((-1, Value::Null));
    };
    let version = match buf.get(..2) {
        Some(b) => i16::from_be_bytes([b[0], b[1]]),
        None => {
            return Err(Error::Protocol(format!(
                "{} value shorter than its version",
                T::NAME
            )));
        }
    };
    let at = version.clamp(T::VALID_VERSIONS.min, T::VALID_VERSIONS.max);
    let decoded = T::decode(&mut buf.clone(), at)
        .map_err(|e| Error::Protocol(format!("cannot decode a {}: {e}", T::NAME)))?;
    Ok((version, to_json(&decoded)?))
}

fn control_json(key: ControlRecordKey, value: &Option<Bytes>) -> Result<(String, i16, Value)> {
    let (name, (version, record)) = match key.record_type {
        ControlRecordType::LeaderChange => (
            "LEADER_CHANGE",
            control_value::<LeaderChangeMessage>(value)?,
        ),
        ControlRecordType::SnapshotHeader => (
            "SNAPSHOT_HEADER",
            control_value::<SnapshotHeaderRecord>(value)?,
        ),
        ControlRecordType::SnapshotFooter => (
            "SNAPSHOT_FOOTER",
            control_value::<SnapshotFooterRecord>(value)?,
        ),
        ControlRecordType::KRaftVersion => {
            ("KRAFT_VERSION", control_value::<KRaftVersionRecord>(value)?)
        }
        ControlRecordType::KRaftVoters => ("KRAFT_VOTERS", control_value::<VotersRecord>(value)?),
        ControlRecordType::Abort | ControlRecordType::Commit => {
            let name = if key.record_type == ControlRecordType::Abort {
                "ABORT"
            } else {
                "COMMIT"
            };
            let marker = value
                .as_deref()
                .map(EndTxnMarker::parse)
                .transpose()
                .map_err(|e| Error::Protocol(e.to_string()))?;
            let record = marker.map_or(
                Value::Null,
                |m| json!({ "coordinator_epoch": m.coordinator_epoch }),
            );
            (name, (marker.map_or(-1, |m| m.version), record))
        }
        ControlRecordType::Unknown(t) => {
            return Ok((format!("UNKNOWN({t})"), -1, Value::Null));
        }
    };
    Ok((name.to_string(), version, record))
}

fn print_metadata_batch(path: &Path, batch: &Batch) -> Result<()> {
    let Batch::V2(b) = batch else {
        return Err(Error::Protocol(format!(
            "{}: a legacy (magic {}) message in a metadata log",
            path.display(),
            batch.magic()
        )));
    };
    for record in b.records() {
        let record = record.map_err(|e| Error::Protocol(format!("{}: {e}", path.display())))?;
        if b.is_control() {
            let key = record
                .control_key()
                .map_err(|e| Error::Protocol(format!("{}: {e}", path.display())))?;
            let (name, version, value) = control_json(key, &record.value)?;
            output::json(&json!({
                "offset": record.offset,
                "control": name,
                "version": version,
                "record": value,
            }))?;
            continue;
        }
        let Some(mut value) = record.value.clone() else {
            output::json(&json!({ "offset": record.offset, "record": null }))?;
            continue;
        };
        match MetadataRecord::decode_framed(&mut value) {
            Ok(versioned) => {
                let (variant, inner) = split_variant(to_json(&versioned.record)?);
                output::json(&json!({
                    "offset": record.offset,
                    "type": record_type_name(&variant),
                    "version": versioned.version,
                    "record": inner,
                }))?;
            }
            Err(e) => {
                output::json(&json!({
                    "offset": record.offset,
                    "error": e.to_string(),
                    "value": text_or_hex(record.value.as_deref().unwrap_or_default()),
                }))?;
            }
        }
    }
    Ok(())
}

fn print_offsets_batch(path: &Path, batch: &Batch) -> Result<()> {
    let Batch::V2(b) = batch else {
        return Err(Error::Protocol(format!(
            "{}: a legacy (magic {}) message in __consumer_offsets",
            path.display(),
            batch.magic()
        )));
    };
    if b.is_control() {
        return Ok(());
    }
    for record in b.records() {
        let record = record.map_err(|e| Error::Protocol(format!("{}: {e}", path.display())))?;
        let Some(mut key_bytes) = record.key.clone() else {
            continue;
        };
        let key = match GroupCoordinatorRecordKey::decode(&mut key_bytes) {
            Ok(key) => key,
            Err(e) => {
                output::json(&json!({
                    "offset": record.offset,
                    "error": format!("key: {e}"),
                    "key": text_or_hex(record.key.as_deref().unwrap_or_default()),
                }))?;
                continue;
            }
        };
        let (key_type, key_json) = split_variant(to_json(&key)?);
        let (value_version, value_json) = match record.value.clone() {
            None => (Value::Null, Value::Null),
            Some(mut value) => {
                match GroupCoordinatorRecordValue::decode(key.record_type(), &mut value) {
                    Ok((value, version)) => (json!(version), split_variant(to_json(&value)?).1),
                    Err(e) => (Value::Null, json!({ "error": e.to_string() })),
                }
            }
        };
        output::json(&json!({
            "offset": record.offset,
            "timestamp": record.timestamp,
            "type": key_type,
            "key": key_json,
            "value_version": value_version,
            "value": value_json,
        }))?;
    }
    Ok(())
}

/// One index entry.
#[derive(Serialize)]
struct IndexEntry {
    offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
}

fn dump_index(path: &Path, json: bool, time: bool) -> Result<()> {
    let data =
        std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let base = base_offset_of(path);
    let width = if time { 12 } else { 8 };
    let mut previous_offset = None;
    for (i, entry) in data.chunks(width).enumerate() {
        if entry.len() < width {
            eprintln!(
                "{}: {} trailing bytes (a partial entry)",
                path.display(),
                entry.len()
            );
            break;
        }
        let (offset, position, timestamp) = if time {
            let ts = i64::from_be_bytes(entry[..8].try_into().unwrap_or_default());
            let rel = i32::from_be_bytes(entry[8..12].try_into().unwrap_or_default());
            (rel, None, Some(ts))
        } else {
            let rel = i32::from_be_bytes(entry[..4].try_into().unwrap_or_default());
            let pos = i32::from_be_bytes(entry[4..8].try_into().unwrap_or_default());
            (rel, Some(pos), None)
        };
        // Kafka preallocates index files; the unused tail is zeros.
        if i > 0 && entry.iter().all(|&b| b == 0) {
            break;
        }
        let absolute = base + i64::from(offset);
        if previous_offset.is_some_and(|p| absolute < p) {
            eprintln!(
                "{}: entry {i} goes back to offset {absolute} (after {}); the index is corrupt",
                path.display(),
                previous_offset.unwrap_or_default()
            );
        }
        previous_offset = Some(absolute);
        let entry = IndexEntry {
            offset: absolute,
            position,
            timestamp,
        };
        if json {
            output::json(&entry)?;
        } else if let Some(ts) = entry.timestamp {
            output::line(&format!("timestamp: {ts} offset: {absolute}"))?;
        } else {
            output::line(&format!(
                "offset: {absolute} position: {}",
                entry.position.unwrap_or_default()
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_type_names_follow_kafka() {
        assert_eq!(record_type_name("Topic"), "TOPIC_RECORD");
        assert_eq!(record_type_name("FeatureLevel"), "FEATURE_LEVEL_RECORD");
        assert_eq!(record_type_name("NoOp"), "NO_OP_RECORD");
        assert_eq!(record_type_name("ClearElr"), "CLEAR_ELR_RECORD");
        assert_eq!(
            record_type_name("ZkMigrationState"),
            "ZK_MIGRATION_STATE_RECORD"
        );
    }

    #[test]
    fn base_offsets_come_from_file_names() {
        assert_eq!(base_offset_of(Path::new("/x/00000000000000000042.log")), 42);
        assert_eq!(
            base_offset_of(Path::new("00000000000000004096-0000000003.checkpoint")),
            4096
        );
        assert_eq!(
            kind_of(Path::new("a/00000000000000000000.timeindex")),
            Some(Kind::TimeIndex)
        );
        assert_eq!(kind_of(Path::new("leader-epoch-checkpoint")), None);
    }
}
