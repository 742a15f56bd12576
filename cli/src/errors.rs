//! Kafka's error codes: the name Kafka gives each (`Errors.java`) and, for the ones an
//! operator meets, a one-line hint saying what to do about it.

/// Every error code Kafka defines (up to 4.1), with its name.
const NAMES: &[(i16, &str)] = &[
    (-1, "UNKNOWN_SERVER_ERROR"),
    (0, "NONE"),
    (1, "OFFSET_OUT_OF_RANGE"),
    (2, "CORRUPT_MESSAGE"),
    (3, "UNKNOWN_TOPIC_OR_PARTITION"),
    (4, "INVALID_FETCH_SIZE"),
    (5, "LEADER_NOT_AVAILABLE"),
    (6, "NOT_LEADER_OR_FOLLOWER"),
    (7, "REQUEST_TIMED_OUT"),
    (8, "BROKER_NOT_AVAILABLE"),
    (9, "REPLICA_NOT_AVAILABLE"),
    (10, "MESSAGE_TOO_LARGE"),
    (11, "STALE_CONTROLLER_EPOCH"),
    (12, "OFFSET_METADATA_TOO_LARGE"),
    (13, "NETWORK_EXCEPTION"),
    (14, "COORDINATOR_LOAD_IN_PROGRESS"),
    (15, "COORDINATOR_NOT_AVAILABLE"),
    (16, "NOT_COORDINATOR"),
    (17, "INVALID_TOPIC_EXCEPTION"),
    (18, "RECORD_LIST_TOO_LARGE"),
    (19, "NOT_ENOUGH_REPLICAS"),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"),
    (21, "INVALID_REQUIRED_ACKS"),
    (22, "ILLEGAL_GENERATION"),
    (23, "INCONSISTENT_GROUP_PROTOCOL"),
    (24, "INVALID_GROUP_ID"),
    (25, "UNKNOWN_MEMBER_ID"),
    (26, "INVALID_SESSION_TIMEOUT"),
    (27, "REBALANCE_IN_PROGRESS"),
    (28, "INVALID_COMMIT_OFFSET_SIZE"),
    (29, "TOPIC_AUTHORIZATION_FAILED"),
    (30, "GROUP_AUTHORIZATION_FAILED"),
    (31, "CLUSTER_AUTHORIZATION_FAILED"),
    (32, "INVALID_TIMESTAMP"),
    (33, "UNSUPPORTED_SASL_MECHANISM"),
    (34, "ILLEGAL_SASL_STATE"),
    (35, "UNSUPPORTED_VERSION"),
    (36, "TOPIC_ALREADY_EXISTS"),
    (37, "INVALID_PARTITIONS"),
    (38, "INVALID_REPLICATION_FACTOR"),
    (39, "INVALID_REPLICA_ASSIGNMENT"),
    (40, "INVALID_CONFIG"),
    (41, "NOT_CONTROLLER"),
    (42, "INVALID_REQUEST"),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT"),
    (44, "POLICY_VIOLATION"),
    (45, "OUT_OF_ORDER_SEQUENCE_NUMBER"),
    (46, "DUPLICATE_SEQUENCE_NUMBER"),
    (47, "INVALID_PRODUCER_EPOCH"),
    (48, "INVALID_TXN_STATE"),
    (49, "INVALID_PRODUCER_ID_MAPPING"),
    (50, "INVALID_TRANSACTION_TIMEOUT"),
    (51, "CONCURRENT_TRANSACTIONS"),
    (52, "TRANSACTION_COORDINATOR_FENCED"),
    (53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
    (54, "SECURITY_DISABLED"),
    (55, "OPERATION_NOT_ATTEMPTED"),
    (56, "KAFKA_STORAGE_ERROR"),
    (57, "LOG_DIR_NOT_FOUND"),
    (58, "SASL_AUTHENTICATION_FAILED"),
    (59, "UNKNOWN_PRODUCER_ID"),
    (60, "REASSIGNMENT_IN_PROGRESS"),
    (61, "DELEGATION_TOKEN_AUTH_DISABLED"),
    (62, "DELEGATION_TOKEN_NOT_FOUND"),
    (63, "DELEGATION_TOKEN_OWNER_MISMATCH"),
    (64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"),
    (65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED"),
    (66, "DELEGATION_TOKEN_EXPIRED"),
    (67, "INVALID_PRINCIPAL_TYPE"),
    (68, "NON_EMPTY_GROUP"),
    (69, "GROUP_ID_NOT_FOUND"),
    (70, "FETCH_SESSION_ID_NOT_FOUND"),
    (71, "INVALID_FETCH_SESSION_EPOCH"),
    (72, "LISTENER_NOT_FOUND"),
    (73, "TOPIC_DELETION_DISABLED"),
    (74, "FENCED_LEADER_EPOCH"),
    (75, "UNKNOWN_LEADER_EPOCH"),
    (76, "UNSUPPORTED_COMPRESSION_TYPE"),
    (77, "STALE_BROKER_EPOCH"),
    (78, "OFFSET_NOT_AVAILABLE"),
    (79, "MEMBER_ID_REQUIRED"),
    (80, "PREFERRED_LEADER_NOT_AVAILABLE"),
    (81, "GROUP_MAX_SIZE_REACHED"),
    (82, "FENCED_INSTANCE_ID"),
    (83, "ELIGIBLE_LEADERS_NOT_AVAILABLE"),
    (84, "ELECTION_NOT_NEEDED"),
    (85, "NO_REASSIGNMENT_IN_PROGRESS"),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC"),
    (87, "INVALID_RECORD"),
    (88, "UNSTABLE_OFFSET_COMMIT"),
    (89, "THROTTLING_QUOTA_EXCEEDED"),
    (90, "PRODUCER_FENCED"),
    (91, "RESOURCE_NOT_FOUND"),
    (92, "DUPLICATE_RESOURCE"),
    (93, "UNACCEPTABLE_CREDENTIAL"),
    (94, "INCONSISTENT_VOTER_SET"),
    (95, "INVALID_UPDATE_VERSION"),
    (96, "FEATURE_UPDATE_FAILED"),
    (97, "PRINCIPAL_DESERIALIZATION_FAILURE"),
    (98, "SNAPSHOT_NOT_FOUND"),
    (99, "POSITION_OUT_OF_RANGE"),
    (100, "UNKNOWN_TOPIC_ID"),
    (101, "DUPLICATE_BROKER_REGISTRATION"),
    (102, "BROKER_ID_NOT_REGISTERED"),
    (103, "INCONSISTENT_TOPIC_ID"),
    (104, "INCONSISTENT_CLUSTER_ID"),
    (105, "TRANSACTIONAL_ID_NOT_FOUND"),
    (106, "FETCH_SESSION_TOPIC_ID_ERROR"),
    (107, "INELIGIBLE_REPLICA"),
    (108, "NEW_LEADER_ELECTED"),
    (109, "OFFSET_MOVED_TO_TIERED_STORAGE"),
    (110, "FENCED_MEMBER_EPOCH"),
    (111, "UNRELEASED_INSTANCE_ID"),
    (112, "UNSUPPORTED_ASSIGNOR"),
    (113, "STALE_MEMBER_EPOCH"),
    (114, "MISMATCHED_ENDPOINT_TYPE"),
    (115, "UNSUPPORTED_ENDPOINT_TYPE"),
    (116, "UNKNOWN_CONTROLLER_ID"),
    (117, "UNKNOWN_SUBSCRIPTION_ID"),
    (118, "TELEMETRY_TOO_LARGE"),
    (119, "INVALID_REGISTRATION"),
    (120, "TRANSACTION_ABORTABLE"),
    (121, "INVALID_RECORD_STATE"),
    (122, "SHARE_SESSION_NOT_FOUND"),
    (123, "INVALID_SHARE_SESSION_EPOCH"),
    (124, "FENCED_STATE_EPOCH"),
    (125, "INVALID_VOTER_KEY"),
    (126, "DUPLICATE_VOTER"),
    (127, "VOTER_NOT_FOUND"),
    (128, "INVALID_REGULAR_EXPRESSION"),
    (129, "REBOOTSTRAP_REQUIRED"),
    (130, "STREAMS_INVALID_TOPOLOGY"),
    (131, "STREAMS_INVALID_TOPOLOGY_EPOCH"),
    (132, "STREAMS_TOPOLOGY_FENCED"),
    (133, "SHARE_SESSION_LIMIT_REACHED"),
];

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
    (100, "no topic has this id; it may have been deleted"),
];

/// Kafka's name for an error code, `UNKNOWN_ERROR_CODE` for one it does not define.
pub fn error_name(code: i16) -> &'static str {
    NAMES
        .binary_search_by_key(&code, |(c, _)| *c)
        .map(|i| NAMES[i].1)
        .unwrap_or("UNKNOWN_ERROR_CODE")
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
    fn names_are_sorted_unique_and_contiguous() {
        for pair in NAMES.windows(2) {
            assert_eq!(
                pair[0].0 + 1,
                pair[1].0,
                "gap or disorder after {:?}",
                pair[0]
            );
        }
        assert_eq!(NAMES.first().map(|n| n.0), Some(-1));
        let mut names: Vec<_> = NAMES.iter().map(|n| n.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
    }

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
