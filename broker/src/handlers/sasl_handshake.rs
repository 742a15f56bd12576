//! SaslHandshake once the connection needs no (more) authentication: on a PLAINTEXT or SSL
//! listener, or after a SASL exchange completed. Before that, `connection_auth.rs` answers
//! it. Kafka's `KafkaApis.handleSaslHandshakeRequest`: ILLEGAL_SASL_STATE, no mechanisms.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use gregor_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;

use super::RequestContext;

/// Versions served (Kafka 4.3.1's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Answers ILLEGAL_SASL_STATE.
pub fn handle(
    _ctx: &RequestContext,
    _version: i16,
    _request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    SaslHandshakeResponse {
        error_code: error_code::ILLEGAL_SASL_STATE,
        ..Default::default()
    }
}
