//! The coordinator side of members using the classic protocol in a consumer group:
//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup answered by the consumer group (Kafka's
//! `classicGroupJoinToConsumerGroup`, `classicGroupSyncToConsumerGroup`,
//! `classicGroupHeartbeatToConsumerGroup`, `classicGroupLeaveToConsumerGroup`). The
//! classic code sends a request here when the id's cell holds a non-empty consumer group.

use std::sync::Arc;

use gregor_protocol::error_code::*;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;

use super::migration::{CONSUMER_PROTOCOL_TYPE, ClassicJoin, ClassicJoinOutcome};
use super::{Changes, TimerChange};
use crate::groups::group::{
    self, ClassicGroup, LeftMember, Record, join_error, now_ms, sync_error,
};
use crate::groups::{GroupCell, GroupCoordinator, JoinParams, SyncParams};

/// Whether the cell's group is a consumer group with members (the classic APIs then go
/// to it; an empty one gives way to a classic group).
pub(in crate::groups) fn is_live_consumer_group(holder: &ClassicGroup) -> bool {
    holder.consumer.as_deref().is_some_and(|c| !c.is_empty())
}

impl GroupCoordinator {
    /// JoinGroup of a classic member to the consumer group in `holder`.
    pub(in crate::groups) async fn classic_join_to_consumer(
        &self,
        cell: &Arc<GroupCell>,
        holder: &mut ClassicGroup,
        params: JoinParams,
    ) -> JoinGroupResponse {
        let Some(broker) = self.broker() else {
            return join_error(&params.member_id, COORDINATOR_NOT_AVAILABLE);
        };
        let Some(mut copy) = holder.consumer.as_deref().cloned() else {
            return join_error(&params.member_id, UNKNOWN_MEMBER_ID);
        };
        let lookup = super::api::image_topics(&broker);
        let mut changes = Changes::default();
        let request = ClassicJoin {
            requires_known_member_id: params.version >= 4
                && params.member_id.is_empty()
                && params.group_instance_id.is_none(),
            member_id: params.member_id.clone(),
            instance_id: params.group_instance_id,
            client_id: params.client_id,
            client_host: params.client_host,
            session_timeout_ms: params.session_timeout_ms,
            rebalance_timeout_ms: params.rebalance_timeout_ms,
            protocol_type: params.protocol_type,
            protocols: params.protocols,
        };
        let outcome =
            match copy.classic_join(&self.consumer, request, &lookup, now_ms(), &mut changes) {
                Ok(outcome) => outcome,
                Err((code, message)) => {
                    tracing::debug!(group = %copy.group_id, "classic join refused: {message}");
                    return join_error(&params.member_id, code);
                }
            };
        let (member_id, generation_id, protocol_name) = match outcome {
            ClassicJoinOutcome::MemberIdRequired(id) => {
                return join_error(&id, MEMBER_ID_REQUIRED);
            }
            ClassicJoinOutcome::Joined {
                member_id,
                generation_id,
                protocol_name,
            } => (member_id, generation_id, protocol_name),
        };
        let records: Vec<Record> = changes
            .records
            .into_iter()
            .map(|r| Record::Consumer(Box::new(r)))
            .collect();
        if !records.is_empty()
            && let Err(code) = self.append(&copy.group_id.clone(), &records).await
        {
            return join_error(&member_id, group::group_metadata_append_error(code));
        }
        self.install(cell, holder, copy, changes.timers);
        JoinGroupResponse {
            error_code: NONE,
            generation_id,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.into()),
            protocol_name: Some(protocol_name.as_str().into()),
            leader: "".into(),
            member_id: member_id.as_str().into(),
            ..Default::default()
        }
    }

    /// SyncGroup of a classic member of the consumer group in `holder`.
    pub(in crate::groups) fn classic_sync_to_consumer(
        &self,
        cell: &Arc<GroupCell>,
        holder: &mut ClassicGroup,
        params: SyncParams,
    ) -> SyncGroupResponse {
        let Some(broker) = self.broker() else {
            return sync_error(COORDINATOR_NOT_AVAILABLE);
        };
        let Some(group) = holder.consumer.as_deref().cloned() else {
            return sync_error(UNKNOWN_MEMBER_ID);
        };
        let lookup = super::api::image_topics(&broker);
        match group.classic_sync(
            &params.member_id,
            params.group_instance_id.as_deref(),
            params.generation_id,
            params.protocol_type.as_deref(),
            params.protocol_name.as_deref(),
            &lookup,
        ) {
            Ok(assignment) => {
                let member = params.member_id.clone();
                self.install(cell, holder, group, vec![TimerChange::Session(member)]);
                SyncGroupResponse {
                    protocol_type: params.protocol_type.as_deref().map(Into::into),
                    protocol_name: params.protocol_name.as_deref().map(Into::into),
                    assignment,
                    ..Default::default()
                }
            }
            Err((code, _)) => sync_error(code),
        }
    }

    /// Heartbeat of a classic member of the consumer group in `holder`: its error code.
    pub(in crate::groups) fn classic_heartbeat_to_consumer(
        &self,
        cell: &Arc<GroupCell>,
        holder: &mut ClassicGroup,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        let Some(group) = holder.consumer.as_deref().cloned() else {
            return UNKNOWN_MEMBER_ID;
        };
        match group.classic_heartbeat(member_id, instance_id, generation_id) {
            Ok((id, code)) => {
                self.install(cell, holder, group, vec![TimerChange::Session(id)]);
                code
            }
            Err((code, _)) => code,
        }
    }

    /// LeaveGroup of classic members of the consumer group in `holder`.
    pub(in crate::groups) async fn classic_leave_to_consumer(
        &self,
        cell: &Arc<GroupCell>,
        holder: &mut ClassicGroup,
        members: Vec<(String, Option<String>, Option<String>)>,
    ) -> (i16, Vec<LeftMember>) {
        let Some(broker) = self.broker() else {
            return (COORDINATOR_NOT_AVAILABLE, Vec::new());
        };
        let Some(mut copy) = holder.consumer.as_deref().cloned() else {
            return (UNKNOWN_MEMBER_ID, Vec::new());
        };
        let lookup = super::api::image_topics(&broker);
        let ids: Vec<(String, Option<String>)> = members
            .iter()
            .map(|(m, i, _)| (m.clone(), i.clone()))
            .collect();
        let mut changes = Changes::default();
        let results = copy.classic_leave(&ids, &lookup, &mut changes);
        let left = results
            .into_iter()
            .zip(members)
            .map(|((member_id, code), (_, instance, _))| LeftMember {
                member_id,
                group_instance_id: instance,
                error_code: code,
            })
            .collect();
        let records: Vec<Record> = changes
            .records
            .into_iter()
            .map(|r| Record::Consumer(Box::new(r)))
            .collect();
        if !records.is_empty()
            && let Err(code) = self.append(&copy.group_id.clone(), &records).await
        {
            return (group::group_metadata_append_error(code), Vec::new());
        }
        self.install(cell, holder, copy, changes.timers);
        (NONE, left)
    }
}
