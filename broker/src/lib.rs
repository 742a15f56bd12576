//! `gregor-broker`: a Kafka broker that speaks the wire protocol with the generated types
//! of `gregor-protocol` and keeps its data in Kafka's own on-disk formats.
//!
//! Start-up: [`config`] reads `server.properties`; [`broker::Broker::open`] formats or opens
//! the data directory, replays the KRaft `__cluster_metadata` log ([`cluster`]) and opens the
//! partition logs ([`storage`]); [`server`] accepts connections (within the limits of
//! [`connection_quotas`]), and each [`connection`]
//! reads frames and hands them to [`handlers`], one module per API.

pub mod authorizer;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod connection_auth;
pub mod connection_frames;
pub mod connection_pipeline;
pub mod connection_quorum;
pub mod connection_quotas;
pub mod connection_rate;
pub mod dynamic_broker_config;
pub mod fetch_sessions;
pub mod group_config;
pub mod groups;
pub mod handlers;
pub mod quotas;
pub mod replication;
pub mod security;
pub mod server;
pub mod server_observer;
pub mod server_quorum;
pub mod storage;
pub mod telemetry;
pub mod topic_config;
pub mod topic_names;
pub mod transactions;
