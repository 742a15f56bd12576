//! Writes seed inputs for every fuzz target into `fuzz/corpus/<target>/` (gitignored):
//!
//! * `request`, `response`, `request_header`: the Kafka wire corpus frames (`*.hex` and
//!   `*.toml` in `shared/kafka-wire-corpus/frames`, or the folder given as the first
//!   argument), prefixed as each target expects;
//! * `metadata_record`, `coordinator_record`: the default value of every message at every
//!   version, framed under every record type that accepts it;
//! * `record_batches`: batches written with each codec, a control batch, a log append time
//!   batch, and legacy magic 0/1 messages (plain and a gzip wrapper).
//!
//! Run from `fuzz/`: `cargo run --release --example seeds [FRAMES_DIR]`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use gregor_protocol::bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::messages::*;
use gregor_protocol::records::{
    Compression, ControlRecordKey, ControlRecordType, EndTxnMarker, Header, NewRecord,
    RecordBatchBuilder, compress,
};
use gregor_protocol::{ApiKey, Encodable, Message, MetadataRecord, VersionRange};

/// The default value of one message type at each of its versions.
struct MessageDefault {
    versions: VersionRange,
    encode: fn(i16) -> Option<Bytes>,
}

macro_rules! defaults {
    ($($message:path),* $(,)?) => {
        vec![$(MessageDefault {
            versions: <$message as Message>::VALID_VERSIONS,
            encode: |version| <$message>::default().to_bytes(version).ok(),
        }),*]
    };
}

fn main() {
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = fuzz_dir.join("corpus");
    let frames = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        fuzz_dir.join("../../shared/kafka-wire-corpus/frames")
    });
    let mut written = BTreeMap::new();
    wire_frames(&frames, &out, &mut written);
    let defaults = gregor_protocol::for_each_message!(defaults);
    metadata_records(&defaults, &out, &mut written);
    coordinator_records(&defaults, &out, &mut written);
    record_batches(&out, &mut written);
    for (target, count) in written {
        println!("{count:5} seeds in {}", out.join(target).display());
    }
}

/// Writes one seed file.
fn write(out: &Path, target: &'static str, name: &str, data: &[u8], written: &mut BTreeMap<&'static str, usize>) {
    let dir = out.join(target);
    fs::create_dir_all(&dir).expect("create the corpus folder");
    fs::write(dir.join(name), data).expect("write a seed");
    *written.entry(target).or_default() += 1;
}

/// Frames of the wire corpus: `api key | version | body` for `request`/`response`, and
/// `selector | header | body` for `request_header`.
fn wire_frames(dir: &Path, out: &Path, written: &mut BTreeMap<&'static str, usize>) {
    let Ok(entries) = fs::read_dir(dir) else {
        eprintln!("no wire corpus at {} (skipped)", dir.display());
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let meta = fs::read_to_string(&path).expect("read a .toml");
        let field = |name: &str| {
            meta.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        };
        let (Some(key), Some(version), Some(direction)) = (field("api_key"), field("version"), field("direction"))
        else {
            continue;
        };
        let (Ok(key), Ok(version)) = (key.parse::<i16>(), version.parse::<i16>()) else {
            continue;
        };
        let Ok(hex) = fs::read_to_string(path.with_extension("hex")) else {
            continue;
        };
        let Some(body) = unhex(&hex) else {
            continue;
        };
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut seed = Vec::with_capacity(body.len() + 4);
        seed.extend_from_slice(&key.to_be_bytes());
        seed.extend_from_slice(&version.to_be_bytes());
        seed.extend_from_slice(&body);
        let target = if direction == "request" { "request" } else { "response" };
        write(out, target, &stem, &seed, written);

        if let (true, Some(api)) = (direction == "request", ApiKey::from_i16(key)) {
            let header_version = api.request_header_version(version);
            let header = RequestHeader {
                request_api_key: key,
                request_api_version: version,
                correlation_id: 1,
                client_id: Some("seed".into()),
                ..Default::default()
            };
            let mut frame = BytesMut::new();
            frame.put_u8((header_version - 1) as u8);
            if header.encode(&mut frame, header_version).is_ok() {
                frame.extend_from_slice(&body);
                write(out, "request_header", &stem, &frame, written);
            }
        }
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// Every (message default, version) encoding.
fn encodings(defaults: &[MessageDefault]) -> Vec<(i16, Bytes)> {
    let mut all = Vec::new();
    for d in defaults {
        for version in d.versions.iter() {
            if let Some(bytes) = (d.encode)(version) {
                all.push((version, bytes));
            }
        }
    }
    all
}

fn uvarint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One framed record per (record type, version) that some default encoding decodes as.
fn metadata_records(defaults: &[MessageDefault], out: &Path, written: &mut BTreeMap<&'static str, usize>) {
    let mut seen = std::collections::BTreeSet::new();
    for (version, body) in encodings(defaults) {
        for record_type in 0..64u32 {
            if seen.contains(&(record_type, version)) {
                continue;
            }
            let mut framed = Vec::new();
            uvarint(&mut framed, 1);
            uvarint(&mut framed, record_type);
            uvarint(&mut framed, version as u32);
            framed.extend_from_slice(&body);
            if MetadataRecord::decode_framed(&mut Bytes::from(framed.clone())).is_ok() {
                seen.insert((record_type, version));
                let name = format!("type{record_type}_v{version}");
                write(out, "metadata_record", &name, &framed, written);
            }
        }
    }
}

/// `key length | key | value` for each value record type and version that a default
/// encoding decodes as, with the key of that type when one decodes.
fn coordinator_records(defaults: &[MessageDefault], out: &Path, written: &mut BTreeMap<&'static str, usize>) {
    let all = encodings(defaults);
    let mut keys: BTreeMap<i16, Vec<u8>> = BTreeMap::new();
    for (_, body) in all.iter().filter(|(v, _)| *v == 0) {
        for record_type in 0..32i16 {
            if keys.contains_key(&record_type) {
                continue;
            }
            let mut key = record_type.to_be_bytes().to_vec();
            key.extend_from_slice(body);
            let mut input = Bytes::from(key.clone());
            if GroupCoordinatorRecordKey::decode(&mut input).is_ok() && input.is_empty() {
                keys.insert(record_type, key);
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (version, body) in &all {
        for record_type in 0..32i16 {
            if seen.contains(&(record_type, *version)) {
                continue;
            }
            let mut value = version.to_be_bytes().to_vec();
            value.extend_from_slice(body);
            let mut input = Bytes::from(value.clone());
            if GroupCoordinatorRecordValue::decode(record_type, &mut input).is_ok() && input.is_empty() {
                seen.insert((record_type, *version));
                let key = keys.get(&record_type).cloned().unwrap_or_else(|| record_type.to_be_bytes().to_vec());
                let mut seed = (key.len() as u16).to_be_bytes().to_vec();
                seed.extend_from_slice(&key);
                seed.extend_from_slice(&value);
                write(out, "coordinator_record", &format!("type{record_type}_v{version}"), &seed, written);
            }
        }
    }
    for (record_type, key) in keys {
        let mut seed = (key.len() as u16).to_be_bytes().to_vec();
        seed.extend_from_slice(&key);
        write(out, "coordinator_record", &format!("type{record_type}_tombstone"), &seed, written);
    }
}

fn sample_records() -> Vec<NewRecord> {
    vec![
        NewRecord::new(1_700_000_000_000, Some(Bytes::from_static(b"key")), Some(Bytes::from_static(b"value"))),
        NewRecord::new(1_700_000_000_005, None, Some(Bytes::from_static(b"no key"))),
        NewRecord {
            timestamp: 1_700_000_000_002,
            key: Some(Bytes::from_static(b"k")),
            value: None,
            headers: vec![
                Header::new(Bytes::from_static(b"h1"), Some(Bytes::from_static(b"v1"))),
                Header::new(Bytes::from_static(b"h2"), None),
            ],
        },
    ]
}

/// CRC32 (IEEE) for legacy messages.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A legacy entry: offset, size, then crc | magic | attributes | [timestamp] | key | value.
fn legacy(offset: i64, magic: i8, attributes: i8, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut message = vec![magic as u8, attributes as u8];
    if magic == 1 {
        message.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => message.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                message.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                message.extend_from_slice(bytes);
            }
        }
    }
    let mut entry = offset.to_be_bytes().to_vec();
    entry.extend_from_slice(&((message.len() + 4) as i32).to_be_bytes());
    entry.extend_from_slice(&crc32(&message).to_be_bytes());
    entry.extend_from_slice(&message);
    entry
}

fn record_batches(out: &Path, written: &mut BTreeMap<&'static str, usize>) {
    let records = sample_records();
    let mut all = Vec::new();
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let batch = RecordBatchBuilder::new()
            .base_offset(100)
            .producer(7, 1)
            .base_sequence(0)
            .compression(codec)
            .build(&records)
            .expect("build a batch");
        write(out, "record_batches", &format!("v2_{codec}"), &batch, written);
        all.extend_from_slice(&batch);
    }
    let marker = NewRecord::new(
        1_700_000_000_009,
        Some(ControlRecordKey::new(ControlRecordType::Commit).encode()),
        Some(EndTxnMarker { version: 0, coordinator_epoch: 3 }.encode()),
    );
    let control = RecordBatchBuilder::new()
        .base_offset(103)
        .producer(7, 1)
        .transactional(true)
        .control(true)
        .build([&marker])
        .expect("build a control batch");
    write(out, "record_batches", "v2_control", &control, written);
    let append_time = RecordBatchBuilder::new()
        .log_append_time(1_700_000_000_100)
        .delete_horizon(Some(1_700_000_000_050))
        .build(&records)
        .expect("build a log append time batch");
    write(out, "record_batches", "v2_log_append_time", &append_time, written);
    all.extend_from_slice(&control);
    write(out, "record_batches", "v2_many", &all, written);

    let mut legacy_set = Vec::new();
    for magic in [0i8, 1] {
        let plain = legacy(5, magic, 0, Some(b"key"), Some(b"value"));
        legacy_set.extend_from_slice(&plain);
        let inner: Vec<u8> = [
            legacy(0, magic, 0, Some(b"a"), Some(b"1")),
            legacy(1, magic, 0, None, Some(b"2")),
        ]
        .concat();
        let mut compressed = BytesMut::new();
        compress(Compression::Gzip, &inner, &mut compressed).expect("gzip");
        let wrapper = legacy(11, magic, 1, None, Some(&compressed));
        write(out, "record_batches", &format!("legacy_v{magic}"), &[plain, wrapper.clone()].concat(), written);
        legacy_set.extend_from_slice(&wrapper);
    }
    write(out, "record_batches", "legacy_and_v2", &[legacy_set, all].concat(), written);
}
