//! `RecordBatches` over any bytes (a Fetch/Produce `records` field or a log segment): every
//! batch is re-parsed on its own, validated, and every record (and legacy message) read,
//! touching keys, values and headers. Must never panic nor allocate without bound
//! (decompression is capped at `LIMIT` here, as the library caps it by default). Checks:
//!
//! * batches are contiguous and the iterator's position and remaining bytes add up;
//! * the owned (`records`) and borrowed (`section().iter()`) record iterators agree record by
//!   record, and a record's headers are exactly `header_count` pairs;
//! * the streaming iterator (`skip_key_value_records`) gives the same verdict, and the same
//!   fields and sizes when every record decodes;
//! * `validate` succeeds exactly when the CRC matches and every record decodes (checked
//!   again on a copy with the CRC fixed, since random bytes rarely carry a good one);
//! * a batch whose records all decode, re-encoded with `RecordBatchBuilder`, gives the same
//!   records;
//! * a compressed legacy wrapper yields plain inner messages of its magic with good CRCs,
//!   the last (magic 1) at the wrapper's offset.
#![no_main]

use gregor_protocol::bytes::Bytes;
use gregor_protocol::records::{
    Batch, ControlRecordType, EndTxnMarker, LegacyMessage, NewRecord, Record, RecordBatch,
    RecordBatchBuilder, RecordBatches, RecordRef, TimestampType,
};
use libfuzzer_sys::fuzz_target;

/// Decompression cap for the checks (the default, 256 MiB, would make bombs slow).
const LIMIT: usize = 1 << 20;
/// End of the CRC field of a v2 batch (the CRC covers everything after it).
const CRC_END: usize = 21;

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    let mut batches = RecordBatches::new(buf);
    let mut next_position = 0;
    let mut failed = false;
    for entry in &mut batches {
        let batch = match entry {
            Ok(batch) => batch,
            Err(_) => {
                failed = true;
                break;
            }
        };
        assert_eq!(batch.position(), next_position, "batches are not contiguous");
        next_position += batch.size();
        assert!(next_position <= data.len(), "batch runs past the input");
        let bytes = Bytes::copy_from_slice(&data[batch.position()..next_position]);
        match &batch {
            Batch::V2(batch) => check_v2(batch, bytes),
            Batch::Legacy(message) => check_legacy(message, bytes),
        }
    }
    assert_eq!(batches.position() + batches.remaining().len(), data.len());
    if batches.is_truncated() {
        assert!(!batches.remaining().is_empty(), "truncated with nothing left");
    } else if !failed {
        assert_eq!(batches.position(), data.len(), "iteration stopped early without a reason");
    }
});

fn check_v2(batch: &RecordBatch, bytes: Bytes) {
    let alone = RecordBatch::parse(bytes).expect("a batch parses on its own");
    assert_eq!(alone.header(), batch.header());
    assert_eq!(batch.last_offset(), batch.base_offset().wrapping_add(i64::from(batch.header().last_offset_delta)));

    // Owned and borrowed records agree, item by item.
    let owned: Vec<_> = batch.records_with_limit(LIMIT).collect();
    let mut all_ok = true;
    match batch.section_with_limit(LIMIT) {
        Err(e) => {
            assert_eq!(owned.len(), 1, "a failed section yields one error");
            assert_eq!(owned[0].as_ref().err(), Some(&e));
            all_ok = false;
        }
        Ok(section) => {
            assert_eq!(section.record_count(), batch.record_count());
            let borrowed: Vec<_> = section.iter().collect();
            assert_eq!(owned.len(), borrowed.len(), "iterators yield different counts");
            assert!(owned.len() <= batch.record_count() as usize + 1);
            for (o, b) in owned.iter().zip(&borrowed) {
                match (o, b) {
                    (Ok(o), Ok(b)) => same_record(o, b),
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    _ => panic!("iterators disagree: {o:?} vs {b:?}"),
                }
                all_ok &= o.is_ok();
            }
            if batch.is_control() {
                for record in owned.iter().flatten() {
                    if let Ok(key) = record.control_key()
                        && matches!(key.record_type, ControlRecordType::Commit | ControlRecordType::Abort)
                    {
                        let _ = record.value.as_deref().map(EndTxnMarker::parse);
                    }
                }
            }
        }
    }
    // The streaming iterator (keys and values skipped) agrees: the same verdict, and the
    // same records when they all decode.
    let streamed: Vec<_> = batch.skip_key_value_records(LIMIT).collect();
    let streamed_ok =
        streamed.iter().all(Result::is_ok) && streamed.len() == batch.record_count() as usize;
    assert_eq!(streamed_ok, all_ok, "the streaming iterator disagrees: {streamed:?}");
    if all_ok {
        for (s, o) in streamed.iter().zip(&owned) {
            let (s, o) = (s.as_ref().unwrap(), o.as_ref().unwrap());
            assert_eq!((s.offset, s.timestamp, s.offset_delta), (o.offset, o.timestamp, o.offset_delta));
            assert_eq!((s.timestamp_delta, s.attributes), (o.timestamp_delta, o.attributes));
            assert_eq!(s.key_len, o.key.as_ref().map(|k| k.len()));
            assert_eq!(s.value_len, o.value.as_ref().map(|v| v.len()));
            assert_eq!(s.header_count, o.headers.len());
        }
    }
    let crc_ok = batch.verify_crc().is_ok();
    assert_eq!(
        batch.validate_with_limit(LIMIT).is_ok(),
        crc_ok && all_ok,
        "validate disagrees with the CRC check ({crc_ok}) and the records ({all_ok})"
    );
    // Random bytes rarely carry a good CRC: check the same batch with its CRC fixed too.
    let mut fixed = batch.as_bytes().to_vec();
    let crc = crc32c::crc32c(&fixed[CRC_END..]);
    fixed[CRC_END - 4..CRC_END].copy_from_slice(&crc.to_be_bytes());
    let fixed = RecordBatch::parse(Bytes::from(fixed)).expect("a batch with its CRC fixed parses");
    assert_eq!(
        fixed.validate_with_limit(LIMIT).is_ok(),
        all_ok,
        "validate disagrees with the records ({all_ok}) on a batch with a good CRC"
    );
    if all_ok {
        let records: Vec<Record> = owned.into_iter().map(Result::unwrap).collect();
        assert_eq!(records.len(), batch.record_count() as usize);
        reencode(&fixed, &records);
    }
}

fn same_record(o: &Record, b: &RecordRef<'_>) {
    assert_eq!(o.offset, b.offset);
    assert_eq!(o.timestamp, b.timestamp);
    assert_eq!(o.offset_delta, b.offset_delta);
    assert_eq!(o.timestamp_delta, b.timestamp_delta);
    assert_eq!(o.attributes, b.attributes);
    assert_eq!(o.key.as_deref(), b.key);
    assert_eq!(o.value.as_deref(), b.value);
    assert_eq!(o.headers.len(), b.header_count());
    let headers: Vec<_> = b.headers().collect();
    assert_eq!(headers.len(), b.header_count(), "header iterator ended early");
    for (h, (key, value)) in o.headers.iter().zip(headers) {
        assert_eq!(&h.key[..], key);
        assert_eq!(h.value.as_deref(), value);
    }
}

/// Writes the records of a valid batch again (uncompressed, same batch settings and offset
/// deltas) and checks that reading them back gives the same records.
fn reencode(batch: &RecordBatch, records: &[Record]) {
    if !records.windows(2).all(|w| w[0].offset_delta < w[1].offset_delta) {
        return; // the writer only writes increasing deltas
    }
    let header = batch.header();
    let mut builder = RecordBatchBuilder::new()
        .base_offset(header.base_offset)
        .partition_leader_epoch(header.partition_leader_epoch)
        .producer(header.producer_id, header.producer_epoch)
        .base_sequence(header.base_sequence)
        .transactional(header.is_transactional())
        .control(header.is_control())
        .delete_horizon(header.delete_horizon());
    if header.timestamp_type() == TimestampType::LogAppendTime {
        builder = builder.log_append_time(header.max_timestamp);
    }
    let mut out = gregor_protocol::bytes::BytesMut::new();
    let mut writer = builder.writer(&mut out);
    for record in records {
        writer
            .append_with_offset_delta(record.offset_delta, &NewRecord::from(record))
            .expect("a decoded record can be written again");
    }
    writer.finish().expect("the batch can be finished");
    let rewritten = RecordBatch::parse(out.freeze()).expect("the rewritten batch parses");
    rewritten.validate().expect("the rewritten batch is valid");
    let again: Vec<Record> = rewritten.records().map(|r| r.expect("rewritten record decodes")).collect();
    assert_eq!(again.len(), records.len());
    for (a, b) in records.iter().zip(&again) {
        assert_eq!(
            (a.offset, a.timestamp, &a.key, &a.value, &a.headers),
            (b.offset, b.timestamp, &b.key, &b.value, &b.headers),
            "a record changed when written again"
        );
    }
}

fn check_legacy(message: &LegacyMessage, bytes: Bytes) {
    let alone = LegacyMessage::parse(bytes).expect("a legacy message parses on its own");
    assert_eq!(
        (alone.offset, alone.magic, alone.attributes, alone.crc, alone.timestamp, &alone.key, &alone.value),
        (message.offset, message.magic, message.attributes, message.crc, message.timestamp, &message.key, &message.value)
    );
    let _ = message.verify_crc();
    let Ok(inner) = message.messages_with_limit(LIMIT) else {
        return;
    };
    if !message.is_compressed() {
        assert_eq!(inner.len(), 1);
        assert_eq!(&inner[0], message);
        return;
    }
    for m in &inner {
        assert_eq!(m.magic, message.magic);
        assert!(!m.is_compressed());
        assert!(m.verify_crc().is_ok(), "inner message with a bad CRC was accepted");
        let _ = (m.key.as_deref().map(<[u8]>::len), m.value.as_deref().map(<[u8]>::len));
    }
    if message.magic == 1
        && let Some(last) = inner.last()
    {
        assert_eq!(last.offset, message.offset, "last inner offset != wrapper offset");
    }
}
