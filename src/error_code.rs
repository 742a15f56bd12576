//! Kafka's error codes: the `i16` every response carries, its name, whether a client may
//! retry it, and the default message Kafka's broker sends with it.
//!
//! The facts are those of Kafka's `Errors` enum (clients' `org.apache.kafka.common.protocol`):
//! codes -1 to 133 as of Kafka 4.3, names as Kafka spells them, retriability as Kafka's
//! exception classes say (a subclass of `RetriableException`), and the default message a
//! broker puts in `error_message` when the failure has no message of its own.
//!
//! Two views of one table:
//! - [`ErrorCode`], a typed code that also holds codes this table does not know (a newer
//!   broker may send them), with [`ErrorCode::name`], [`ErrorCode::is_retriable`] and
//!   [`ErrorCode::default_message`];
//! - plain `i16` constants of the same names in this module (`error_code::NONE`,
//!   `error_code::UNKNOWN_TOPIC_OR_PARTITION`, ...), for the `error_code` fields of the
//!   generated messages.
//!
//! ```
//! use gregor_protocol::error_code::{self, ErrorCode};
//!
//! let code = ErrorCode::from(error_code::NOT_LEADER_OR_FOLLOWER);
//! assert_eq!(code, ErrorCode::NOT_LEADER_OR_FOLLOWER);
//! assert_eq!(code.name(), Some("NOT_LEADER_OR_FOLLOWER"));
//! assert!(code.is_retriable());
//! assert_eq!(code.to_string(), "NOT_LEADER_OR_FOLLOWER (6)");
//! assert_eq!(ErrorCode::from(999).name(), None);
//! ```

use std::fmt;

/// A Kafka error code, known to this table or not.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ErrorCode(i16);

/// What the table knows of one code.
struct Entry {
    code: i16,
    name: &'static str,
    retriable: bool,
    message: Option<&'static str>,
}

macro_rules! error_table {
    ($(($code:expr, $name:ident, $retriable:expr, $message:expr),)*) => {
        $(
            #[doc = concat!("Kafka's `", stringify!($name), "` (", stringify!($code), ").")]
            pub const $name: i16 = $code;
        )*

        impl ErrorCode {
            $(
                #[doc = concat!("Kafka's `", stringify!($name), "` (", stringify!($code), ").")]
                pub const $name: ErrorCode = ErrorCode($code);
            )*
        }

        /// Every code, in code order, contiguous from -1.
        const TABLE: &[Entry] = &[
            $(Entry { code: $code, name: stringify!($name), retriable: $retriable, message: $message },)*
        ];
    };
}

error_table! {
    (-1, UNKNOWN_SERVER_ERROR, false, Some("The server experienced an unexpected error when processing the request.")),
    (0, NONE, false, None),
    (1, OFFSET_OUT_OF_RANGE, false, Some("The requested offset is not within the range of offsets maintained by the server.")),
    (2, CORRUPT_MESSAGE, true, Some("This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.")),
    (3, UNKNOWN_TOPIC_OR_PARTITION, true, Some("This server does not host this topic-partition.")),
    (4, INVALID_FETCH_SIZE, false, Some("The requested fetch size is invalid.")),
    (5, LEADER_NOT_AVAILABLE, true, Some("There is no leader for this topic-partition as we are in the middle of a leadership election.")),
    (6, NOT_LEADER_OR_FOLLOWER, true, Some("For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.")),
    (7, REQUEST_TIMED_OUT, true, Some("The request timed out.")),
    (8, BROKER_NOT_AVAILABLE, false, Some("The broker is not available.")),
    (9, REPLICA_NOT_AVAILABLE, true, Some("The replica is not available for the requested topic-partition. Produce/Fetch requests and other requests intended only for the leader or follower return NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition.")),
    (10, MESSAGE_TOO_LARGE, false, Some("The request included a message larger than the max message size the server will accept.")),
    (11, STALE_CONTROLLER_EPOCH, false, Some("The controller moved to another broker.")),
    (12, OFFSET_METADATA_TOO_LARGE, false, Some("The metadata field of the offset request was too large.")),
    (13, NETWORK_EXCEPTION, true, Some("The server disconnected before a response was received.")),
    (14, COORDINATOR_LOAD_IN_PROGRESS, true, Some("The coordinator is loading and hence can't process requests.")),
    (15, COORDINATOR_NOT_AVAILABLE, true, Some("The coordinator is not available.")),
    (16, NOT_COORDINATOR, true, Some("This is not the correct coordinator.")),
    (17, INVALID_TOPIC_EXCEPTION, false, Some("The request attempted to perform an operation on an invalid topic.")),
    (18, RECORD_LIST_TOO_LARGE, false, Some("The request included message batch larger than the configured segment size on the server.")),
    (19, NOT_ENOUGH_REPLICAS, true, Some("Messages are rejected since there are fewer in-sync replicas than required.")),
    (20, NOT_ENOUGH_REPLICAS_AFTER_APPEND, true, Some("Messages are written to the log, but to fewer in-sync replicas than required.")),
    (21, INVALID_REQUIRED_ACKS, false, Some("Produce request specified an invalid value for required acks.")),
    (22, ILLEGAL_GENERATION, false, Some("Specified group generation id is not valid.")),
    (23, INCONSISTENT_GROUP_PROTOCOL, false, Some("The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list.")),
    (24, INVALID_GROUP_ID, false, Some("The configured groupId is invalid.")),
    (25, UNKNOWN_MEMBER_ID, false, Some("The coordinator is not aware of this member.")),
    (26, INVALID_SESSION_TIMEOUT, false, Some("The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms).")),
    (27, REBALANCE_IN_PROGRESS, false, Some("The group is rebalancing, so a rejoin is needed.")),
    (28, INVALID_COMMIT_OFFSET_SIZE, false, Some("The committing offset data size is not valid.")),
    (29, TOPIC_AUTHORIZATION_FAILED, false, Some("Topic authorization failed.")),
    (30, GROUP_AUTHORIZATION_FAILED, false, Some("Group authorization failed.")),
    (31, CLUSTER_AUTHORIZATION_FAILED, false, Some("Cluster authorization failed.")),
    (32, INVALID_TIMESTAMP, false, Some("The timestamp of the message is out of acceptable range.")),
    (33, UNSUPPORTED_SASL_MECHANISM, false, Some("The broker does not support the requested SASL mechanism.")),
    (34, ILLEGAL_SASL_STATE, false, Some("Request is not valid given the current SASL state.")),
    (35, UNSUPPORTED_VERSION, false, Some("The version of API is not supported.")),
    (36, TOPIC_ALREADY_EXISTS, false, Some("Topic with this name already exists.")),
    (37, INVALID_PARTITIONS, false, Some("Number of partitions is below 1.")),
    (38, INVALID_REPLICATION_FACTOR, false, Some("Replication factor is below 1 or larger than the number of available brokers.")),
    (39, INVALID_REPLICA_ASSIGNMENT, false, Some("Replica assignment is invalid.")),
    (40, INVALID_CONFIG, false, Some("Configuration is invalid.")),
    (41, NOT_CONTROLLER, true, Some("This is not the correct controller for this cluster.")),
    (42, INVALID_REQUEST, false, Some("This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.")),
    (43, UNSUPPORTED_FOR_MESSAGE_FORMAT, false, Some("The message format version on the broker does not support the request.")),
    (44, POLICY_VIOLATION, false, Some("Request parameters do not satisfy the configured policy.")),
    (45, OUT_OF_ORDER_SEQUENCE_NUMBER, false, Some("The broker received an out of order sequence number.")),
    (46, DUPLICATE_SEQUENCE_NUMBER, false, Some("The broker received a duplicate sequence number.")),
    (47, INVALID_PRODUCER_EPOCH, false, Some("Producer attempted to produce with an old epoch.")),
    (48, INVALID_TXN_STATE, false, Some("The producer attempted a transactional operation in an invalid state.")),
    (49, INVALID_PRODUCER_ID_MAPPING, false, Some("The producer attempted to use a producer id which is not currently assigned to its transactional id.")),
    (50, INVALID_TRANSACTION_TIMEOUT, false, Some("The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).")),
    (51, CONCURRENT_TRANSACTIONS, true, Some("The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.")),
    (52, TRANSACTION_COORDINATOR_FENCED, false, Some("Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer.")),
    (53, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, false, Some("Transactional Id authorization failed.")),
    (54, SECURITY_DISABLED, false, Some("Security features are disabled.")),
    (55, OPERATION_NOT_ATTEMPTED, false, Some("The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest.")),
    (56, KAFKA_STORAGE_ERROR, true, Some("Disk error when trying to access log file on the disk.")),
    (57, LOG_DIR_NOT_FOUND, false, Some("The user-specified log directory is not found in the broker config.")),
    (58, SASL_AUTHENTICATION_FAILED, false, Some("SASL Authentication failed.")),
    (59, UNKNOWN_PRODUCER_ID, false, Some("This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception.")),
    (60, REASSIGNMENT_IN_PROGRESS, false, Some("A partition reassignment is in progress.")),
    (61, DELEGATION_TOKEN_AUTH_DISABLED, false, Some("Delegation Token feature is not enabled.")),
    (62, DELEGATION_TOKEN_NOT_FOUND, false, Some("Delegation Token is not found on server.")),
    (63, DELEGATION_TOKEN_OWNER_MISMATCH, false, Some("Specified Principal is not valid Owner/Renewer.")),
    (64, DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, false, Some("Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels.")),
    (65, DELEGATION_TOKEN_AUTHORIZATION_FAILED, false, Some("Delegation Token authorization failed.")),
    (66, DELEGATION_TOKEN_EXPIRED, false, Some("Delegation Token is expired.")),
    (67, INVALID_PRINCIPAL_TYPE, false, Some("Supplied principalType is not supported.")),
    (68, NON_EMPTY_GROUP, false, Some("The group is not empty.")),
    (69, GROUP_ID_NOT_FOUND, false, Some("The group id does not exist.")),
    (70, FETCH_SESSION_ID_NOT_FOUND, true, Some("The fetch session ID was not found.")),
    (71, INVALID_FETCH_SESSION_EPOCH, true, Some("The fetch session epoch is invalid.")),
    (72, LISTENER_NOT_FOUND, true, Some("There is no listener on the leader broker that matches the listener on which metadata request was processed.")),
    (73, TOPIC_DELETION_DISABLED, false, Some("Topic deletion is disabled.")),
    (74, FENCED_LEADER_EPOCH, true, Some("The leader epoch in the request is older than the epoch on the broker.")),
    (75, UNKNOWN_LEADER_EPOCH, true, Some("The leader epoch in the request is newer than the epoch on the broker.")),
    (76, UNSUPPORTED_COMPRESSION_TYPE, false, Some("The requesting client does not support the compression type of given partition.")),
    (77, STALE_BROKER_EPOCH, false, Some("Broker epoch has changed.")),
    (78, OFFSET_NOT_AVAILABLE, true, Some("The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing.")),
    (79, MEMBER_ID_REQUIRED, false, Some("The group member needs to have a valid member id before actually entering a consumer group.")),
    (80, PREFERRED_LEADER_NOT_AVAILABLE, true, Some("The preferred leader was not available.")),
    (81, GROUP_MAX_SIZE_REACHED, false, Some("The consumer group has reached its max size.")),
    (82, FENCED_INSTANCE_ID, false, Some("The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.")),
    (83, ELIGIBLE_LEADERS_NOT_AVAILABLE, true, Some("Eligible topic partition leaders are not available.")),
    (84, ELECTION_NOT_NEEDED, true, Some("Leader election not needed for topic partition.")),
    (85, NO_REASSIGNMENT_IN_PROGRESS, false, Some("No partition reassignment is in progress.")),
    (86, GROUP_SUBSCRIBED_TO_TOPIC, false, Some("Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.")),
    (87, INVALID_RECORD, false, Some("This record has failed the validation on broker and hence will be rejected.")),
    (88, UNSTABLE_OFFSET_COMMIT, true, Some("There are unstable offsets that need to be cleared.")),
    (89, THROTTLING_QUOTA_EXCEEDED, true, Some("The throttling quota has been exceeded.")),
    (90, PRODUCER_FENCED, false, Some("There is a newer producer with the same transactionalId which fences the current one.")),
    (91, RESOURCE_NOT_FOUND, false, Some("A request illegally referred to a resource that does not exist.")),
    (92, DUPLICATE_RESOURCE, false, Some("A request illegally referred to the same resource twice.")),
    (93, UNACCEPTABLE_CREDENTIAL, false, Some("Requested credential would not meet criteria for acceptability.")),
    (94, INCONSISTENT_VOTER_SET, false, Some("Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters.")),
    (95, INVALID_UPDATE_VERSION, false, Some("The given update version was invalid.")),
    (96, FEATURE_UPDATE_FAILED, false, Some("Unable to update finalized features due to an unexpected server error.")),
    (97, PRINCIPAL_DESERIALIZATION_FAILURE, false, Some("Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup.")),
    (98, SNAPSHOT_NOT_FOUND, false, Some("Requested snapshot was not found.")),
    (99, POSITION_OUT_OF_RANGE, false, Some("Requested position is not greater than or equal to zero, and less than the size of the snapshot.")),
    (100, UNKNOWN_TOPIC_ID, true, Some("This server does not host this topic ID.")),
    (101, DUPLICATE_BROKER_REGISTRATION, false, Some("This broker ID is already in use.")),
    (102, BROKER_ID_NOT_REGISTERED, false, Some("The given broker ID was not registered.")),
    (103, INCONSISTENT_TOPIC_ID, true, Some("The log's topic ID did not match the topic ID in the request.")),
    (104, INCONSISTENT_CLUSTER_ID, false, Some("The clusterId in the request does not match that found on the server.")),
    (105, TRANSACTIONAL_ID_NOT_FOUND, false, Some("The transactionalId could not be found.")),
    (106, FETCH_SESSION_TOPIC_ID_ERROR, true, Some("The fetch session encountered inconsistent topic ID usage.")),
    (107, INELIGIBLE_REPLICA, false, Some("The new ISR contains at least one ineligible replica.")),
    (108, NEW_LEADER_ELECTED, false, Some("The AlterPartition request successfully updated the partition state but the leader has changed.")),
    (109, OFFSET_MOVED_TO_TIERED_STORAGE, false, Some("The requested offset is moved to tiered storage.")),
    (110, FENCED_MEMBER_EPOCH, false, Some("The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin.")),
    (111, UNRELEASED_INSTANCE_ID, false, Some("The instance ID is still used by another member in the consumer group. That member must leave first.")),
    (112, UNSUPPORTED_ASSIGNOR, false, Some("The assignor or its version range is not supported by the consumer group.")),
    (113, STALE_MEMBER_EPOCH, false, Some("The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API.")),
    (114, MISMATCHED_ENDPOINT_TYPE, false, Some("The request was sent to an endpoint of the wrong type.")),
    (115, UNSUPPORTED_ENDPOINT_TYPE, false, Some("This endpoint type is not supported yet.")),
    (116, UNKNOWN_CONTROLLER_ID, false, Some("This controller ID is not known.")),
    (117, UNKNOWN_SUBSCRIPTION_ID, false, Some("Client sent a push telemetry request with an invalid or outdated subscription ID.")),
    (118, TELEMETRY_TOO_LARGE, false, Some("Client sent a push telemetry request larger than the maximum size the broker will accept.")),
    (119, INVALID_REGISTRATION, false, Some("The controller has considered the broker registration to be invalid.")),
    (120, TRANSACTION_ABORTABLE, false, Some("The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID.")),
    (121, INVALID_RECORD_STATE, false, Some("The record state is invalid. The acknowledgement of delivery could not be completed.")),
    (122, SHARE_SESSION_NOT_FOUND, true, Some("The share session was not found.")),
    (123, INVALID_SHARE_SESSION_EPOCH, true, Some("The share session epoch is invalid.")),
    (124, FENCED_STATE_EPOCH, false, Some("The share coordinator rejected the request because the share-group state epoch did not match.")),
    (125, INVALID_VOTER_KEY, false, Some("The voter key doesn't match the receiving replica's key.")),
    (126, DUPLICATE_VOTER, false, Some("The voter is already part of the set of voters.")),
    (127, VOTER_NOT_FOUND, false, Some("The voter is not part of the set of voters.")),
    (128, INVALID_REGULAR_EXPRESSION, false, Some("The regular expression is not valid.")),
    (129, REBOOTSTRAP_REQUIRED, false, Some("Client metadata is stale. The client should rebootstrap to obtain new metadata.")),
    (130, STREAMS_INVALID_TOPOLOGY, false, Some("The supplied topology is invalid.")),
    (131, STREAMS_INVALID_TOPOLOGY_EPOCH, false, Some("The supplied topology epoch is invalid.")),
    (132, STREAMS_TOPOLOGY_FENCED, false, Some("The supplied topology epoch is outdated.")),
    (133, SHARE_SESSION_LIMIT_REACHED, true, Some("The limit of share sessions has been reached.")),
}

impl ErrorCode {
    /// The code as it is on the wire.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// Whether this is an error at all (not `NONE`).
    pub const fn is_error(self) -> bool {
        self.0 != 0
    }

    /// Every code Kafka defines, in code order.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        TABLE.iter().map(|entry| ErrorCode(entry.code))
    }

    fn entry(self) -> Option<&'static Entry> {
        let index = usize::try_from(i32::from(self.0) + 1).ok()?;
        TABLE.get(index).filter(|entry| entry.code == self.0)
    }

    /// Whether Kafka defines this code.
    pub fn is_known(self) -> bool {
        self.entry().is_some()
    }

    /// Kafka's name (`UNKNOWN_TOPIC_OR_PARTITION`), `None` for a code it does not define.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|entry| entry.name)
    }

    /// Whether a client may retry the request as it is (Kafka's `RetriableException`
    /// subclasses); false for unknown codes, which clients treat as UNKNOWN_SERVER_ERROR.
    pub fn is_retriable(self) -> bool {
        self.entry().is_some_and(|entry| entry.retriable)
    }

    /// The message Kafka's broker sends with this code when the failure has none of its
    /// own; `None` for `NONE` and unknown codes.
    pub fn default_message(self) -> Option<&'static str> {
        self.entry().and_then(|entry| entry.message)
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> ErrorCode {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> i16 {
        code.0
    }
}

impl PartialEq<i16> for ErrorCode {
    fn eq(&self, other: &i16) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for ErrorCode {
    /// `NAME (code)`, or `UNKNOWN_ERROR_CODE (code)` for a code Kafka does not define.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            self.name().unwrap_or("UNKNOWN_ERROR_CODE"),
            self.0
        )
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_contiguous_from_minus_one_with_unique_names() {
        for (index, entry) in TABLE.iter().enumerate() {
            assert_eq!(i32::from(entry.code), index as i32 - 1, "{}", entry.name);
        }
        let mut names: Vec<&str> = TABLE.iter().map(|entry| entry.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        assert_eq!(ErrorCode::all().count(), 135);
    }

    #[test]
    fn well_known_codes() {
        assert_eq!(ErrorCode::NONE.code(), 0);
        assert!(!ErrorCode::NONE.is_error());
        assert_eq!(ErrorCode::NONE.default_message(), None);
        assert_eq!(ErrorCode::from(-1), ErrorCode::UNKNOWN_SERVER_ERROR);
        assert_eq!(
            ErrorCode::from(3).name(),
            Some("UNKNOWN_TOPIC_OR_PARTITION")
        );
        assert_eq!(ErrorCode::from(35).to_string(), "UNSUPPORTED_VERSION (35)");
        assert_eq!(
            ErrorCode::from(133).name(),
            Some("SHARE_SESSION_LIMIT_REACHED")
        );
        assert_eq!(ErrorCode::from(-2).to_string(), "UNKNOWN_ERROR_CODE (-2)");
        assert_eq!(ErrorCode::from(i16::MAX).name(), None);
        assert_eq!(ErrorCode::from(i16::MIN).name(), None);
        assert_eq!(
            ErrorCode::UNKNOWN_TOPIC_ID.default_message(),
            Some("This server does not host this topic ID.")
        );
        assert_eq!(UNKNOWN_TOPIC_OR_PARTITION, 3);
        assert_eq!(FENCED_MEMBER_EPOCH, 110);
    }

    #[test]
    fn retriable_as_kafkas_exception_classes() {
        for code in [
            2, 3, 5, 6, 7, 13, 14, 15, 16, 19, 20, 51, 56, 70, 71, 74, 75, 89, 100,
        ] {
            assert!(ErrorCode::from(code).is_retriable(), "{code}");
        }
        for code in [
            -1, 0, 1, 10, 22, 25, 27, 29, 35, 36, 42, 47, 58, 87, 90, 110, 999,
        ] {
            assert!(!ErrorCode::from(code).is_retriable(), "{code}");
        }
    }
}
