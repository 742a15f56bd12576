//! The group coordinator against the real `gregor` binary on 127.0.0.1: the classic
//! consumer group protocol and committed offsets, byte-exact with the raw client, then with
//! the real clients.
//!
//! * `membership`: FindCoordinator; JoinGroup, SyncGroup, Heartbeat and LeaveGroup at low
//!   and high versions (MEMBER_ID_REQUIRED, rebalances of two members, protocol selection,
//!   static members, session timeouts, the initial rebalance delay) and their error codes.
//! * `offsets`: OffsetCommit v2-v10 and OffsetFetch v1-v10 (simple and generation-checked
//!   commits, topic ids, several groups), DescribeGroups, ListGroups, DeleteGroups, the
//!   records in `__consumer_offsets` (Kafka's key and value versions, tombstones) and what
//!   survives a restart.
//! * `legacy_offsets`: OffsetCommit v0-v1 and OffsetFetch v0 (removed by Kafka 4) as Kafka
//!   3.9 served them in KRaft mode: v1's generation checks and commit timestamp (stored,
//!   and counted from by expiration), v0 refused with UNSUPPORTED_VERSION.
//! * `offsets_compaction`: 100,000 offset commits (1,000,000 in the long form) of 10 groups;
//!   the cleaner keeps `__consumer_offsets` within a few MiB and a restart returns every
//!   group's latest offsets.
//! * `offset_delete`: OffsetDelete's errors (unknown topics, groups, subscribed topics of
//!   active groups), its tombstones and a restart; kafka-python's `delete_group_offsets`.
//! * `epoch_validation`: a confluent-kafka consumer resumes from an offset committed with
//!   a leader epoch after a restart, validating it with OffsetForLeaderEpoch.
//! * `clients`: kafka-python and confluent-kafka consumers with a `group_id` consume,
//!   commit and resume; two members split the partitions; offsets survive a restart;
//!   `kcat -G`; `gregorctl groups list|describe` and `consume --group`.
//! - `consumer_protocol`: KIP-848 consumer groups with confluent-kafka
//!   (`group.protocol=consumer`): members join and leave, partitions move incrementally,
//!   every record is read once with commits, the group survives a broker restart; a regex
//!   subscription picks up a new topic. `consumer_wire`: the same APIs with the raw client
//!   (Kafka's error codes, member epochs in offset commits and fetches, records).
//!   `migration_wire`: the online upgrade of classic groups and the downgrade back under
//!   each `group.consumer.migration.policy`; `consumer_protocol` runs it with real clients.
//!   `group_configs`: per-group `consumer.session.timeout.ms` / `consumer.heartbeat.interval.ms`
//!   (IncrementalAlterConfigs, DescribeConfigs, a restart, the heartbeat interval answered).
//!
//! The real clients come from `scripts/install-test-clients.sh`; their tests print
//! `skipped: ...` without them (unless `GREGOR_REQUIRE_CLIENTS=1`).

mod support;

#[path = "groups/clients.rs"]
mod clients;
#[path = "groups/consumer_protocol.rs"]
mod consumer_protocol;
#[path = "groups/consumer_wire.rs"]
mod consumer_wire;
#[path = "groups/epoch_validation.rs"]
mod epoch_validation;
#[path = "groups/group_configs.rs"]
mod group_configs;
#[path = "groups/legacy_offsets.rs"]
mod legacy_offsets;
#[path = "groups/membership.rs"]
mod membership;
#[path = "groups/migration_wire.rs"]
mod migration_wire;
#[path = "groups/offset_delete.rs"]
mod offset_delete;
#[path = "groups/offsets.rs"]
mod offsets;
#[path = "groups/offsets_compaction.rs"]
mod offsets_compaction;
#[path = "groups/wire.rs"]
mod wire;
