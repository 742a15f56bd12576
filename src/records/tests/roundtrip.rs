//! Property tests: encode -> parse -> iterate gives back what was written.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

fn bytes_strategy(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn header_strategy() -> impl Strategy<Value = Header> {
    ("[a-z\u{e9}\u{4e2d}]{0,8}", bytes_strategy(16))
        .prop_map(|(key, value)| Header::new(Bytes::from(key), value))
}

fn record_strategy() -> impl Strategy<Value = NewRecord> {
    (
        prop_oneof![
            any::<i64>(),
            1_500_000_000_000i64..1_800_000_000_000,
            Just(-1i64)
        ],
        bytes_strategy(48),
        bytes_strategy(300),
        proptest::collection::vec(header_strategy(), 0..4),
    )
        .prop_map(|(timestamp, key, value, headers)| NewRecord {
            timestamp,
            key,
            value,
            headers,
        })
}

fn codec_strategy() -> impl Strategy<Value = Compression> {
    (0u8..5).prop_map(|id| Compression::from_id(id).unwrap())
}

#[derive(Clone, Debug)]
struct Settings {
    base_offset: i64,
    leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    log_append_time: Option<i64>,
    compression: Compression,
}

fn settings_strategy() -> impl Strategy<Value = Settings> {
    (
        0i64..i64::MAX / 2,
        any::<i32>(),
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
        proptest::option::of(any::<i64>()),
        codec_strategy(),
    )
        .prop_map(
            |(
                base_offset,
                leader_epoch,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
                log_append_time,
                compression,
            )| Settings {
                base_offset,
                leader_epoch,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
                log_append_time,
                compression,
            },
        )
}

fn builder(s: &Settings) -> RecordBatchBuilder {
    let mut b = RecordBatchBuilder::new()
        .base_offset(s.base_offset)
        .partition_leader_epoch(s.leader_epoch)
        .producer(s.producer_id, s.producer_epoch)
        .base_sequence(s.base_sequence)
        .transactional(s.transactional)
        .compression(s.compression);
    if let Some(time) = s.log_append_time {
        b = b.log_append_time(time);
    }
    b
}

/// Checks a decoded batch against what was written.
fn check(batch: &RecordBatch, s: &Settings, records: &[NewRecord]) -> Result<(), TestCaseError> {
    batch
        .validate()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let h = batch.header();
    prop_assert_eq!(h.base_offset, s.base_offset);
    prop_assert_eq!(h.partition_leader_epoch, s.leader_epoch);
    prop_assert_eq!(h.producer_id, s.producer_id);
    prop_assert_eq!(h.producer_epoch, s.producer_epoch);
    prop_assert_eq!(h.base_sequence, s.base_sequence);
    prop_assert_eq!(h.is_transactional(), s.transactional);
    prop_assert_eq!(batch.compression(), s.compression);
    prop_assert_eq!(h.record_count as usize, records.len());
    prop_assert_eq!(
        h.last_offset_delta as usize,
        records.len().saturating_sub(1)
    );
    let max = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(NO_TIMESTAMP)
        .max(NO_TIMESTAMP);
    match s.log_append_time {
        Some(time) => {
            prop_assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
            prop_assert_eq!(h.max_timestamp, time);
        }
        None => {
            prop_assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
            prop_assert_eq!(h.max_timestamp, max);
        }
    }
    let decoded = all_records(batch);
    prop_assert_eq!(decoded.len(), records.len());
    for (i, (got, want)) in decoded.iter().zip(records).enumerate() {
        prop_assert_eq!(got.offset, s.base_offset + i as i64);
        prop_assert_eq!(got.offset_delta, i as i32);
        prop_assert_eq!(got.timestamp, s.log_append_time.unwrap_or(want.timestamp));
        prop_assert_eq!(
            h.base_timestamp.wrapping_add(got.timestamp_delta),
            want.timestamp
        );
        prop_assert_eq!(&got.key, &want.key);
        prop_assert_eq!(&got.value, &want.value);
        prop_assert_eq!(&got.headers, &want.headers);
    }
    // The borrowed view agrees.
    let section = batch.section().unwrap();
    prop_assert_eq!(section.record_count() as usize, records.len());
    let mut n = 0;
    for (got, want) in section.iter().zip(records) {
        let got = got.unwrap();
        prop_assert_eq!(got.offset, s.base_offset + n as i64);
        prop_assert_eq!(got.timestamp, s.log_append_time.unwrap_or(want.timestamp));
        prop_assert_eq!(got.key, want.key.as_deref());
        prop_assert_eq!(got.value, want.value.as_deref());
        prop_assert_eq!(got.header_count(), want.headers.len());
        let headers: Vec<(&[u8], Option<&[u8]>)> = got.headers().collect();
        let wanted: Vec<(&[u8], Option<&[u8]>)> = want
            .headers
            .iter()
            .map(|h| (&h.key[..], h.value.as_deref()))
            .collect();
        prop_assert_eq!(headers, wanted);
        n += 1;
    }
    prop_assert_eq!(n, records.len());
    prop_assert!(section.iter().nth(records.len()).is_none());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_iterate_round_trip(
        s in settings_strategy(),
        records in proptest::collection::vec(record_strategy(), 0..24),
        prefix in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut out = BytesMut::from(&prefix[..]);
        let mut writer = builder(&s).writer(&mut out);
        for (i, record) in records.iter().enumerate() {
            prop_assert_eq!(writer.append(record).unwrap(), i as i32);
        }
        prop_assert_eq!(writer.record_count() as usize, records.len());
        let uncompressed = writer.uncompressed_size();
        let size = writer.finish().unwrap();
        if s.compression == Compression::None {
            prop_assert_eq!(uncompressed, size);
        }
        // The size reported is exactly what was written, and what the header says.
        prop_assert_eq!(out.len(), prefix.len() + size);
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        let bytes = out.freeze().slice(prefix.len()..);
        let batch = RecordBatch::parse(bytes.clone()).unwrap();
        prop_assert_eq!(batch.size(), size);
        prop_assert_eq!(batch.header().batch_length as usize + LOG_OVERHEAD, size);
        check(&batch, &s, &records)?;
        // Re-encoding the decoded records (create time) gives identical bytes.
        if s.log_append_time.is_none() {
            let again: Vec<NewRecord> = all_records(&batch).iter().map(NewRecord::from).collect();
            prop_assert_eq!(builder(&s).build(&again).unwrap(), bytes);
        }
    }

    #[test]
    fn buffer_of_batches_with_partial_tail(
        batches in proptest::collection::vec(
            (settings_strategy(), proptest::collection::vec(record_strategy(), 0..6)),
            1..5,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = BytesMut::new();
        let mut sizes = Vec::new();
        for (s, records) in &batches {
            let mut writer = builder(s).writer(&mut out);
            for record in records {
                writer.append(record).unwrap();
            }
            sizes.push(writer.finish().unwrap());
        }
        // Cut inside the last batch (or keep it whole).
        let last = *sizes.last().unwrap();
        let keep = cut.index(last + 1);
        let total = out.len() - last + keep;
        let buf = out.freeze().slice(..total);
        let mut iter = RecordBatches::new(buf);
        let mut position = 0;
        let mut n = 0;
        for (i, item) in iter.by_ref().enumerate() {
            let Batch::V2(batch) = item.unwrap() else { panic!("legacy") };
            prop_assert_eq!(batch.position(), position);
            position += batch.size();
            check(&batch, &batches[i].0, &batches[i].1)?;
            n += 1;
        }
        let whole = keep == last;
        prop_assert_eq!(n, if whole { batches.len() } else { batches.len() - 1 });
        prop_assert_eq!(iter.is_truncated(), !whole && keep > 0);
    }

    #[test]
    fn in_place_rewrites_keep_batch_valid(
        s in settings_strategy(),
        records in proptest::collection::vec(record_strategy(), 1..8),
        new_base in 0i64..i64::MAX / 2,
        epoch in any::<i32>(),
        append_time in any::<i64>(),
    ) {
        let bytes = builder(&s).build(&records).unwrap();
        let mut edited = BytesMut::from(&bytes[..]);
        set_base_offset(&mut edited, new_base).unwrap();
        set_partition_leader_epoch(&mut edited, epoch).unwrap();
        // The CRC is unchanged (it covers neither field) and still valid.
        prop_assert_eq!(&edited[17..21], &bytes[17..21]);
        let batch = RecordBatch::parse(edited.clone().freeze()).unwrap();
        let moved = Settings { base_offset: new_base, leader_epoch: epoch, ..s.clone() };
        check(&batch, &moved, &records)?;

        set_log_append_time(&mut edited, append_time).unwrap();
        let batch = RecordBatch::parse(edited.freeze()).unwrap();
        let stamped = Settings { log_append_time: Some(append_time), ..moved };
        check(&batch, &stamped, &records)?;
    }
}

#[test]
fn empty_batch() {
    let bytes = RecordBatchBuilder::new().base_offset(9).build([]).unwrap();
    assert_eq!(bytes.len(), RECORD_BATCH_OVERHEAD);
    let batch = RecordBatch::parse(bytes).unwrap();
    batch.validate().unwrap();
    assert_eq!(batch.record_count(), 0);
    assert_eq!(batch.header().base_timestamp, NO_TIMESTAMP);
    assert_eq!(batch.records().count(), 0);
}

#[test]
fn uncompressed_size_is_header_plus_records() {
    let records: Vec<NewRecord> = (0..50).map(sample).collect();
    let bytes = RecordBatchBuilder::new().build(&records).unwrap();
    let batch = RecordBatch::parse(bytes.clone()).unwrap();
    assert_eq!(
        batch.records_bytes().len() + RECORD_BATCH_OVERHEAD,
        bytes.len()
    );
    // Keys of an uncompressed batch share the input; no record without headers allocates.
    let no_headers: Vec<NewRecord> = (0..5)
        .map(|i| NewRecord::new(i, None, Some(Bytes::from("v"))))
        .collect();
    let batch = RecordBatch::parse(RecordBatchBuilder::new().build(&no_headers).unwrap()).unwrap();
    for record in all_records(&batch) {
        assert_eq!(record.headers.capacity(), 0);
        assert_eq!(record.key, None);
    }
}

#[test]
fn delete_horizon_is_the_base_timestamp() {
    let records: Vec<NewRecord> = (0..3).map(sample).collect();
    let bytes = RecordBatchBuilder::new()
        .delete_horizon(Some(1_000))
        .build(&records)
        .unwrap();
    let batch = RecordBatch::parse(bytes).unwrap();
    assert_eq!(batch.header().delete_horizon(), Some(1_000));
    assert_eq!(batch.header().attributes & 0x40, 0x40);
    let decoded = all_records(&batch);
    for (got, want) in decoded.iter().zip(&records) {
        assert_eq!(got.timestamp, want.timestamp);
    }
}
