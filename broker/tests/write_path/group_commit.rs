//! Group commit under kill -9 (issue 14): with `log.flush.interval.messages=1` and acks=-1,
//! several producers write to the same partition at once (so their appends share
//! `fdatasync`s) and to a second one; after a kill -9 and a restart every acknowledged
//! batch is at the offset it was acknowledged with, with its records, and every batch up
//! to the high watermark decodes. Batches in flight at the kill may or may not be there.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::Uuid;
use gregor_protocol::records::{Compression, NewRecord};

use crate::disk;
use crate::support::{Broker, DataDir, RawClient};
use crate::wire::{self, error};

const TOPIC: &str = "group-commit";
/// Producers per partition: partition 0 gets [`SHARED`] of them at once, partition 1 one.
const SHARED: usize = 6;
const PROPS: &[(&str, &str)] = &[
    ("num.partitions", "2"),
    ("log.flush.interval.messages", "1"),
];

/// The values of one batch of producer `producer`, request `seq`.
fn values(round: usize, producer: usize, seq: usize) -> Vec<Bytes> {
    (0..3)
        .map(|i| {
            Bytes::from(format!(
                "r{round}-p{producer}-s{seq}-{i}-{}",
                "x".repeat(seq % 50)
            ))
        })
        .collect()
}

/// Produces to `partition` until the connection breaks or `stop`; the acknowledged
/// (base offset, values).
fn produce(
    addr: std::net::SocketAddr,
    topic_id: Uuid,
    round: usize,
    producer: usize,
    partition: i32,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<(i64, Vec<Bytes>)>, String> {
    let mut client = RawClient::connect(addr).map_err(|e| e.to_string())?;
    let mut log = Vec::new();
    for seq in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let values = values(round, producer, seq);
        let records: Vec<NewRecord> = values
            .iter()
            .map(|v| NewRecord::new(wire::now_ms(), None, Some(v.clone())))
            .collect();
        let request = wire::produce_request(
            TOPIC,
            topic_id,
            -1,
            vec![(partition, wire::batch(&records, Compression::None))],
        );
        match wire::produce(&mut client, wire::PRODUCE_BY_NAME, &request) {
            Ok(mut responses) => {
                let response = responses.remove(0);
                if response.error_code != error::NONE {
                    return Err(format!("Produce to {partition}: {response:?}"));
                }
                log.push((response.base_offset, values));
                acked.fetch_add(1, Ordering::Relaxed);
            }
            // The broker died with this request unanswered.
            Err(_) => break,
        }
    }
    Ok(log)
}

#[test]
fn concurrent_producers_sharing_fsyncs_lose_nothing_on_kill9() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start_with(&data, PROPS);
    let created = wire::create_topic(&broker, TOPIC, 2, &[]);
    if let Some((code, message)) = &created {
        assert_eq!(*code, error::NONE, "CreateTopics {TOPIC}: {message:?}");
    }
    let topic_id = wire::wait_for_topic(&broker, TOPIC, 2, created.is_none());
    // Every acknowledged batch so far, by partition and base offset.
    let mut model: Vec<HashMap<i64, Vec<Bytes>>> = vec![HashMap::new(), HashMap::new()];
    for (round, kill_after) in [150usize, 40, 300].into_iter().enumerate() {
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..=SHARED)
            .map(|producer| {
                let partition = if producer < SHARED { 0 } else { 1 };
                let (acked, stop, addr) = (acked.clone(), stop.clone(), broker.addr());
                let handle = thread::spawn(move || {
                    produce(addr, topic_id, round, producer, partition, acked, stop)
                });
                (partition, handle)
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::Relaxed) < kill_after {
            assert!(
                Instant::now() < deadline && !producers.iter().all(|(_, p)| p.is_finished()),
                "round {round}: only {} of {kill_after} requests acknowledged",
                acked.load(Ordering::Relaxed)
            );
            thread::sleep(Duration::from_millis(1));
        }
        broker.kill9();
        stop.store(true, Ordering::Relaxed);
        for (partition, handle) in producers {
            let log = handle.join().expect("producer thread");
            let log = log.unwrap_or_else(|e| panic!("round {round}: {e}"));
            for (base, values) in log {
                let previous = model[partition as usize].insert(base, values);
                assert!(
                    previous.is_none(),
                    "round {round}: offset {base} of partition {partition} acknowledged twice"
                );
            }
        }

        broker = Broker::start_with(&data, PROPS);
        let mut client = wire::connect(&broker);
        for (partition, acked) in model.iter().enumerate() {
            let log = wire::fetch_all(&mut client, TOPIC, partition as i32, 0);
            let by_offset: HashMap<i64, Vec<Bytes>> = log
                .batches
                .iter()
                .map(|batch| {
                    let values = batch
                        .records()
                        .map(|r| r.expect("a record").value.expect("a value"))
                        .collect();
                    (batch.base_offset(), values)
                })
                .collect();
            for (base, values) in acked {
                assert_eq!(
                    by_offset.get(base),
                    Some(values),
                    "round {round}: partition {partition}: the batch acknowledged at offset \
                     {base} is lost or changed after kill -9 (high watermark {})",
                    log.high_watermark
                );
            }
            disk::check_partition_dir(&disk::partition_dir(data.path(), TOPIC, partition as i32));
        }
        println!(
            "round {round}: killed after {kill_after} acknowledged requests; {} batches \
             acknowledged in all survived",
            model.iter().map(HashMap::len).sum::<usize>()
        );
    }
    broker.stop();
}
