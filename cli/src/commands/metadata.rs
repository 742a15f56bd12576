//! `gregorctl metadata`: brokers, controller and topics from a Metadata request.

use super::Context;
use crate::client::Result;
use crate::errors;
use crate::output::{self, Table, id_list, kafka_uuid};

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these topics (repeatable); every topic by default.
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
}

/// Prints the Metadata response.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    let cluster = context.cluster().await?;
    let topics = (!args.topics.is_empty()).then_some(args.topics.as_slice());
    let response = cluster.metadata(topics).await?;
    if context.json {
        return output::json_pretty(&response);
    }
    output::line(&format!(
        "cluster id: {}    controller: {}",
        response.cluster_id.as_deref().unwrap_or("-"),
        response.controller_id
    ))?;
    let mut brokers = Table::new(&["BROKER", "HOST", "PORT", "RACK"]);
    for b in &response.brokers {
        brokers.row(vec![
            b.node_id.to_string(),
            b.host.to_string(),
            b.port.to_string(),
            b.rack.as_deref().unwrap_or("-").to_string(),
        ]);
    }
    brokers.print()?;
    output::line("")?;
    let mut topics = Table::new(&[
        "TOPIC",
        "ID",
        "PARTITION",
        "LEADER",
        "EPOCH",
        "REPLICAS",
        "ISR",
        "ERROR",
    ]);
    for t in &response.topics {
        let name = t.name.as_deref().unwrap_or("-").to_string();
        if t.error_code != 0 || t.partitions.is_empty() {
            topics.row(vec![
                name,
                kafka_uuid(&t.topic_id),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                error_cell(t.error_code),
            ]);
            continue;
        }
        for p in &t.partitions {
            topics.row(vec![
                name.clone(),
                kafka_uuid(&t.topic_id),
                p.partition_index.to_string(),
                p.leader_id.to_string(),
                p.leader_epoch.to_string(),
                id_list(&p.replica_nodes),
                id_list(&p.isr_nodes),
                error_cell(p.error_code),
            ]);
        }
    }
    topics.print()
}

/// `-` or the error's name.
pub fn error_cell(code: i16) -> String {
    if code == 0 {
        "-".into()
    } else {
        errors::error_name(code).into()
    }
}
