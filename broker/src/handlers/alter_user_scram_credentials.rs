//! AlterUserScramCredentials (KIP-554): SCRAM credentials created, replaced or deleted in
//! the metadata log through the controller (`cluster/controller/scram_credentials.rs`).
//! Without ALTER on the cluster (Kafka's `ControllerApis.handleAlterUserScramCredentials`)
//! every named user, once each and sorted, gets CLUSTER_AUTHORIZATION_FAILED.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest;
use gregor_protocol::messages::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};

use super::{RequestContext, controller_failure};
use crate::cluster::controller::{ScramDeletion, ScramUpsertion};

/// Versions served (Kafka 4.3.1's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Applies the request's deletions and upsertions.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let deletions: Vec<ScramDeletion> = request
        .deletions
        .iter()
        .map(|d| ScramDeletion {
            name: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions: Vec<ScramUpsertion> = request
        .upsertions
        .iter()
        .map(|u| ScramUpsertion {
            name: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.clone(),
            salted_password: u.salted_password.clone(),
        })
        .collect();
    let users: Vec<String> = deletions
        .iter()
        .map(|d| d.name.clone())
        .chain(upsertions.iter().map(|u| u.name.clone()))
        .collect();
    if let Some(code) =
        super::authorize::Checker::new(ctx).cluster_error(crate::authorizer::AclOperation::Alter)
    {
        let sorted: std::collections::BTreeSet<String> = users.into_iter().collect();
        return AlterUserScramCredentialsResponse {
            results: sorted
                .into_iter()
                .map(|user| AlterUserScramCredentialsResult {
                    user: user.into(),
                    error_code: code,
                    error_message: None,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let outcome = ctx
        .broker
        .controller
        .run(move |c| c.alter_user_scram_credentials(&deletions, &upsertions))
        .await;
    let results = match outcome {
        Ok(results) => results
            .into_iter()
            .map(|r| AlterUserScramCredentialsResult {
                user: r.user.into(),
                error_code: r.error_code,
                error_message: r.error_message.map(Into::into),
                ..Default::default()
            })
            .collect(),
        Err(err) => {
            let error = controller_failure(&err);
            let mut seen = std::collections::BTreeSet::new();
            users
                .into_iter()
                .filter(|u| seen.insert(u.clone()))
                .map(|user| AlterUserScramCredentialsResult {
                    user: user.into(),
                    error_code: error.code,
                    error_message: error.message.clone().map(Into::into),
                    ..Default::default()
                })
                .collect()
        }
    };
    AlterUserScramCredentialsResponse {
        results,
        ..Default::default()
    }
}
