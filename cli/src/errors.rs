//! Kafka's error codes as an operator reads them: the name from the protocol library's
//! error table ([`gregor_protocol::ErrorCode`]) and, for the codes an operator meets, a
//! one-line hint saying what to do about it.

use gregor_protocol::ErrorCode;

/// One-line hints for the errors people meet at the command line.
const HINTS: &[(i16, &str)] = &[
    (
        -1,
        "the broker failed unexpectedly while handling the request; see the broker log",
    ),
    (
        1,
        "the offset is outside the partition's log; use --offset earliest or latest",
    ),
    (
        2,
        "a record batch failed its CRC or size check; the data or the client is corrupt",
    ),
    (
        3,
        "the topic or partition does not exist; create it or check the name",
    ),
    (
        5,
        "the partition has no leader right now (an election is running); retry shortly",
    ),
    (
        6,
        "this broker does not lead the partition; refresh metadata and retry (gregorctl does)",
    ),
    (
        7,
        "the broker did not finish in time; retry, or raise the request timeout",
    ),
    (
        10,
        "the batch is larger than the broker's message.max.bytes; use smaller records or batches",
    ),
    (
        14,
        "the coordinator is still loading its state; retry in a few seconds",
    ),
    (
        15,
        "no coordinator is available for the group; check that the broker serves groups",
    ),
    (
        16,
        "the request went to the wrong coordinator; look it up again (FindCoordinator)",
    ),
    (
        17,
        "the topic name is not legal: use letters, digits, '.', '_' and '-', at most 249 characters",
    ),
    (
        18,
        "the batch is larger than the segment size; lower the batch size",
    ),
    (
        19,
        "fewer in-sync replicas than min.insync.replicas; bring replicas back or lower acks",
    ),
    (21, "acks must be -1 (all), 0 or 1"),
    (22, "the group moved to a new generation; rejoin the group"),
    (
        25,
        "the coordinator does not know this member; rejoin the group",
    ),
    (27, "the group is rebalancing; rejoin and retry"),
    (29, "not authorized for this topic; check the ACLs"),
    (30, "not authorized for this group; check the ACLs"),
    (
        31,
        "not authorized for this cluster operation; check the ACLs",
    ),
    (
        35,
        "the broker does not support this request version; upgrade the broker or the client",
    ),
    (
        36,
        "a topic with this name already exists; pick another name or delete it first",
    ),
    (
        37,
        "the partition count is invalid: it must be at least 1 (and only grow)",
    ),
    (
        38,
        "the replication factor must be at least 1 and at most the number of brokers",
    ),
    (
        40,
        "a configuration key or value is invalid; check the name and the value's type",
    ),
    (
        41,
        "this node is not the active controller; retry against another broker",
    ),
    (
        42,
        "the broker judged the request malformed; see the broker log",
    ),
    (44, "the request violates a policy configured on the broker"),
    (
        47,
        "a newer producer with the same transactional.id (or a newer epoch) took over; this one is fenced and must stop",
    ),
    (
        48,
        "the transaction is not in a state that allows this request (e.g. a write the coordinator did not verify)",
    ),
    (
        51,
        "the coordinator is still finishing the transaction's previous step; retry shortly",
    ),
    (
        56,
        "the broker failed to read or write its log directory; check its disk",
    ),
    (68, "the group still has members; stop its consumers first"),
    (
        69,
        "no group has this id; check the name (gregorctl groups list)",
    ),
    (
        70,
        "the fetch session expired; the next full fetch starts a new one",
    ),
    (
        73,
        "topic deletion is disabled on the broker (delete.topic.enable=false)",
    ),
    (
        76,
        "the topic's compression.type does not allow this codec, or the broker lacks it",
    ),
    (
        87,
        "the broker rejected a record (e.g. a null key on a compacted topic)",
    ),
    (89, "a quota was exceeded; slow down and retry"),
    (
        90,
        "another producer started with the same transactional.id (InitProducerId); this one is fenced and must stop",
    ),
    (100, "no topic has this id; it may have been deleted"),
];

/// Kafka's name for an error code, `UNKNOWN_ERROR_CODE` for one it does not define.
pub fn error_name(code: i16) -> &'static str {
    ErrorCode::from(code).name().unwrap_or("UNKNOWN_ERROR_CODE")
}

/// A one-line hint for an error code, if there is one.
pub fn error_hint(code: i16) -> Option<&'static str> {
    HINTS.iter().find(|(c, _)| *c == code).map(|(_, h)| *h)
}

/// `NAME (code): hint`, or `NAME (code)` without a hint; the broker's own message, when
/// it sent one, is appended.
pub fn describe(code: i16, message: Option<&str>) -> String {
    let mut text = format!("{} ({code})", error_name(code));
    if let Some(hint) = error_hint(code) {
        text.push_str(": ");
        text.push_str(hint);
    }
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        text.push_str(&format!(" [broker: {message}]"));
    }
    text
}

/// Whether a client should refresh metadata and retry after this error (a leader moved or
/// is being elected).
pub fn is_retriable_metadata_error(code: i16) -> bool {
    matches!(code, 3 | 5 | 6 | 74 | 75 | 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_names() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(35), "UNSUPPORTED_VERSION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(100), "UNKNOWN_TOPIC_ID");
        assert_eq!(error_name(133), "SHARE_SESSION_LIMIT_REACHED");
        assert_eq!(error_name(-2), "UNKNOWN_ERROR_CODE");
        assert_eq!(error_name(999), "UNKNOWN_ERROR_CODE");
    }

    #[test]
    fn hints_name_known_codes_once() {
        let mut codes: Vec<_> = HINTS.iter().map(|h| h.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), HINTS.len());
        for (code, hint) in HINTS {
            assert_ne!(error_name(*code), "UNKNOWN_ERROR_CODE");
            assert!(!hint.contains('\n') && !hint.ends_with('.'), "{hint}");
        }
    }

    #[test]
    fn describe_includes_name_code_hint_and_message() {
        assert_eq!(
            describe(3, None),
            "UNKNOWN_TOPIC_OR_PARTITION (3): the topic or partition does not exist; create it or check the name"
        );
        assert_eq!(describe(9, Some("")), "REPLICA_NOT_AVAILABLE (9)");
        assert!(describe(40, Some("bad value")).ends_with("[broker: bad value]"));
    }
}
