//! JoinGroup and the rebalance it drives (Kafka's `GroupMetadataManager.classicGroupJoin`
//! and the `prepareRebalance` / `completeClassicGroupJoin` pair): new, existing and static
//! members joining, the join phase's completion, the next generation and its leader.

use super::*;

impl ClassicGroup {
    // ----- JoinGroup -----

    /// Whether the group takes one more joining member (Kafka's `acceptJoiningMember`).
    pub(super) fn accept_joining_member(&self, config: &GroupConfig, member_id: &str) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(Member::is_awaiting_join)
                    || self.num_awaiting_join() < config.max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < config.max_size
            }
        }
    }

    /// JoinGroup. The response goes to `tx`, now or when the join phase completes.
    pub fn join(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let member_id = request.member_id.clone();
        if !self.accept_joining_member(config, &member_id) {
            self.remove(&member_id);
            let _ = tx.send(join_error("", GROUP_MAX_SIZE_REACHED));
        } else if member_id.is_empty() {
            self.join_new_member(config, request, tx);
        } else {
            self.join_existing_member(config, request, tx);
        }
    }

    pub(super) fn join_new_member(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        if self.state == GroupState::Dead {
            let _ = tx.send(join_error("", COORDINATOR_NOT_AVAILABLE));
        } else if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            let _ = tx.send(join_error("", INCONSISTENT_GROUP_PROTOCOL));
        } else {
            let prefix = request
                .group_instance_id
                .as_deref()
                .unwrap_or(&request.client_id);
            let new_member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            match request.group_instance_id.clone() {
                Some(instance) => match self.static_members.get(&instance).cloned() {
                    Some(existing) => {
                        tracing::info!(
                            group = %self.group_id,
                            "static member {instance} rejoins with an unknown member id in \
                             state {}; replacing member {existing} with {new_member_id}",
                            self.state.name()
                        );
                        self.update_static_member(config, request, existing, new_member_id, tx);
                    }
                    None => {
                        self.add_member_then_rebalance(config, request, new_member_id, tx);
                    }
                },
                None if request.version >= 4 => {
                    tracing::info!(
                        group = %self.group_id,
                        "dynamic member with unknown member id joins in state {}; asking it \
                         to rejoin as {new_member_id}",
                        self.state.name()
                    );
                    self.pending_join.insert(new_member_id.clone());
                    self.reschedule_heartbeat(&new_member_id, request.session_timeout_ms);
                    let _ = tx.send(join_error(&new_member_id, MEMBER_ID_REQUIRED));
                }
                None => self.add_member_then_rebalance(config, request, new_member_id, tx),
            }
        }
    }

    pub(super) fn join_existing_member(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let member_id = request.member_id.clone();
        if self.state == GroupState::Dead {
            let _ = tx.send(join_error(&member_id, COORDINATOR_NOT_AVAILABLE));
            return;
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            let _ = tx.send(join_error(&member_id, INCONSISTENT_GROUP_PROTOCOL));
            return;
        }
        if self.pending_join.contains(&member_id) {
            if request.group_instance_id.is_some() {
                // Kafka treats this as a broker bug (IllegalStateException).
                let _ = tx.send(join_error(&member_id, UNKNOWN_SERVER_ERROR_CODE));
                return;
            }
            tracing::info!(
                group = %self.group_id,
                "pending member {member_id} joins in state {}",
                self.state.name()
            );
            self.add_member_then_rebalance(config, request, member_id, tx);
            return;
        }
        if let Err(code) = self.validate_member(&member_id, request.group_instance_id.as_deref()) {
            let _ = tx.send(join_error(&member_id, code));
            return;
        }
        let reason = join_reason(&request);
        let matches = self.members[&member_id].matches(&request.protocols);
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_then_rebalance(
                    config,
                    &request,
                    tx,
                    &format!("member {member_id} is joining during PreparingRebalance; {reason}"),
                );
            }
            GroupState::CompletingRebalance => {
                if matches {
                    // It may have missed the JoinGroup response: answer it again.
                    let with_members = self.is_leader(&member_id);
                    let response =
                        self.join_response(&member_id, with_members, self.leader(), false);
                    let _ = tx.send(response);
                } else {
                    self.update_member_then_rebalance(
                        config,
                        &request,
                        tx,
                        &format!(
                            "updating metadata for member {member_id} during \
                             CompletingRebalance; {reason}"
                        ),
                    );
                }
            }
            GroupState::Stable => {
                if self.is_leader(&member_id) {
                    self.update_member_then_rebalance(
                        config,
                        &request,
                        tx,
                        &format!("leader {member_id} re-joining group during Stable; {reason}"),
                    );
                } else if !matches {
                    self.update_member_then_rebalance(
                        config,
                        &request,
                        tx,
                        &format!(
                            "updating metadata for member {member_id} during Stable; {reason}"
                        ),
                    );
                } else {
                    let response = self.join_response(&member_id, false, self.leader(), false);
                    let _ = tx.send(response);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                tracing::warn!(
                    group = %self.group_id,
                    "rejoining member {member_id} in unexpected state {}",
                    self.state.name()
                );
                let _ = tx.send(join_error(&member_id, UNKNOWN_MEMBER_ID));
            }
        }
    }

    pub(super) fn update_member_then_rebalance(
        &mut self,
        config: &GroupConfig,
        request: &JoinRequest,
        tx: oneshot::Sender<JoinGroupResponse>,
        reason: &str,
    ) {
        if let Some(member) = self.members.get_mut(&request.member_id) {
            member.protocols = request.protocols.clone();
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.session_timeout_ms = request.session_timeout_ms;
            member.awaiting_join = Some(tx);
        }
        self.maybe_prepare_rebalance_or_complete_join(config, reason);
    }

    pub(super) fn add_member_then_rebalance(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        member_id: String,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let reason = format!(
            "adding new member {member_id} with group instance id {:?}; {}",
            request.group_instance_id,
            join_reason(&request)
        );
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            is_new: true,
        };
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        self.add(member);
        // New members cannot heartbeat while their JoinGroup is parked: time the join out.
        self.reschedule_heartbeat(&member_id, config.new_member_join_timeout_ms);
        self.maybe_prepare_rebalance_or_complete_join(config, &reason);
    }

    pub(super) fn update_static_member(
        &mut self,
        config: &GroupConfig,
        request: JoinRequest,
        old_member_id: String,
        new_member_id: String,
        tx: oneshot::Sender<JoinGroupResponse>,
    ) {
        let instance = request.group_instance_id.clone().unwrap_or_default();
        let current_leader = self.leader_id.clone();
        self.replace_static_member(&instance, &old_member_id, &new_member_id);
        self.reschedule_member_heartbeat(&new_member_id);
        let Some(member) = self.members.get_mut(&new_member_id) else {
            return;
        };
        let old_protocols = std::mem::replace(&mut member.protocols, request.protocols.clone());
        let old_rebalance_timeout_ms = std::mem::replace(
            &mut member.rebalance_timeout_ms,
            request.rebalance_timeout_ms,
        );
        let old_session_timeout_ms =
            std::mem::replace(&mut member.session_timeout_ms, request.session_timeout_ms);
        member.awaiting_join = Some(tx);
        let reason = join_reason(&request);
        match self.state {
            GroupState::Stable => {
                let selected = self.select_protocol();
                if self.protocol_name.is_some() && self.protocol_name == selected {
                    tracing::info!(
                        group = %self.group_id,
                        "static member {instance} joins during Stable without changing the \
                         protocol: no rebalance"
                    );
                    let record = self.metadata_record(&self.group_assignment());
                    self.effects.records.push(record);
                    self.effects.after_append = Some(AfterAppend::StaticJoin(StaticJoin {
                        new_member_id,
                        old_member_id,
                        instance_id: instance,
                        old_protocols,
                        old_rebalance_timeout_ms,
                        old_session_timeout_ms,
                        current_leader,
                        supports_skip_assignment: request.version >= 9,
                    }));
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(
                        config,
                        &format!(
                            "static member {new_member_id} with instance id {instance} joined \
                             with a change of protocol; {reason}"
                        ),
                    );
                }
            }
            GroupState::CompletingRebalance => {
                self.prepare_rebalance(
                    config,
                    &format!(
                        "updating metadata for static member {new_member_id} with instance id \
                         {instance}; {reason}"
                    ),
                );
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(),
            GroupState::Empty | GroupState::Dead => {
                tracing::error!(
                    group = %self.group_id,
                    "static member {instance} rejoined a group in state {}",
                    self.state.name()
                );
            }
        }
    }

    pub(super) fn replace_static_member(
        &mut self,
        instance: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) {
        let Some(mut old) = self.members.remove(old_member_id) else {
            return;
        };
        if let Some(tx) = old.awaiting_join.take() {
            let _ = tx.send(JoinGroupResponse {
                error_code: FENCED_INSTANCE_ID,
                member_id: bs(old_member_id),
                protocol_name: None,
                protocol_type: None,
                leader: bs(""),
                ..Default::default()
            });
        }
        if let Some(tx) = old.awaiting_sync.take() {
            let _ = tx.send(SyncGroupResponse {
                error_code: FENCED_INSTANCE_ID,
                ..Default::default()
            });
        }
        let replacement = Member {
            member_id: new_member_id.to_string(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            ..old
        };
        self.members.insert(new_member_id.to_string(), replacement);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_string());
        }
        self.static_members
            .insert(instance.to_string(), new_member_id.to_string());
    }

    pub(super) fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        config: &GroupConfig,
        reason: &str,
    ) {
        if self.can_rebalance() {
            self.prepare_rebalance(config, reason);
        } else {
            self.maybe_complete_join_phase();
        }
    }

    pub(super) fn maybe_complete_join_phase(&mut self) {
        if self.state == GroupState::PreparingRebalance
            && self.previous_state != GroupState::Empty
            && self.has_all_members_joined()
        {
            self.complete_join();
        }
    }

    pub(super) fn prepare_rebalance(&mut self, config: &GroupConfig, reason: &str) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_with_error(REBALANCE_IN_PROGRESS);
        }
        self.pending_sync.clear();
        self.cancel(&TimerKey::Sync);
        let initial = self.state == GroupState::Empty;
        if initial {
            let delay_ms = config.initial_rebalance_delay_ms;
            let remaining_ms = (self.rebalance_timeout_ms() - delay_ms).max(0);
            self.schedule(
                TimerKey::Join,
                i64::from(delay_ms),
                TimerAction::InitialRebalance {
                    delay_ms,
                    remaining_ms,
                },
            );
        }
        let old_state = self.state;
        self.transition(GroupState::PreparingRebalance);
        tracing::info!(
            group = %self.group_id,
            "preparing to rebalance group in state {} with old generation {} (reason: {reason})",
            old_state.name(),
            self.generation_id
        );
        if !initial {
            if self.has_all_members_joined() {
                self.complete_join();
            } else {
                let timeout = self.rebalance_timeout_ms();
                self.schedule(
                    TimerKey::Join,
                    i64::from(timeout),
                    TimerAction::CompleteJoin,
                );
            }
        }
    }

    pub(super) fn try_complete_initial_rebalance(
        &mut self,
        config: &GroupConfig,
        delay_ms: i32,
        remaining_ms: i32,
    ) {
        if self.new_member_added && remaining_ms != 0 {
            self.new_member_added = false;
            let new_delay_ms = config.initial_rebalance_delay_ms.min(remaining_ms);
            let new_remaining_ms = (remaining_ms - delay_ms).max(0);
            self.schedule(
                TimerKey::Join,
                i64::from(new_delay_ms),
                TimerAction::InitialRebalance {
                    delay_ms: new_delay_ms,
                    remaining_ms: new_remaining_ms,
                },
            );
        } else {
            self.complete_join();
        }
    }

    /// Completes the join phase (Kafka's `completeClassicGroupJoin`).
    pub(super) fn complete_join(&mut self) {
        self.cancel(&TimerKey::Join);
        if self.state != GroupState::PreparingRebalance {
            // Kafka only reaches this in PreparingRebalance; a stale timer is harmless.
            return;
        }
        let not_rejoined: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in &not_rejoined {
            self.remove(id);
            self.cancel(&TimerKey::Heartbeat(id.clone()));
        }
        if !not_rejoined.is_empty() {
            tracing::info!(
                group = %self.group_id,
                "removed dynamic members who have not rejoined: {not_rejoined:?}"
            );
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            tracing::error!(
                group = %self.group_id,
                "could not complete rebalance because no members rejoined"
            );
            let timeout = self.rebalance_timeout_ms();
            self.schedule(
                TimerKey::Join,
                i64::from(timeout),
                TimerAction::CompleteJoin,
            );
            return;
        }
        self.init_next_generation();
        if self.state == GroupState::Empty {
            tracing::info!(
                group = %self.group_id,
                "group with generation {} is now empty",
                self.generation_id
            );
            let record = self.metadata_record(&BTreeMap::new());
            self.effects.records.push(record);
            return;
        }
        tracing::info!(
            group = %self.group_id,
            "stabilized group generation {} with {} members (protocol {:?})",
            self.generation_id,
            self.members.len(),
            self.protocol_name
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        let leader = self.leader_id.clone();
        for id in ids {
            let with_members = self.is_leader(&id);
            let response = self.join_response(&id, with_members, leader.as_deref(), false);
            self.complete_join_future(&id, response);
            self.reschedule_member_heartbeat(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.is_new = false;
            }
            self.pending_sync.insert(id);
        }
        let timeout = self.rebalance_timeout_ms();
        let generation = self.generation_id;
        self.schedule(
            TimerKey::Sync,
            i64::from(timeout),
            TimerAction::ExpireSync { generation },
        );
    }

    pub(super) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self
            .members
            .get(&leader)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        match self
            .members
            .values()
            .find(|m| m.is_awaiting_join())
            .map(|m| m.member_id.clone())
        {
            Some(new_leader) => {
                tracing::info!(
                    group = %self.group_id,
                    "leader {leader} failed to join before the rebalance timeout; member \
                     {new_leader} is the new leader"
                );
                self.leader_id = Some(new_leader);
                true
            }
            None => false,
        }
    }

    pub(super) fn init_next_generation(&mut self) {
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty);
        } else {
            self.protocol_name = self.select_protocol();
            self.transition(GroupState::CompletingRebalance);
        }
        self.pending_sync.clear();
    }
}
