//! `gregorctl describe-topic TOPIC`: one topic's partitions, from DescribeTopicPartitions
//! when the broker has it (Kafka 3.8+), from Metadata otherwise.

use gregor_protocol::ApiKey;
use gregor_protocol::messages::describe_topic_partitions_request::{
    Cursor, DescribeTopicPartitionsRequest, TopicRequest,
};
use gregor_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;

use super::Context;
use super::metadata::error_cell;
use crate::client::{Error, Result};
use crate::output::{self, Table, id_list, kafka_uuid};

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic.
    pub topic: String,
}

/// Prints the topic's partitions.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    let cluster = context.cluster().await?;
    let connection = cluster.any();
    if !connection.supports(ApiKey::DescribeTopicPartitions) {
        // Older brokers: the same facts from Metadata.
        let response = cluster
            .metadata(Some(std::slice::from_ref(&args.topic)))
            .await?;
        let topic = response.topics.first();
        if let Some(t) = topic {
            Error::check(t.error_code, None, || format!("topic {:?}", args.topic))?;
        }
        if context.json {
            return output::json_pretty(&response);
        }
        let Some(t) = topic else {
            return Err(Error::Protocol("the broker returned no topic".into()));
        };
        let mut table = Table::new(&[
            "PARTITION",
            "LEADER",
            "EPOCH",
            "REPLICAS",
            "ISR",
            "OFFLINE",
            "ERROR",
        ]);
        for p in &t.partitions {
            table.row(vec![
                p.partition_index.to_string(),
                p.leader_id.to_string(),
                p.leader_epoch.to_string(),
                id_list(&p.replica_nodes),
                id_list(&p.isr_nodes),
                id_list(&p.offline_replicas),
                error_cell(p.error_code),
            ]);
        }
        output::line(&format!(
            "topic {}  id {}  partitions {}",
            args.topic,
            kafka_uuid(&t.topic_id),
            t.partitions.len()
        ))?;
        return table.print();
    }
    // Page through the partitions with the response cursor.
    let mut request = DescribeTopicPartitionsRequest {
        topics: vec![TopicRequest {
            name: args.topic.as_str().into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut merged: Option<DescribeTopicPartitionsResponseTopic> = None;
    let mut first_response = None;
    loop {
        let response = connection.send(&request).await?;
        for topic in &response.topics {
            Error::check(topic.error_code, None, || format!("topic {:?}", args.topic))?;
            match &mut merged {
                Some(m) => m.partitions.extend(topic.partitions.iter().cloned()),
                None => merged = Some(topic.clone()),
            }
        }
        let next = response.next_cursor.clone();
        if first_response.is_none() {
            first_response = Some(response);
        }
        match next {
            Some(cursor) if *cursor.topic_name == *args.topic => {
                request.cursor = Some(Cursor {
                    topic_name: cursor.topic_name,
                    partition_index: cursor.partition_index,
                    ..Default::default()
                });
            }
            _ => break,
        }
    }
    let Some(topic) = merged else {
        return Err(Error::Protocol("the broker returned no topic".into()));
    };
    if context.json {
        let mut response = first_response.unwrap_or_default();
        response.topics = vec![topic];
        response.next_cursor = None;
        return output::json_pretty(&response);
    }
    output::line(&format!(
        "topic {}  id {}  partitions {}  internal {}",
        args.topic,
        kafka_uuid(&topic.topic_id),
        topic.partitions.len(),
        topic.is_internal
    ))?;
    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "EPOCH",
        "REPLICAS",
        "ISR",
        "ELR",
        "OFFLINE",
        "ERROR",
    ]);
    for p in &topic.partitions {
        table.row(vec![
            p.partition_index.to_string(),
            p.leader_id.to_string(),
            p.leader_epoch.to_string(),
            id_list(&p.replica_nodes),
            id_list(&p.isr_nodes),
            p.eligible_leader_replicas
                .as_deref()
                .map(id_list)
                .unwrap_or_else(|| "-".into()),
            id_list(&p.offline_replicas),
            error_cell(p.error_code),
        ]);
    }
    table.print()
}
