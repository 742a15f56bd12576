//! The Kafka error codes of the group coordinator (those not already in
//! [`crate::handlers::error_code`]) and their default messages.

/// The metadata string of an offset commit is too large.
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
/// The coordinator is loading (not used: loading happens before serving).
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// The coordinator is not available.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// This is not the right coordinator.
pub const NOT_COORDINATOR: i16 = 16;
/// The generation id is not the group's current one.
pub const ILLEGAL_GENERATION: i16 = 22;
/// The member's protocol type or protocols do not match the group's.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// The group id is empty.
pub const INVALID_GROUP_ID: i16 = 24;
/// The member id is not known to the coordinator.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// The session timeout is outside `group.min/max.session.timeout.ms`.
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
/// The group is rebalancing: rejoin.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// The offset commit was too large to be written.
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
/// The group still has members (DeleteGroups).
pub const NON_EMPTY_GROUP: i16 = 68;
/// No group has this id.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// A dynamic member must rejoin with the member id it was given (JoinGroup v4+).
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// The group is at `group.max.size`.
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
/// Another member with this `group.instance.id` replaced the sender.
pub const FENCED_INSTANCE_ID: i16 = 82;

/// Kafka's default message of an error code (`Errors.message()`); `"NONE"` for 0, as
/// FindCoordinator v1-v3 sends it.
pub fn message(code: i16) -> String {
    let text = match code {
        0 => "NONE",
        -1 => "The server experienced an unexpected error when processing the request.",
        COORDINATOR_NOT_AVAILABLE => "The coordinator is not available.",
        NOT_COORDINATOR => "This is not the correct coordinator.",
        COORDINATOR_LOAD_IN_PROGRESS => {
            "The coordinator is loading and hence can't process requests."
        }
        GROUP_ID_NOT_FOUND => "The group id does not exist.",
        code => {
            return crate::handlers::default_message(code)
                .map(str::to_string)
                .unwrap_or_else(|| format!("error code {code}"));
        }
    };
    text.to_string()
}
