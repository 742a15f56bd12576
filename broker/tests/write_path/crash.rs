//! kill -9 in the middle of an acks=-1 stream with `log.flush.interval.messages=1`: after
//! the restart every acknowledged record is there exactly once, in order, followed at most
//! by the batch that was in flight, and everything up to the high watermark decodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::ApiKey;
use gregor_protocol::Uuid;
use gregor_protocol::records::{Compression, Header, NewRecord};

use crate::disk;
use crate::support::{Broker, DataDir, advertised_versions};
use crate::wire::{self, error};

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 3;

/// Acknowledged Produce requests (over all partitions) before each kill, before the
/// jitter of [`kill_points`].
const KILL_AFTER: [usize; 6] = [30, 240, 90, 400, 12, 160];

/// The round after whose kill the index files are damaged too.
const DAMAGE_INDEXES_ROUND: usize = 1;

/// [`KILL_AFTER`] plus up to 50% jitter from `GREGOR_CRASH_SEED` (default: the clock),
/// printed so that a failure can be replayed.
fn kill_points() -> Vec<usize> {
    let seed: u64 = std::env::var("GREGOR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| wire::now_ms() as u64 % 1_000_003);
    println!("crash test: GREGOR_CRASH_SEED={seed}");
    let mut x = seed;
    KILL_AFTER
        .iter()
        .map(|&base| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            base + ((x >> 33) as usize) % (base / 2 + 1)
        })
        .collect()
}

/// Damages the index files of the active segments the way a crash or an operator can:
/// partition 0 loses both, partition 1's offset index gets an entry past the end of the
/// log, partition 2's time index is cut to a partial entry.
fn damage_indexes(data: &std::path::Path) {
    for partition in 0..PARTITIONS {
        let dir = disk::partition_dir(data, TOPIC, partition);
        let base = *disk::segment_bases(&dir).last().expect("a segment");
        let index = disk::segment_file(&dir, base, "index");
        let timeindex = disk::segment_file(&dir, base, "timeindex");
        match partition {
            0 => {
                let _ = std::fs::remove_file(&index);
                let _ = std::fs::remove_file(&timeindex);
            }
            1 => {
                let mut bytes = std::fs::read(&index).unwrap_or_default();
                bytes.extend_from_slice(&1_000_000i32.to_be_bytes());
                bytes.extend_from_slice(&(u32::MAX / 2).to_be_bytes());
                std::fs::write(&index, bytes).expect("write the offset index");
            }
            _ => {
                std::fs::write(&timeindex, [0xff; 5]).expect("write the time index");
            }
        }
    }
}

const PROPS: &[(&str, &str)] = &[
    ("num.partitions", "3"),
    ("log.flush.interval.messages", "1"),
    // Small segments (Kafka 4's smallest, KIP-1030): the partitions roll a few, so a
    // crash may come right after a roll.
    ("log.segment.bytes", "1048576"),
];

/// One record as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    timestamp: i64,
    key: Bytes,
    value: Bytes,
    headers: Vec<(String, Bytes)>,
}

/// A batch sent to one partition.
#[derive(Clone, Debug)]
struct SentBatch {
    records: Vec<Sent>,
    codec: Compression,
}

/// What one producer thread saw: the acknowledged batches with their base offsets, and
/// the batch that was in flight when the connection broke.
#[derive(Debug, Default)]
struct ProducerLog {
    acked: Vec<(i64, SentBatch)>,
    in_flight: Option<SentBatch>,
    error: Option<String>,
}

fn make_batch(round: usize, partition: i32, seq: usize) -> SentBatch {
    let codecs = [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
        Compression::Gzip,
    ];
    let count = 1 + (seq * 7 + partition as usize) % 12;
    let now = wire::now_ms();
    let records = (0..count)
        .map(|j| {
            let len = (seq * 131 + j * 977) % 1500;
            let mut value = format!("r{round}-p{partition}-s{seq}-{j}:").into_bytes();
            value.extend((0..len).map(|x| (x * 31 + seq + j) as u8));
            Sent {
                timestamp: now + j as i64,
                key: Bytes::from(format!("r{round}-p{partition}-s{seq}-{j}")),
                value: Bytes::from(value),
                headers: vec![
                    ("seq".into(), Bytes::from(seq.to_string())),
                    ("round".into(), Bytes::from(round.to_string())),
                ],
            }
        })
        .collect();
    SentBatch {
        records,
        codec: codecs[seq % codecs.len()],
    }
}

fn encode(batch: &SentBatch) -> Bytes {
    let records: Vec<NewRecord> = batch
        .records
        .iter()
        .map(|r| NewRecord {
            timestamp: r.timestamp,
            key: Some(r.key.clone()),
            value: Some(r.value.clone()),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| Header::new(k.clone(), Some(v.clone())))
                .collect(),
        })
        .collect();
    wire::batch(&records, batch.codec)
}

/// Produces batches to `partition` one request at a time (acks=-1) until the connection
/// fails or `stop` is set.
fn produce_until_broken(
    addr: std::net::SocketAddr,
    round: usize,
    partition: i32,
    version: i16,
    topic_id: Uuid,
    acked_requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> ProducerLog {
    let mut log = ProducerLog::default();
    let Ok(mut client) = crate::support::RawClient::connect(addr) else {
        log.error = Some("could not connect".into());
        return log;
    };
    for seq in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let batch = make_batch(round, partition, seq);
        let request = wire::produce_request(TOPIC, topic_id, -1, vec![(partition, encode(&batch))]);
        match wire::produce(&mut client, version, &request) {
            Ok(mut responses) => {
                let response = responses.remove(0);
                if response.error_code != error::NONE {
                    log.error = Some(format!("Produce to partition {partition}: {response:?}"));
                    break;
                }
                log.acked.push((response.base_offset, batch));
                acked_requests.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                // The broker died with this request unanswered: it may or may not be there.
                log.in_flight = Some(batch);
                break;
            }
        }
    }
    log
}

/// Checks partition `partition` against `model` (the batches it must hold, in order), and
/// accepts the in-flight batch after them if it is there (adding it to the model). Returns
/// the high watermark and whether the in-flight batch was there.
fn check_partition(
    client: &mut crate::support::RawClient,
    partition: i32,
    model: &mut Vec<(i64, SentBatch)>,
    in_flight: Option<SentBatch>,
    context: &str,
) -> (i64, bool) {
    let log = wire::fetch_all(client, TOPIC, partition, 0);
    let fetched: Vec<_> = log.batches.iter().collect();
    let expected_end = model
        .last()
        .map_or(0, |(base, b)| base + b.records.len() as i64);
    let describe = |n: usize| {
        format!(
            "{context}: partition {partition}: {} batches fetched (high watermark {}), {} \
             acknowledged ending at {expected_end}; first difference at batch #{n}",
            fetched.len(),
            log.high_watermark,
            model.len()
        )
    };
    assert!(
        fetched.len() >= model.len(),
        "{} (acknowledged batches lost)",
        describe(fetched.len())
    );
    let same = |batch: &gregor_protocol::records::RecordBatch, sent: &SentBatch| -> bool {
        let records: Vec<_> = batch.records().map(|r| r.expect("a record")).collect();
        records.len() == sent.records.len()
            && records.iter().zip(&sent.records).all(|(got, want)| {
                got.timestamp == want.timestamp
                    && got.key.as_ref() == Some(&want.key)
                    && got.value.as_ref() == Some(&want.value)
                    && got
                        .headers
                        .iter()
                        .map(|h| (h.key.as_ref(), h.value.as_ref()))
                        .eq(want.headers.iter().map(|(k, v)| (k.as_bytes(), Some(v))))
            })
    };
    for (n, ((base, sent), got)) in model.iter().zip(&fetched).enumerate() {
        assert_eq!(got.base_offset(), *base, "{} (offset moved)", describe(n));
        assert!(same(got, sent), "{} (records differ)", describe(n));
        assert_eq!(got.compression(), sent.codec, "{} (codec)", describe(n));
    }
    let extra = &fetched[model.len()..];
    let found = match (extra, in_flight) {
        ([], _) => false,
        ([got], Some(sent)) if got.base_offset() == expected_end && same(got, &sent) => {
            model.push((expected_end, sent));
            true
        }
        (extra, in_flight) => panic!(
            "{}: {} unexpected batches after the acknowledged ones (first at offset {}); the \
             batch in flight had {:?} records",
            describe(model.len()),
            extra.len(),
            extra[0].base_offset(),
            in_flight.map(|b| b.records.len())
        ),
    };
    assert_eq!(
        wire::list_offset_ok(client, TOPIC, partition, wire::LATEST).0,
        log.high_watermark,
        "{context}: ListOffsets latest of partition {partition}"
    );
    assert_eq!(
        wire::list_offset_ok(client, TOPIC, partition, wire::EARLIEST).0,
        0,
        "{context}: ListOffsets earliest of partition {partition}"
    );
    (log.high_watermark, found)
}

#[test]
fn acknowledged_records_survive_kill9_mid_stream() {
    let data = DataDir::builder().build();
    let mut broker = Broker::start_with(&data, PROPS);
    let created = wire::create_topic(&broker, TOPIC, PARTITIONS, &[]);
    match &created {
        Some((code, message)) => {
            assert_eq!(*code, error::NONE, "CreateTopics {TOPIC}: {message:?}")
        }
        None => {
            println!("note: CreateTopics not served: {TOPIC} is auto-created (num.partitions=3)")
        }
    }
    let topic_id = wire::wait_for_topic(&broker, TOPIC, PARTITIONS as usize, created.is_none());
    let version = wire::PRODUCE_BY_NAME;
    let mut model: Vec<Vec<(i64, SentBatch)>> = vec![Vec::new(); PARTITIONS as usize];
    let started = Instant::now();
    let mut found_in_flight = 0;
    for (round, kill_after) in kill_points().into_iter().enumerate() {
        // Requests by name, and by topic id (v13) every other round.
        let by_id =
            advertised_versions(broker.addr(), ApiKey::Produce).is_some_and(|(_, max)| max >= 13);
        let version = if round % 2 == 1 && by_id { 13 } else { version };
        let acked_requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..PARTITIONS)
            .map(|partition| {
                let (acked, stop, addr) = (acked_requests.clone(), stop.clone(), broker.addr());
                thread::spawn(move || {
                    produce_until_broken(addr, round, partition, version, topic_id, acked, stop)
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(90);
        while acked_requests.load(Ordering::Relaxed) < kill_after {
            if Instant::now() > deadline || producers.iter().all(|p| p.is_finished()) {
                stop.store(true, Ordering::Relaxed);
                let logs: Vec<_> = producers.into_iter().map(|p| p.join()).collect();
                panic!(
                    "round {round}: {} of {kill_after} requests acknowledged before the producers \
                     stopped or time ran out: {:?}",
                    acked_requests.load(Ordering::Relaxed),
                    logs.iter()
                        .map(|l| l.as_ref().map(|l| l.error.clone()))
                        .collect::<Vec<_>>()
                );
            }
            thread::sleep(Duration::from_millis(1));
        }
        broker.kill9();
        if round == DAMAGE_INDEXES_ROUND {
            damage_indexes(data.path());
        }
        stop.store(true, Ordering::Relaxed);
        let logs: Vec<ProducerLog> = producers
            .into_iter()
            .map(|p| p.join().expect("producer thread"))
            .collect();
        for (partition, log) in logs.iter().enumerate() {
            assert!(
                log.error.is_none(),
                "round {round}: partition {partition}: {:?}",
                log.error
            );
        }
        let mut in_flight = Vec::new();
        for (partition, log) in logs.into_iter().enumerate() {
            // New appends continue where the recovered log ended.
            let end = model[partition]
                .last()
                .map_or(0, |(base, b)| base + b.records.len() as i64);
            if let Some((first, _)) = log.acked.first() {
                assert_eq!(
                    *first, end,
                    "round {round}: partition {partition}: the first append after the restart \
                     got base offset {first}, the recovered log ended at {end}"
                );
            }
            model[partition].extend(log.acked);
            in_flight.push(log.in_flight);
        }
        let acked: usize = model.iter().flatten().map(|(_, b)| b.records.len()).sum();

        broker = Broker::start_with(&data, PROPS);
        let mut client = wire::connect(&broker);
        let mut ends = Vec::new();
        for (partition, in_flight) in in_flight.into_iter().enumerate() {
            let context =
                format!("round {round} (kill -9 after {kill_after} acknowledged requests)");
            let (end, found) = check_partition(
                &mut client,
                partition as i32,
                &mut model[partition],
                in_flight,
                &context,
            );
            ends.push(end);
            found_in_flight += usize::from(found);
        }
        // The files on disk: whole batches and indexes that match them.
        for partition in 0..PARTITIONS {
            disk::check_partition_dir(&disk::partition_dir(data.path(), TOPIC, partition));
        }
        println!(
            "round {round}: killed after {kill_after} acknowledged requests; {acked} records \
             acknowledged in all; recovered ends {ends:?}"
        );
    }
    broker.stop();
    println!(
        "crash test: {} rounds in {:?}; {found_in_flight} unacknowledged in-flight batches \
         were on disk after a restart",
        KILL_AFTER.len(),
        started.elapsed()
    );
}
