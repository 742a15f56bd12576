//! The members after the join phase: SyncGroup and the assignment it propagates, the
//! records' completion (`after_append`), heartbeats, LeaveGroup and the expiry of a
//! member's session or of a generation's sync (Kafka's `classicGroupSync`,
//! `classicGroupHeartbeat`, `classicGroupLeave` and the heartbeat/sync timeouts).

use super::*;

impl ClassicGroup {
    pub(super) fn reset_and_propagate_assignment_with_error(&mut self, error: i16) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(error);
    }

    pub(super) fn set_and_propagate_assignment(&mut self, assignment: &BTreeMap<String, Bytes>) {
        for member in self.members.values_mut() {
            member.assignment = assignment
                .get(&member.member_id)
                .cloned()
                .unwrap_or_default();
        }
        self.propagate_assignment(NONE);
    }

    pub(super) fn propagate_assignment(&mut self, error: i16) {
        let (protocol_name, protocol_type) = if error == NONE {
            (self.protocol_name.clone(), self.protocol_type.clone())
        } else {
            (None, None)
        };
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let assignment = self.members[&id].assignment.clone();
            let response = SyncGroupResponse {
                error_code: error,
                protocol_type: protocol_type.as_deref().map(bs),
                protocol_name: protocol_name.as_deref().map(bs),
                assignment,
                ..Default::default()
            };
            if self.complete_sync_future(&id, response) {
                self.reschedule_member_heartbeat(&id);
            }
        }
    }

    // ----- timers' handlers -----

    pub(super) fn expire_heartbeat(&mut self, config: &GroupConfig, member_id: &str) {
        if self.state == GroupState::Dead {
            return;
        }
        if self.pending_join.contains(member_id) {
            tracing::info!(
                group = %self.group_id,
                "pending member {member_id} removed after its session timeout"
            );
            self.remove(member_id);
            if self.state == GroupState::PreparingRebalance && self.has_all_members_joined() {
                self.complete_join();
            }
            return;
        }
        let Some(member) = self.members.get(member_id) else {
            return;
        };
        if member.has_satisfied_heartbeat() {
            return;
        }
        tracing::info!(group = %self.group_id, "member {member_id} has failed (session timeout); removing it");
        self.remove_member_and_update_group(
            config,
            member_id,
            &format!("removing member {member_id} on heartbeat expiration"),
        );
    }

    pub(super) fn remove_member_and_update_group(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        reason: &str,
    ) {
        self.complete_join_future(member_id, join_error("", UNKNOWN_MEMBER_ID));
        self.remove(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(config, reason);
            }
            GroupState::PreparingRebalance if self.has_all_members_joined() => {
                self.complete_join();
            }
            _ => {}
        }
    }

    pub(super) fn expire_sync(&mut self, config: &GroupConfig, generation: i32) {
        if generation != self.generation_id {
            return;
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && !self.pending_sync.is_empty()
        {
            let pending: Vec<String> = self.pending_sync.iter().cloned().collect();
            for id in &pending {
                self.remove(id);
                self.cancel(&TimerKey::Heartbeat(id.clone()));
            }
            self.prepare_rebalance(
                config,
                &format!("removing {pending:?} on pending sync request expiration"),
            );
        }
    }

    // ----- SyncGroup -----

    pub(super) fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        let done = match self.state {
            GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => true,
            GroupState::CompletingRebalance | GroupState::Stable => self.pending_sync.is_empty(),
        };
        if done {
            self.cancel(&TimerKey::Sync);
        }
    }

    /// SyncGroup (the group exists and is not Empty).
    pub fn sync(&mut self, request: SyncRequest) -> SyncOutcome {
        if self.state == GroupState::Dead {
            return SyncOutcome::Done(sync_error(COORDINATOR_NOT_AVAILABLE));
        }
        if let Err(code) =
            self.validate_member(&request.member_id, request.group_instance_id.as_deref())
        {
            return SyncOutcome::Done(sync_error(code));
        }
        if request.generation_id != self.generation_id {
            return SyncOutcome::Done(sync_error(ILLEGAL_GENERATION));
        }
        let inconsistent = |sent: &Option<String>, ours: &Option<String>| matches!((sent, ours), (Some(a), Some(b)) if a != b);
        if inconsistent(&request.protocol_type, &self.protocol_type)
            || inconsistent(&request.protocol_name, &self.protocol_name)
        {
            return SyncOutcome::Done(sync_error(INCONSISTENT_GROUP_PROTOCOL));
        }
        let member_id = request.member_id.clone();
        match self.state {
            GroupState::PreparingRebalance => SyncOutcome::Done(sync_error(REBALANCE_IN_PROGRESS)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(&member_id) {
                    member.awaiting_sync = Some(tx);
                }
                self.remove_pending_sync_member(&member_id);
                if self.is_leader(&member_id) {
                    tracing::info!(
                        group = %self.group_id,
                        "assignment received from leader {member_id} for generation {}; the \
                         group has {} members, {} of them static",
                        self.generation_id,
                        self.members.len(),
                        self.static_members.len()
                    );
                    let mut assignment: BTreeMap<String, Bytes> =
                        request.assignments.into_iter().collect();
                    let missing: Vec<String> = self
                        .members
                        .keys()
                        .filter(|id| !assignment.contains_key(*id))
                        .cloned()
                        .collect();
                    if !missing.is_empty() {
                        tracing::warn!(
                            group = %self.group_id,
                            "setting empty assignments for members {missing:?} of generation {}",
                            self.generation_id
                        );
                    }
                    for id in missing {
                        assignment.insert(id, Bytes::new());
                    }
                    let record = self.metadata_record(&assignment);
                    self.effects.records.push(record);
                    self.effects.after_append = Some(AfterAppend::LeaderSync {
                        generation: self.generation_id,
                        assignment,
                    });
                }
                SyncOutcome::Wait(rx)
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(&member_id);
                let assignment = self.members[&member_id].assignment.clone();
                SyncOutcome::Done(SyncGroupResponse {
                    error_code: NONE,
                    protocol_type: self.protocol_type.as_deref().map(bs),
                    protocol_name: self.protocol_name.as_deref().map(bs),
                    assignment,
                    ..Default::default()
                })
            }
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Done(sync_error(UNKNOWN_MEMBER_ID))
            }
        }
    }

    /// Runs what waited for the operation's records to be written (`result` is the append's
    /// outcome as a coordinator error code).
    pub fn after_append(
        &mut self,
        config: &GroupConfig,
        continuation: AfterAppend,
        result: Result<(), i16>,
    ) {
        match continuation {
            AfterAppend::LeaderSync {
                generation,
                assignment,
            } => {
                if self.state != GroupState::CompletingRebalance || self.generation_id != generation
                {
                    return;
                }
                match result {
                    Ok(()) => {
                        self.set_and_propagate_assignment(&assignment);
                        self.transition(GroupState::Stable);
                    }
                    Err(code) => {
                        let error = group_metadata_append_error(code);
                        self.reset_and_propagate_assignment_with_error(error);
                        self.maybe_prepare_rebalance_or_complete_join(
                            config,
                            &format!("error {error} when storing the group assignment"),
                        );
                    }
                }
            }
            AfterAppend::StaticJoin(join) => self.after_static_join(join, result),
            AfterAppend::NewGroup => {
                if let Err(code) = result {
                    let error = group_metadata_append_error(code);
                    tracing::warn!(group = %self.group_id, "failed to write the metadata of the new group: {error}");
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        self.complete_join_future(&id, join_error(&id, error));
                    }
                }
            }
            AfterAppend::Commit(offsets) => {
                if result.is_ok() {
                    for (topic, partition, offset) in offsets {
                        self.offsets
                            .entry(topic)
                            .or_default()
                            .insert(partition, offset);
                    }
                }
            }
            AfterAppend::Expire(expired) => {
                if result.is_ok() {
                    for (topic, partition) in expired {
                        self.remove_offset(&topic, partition);
                    }
                }
            }
        }
    }

    pub(super) fn after_static_join(&mut self, join: StaticJoin, result: Result<(), i16>) {
        match result {
            Err(code) => {
                tracing::warn!(
                    group = %self.group_id,
                    "failed to persist static member {} ({}): reverting to member {}",
                    join.new_member_id,
                    join.instance_id,
                    join.old_member_id
                );
                let tx = self
                    .members
                    .get_mut(&join.new_member_id)
                    .and_then(|m| m.awaiting_join.take());
                if let Some(member) = self.members.get_mut(&join.new_member_id) {
                    member.protocols = join.old_protocols;
                    member.rebalance_timeout_ms = join.old_rebalance_timeout_ms;
                    member.session_timeout_ms = join.old_session_timeout_ms;
                }
                self.replace_static_member(
                    &join.instance_id,
                    &join.new_member_id,
                    &join.old_member_id,
                );
                self.reschedule_member_heartbeat(&join.old_member_id);
                if let Some(tx) = tx {
                    let mut response =
                        self.join_response("", false, join.current_leader.as_deref(), false);
                    response.error_code = group_metadata_append_error(code);
                    let _ = tx.send(response);
                }
            }
            Ok(()) if join.supports_skip_assignment => {
                let is_leader = self.is_leader(&join.new_member_id);
                let response =
                    self.join_response(&join.new_member_id, is_leader, self.leader(), is_leader);
                self.complete_join_future(&join.new_member_id, response);
            }
            Ok(()) => {
                let response = self.join_response(
                    &join.new_member_id,
                    false,
                    join.current_leader.as_deref(),
                    false,
                );
                self.complete_join_future(&join.new_member_id, response);
            }
        }
    }

    // ----- Heartbeat -----

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(code) = self.validate_member(member_id, instance_id) {
            return code;
        }
        if generation_id != self.generation_id {
            return ILLEGAL_GENERATION;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                self.reschedule_member_heartbeat(member_id);
                REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.reschedule_member_heartbeat(member_id);
                NONE
            }
        }
    }

    // ----- LeaveGroup -----

    /// LeaveGroup: the group-level error, and each member's outcome.
    pub fn leave(
        &mut self,
        config: &GroupConfig,
        members: Vec<(String, Option<String>, Option<String>)>,
    ) -> (i16, Vec<LeftMember>) {
        if self.state == GroupState::Dead {
            return (COORDINATOR_NOT_AVAILABLE, Vec::new());
        }
        let mut responses = Vec::with_capacity(members.len());
        for (member_id, instance_id, reason) in members {
            let reason = reason.unwrap_or_else(|| "not provided".to_string());
            let error_code = if member_id.is_empty() {
                match instance_id
                    .as_deref()
                    .and_then(|i| self.static_members.get(i).cloned())
                {
                    Some(existing) => {
                        self.remove_current_member(&existing, &reason);
                        NONE
                    }
                    None => UNKNOWN_MEMBER_ID,
                }
            } else if self.pending_join.contains(&member_id) {
                self.remove(&member_id);
                self.cancel(&TimerKey::Heartbeat(member_id.clone()));
                tracing::info!(
                    group = %self.group_id,
                    "pending member {member_id} has left the group; client reason: {reason}"
                );
                NONE
            } else {
                match self.validate_member(&member_id, instance_id.as_deref()) {
                    Ok(()) => {
                        self.remove_current_member(&member_id, &reason);
                        NONE
                    }
                    Err(code) => code,
                }
            };
            responses.push(LeftMember {
                member_id,
                group_instance_id: instance_id,
                error_code,
            });
        }
        let left: Vec<&str> = responses
            .iter()
            .filter(|r| r.error_code == NONE)
            .map(|r| r.member_id.as_str())
            .collect();
        if !left.is_empty() {
            let reason = format!(
                "explicit `LeaveGroup` request for ({}) members",
                left.join(", ")
            );
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(config, &reason);
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(),
                _ => {}
            }
        }
        (NONE, responses)
    }

    pub(super) fn remove_current_member(&mut self, member_id: &str, reason: &str) {
        self.cancel(&TimerKey::Heartbeat(member_id.to_string()));
        tracing::info!(
            group = %self.group_id,
            "member {member_id} has left the group through an explicit LeaveGroup; client \
             reason: {reason}"
        );
        self.complete_join_future(member_id, join_error("", UNKNOWN_MEMBER_ID));
        self.remove(member_id);
    }

    /// DescribeGroups' view of the group.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.as_deref();
        GroupDescription {
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.unwrap_or("").to_string()
            } else {
                String::new()
            },
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }
}
