//! `gregor-broker`: a Kafka broker that speaks the wire protocol with the generated types
//! of `gregor-protocol` and keeps its data in Kafka's own on-disk formats.
//!
//! Start-up: [`config`] reads `server.properties`; [`cluster`] replays the KRaft
//! `__cluster_metadata` log into a [`cluster::MetadataImage`]; [`storage`] opens the partition
//! logs; [`server`] accepts connections, and each [`connection`] reads frames and hands them
//! to [`handlers`], one module per API.

pub mod cluster;
pub mod config;
pub mod storage;
