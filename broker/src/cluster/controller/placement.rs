//! Replica placement for new partitions, as Kafka's `StripedReplicaPlacer`: the usable
//! brokers (registered, not in controlled shutdown) are grouped by rack; each partition's
//! first replica is an unfenced broker of the next rack in turn, the others are taken one
//! per rack going round the racks (unfenced brokers of a rack before its fenced ones), so
//! the replicas of a partition are spread over as many racks as possible and the leaders
//! over the unfenced brokers. Each rack's list starts at a random offset, and once as many
//! partitions have been placed as there are unfenced brokers, the racks and brokers are
//! shuffled, as Kafka does to avoid repeating the same assignments.

use std::collections::BTreeMap;

use rand::Rng;
use rand::seq::SliceRandom;

use super::super::image::MetadataImage;

/// A broker the placer may use (Kafka's `UsableBroker`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsableBroker {
    /// Its id.
    pub id: i32,
    /// Its rack.
    pub rack: Option<String>,
    /// Whether it is fenced (then it only gets followers, and only when needed).
    pub fenced: bool,
}

/// The usable brokers of `image`: every registration not in controlled shutdown.
pub fn usable_brokers(image: &MetadataImage) -> Vec<UsableBroker> {
    image
        .brokers()
        .values()
        .filter(|b| !b.in_controlled_shutdown)
        .map(|b| UsableBroker {
            id: b.id,
            rack: b.rack.clone(),
            fenced: b.fenced,
        })
        .collect()
}

/// Kafka's `BrokerList`: brokers iterated from a moving offset, once per epoch.
#[derive(Debug, Default)]
struct BrokerList {
    brokers: Vec<i32>,
    index: usize,
    offset: usize,
    epoch: usize,
}

impl BrokerList {
    fn initialize(&mut self, rng: &mut impl Rng) {
        if !self.brokers.is_empty() {
            self.brokers.sort_unstable();
            self.offset = rng.random_range(0..self.brokers.len());
        }
    }

    fn next(&mut self, epoch: usize) -> Option<i32> {
        if self.brokers.is_empty() {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.index >= self.brokers.len() {
            return None;
        }
        let broker = self.brokers[(self.index + self.offset) % self.brokers.len()];
        self.index += 1;
        Some(broker)
    }
}

#[derive(Debug, Default)]
struct Rack {
    fenced: BrokerList,
    unfenced: BrokerList,
}

impl Rack {
    fn next(&mut self, epoch: usize) -> Option<i32> {
        self.unfenced
            .next(epoch)
            .or_else(|| self.fenced.next(epoch))
    }
}

/// Kafka's `StripedReplicaPlacer.RackList`.
#[derive(Debug)]
pub struct Placer<R> {
    rng: R,
    racks: BTreeMap<Option<String>, Rack>,
    rack_names: Vec<Option<String>>,
    total: usize,
    unfenced: usize,
    epoch: usize,
    offset: usize,
}

impl<R: Rng> Placer<R> {
    /// A placer over `brokers`.
    pub fn new(mut rng: R, brokers: &[UsableBroker]) -> Placer<R> {
        let mut racks: BTreeMap<Option<String>, Rack> = BTreeMap::new();
        let mut unfenced = 0;
        for broker in brokers {
            let rack = racks.entry(broker.rack.clone()).or_default();
            if broker.fenced {
                rack.fenced.brokers.push(broker.id);
            } else {
                unfenced += 1;
                rack.unfenced.brokers.push(broker.id);
            }
        }
        for rack in racks.values_mut() {
            rack.fenced.initialize(&mut rng);
            rack.unfenced.initialize(&mut rng);
        }
        // Sorted with no rack first, as Kafka's `OptionalStringComparator`.
        let rack_names: Vec<Option<String>> = racks.keys().cloned().collect();
        let offset = if rack_names.is_empty() {
            0
        } else {
            rng.random_range(0..rack_names.len())
        };
        Placer {
            rng,
            racks,
            rack_names,
            total: brokers.len(),
            unfenced,
            epoch: 0,
            offset,
        }
    }

    /// Kafka's checks before placing, with its messages: a positive factor, an unfenced
    /// broker, and at least as many usable brokers as replicas.
    pub fn check(&self, replication_factor: i16) -> Result<(), String> {
        if replication_factor <= 0 {
            return Err(format!(
                "Invalid replication factor {replication_factor}: the replication factor must \
                 be positive."
            ));
        }
        if self.unfenced == 0 {
            return Err("All brokers are currently fenced.".to_string());
        }
        if replication_factor as usize > self.total {
            return Err(format!(
                "The target replication factor of {replication_factor} cannot be reached \
                 because only {} broker(s) are registered.",
                self.total
            ));
        }
        Ok(())
    }

    /// The replicas of the next partition (checked by [`Self::check`] first).
    pub fn place(&mut self, replication_factor: i16) -> Result<Vec<i32>, String> {
        self.check(replication_factor)?;
        let replication_factor = replication_factor as usize;
        if self.epoch == self.unfenced && self.unfenced > 1 {
            self.shuffle();
            self.epoch = 0;
        }
        if self.offset == self.rack_names.len() {
            self.offset = 0;
        }
        let n = self.rack_names.len();
        let mut brokers = Vec::with_capacity(replication_factor);
        // The first replica (the preferred leader): an unfenced broker, from the rack at
        // the offset or the next one that has one left this epoch.
        let mut first_rack = self.offset;
        let mut tried = 0;
        loop {
            let name = &self.rack_names[first_rack];
            let rack = self
                .racks
                .get_mut(name)
                .expect("every rack name has a rack");
            if let Some(broker) = rack.unfenced.next(self.epoch) {
                brokers.push(broker);
                break;
            }
            first_rack = (first_rack + 1) % n;
            tried += 1;
            if tried > n * (self.total + 1) {
                return Err("All brokers are currently fenced.".to_string());
            }
        }
        let mut first_rack = Some(first_rack);
        let mut rack_index = self.offset;
        for _ in 1..replication_factor {
            let mut tried = 0;
            loop {
                let mut result = None;
                if first_rack == Some(rack_index) {
                    first_rack = None;
                } else {
                    let name = &self.rack_names[rack_index];
                    let rack = self
                        .racks
                        .get_mut(name)
                        .expect("every rack name has a rack");
                    result = rack.next(self.epoch);
                }
                rack_index = (rack_index + 1) % n;
                if let Some(broker) = result {
                    brokers.push(broker);
                    break;
                }
                tried += 1;
                if tried > n * (self.total + 1) {
                    // Cannot happen after `check`; never loop forever.
                    return Err(format!(
                        "The target replication factor of {replication_factor} cannot be \
                         reached because only {} broker(s) are registered.",
                        self.total
                    ));
                }
            }
        }
        self.epoch += 1;
        self.offset += 1;
        Ok(brokers)
    }

    fn shuffle(&mut self) {
        self.rack_names.shuffle(&mut self.rng);
        for rack in self.racks.values_mut() {
            rack.fenced.brokers.shuffle(&mut self.rng);
            rack.unfenced.brokers.shuffle(&mut self.rng);
        }
    }
}

/// Places `count` partitions of `replication_factor` replicas on the usable brokers of
/// `image` (Kafka's `StripedReplicaPlacer.place`); the error is the placer's message.
pub fn place(
    image: &MetadataImage,
    count: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, String> {
    let mut placer = Placer::new(rand::rng(), &usable_brokers(image));
    placer.check(replication_factor)?;
    (0..count.max(0))
        .map(|_| placer.place(replication_factor))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::BTreeSet;

    fn broker(id: i32, rack: &str, fenced: bool) -> UsableBroker {
        UsableBroker {
            id,
            rack: Some(rack.to_string()),
            fenced,
        }
    }

    #[test]
    fn replicas_are_spread_over_racks_and_leaders_over_brokers() {
        let brokers = [
            broker(1, "a", false),
            broker(2, "a", false),
            broker(3, "b", false),
            broker(4, "b", false),
        ];
        for seed in 0..20 {
            let mut placer = Placer::new(StdRng::seed_from_u64(seed), &brokers);
            let mut leader_racks = BTreeSet::new();
            for _ in 0..8 {
                let replicas = placer.place(2).unwrap();
                let racks: BTreeSet<i32> = replicas.iter().map(|b| (b - 1) / 2).collect();
                assert_eq!(racks.len(), 2, "{replicas:?}");
                leader_racks.insert((replicas[0] - 1) / 2);
            }
            assert_eq!(leader_racks.len(), 2, "seed {seed}");
        }
    }

    #[test]
    fn fenced_brokers_never_lead() {
        let brokers = [
            broker(1, "a", false),
            broker(2, "b", true),
            broker(3, "c", false),
        ];
        // One placer per request and replication factor, as Kafka makes one per topic.
        for seed in 0..20 {
            let mut placer = Placer::new(StdRng::seed_from_u64(seed), &brokers);
            for _ in 0..10 {
                let replicas = placer.place(3).unwrap();
                assert_ne!(replicas[0], 2);
                let set: BTreeSet<i32> = replicas.iter().copied().collect();
                assert_eq!(set.len(), 3);
            }
            let mut placer = Placer::new(StdRng::seed_from_u64(seed), &brokers);
            for _ in 0..10 {
                let two = placer.place(2).unwrap();
                assert_ne!(two[0], 2, "{two:?}");
                assert_ne!(two[0], two[1]);
            }
        }
    }

    #[test]
    fn kafkas_errors() {
        let brokers = [broker(1, "a", false), broker(2, "a", true)];
        let placer = Placer::new(StdRng::seed_from_u64(1), &brokers);
        assert_eq!(
            placer.check(3).unwrap_err(),
            "The target replication factor of 3 cannot be reached because only 2 broker(s) \
             are registered."
        );
        assert!(placer.check(0).unwrap_err().contains("must be positive"));
        let fenced = Placer::new(StdRng::seed_from_u64(1), &[broker(2, "a", true)]);
        assert_eq!(
            fenced.check(1).unwrap_err(),
            "All brokers are currently fenced."
        );
    }
}
