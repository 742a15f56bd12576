//! Shared harness of the broker's integration tests (`mod support;` in a test file).
//!
//! * [`DataDir`]: a temporary data directory in Kafka's layout (meta.properties, the
//!   `__cluster_metadata` log, partition segments), written with gregor-protocol's own
//!   encoders; it returns what it wrote so tests can compare.
//! * [`Broker`]: the `gregor` binary started on a [`DataDir`] with a generated
//!   `server.properties`, its output captured, killed on drop.
//! * [`RawClient`]: a minimal client over `TcpStream` for exact request/response tests,
//!   pipelining and malformed frames.
//! * [`kcat`], [`python`]: the real clients, skipped (or failed with
//!   `GREGOR_REQUIRE_CLIENTS=1`) when not installed.
//! * [`sarama`]: Shopify's Sarama (Go), through a driver built once per run.
//! * [`ConsumedRecord`], [`assert_consumed_all`]: what a client read, compared with what
//!   the fixture wrote.
//! * [`Json`]: a reader for the clients' JSON output.
//! * [`load`]: the cluster tests' views of a topic and their producer/consumer load.
//!
//! Each test file uses a part of this, hence `dead_code` is allowed here.
#![allow(dead_code, unused_imports)]

pub mod broker;
pub mod client;
pub mod clients;
pub mod cluster;
pub mod consumed;
pub mod datadir;
pub mod json;
pub mod load;
pub mod sarama;

pub use broker::{Broker, server_properties};
pub use client::{
    RawClient, ReadOutcome, Response, advertised_versions, api_versions, produce_transactional,
};
pub use clients::{
    ClientOutput, clients_required, kcat, kcat_version, kcat_with_timeout, python,
    python_client_versions, python_with_timeout,
};
pub use consumed::{
    ConsumedRecord, assert_consumed_all, parse_driver_records, parse_kcat_json_records,
};
pub use datadir::{
    DataDir, DataDirBuilder, METADATA_VERSION, TopicSpec, WrittenPartition, WrittenRecord,
    WrittenTopic, free_port, kafka_uuid_string, random_uuid, sample_record,
};
pub use json::{Json, JsonExt};
pub use sarama::{sarama, sarama_package_version};

/// Lowercase hex of `bytes` (how the Python drivers print keys, values and headers).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
