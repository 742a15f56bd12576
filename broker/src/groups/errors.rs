//! The messages the group coordinator's responses carry with an error code (the codes
//! themselves are [`gregor_protocol::error_code`]).

use gregor_protocol::ErrorCode;

/// Kafka's default message of an error code (`Errors.message()`); `"NONE"` for 0, as
/// FindCoordinator v1-v3 sends it.
pub fn message(code: i16) -> String {
    if code == 0 {
        return "NONE".to_string();
    }
    ErrorCode::from(code)
        .default_message()
        .map_or_else(|| format!("error code {code}"), str::to_string)
}
