//! Hostile input cannot make decoding reserve memory the input does not back.
//!
//! For every message at every version, array counts are rewritten in encodings of random
//! valid values: at each place a count can start, the rest of the input is replaced by a
//! large count and a run of filler bytes that the count fits one byte per element (the
//! bound Kafka's readers check), or fewer. The heap's peak while decoding (counted by a global
//! allocator) must stay within a small multiple of the input, whether decoding succeeds or
//! fails. The 16 MiB LeaveGroup and OffsetFetch requests that once asked for gigabytes
//! are checked on their own.
//!
//! One `#[test]`: the allocator's counters are global, so nothing may run beside it.

use std::collections::HashSet;

use bytes::Bytes;
use gregor_protocol::arbitrary::VersionedStrategy;
use gregor_protocol::messages::*;
use gregor_protocol::{ApiKey, Message, RequestBody, varint};
use peak_alloc::PeakAlloc;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Room for two reservations capped at 256 KiB (`codec::MAX_UP_FRONT_RESERVATION`; a
/// literal so this test also builds against code without it) and the small change of
/// decoding: error paths, `Bytes` bookkeeping.
const SLACK: usize = 2 * 256 * 1024 + 64 * 1024;

/// Filler after a rewritten count: large enough that a count of one element per byte,
/// reserved at full size, breaks [`allowed`] for any element of more than ~17 bytes.
const FILLER: usize = 64 * 1024;

/// A bound on the heap's peak while decoding an input: `factor` times its length, plus
/// `slack`.
#[derive(Clone, Copy)]
struct Limit {
    factor: usize,
    slack: usize,
}

impl Limit {
    fn of(self, input_len: usize) -> usize {
        self.factor * input_len + self.slack
    }
}

/// Filler sizes, each with what its decodes may hold. The large filler catches counts
/// that reserve their elements' whole in-memory size (up to 250 bytes an element); its
/// slack holds one capped reservation. The small one catches counts that reserve more
/// elements than the bytes left can hold: there a reservation may multiply the input by
/// its elements' in-memory size over their smallest encoding, at most ~50 in these
/// definitions (`ListedGroup`: 152 bytes, 3 bytes on the wire at ListGroups v3), where
/// reserving one element per byte multiplies it by the in-memory size.
const FILLERS: [(usize, Limit); 2] = [
    (
        FILLER,
        Limit {
            factor: 8,
            slack: SLACK,
        },
    ),
    (
        1024,
        Limit {
            factor: 64,
            slack: 4096,
        },
    ),
];

/// Messages (name, up to version) whose arrays hold elements of fixed-width fields only, so
/// small on the wire that the large filler really decodes into thousands of them:
/// ProduceResponse v0-v1 partitions are 14 bytes (index, error code, base offset) and ~170
/// in memory, and a growing `Vec` briefly holds its old and new buffers. Such a decode holds
/// what the input backs, at the elements' in-memory ratio; it gets the small filler's limit.
const DENSE_FIXED_WIDTH: &[(&str, i16)] = &[("ProduceResponse", 1)];

/// Random values encoded per message version.
const VALUES: usize = 4;

/// The heap's peak above its level at the start, while `decode` runs and its result is
/// dropped.
fn peak_during(decode: impl FnOnce()) -> usize {
    let base = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    decode();
    ALLOCATOR.peak_usage().saturating_sub(base)
}

/// An array count as `compact` or classic encodings write it.
fn count_bytes(count: usize, compact: bool) -> Vec<u8> {
    if compact {
        let mut out = Vec::new();
        varint::put_unsigned_varint(&mut out, (count + 1) as u32);
        out
    } else {
        (count as i32).to_be_bytes().to_vec()
    }
}

/// Whether an array count (or a tag count) of a value from the strategies (at most a
/// few elements, or null) can start at `pos`.
fn may_be_count(encoded: &[u8], pos: usize, compact: bool) -> bool {
    if compact {
        encoded[pos] <= 8
    } else {
        encoded
            .get(pos..pos + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .is_some_and(|n| (-1..=8).contains(&n))
    }
}

/// Counts to write: one per byte of filler, and fewer, so that elements of a few bytes
/// pass a count check by their smallest size and reach the reservation.
fn hostile_counts(filler: usize) -> [usize; 5] {
    [filler, filler / 2, filler / 4, filler / 8, filler / 24]
}

/// Filler byte: as an int16 or int32 length it is negative but not null, as a varint it
/// never ends, so an element fails at its first string, bytes, array or tag buffer; the
/// decode stops early and the heap holds what the count made it reserve. (Elements of
/// fixed-size fields only do decode from it, as they would from any bytes.)
const FILL: u8 = 0x80;

/// `prefix`, then `count`, then `filler` bytes of [`FILL`].
fn hostile_input(prefix: &[u8], count: usize, compact: bool, filler: usize) -> Bytes {
    let count = count_bytes(count, compact);
    let mut input = Vec::with_capacity(prefix.len() + count.len() + filler);
    input.extend_from_slice(prefix);
    input.extend_from_slice(&count);
    input.resize(input.len() + filler, FILL);
    Bytes::from(input)
}

#[derive(Default)]
struct Report {
    cases: usize,
    failures: Vec<String>,
}

impl Report {
    fn check(
        &mut self,
        what: impl FnOnce() -> String,
        input_len: usize,
        peak: usize,
        limit: Limit,
    ) {
        self.cases += 1;
        if peak > limit.of(input_len) {
            self.failures.push(format!(
                "{}: {input_len} bytes of input, heap peak {peak} bytes (allowed {})",
                what(),
                limit.of(input_len)
            ));
        }
    }
}

/// Rewrites counts in encodings of random values of `T` at every version.
fn sweep<T: Message + VersionedStrategy>(report: &mut Report) {
    let mut runner = TestRunner::deterministic();
    for version in T::VALID_VERSIONS.iter() {
        let compact = T::FLEXIBLE_VERSIONS.contains(version);
        let strategy = T::strategy(version);
        let mut seen = HashSet::new();
        for _ in 0..VALUES {
            let Ok(tree) = strategy.new_tree(&mut runner) else {
                continue;
            };
            let Ok(encoded) = tree.current().to_bytes(version) else {
                continue;
            };
            for pos in 0..encoded.len() {
                if !may_be_count(&encoded, pos, compact) || !seen.insert(encoded[..pos].to_vec()) {
                    continue;
                }
                let dense = DENSE_FIXED_WIDTH
                    .iter()
                    .any(|(name, max)| *name == T::NAME && version <= *max);
                for (filler, limit) in FILLERS {
                    let limit = if dense { FILLERS[1].1 } else { limit };
                    for count in hostile_counts(filler) {
                        let input = hostile_input(&encoded[..pos], count, compact, filler);
                        let len = input.len();
                        let peak = peak_during(|| drop(T::decode(&mut input.clone(), version)));
                        report.check(
                            || format!("{} v{version}, count {count} at byte {pos}", T::NAME),
                            len,
                            peak,
                            limit,
                        );
                    }
                }
            }
        }
    }
}

macro_rules! sweep_all {
    ($($message:path),*) => {{
        let mut report = Report::default();
        let mut messages = 0;
        $( sweep::<$message>(&mut report); messages += 1; )*
        (report, messages)
    }};
}

/// The bytes of a `api_key` request body before its first array count, at `version`;
/// `None` when that version has no array.
fn before_first_array(api_key: ApiKey, version: i16) -> Option<Vec<u8>> {
    let compact = api_key.flexible_versions().contains(version);
    match api_key {
        // group_id, then `members` from v3 (v0-2 name a single member).
        ApiKey::LeaveGroup => (version >= 3).then(|| string_bytes("group", compact)),
        // `groups` comes first from v8; before it, group_id and then `topics`.
        ApiKey::OffsetFetch if version >= 8 => Some(Vec::new()),
        ApiKey::OffsetFetch => Some(string_bytes("group", compact)),
        _ => None,
    }
}

/// The requests of the issue: 16 MiB bodies whose array counts are as large as the
/// classic bound (one byte per element) allows, and smaller, decoded as the broker does.
fn sixteen_mib_requests(report: &mut Report) {
    const BODY: usize = 16 * 1024 * 1024;
    for api_key in [ApiKey::LeaveGroup, ApiKey::OffsetFetch] {
        for version in api_key.valid_versions().iter() {
            let Some(prefix) = before_first_array(api_key, version) else {
                continue;
            };
            let compact = api_key.flexible_versions().contains(version);
            let filler = BODY - prefix.len() - count_bytes(BODY, compact).len();
            for count in [filler, filler / 2, filler / 3, filler / 4, filler / 6] {
                let input = hostile_input(&prefix, count, compact, filler);
                let len = input.len();
                let peak = peak_during(|| {
                    drop(RequestBody::decode(api_key, version, &mut input.clone()));
                });
                report.check(
                    || format!("{} v{version} request, count {count}", api_key.name()),
                    len,
                    peak,
                    FILLERS[0].1,
                );
            }
        }
    }
}

/// Compressed record data whose header or trailer claims a large decompressed size: the
/// claim may size the first buffer only as far as the compressed bytes make plausible.
fn lying_compressed_sizes(report: &mut Report) {
    use gregor_protocol::records::{Compression, DEFAULT_MAX_DECOMPRESSED_SIZE, decompress};
    for codec in [Compression::Gzip, Compression::Zstd] {
        let mut packed = bytes::BytesMut::new();
        compress(codec, b"a few bytes", &mut packed);
        let mut packed = packed.to_vec();
        match codec {
            // gzip's trailer ends with the decompressed size modulo 2^32.
            Compression::Gzip => {
                let at = packed.len() - 4;
                packed[at..].copy_from_slice(&u32::MAX.to_le_bytes());
            }
            // The frame header's content size: rewrite the frame with a 4-byte field.
            _ => packed = zstd_frame_claiming(u32::MAX, b"a few bytes"),
        }
        let len = packed.len();
        let peak = peak_during(|| {
            drop(decompress(codec, &packed, DEFAULT_MAX_DECOMPRESSED_SIZE));
        });
        // The slack is the decoders' own state (flate2's is ~75 KiB; zstd's is C heap,
        // not counted here), not proportional to anything the input claims.
        let limit = Limit {
            factor: 64,
            slack: 256 * 1024,
        };
        report.check(
            || format!("{codec:?} data claiming 4 GiB"),
            len,
            peak,
            limit,
        );
    }
}

/// A record batch whose one record declares a header per two bytes of the rest of its
/// body, of which only the first is a header: the headers' reservation (64 bytes in memory
/// for each two-byte header) must not follow the count.
fn record_with_lying_header_count(report: &mut Report) {
    use bytes::BufMut;
    use gregor_protocol::records::RecordBatch;
    const HEADERS: i32 = 32 * 1024;
    let mut body = Vec::new();
    // Attributes, timestamp delta, offset delta, null key, null value.
    body.extend_from_slice(&[0, 0, 0, 1, 1]);
    varint::put_varint(&mut body, HEADERS);
    // One header (empty key, null value), then bytes that are no header at all.
    body.extend_from_slice(&[0, 1]);
    body.resize(body.len() + 2 * HEADERS as usize, FILL);
    let mut section = Vec::new();
    varint::put_varint(&mut section, body.len() as i32);
    section.extend_from_slice(&body);

    let mut batch = bytes::BytesMut::new();
    batch.put_i64(0); // base offset
    batch.put_i32((49 + section.len()) as i32);
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(0); // CRC, set below
    batch.put_i16(0); // attributes
    batch.put_i32(0); // last offset delta
    batch.put_i64(0); // base timestamp
    batch.put_i64(0); // max timestamp
    batch.put_i64(-1); // producer id
    batch.put_i16(-1); // producer epoch
    batch.put_i32(-1); // base sequence
    batch.put_i32(1); // record count
    batch.put_slice(&section);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let batch = batch.freeze();
    let len = batch.len();
    let peak = peak_during(|| {
        let parsed = RecordBatch::parse(batch.clone()).expect("a well-formed batch header");
        parsed.verify_crc().expect("the CRC matches");
        // Owned records collect their headers (`validate` only walks them).
        let first = parsed.records().next().expect("one record");
        assert!(first.is_err(), "the second header is malformed");
    });
    report.check(
        || format!("a record declaring {HEADERS} headers"),
        len,
        peak,
        FILLERS[0].1,
    );
}

fn compress(codec: gregor_protocol::records::Compression, data: &[u8], out: &mut bytes::BytesMut) {
    gregor_protocol::records::compress(codec, data, out).expect("compresses");
}

/// A zstd frame of `data` in one raw block whose header claims `content_size` bytes.
fn zstd_frame_claiming(content_size: u32, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header descriptor: a 4-byte content size, single segment off, no checksum,
    // no dictionary; then the window descriptor.
    frame.push(0b1000_0000);
    frame.push(0x58);
    frame.extend_from_slice(&content_size.to_le_bytes());
    // One last raw block: header = last (1) | type raw (0) << 1 | size << 3.
    let block = 1u32 | ((data.len() as u32) << 3);
    frame.extend_from_slice(&block.to_le_bytes()[..3]);
    frame.extend_from_slice(data);
    frame
}

fn string_bytes(value: &str, compact: bool) -> Vec<u8> {
    let mut out = if compact {
        count_bytes(value.len(), true)
    } else {
        (value.len() as i16).to_be_bytes().to_vec()
    };
    out.extend_from_slice(value.as_bytes());
    out
}

#[test]
fn hostile_counts_never_reserve_more_than_the_input_backs() {
    let mut report = Report::default();
    sixteen_mib_requests(&mut report);
    lying_compressed_sizes(&mut report);
    record_with_lying_header_count(&mut report);
    let big = report.cases;
    let (sweep, messages) = gregor_protocol::for_each_message!(sweep_all);
    report.cases += sweep.cases;
    report.failures.extend(sweep.failures);
    println!(
        "{big} 16 MiB requests, compressed data and records, {} rewritten counts in {messages} messages",
        report.cases - big
    );
    assert!(report.cases > big);
    assert!(
        report.failures.is_empty(),
        "{} of {} decodes held more heap than allowed:\n{}",
        report.failures.len(),
        report.cases,
        report.failures[..report.failures.len().min(40)].join("\n")
    );
}
