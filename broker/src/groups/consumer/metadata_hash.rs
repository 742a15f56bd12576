//! The metadata hash of a consumer group (KIP-1101), as Kafka 4.1+ computes it in
//! `org.apache.kafka.coordinator.group.Utils` (`computeTopicHash`, `computeGroupHash`).
//!
//! Kafka feeds hash4j's streaming XXH3-64 (seed 0). hash4j writes integers as
//! little-endian bytes and a `String` as its UTF-16 code units (little-endian) followed by
//! its length in code units as an `int`, so the hash of the concatenated bytes below is the
//! value Kafka stores in `ConsumerGroupMetadataValue.MetadataHash`. A group written by
//! Kafka therefore needs no extra epoch bump when this broker reads it, and the other way
//! round.

use std::collections::BTreeMap;

use gregor_protocol::Uuid;
use twox_hash::XxHash3_64;

use crate::cluster::image::{MetadataImage, TopicImage};

/// Kafka's `TOPIC_HASH_MAGIC_BYTE`: the version of the topic hash layout.
const TOPIC_HASH_MAGIC_BYTE: u8 = 0;

/// The bytes hash4j's `HashStream64` would consume, collected for one XXH3 call.
#[derive(Default)]
struct Stream(Vec<u8>);

impl Stream {
    fn byte(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    fn int(&mut self, value: i32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn long(&mut self, value: i64) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// hash4j's `putString`: the UTF-16 code units, then their count.
    fn string(&mut self, value: &str) -> &mut Self {
        let mut units = 0i32;
        for unit in value.encode_utf16() {
            self.0.extend_from_slice(&unit.to_le_bytes());
            units += 1;
        }
        self.int(units)
    }

    fn finish(&self) -> i64 {
        XxHash3_64::oneshot(&self.0) as i64
    }
}

/// The hash of one topic: its id, name, partition count and, per partition, the sorted
/// racks of the replicas' brokers (brokers without a rack, or unknown, add nothing; Kafka's
/// `KRaftCoordinatorMetadataImage.partitionRacks`).
pub fn topic_hash(topic: &TopicImage, image: &MetadataImage) -> i64 {
    hash_topic(
        &topic.name,
        topic.id,
        topic.partitions.len() as i32,
        |index| {
            topic
                .partition(index)
                .map(|p| {
                    p.replicas
                        .iter()
                        .filter_map(|id| image.broker(*id).and_then(|b| b.rack.as_deref()))
                        .collect()
                })
                .unwrap_or_default()
        },
    )
}

/// [`topic_hash`] from its parts: `racks(index)` gives partition `index`'s replica racks.
pub fn hash_topic<'a>(
    name: &str,
    id: Uuid,
    partitions: i32,
    racks: impl Fn(i32) -> Vec<&'a str>,
) -> i64 {
    let (msb, lsb) = id.as_u64_pair();
    let mut stream = Stream::default();
    stream
        .byte(TOPIC_HASH_MAGIC_BYTE)
        .long(msb as i64)
        .long(lsb as i64)
        .string(name)
        .int(partitions);
    for index in 0..partitions {
        let mut racks = racks(index);
        // Java sorts by UTF-16 order.
        racks.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        stream.int(index);
        for rack in racks {
            stream.int(rack.encode_utf16().count() as i32).string(rack);
        }
    }
    stream.finish()
}

/// The group's hash over its subscribed topics' hashes in topic-name order; 0 for none.
pub fn group_hash<'a>(topic_hashes: impl IntoIterator<Item = (&'a str, i64)>) -> i64 {
    let mut sorted: Vec<(&str, i64)> = topic_hashes.into_iter().collect();
    if sorted.is_empty() {
        return 0;
    }
    sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    let mut stream = Stream::default();
    for (_, hash) in sorted {
        stream.long(hash);
    }
    stream.finish()
}

/// [`group_hash`] of a name-keyed map of hashes.
pub fn group_hash_of(topic_hashes: &BTreeMap<String, i64>) -> i64 {
    group_hash(
        topic_hashes
            .iter()
            .map(|(name, hash)| (name.as_str(), *hash)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::PartitionImage;
    use gregor_protocol::MetadataRecord;
    use gregor_protocol::messages::register_broker_record::RegisterBrokerRecord;

    /// An image with brokers `(id, rack)`, registered through their records.
    fn image(brokers: &[(i32, Option<&str>)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for (offset, (id, rack)) in brokers.iter().enumerate() {
            let record = MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: *id,
                incarnation_id: Uuid::from_u64_pair(1, *id as u64),
                broker_epoch: offset as i64,
                rack: rack.map(|r| r.to_string().into()),
                ..Default::default()
            });
            image.apply(offset as i64, &record).expect("register");
        }
        image
    }

    fn partition(replicas: &[i32]) -> PartitionImage {
        let mut p = PartitionImage::from_record(&Default::default()).expect("partition");
        p.replicas = replicas.to_vec();
        p
    }

    fn topic(name: &str, id: (u64, u64), replicas: &[&[i32]]) -> TopicImage {
        TopicImage {
            name: name.into(),
            id: Uuid::from_u64_pair(id.0, id.1),
            partitions: replicas
                .iter()
                .enumerate()
                .map(|(i, r)| (i as i32, partition(r)))
                .collect(),
        }
    }

    // The expected values were computed with hash4j (compiled from its source) by the
    // calls Kafka's `Utils.computeTopicHash` / `computeGroupHash` make:
    // topic(0x0123456789abcdef, 0xfedcba9876543210, "orders",
    //       [["rack-b","rack-a"], ["rack-a"], []]) = 1998494833127878067,
    // topic(0x1111111111111111, 0x2222222222222222, "clicks", [[]]) = 5905004826865974634,
    // group(clicks, orders) = -8468961564964213003.
    #[test]
    fn hashes_match_kafkas_layout() {
        let image = image(&[(1, Some("rack-b")), (2, Some("rack-a")), (3, None)]);
        let orders = topic(
            "orders",
            (0x0123456789abcdef, 0xfedcba9876543210),
            &[&[1, 2], &[2, 3], &[3, 4]],
        );
        let clicks = topic("clicks", (0x1111111111111111, 0x2222222222222222), &[&[3]]);
        let orders_hash = topic_hash(&orders, &image);
        let clicks_hash = topic_hash(&clicks, &image);
        assert_eq!(orders_hash, 1998494833127878067);
        assert_eq!(clicks_hash, 5905004826865974634);
        assert_eq!(
            group_hash([("orders", orders_hash), ("clicks", clicks_hash)]),
            -8468961564964213003
        );
        assert_eq!(group_hash(std::iter::empty()), 0);
    }

    #[test]
    fn racks_and_partitions_change_the_hash() {
        let a = image(&[(1, Some("a"))]);
        let base = topic_hash(&topic("t", (7, 9), &[&[1], &[1]]), &a);
        assert_ne!(
            base,
            topic_hash(&topic("t", (7, 9), &[&[1], &[1], &[1]]), &a)
        );
        let b = image(&[(1, Some("b"))]);
        assert_ne!(base, topic_hash(&topic("t", (7, 9), &[&[1], &[1]]), &b));
        assert_ne!(base, topic_hash(&topic("t", (7, 10), &[&[1], &[1]]), &a));
    }
}
