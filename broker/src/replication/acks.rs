//! `acks=all` produces waiting for the ISR (Kafka's `DelayedProduce`): the append is answered
//! once the high watermark reaches its end, with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the
//! ISR shrank below `min.insync.replicas` meanwhile, NOT_LEADER_OR_FOLLOWER if this broker
//! stopped leading, or REQUEST_TIMED_OUT after the Produce's `timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::error_code;
use tokio::time::Instant;

use super::leader::LeaderPartition;

/// Waits until the append ending before `required_offset` (its last offset + 1) is
/// replicated to the ISR, at most `timeout`; returns the partition's error code (NONE when
/// it is).
pub async fn wait_for_isr(
    leader: &Arc<LeaderPartition>,
    required_offset: i64,
    timeout: Duration,
) -> i16 {
    let deadline = Instant::now() + timeout;
    // Subscribed before each check, so a change between the check and the wait wakes it.
    let mut log_changes = leader.log().subscribe();
    let mut changes = leader.subscribe_changes();
    loop {
        if let Some(code) = leader.acks_all_outcome(required_offset) {
            return code;
        }
        tokio::select! {
            changed = log_changes.changed() => {
                if changed.is_err() {
                    return error_code::NOT_LEADER_OR_FOLLOWER;
                }
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return error_code::NOT_LEADER_OR_FOLLOWER;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                return leader
                    .acks_all_outcome(required_offset)
                    .unwrap_or(error_code::REQUEST_TIMED_OUT);
            }
        }
    }
}
