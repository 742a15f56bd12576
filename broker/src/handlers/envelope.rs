//! Envelope (API key 58, KIP-590): a request a broker forwards to the active controller on
//! behalf of a client, served on the controller listener as Kafka's
//! `ControllerApis.handleEnvelopeRequest` and `EnvelopeUtils` serve it:
//!
//! * the sender must have CLUSTER_ACTION on the cluster (only brokers forward), else
//!   `CLUSTER_AUTHORIZATION_FAILED` for the envelope; a cluster controller that is not the
//!   active one answers `NOT_CONTROLLER` for the envelope;
//! * `RequestPrincipal` is the client's principal as Kafka's `DefaultKafkaPrincipalBuilder`
//!   serializes it (an int16 version, then `DefaultPrincipalData`): missing or undecodable,
//!   `PRINCIPAL_DESERIALIZATION_FAILURE`; `ClientHostAddress` the client's IPv4 or IPv6
//!   address bytes, else `INVALID_REQUEST`;
//! * `RequestData` is the forwarded request with its own header: a header that does not
//!   parse, or a version not served here, is `UNSUPPORTED_VERSION`; an API Kafka does not
//!   mark forwardable (`ApiKeys.forwardable`) is `INVALID_REQUEST`;
//! * the forwarded request runs through the ordinary handler as the client's principal
//!   from the client's address, and its response (header and body) is `ResponseData`.
//!
//! The forwarded request is not charged to the client's quotas here (the forwarding broker
//! throttles its client).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use gregor_protocol::error_code;
use gregor_protocol::frame::peek_request_api;
use gregor_protocol::messages::default_principal_data::DefaultPrincipalData;
use gregor_protocol::messages::envelope_request::EnvelopeRequest;
use gregor_protocol::messages::envelope_response::EnvelopeResponse;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, Decodable, RequestBody, VersionRange};

use super::{ClientSoftware, RequestContext};
use crate::authorizer::AclOperation;
use crate::security::KafkaPrincipal;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The API keys Kafka's `ApiKeys` marks forwardable (the admin requests a broker sends to
/// the controller on a client's behalf).
pub const FORWARDABLE: &[i16] = &[
    19, // CreateTopics
    20, // DeleteTopics
    30, // CreateAcls
    31, // DeleteAcls
    33, // AlterConfigs
    37, // CreatePartitions
    38, // CreateDelegationToken
    39, // RenewDelegationToken
    40, // ExpireDelegationToken
    43, // ElectLeaders
    44, // IncrementalAlterConfigs
    45, // AlterPartitionReassignments
    46, // ListPartitionReassignments
    49, // AlterClientQuotas
    51, // AlterUserScramCredentials
    55, // DescribeQuorum
    57, // UpdateFeatures
    64, // UnregisterBroker
    67, // AllocateProducerIds
    80, // AddRaftVoter
    81, // RemoveRaftVoter
];

/// Whether Kafka forwards API `key` in an Envelope.
pub fn is_forwardable(key: i16) -> bool {
    FORWARDABLE.contains(&key)
}

fn failed(code: i16) -> EnvelopeResponse {
    EnvelopeResponse {
        response_data: None,
        error_code: code,
        ..Default::default()
    }
}

/// Decodes Kafka's serialized default principal (`DefaultKafkaPrincipalBuilder.serialize`).
pub fn decode_principal(bytes: &[u8]) -> Option<(KafkaPrincipal, bool)> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version != 0 {
        return None;
    }
    let data = DefaultPrincipalData::decode(&mut buf, version).ok()?;
    Some((
        KafkaPrincipal {
            principal_type: data.r#type.to_string(),
            name: data.name.to_string(),
        },
        data.token_authenticated,
    ))
}

/// The client address of an envelope: 4 or 16 bytes.
fn client_address(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// The future of [`handle`] (boxed: the handlers it runs include this one).
pub type Handling<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = EnvelopeResponse> + Send + 'a>>;

/// Answers an Envelope request (see the module docs).
pub fn handle(ctx: &RequestContext, _version: i16, request: EnvelopeRequest) -> Handling<'_> {
    Box::pin(answer(ctx, request))
}

async fn answer(ctx: &RequestContext, request: EnvelopeRequest) -> EnvelopeResponse {
    if super::authorize::Checker::new(ctx)
        .cluster_error(AclOperation::ClusterAction)
        .is_some()
    {
        tracing::info!(
            principal = %ctx.principal,
            "refused an envelope: the principal does not have CLUSTER_ACTION on the cluster"
        );
        return failed(error_code::CLUSTER_AUTHORIZATION_FAILED);
    }
    // A controller that is not the active one does not run forwarded requests: it would
    // hand some of them (CreateTopics) on to the active controller through its own broker
    // channel, which may be the very channel waiting for this answer. NOT_CONTROLLER sends
    // the forwarding broker to the next controller (Kafka's channel retries on it too).
    if ctx.broker.config.is_cluster() && !ctx.broker.controller.is_active() {
        return failed(error_code::NOT_CONTROLLER);
    }
    let Some((principal, _token)) = request
        .request_principal
        .as_deref()
        .and_then(decode_principal)
    else {
        return failed(error_code::PRINCIPAL_DESERIALIZATION_FAILURE);
    };
    let Some(address) = client_address(&request.client_host_address) else {
        return failed(error_code::INVALID_REQUEST);
    };
    let mut frame = Bytes::copy_from_slice(&request.request_data);
    let Some((key, version)) = peek_request_api(&frame) else {
        return failed(error_code::UNSUPPORTED_VERSION);
    };
    let Some(api_key) = ApiKey::from_i16(key) else {
        return failed(error_code::UNSUPPORTED_VERSION);
    };
    let Ok(header) = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
    else {
        return failed(error_code::UNSUPPORTED_VERSION);
    };
    if !is_forwardable(key) {
        tracing::info!(
            api = api_key.name(),
            "refused an envelope: the API is not eligible for forwarding"
        );
        return failed(error_code::INVALID_REQUEST);
    }
    let inner = RequestContext {
        broker: ctx.broker.clone(),
        peer: SocketAddr::new(address, 0),
        listener: ctx.listener.clone(),
        client_software: Arc::new(std::sync::Mutex::new(ClientSoftware::default())),
        principal: Arc::new(principal),
    };
    if !inner
        .served_versions(api_key)
        .is_some_and(|r| r.contains(version))
    {
        return failed(error_code::UNSUPPORTED_VERSION);
    }
    let Ok(body) = RequestBody::decode(api_key, version, &mut frame) else {
        return failed(error_code::UNSUPPORTED_VERSION);
    };
    tracing::debug!(
        api = api_key.name(),
        version,
        principal = %inner.principal,
        client = %address,
        "forwarded request"
    );
    let Some(response) = super::dispatch(&inner, &header, version, body).await else {
        return failed(error_code::UNKNOWN_SERVER_ERROR);
    };
    let mut out = BytesMut::new();
    if gregor_protocol::frame::encode_response(
        &mut out,
        api_key,
        version,
        header.correlation_id,
        &response,
    )
    .is_err()
    {
        return failed(error_code::UNKNOWN_SERVER_ERROR);
    }
    // Without the size: the envelope carries the header and body.
    let data = out.split_off(4).freeze();
    EnvelopeResponse {
        response_data: Some(data),
        error_code: error_code::NONE,
        ..Default::default()
    }
}
