//! The records the Python producer drivers send, regenerated here from their index (the
//! same rules as `tests/clients/_records.py`), and the digests the consumer drivers print.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::support::{ClientOutput, Json, JsonExt};

/// Record `i` of a run tagged `tag`, as `_records.py` generates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Index in the run.
    pub i: usize,
    /// Create timestamp: the run's base plus `i`.
    pub timestamp: i64,
    /// Key (`None`: null).
    pub key: Option<Vec<u8>>,
    /// Value (`None`: null).
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The 64 KiB of pseudo-random bytes values are cut from.
pub fn pattern() -> Vec<u8> {
    let mut x: u64 = 0x853c_49e6_748f_ea9b;
    (0..65536)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// Record `i` of the run `tag` starting at `base_ts`; `null_headers`: whether the header
/// with a null value is there (kafka-python cannot send one).
pub fn generate(
    pattern: &[u8],
    tag: &str,
    base_ts: i64,
    i: usize,
    null_headers: bool,
) -> Generated {
    let key = (i % 53 != 7).then(|| format!("{tag}-key-{}", (i * 7) % 1009).into_bytes());
    let value = if i % 97 == 5 && i % 53 != 7 {
        None
    } else if i % 100 == 42 {
        Some(Vec::new())
    } else {
        let h = (i as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff;
        let size = if i % 1000 == 999 {
            20000
        } else {
            (h % 400) as usize
        };
        let off = ((h >> 8) % (65536 - size as u64)) as usize;
        let mut v = format!("{tag}-{i}:").into_bytes();
        v.extend_from_slice(&pattern[off..off + size]);
        Some(v)
    };
    let mut headers = Vec::new();
    let kind = i % 3;
    if kind >= 1 {
        headers.push(("i".to_string(), Some(i.to_string().into_bytes())));
    }
    if kind == 2 {
        headers.push(("tag".to_string(), Some(tag.as_bytes().to_vec())));
        headers.push(("empty".to_string(), Some(Vec::new())));
    }
    if null_headers && i % 7 == 3 {
        headers.push(("null".to_string(), None));
    }
    Generated {
        i,
        timestamp: base_ts + i as i64,
        key,
        value,
        headers,
    }
}

/// CRC-32 (IEEE, as Python's `zlib.crc32`).
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (n, slot) in table.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        table
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One record as a consumer driver reported it (`_records.digest_line`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    /// Length of the value, -1 for null.
    pub value_len: i64,
    /// CRC-32 of the value (0 for null).
    pub value_crc: u32,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Digest {
    /// The digest of a generated record at `partition`/`offset`.
    pub fn of(record: &Generated, partition: i32, offset: i64) -> Digest {
        Digest {
            partition,
            offset,
            timestamp: record.timestamp,
            key: record.key.clone(),
            value_len: record.value.as_ref().map_or(-1, |v| v.len() as i64),
            value_crc: record.value.as_deref().map_or(0, crc32),
            headers: record.headers.clone(),
        }
    }
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn nullable_hex(value: &Json) -> Option<Vec<u8>> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(unhex(s)),
        other => panic!("expected hex or null, got {other}"),
    }
}

/// The digest lines a consumer driver printed.
pub fn parse_digests(output: &ClientOutput) -> Vec<Digest> {
    output
        .stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let doc = Json::parse(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            Digest {
                partition: doc.field("p").as_i64().expect("p") as i32,
                offset: doc.field("o").as_i64().expect("o"),
                timestamp: doc.field("t").as_i64().expect("t"),
                key: nullable_hex(doc.field("k")),
                value_len: doc.field("vl").as_i64().expect("vl"),
                value_crc: doc.field("vc").as_u64().expect("vc") as u32,
                headers: doc
                    .field("h")
                    .as_array()
                    .expect("h")
                    .iter()
                    .map(|pair| {
                        let pair = pair.as_array().expect("header pair");
                        (
                            pair[0].as_str().expect("header key").to_string(),
                            nullable_hex(&pair[1]),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

/// What a producer driver acknowledged: `(i, partition, offset)` in index order.
pub fn parse_acks(output: &ClientOutput) -> Vec<(usize, i32, i64)> {
    output
        .stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            let mut next = || parts.next().unwrap_or_else(|| panic!("ack line {line:?}"));
            let i = next().parse().expect("index");
            let p = next().parse().expect("partition");
            let o = next().parse().expect("offset");
            (i, p, o)
        })
        .collect()
}

/// Checks what a producer acknowledged: every record `0..count` once, each partition's
/// offsets `0..n` without gaps or repeats, and records of a partition in the order they
/// were sent. Returns the number of records per partition.
pub fn check_acks(client: &str, acks: &[(usize, i32, i64)], count: usize) -> BTreeMap<i32, i64> {
    assert_eq!(
        acks.len(),
        count,
        "{client}: {} of {count} records acknowledged",
        acks.len()
    );
    for (n, (i, _, _)) in acks.iter().enumerate() {
        assert_eq!(*i, n, "{client}: acknowledgements out of index order");
    }
    let mut by_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for &(i, p, o) in acks {
        by_partition.entry(p).or_default().push((o, i));
    }
    let mut counts = BTreeMap::new();
    for (p, mut entries) in by_partition {
        entries.sort_unstable();
        for (n, (o, i)) in entries.iter().enumerate() {
            assert_eq!(
                *o, n as i64,
                "{client}: partition {p}: offsets acknowledged are not 0..n (record {i} at {o}, \
                 expected offset {n})"
            );
            if n > 0 {
                assert!(
                    entries[n - 1].1 < *i,
                    "{client}: partition {p}: record {i} at offset {o} after record {} \
                     (out of send order)",
                    entries[n - 1].1
                );
            }
        }
        counts.insert(p, entries.len() as i64);
    }
    counts
}

/// Checks that `consumed` is exactly the acknowledged records, each at its acknowledged
/// partition and offset, equal to the generated record (timestamp, key, value length and
/// CRC, headers), with each partition in offset order.
pub fn check_consumed(
    client: &str,
    consumed: &[Digest],
    acks: &[(usize, i32, i64)],
    expected: impl Fn(usize) -> Generated,
) {
    let mut problems = Vec::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for d in consumed {
        if let Some(prev) = last.insert(d.partition, d.offset)
            && d.offset <= prev
        {
            problems.push(format!(
                "partition {}: offset {} read after {prev}",
                d.partition, d.offset
            ));
        }
    }
    let by_position: BTreeMap<(i32, i64), &Digest> = consumed
        .iter()
        .map(|d| ((d.partition, d.offset), d))
        .collect();
    if consumed.len() != acks.len() {
        problems.push(format!(
            "{} records read, {} acknowledged",
            consumed.len(),
            acks.len()
        ));
    }
    let mut differing = 0;
    for &(i, p, o) in acks {
        let want = Digest::of(&expected(i), p, o);
        match by_position.get(&(p, o)) {
            None => {
                differing += 1;
                if differing <= 5 {
                    problems.push(format!("record {i} (partition {p} offset {o}) not read"));
                }
            }
            Some(got) if **got != want => {
                differing += 1;
                if differing <= 5 {
                    let mut why = format!("record {i} (partition {p} offset {o}) differs:");
                    if got.timestamp != want.timestamp {
                        let _ = write!(why, " timestamp {} != {}", got.timestamp, want.timestamp);
                    }
                    if got.key != want.key {
                        let _ = write!(why, " key {:?} != {:?}", got.key, want.key);
                    }
                    if (got.value_len, got.value_crc) != (want.value_len, want.value_crc) {
                        let _ = write!(
                            why,
                            " value (len, crc) ({}, {:08x}) != ({}, {:08x})",
                            got.value_len, got.value_crc, want.value_len, want.value_crc
                        );
                    }
                    if got.headers != want.headers {
                        let _ = write!(why, " headers {:?} != {:?}", got.headers, want.headers);
                    }
                    problems.push(why);
                }
            }
            Some(_) => {}
        }
    }
    if differing > 5 {
        problems.push(format!(
            "{} more records missing or differing",
            differing - 5
        ));
    }
    assert!(
        problems.is_empty(),
        "{client} did not read back what was acknowledged:\n  {}",
        problems.join("\n  ")
    );
}
