//! Forwarding of admin requests to the active controller (KIP-590, Kafka's
//! `ForwardingManager`): in a cluster, a node that is not the active controller (a
//! broker-only node, or a controller that is not the leader) does not change the metadata
//! itself. The client's request, header and body as received, goes to the active
//! controller inside an EnvelopeRequest with the client's principal (`DefaultPrincipalData`,
//! version-prefixed) and address; the envelope's response carries the controller's response
//! frame (header and body), whose body is answered to the client at its version with its
//! correlation id.
//!
//! The APIs forwarded are those Kafka 4's `KafkaApis` forwards on a KRaft broker
//! ([`FORWARDED`]). Kafka answers BROKER_LOGGER resources of (Incremental)AlterConfigs on
//! the broker and forwards the rest; here the whole request goes to the controller, which
//! answers every resource (a deliberate simplification). Failures follow Kafka: an
//! envelope error or an unreadable response is UNKNOWN_SERVER_ERROR for every item, no
//! controller in time is REQUEST_TIMED_OUT, UNSUPPORTED_VERSION in the envelope closes the
//! client's connection so it asks for versions again.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use gregor_protocol::error_code;
use gregor_protocol::message::Encodable;
use gregor_protocol::messages::default_principal_data::DefaultPrincipalData;
use gregor_protocol::messages::envelope_request::EnvelopeRequest;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, RequestBody, ResponseBody};

use super::RequestContext;
use crate::cluster::controller_channel::ChannelError;

/// The APIs a KRaft broker forwards to the controller (Kafka 4's `maybeForwardToController`
/// and `forwardToControllerOrFail` cases of `KafkaApis.handle`) that this broker serves.
pub const FORWARDED: &[ApiKey] = &[
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterClientQuotas,
    ApiKey::AlterUserScramCredentials,
    ApiKey::UpdateFeatures,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::UnregisterBroker,
    ApiKey::DescribeQuorum,
    ApiKey::AddRaftVoter,
    ApiKey::RemoveRaftVoter,
];

/// How long a forwarded request may wait for the active controller (Kafka's forwarding
/// channel: `retryTimeoutMs = 60000`).
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What forwarding decided.
pub enum Forwarded {
    /// Not forwarded: handle the request here.
    No,
    /// The response to answer the client with.
    Answer(Box<ResponseBody>),
    /// Close the client's connection (Kafka: the controller no longer serves the version).
    Close(String),
}

/// Whether `api_key` arriving on this listener is forwarded: in cluster mode, on a broker
/// listener, when this node is not the active controller.
pub fn should_forward(ctx: &RequestContext, api_key: ApiKey) -> bool {
    let config = &ctx.broker.config;
    config.is_cluster()
        && !ctx.on_controller_listener()
        && FORWARDED.contains(&api_key)
        && (!config.is_controller() || !ctx.broker.controller.is_active())
        && ctx.broker.controller_link.get().is_some()
}

/// Forwards the request `raw` (the frame as received: header then body) whose decoded
/// `header` and `body` are given, and returns what to answer.
pub async fn forward(
    ctx: &RequestContext,
    header: &RequestHeader,
    api_key: ApiKey,
    version: i16,
    raw: Bytes,
    body: &RequestBody,
) -> Forwarded {
    let Some(link) = ctx.broker.controller_link.get() else {
        return Forwarded::No;
    };
    let principal = DefaultPrincipalData {
        r#type: ctx.principal.principal_type.clone().into(),
        name: ctx.principal.name.clone().into(),
        token_authenticated: false,
        ..Default::default()
    };
    // Kafka's `DefaultKafkaPrincipalBuilder.serialize`: the version, then the data.
    let mut principal_bytes = BytesMut::new();
    principal_bytes.extend_from_slice(&0i16.to_be_bytes());
    if let Err(error) = principal.encode(&mut principal_bytes, 0) {
        tracing::error!(%error, "cannot encode the principal of a forwarded request");
        return answer_error(body, error_code::UNKNOWN_SERVER_ERROR);
    }
    let address = match ctx.peer.ip() {
        IpAddr::V4(ip) => Bytes::copy_from_slice(&ip.octets()),
        IpAddr::V6(ip) => Bytes::copy_from_slice(&ip.octets()),
    };
    let envelope = EnvelopeRequest {
        request_data: raw,
        request_principal: Some(principal_bytes.freeze()),
        client_host_address: address,
        ..Default::default()
    };
    let sent = link.forwarding.send(&envelope, 0, 0, FORWARD_TIMEOUT).await;
    let response = match sent {
        Ok(response) => response,
        // Kafka: a version mismatch with the controller is UNKNOWN_SERVER_ERROR, no
        // answer in time REQUEST_TIMED_OUT (`TimeoutException`).
        Err(ChannelError::Unsupported(error)) => {
            tracing::warn!(api = api_key.name(), %error, "cannot forward to the controller");
            return answer_error(body, error_code::UNKNOWN_SERVER_ERROR);
        }
        Err(error) => {
            tracing::warn!(api = api_key.name(), %error, "cannot forward to the controller");
            return answer_error(body, error_code::REQUEST_TIMED_OUT);
        }
    };
    if response.error_code == error_code::UNSUPPORTED_VERSION {
        return Forwarded::Close(format!(
            "the controller does not serve {} v{version}",
            api_key.name()
        ));
    }
    if response.error_code != error_code::NONE {
        tracing::debug!(
            api = api_key.name(),
            error = response.error_code,
            "the forwarded request failed in its envelope"
        );
        return answer_error(body, error_code::UNKNOWN_SERVER_ERROR);
    }
    let Some(mut frame) = response.response_data else {
        return answer_error(body, error_code::UNKNOWN_SERVER_ERROR);
    };
    let decoded = gregor_protocol::frame::decode_response_header(&mut frame, api_key, version)
        .map_err(|e| e.to_string())
        .and_then(|inner| {
            if inner.correlation_id != header.correlation_id {
                return Err(format!(
                    "correlation id {} answers {}",
                    inner.correlation_id, header.correlation_id
                ));
            }
            ResponseBody::decode(api_key, version, &mut frame).map_err(|e| e.to_string())
        });
    match decoded {
        Ok(body) => Forwarded::Answer(Box::new(body)),
        Err(error) => {
            tracing::error!(api = api_key.name(), %error, "cannot read a forwarded response");
            answer_error(body, error_code::UNKNOWN_SERVER_ERROR)
        }
    }
}

fn answer_error(body: &RequestBody, code: i16) -> Forwarded {
    match error_response(body, code) {
        Some(response) => Forwarded::Answer(Box::new(response)),
        None => Forwarded::Close(format!("cannot forward {}", body.api_key().name())),
    }
}

/// Kafka's `AbstractRequest.getErrorResponse` for the forwarded APIs: every item of the
/// request answered with `code`.
pub fn error_response(body: &RequestBody, code: i16) -> Option<ResponseBody> {
    use gregor_protocol::messages::*;
    Some(match body {
        RequestBody::CreateTopics(r) => {
            use create_topics_response::{CreatableTopicResult, CreateTopicsResponse};
            CreateTopicsResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| CreatableTopicResult {
                        name: t.name.clone(),
                        error_code: code,
                        num_partitions: -1,
                        replication_factor: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::DeleteTopics(r) => {
            use delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
            let mut responses: Vec<DeletableTopicResult> = r
                .topic_names
                .iter()
                .map(|name| DeletableTopicResult {
                    name: Some(name.clone()),
                    error_code: code,
                    ..Default::default()
                })
                .collect();
            responses.extend(r.topics.iter().map(|t| DeletableTopicResult {
                name: t.name.clone(),
                topic_id: t.topic_id,
                error_code: code,
                ..Default::default()
            }));
            DeleteTopicsResponse {
                responses,
                ..Default::default()
            }
            .into()
        }
        RequestBody::CreatePartitions(r) => {
            use create_partitions_response::{
                CreatePartitionsResponse, CreatePartitionsTopicResult,
            };
            CreatePartitionsResponse {
                results: r
                    .topics
                    .iter()
                    .map(|t| CreatePartitionsTopicResult {
                        name: t.name.clone(),
                        error_code: code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::AlterConfigs(r) => {
            use alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};
            AlterConfigsResponse {
                responses: r
                    .resources
                    .iter()
                    .map(|res| AlterConfigsResourceResponse {
                        error_code: code,
                        resource_type: res.resource_type,
                        resource_name: res.resource_name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::IncrementalAlterConfigs(r) => {
            use incremental_alter_configs_response::{
                AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
            };
            IncrementalAlterConfigsResponse {
                responses: r
                    .resources
                    .iter()
                    .map(|res| AlterConfigsResourceResponse {
                        error_code: code,
                        resource_type: res.resource_type,
                        resource_name: res.resource_name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::CreateAcls(r) => {
            use create_acls_response::{AclCreationResult, CreateAclsResponse};
            CreateAclsResponse {
                results: r
                    .creations
                    .iter()
                    .map(|_| AclCreationResult {
                        error_code: code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::DeleteAcls(r) => {
            use delete_acls_response::{DeleteAclsFilterResult, DeleteAclsResponse};
            DeleteAclsResponse {
                filter_results: r
                    .filters
                    .iter()
                    .map(|_| DeleteAclsFilterResult {
                        error_code: code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        RequestBody::AlterClientQuotas(r) => {
            super::alter_client_quotas::all_failed(r, code, None).into()
        }
        RequestBody::AlterUserScramCredentials(r) => {
            use alter_user_scram_credentials_response::{
                AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
            };
            let users = r
                .deletions
                .iter()
                .map(|d| d.name.clone())
                .chain(r.upsertions.iter().map(|u| u.name.clone()));
            let mut results: Vec<AlterUserScramCredentialsResult> = Vec::new();
            for user in users {
                if !results.iter().any(|r| r.user == user) {
                    results.push(AlterUserScramCredentialsResult {
                        user,
                        error_code: code,
                        ..Default::default()
                    });
                }
            }
            AlterUserScramCredentialsResponse {
                results,
                ..Default::default()
            }
            .into()
        }
        RequestBody::UpdateFeatures(_) => update_features_response::UpdateFeaturesResponse {
            error_code: code,
            ..Default::default()
        }
        .into(),
        RequestBody::ElectLeaders(r) => elect_leaders_response::ElectLeadersResponse {
            error_code: code,
            replica_election_results: super::elect_leaders::all_failed(r, code, None),
            ..Default::default()
        }
        .into(),
        RequestBody::AlterPartitionReassignments(r) => {
            super::alter_partition_reassignments::all_failed(r, code, None).into()
        }
        RequestBody::ListPartitionReassignments(r) => {
            super::list_partition_reassignments::all_failed(r, code, None).into()
        }
        RequestBody::UnregisterBroker(_) => unregister_broker_response::UnregisterBrokerResponse {
            error_code: code,
            ..Default::default()
        }
        .into(),
        RequestBody::DescribeQuorum(_) => describe_quorum_response::DescribeQuorumResponse {
            error_code: code,
            ..Default::default()
        }
        .into(),
        RequestBody::AddRaftVoter(_) => {
            gregor_protocol::messages::add_raft_voter_response::AddRaftVoterResponse {
                error_code: code,
                ..Default::default()
            }
            .into()
        }
        RequestBody::RemoveRaftVoter(_) => {
            gregor_protocol::messages::remove_raft_voter_response::RemoveRaftVoterResponse {
                error_code: code,
                ..Default::default()
            }
            .into()
        }
        _ => return None,
    })
}
