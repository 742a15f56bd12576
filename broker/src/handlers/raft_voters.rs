//! What the three KIP-853 voter-change handlers share (`add_raft_voter.rs`,
//! `remove_raft_voter.rs`, `update_raft_voter.rs`): authorization, the cluster id check and
//! the Kafka error of each refusal.

use gregor_protocol::{ErrorCode, error_code};

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::AclOperation;
use crate::cluster::quorum::{Quorum, VoterChangeError, VoterNode};

/// An error code with its message.
pub(crate) struct Refusal {
    /// The Kafka error code.
    pub code: i16,
    /// Its message, if any.
    pub message: Option<String>,
}

impl Refusal {
    /// `code` with `message` (none when empty).
    pub fn new(code: i16, message: String) -> Refusal {
        Refusal {
            code,
            message: (!message.is_empty()).then_some(message),
        }
    }

    /// UNSUPPORTED_VERSION of a node without a dynamic quorum (Kafka's message).
    pub fn unsupported(what: &str) -> Refusal {
        Refusal::new(
            error_code::UNSUPPORTED_VERSION,
            format!("Cluster doesn't support {what} voter because the kraft.version feature is 0"),
        )
    }
}

/// CLUSTER_AUTHORIZATION_FAILED unless the principal may `operation` the cluster.
pub(crate) fn authorize(ctx: &RequestContext, operation: AclOperation) -> Option<Refusal> {
    (!Checker::new(ctx).cluster(operation)).then(|| Refusal {
        code: error_code::CLUSTER_AUTHORIZATION_FAILED,
        message: ErrorCode::from(error_code::CLUSTER_AUTHORIZATION_FAILED)
            .default_message()
            .map(str::to_string),
    })
}

/// INCONSISTENT_CLUSTER_ID when the request names another cluster (Kafka's
/// `KafkaRaftClient.hasValidClusterId`: a null id is accepted).
pub(crate) fn cluster_id_refusal(ctx: &RequestContext, given: Option<&str>) -> Option<Refusal> {
    let ours = ctx.broker.cluster_id.as_str();
    given.filter(|id| *id != ours).map(|id| {
        Refusal::new(
            error_code::INCONSISTENT_CLUSTER_ID,
            format!("The given id \"{id}\" doesn't match the cluster id \"{ours}\""),
        )
    })
}

/// The Kafka error of a refused voter change.
pub(crate) fn voter_change_refusal(e: VoterChangeError) -> Refusal {
    let code = match &e {
        VoterChangeError::NotLeader { .. } => error_code::NOT_LEADER_OR_FOLLOWER,
        VoterChangeError::Unsupported(_) => error_code::UNSUPPORTED_VERSION,
        VoterChangeError::Duplicate(_) => error_code::DUPLICATE_VOTER,
        VoterChangeError::NotFound(_) => error_code::VOTER_NOT_FOUND,
        VoterChangeError::TimedOut(_) => error_code::REQUEST_TIMED_OUT,
        VoterChangeError::Invalid(_) => error_code::INVALID_REQUEST,
    };
    // Kafka answers NOT_LEADER_OR_FOLLOWER without a message.
    let message = match e {
        VoterChangeError::NotLeader { .. } => String::new(),
        other => other.to_string(),
    };
    Refusal::new(code, message)
}

/// The checks every voter change starts with: `operation` on the cluster, the cluster id,
/// and a quorum on this node (`what`: "adding", ... for the message of its absence).
pub(crate) fn precheck<'a>(
    ctx: &'a RequestContext,
    operation: AclOperation,
    cluster_id: Option<&str>,
    what: &str,
) -> Result<&'a Quorum, Refusal> {
    if let Some(refusal) = authorize(ctx, operation) {
        return Err(refusal);
    }
    if let Some(refusal) = cluster_id_refusal(ctx, cluster_id) {
        return Err(refusal);
    }
    ctx.broker
        .controller
        .quorum()
        .ok_or_else(|| Refusal::unsupported(what))
}

/// The voter entry of the request's endpoint on the first `controller.listener.names`
/// listener (the one Kafka's quorum uses, `channel.listenerName()`), from `listeners`
/// (name, host, port); `Err` names the listener looked for.
pub(crate) fn controller_endpoint<'a>(
    ctx: &RequestContext,
    directory_id: gregor_protocol::Uuid,
    mut listeners: impl Iterator<Item = (&'a str, &'a str, u16)>,
) -> Result<VoterNode, String> {
    let name = ctx
        .broker
        .config
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_default();
    match listeners.find(|(listener, _, _)| listener.eq_ignore_ascii_case(&name)) {
        Some((_, host, port)) => Ok(VoterNode {
            directory_id,
            listener: name,
            host: host.to_string(),
            port,
        }),
        None => Err(name),
    }
}
