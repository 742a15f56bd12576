//! DescribeUserScramCredentials (KIP-554) from the metadata image, as Kafka's
//! `ScramImage.describe`: every user with a credential when none are named; a named user
//! without one gets RESOURCE_NOT_FOUND, one named twice DUPLICATE_RESOURCE, each with
//! Kafka's message. Only mechanisms and iteration counts are told, never the keys.
//! Without DESCRIBE on the cluster the whole request fails with
//! CLUSTER_AUTHORIZATION_FAILED (Kafka's `getErrorResponse`: the top-level code and one
//! nameless result per named user).

use std::collections::BTreeMap;

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use gregor_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};

use super::RequestContext;

/// Versions served (Kafka 4.3.1's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Describes the named users' credentials (all users' when none are named).
pub fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if let Some(code) =
        super::authorize::Checker::new(ctx).cluster_error(crate::authorizer::AclOperation::Describe)
    {
        return DescribeUserScramCredentialsResponse {
            error_code: code,
            error_message: None,
            results: (request.users.iter().flatten())
                .map(|_| DescribeUserScramCredentialsResult {
                    error_code: code,
                    error_message: None,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let image = ctx.broker.image();
    let credentials = image.scram_credentials();
    // User name to "named twice".
    let mut users: BTreeMap<String, bool> = BTreeMap::new();
    match request.users.as_deref() {
        None | Some([]) => {
            for (user, _) in credentials.keys() {
                users.insert(user.clone(), false);
            }
        }
        Some(named) => {
            for user in named {
                let name = user.name.to_string();
                let twice = users.contains_key(&name);
                users.insert(name, twice);
            }
        }
    }
    let results = users
        .into_iter()
        .map(|(user, twice)| {
            if twice {
                return DescribeUserScramCredentialsResult {
                    error_code: error_code::DUPLICATE_RESOURCE,
                    error_message: Some(
                        format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                        )
                        .into(),
                    ),
                    user: user.into(),
                    ..Default::default()
                };
            }
            let infos: Vec<CredentialInfo> = credentials
                .iter()
                .filter(|((name, _), _)| *name == user)
                .map(|((_, mechanism), record)| CredentialInfo {
                    mechanism: *mechanism,
                    iterations: record.iterations,
                    ..Default::default()
                })
                .collect();
            if infos.is_empty() {
                DescribeUserScramCredentialsResult {
                    error_code: error_code::RESOURCE_NOT_FOUND,
                    error_message: Some(
                        format!("Attempt to describe a user credential that does not exist: {user}")
                            .into(),
                    ),
                    user: user.into(),
                    ..Default::default()
                }
            } else {
                DescribeUserScramCredentialsResult {
                    user: user.into(),
                    error_message: None,
                    credential_infos: infos,
                    ..Default::default()
                }
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse {
        error_message: None,
        results,
        ..Default::default()
    }
}
