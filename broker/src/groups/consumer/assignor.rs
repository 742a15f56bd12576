//! The broker-side assignors of consumer groups (KIP-848): `uniform` (the default) and
//! `range`, as Kafka's `UniformAssignor` and `RangeAssignor` name them.
//!
//! Both work on topic ids and partition indexes. `uniform` is sticky: a member keeps the
//! partitions of its previous target assignment that it still subscribes to, as long as it
//! has no more than its share; the rest go to the members with the fewest partitions, and
//! partitions then move one by one from the fullest member to the emptiest one that
//! subscribes to them until no move makes the counts closer (Kafka's
//! `UniformHomogeneousAssignmentBuilder` reaches the same balance for equal subscriptions:
//! every member has `floor` or `ceil` of partitions / members). `range` gives each member a
//! contiguous range of every topic it subscribes to, members ordered by instance id (static
//! members first) then member id, the first `partitions % members` one partition more, as
//! Kafka's server-side `RangeAssignor` does.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The name of the default assignor.
pub const UNIFORM: &str = "uniform";
/// The name of the range assignor.
pub const RANGE: &str = "range";

/// What an assignor needs of one member.
#[derive(Clone, Debug, Default)]
pub struct MemberSpec {
    /// Static instance id, if any (orders members in `range`).
    pub instance_id: Option<String>,
    /// Subscribed topics (ids of existing topics only).
    pub topics: BTreeSet<Uuid>,
    /// The member's previous target assignment.
    pub current: Assignment,
}

/// Computes the target assignment of `members` over topics of `partition_counts` with the
/// assignor `name` (`uniform` for any other name).
pub fn assign(
    name: &str,
    members: &BTreeMap<String, MemberSpec>,
    partition_counts: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    if name == RANGE {
        range(members, partition_counts)
    } else {
        uniform(members, partition_counts)
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// The sticky, balanced assignor (see the module docs).
pub fn uniform(
    members: &BTreeMap<String, MemberSpec>,
    partition_counts: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    if members.is_empty() {
        return result;
    }
    // Every partition someone subscribes to, and who may have it.
    let mut all: Vec<(Uuid, i32)> = Vec::new();
    for (topic, &n) in partition_counts {
        if members.values().any(|m| m.topics.contains(topic)) {
            all.extend((0..n.max(0)).map(|p| (*topic, p)));
        }
    }
    let total = all.len();
    // A member's share if every member could take every partition: the sticky part keeps
    // no more than this.
    let ceil = total.div_ceil(members.len());
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for (id, member) in members {
        let kept = result.get_mut(id).expect("every member has an entry");
        let mut n = 0;
        for (topic, partitions) in &member.current {
            let Some(&limit) = partition_counts.get(topic) else {
                continue;
            };
            if !member.topics.contains(topic) {
                continue;
            }
            for &p in partitions {
                if p < limit && n < ceil && taken.insert((*topic, p)) {
                    kept.entry(*topic).or_default().insert(p);
                    n += 1;
                }
            }
        }
    }
    // Unassigned partitions to the least loaded subscriber (ties: member id order).
    for (topic, p) in all {
        if taken.contains(&(topic, p)) {
            continue;
        }
        let target = members
            .iter()
            .filter(|(_, m)| m.topics.contains(&topic))
            .min_by_key(|(id, _)| (count(&result[*id]), (*id).clone()))
            .map(|(id, _)| id.clone());
        if let Some(id) = target {
            result
                .get_mut(&id)
                .expect("member")
                .entry(topic)
                .or_default()
                .insert(p);
            taken.insert((topic, p));
        }
    }
    // Balance: move a partition from a fuller member to one with at least two fewer that
    // subscribes to its topic; each move lowers the sum of squares, so this ends.
    for _ in 0..total.saturating_mul(members.len()).max(1) {
        let mut moved = false;
        let mut by_load: Vec<(usize, String)> = result
            .iter()
            .map(|(id, a)| (count(a), id.clone()))
            .collect();
        by_load.sort();
        'search: for (high_n, high) in by_load.iter().rev() {
            for (low_n, low) in by_load.iter() {
                if low_n + 1 >= *high_n {
                    break;
                }
                let low_topics = &members[low].topics;
                let candidate = result[high]
                    .iter()
                    .filter(|(t, _)| low_topics.contains(t))
                    .find_map(|(t, ps)| ps.iter().next_back().map(|p| (*t, *p)));
                if let Some((t, p)) = candidate {
                    let from = result.get_mut(high).expect("member");
                    if let Some(ps) = from.get_mut(&t) {
                        ps.remove(&p);
                        if ps.is_empty() {
                            from.remove(&t);
                        }
                    }
                    result
                        .get_mut(low)
                        .expect("member")
                        .entry(t)
                        .or_default()
                        .insert(p);
                    moved = true;
                    break 'search;
                }
            }
        }
        if !moved {
            break;
        }
    }
    result
}

/// Kafka's server-side range assignor (see the module docs).
pub fn range(
    members: &BTreeMap<String, MemberSpec>,
    partition_counts: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut order: Vec<&String> = members.keys().collect();
    order.sort_by(
        |a, b| match (&members[*a].instance_id, &members[*b].instance_id) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(b),
        },
    );
    let mut result: BTreeMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for (topic, &n) in partition_counts {
        let subscribers: Vec<&String> = order
            .iter()
            .copied()
            .filter(|id| members[*id].topics.contains(topic))
            .collect();
        if subscribers.is_empty() || n <= 0 {
            continue;
        }
        let n = n as usize;
        let base = n / subscribers.len();
        let extra = n % subscribers.len();
        let mut next = 0usize;
        for (i, id) in subscribers.iter().enumerate() {
            let size = base + usize::from(i < extra);
            if size > 0 {
                let set = result
                    .get_mut(*id)
                    .expect("member")
                    .entry(*topic)
                    .or_default();
                set.extend((next..next + size).map(|p| p as i32));
            }
            next += size;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn spec(topics: &[Uuid], current: &[(Uuid, &[i32])]) -> MemberSpec {
        MemberSpec {
            instance_id: None,
            topics: topics.iter().copied().collect(),
            current: current
                .iter()
                .map(|(t, ps)| (*t, ps.iter().copied().collect()))
                .collect(),
        }
    }

    fn all_once(result: &BTreeMap<String, Assignment>, counts: &BTreeMap<Uuid, i32>) {
        let mut seen = BTreeSet::new();
        for a in result.values() {
            for (t, ps) in a {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "partition {p} assigned twice");
                }
            }
        }
        let expected: usize = counts.values().map(|n| *n as usize).sum();
        assert_eq!(seen.len(), expected);
    }

    #[test]
    fn uniform_balances_equal_subscriptions() {
        let counts = BTreeMap::from([(topic(1), 7), (topic(2), 3)]);
        let members: BTreeMap<String, MemberSpec> = ["a", "b", "c"]
            .iter()
            .map(|id| (id.to_string(), spec(&[topic(1), topic(2)], &[])))
            .collect();
        let result = uniform(&members, &counts);
        all_once(&result, &counts);
        let loads: Vec<usize> = result.values().map(count).collect();
        assert!(loads.iter().all(|n| *n == 3 || *n == 4), "{loads:?}");
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let t = topic(1);
        let counts = BTreeMap::from([(t, 6)]);
        let mut members = BTreeMap::from([
            ("a".to_string(), spec(&[t], &[(t, &[0, 1, 2])])),
            ("b".to_string(), spec(&[t], &[(t, &[3, 4, 5])])),
            ("c".to_string(), spec(&[t], &[])),
        ]);
        let result = uniform(&members, &counts);
        all_once(&result, &counts);
        for id in ["a", "b", "c"] {
            assert_eq!(count(&result[id]), 2, "{result:?}");
        }
        // a and b keep two of their three; only two partitions move (to c).
        let kept_a = result["a"][&t].iter().filter(|p| **p <= 2).count();
        let kept_b = result["b"][&t].iter().filter(|p| **p >= 3).count();
        assert_eq!((kept_a, kept_b), (2, 2));
        // Recomputing with the result as the current assignment moves nothing.
        for (id, a) in &result {
            members.get_mut(id).unwrap().current = a.clone();
        }
        assert_eq!(uniform(&members, &counts), result);
    }

    #[test]
    fn uniform_gives_a_leaver_s_partitions_to_the_rest() {
        let t = topic(1);
        let counts = BTreeMap::from([(t, 3)]);
        let members = BTreeMap::from([
            ("a".to_string(), spec(&[t], &[(t, &[0])])),
            ("b".to_string(), spec(&[t], &[(t, &[1])])),
        ]);
        let result = uniform(&members, &counts);
        all_once(&result, &counts);
        assert!(result["a"][&t].contains(&0) && result["b"][&t].contains(&1));
    }

    #[test]
    fn uniform_respects_different_subscriptions() {
        let (t1, t2) = (topic(1), topic(2));
        let counts = BTreeMap::from([(t1, 4), (t2, 2)]);
        let members = BTreeMap::from([
            ("a".to_string(), spec(&[t1], &[])),
            ("b".to_string(), spec(&[t1, t2], &[])),
        ]);
        let result = uniform(&members, &counts);
        all_once(&result, &counts);
        assert!(!result["a"].contains_key(&t2));
        assert_eq!((count(&result["a"]), count(&result["b"])), (3, 3));
    }

    #[test]
    fn range_splits_each_topic_in_order() {
        let (t1, t2) = (topic(1), topic(2));
        let counts = BTreeMap::from([(t1, 5), (t2, 2)]);
        let members = BTreeMap::from([
            ("b".to_string(), spec(&[t1, t2], &[])),
            ("a".to_string(), spec(&[t1, t2], &[])),
        ]);
        let result = range(&members, &counts);
        all_once(&result, &counts);
        assert_eq!(result["a"][&t1], BTreeSet::from([0, 1, 2]));
        assert_eq!(result["b"][&t1], BTreeSet::from([3, 4]));
        assert_eq!(result["a"][&t2], BTreeSet::from([0]));
        assert_eq!(result["b"][&t2], BTreeSet::from([1]));
    }
}
