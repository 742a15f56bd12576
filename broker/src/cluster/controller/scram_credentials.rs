//! AlterUserScramCredentials, as Kafka's `ScramControlManager.alterCredentials`: each user
//! at most once per request (`DUPLICATE_RESOURCE` otherwise), a known mechanism
//! (`UNSUPPORTED_SASL_MECHANISM`), a name (`UNACCEPTABLE_CREDENTIAL`), iterations within
//! 4096..=16384, and only existing credentials deleted (`RESOURCE_NOT_FOUND`). The client
//! sends the salted password; the stored and server keys are derived from it here, and a
//! `UserScramCredentialRecord` (or `RemoveUserScramCredentialRecord`) written for each
//! accepted change, all in one batch.

use bytes::Bytes;
use gregor_protocol::MetadataRecord;
use gregor_protocol::error_code;
use gregor_protocol::messages::remove_user_scram_credential_record::RemoveUserScramCredentialRecord;
use gregor_protocol::messages::user_scram_credential_record::UserScramCredentialRecord;

use super::{Controller, ControllerError, v0};
use crate::security::sasl::ScramMechanism;
use crate::security::sasl::scram::{MAX_ITERATIONS, credential_from_salted};

/// `metadata.version` 3.5-IV2, the first with SCRAM in KRaft (`isScramSupported`).
const SCRAM_METADATA_VERSION: i16 = 11;

/// A credential to delete.
#[derive(Debug, Clone)]
pub struct ScramDeletion {
    /// The user.
    pub name: String,
    /// Kafka's mechanism type (1 SCRAM-SHA-256, 2 SCRAM-SHA-512).
    pub mechanism: i8,
}

/// A credential to create or replace.
#[derive(Debug, Clone)]
pub struct ScramUpsertion {
    /// The user.
    pub name: String,
    /// Kafka's mechanism type.
    pub mechanism: i8,
    /// PBKDF2 iterations.
    pub iterations: i32,
    /// The salt.
    pub salt: Bytes,
    /// PBKDF2 of the password.
    pub salted_password: Bytes,
}

/// The outcome for one user: error code (0 for none) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramResult {
    /// The user.
    pub user: String,
    /// The error code.
    pub error_code: i16,
    /// The message, `None` on success.
    pub error_message: Option<String>,
}

fn failure(user: &str, code: i16, message: &str) -> ScramResult {
    ScramResult {
        user: user.to_string(),
        error_code: code,
        error_message: Some(message.to_string()),
    }
}

fn check_name_and_mechanism(
    name: &str,
    mechanism: i8,
) -> Result<ScramMechanism, (i16, &'static str)> {
    if name.is_empty() {
        return Err((
            error_code::UNACCEPTABLE_CREDENTIAL,
            "Username must not be empty",
        ));
    }
    ScramMechanism::from_type_code(mechanism).ok_or((
        error_code::UNSUPPORTED_SASL_MECHANISM,
        "Unknown SCRAM mechanism",
    ))
}

impl Controller {
    /// Applies the deletions and upsertions; one result per user named.
    pub fn alter_user_scram_credentials(
        &self,
        deletions: &[ScramDeletion],
        upsertions: &[ScramUpsertion],
    ) -> Result<Vec<ScramResult>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let supported = image
            .metadata_version()
            .is_some_and(|level| level >= SCRAM_METADATA_VERSION);
        let mut errors: Vec<ScramResult> = Vec::new();
        let mut accepted_deletions: Vec<&ScramDeletion> = Vec::new();
        let mut accepted_upsertions: Vec<&ScramUpsertion> = Vec::new();
        let failed = |errors: &Vec<ScramResult>, name: &str| errors.iter().any(|e| e.user == name);
        const TWICE: &str = "A user credential cannot be altered twice in the same request";
        for deletion in deletions {
            if failed(&errors, &deletion.name) {
                continue;
            }
            if let Some(i) = accepted_deletions
                .iter()
                .position(|d| d.name == deletion.name)
            {
                accepted_deletions.remove(i);
                errors.push(failure(
                    &deletion.name,
                    error_code::DUPLICATE_RESOURCE,
                    TWICE,
                ));
                continue;
            }
            if !supported {
                errors.push(failure(
                    &deletion.name,
                    error_code::UNSUPPORTED_VERSION,
                    "The current metadata.version does not support SCRAM",
                ));
                continue;
            }
            let checked =
                check_name_and_mechanism(&deletion.name, deletion.mechanism).and_then(|_| {
                    image
                        .scram_credentials()
                        .contains_key(&(deletion.name.clone(), deletion.mechanism))
                        .then_some(())
                        .ok_or((
                            error_code::RESOURCE_NOT_FOUND,
                            "Attempt to delete a user credential that does not exist",
                        ))
                });
            match checked {
                Ok(()) => accepted_deletions.push(deletion),
                Err((code, message)) => errors.push(failure(&deletion.name, code, message)),
            }
        }
        for upsertion in upsertions {
            if failed(&errors, &upsertion.name) {
                continue;
            }
            let deleted = accepted_deletions
                .iter()
                .position(|d| d.name == upsertion.name);
            let upserted = accepted_upsertions
                .iter()
                .position(|u| u.name == upsertion.name);
            if deleted.is_some() || upserted.is_some() {
                if let Some(i) = deleted {
                    accepted_deletions.remove(i);
                }
                if let Some(i) = upserted {
                    accepted_upsertions.remove(i);
                }
                errors.push(failure(
                    &upsertion.name,
                    error_code::DUPLICATE_RESOURCE,
                    TWICE,
                ));
                continue;
            }
            if !supported {
                errors.push(failure(
                    &upsertion.name,
                    error_code::UNSUPPORTED_VERSION,
                    "The current metadata.version does not support SCRAM",
                ));
                continue;
            }
            let checked =
                check_name_and_mechanism(&upsertion.name, upsertion.mechanism).and_then(|m| {
                    if upsertion.iterations < m.min_iterations() {
                        Err((error_code::UNACCEPTABLE_CREDENTIAL, "Too few iterations"))
                    } else if upsertion.iterations > MAX_ITERATIONS {
                        Err((error_code::UNACCEPTABLE_CREDENTIAL, "Too many iterations"))
                    } else {
                        Ok(())
                    }
                });
            match checked {
                Ok(()) => accepted_upsertions.push(upsertion),
                Err((code, message)) => errors.push(failure(&upsertion.name, code, message)),
            }
        }
        let mut records = Vec::new();
        let mut results = Vec::new();
        for deletion in &accepted_deletions {
            records.push(v0(MetadataRecord::RemoveUserScramCredential(
                RemoveUserScramCredentialRecord {
                    name: deletion.name.as_str().into(),
                    mechanism: deletion.mechanism,
                    ..Default::default()
                },
            )));
            results.push(ScramResult {
                user: deletion.name.clone(),
                error_code: error_code::NONE,
                error_message: None,
            });
        }
        for upsertion in &accepted_upsertions {
            let mechanism =
                ScramMechanism::from_type_code(upsertion.mechanism).expect("checked above");
            let credential = credential_from_salted(
                mechanism,
                &upsertion.salted_password,
                &upsertion.salt,
                upsertion.iterations,
            );
            records.push(v0(MetadataRecord::UserScramCredential(
                UserScramCredentialRecord {
                    name: upsertion.name.as_str().into(),
                    mechanism: upsertion.mechanism,
                    salt: upsertion.salt.clone(),
                    stored_key: Bytes::from(credential.stored_key),
                    server_key: Bytes::from(credential.server_key),
                    iterations: upsertion.iterations,
                    ..Default::default()
                },
            )));
            results.push(ScramResult {
                user: upsertion.name.clone(),
                error_code: error_code::NONE,
                error_message: None,
            });
        }
        self.commit(&mut log, records)?;
        results.extend(errors);
        Ok(results)
    }
}
