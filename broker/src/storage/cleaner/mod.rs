//! Log compaction: Kafka's log cleaner (`LogCleaner`, `Cleaner`, `LogCleanerManager`,
//! `SkimpyOffsetMap`, `CleanedTransactionMetadata`) for topics with `cleanup.policy`
//! `compact` (or `compact,delete`).
//!
//! * [`offset_map`]: the dedupe map, key hash -> latest offset, in fixed memory.
//! * [`clean`]: one cleaning of one log ([`Cleaner::clean`]): map the dirty section
//!   `[first dirty offset, first uncleanable offset)`, group the segments below the map's
//!   end as Kafka's `groupSegmentsBySize` does, and write each group filtered into one
//!   `<base>.log.cleaned` segment with its index files, which the partition swaps in
//!   (`storage/partition/compaction.rs`: `.cleaned` -> `.swap` -> final name, crash-safe).
//!   Filtering keeps, as Kafka's `filterTo`: the latest record of each key below the map's
//!   end, everything above it; offsets (so compacted logs have gaps), each batch's base and
//!   last offset, leader epoch, producer id/epoch/base sequence, transactional and control
//!   flags and codec (a filtered batch is re-compressed with its codec at its default
//!   level); a producer's last batch as an empty batch when all of its records go (its
//!   sequence must survive); tombstones until their batch's delete horizon (KIP-534: set to
//!   now + `delete.retention.ms`, in the base timestamp with attribute bit 6, the first
//!   time a cleaning keeps them) has passed; records of aborted transactions are dropped
//!   and transaction markers kept until no data of their transaction remains and their
//!   delete horizon has passed ([`txn`]).
//! * [`manager`]: which log to clean next (Kafka's `LogCleanerManager`): the dirtiest by
//!   cleanable ratio above `min.cleanable.dirty.ratio`, or any past
//!   `max.compaction.lag.ms`; the first dirty offset of each partition in the log
//!   directory's `cleaner-offset-checkpoint` (Kafka's format); partitions whose cleaning
//!   failed are marked uncleanable (logged, never retried until restart).
//! * [`threads`]: `log.cleaner.threads` OS threads, throttled together by
//!   `log.cleaner.io.max.bytes.per.second` ([`throttle`]), backing off
//!   `log.cleaner.backoff.ms` when nothing is cleanable.
//!
//! Differences from Kafka, on purpose: keys are hashed with XXH3-128 instead of MD5 (see
//! [`offset_map`]); legacy (magic 0/1) batches, which Kafka 4 never writes, are copied as
//! they are rather than filtered; the aborted transactions come from the caller (the
//! partition passes none until it keeps an aborted-transaction index), and no `.txnindex`
//! is written for a cleaned segment.

pub mod clean;
pub mod manager;
pub mod offset_map;
pub mod threads;
pub mod throttle;
pub mod txn;

#[cfg(test)]
mod tests;

pub use clean::{
    CLEANED_SUFFIX, CleanError, CleanInput, CleanPlan, CleanedSegment, Cleaner, CleanerStats,
    SWAP_SUFFIX, SegmentToClean,
};
pub use manager::{CLEANER_OFFSET_CHECKPOINT, CleanerManager, LogToClean};
pub use offset_map::OffsetMap;
pub use threads::{CleanerConfig, LogCleaner};
pub use throttle::Throttler;
pub use txn::AbortedTxn;
