//! Kafka broker keys that this broker accepts but does not use.
//!
//! A key of a Kafka `server.properties` is one of three kinds here:
//! - used: read into a field of [`Config`](super::Config);
//! - known but not read into [`Config`](super::Config): listed below (thread pools, socket
//!   buffers, the log cleaner, replication tuning, quotas, ...), collected in
//!   [`Config::ignored_keys`](super::Config::ignored_keys). The `ssl.*`, `sasl.*` and
//!   `listener.name.*` keys among them are read per listener by `crate::security::settings`
//!   (as is `connection.failed.authentication.delay.ms`); the authorizer keys
//!   (`authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`) by
//!   `crate::authorizer`;
//! - anything else: [`Config::unknown_keys`](super::Config::unknown_keys), as Kafka's
//!   "supplied but isn't a known config" warning.

/// Kafka broker configuration keys (Kafka 4.x) that are accepted and have no effect here.
pub const IGNORED_KEYS: &[&str] = &[
    "allow.everyone.if.no.acl.found",
    "alter.config.policy.class.name",
    "authorizer.class.name",
    "auto.include.jmx.reporter",
    "auto.leader.rebalance.enable",
    "background.threads",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "client.quota.callback.class",
    "config.providers",
    "connection.failed.authentication.delay.ms",
    "connections.max.reauth.ms",
    "controlled.shutdown.enable",
    "controller.performance.always.log.threshold.ms",
    "controller.performance.sample.period.ms",
    "create.topic.policy.class.name",
    "delete.records.purgatory.purge.interval.requests",
    "early.start.listeners",
    "eligible.leader.replicas.enable",
    "fetch.purgatory.purge.interval.requests",
    "initial.broker.registration.timeout.ms",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "log.dir.failure.timeout.ms",
    "log.flush.offset.checkpoint.interval.ms",
    "log.flush.start.offset.checkpoint.interval.ms",
    "log.initial.task.delay.ms",
    "log.local.retention.bytes",
    "log.local.retention.ms",
    "log.message.format.version",
    "log.preallocate",
    "log.roll.jitter.hours",
    "log.roll.jitter.ms",
    "log.segment.delete.delay.ms",
    "max.connection.creation.rate",
    "max.request.partition.size.limit",
    "metadata.max.idle.interval.ms",
    "metric.reporters",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.alter.log.dirs.threads",
    "num.replica.fetchers",
    "offsets.commit.required.acks",
    "offsets.commit.timeout.ms",
    "offsets.load.buffer.size",
    "offsets.topic.compression.codec",
    "principal.builder.class",
    "producer.purgatory.purge.interval.requests",
    "queued.max.requests",
    "request.timeout.ms",
    "reserved.broker.max.id",
    "security.providers",
    "server.max.startup.time.ms",
    "socket.connection.setup.timeout.max.ms",
    "socket.connection.setup.timeout.ms",
    "socket.listen.backlog.size",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "super.users",
    "transaction.state.log.load.buffer.size",
    "transaction.two.phase.commit.enable",
    "unclean.leader.election.enable",
    "unclean.leader.election.interval.ms",
    "unstable.api.versions.enable",
    "unstable.feature.versions.enable",
];

/// Families of Kafka keys, by prefix, that are accepted and have no effect here.
pub const IGNORED_KEY_PREFIXES: &[&str] = &[
    "alter.log.dirs.replication.quota.",
    "controller.quorum.",
    "controller.quota.",
    "delegation.token.",
    "group.consumer.",
    "group.coordinator.",
    "group.share.",
    "group.streams.",
    "kafka.metrics.",
    "listener.name.",
    "log.cleaner.",
    "metrics.",
    "password.encoder.",
    "quota.",
    "remote.fetch.",
    "remote.list.offsets.",
    "remote.log.",
    "replica.",
    "replication.quota.",
    "sasl.",
    "share.coordinator.",
    "share.fetch.",
    "ssl.",
];

/// Whether `key` is a Kafka key that this broker accepts without using it.
pub fn is_ignored_key(key: &str) -> bool {
    IGNORED_KEYS.contains(&key)
        || IGNORED_KEY_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
}
