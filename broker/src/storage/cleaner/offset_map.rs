//! The dedupe map of a cleaning: key hash to the latest offset of that key (Kafka's
//! `SkimpyOffsetMap`).
//!
//! A fixed array of slots, each a 16-byte hash of a key and an 8-byte offset, filled by
//! open addressing: the first probes are taken from successive 4-byte windows of the hash
//! and then linearly, as Kafka probes. Memory is fixed when the map is made (the share of
//! `log.cleaner.dedupe.buffer.size` of one cleaner thread), never grows with the keys:
//! the cleaner stops mapping once `log.cleaner.io.buffer.load.factor` of the slots are
//! used, and cleans up to the last offset mapped.
//!
//! Kafka hashes keys with MD5; this map uses XXH3-128, an equally wide (16-byte) hash,
//! much faster and without a cryptographic claim either (MD5's collision resistance is
//! broken anyway). The hash never reaches the disk, so the cleaned log is the same.

use twox_hash::XxHash3_128;

/// Bytes of a key hash.
const HASH_SIZE: usize = 16;
/// Bytes of one slot: the hash and the offset.
pub(crate) const BYTES_PER_ENTRY: usize = HASH_SIZE + 8;

/// Key hash -> latest offset, in a fixed amount of memory (see the module documentation).
#[derive(Debug)]
pub struct OffsetMap {
    /// `slots` entries of `BYTES_PER_ENTRY` bytes; an all-zero hash marks a free slot
    /// (a key hashing to zeros is stored as hash 1, a collision of no consequence).
    bytes: Vec<u8>,
    slots: usize,
    entries: usize,
    /// The largest offset put, -1 when empty (Kafka's `latestOffset`).
    latest_offset: i64,
    lookups: u64,
    probes: u64,
}

impl OffsetMap {
    /// A map of `memory` bytes (at least one slot).
    pub fn new(memory: usize) -> OffsetMap {
        let slots = (memory / BYTES_PER_ENTRY).max(1);
        OffsetMap {
            bytes: vec![0; slots * BYTES_PER_ENTRY],
            slots,
            entries: 0,
            latest_offset: -1,
            lookups: 0,
            probes: 0,
        }
    }

    /// Number of slots (Kafka's `slots`).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Bytes of memory the map holds.
    pub fn memory(&self) -> usize {
        self.bytes.len()
    }

    /// Number of distinct key hashes stored.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The largest offset put or recorded with [`Self::update_latest_offset`]; -1 if none.
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Raises the latest offset (Kafka records a batch's last offset even when its last
    /// records have no key).
    pub fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }

    /// Fraction of the slots used.
    pub fn utilization(&self) -> f64 {
        self.entries as f64 / self.slots as f64
    }

    /// Average probes per lookup so far (1.0 without collisions).
    pub fn collision_rate(&self) -> f64 {
        if self.lookups == 0 {
            0.0
        } else {
            self.probes as f64 / self.lookups as f64
        }
    }

    /// Empties the map for the next cleaning.
    pub fn clear(&mut self) {
        self.bytes.fill(0);
        self.entries = 0;
        self.latest_offset = -1;
        self.lookups = 0;
        self.probes = 0;
    }

    /// Records `offset` as the latest offset of `key`. Fails (`false`) only when every
    /// slot is taken by another key.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = hash(key);
        let Some(slot) = self.find(&hash) else {
            return false;
        };
        let at = slot * BYTES_PER_ENTRY;
        if self.bytes[at..at + HASH_SIZE].iter().all(|&b| b == 0) {
            self.bytes[at..at + HASH_SIZE].copy_from_slice(&hash);
            self.entries += 1;
        }
        self.bytes[at + HASH_SIZE..at + BYTES_PER_ENTRY].copy_from_slice(&offset.to_be_bytes());
        self.update_latest_offset(offset);
        true
    }

    /// The latest offset of `key`, -1 if it is not in the map (Kafka's `get`).
    pub fn get(&mut self, key: &[u8]) -> i64 {
        let hash = hash(key);
        match self.find(&hash) {
            Some(slot) => {
                let at = slot * BYTES_PER_ENTRY;
                if self.bytes[at..at + HASH_SIZE] == hash {
                    i64::from_be_bytes(
                        self.bytes[at + HASH_SIZE..at + BYTES_PER_ENTRY]
                            .try_into()
                            .expect("8 bytes"),
                    )
                } else {
                    -1
                }
            }
            None => -1,
        }
    }

    /// The slot holding `hash`, else the first free slot of its probe sequence; `None` if
    /// the map is full of other hashes.
    fn find(&mut self, hash: &[u8; HASH_SIZE]) -> Option<usize> {
        self.lookups += 1;
        // Kafka's probe sequence: 4-byte windows of the hash, then linear steps from the last.
        let windows = HASH_SIZE - 3;
        let mut slot = 0;
        for attempt in 0..windows + self.slots {
            self.probes += 1;
            slot = if attempt < windows {
                let window = u32::from_be_bytes(hash[attempt..attempt + 4].try_into().expect("4"));
                (window & 0x7fff_ffff) as usize % self.slots
            } else {
                (slot + 1) % self.slots
            };
            let at = slot * BYTES_PER_ENTRY;
            let stored = &self.bytes[at..at + HASH_SIZE];
            if stored == hash || stored.iter().all(|&b| b == 0) {
                return Some(slot);
            }
        }
        None
    }
}

/// The 16-byte hash of a key (never all zeros: those mark free slots).
fn hash(key: &[u8]) -> [u8; HASH_SIZE] {
    let mut hash = XxHash3_128::oneshot(key).to_be_bytes();
    if hash.iter().all(|&b| b == 0) {
        hash[HASH_SIZE - 1] = 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key_and_reports_absent_keys() {
        let mut map = OffsetMap::new(1000 * BYTES_PER_ENTRY);
        for i in 0..500i64 {
            assert!(map.put(format!("key-{}", i % 100).as_bytes(), i));
        }
        assert_eq!(map.len(), 100);
        assert_eq!(map.get(b"key-7"), 407);
        assert_eq!(map.get(b"absent"), -1);
        assert_eq!(map.latest_offset(), 499);
        map.clear();
        assert_eq!(map.get(b"key-7"), -1);
        assert!(map.is_empty());
    }

    #[test]
    fn a_full_map_refuses_new_keys_but_updates_old_ones() {
        let mut map = OffsetMap::new(4 * BYTES_PER_ENTRY);
        for i in 0..4 {
            assert!(map.put(&[i], i64::from(i)));
        }
        assert!(!map.put(b"one more", 9));
        assert!(map.put(&[2], 10));
        assert_eq!(map.get(&[2]), 10);
    }
}
