//! Several connections appending to the same partition at once: every acknowledged batch
//! is in the log exactly once, at the offset its acknowledgement gave, whole, and each
//! producer's batches in the order it sent them.

use std::collections::BTreeMap;
use std::thread;

use bytes::Bytes;
use gregor_protocol::records::{Compression, NewRecord};

use crate::support::{Broker, DataDir, RawClient};
use crate::wire::{self, error};

const TOPIC: &str = "contended";
const PRODUCERS: usize = 4;
const BATCHES: usize = 150;

#[test]
fn concurrent_producers_to_one_partition_keep_every_batch_whole() {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("log.segment.bytes", "1048576")]);
    let created = wire::create_topic(&broker, TOPIC, 1, &[]);
    if let Some((code, message)) = &created {
        assert_eq!(*code, error::NONE, "CreateTopics: {message:?}");
    }
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 1, created.is_none());
    let addr = broker.addr();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            thread::spawn(move || {
                let mut client = RawClient::connect(addr).expect("connect");
                let codecs = [Compression::None, Compression::Zstd, Compression::Lz4];
                let mut acked = Vec::new();
                for n in 0..BATCHES {
                    let count = 1 + (n * 5 + producer) % 9;
                    let records: Vec<NewRecord> = (0..count)
                        .map(|j| {
                            let mut value = format!("p{producer}-b{n}-r{j}:").into_bytes();
                            value.extend((0..(n * 97 + j * 31) % 3000).map(|x| (x % 251) as u8));
                            NewRecord::new(
                                wire::now_ms(),
                                Some(Bytes::from(format!("p{producer}-b{n}-r{j}"))),
                                Some(Bytes::from(value)),
                            )
                        })
                        .collect();
                    let batch = wire::batch(&records, codecs[(n + producer) % codecs.len()]);
                    let response = wire::produce_ok(
                        &mut client,
                        wire::PRODUCE_BY_NAME,
                        TOPIC,
                        topic_id,
                        0,
                        batch,
                    );
                    acked.push((response.base_offset, n, count));
                }
                acked
            })
        })
        .collect();
    let acked: Vec<Vec<(i64, usize, usize)>> = producers
        .into_iter()
        .map(|p| p.join().expect("producer thread"))
        .collect();

    let mut by_offset: BTreeMap<i64, (usize, usize, usize)> = BTreeMap::new();
    for (producer, list) in acked.iter().enumerate() {
        for pair in list.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "producer {producer}: batch {} acknowledged at {} after batch {} at {}",
                pair[1].1,
                pair[1].0,
                pair[0].1,
                pair[0].0
            );
        }
        for &(offset, n, count) in list {
            let previous = by_offset.insert(offset, (producer, n, count));
            assert!(
                previous.is_none(),
                "two batches acknowledged at offset {offset}"
            );
        }
    }
    let total: usize = by_offset.values().map(|(_, _, c)| c).sum();
    let mut client = wire::connect(&broker);
    let log = wire::fetch_all(&mut client, TOPIC, 0, 0);
    assert_eq!(log.high_watermark, total as i64, "records appended");
    assert_eq!(log.batches.len(), by_offset.len(), "batches appended");
    for (batch, (&offset, &(producer, n, count))) in log.batches.iter().zip(&by_offset) {
        assert_eq!(batch.base_offset(), offset);
        let records: Vec<_> = batch.records().map(|r| r.expect("a record")).collect();
        assert_eq!(records.len(), count, "batch at {offset}");
        for (j, record) in records.iter().enumerate() {
            assert_eq!(
                record.key.as_deref(),
                Some(format!("p{producer}-b{n}-r{j}").as_bytes()),
                "record {} of the batch at {offset}",
                record.offset
            );
        }
    }
    drop(client);
    let mut broker = broker;
    broker.stop();
    crate::disk::check_partition_dir(&crate::disk::partition_dir(data.path(), TOPIC, 0));
}
